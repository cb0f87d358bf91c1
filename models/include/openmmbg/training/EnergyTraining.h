#pragma once
/**
 * Energy-based training of a model against an unnormalised target p~(x), with no samples of the
 * target (FAB, docs/eacf-mapping.md#fab-settings): two objectives of the one training loop
 * (TrainingLoop.h).
 *
 *  - "fab" (every family; its sampler works on the joint space (x, a), Fab.h): flow annealed
 *    importance sampling bootstrap with a prioritised replay buffer. Each
 *    iteration runs AIS from q to p~^alpha q^(1-alpha) on one batch of flow samples, adds the AIS
 *    samples to the buffer, then makes `updatesPerIteration` gradient updates on buffer batches
 *    drawn without replacement in proportion to their AIS weights, with loss
 *    -mean(min(exp((1-alpha)(sg(log q) - log q_old)), w_max) log q) + w_aux aux.
 *  - "reverse-kl" (every family): loss mean(log q(x, a) - log p~(x) - log pi(a|x)) on
 *    reparameterised model samples (+ the family's penalty); one gradient update per iteration.
 *
 * The joint target is p~(x) pi(a|x) with pi the model's auxiliary target (none for families
 * without auxiliary variables).
 */
#include "openmmbg/training/Fab.h"
#include "openmmbg/training/Training.h"

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace OpenMMBG {

struct EnergyTrainingOptions {
    std::string objective = "fab";  ///< "fab" or "reverse-kl"
    int iterations = 20000;         ///< AIS passes (fab) or gradient updates (reverse-kl); DW4 20000, LJ13 14000
    int batchSize = 128;            ///< samples per AIS pass and per gradient update (DW4 128, LJ13 1024)
    // AIS and HMC (fab only)
    double alpha = 2.0;             ///< AIS target p~^alpha q^(1-alpha)
    int numIntermediate = 2;        ///< intermediate AIS distributions (DW4 2, LJ13 8)
    int numLeapfrog = 5;            ///< leapfrog steps of the one HMC transition per intermediate distribution
    double initialStepSize = 1.0;   ///< initial HMC step size (length units), adapted by x/÷ 1.02 towards 65% acceptance
    // Replay buffer (fab only)
    int updatesPerIteration = 8;    ///< gradient updates per AIS pass
    int bufferMaxBatches = 512;     ///< capacity, in batches
    int bufferMinBatches = 64;      ///< filled with AIS samples of the initial flow before training
    double maxImportanceWeight = 10;  ///< clip of exp((1-alpha)(log q - log q_old)) in the loss
    // Optimizer (as MaximumLikelihoodOptions), in gradient updates
    double initialLearningRate = 2e-5;
    double peakLearningRate = 2e-4;
    double finalLearningRate = 2e-5;
    /** Warmup length in iterations; -1: 30% of the run (as maximum likelihood's 30 of 100 epochs). */
    int warmupIterations = -1;
    int gradientWindow = 100;
    double skipFactor = 10.0;
    double clipFactor = 2.0;
    double minLogQ = -1e4;          ///< samples with log q below this are masked out
    // Monitoring
    int reportEvery = 100;          ///< iterations between reports (progress line, metrics line)
    int evaluateEvery = 1000;       ///< iterations between evaluations (reverse ESS, AIS ESS), each also a report, and after the last; 0: never
    int numEssSamples = 10000;      ///< flow samples of the reverse ESS (and AIS runs of the alpha = 1 ESS)
    bool aisEss = true;             ///< at evaluations also report the ESS of AIS with alpha = 1 (fab only)
    double timeLimit = 0;           ///< seconds; 0: none. Stops after the iteration that exceeds it (with a checkpoint).
    uint64_t seed = 0;
    /**
     * Checkpoint file (empty: none), written atomically every `checkpointEvery` iterations and when
     * training stops; holds parameters, Adam state, gradient-guard window, replay buffer, HMC step
     * sizes, random streams, iteration and report history. If it exists when training starts,
     * training resumes from it exactly, provided it was written by a run with the same configuration,
     * options and target; otherwise run() throws.
     */
    std::string checkpointPath;
    int checkpointEvery = 100;
    /** Stop (as if killed) after this iteration; 0 runs to the end. For tests of resumption. */
    int stopAfterIteration = 0;
};

/**
 * Options from a JSON object with snake_case keys (objective, iterations, batch_size, alpha,
 * num_intermediate, num_leapfrog, initial_step_size, updates_per_iteration, buffer_max_batches,
 * buffer_min_batches, max_importance_weight, initial_learning_rate, peak_learning_rate,
 * final_learning_rate, warmup_iterations, gradient_window, skip_factor, clip_factor, min_log_q,
 * report_every, evaluate_every, num_ess_samples, ais_ess, time_limit, seed, checkpoint,
 * checkpoint_every); missing keys keep their defaults, unknown keys, wrong types and invalid values
 * throw std::invalid_argument.
 */
EnergyTrainingOptions energyTrainingOptionsFromJson(const std::string& json);

/** The FAB objective: AIS passes into a prioritised replay buffer, several updates per pass on its samples. */
class FabObjective : public TrainingObjective {
public:
    /**
     * @param model    the model trained (it must outlive this objective)
     * @param targetId identifies the target in the run signature
     */
    FabObjective(Model& model, std::shared_ptr<Target> target, const EnergyTrainingOptions& options, std::string targetId);
    std::string name() const override { return "fab"; }
    std::string signature() const override;
    /** Fills the replay buffer with AIS samples of the initial flow (calls onBufferFill(filled, total) per batch). */
    void prepare(TrainingLoop& loop) override;
    void iterate(TrainingLoop& loop) override;
    void completeReport(TrainingReport& report) override;
    double evaluate(TrainingLoop& loop, TrainingReport& report) override;
    void store(TensorArchive& archive) const override;
    void restore(const TensorArchive& archive, const std::string& path) override;
    std::function<void(int, int)> onBufferFill;

private:
    Model& model;
    std::shared_ptr<Target> target;
    EnergyTrainingOptions options;
    std::string targetId;
    TargetJointDensity joint;
    AisOptions aisOptions;
    AnnealedImportanceSampler ais;
    PrioritisedReplayBuffer buffer;
    // Since the last report: acceptance sums per intermediate distribution and the AIS passes they cover.
    std::vector<double> acceptanceSums;
    int passes = 0;
    double lastLogWeightMean = std::numeric_limits<double>::quiet_NaN();
};

/** The reverse-KL objective: one update per iteration on fresh reparameterised samples. */
class ReverseKlObjective : public TrainingObjective {
public:
    ReverseKlObjective(std::shared_ptr<Target> target, const EnergyTrainingOptions& options, std::string targetId);
    std::string name() const override { return "reverse-kl"; }
    std::string signature() const override;
    void iterate(TrainingLoop& loop) override;
    double evaluate(TrainingLoop& loop, TrainingReport& report) override;

private:
    std::shared_ptr<Target> target;
    EnergyTrainingOptions options;
    std::string targetId;
};

/** The loop's settings of an energy-based run with these options. */
TrainingLoopSettings energyTrainingLoopSettings(const EnergyTrainingOptions& options);

/** Energy-based training of a model: the one training loop with the FAB or the reverse-KL objective. */
class EnergyTrainer {
public:
    /**
     * @param target   the unnormalised target p~(x) = exp(-U(x)/kT) (its energies are evaluated in
     *                 batches of batchSize)
     * @param targetId identifies the target in the checkpoint signature (default: target->name();
     *                 give e.g. a hash of a System's XML so a checkpoint is not resumed against
     *                 another System)
     * Throws std::invalid_argument if the target and the model differ in particles or dimensions.
     */
    EnergyTrainer(std::shared_ptr<Model> model, std::shared_ptr<Target> target, EnergyTrainingOptions options,
                  std::string targetId = "");
    /**
     * Train; calls onReport at every report (and once for each report restored from a checkpoint,
     * with resumed = true), and onBufferFill(filled, total) after each AIS batch of FAB's replay-buffer
     * pre-fill (before the first iteration; it can take minutes). The model keeps the final parameters.
     */
    std::vector<TrainingReport> run(const std::function<void(const TrainingReport&)>& onReport = {},
                                    const std::function<void(int, int)>& onBufferFill = {});

private:
    std::shared_ptr<Model> model;
    std::shared_ptr<TrainingObjective> objective;
    EnergyTrainingOptions options;
};

}  // namespace OpenMMBG
