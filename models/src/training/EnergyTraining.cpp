#include "openmmbg/training/EnergyTraining.h"

#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/evaluation/Evaluation.h"
#include "openmmbg/io/ModelFile.h"
#include "JsonOptions.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <type_traits>

namespace OpenMMBG {

using nlohmann::json;

EnergyTrainingOptions energyTrainingOptionsFromJson(const std::string& text) {
    const JsonOptions j(text, {"objective", "iterations", "batch_size", "alpha", "num_intermediate",
        "num_leapfrog", "initial_step_size", "updates_per_iteration", "buffer_max_batches", "buffer_min_batches",
        "max_importance_weight", "initial_learning_rate", "peak_learning_rate", "final_learning_rate",
        "warmup_iterations", "gradient_window", "skip_factor", "clip_factor", "min_log_q", "report_every",
        "evaluate_every", "num_ess_samples", "ais_ess", "time_limit", "seed", "checkpoint", "checkpoint_every"});
    EnergyTrainingOptions o;
    j.read("objective", o.objective);
    j.read("iterations", o.iterations);
    j.read("batch_size", o.batchSize);
    j.read("alpha", o.alpha);
    j.read("num_intermediate", o.numIntermediate);
    j.read("num_leapfrog", o.numLeapfrog);
    j.read("initial_step_size", o.initialStepSize);
    j.read("updates_per_iteration", o.updatesPerIteration);
    j.read("buffer_max_batches", o.bufferMaxBatches);
    j.read("buffer_min_batches", o.bufferMinBatches);
    j.read("max_importance_weight", o.maxImportanceWeight);
    j.read("initial_learning_rate", o.initialLearningRate);
    j.read("peak_learning_rate", o.peakLearningRate);
    j.read("final_learning_rate", o.finalLearningRate);
    j.read("warmup_iterations", o.warmupIterations);
    j.read("gradient_window", o.gradientWindow);
    j.read("skip_factor", o.skipFactor);
    j.read("clip_factor", o.clipFactor);
    j.read("min_log_q", o.minLogQ);
    j.read("report_every", o.reportEvery);
    j.read("evaluate_every", o.evaluateEvery);
    j.read("num_ess_samples", o.numEssSamples);
    j.read("ais_ess", o.aisEss);
    j.read("time_limit", o.timeLimit);
    j.read("seed", o.seed);
    j.read("checkpoint", o.checkpointPath);
    j.read("checkpoint_every", o.checkpointEvery);
    if (o.objective != "fab" && o.objective != "reverse-kl")
        throw std::invalid_argument("training options: objective must be \"fab\" or \"reverse-kl\" (got \"" + o.objective + "\")");
    if (o.iterations < 1 || o.batchSize < 1 || o.numLeapfrog < 1 || o.updatesPerIteration < 1 || o.bufferMinBatches < 1 ||
        o.bufferMaxBatches < o.bufferMinBatches || o.bufferMinBatches < o.updatesPerIteration || o.numIntermediate < 0 ||
        !(o.initialStepSize > 0) || o.reportEvery < 1 || o.evaluateEvery < 0 || o.numEssSamples < 1 ||
        o.checkpointEvery < 1 || o.gradientWindow < 1 || !(o.maxImportanceWeight > 0))
        throw std::invalid_argument("training options: iterations, batch_size, num_leapfrog, updates_per_iteration, "
                                    "report_every, num_ess_samples, checkpoint_every, gradient_window, "
                                    "initial_step_size and max_importance_weight must be positive, num_intermediate "
                                    "and evaluate_every non-negative, and updates_per_iteration <= "
                                    "buffer_min_batches <= buffer_max_batches");
    return o;
}

namespace {

json reportToJson(const EnergyTrainingReport& r) {
    auto number = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
    return {{"iteration", r.iteration}, {"total_iterations", r.totalIterations}, {"loss", number(r.loss)},
            {"learning_rate", r.learningRate}, {"skipped_steps", r.skippedSteps}, {"step_sizes", r.stepSizes},
            {"acceptance", r.acceptance}, {"ais_log_w_mean", number(r.aisLogWeightMean)},
            {"reverse_ess", number(r.reverseEss)}, {"ais_ess", number(r.aisEss)}, {"buffer_size", r.bufferSize},
            {"elapsed", r.elapsed}};
}

double jsonNumber(const json& v) { return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN(); }

EnergyTrainingReport reportFromJson(const json& j) {
    EnergyTrainingReport r;
    r.iteration = j.at("iteration").get<int>();
    r.totalIterations = j.at("total_iterations").get<int>();
    r.loss = jsonNumber(j.at("loss"));
    r.learningRate = j.at("learning_rate").get<double>();
    r.skippedSteps = j.at("skipped_steps").get<int>();
    r.stepSizes = j.at("step_sizes").get<std::vector<double>>();
    r.acceptance = j.at("acceptance").get<std::vector<double>>();
    r.aisLogWeightMean = jsonNumber(j.at("ais_log_w_mean"));
    r.reverseEss = jsonNumber(j.at("reverse_ess"));
    r.aisEss = jsonNumber(j.at("ais_ess"));
    r.bufferSize = j.at("buffer_size").get<int64_t>();
    r.elapsed = j.at("elapsed").get<double>();
    r.eta = 0;
    r.resumed = true;
    return r;
}

std::string formatList(const std::vector<double>& v, const char* format) {
    std::string out;
    char buf[32];
    for (size_t i = 0; i < v.size(); i++) {
        std::snprintf(buf, sizeof(buf), format, v[i]);
        out += (i ? "," : "") + std::string(buf);
    }
    return out;
}

}  // namespace

std::string formatEnergyTrainingReport(const EnergyTrainingReport& r) {
    char line[512];
    std::snprintf(line, sizeof(line), "%s it %d/%d  loss %.4f  lr %.2e", progressBar(double(r.iteration) / std::max(1, r.totalIterations)).c_str(),
                  r.iteration, r.totalIterations, r.loss, r.learningRate);
    std::string out = line;
    if (!std::isnan(r.reverseEss)) {
        std::snprintf(line, sizeof(line), "  ESS %.3f", r.reverseEss);
        out += line;
    }
    if (!std::isnan(r.aisEss)) {
        std::snprintf(line, sizeof(line), "  AIS ESS %.3f", r.aisEss);
        out += line;
    }
    if (!r.stepSizes.empty())
        out += "  step [" + formatList(r.stepSizes, "%.3g") + "]  acc [" + formatList(r.acceptance, "%.2f") + "]";
    out += "  " + formatDuration(r.elapsed) + " elapsed, ETA " + formatDuration(r.eta);
    if (r.skippedSteps)
        out += " (" + std::to_string(r.skippedSteps) + " steps skipped)";
    if (r.resumed)
        out += "  (from checkpoint)";
    return out;
}

std::string energyTrainingReportToJson(const EnergyTrainingReport& r) {
    json j = reportToJson(r);
    for (const char* key : {"loss", "ais_log_w_mean", "reverse_ess", "ais_ess"})
        if (j[key].is_null())
            j.erase(key);
    return j.dump();
}

EnergyTrainer::EnergyTrainer(AugmentedCouplingFlow f, std::shared_ptr<Target> t, EnergyTrainingOptions o, std::string id)
    : flow(std::move(f)), target(std::move(t)), options(std::move(o)), targetId(std::move(id)) {
    TORCH_CHECK(target, "energy training needs a target");
    if (targetId.empty())
        targetId = target->name();
    const FlowConfig& c = flow->config();
    if (target->numParticles() != c.numParticles || target->dim() != c.dim)
        throw std::invalid_argument("target '" + target->name() + "' has " + std::to_string(target->numParticles()) +
                                    " particles in " + std::to_string(target->dim()) + "-D but the flow describes " +
                                    std::to_string(c.numParticles) + " in " + std::to_string(c.dim) + "-D");
    if (options.objective != "fab" && options.objective != "reverse-kl")
        throw std::invalid_argument("objective must be \"fab\" or \"reverse-kl\" (got \"" + options.objective + "\")");
}

std::pair<double, torch::Tensor> EnergyTrainer::fabStep(const torch::Tensor& x, const torch::Tensor& a,
                                                        const torch::Tensor& logQOld) {
    zeroGradients(flow->parameters());
    torch::Tensor logQ;
    const double alpha = options.alpha, auxWeight = flow->config().auxLossWeight;
    const double loss = maskedBackward(
        [&](const torch::Tensor& idx) {
            torch::Tensor xs = idx.defined() ? x.index_select(0, idx) : x;
            torch::Tensor as = idx.defined() ? a.index_select(0, idx) : a;
            torch::Tensor old = (idx.defined() ? logQOld.index_select(0, idx) : logQOld).to(torch::kFloat64);
            FlowDensity d = flow->logProbWithAux(xs, as);
            if (!idx.defined())
                logQ = d.logQ.detach();
            // Importance weight of the buffer sample under the current flow relative to the one it
            // was stored with (the target of AIS is p~^alpha q^(1-alpha)), clipped.
            torch::Tensor w = torch::exp((1 - alpha) * (d.logQ.detach().to(torch::kFloat64) - old))
                                  .clamp_max(options.maxImportanceWeight)
                                  .to(d.logQ.scalar_type());
            return std::make_pair(-w * d.logQ + auxWeight * d.aux, d.logQ);
        },
        x.size(0), options.minLogQ);
    return {loss, logQ};
}

double EnergyTrainer::reverseKlStep(torch::Generator& generator) {
    const FlowConfig& c = flow->config();
    torch::Tensor z0;
    {
        torch::NoGradGuard noGrad;
        torch::Tensor x0 = CentreOfMassFreeGaussian::sample(options.batchSize, c.numParticles, c.dim, generator, flow->options());
        z0 = joinState(x0, flow->sampleAugmented(x0, generator));
    }
    zeroGradients(flow->parameters());
    return maskedBackward(
        [&](const torch::Tensor& idx) {
            torch::Tensor z = idx.defined() ? z0.index_select(0, idx) : z0;
            // Reparameterised samples: gradients flow through the forward map into the parameters.
            BijectorOutput out = flow->forwardMap(z);
            torch::Tensor x = out.z.select(2, 0), a = out.z.narrow(2, 1, c.numAug);
            torch::Tensor logQ = flow->baseLogProb(z) - out.logDet;
            torch::Tensor logP = -target->energy(x).to(logQ.scalar_type()) + flow->logAugmentedTarget(x, a);
            return std::make_pair(logQ - logP + c.auxLossWeight * out.aux, logQ);
        },
        options.batchSize, options.minLogQ);
}

std::vector<EnergyTrainingReport> EnergyTrainer::run(const std::function<void(const EnergyTrainingReport&)>& onReport,
                                                     const std::function<void(int, int)>& onBufferFill) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const EnergyTrainingOptions& o = options;
    const bool fab = o.objective == "fab";
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    torch::Generator evalGen = at::make_generator<at::CPUGeneratorImpl>(o.seed + 1);
    const int64_t updatesPerIteration = fab ? o.updatesPerIteration : 1;
    const int64_t totalSteps = int64_t(o.iterations) * updatesPerIteration;
    const int64_t warmup = o.warmupIterations >= 0 ? o.warmupIterations : std::max(1, o.iterations * 3 / 10);
    WarmupCosineSchedule schedule{o.initialLearningRate, o.peakLearningRate, o.finalLearningRate,
                                  warmup * updatesPerIteration, totalSteps};
    std::vector<torch::Tensor> params = flow->parameters();
    AdamOptimizer optimizer(params);
    GradientGuard guard(o.gradientWindow, o.skipFactor, o.clipFactor);
    TargetJointDensity joint(target, flow);
    AisOptions aisOptions;
    aisOptions.numIntermediate = o.numIntermediate;
    aisOptions.alpha = o.alpha;
    aisOptions.numLeapfrog = o.numLeapfrog;
    aisOptions.initialStepSize = o.initialStepSize;
    AnnealedImportanceSampler ais(aisOptions);
    PrioritisedReplayBuffer buffer(int64_t(o.bufferMaxBatches) * o.batchSize);
    std::vector<EnergyTrainingReport> reports;
    int64_t step = 0;
    int firstIteration = 1;
    double elapsedBefore = 0;
    // Accumulated since the last report (checkpointed, so reports are exact after a resume):
    // loss sum, kept updates, skipped updates, then the acceptance sum per intermediate distribution.
    const int numAcc = fab ? o.numIntermediate : 0;
    std::vector<double> acc(3 + numAcc, 0.0);
    int accIterations = 0;
    double lastLogWMean = std::numeric_limits<double>::quiet_NaN();

    const json signatureJson = {
        {"config", json::parse(flow->config().toJson())}, {"target", targetId}, {"objective", o.objective},
        {"iterations", o.iterations}, {"batch_size", o.batchSize},
        {"ais", {o.alpha, o.numIntermediate, o.numLeapfrog, o.initialStepSize}},
        {"buffer", {o.updatesPerIteration, o.bufferMaxBatches, o.bufferMinBatches, o.maxImportanceWeight}},
        {"lr", {o.initialLearningRate, o.peakLearningRate, o.finalLearningRate, o.warmupIterations}},
        {"guard", {o.gradientWindow, o.skipFactor, o.clipFactor}}, {"min_log_q", o.minLogQ},
        {"monitor", {o.reportEvery, o.evaluateEvery, o.numEssSamples, o.aisEss}}, {"seed", o.seed}};
    const std::string signature = signatureJson.dump();

    auto saveCheckpoint = [&](int iteration) {
        TensorArchive a = newCheckpoint(signature);
        a.metadata.insert({{"objective", o.objective}, {"iteration", std::to_string(iteration)},
                           {"step", std::to_string(step)}, {"acc_iterations", std::to_string(accIterations)},
                           {"last_log_w_mean", json(std::isfinite(lastLogWMean) ? json(lastLogWMean) : json(nullptr)).dump()}});
        json history = json::array();
        for (auto& r : reports)
            history.push_back(reportToJson(r));
        a.metadata["reports"] = history.dump();
        storeOptimizerState(a, optimizer, guard);
        a.tensors.emplace_back("rng/train", gen.get_state());
        a.tensors.emplace_back("rng/evaluation", evalGen.get_state());
        a.tensors.emplace_back("ais/step_sizes", torch::tensor(ais.stepSizes, torch::kFloat64));
        a.tensors.emplace_back("accumulators", torch::tensor(acc, torch::kFloat64));
        buffer.store(a, "buffer");
        writeFileAtomically(o.checkpointPath, serializeArchive(a));
    };

    if (!o.checkpointPath.empty() && std::ifstream(o.checkpointPath).good()) {
        const std::string& path = o.checkpointPath;
        TensorArchive a = readCheckpoint(path, signature);
        restoreOptimizerState(a, path, optimizer, guard);
        gen.set_state(a.get("rng/train", path));
        evalGen.set_state(a.get("rng/evaluation", path));
        ais.stepSizes = a.getDoubles("ais/step_sizes", path);
        acc = a.getDoubles("accumulators", path);
        buffer.restore(a, "buffer", path);
        step = std::stoll(a.metadata["step"]);
        firstIteration = std::stoi(a.metadata["iteration"]) + 1;
        accIterations = std::stoi(a.metadata["acc_iterations"]);
        lastLogWMean = jsonNumber(json::parse(a.metadata["last_log_w_mean"]));
        for (auto& j : json::parse(a.metadata["reports"]))
            reports.push_back(reportFromJson(j));
        elapsedBefore = reports.empty() ? 0 : reports.back().elapsed;
        if (onReport)
            for (auto& r : reports)
                onReport(r);
    }

    flow->train();
    if (fab && firstIteration == 1 && buffer.size() == 0) {
        // Pre-fill the buffer with AIS samples of the initial flow (adapting the step sizes as it goes).
        for (int filled = 1; buffer.size() < int64_t(o.bufferMinBatches) * o.batchSize; filled++) {
            AisResult r = ais.runFromFlow(flow, joint, o.batchSize, gen, true);
            buffer.add(r.x, r.a, r.logWeights, r.logQ);
            if (onBufferFill)
                onBufferFill(filled, o.bufferMinBatches);
        }
    }

    // The ETA extrapolates the iterations of this run only, not the buffer pre-fill.
    const auto loopStart = Clock::now();
    for (int it = firstIteration; it <= o.iterations; it++) {
        double lr = schedule.at(step);
        if (fab) {
            AisResult r = ais.runFromFlow(flow, joint, o.batchSize, gen, true);
            buffer.add(r.x, r.a, r.logWeights, r.logQ);
            for (int j = 0; j < numAcc; j++)
                acc[3 + j] += r.acceptance[j];
            torch::Tensor finite = r.logWeights.masked_select(torch::isfinite(r.logWeights));
            lastLogWMean = finite.numel() > 0 ? finite.mean().item<double>() : std::numeric_limits<double>::quiet_NaN();
            // All of the iteration's batches at once, so they are disjoint.
            PrioritisedReplayBuffer::Batch all = buffer.sample(updatesPerIteration * o.batchSize, gen);
            for (int64_t u = 0; u < updatesPerIteration; u++, step++) {
                lr = schedule.at(step);
                const int64_t begin = u * o.batchSize;
                auto part = [&](const torch::Tensor& t) { return t.narrow(0, begin, o.batchSize); };
                auto [loss, logQ] = fabStep(part(all.x), part(all.a), part(all.logQ));
                // The drawn samples now carry log q of the parameters that computed this gradient
                // (whether or not the update is applied), and their weights follow.
                if (logQ.defined())
                    buffer.adjust(part(all.indices), logQ, o.alpha);
                if (std::isnan(loss) || !guard.apply(params)) {
                    acc[2] += 1;
                    continue;
                }
                optimizer.step(lr);
                acc[0] += loss;
                acc[1] += 1;
            }
        } else {
            const double loss = reverseKlStep(gen);
            if (std::isnan(loss) || !guard.apply(params)) {
                acc[2] += 1;
            } else {
                optimizer.step(lr);
                acc[0] += loss;
                acc[1] += 1;
            }
            step++;
        }
        accIterations++;
        const double runSeconds = std::chrono::duration<double>(Clock::now() - start).count();
        const bool timeUp = o.timeLimit > 0 && runSeconds >= o.timeLimit;
        const bool last = it == o.iterations;
        // Reports (and evaluations) follow their schedule only: one added when a run is cut short
        // would consume evaluation draws and split the accumulators, breaking exact resumption.
        // An evaluation iteration is a report iteration too, so evaluate_every need not be a
        // multiple of report_every.
        const bool evaluate = o.evaluateEvery > 0 && (it % o.evaluateEvery == 0 || last);
        if (it % o.reportEvery == 0 || evaluate || last) {
            EnergyTrainingReport r;
            r.iteration = it;
            r.totalIterations = o.iterations;
            r.loss = acc[1] > 0 ? acc[0] / acc[1] : std::numeric_limits<double>::quiet_NaN();
            r.learningRate = lr;
            r.skippedSteps = int(acc[2]);
            if (fab) {
                r.stepSizes = ais.stepSizes;
                for (int j = 0; j < numAcc; j++)
                    r.acceptance.push_back(acc[3 + j] / std::max(1, accIterations));
                r.aisLogWeightMean = lastLogWMean;
            }
            r.bufferSize = buffer.size();
            if (evaluate) {
                flow->eval();
                AugmentedCouplingFlowModel model(flow);
                r.reverseEss = reverseEss(model, *target, o.numEssSamples, evalGen).first;
                if (fab && o.aisEss) {
                    AisOptions evalOptions = aisOptions;
                    evalOptions.alpha = 1.0;
                    AnnealedImportanceSampler evalAis(evalOptions);
                    evalAis.stepSizes = ais.stepSizes;
                    r.aisEss = aisEss(flow, target, o.numEssSamples, evalAis, evalGen, o.batchSize, false).first;
                }
                flow->train();
            }
            const double runElapsed = std::chrono::duration<double>(Clock::now() - start).count();
            r.elapsed = elapsedBefore + runElapsed;
            const double loopElapsed = std::chrono::duration<double>(Clock::now() - loopStart).count();
            r.eta = loopElapsed / (it - firstIteration + 1) * (o.iterations - it);
            if (o.timeLimit > 0)
                r.eta = std::min(r.eta, std::max(0.0, o.timeLimit - runElapsed));
            reports.push_back(r);
            std::fill(acc.begin(), acc.end(), 0.0);
            accIterations = 0;
            if (onReport)
                onReport(r);
        }
        const bool stop = timeUp || it == o.stopAfterIteration;
        if (!o.checkpointPath.empty() && (it % o.checkpointEvery == 0 || last || stop))
            saveCheckpoint(it);
        if (stop)
            break;
    }
    flow->eval();
    return reports;
}

}  // namespace OpenMMBG
