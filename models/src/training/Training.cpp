#include "openmmbg/training/Training.h"

#include "openmmbg/evaluation/Evaluation.h"
#include "openmmbg/io/Files.h"
#include "openmmbg/io/TensorArchive.h"
#include "../JsonObjectReader.h"
#include "SharedLoopSettings.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

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
    a.metadata = {{"format", "openmmbg-checkpoint"}, {"format_version", "2"}, {"signature", signature}};
    return a;
}

namespace {

// Any training checkpoint, whatever run wrote it.
TensorArchive readAnyCheckpoint(const std::string& path) {
    TensorArchive a = deserializeArchive(readFileBytes(path), path, "checkpoint");
    if (a.metadata["format"] != "openmmbg-checkpoint")
        throw std::runtime_error("checkpoint '" + path + "': not an openmmbg training checkpoint");
    const std::string version = a.metadata["format_version"];
    if (version != "1" && version != "2")
        throw std::runtime_error("checkpoint '" + path + "': format version '" + version +
                                 "' is not supported (this build reads versions 1 and 2)");
    return a;
}

}  // namespace

TensorArchive readCheckpoint(const std::string& path, const std::string& signature) {
    TensorArchive a = readAnyCheckpoint(path);
    if (a.metadata["format_version"] == "1")
        throw std::runtime_error("checkpoint '" + path + "' was written by the trainers of openmmbg before the one "
                                 "training loop (checkpoint format 1) and cannot be resumed by this build: finish that "
                                 "run with the build that started it, export its model with `openmmbg export`, or "
                                 "remove the checkpoint to start again");
    if (a.metadata["signature"] != signature)
        throw std::runtime_error("checkpoint '" + path + "' was written by a run with a different objective, "
                                 "configuration, initial model, options or data; remove it or choose another "
                                 "checkpoint path");
    return a;
}

std::shared_ptr<Model> modelFromCheckpoint(const std::string& path, bool* fromBest, std::string* progress) {
    TensorArchive a = readAnyCheckpoint(path);
    nlohmann::json signature;
    try {
        signature = nlohmann::json::parse(a.metadata["signature"]);
    } catch (const std::exception&) {
        throw std::runtime_error("checkpoint '" + path + "': its run signature is not JSON");
    }
    if (!signature.contains("config") || !signature["config"].is_object())
        throw std::runtime_error("checkpoint '" + path + "': its run signature holds no model configuration");
    std::shared_ptr<Model> model = makeModel(signature["config"].dump());
    const bool version1 = a.metadata["format_version"] == "1";
    torch::NoGradGuard noGrad;
    if (!version1)  // the model's tensors, parameters and fixed statistics alike
        for (auto& [name, tensor] : model->namedTensors())
            tensor.copy_(a.get("model/" + name, path).to(tensor.dtype()));
    std::vector<torch::Tensor> params = model->module().parameters();
    const bool best = a.has("best/0");
    for (size_t i = 0; i < params.size() && (best || version1); i++) {
        torch::Tensor t = a.get((best ? "best/" : "param/") + std::to_string(i), path);
        if (t.sizes() != params[i].sizes())
            throw std::runtime_error("checkpoint '" + path + "': parameter " + std::to_string(i) +
                                     " does not fit the model of its configuration");
        params[i].copy_(t.to(params[i].dtype()));
    }
    model->module().eval();
    if (fromBest)
        *fromBest = best;
    if (progress) {
        nlohmann::json p = nlohmann::json::object();
        const std::string unit = version1 ? (a.metadata.count("epoch") ? "epoch" : "iteration") : a.metadata["unit"];
        const std::string key = version1 ? unit : "iteration";
        if (a.metadata.count(key))
            p[unit] = std::stoi(a.metadata.at(key));
        for (const char* bestKey : {"best_nll", "best_score"})
            if (a.metadata.count(bestKey)) {
                nlohmann::json v = nlohmann::json::parse(a.metadata.at(bestKey));
                if (v.is_number())
                    p["best_validation_nll"] = v;
            }
        *progress = p.dump();
    }
    return model;
}

void storeOptimizerState(TensorArchive& a, const AdamOptimizer& optimizer, const GradientGuard& guard) {
    for (size_t i = 0; i < optimizer.params.size(); i++) {
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

std::string formatDuration(double seconds) {
    char buf[32];
    int total = int(std::lround(seconds));
    std::snprintf(buf, sizeof(buf), "%d:%02d", total / 60, total % 60);
    return buf;
}

std::set<std::string> maximumLikelihoodOptionKeys() {
    return {"epochs", "batch_size", "initial_learning_rate", "peak_learning_rate", "final_learning_rate",
            "warmup_epochs", "gradient_window", "skip_factor", "clip_factor", "min_log_q", "time_limit",
            "validate_every", "validation_aug_samples", "patience", "seed", "random_rotations", "checkpoint",
            "checkpoint_every"};
}

MaximumLikelihoodOptions readMaximumLikelihoodOptions(const JsonObjectReader& j) {
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
    if (o.patience < 0 || o.warmupEpochs < 0)
        throw std::invalid_argument("training options: patience and warmup_epochs must be >= 0");
    checkSharedLoopOptions(o);
    return o;
}

MaximumLikelihoodOptions maximumLikelihoodOptionsFromJson(const std::string& text) {
    return readMaximumLikelihoodOptions(JsonObjectReader(text, maximumLikelihoodOptionKeys()));
}

MaximumLikelihoodObjective::MaximumLikelihoodObjective(Model& model, torch::Tensor trainData, torch::Tensor validationData,
                                                       const MaximumLikelihoodOptions& o)
    : options(o), rotate(o.randomRotations.value_or(!model.rotationInvariant())) {
    const torch::Dtype dtype = torch::typeMetaToScalarType(model.options().dtype());
    const int64_t N = model.numParticles(), D = model.dim();
    if (!trainData.defined() || trainData.dim() != 3 || trainData.size(1) != N || trainData.size(2) != D)
        throw std::invalid_argument("train: training data must be [n, " + std::to_string(N) + ", " + std::to_string(D) +
                                    "] (got " + (trainData.defined() ? c10::str(trainData.sizes()) : "none") + ")");
    if (trainData.size(0) < 1)
        throw std::invalid_argument("train: no training configurations");
    train = trainData.to(dtype);
    train = train - train.mean(1, true);
    validation = validationData.defined() ? validationData.to(dtype) : torch::Tensor();
    if (validation.defined() && validation.size(0) > 0 &&
        (validation.dim() != 3 || validation.size(1) != N || validation.size(2) != D))
        throw std::invalid_argument("train: validation data must be [m, " + std::to_string(N) + ", " +
                                    std::to_string(D) + "] (got " + c10::str(validation.sizes()) + ")");
}

TrainingLoopSettings MaximumLikelihoodObjective::loopSettings(const MaximumLikelihoodOptions& o, int64_t n) {
    if (o.batchSize < 1 || o.epochs < 1)
        throw std::invalid_argument("train: batch_size and epochs must be positive (got " + std::to_string(o.batchSize) +
                                    ", " + std::to_string(o.epochs) + ")");
    TrainingLoopSettings s = sharedLoopSettings(o);
    s.iterations = o.epochs;
    s.updatesPerIteration = (n + o.batchSize - 1) / o.batchSize;
    // The reference warms up for 30 of 100+ epochs; shorter runs warm up for 30% of their epochs.
    s.warmupIterations = std::min(o.warmupEpochs, std::max(1, o.epochs * 3 / 10));
    s.reportEvery = 1;
    s.evaluateEvery = o.validateEvery;
    s.patience = o.patience;
    s.stopAfterIteration = o.stopAfterEpoch;
    return s;
}

std::string MaximumLikelihoodObjective::signature() const {
    return nlohmann::json({{"batch_size", options.batchSize}, {"validation_aug_samples", options.validationAugSamples},
                           {"random_rotations", rotate}, {"train", tensorHash(train)},
                           {"validation", tensorHash(validation)}})
        .dump();
}

void MaximumLikelihoodObjective::iterate(TrainingLoop& loop) {
    Model& model = loop.model();
    torch::Generator& gen = loop.generator();
    const int64_t n = train.size(0);
    torch::Tensor order = torch::randperm(n, gen, torch::kLong);
    for (int64_t begin = 0; begin < n; begin += options.batchSize) {
        torch::Tensor batch = train.index_select(0, order.narrow(0, begin, std::min<int64_t>(options.batchSize, n - begin)));
        if (rotate)
            batch = torch::matmul(batch, randomRotations(batch.size(0), batch.size(2), gen, batch.options()).transpose(1, 2));
        torch::Tensor aux = model.sampleAuxiliary(batch, gen);
        loop.update(
            [&](const torch::Tensor& idx) {
                torch::Tensor x = idx.defined() ? batch.index_select(0, idx) : batch;
                torch::Tensor a = idx.defined() ? aux.index_select(0, idx) : aux;
                ModelDensity d = model.logProbAndPenalty(x, a);
                return std::make_pair(-d.logQ + d.penalty, d.logQ);
            },
            batch.size(0));
    }
}

double MaximumLikelihoodObjective::evaluate(TrainingLoop& loop, TrainingReport& report) {
    if (!selectsModels())
        return std::numeric_limits<double>::quiet_NaN();
    report.validationNll = marginalNll(loop.model(), validation, options.validationAugSamples, loop.evaluationGenerator()).first;
    return report.validationNll;
}

void requireFiniteConfigurations(const torch::Tensor& x, const std::string& what) {
    if (!x.defined() || x.numel() == 0)
        return;
    const int64_t bad = torch::logical_not(torch::isfinite(x)).flatten(1).any(1).sum().item<int64_t>();
    if (bad > 0)
        throw std::invalid_argument(what + ": " + std::to_string(bad) + " of " + std::to_string(x.size(0)) +
                                    " configurations hold non-finite coordinates");
}

MaximumLikelihoodTrainer::MaximumLikelihoodTrainer(std::shared_ptr<Model> m, torch::Tensor train, torch::Tensor validation,
                                                   MaximumLikelihoodOptions o)
    : model(std::move(m)), options(std::move(o)) {
    if (!model)
        throw std::invalid_argument("train: needs a model");
    checkSharedLoopOptions(options);  // also for options built in C++ rather than read from JSON
    requireFiniteConfigurations(train, "train: the training data");
    requireFiniteConfigurations(validation, "train: the validation data");
    objective = std::make_shared<MaximumLikelihoodObjective>(*model, train, validation, options);
    numTrain = train.size(0);
}

std::vector<TrainingReport> MaximumLikelihoodTrainer::run(const std::function<void(const TrainingReport&)>& onEpoch) {
    TrainingLoop loop(model, objective, MaximumLikelihoodObjective::loopSettings(options, numTrain), "epoch");
    return loop.run(onEpoch);
}

}  // namespace OpenMMBG
