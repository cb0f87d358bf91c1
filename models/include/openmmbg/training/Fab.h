#pragma once
/**
 * The sampling side of FAB (flow annealed importance sampling bootstrap, Midgley et al. ICLR 2023;
 * arXiv:2208.01893; settings: docs/eacf-mapping.md#fab-settings): Hamiltonian Monte Carlo on the joint space
 * (x, a), annealed importance sampling (AIS) without resampling from the flow q to
 * p~^alpha q^(1 - alpha), and the prioritised replay buffer of AIS samples. It works for a model of
 * any family (Model.h): the joint space is (x, aux) with aux empty ([B, 0]) for families without
 * auxiliary variables.
 *
 * Shapes: x [B, N, D] with zero centroid (the mean over particles, unweighted), a [B, ...] (the
 * family's auxiliary shape, [B, N, A, D] for E-ACF), per-sample values [B]. Log-densities are with
 * respect to the Lebesgue measure of the zero-centroid subspace for x (as every family's) times that
 * of the auxiliary variables' space.
 */
#include "openmmbg/Model.h"
#include "openmmbg/targets/Target.h"
#include "openmmbg/io/TensorArchive.h"

#include <functional>
#include <memory>
#include <vector>

namespace OpenMMBG {

/** A log-density and its gradients at a batch of joint states; all tensors detached. */
struct JointEvaluation {
    torch::Tensor logProb;  ///< [B]
    torch::Tensor gradX;    ///< d logProb / dx [B, N, D]
    torch::Tensor gradA;    ///< d logProb / da [B, ...]
    /** Optional per-sample values [B] that follow HMC's accept/reject (AIS keeps log q and log p~ here). */
    std::vector<torch::Tensor> parts;
};

/** An (unnormalised) log-density on the joint space (x, a) with its gradient. */
class JointLogDensity {
public:
    virtual ~JointLogDensity() = default;
    virtual JointEvaluation evaluate(const torch::Tensor& x, const torch::Tensor& a) = 0;
};

/** The model's joint log q(x, a); gradients by autograd through the model (which must outlive this). */
class FlowJointDensity : public JointLogDensity {
public:
    explicit FlowJointDensity(Model& model) : model(model) {}
    JointEvaluation evaluate(const torch::Tensor& x, const torch::Tensor& a) override;

private:
    Model& model;
};

/**
 * The joint target log p~(x) + log pi(a|x) of energy-based training: p~(x) = exp(-U(x)/kT) from a
 * Target (energies and forces from one batched Target::energyAndForces call, so an OpenMM System
 * is evaluated once per state) and pi(a|x) the model's auxiliary target (the E-ACF's augmented
 * Gaussian; none for families without auxiliary variables), with its gradient by autograd. Evaluated
 * in the target's float64, returned in x's dtype. The model must outlive this.
 */
class TargetJointDensity : public JointLogDensity {
public:
    TargetJointDensity(std::shared_ptr<Target> target, Model& model) : target(std::move(target)), model(model) {}
    JointEvaluation evaluate(const torch::Tensor& x, const torch::Tensor& a) override;

private:
    std::shared_ptr<Target> target;
    Model& model;
};

/**
 * One HMC transition (Neal 2011) with unit mass: fresh Gaussian momenta, `numLeapfrog` leapfrog
 * steps of size `stepSize`, then a Metropolis accept/reject per sample. The momenta and gradients
 * of x are projected onto the zero-centre-of-mass subspace (their mean over particles is removed),
 * so x stays on it; a is unconstrained. A proposal whose log-density or energy is not finite is
 * rejected.
 *
 * `density` evaluates the log-density the kernel leaves invariant; `current` is its evaluation at
 * (x, a).
 */
struct HmcResult {
    torch::Tensor x, a;
    JointEvaluation evaluation;
    torch::Tensor accepted;  ///< [B] bool
};
HmcResult hmcStep(const std::function<JointEvaluation(const torch::Tensor&, const torch::Tensor&)>& density,
                  const torch::Tensor& x, const torch::Tensor& a, const JointEvaluation& current, double stepSize,
                  int numLeapfrog, torch::Generator& generator);

/** Options of AIS from q to p~^alpha q^(1 - alpha) (defaults: docs/eacf-mapping.md#fab-settings, DW4). */
struct AisOptions {
    int numIntermediate = 2;        ///< intermediate distributions (2 for DW4, 8 for LJ13)
    double alpha = 2.0;             ///< target exponent; 2 for FAB (min. variance of the alpha-divergence), 1 estimates Z
    int numLeapfrog = 5;            ///< leapfrog steps of the one HMC transition per intermediate distribution
    double initialStepSize = 1.0;   ///< HMC step size of every intermediate distribution at the start
    double targetAcceptance = 0.65; ///< step sizes grow when the mean acceptance exceeds this, else shrink
    double stepSizeFactor = 1.02;   ///< multiplicative step-size adaptation factor
};

struct AisResult {
    torch::Tensor x, a;         ///< final states
    torch::Tensor logWeights;   ///< log AIS weights [B] for the target p~^alpha q^(1 - alpha)
    torch::Tensor logQ;         ///< log q at the final states [B] (detached)
    std::vector<double> acceptance;  ///< mean HMC acceptance per intermediate distribution
};

/**
 * AIS without resampling: betas = linspace(0, 1, n + 2), log pi_beta = log q + beta alpha (log p~ -
 * log q) (= ((1-beta) + beta(1-alpha)) log q + beta alpha log p~), one HMC transition per
 * intermediate distribution, log w = sum_j (beta_j - beta_{j-1}) alpha (log p~ - log q) at the
 * state before transition j. E[exp(log w)] = integral of p~^alpha q^(1-alpha) (for alpha = 1, the
 * normalising constant Z of p~), for every number of intermediate distributions and step size.
 */
class AnnealedImportanceSampler {
public:
    explicit AnnealedImportanceSampler(const AisOptions& options = {});
    /**
     * Run AIS from states (x, a) drawn from `base` (the flow). Adapts the step sizes from the mean
     * acceptances when `adaptStepSizes` (after the pass, so the pass itself is a valid AIS).
     */
    AisResult run(JointLogDensity& base, JointLogDensity& target, const torch::Tensor& x, const torch::Tensor& a,
                  torch::Generator& generator, bool adaptStepSizes = true);
    /**
     * Draw n states from `flow` (without gradients) and run AIS from them, with the flow's joint
     * log q as the base: one AIS pass of FAB, or of the ESS of AIS.
     */
    AisResult runFromFlow(Model& model, JointLogDensity& target, int64_t n,
                          torch::Generator& generator, bool adaptStepSizes = true);
    const AisOptions& options() const { return opts; }
    /** One step size per intermediate distribution. */
    std::vector<double> stepSizes;

private:
    AisOptions opts;
};

/**
 * The prioritised replay buffer of FAB: a FIFO of AIS samples (x, a) with their log AIS weights and
 * the log q they were weighted with. sample() draws without replacement with probability
 * proportional to exp(log w) (sequentially, i.e. Plackett-Luce; implemented by the Gumbel-top-k
 * trick); adjust() re-weights drawn samples after the flow changed.
 */
class PrioritisedReplayBuffer {
public:
    /** @param capacity maximum number of samples (FAB: 512 batches); the oldest are overwritten */
    explicit PrioritisedReplayBuffer(int64_t capacity);
    /** Append samples (x [n, N, D], a [n, N, A, D], logW [n], logQ [n]); non-finite log w count as -inf. */
    void add(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& logW, const torch::Tensor& logQ);
    struct Batch {
        torch::Tensor x, a, logQ, indices;  ///< logQ: the stored log q_old; indices into the buffer
    };
    /** Draw n distinct samples (n <= size()) with probability proportional to their weights. */
    Batch sample(int64_t n, torch::Generator& generator) const;
    /**
     * After an update: log w += (1 - alpha) (logQNew - log q_old) and log q_old = logQNew for the
     * samples `indices` (alpha of the AIS target p~^alpha q^(1-alpha)).
     */
    void adjust(const torch::Tensor& indices, const torch::Tensor& logQNew, double alpha);
    int64_t size() const { return count; }
    int64_t capacity() const { return cap; }
    const torch::Tensor& logWeights() const { return logW; }
    const torch::Tensor& logQ() const { return logQOld; }
    /** Store / restore the contents under "<prefix>/..." in a checkpoint. */
    void store(TensorArchive& archive, const std::string& prefix) const;
    void restore(const TensorArchive& archive, const std::string& prefix, const std::string& source);

private:
    int64_t cap, count = 0, next = 0;
    torch::Tensor x, a, logW, logQOld;
};

}  // namespace OpenMMBG
