#include "openmmbg/training/EnergyTraining.h"

#include "openmmbg/evaluation/Evaluation.h"
#include "../JsonObjectReader.h"
#include "SharedLoopSettings.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace OpenMMBG {

using nlohmann::json;

EnergyTrainingOptions energyTrainingOptionsFromJson(const std::string& text) {
    const JsonObjectReader j(text, {"objective", "iterations", "batch_size", "alpha", "num_intermediate",
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
    checkSharedLoopOptions(o);
    return o;
}

TrainingLoopSettings energyTrainingLoopSettings(const EnergyTrainingOptions& o) {
    TrainingLoopSettings s = sharedLoopSettings(o);
    s.iterations = o.iterations;
    s.updatesPerIteration = o.objective == "fab" ? o.updatesPerIteration : 1;
    s.warmupIterations = o.warmupIterations >= 0 ? o.warmupIterations : std::max(1, o.iterations * 3 / 10);
    s.reportEvery = o.reportEvery;
    s.evaluateEvery = o.evaluateEvery;
    s.stopAfterIteration = o.stopAfterIteration;
    return s;
}

namespace {

AisOptions aisOptionsOf(const EnergyTrainingOptions& o) {
    AisOptions a;
    a.numIntermediate = o.numIntermediate;
    a.alpha = o.alpha;
    a.numLeapfrog = o.numLeapfrog;
    a.initialStepSize = o.initialStepSize;
    return a;
}

}  // namespace

FabObjective::FabObjective(Model& model, std::shared_ptr<Target> t, const EnergyTrainingOptions& o, std::string id)
    : model(model), target(std::move(t)), options(o), targetId(std::move(id)), joint(target, model), aisOptions(aisOptionsOf(o)), ais(aisOptions),
      buffer(int64_t(o.bufferMaxBatches) * o.batchSize), acceptanceSums(o.numIntermediate, 0.0) {}

std::string FabObjective::signature() const {
    const EnergyTrainingOptions& o = options;
    return json({{"target", targetId}, {"batch_size", o.batchSize},
                 {"ais", {o.alpha, o.numIntermediate, o.numLeapfrog, o.initialStepSize}},
                 {"buffer", {o.updatesPerIteration, o.bufferMaxBatches, o.bufferMinBatches, o.maxImportanceWeight}},
                 {"monitor", {o.numEssSamples, o.aisEss}}})
        .dump();
}

void FabObjective::prepare(TrainingLoop& loop) {
    // Pre-fill the buffer with AIS samples of the initial flow (adapting the step sizes as it goes).
    for (int filled = 1; buffer.size() < int64_t(options.bufferMinBatches) * options.batchSize; filled++) {
        AisResult r = ais.runFromFlow(model, joint, options.batchSize, loop.generator(), true);
        buffer.add(r.x, r.a, r.logWeights, r.logQ);
        if (onBufferFill)
            onBufferFill(filled, options.bufferMinBatches);
    }
}

void FabObjective::iterate(TrainingLoop& loop) {
    const EnergyTrainingOptions& o = options;
    torch::Generator& gen = loop.generator();
    AisResult r = ais.runFromFlow(model, joint, o.batchSize, gen, true);
    buffer.add(r.x, r.a, r.logWeights, r.logQ);
    for (size_t j = 0; j < acceptanceSums.size(); j++)
        acceptanceSums[j] += r.acceptance[j];
    passes++;
    torch::Tensor finite = r.logWeights.masked_select(torch::isfinite(r.logWeights));
    lastLogWeightMean = finite.numel() > 0 ? finite.mean().item<double>() : std::numeric_limits<double>::quiet_NaN();
    // All of the iteration's batches at once, so they are disjoint.
    PrioritisedReplayBuffer::Batch all = buffer.sample(int64_t(o.updatesPerIteration) * o.batchSize, gen);
    for (int64_t u = 0; u < o.updatesPerIteration; u++) {
        auto part = [&](const torch::Tensor& t) { return t.narrow(0, u * o.batchSize, o.batchSize); };
        const torch::Tensor x = part(all.x), a = part(all.a), logQOld = part(all.logQ);
        torch::Tensor logQ;
        loop.update(
            [&](const torch::Tensor& idx) {
                torch::Tensor xs = idx.defined() ? x.index_select(0, idx) : x;
                torch::Tensor as = idx.defined() ? a.index_select(0, idx) : a;
                torch::Tensor old = (idx.defined() ? logQOld.index_select(0, idx) : logQOld).to(torch::kFloat64);
                ModelDensity d = model.logProbAndPenalty(xs, as);
                if (!idx.defined())
                    logQ = d.logQ.detach();
                // Importance weight of the buffer sample under the current flow relative to the one it
                // was stored with (the target of AIS is p~^alpha q^(1-alpha)), clipped.
                torch::Tensor w = torch::exp((1 - o.alpha) * (d.logQ.detach().to(torch::kFloat64) - old))
                                      .clamp_max(o.maxImportanceWeight)
                                      .to(d.logQ.scalar_type());
                return std::make_pair(-w * d.logQ + d.penalty, d.logQ);
            },
            o.batchSize);
        // The drawn samples now carry log q of the parameters that computed this gradient (whether
        // or not the update was applied), and their weights follow.
        if (logQ.defined())
            buffer.adjust(part(all.indices), logQ, o.alpha);
    }
}

void FabObjective::completeReport(TrainingReport& r) {
    r.stepSizes = ais.stepSizes;
    for (double sum : acceptanceSums)
        r.acceptance.push_back(sum / std::max(1, passes));
    r.aisLogWeightMean = lastLogWeightMean;
    r.bufferSize = buffer.size();
    std::fill(acceptanceSums.begin(), acceptanceSums.end(), 0.0);
    passes = 0;
}

double FabObjective::evaluate(TrainingLoop& loop, TrainingReport& r) {
    r.reverseEss = reverseEss(loop.model(), *target, options.numEssSamples, loop.evaluationGenerator()).first;
    if (options.aisEss) {
        AisOptions evalOptions = aisOptions;
        evalOptions.alpha = 1.0;
        AnnealedImportanceSampler evalAis(evalOptions);
        evalAis.stepSizes = ais.stepSizes;
        r.aisEss = aisEss(model, target, options.numEssSamples, evalAis, loop.evaluationGenerator(), options.batchSize,
                          false).first;
    }
    return std::numeric_limits<double>::quiet_NaN();
}

void FabObjective::store(TensorArchive& a) const {
    a.metadata["fab_passes"] = std::to_string(passes);
    a.metadata["last_log_w_mean"] = (std::isfinite(lastLogWeightMean) ? json(lastLogWeightMean) : json(nullptr)).dump();
    a.tensors.emplace_back("ais/step_sizes", torch::tensor(ais.stepSizes, torch::kFloat64));
    a.tensors.emplace_back("ais/acceptance_sums", torch::tensor(acceptanceSums, torch::kFloat64));
    buffer.store(a, "buffer");
}

void FabObjective::restore(const TensorArchive& a, const std::string& path) {
    ais.stepSizes = a.getDoubles("ais/step_sizes", path);
    acceptanceSums = a.getDoubles("ais/acceptance_sums", path);
    if (ais.stepSizes.size() != size_t(options.numIntermediate) || acceptanceSums.size() != size_t(options.numIntermediate))
        throw std::runtime_error("checkpoint '" + path + "': AIS state does not fit " +
                                 std::to_string(options.numIntermediate) + " intermediate distributions");
    passes = std::stoi(a.metadata.at("fab_passes"));
    const json last = json::parse(a.metadata.at("last_log_w_mean"));
    lastLogWeightMean = last.is_number() ? last.get<double>() : std::numeric_limits<double>::quiet_NaN();
    buffer.restore(a, "buffer", path);
}

ReverseKlObjective::ReverseKlObjective(std::shared_ptr<Target> t, const EnergyTrainingOptions& o, std::string id)
    : target(std::move(t)), options(o), targetId(std::move(id)) {}

std::string ReverseKlObjective::signature() const {
    return json({{"target", targetId}, {"batch_size", options.batchSize}, {"monitor", {options.numEssSamples}}}).dump();
}

void ReverseKlObjective::iterate(TrainingLoop& loop) {
    Model& model = loop.model();
    torch::Tensor base;
    {
        torch::NoGradGuard noGrad;
        base = model.sampleBase(options.batchSize, loop.generator());
    }
    loop.update(
        [&](const torch::Tensor& idx) {
            // Reparameterised samples: gradients flow through the model's map into the parameters.
            auto [s, penalty] = model.baseToSample(idx.defined() ? base.index_select(0, idx) : base);
            torch::Tensor logP = -target->energy(s.x).to(s.logQ.scalar_type()) + model.logAuxiliaryTarget(s.x, s.aux);
            return std::make_pair(s.logQ - logP + penalty, s.logQ);
        },
        options.batchSize);
}

double ReverseKlObjective::evaluate(TrainingLoop& loop, TrainingReport& r) {
    r.reverseEss = reverseEss(loop.model(), *target, options.numEssSamples, loop.evaluationGenerator()).first;
    return std::numeric_limits<double>::quiet_NaN();
}

EnergyTrainer::EnergyTrainer(std::shared_ptr<Model> m, std::shared_ptr<Target> target, EnergyTrainingOptions o,
                             std::string targetId)
    : model(std::move(m)), options(std::move(o)) {
    if (!model || !target)
        throw std::invalid_argument("energy training: needs a model and a target");
    checkSharedLoopOptions(options);  // also for options built in C++ rather than read from JSON
    if (targetId.empty())
        targetId = target->name();
    if (target->numParticles() != model->numParticles() || target->dim() != model->dim())
        throw std::invalid_argument("target '" + target->name() + "' has " + std::to_string(target->numParticles()) +
                                    " particles in " + std::to_string(target->dim()) + "-D but the model describes " +
                                    std::to_string(model->numParticles()) + " in " + std::to_string(model->dim()) + "-D");
    if (options.objective == "fab")
        objective = std::make_shared<FabObjective>(*model, target, options, targetId);
    else if (options.objective == "reverse-kl")
        objective = std::make_shared<ReverseKlObjective>(target, options, targetId);
    else
        throw std::invalid_argument("objective must be \"fab\" or \"reverse-kl\" (got \"" + options.objective + "\")");
}

std::vector<TrainingReport> EnergyTrainer::run(const std::function<void(const TrainingReport&)>& onReport,
                                               const std::function<void(int, int)>& onBufferFill) {
    if (auto* fab = dynamic_cast<FabObjective*>(objective.get()))
        fab->onBufferFill = onBufferFill;
    TrainingLoop loop(model, objective, energyTrainingLoopSettings(options));
    return loop.run(onReport);
}

}  // namespace OpenMMBG
