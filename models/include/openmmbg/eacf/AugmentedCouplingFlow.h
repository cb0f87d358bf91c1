#pragma once
/**
 * The SE(3)-equivariant augmented coupling flow (E-ACF, Midgley et al. 2023) and its Non-E-ACF
 * baseline: a base distribution on (x, a) composed with blocks of couplings.
 *
 * Shapes: x [B, N, D] positions, a [B, N, A, D] augmented variables, log-densities [B].
 * Densities of x are with respect to the Lebesgue measure of the zero-centre-of-mass subspace
 * (inputs are centred on the centre of mass of x first).
 */
#include "openmmbg/eacf/Bijectors.h"
#include "openmmbg/distributions/Distributions.h"
#include "openmmbg/eacf/FlowConfig.h"

namespace OpenMMBG {

struct FlowSample {
    torch::Tensor x;     ///< [n, N, D], zero centre of mass
    torch::Tensor a;     ///< [n, N, A, D]
    torch::Tensor logQ;  ///< joint log q(x, a) [n]
};

struct FlowDensity {
    torch::Tensor logQ;  ///< joint log q(x, a) [B]
    torch::Tensor aux;   ///< collinearity loss averaged over couplings [B] (zeros when none)
};

class AugmentedCouplingFlowImpl : public torch::nn::Module {
public:
    explicit AugmentedCouplingFlowImpl(const FlowConfig& config);
    const FlowConfig& config() const { return cfg; }
    /** The dtype (config "dtype") and device of the flow's parameters. */
    torch::TensorOptions options() const;

    /** Draw n samples (x, a) ~ q with their joint log-density. */
    FlowSample sample(int64_t n, torch::Generator& generator);
    /** Joint log q(x, a) with the auxiliary loss; x and a are centred on the CoM of x first. */
    FlowDensity logProbWithAux(const torch::Tensor& x, const torch::Tensor& a);
    /** Joint log q(x, a). */
    torch::Tensor logProb(const torch::Tensor& x, const torch::Tensor& a) { return logProbWithAux(x, a).logQ; }
    /**
     * Marginal log q(x) by importance sampling over a (paper eq. 21):
     * logsumexp_k [log q(x, a_k) - log pi(a_k|x)] - log K with a_k ~ pi(a|x).
     * @param batchSize number of (x, a_k) pairs per flow call
     */
    torch::Tensor marginalLogProb(const torch::Tensor& x, int64_t numAugSamples, torch::Generator& generator,
                                  int64_t batchSize = 256);
    /** The augmented target log pi(a|x) (x centred on its CoM, a shifted with it). */
    torch::Tensor logAugmentedTarget(const torch::Tensor& x, const torch::Tensor& a) const;
    /** Draw a ~ pi(a|x). */
    torch::Tensor sampleAugmented(const torch::Tensor& x, torch::Generator& generator) const;

    /** Map a base state z [B, N, 1 + A, D] to data space. */
    BijectorOutput forwardMap(const torch::Tensor& z) { return applyLayers(z, false); }
    /** Map a data state to the base. */
    BijectorOutput inverseMap(const torch::Tensor& z) { return applyLayers(z, true); }
    /** The bijectors, in forward order. */
    const std::vector<Bijector>& bijectors() const { return layers; }
    /** log density of the base at state z. */
    torch::Tensor baseLogProb(const torch::Tensor& z) const;

private:
    BijectorOutput applyLayers(const torch::Tensor& z, bool inverse);
    FlowConfig cfg;
    AugmentedGaussian augmented;
    std::vector<Bijector> layers;
};
TORCH_MODULE(AugmentedCouplingFlow);

/** Combine x [B, N, D] and a [B, N, A, D] into the state [B, N, 1 + A, D]. */
torch::Tensor joinState(const torch::Tensor& x, const torch::Tensor& a);

}  // namespace OpenMMBG
