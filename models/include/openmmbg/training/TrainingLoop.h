#pragma once
/**
 * The one training loop of the flow library. Every objective (maximum likelihood, FAB, reverse KL)
 * is a TrainingObjective plugged into it; the loop owns what they share: Adam with the
 * warmup-cosine learning rate, the gradient guard, per-sample masking, the random streams, reports
 * and evaluations on a schedule, model selection with patience, the time limit, and checkpoints
 * from which a run resumes exactly (docs/training.md).
 *
 * An iteration is the objective's unit of progress: an epoch of maximum likelihood, an AIS pass of
 * FAB (with its several gradient updates), one update of reverse KL.
 */
#include "openmmbg/Model.h"
#include "openmmbg/io/TensorArchive.h"

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

class TrainingLoop;

/** Progress of a run, every `reportEvery` iterations and at the last (JSON: trainingReportToJson). */
struct TrainingReport {
    static constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    std::string unit = "iteration";  ///< what an iteration is called: "epoch" (maximum likelihood) or "iteration"
    int iteration = 0;               ///< 1-based
    int totalIterations = 0;
    double loss = nan;               ///< mean loss of the applied updates since the previous report
    double learningRate = nan;
    int skippedSteps = 0;            ///< updates skipped (gradient guard, all samples masked) since the previous report
    double elapsed = 0;              ///< seconds of training so far, summed over resumed runs
    double eta = 0;                  ///< estimated seconds left
    bool resumed = false;            ///< restored from a checkpoint, not run now
    // Evaluations (NaN when not evaluated at this report).
    double validationNll = nan;      ///< maximum likelihood: mean marginal NLL of the validation set
    double bestValidationNll = nan;  ///< the best so far
    double reverseEss = nan;         ///< energy-based: reverse ESS fraction of flow samples
    double aisEss = nan;             ///< FAB: ESS fraction of AIS with alpha = 1
    // FAB's sampler.
    std::vector<double> stepSizes;   ///< HMC step size per intermediate distribution
    std::vector<double> acceptance;  ///< mean HMC acceptance per intermediate distribution since the previous report
    double aisLogWeightMean = nan;   ///< mean finite AIS log w of the last pass
    int64_t bufferSize = -1;         ///< replay-buffer samples; -1 for objectives without a buffer
};

/** One progress line: bar, iteration, loss, evaluations, sampler state, elapsed time and ETA. */
std::string formatTrainingReport(const TrainingReport& report);
/**
 * JSON object of a report (the metrics-log line). Maximum likelihood: epoch, total_epochs,
 * train_loss, validation_nll, best_validation_nll, learning_rate, skipped_steps, elapsed; the
 * others: iteration, total_iterations, loss, learning_rate, skipped_steps, the evaluations and
 * FAB's sampler state, elapsed. NaN values are left out.
 */
std::string trainingReportToJson(const TrainingReport& report);

/** The settings of the loop itself; each objective's options fill them (with that objective's defaults). */
struct TrainingLoopSettings {
    int iterations = 1;
    int64_t updatesPerIteration = 1;  ///< gradient updates per iteration (the schedule counts updates)
    int64_t warmupIterations = 0;     ///< linear warmup of the learning rate, in iterations
    double initialLearningRate = 2e-5, peakLearningRate = 2e-4, finalLearningRate = 2e-5;
    int gradientWindow = 100;
    double skipFactor = 10.0, clipFactor = 2.0;
    double minLogQ = -1e4;            ///< samples with log q below this are masked out of a loss
    int reportEvery = 1;              ///< iterations between reports
    int evaluateEvery = 0;            ///< iterations between evaluations (also reports) and after the last; 0: never
    int patience = 0;                 ///< stop after this many evaluations without a better selection score; 0: never
    double timeLimit = 0;             ///< seconds; 0: none. Stops after the iteration that exceeds it.
    uint64_t seed = 0;                ///< the training stream; evaluations draw from seed + 1
    std::string checkpointPath;       ///< empty: no checkpoints
    int checkpointEvery = 1;          ///< iterations
    int stopAfterIteration = 0;       ///< stop (as if killed) after this iteration; 0 runs to the end. For tests.
};

/** What an objective contributes to the loop. */
class TrainingObjective {
public:
    virtual ~TrainingObjective() = default;
    /** "maximum-likelihood", "fab", "reverse-kl". */
    virtual std::string name() const = 0;
    /** The objective's options, data and target as JSON: part of the run signature checkpoints must match. */
    virtual std::string signature() const = 0;
    /** Before the first iteration of a fresh run (not a resumed one). */
    virtual void prepare(TrainingLoop&) {}
    /** One iteration: its gradient updates, each through TrainingLoop::update. */
    virtual void iterate(TrainingLoop& loop) = 0;
    /**
     * Whether evaluations select the model: the loop then keeps the parameters of the best (lowest)
     * score, reports it as bestValidationNll, and stops after `patience` evaluations without one.
     */
    virtual bool selectsModels() const { return false; }
    /**
     * Fill the report's evaluations (at evaluation iterations, the model in eval mode, drawing from
     * the evaluation stream). Returns the model-selection score (see selectsModels; NaN counts as
     * no improvement).
     */
    virtual double evaluate(TrainingLoop&, TrainingReport&) { return std::numeric_limits<double>::quiet_NaN(); }
    /** Fill the objective's own fields of a report (every report), then reset what it accumulates between reports. */
    virtual void completeReport(TrainingReport&) {}
    /** Store / restore the objective's state in a checkpoint. */
    virtual void store(TensorArchive&) const {}
    virtual void restore(const TensorArchive&, const std::string& /*path*/) {}
};

class TrainingLoop {
public:
    TrainingLoop(std::shared_ptr<Model> model, std::shared_ptr<TrainingObjective> objective, TrainingLoopSettings settings,
                 std::string unit = "iteration");
    /**
     * Train; calls onReport at every report (and once for each report restored from a checkpoint,
     * with resumed = true). When the objective selects models, the parameters with the best score
     * are restored at the end; otherwise the model keeps the final ones.
     */
    std::vector<TrainingReport> run(const std::function<void(const TrainingReport&)>& onReport = {});

    /**
     * One gradient update with per-sample masking (see maskedBackward in Training.h): `perSample`
     * returns {loss [k], log q [k]} for a subset of the batch (undefined indices: all of it). Zeroes
     * the gradients, back-propagates, applies the gradient guard and Adam at the scheduled learning
     * rate. Returns the batch's mean kept loss, or NaN when the update was skipped.
     */
    double update(const std::function<std::pair<torch::Tensor, torch::Tensor>(const torch::Tensor& indices)>& perSample,
                  int64_t batchSize);

    Model& model() { return *model_; }
    const TrainingLoopSettings& settings() const { return settings_; }
    torch::Generator& generator() { return generator_; }             ///< the training stream
    torch::Generator& evaluationGenerator() { return evaluationGenerator_; }
    int64_t updatesDone() const { return step_; }

private:
    std::shared_ptr<Model> model_;
    std::shared_ptr<TrainingObjective> objective_;
    TrainingLoopSettings settings_;
    std::string unit_;
    torch::Generator generator_, evaluationGenerator_;
    struct State;
    std::shared_ptr<State> state_;
    int64_t step_ = 0;
};

}  // namespace OpenMMBG
