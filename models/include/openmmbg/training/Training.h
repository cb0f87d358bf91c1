#pragma once
/**
 * Training: the parts every objective shares (Adam, the warmup-cosine learning rate, the gradient
 * guard that skips and clips by the median of recent gradient norms, per-sample masking,
 * checkpoints; the loop itself is TrainingLoop.h) and the maximum-likelihood objective: loss
 * -mean log q(x, aux) with aux ~ pi(aux|x), plus the family's penalty (the E-ACF's weighted
 * auxiliary loss; docs/eacf-mapping.md#maximum-likelihood-settings).
 */
#include "openmmbg/distributions/Distributions.h"
#include "openmmbg/io/TensorArchive.h"
#include "openmmbg/training/TrainingLoop.h"

#include <deque>
#include <functional>
#include <limits>
#include <optional>

namespace OpenMMBG {

/** Learning rate: linear warmup from `initial` to `peak`, then cosine decay to `final`. */
struct WarmupCosineSchedule {
    double initial, peak, final;
    int64_t warmupSteps, totalSteps;
    double at(int64_t step) const;
};

/**
 * Keeps the last `window` gradient norms. A step is skipped when its norm is non-finite or, once
 * the window is full, above skipFactor x the median; otherwise the gradient is clipped to
 * clipFactor x the median (window full only) and non-finite entries are zeroed.
 */
class GradientGuard {
public:
    GradientGuard(int window = 100, double skipFactor = 10.0, double clipFactor = 2.0)
        : window(window), skipFactor(skipFactor), clipFactor(clipFactor) {}
    /** Inspect and clip the gradients of `params` in place; returns false if the step must be skipped. */
    bool apply(const std::vector<torch::Tensor>& params);
    double median() const;
    const std::deque<double>& norms() const { return history; }
    void setNorms(const std::deque<double>& n) { history = n; }

private:
    int window;
    double skipFactor, clipFactor;
    std::deque<double> history;
};

/** Adam (Kingma & Ba) with bias correction, its state kept in plain tensors so it can be checkpointed. */
class AdamOptimizer {
public:
    AdamOptimizer(std::vector<torch::Tensor> params, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
    /** Apply one update with learning rate lr using the parameters' current gradients. */
    void step(double lr);
    std::vector<torch::Tensor> params, firstMoments, secondMoments;
    int64_t numSteps = 0;
    double beta1, beta2, eps;
};

/** Zero the defined gradients of `params`. */
void zeroGradients(const std::vector<torch::Tensor>& params);

/**
 * Throws std::invalid_argument "<what>: <k> of <n> configurations hold non-finite coordinates" if any
 * value of `x` is NaN or infinite (an undefined tensor passes): training data are checked before any
 * training starts, whichever entry point (CLI, Python, C++) gave them.
 */
void requireFiniteConfigurations(const torch::Tensor& x, const std::string& what);

/**
 * Back-propagate a batch's mean per-sample loss with per-sample masking
 * (docs/eacf-mapping.md#maximum-likelihood-settings): a sample is dropped when its loss is non-finite or its log q is
 * below minLogQ; the gradient is the sum of the kept samples' gradients divided by batchSize.
 * `perSample(indices)` returns {loss [k], log q [k]} for the samples `indices` of the batch (an
 * undefined tensor: all of them); it is called again on the kept samples when some are dropped,
 * because masking by torch::where would still back-propagate NaN (0 x NaN) from dropped samples.
 * Gradients must be zeroed by the caller. Returns the mean loss over kept samples, NaN if none.
 */
double maskedBackward(const std::function<std::pair<torch::Tensor, torch::Tensor>(const torch::Tensor& indices)>& perSample,
                      int64_t batchSize, double minLogQ);

/** FNV-1a hash of a tensor's bytes as a decimal string ("none" for an undefined tensor); for run signatures. */
std::string tensorHash(const torch::Tensor& t);

/**
 * Training checkpoints (format "openmmbg-checkpoint", version 2): a TensorArchive written
 * atomically by TrainingLoop. `signature` identifies the run (objective, configuration, initial
 * model, options, data or target); a checkpoint is resumed only by a run with the same signature.
 * Version 1 checkpoints (the trainers before the one training loop) are refused with a message
 * saying so; the models they hold can still be exported with modelFromCheckpoint.
 */
TensorArchive newCheckpoint(const std::string& signature);
/** Read a checkpoint; throws std::runtime_error if it is not one, has another version or another signature. */
TensorArchive readCheckpoint(const std::string& path, const std::string& signature);
/**
 * The model a training checkpoint holds (any objective, format version 1 or 2): its configuration
 * from the run signature, with the parameters of the best validation NLL so far where the run
 * validated, else the current ones. For looking at a run that is still going or was stopped before
 * its end; the checkpoint is only read. `fromBest` tells which parameters were taken, and
 * `progress` (JSON: "epoch" or "iteration", "best_validation_nll") where the run stood.
 */
std::shared_ptr<Model> modelFromCheckpoint(const std::string& path, bool* fromBest = nullptr,
                                           std::string* progress = nullptr);
/**
 * Store Adam's moments and step count and the gradient guard's norms in a checkpoint (the
 * parameters themselves are stored with the model's tensors).
 */
void storeOptimizerState(TensorArchive& archive, const AdamOptimizer& optimizer, const GradientGuard& guard);
/** Restore what storeOptimizerState stored, in place. */
void restoreOptimizerState(const TensorArchive& archive, const std::string& path, AdamOptimizer& optimizer,
                           GradientGuard& guard);

/** "[#####.....]": a progress bar of `width` characters filled to `fraction` (clamped to [0, 1]). */
std::string progressBar(double fraction, int width = 30);

/** Seconds as "m:ss". */
std::string formatDuration(double seconds);

/** Options of maximum-likelihood training; the defaults are the E-ACF paper's DW4/LJ13 settings. */
struct MaximumLikelihoodOptions {
    int epochs = 100;
    int batchSize = 32;
    double initialLearningRate = 2e-5;
    double peakLearningRate = 2e-4;
    double finalLearningRate = 2e-5;
    int warmupEpochs = 30;        ///< clamped to 30% of the run for short runs
    int gradientWindow = 100;
    double skipFactor = 10.0;
    double clipFactor = 2.0;
    double minLogQ = -1e4;        ///< samples with log q below this are masked out
    double timeLimit = 0;         ///< seconds; 0 means none. Training stops after the epoch that exceeds it.
    int validateEvery = 10;       ///< epochs between validations (and after the last epoch)
    int validationAugSamples = 20;
    int patience = 0;             ///< stop after this many validations without improvement; 0 disables
    /**
     * Rotate every training configuration by a random rotation each time it is used. Unset (the
     * default): on for models whose density is not rotation invariant (Model::rotationInvariant(),
     * e.g. the Non-E-ACF baseline).
     */
    std::optional<bool> randomRotations;
    uint64_t seed = 0;
    /**
     * Checkpoint file (empty: none). Written atomically every `checkpointEvery` epochs; if it exists
     * when training starts, training resumes from it exactly (same parameters, optimizer state,
     * random streams and history), provided it was written by a run with the same configuration,
     * options and data; otherwise run() throws.
     */
    std::string checkpointPath;
    int checkpointEvery = 1;
    /** Stop (as if killed) after this epoch; 0 runs to the end. For tests of resumption. */
    int stopAfterEpoch = 0;
};

/**
 * Options from a JSON object with snake_case keys (epochs, batch_size, initial_learning_rate,
 * peak_learning_rate, final_learning_rate, warmup_epochs, gradient_window, skip_factor,
 * clip_factor, min_log_q, time_limit, validate_every, validation_aug_samples, patience, seed,
 * random_rotations, checkpoint, checkpoint_every); missing keys keep their defaults, unknown keys
 * and wrong types throw std::invalid_argument.
 */
MaximumLikelihoodOptions maximumLikelihoodOptionsFromJson(const std::string& json);

/**
 * The maximum-likelihood objective: an iteration is an epoch over the training configurations in
 * a fresh random order, in batches; evaluations compute the validation set's mean marginal NLL,
 * which selects the model.
 */
class MaximumLikelihoodObjective : public TrainingObjective {
public:
    /**
     * @param train      training configurations [n, N, D] (centred here: their centroid is removed)
     * @param validation validation configurations [m, N, D] (may be empty: no model selection)
     */
    MaximumLikelihoodObjective(Model& model, torch::Tensor train, torch::Tensor validation,
                               const MaximumLikelihoodOptions& options);
    std::string name() const override { return "maximum-likelihood"; }
    std::string signature() const override;
    /** Lets the model derive its data statistics from the training configurations (Model::initialiseFromData). */
    void prepare(TrainingLoop& loop) override { loop.model().initialiseFromData(train); }
    void iterate(TrainingLoop& loop) override;
    bool selectsModels() const override { return validation.defined() && validation.size(0) > 0; }
    double evaluate(TrainingLoop& loop, TrainingReport& report) override;
    /** The loop's settings of a run with these options on n training configurations. */
    static TrainingLoopSettings loopSettings(const MaximumLikelihoodOptions& options, int64_t n);

private:
    torch::Tensor train, validation;
    MaximumLikelihoodOptions options;
    bool rotate;
};

/** Maximum-likelihood training of a model: the one training loop with the maximum-likelihood objective. */
class MaximumLikelihoodTrainer {
public:
    MaximumLikelihoodTrainer(std::shared_ptr<Model> model, torch::Tensor train, torch::Tensor validation,
                             MaximumLikelihoodOptions options);
    /**
     * Train; calls onEpoch after every epoch (and once for each epoch restored from a checkpoint,
     * with resumed = true). Restores the parameters with the best validation NLL.
     */
    std::vector<TrainingReport> run(const std::function<void(const TrainingReport&)>& onEpoch = {});

private:
    std::shared_ptr<Model> model;
    std::shared_ptr<MaximumLikelihoodObjective> objective;
    MaximumLikelihoodOptions options;
    int64_t numTrain;
};

}  // namespace OpenMMBG
