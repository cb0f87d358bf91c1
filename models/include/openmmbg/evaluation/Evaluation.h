#pragma once
/**
 * Estimators used to evaluate a flow against a target (docs/eacf-mapping.md#estimator-definitions). Importance
 * weights are on the augmented space: log w = log p~(x) + log pi(a|x) - log q(x, a), with
 * log p~(x) = -U(x)/kT from the target.
 */
#include "openmmbg/training/Fab.h"
#include "openmmbg/Model.h"
#include "openmmbg/targets/Target.h"

#include <memory>

namespace OpenMMBG {

/** Kish effective sample size as a fraction of n: 1 / (n sum softmax(log w)^2). NaN weights count as zero. */
double effectiveSampleSizeFraction(const torch::Tensor& logWeights);

/**
 * Forward ESS fraction from weights of samples of the target: 1 / (mean(w) mean(1/w)); independent
 * of the normalising constant.
 */
double forwardEffectiveSampleSizeFraction(const torch::Tensor& logWeights);

/** log w for (x, a) [B]. */
torch::Tensor logImportanceWeights(Model& model, Target& target, const torch::Tensor& x,
                                   const torch::Tensor& a, const torch::Tensor& logQ);

/** Reverse ESS fraction on n flow samples, drawn in batches. Also returns the log weights. */
std::pair<double, torch::Tensor> reverseEss(Model& model, Target& target, int64_t n,
                                            torch::Generator& generator, int64_t batchSize = 1000);

/** Forward ESS fraction on target samples x [m, N, D] (one a ~ pi(a|x) each). */
std::pair<double, torch::Tensor> forwardEss(Model& model, Target& target, const torch::Tensor& x,
                                            torch::Generator& generator, int64_t batchSize = 1000);

/**
 * ESS fraction of annealed importance sampling from the flow to the target itself (no resampling)
 * on n flow samples, run in passes of up to batchSize. `sampler` must have alpha = 1, so that the
 * weights estimate Z. With adaptStepSizes its step sizes adapt between passes (each pass runs at
 * fixed step sizes, so every weight stays unbiased) and hold the adapted values afterwards.
 * Returns the ESS fraction (unclipped) and the log AIS weights [n].
 */
std::pair<double, torch::Tensor> aisEss(Model& model, const std::shared_ptr<Target>& target, int64_t n,
                                        AnnealedImportanceSampler& sampler, torch::Generator& generator,
                                        int64_t batchSize, bool adaptStepSizes);

/** The standard evaluation of a flow on test data (what `openmmbg evaluate` reports). */
struct EvaluationResult {
    double nll;          ///< mean over test points of -log q(x), marginal estimator with K augmented samples
    double nllSem;       ///< standard error of that mean over test points
    double reverseEss;   ///< fraction in [0, 1], unclipped
    double forwardEss;   ///< fraction in [0, 1], unclipped
    /** log Z of the target by importance sampling with the flow's samples (the reverse-ESS weights). */
    double logZ;
    /**
     * E_p[U/kT] (mean over the test points) + log Z: the NLL of a perfect model, the floor under nll
     * (same density conventions: zero-CoM positions).
     */
    double nllFloor;
    int64_t numTest, numAugSamples, numEssSamples;
    /** JSON object with keys nll, nll_sem, reverse_ess, forward_ess, log_z, nll_floor, num_test, num_aug_samples, num_ess_samples. */
    std::string toJson() const;
};

/**
 * Mean and standard error over the points x [n, N, D] of -log q(x) (the marginal estimator with
 * numAugSamples auxiliary draws for augmented families; exact otherwise).
 */
std::pair<double, double> marginalNll(Model& model, const torch::Tensor& x, int numAugSamples, torch::Generator& generator);

/** NLL (K augmented samples), reverse ESS (numEssSamples flow samples) and forward ESS on `test`. */
EvaluationResult evaluateFlow(Model& model, Target& target, const torch::Tensor& test,
                              int numAugSamples, int64_t numEssSamples, uint64_t seed);

}  // namespace OpenMMBG
