#pragma once
/**
 * Energy-based training of an augmented coupling flow against an unnormalised target p~(x), with
 * no samples of the target (FAB, docs/eacf-mapping.md#fab-settings):
 *
 *  - "fab": flow annealed importance sampling bootstrap with a prioritised replay buffer. Each
 *    iteration runs AIS from q to p~^alpha q^(1-alpha) on one batch of flow samples, adds the AIS
 *    samples to the buffer, then makes `updatesPerIteration` gradient updates on buffer batches
 *    drawn without replacement in proportion to their AIS weights, with loss
 *    -mean(min(exp((1-alpha)(sg(log q) - log q_old)), w_max) log q) + w_aux aux.
 *  - "reverse-kl": loss mean(log q(x, a) - log p~(x) - log pi(a|x)) on reparameterised flow samples
 *    (+ w_aux aux); one gradient update per iteration.
 *
 * The joint target is p~(x) pi(a|x) with pi the flow's augmented Gaussian. Adam, the warmup-cosine
 * learning rate, the gradient guard, per-sample masking and checkpoints are those of maximum
 * likelihood training (Training.h).
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

/** Progress of energy-based training, every `reportEvery` iterations (and at the last). */
struct EnergyTrainingReport {
    int iteration;                 ///< 1-based
    int totalIterations;
    double loss;                   ///< mean loss of the updates since the previous report
    double learningRate;
    int skippedSteps;              ///< skipped gradient updates since the previous report
    std::vector<double> stepSizes; ///< HMC step sizes per intermediate distribution (fab)
    std::vector<double> acceptance;  ///< mean HMC acceptance per intermediate distribution since the previous report (fab)
    double aisLogWeightMean = std::numeric_limits<double>::quiet_NaN();  ///< mean finite AIS log w of the last pass (fab)
    double reverseEss = std::numeric_limits<double>::quiet_NaN();  ///< flow reverse ESS fraction; NaN when not evaluated
    double aisEss = std::numeric_limits<double>::quiet_NaN();      ///< ESS fraction of AIS with alpha = 1; NaN when not evaluated
    int64_t bufferSize = 0;
    double elapsed;                ///< seconds of training so far, summed over resumed runs
    double eta;                    ///< estimated seconds left
    bool resumed = false;          ///< restored from a checkpoint, not run now
};

/** One progress line: bar, iteration, loss, ESS, step sizes and acceptance, elapsed time and ETA. */
std::string formatEnergyTrainingReport(const EnergyTrainingReport& report);
/** JSON object of a report (the metrics-log line); NaN values are left out. */
std::string energyTrainingReportToJson(const EnergyTrainingReport& report);

class EnergyTrainer {
public:
    /**
     * @param target   the unnormalised target p~(x) = exp(-U(x)/kT) (its energies are evaluated in
     *                 batches of batchSize)
     * @param targetId identifies the target in the checkpoint signature (default: target->name();
     *                 give e.g. a hash of a System's XML so a checkpoint is not resumed against
     *                 another System)
     */
    EnergyTrainer(AugmentedCouplingFlow flow, std::shared_ptr<Target> target, EnergyTrainingOptions options,
                  std::string targetId = "");
    /**
     * Train; calls onReport at every report (and once for each report restored from a checkpoint,
     * with resumed = true), and onBufferFill(filled, total) after each AIS batch of FAB's replay-buffer
     * pre-fill (before the first iteration; it can take minutes). The flow keeps the final parameters.
     */
    std::vector<EnergyTrainingReport> run(const std::function<void(const EnergyTrainingReport&)>& onReport = {},
                                          const std::function<void(int, int)>& onBufferFill = {});
    /**
     * The FAB loss of one buffer batch with gradients (zeroed first): per-sample
     * -min(exp((1-alpha)(sg(log q) - logQOld)), w_max) log q + w_aux aux, masked. Returns
     * {mean loss of kept samples (NaN if none), log q of the batch (detached)}.
     */
    std::pair<double, torch::Tensor> fabStep(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& logQOld);
    /** The reverse-KL loss of one batch of fresh flow samples with gradients; returns the mean loss of kept samples. */
    double reverseKlStep(torch::Generator& generator);

private:
    AugmentedCouplingFlow flow;
    std::shared_ptr<Target> target;
    EnergyTrainingOptions options;
    std::string targetId;
};

}  // namespace OpenMMBG
