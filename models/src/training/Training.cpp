#include "openmmbg/training/Training.h"

#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/evaluation/Evaluation.h"

#include "openmmbg/io/ModelFile.h"
#include "JsonOptions.h"
#include "openmmbg/io/TensorArchive.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <type_traits>

namespace OpenMMBG {

double WarmupCosineSchedule::at(int64_t step) const {
    if (step < warmupSteps)
        return initial + (peak - initial) * double(step) / double(std::max<int64_t>(warmupSteps, 1));
    const double span = double(std::max<int64_t>(totalSteps - warmupSteps, 1));
    const double progress = std::min(1.0, double(step - warmupSteps) / span);
    return final + 0.5 * (peak - final) * (1 + std::cos(M_PI * progress));
}

double GradientGuard::median() const {
    if (history.empty())
        return std::numeric_limits<double>::quiet_NaN();
    std::vector<double> v(history.begin(), history.end());
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

bool GradientGuard::apply(const std::vector<torch::Tensor>& params) {
    double sq = 0;
    for (const auto& p : params)
        if (p.grad().defined())
            sq += p.grad().pow(2).sum().item<double>();
    const double norm = std::sqrt(sq);
    if (!std::isfinite(norm))
        return false;
    const bool full = int(history.size()) >= window;
    if (full) {
        const double med = median();
        if (norm > skipFactor * med)
            return false;
        const double limit = clipFactor * med;
        if (norm > limit) {
            torch::NoGradGuard guard;
            for (const auto& p : params)
                if (p.grad().defined())
                    p.mutable_grad().mul_(limit / norm);
        }
    }
    {
        torch::NoGradGuard guard;
        for (const auto& p : params)
            if (p.grad().defined())
                p.mutable_grad().nan_to_num_(0.0, 0.0, 0.0);
    }
    history.push_back(norm);
    while (int(history.size()) > window)
        history.pop_front();
    return true;
}

MaximumLikelihoodTrainer::MaximumLikelihoodTrainer(AugmentedCouplingFlow f, torch::Tensor trainData,
                                                   torch::Tensor validationData, MaximumLikelihoodOptions o)
    : flow(std::move(f)), options(o) {
    auto opts = flow->options();
    train = trainData.to(opts.dtype());
    train = train - train.mean(1, true);
    validation = validationData.defined() ? validationData.to(opts.dtype()) : torch::Tensor();
    if (train.dim() != 3 || train.size(1) != flow->config().numParticles || train.size(2) != flow->config().dim)
        throw std::invalid_argument("train: training data must be [n, " + std::to_string(flow->config().numParticles) +
                                    ", " + std::to_string(flow->config().dim) + "] (got " + c10::str(train.sizes()) + ")");
    if (options.batchSize < 1 || options.epochs < 1)
        throw std::invalid_argument("train: batch_size and epochs must be positive (got " +
                                    std::to_string(options.batchSize) + ", " + std::to_string(options.epochs) + ")");
}

void zeroGradients(const std::vector<torch::Tensor>& params) {
    for (auto& p : params)
        if (p.grad().defined())
            p.mutable_grad().zero_();
}

double maskedBackward(const std::function<std::pair<torch::Tensor, torch::Tensor>(const torch::Tensor& indices)>& perSample,
                      int64_t batchSize, double minLogQ) {
    auto [loss, logQ] = perSample(torch::Tensor());
    torch::Tensor keep = torch::isfinite(loss) & (logQ > minLogQ);
    const int64_t kept = keep.sum().item<int64_t>();
    if (kept == 0)
        return std::numeric_limits<double>::quiet_NaN();
    if (kept < loss.size(0))
        std::tie(loss, logQ) = perSample(keep.nonzero().squeeze(1));
    // Sum of kept per-sample losses over the full batch size: dropped samples contribute zero.
    (loss.sum() / double(batchSize)).backward();
    return loss.mean().item<double>();
}

double MaximumLikelihoodTrainer::trainStep(const torch::Tensor& data, torch::Generator& generator) {
    torch::Tensor batch = data;
    if (options.randomRotations)
        batch = torch::matmul(data, randomRotations(data.size(0), data.size(2), generator, data.options()).transpose(1, 2));
    torch::Tensor a = flow->sampleAugmented(batch, generator);
    zeroGradients(flow->parameters());
    return maskedBackward(
        [&](const torch::Tensor& idx) {
            torch::Tensor x = idx.defined() ? batch.index_select(0, idx) : batch;
            torch::Tensor aug = idx.defined() ? a.index_select(0, idx) : a;
            FlowDensity d = flow->logProbWithAux(x, aug);
            return std::make_pair(-d.logQ + flow->config().auxLossWeight * d.aux, d.logQ);
        },
        batch.size(0), options.minLogQ);
}

double MaximumLikelihoodTrainer::validationNll(torch::Generator& generator) {
    AugmentedCouplingFlowModel model(flow);
    return marginalNll(model, validation, options.validationAugSamples, generator).first;
}

AdamOptimizer::AdamOptimizer(std::vector<torch::Tensor> p, double b1, double b2, double e)
    : params(std::move(p)), beta1(b1), beta2(b2), eps(e) {
    for (auto& t : params) {
        firstMoments.push_back(torch::zeros_like(t));
        secondMoments.push_back(torch::zeros_like(t));
    }
}

void AdamOptimizer::step(double lr) {
    torch::NoGradGuard guard;
    numSteps++;
    const double c1 = 1 - std::pow(beta1, double(numSteps)), c2 = 1 - std::pow(beta2, double(numSteps));
    for (size_t i = 0; i < params.size(); i++) {
        if (!params[i].grad().defined())
            continue;
        const torch::Tensor& g = params[i].grad();
        firstMoments[i].mul_(beta1).add_(g, 1 - beta1);
        secondMoments[i].mul_(beta2).addcmul_(g, g, 1 - beta2);
        torch::Tensor denom = (secondMoments[i] / c2).sqrt_().add_(eps);
        params[i].addcdiv_(firstMoments[i], denom, -lr / c1);
    }
}

std::string tensorHash(const torch::Tensor& t) {
    if (!t.defined())
        return "none";
    torch::Tensor c = t.contiguous();
    return std::to_string(fnv1a64(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size()));
}

TensorArchive newCheckpoint(const std::string& signature) {
    TensorArchive a;
    a.metadata = {{"format", "openmmbg-checkpoint"}, {"format_version", "1"}, {"signature", signature}};
    return a;
}

namespace {

// Any training checkpoint of this format version, whatever run wrote it.
TensorArchive readAnyCheckpoint(const std::string& path) {
    TensorArchive a = deserializeArchive(readFileBytes(path), path, "checkpoint");
    if (a.metadata["format"] != "openmmbg-checkpoint")
        throw std::runtime_error("checkpoint '" + path + "': not an openmmbg training checkpoint");
    if (a.metadata["format_version"] != "1")
        throw std::runtime_error("checkpoint '" + path + "': format version '" + a.metadata["format_version"] +
                                 "' is not supported (this build reads version 1)");
    return a;
}

}  // namespace

namespace {

// A run signature as JSON, with the flow configuration's "family" filled in: checkpoints written
// before configurations named their family are E-ACF runs, and resume as such.
nlohmann::json normalisedSignature(const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("config") && j["config"].is_object() && !j["config"].contains("family"))
        j["config"]["family"] = "eacf";
    return j;
}

}  // namespace

TensorArchive readCheckpoint(const std::string& path, const std::string& signature) {
    TensorArchive a = readAnyCheckpoint(path);
    if (a.metadata["signature"] != signature &&
        normalisedSignature(a.metadata["signature"]) != normalisedSignature(signature))
        throw std::runtime_error("checkpoint '" + path + "' was written by a run with a different configuration, "
                                 "options or data; remove it or choose another checkpoint path");
    return a;
}

AugmentedCouplingFlow flowFromCheckpoint(const std::string& path, bool* fromBest, std::string* progress) {
    TensorArchive a = readAnyCheckpoint(path);
    nlohmann::json signature;
    try {
        signature = nlohmann::json::parse(a.metadata["signature"]);
    } catch (const std::exception&) {
        throw std::runtime_error("checkpoint '" + path + "': its run signature is not JSON");
    }
    if (!signature.contains("config"))
        throw std::runtime_error("checkpoint '" + path + "': its run signature holds no flow configuration");
    AugmentedCouplingFlow flow(FlowConfig::fromJson(signature["config"].dump()));
    std::vector<torch::Tensor> params = flow->parameters();
    const bool best = a.has("best/0");
    torch::NoGradGuard noGrad;
    for (size_t i = 0; i < params.size(); i++) {
        torch::Tensor t = a.get((best ? "best/" : "param/") + std::to_string(i), path);
        if (t.sizes() != params[i].sizes())
            throw std::runtime_error("checkpoint '" + path + "': parameter " + std::to_string(i) +
                                     " does not fit the flow of its configuration");
        params[i].copy_(t.to(params[i].dtype()));
    }
    flow->eval();
    if (fromBest)
        *fromBest = best;
    if (progress) {
        nlohmann::json p = nlohmann::json::object();
        for (const char* key : {"epoch", "iteration"})
            if (a.metadata.count(key))
                p[key] = std::stoi(a.metadata.at(key));
        if (a.metadata.count("best_nll"))
            p["best_validation_nll"] = nlohmann::json::parse(a.metadata.at("best_nll"));
        *progress = p.dump();
    }
    return flow;
}

void storeOptimizerState(TensorArchive& a, const AdamOptimizer& optimizer, const GradientGuard& guard) {
    for (size_t i = 0; i < optimizer.params.size(); i++) {
        a.tensors.emplace_back("param/" + std::to_string(i), optimizer.params[i]);
        a.tensors.emplace_back("adam_m/" + std::to_string(i), optimizer.firstMoments[i]);
        a.tensors.emplace_back("adam_v/" + std::to_string(i), optimizer.secondMoments[i]);
    }
    a.metadata["adam_steps"] = std::to_string(optimizer.numSteps);
    std::vector<double> norms(guard.norms().begin(), guard.norms().end());
    a.tensors.emplace_back("guard/norms", torch::tensor(norms, torch::kFloat64));
}

void restoreOptimizerState(const TensorArchive& a, const std::string& path, AdamOptimizer& optimizer,
                           GradientGuard& guard) {
    torch::NoGradGuard noGrad;
    for (size_t i = 0; i < optimizer.params.size(); i++) {
        optimizer.params[i].copy_(a.get("param/" + std::to_string(i), path));
        optimizer.firstMoments[i].copy_(a.get("adam_m/" + std::to_string(i), path));
        optimizer.secondMoments[i].copy_(a.get("adam_v/" + std::to_string(i), path));
    }
    optimizer.numSteps = std::stoll(a.metadata.at("adam_steps"));
    const std::vector<double> norms = a.getDoubles("guard/norms", path);
    guard.setNorms(std::deque<double>(norms.begin(), norms.end()));
}

std::string progressBar(double fraction, int width) {
    const int filled = int(width * std::clamp(fraction, 0.0, 1.0));
    return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

namespace {

using nlohmann::json;

// Everything that must match for a checkpoint to be resumed by this run.
std::string runSignature(const FlowConfig& config, const MaximumLikelihoodOptions& o, const torch::Tensor& train,
                         const torch::Tensor& validation) {
    json j = {{"config", json::parse(config.toJson())}, {"epochs", o.epochs}, {"batch_size", o.batchSize},
              {"lr", {o.initialLearningRate, o.peakLearningRate, o.finalLearningRate}}, {"warmup_epochs", o.warmupEpochs},
              {"guard", {o.gradientWindow, o.skipFactor, o.clipFactor}}, {"min_log_q", o.minLogQ},
              {"validate_every", o.validateEvery}, {"validation_aug_samples", o.validationAugSamples},
              {"seed", o.seed}, {"random_rotations", o.randomRotations}, {"train", tensorHash(train)},
              {"validation", tensorHash(validation)}};
    return j.dump();
}

json reportToJson(const EpochReport& r) {
    return {{"epoch", r.epoch}, {"total_epochs", r.totalEpochs}, {"train_loss", r.trainLoss}, {"validation_nll", r.validationNll},
            {"best_validation_nll", r.bestValidationNll}, {"learning_rate", r.learningRate},
            {"skipped_steps", r.skippedSteps}, {"elapsed", r.elapsed}};
}

double jsonNumber(const json& v) { return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN(); }

EpochReport reportFromJson(const json& j, int totalEpochs) {
    EpochReport r;
    r.epoch = j.at("epoch").get<int>();
    r.totalEpochs = totalEpochs;
    r.trainLoss = jsonNumber(j.at("train_loss"));
    r.validationNll = jsonNumber(j.at("validation_nll"));
    r.bestValidationNll = jsonNumber(j.at("best_validation_nll"));
    r.learningRate = j.at("learning_rate").get<double>();
    r.skippedSteps = j.at("skipped_steps").get<int>();
    r.elapsed = j.at("elapsed").get<double>();
    r.eta = 0;
    r.resumed = true;
    return r;
}

}  // namespace

std::string formatDuration(double seconds) {
    char buf[32];
    int total = int(std::lround(seconds));
    std::snprintf(buf, sizeof(buf), "%d:%02d", total / 60, total % 60);
    return buf;
}

std::string formatEpochReport(const EpochReport& r) {
    const std::string bar = progressBar(double(r.epoch) / std::max(1, r.totalEpochs));
    char nll[32] = "   -   ";
    if (!std::isnan(r.validationNll))
        std::snprintf(nll, sizeof(nll), "%.4f", r.validationNll);
    char line[256];
    std::snprintf(line, sizeof(line), "%s epoch %d/%d  loss %.4f  val NLL %s  lr %.2e  %s elapsed, ETA %s", bar.c_str(),
                  r.epoch, r.totalEpochs, r.trainLoss, nll, r.learningRate, formatDuration(r.elapsed).c_str(),
                  formatDuration(r.eta).c_str());
    std::string out = line;
    if (r.skippedSteps)
        out += " (" + std::to_string(r.skippedSteps) + " steps skipped)";
    if (r.resumed)
        out += "  (from checkpoint)";
    return out;
}

std::string epochReportToJson(const EpochReport& r) {
    json j = reportToJson(r);
    if (std::isnan(r.validationNll))
        j.erase("validation_nll");
    if (std::isnan(r.bestValidationNll) || std::isinf(r.bestValidationNll))
        j.erase("best_validation_nll");
    return j.dump();
}

MaximumLikelihoodOptions maximumLikelihoodOptionsFromJson(const std::string& text) {
    const JsonOptions j(text, {"epochs", "batch_size", "initial_learning_rate", "peak_learning_rate",
        "final_learning_rate", "warmup_epochs", "gradient_window", "skip_factor", "clip_factor", "min_log_q",
        "time_limit", "validate_every", "validation_aug_samples", "patience", "seed", "random_rotations",
        "checkpoint", "checkpoint_every"});
    MaximumLikelihoodOptions o;
    j.read("epochs", o.epochs);
    j.read("batch_size", o.batchSize);
    j.read("initial_learning_rate", o.initialLearningRate);
    j.read("peak_learning_rate", o.peakLearningRate);
    j.read("final_learning_rate", o.finalLearningRate);
    j.read("warmup_epochs", o.warmupEpochs);
    j.read("gradient_window", o.gradientWindow);
    j.read("skip_factor", o.skipFactor);
    j.read("clip_factor", o.clipFactor);
    j.read("min_log_q", o.minLogQ);
    j.read("time_limit", o.timeLimit);
    j.read("validate_every", o.validateEvery);
    j.read("validation_aug_samples", o.validationAugSamples);
    j.read("patience", o.patience);
    j.read("seed", o.seed);
    j.read("random_rotations", o.randomRotations);
    j.read("checkpoint", o.checkpointPath);
    j.read("checkpoint_every", o.checkpointEvery);
    if (o.epochs < 1 || o.batchSize < 1 || o.validateEvery < 1 || o.validationAugSamples < 1 || o.checkpointEvery < 1 ||
        o.gradientWindow < 1)
        throw std::invalid_argument("training options: epochs, batch_size, validate_every, validation_aug_samples, "
                                    "checkpoint_every and gradient_window must be positive");
    return o;
}

std::vector<EpochReport> MaximumLikelihoodTrainer::run(const std::function<void(const EpochReport&)>& onEpoch) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    torch::Generator valGen = at::make_generator<at::CPUGeneratorImpl>(options.seed + 1);
    const int64_t n = train.size(0);
    const int64_t stepsPerEpoch = (n + options.batchSize - 1) / options.batchSize;
    const int64_t totalSteps = stepsPerEpoch * options.epochs;
    // The reference warms up for 30 of 100+ epochs; shorter runs warm up for 30% of their epochs.
    const int warmup = std::min(options.warmupEpochs, std::max(1, options.epochs * 3 / 10));
    WarmupCosineSchedule schedule{options.initialLearningRate, options.peakLearningRate, options.finalLearningRate,
                                  stepsPerEpoch * warmup, totalSteps};
    std::vector<torch::Tensor> params = flow->parameters();
    AdamOptimizer optimizer(params);
    GradientGuard guard(options.gradientWindow, options.skipFactor, options.clipFactor);
    std::vector<EpochReport> reports;
    std::vector<torch::Tensor> best;
    double bestNll = std::numeric_limits<double>::infinity();
    int sinceImprovement = 0;
    int64_t step = 0;
    int firstEpoch = 1;
    double elapsedBefore = 0;  // training seconds of earlier runs of this checkpoint
    const std::string signature = runSignature(flow->config(), options, train, validation);

    auto saveCheckpoint = [&](int epoch) {
        TensorArchive a = newCheckpoint(signature);
        a.metadata.insert({{"epoch", std::to_string(epoch)}, {"step", std::to_string(step)},
                           {"best_nll", json(bestNll).dump()}, {"since_improvement", std::to_string(sinceImprovement)}});
        json history = json::array();
        for (auto& r : reports)
            history.push_back(reportToJson(r));
        a.metadata["reports"] = history.dump();
        storeOptimizerState(a, optimizer, guard);
        for (size_t i = 0; i < best.size(); i++)
            a.tensors.emplace_back("best/" + std::to_string(i), best[i]);
        a.tensors.emplace_back("rng/train", gen.get_state());
        a.tensors.emplace_back("rng/validation", valGen.get_state());
        writeFileAtomically(options.checkpointPath, serializeArchive(a));
    };

    if (!options.checkpointPath.empty() && std::ifstream(options.checkpointPath).good()) {
        const std::string& path = options.checkpointPath;
        TensorArchive a = readCheckpoint(path, signature);
        restoreOptimizerState(a, path, optimizer, guard);
        for (size_t i = 0; i < params.size() && a.has("best/" + std::to_string(i)); i++)
            best.push_back(a.get("best/" + std::to_string(i), path).to(params[i].dtype()));
        gen.set_state(a.get("rng/train", path));
        valGen.set_state(a.get("rng/validation", path));
        step = std::stoll(a.metadata["step"]);
        firstEpoch = std::stoi(a.metadata["epoch"]) + 1;
        bestNll = json::parse(a.metadata["best_nll"]).is_number() ? json::parse(a.metadata["best_nll"]).get<double>()
                                                                  : std::numeric_limits<double>::infinity();
        sinceImprovement = std::stoi(a.metadata["since_improvement"]);
        for (auto& j : json::parse(a.metadata["reports"]))
            reports.push_back(reportFromJson(j, options.epochs));
        if (!reports.empty())
            elapsedBefore = reports.back().elapsed;
        if (onEpoch)
            for (auto& r : reports)
                onEpoch(r);
    }

    flow->train();
    bool stoppedEarly = !reports.empty() && options.patience > 0 && sinceImprovement >= options.patience;
    for (int epoch = firstEpoch; epoch <= options.epochs && !stoppedEarly; epoch++) {
        torch::Tensor order = torch::randperm(n, gen, torch::kLong);
        double lossSum = 0;
        int lossCount = 0, skipped = 0;
        double lr = schedule.at(step);
        for (int64_t b = 0; b < stepsPerEpoch; b++, step++) {
            lr = schedule.at(step);
            torch::Tensor idx = order.narrow(0, b * options.batchSize, std::min<int64_t>(options.batchSize, n - b * options.batchSize));
            double loss = trainStep(train.index_select(0, idx), gen);
            if (std::isnan(loss) || !guard.apply(params)) {  // NaN: every sample of the batch was masked
                skipped++;
                continue;
            }
            optimizer.step(lr);
            if (std::isfinite(loss)) {
                lossSum += loss;
                lossCount++;
            }
        }
        EpochReport r;
        r.epoch = epoch;
        r.totalEpochs = options.epochs;
        r.trainLoss = lossCount > 0 ? lossSum / lossCount : std::numeric_limits<double>::quiet_NaN();
        r.learningRate = lr;
        r.skippedSteps = skipped;
        const double runSeconds = std::chrono::duration<double>(Clock::now() - start).count();
        const bool timeUp = options.timeLimit > 0 && runSeconds >= options.timeLimit;
        const bool last = epoch == options.epochs || timeUp || epoch == options.stopAfterEpoch;
        // Validate on the schedule only (and after the final epoch): an extra validation when a run
        // is cut short would consume validation draws and break exact resumption.
        if (validation.defined() && validation.size(0) > 0 &&
            (epoch % std::max(1, options.validateEvery) == 0 || epoch == options.epochs)) {
            flow->eval();
            r.validationNll = validationNll(valGen);
            flow->train();
            if (r.validationNll < bestNll) {
                bestNll = r.validationNll;
                sinceImprovement = 0;
                best.clear();
                for (auto& p : params)
                    best.push_back(p.detach().clone());
            } else {
                sinceImprovement++;
            }
        }
        r.bestValidationNll = bestNll;
        const double runElapsed = std::chrono::duration<double>(Clock::now() - start).count();
        r.elapsed = elapsedBefore + runElapsed;
        r.eta = runElapsed / (epoch - firstEpoch + 1) * (options.epochs - epoch);
        if (options.timeLimit > 0)
            r.eta = std::min(r.eta, std::max(0.0, options.timeLimit - runElapsed));
        reports.push_back(r);
        stoppedEarly = options.patience > 0 && sinceImprovement >= options.patience;
        if (!options.checkpointPath.empty() &&
            (epoch % std::max(1, options.checkpointEvery) == 0 || last || stoppedEarly))
            saveCheckpoint(epoch);
        if (onEpoch)
            onEpoch(r);
        if (timeUp || epoch == options.stopAfterEpoch)
            break;
    }
    flow->eval();
    if (!best.empty()) {
        torch::NoGradGuard noGrad;
        for (size_t i = 0; i < params.size(); i++)
            params[i].copy_(best[i]);
    }
    return reports;
}

}  // namespace OpenMMBG
