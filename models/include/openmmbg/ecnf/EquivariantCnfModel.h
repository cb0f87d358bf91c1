#pragma once
/**
 * The model family "ecnf": an E(n)-equivariant continuous normalizing flow (E-CNF) behind the
 * Model interface, trained simulation-free by (equivariant) flow matching (training/FlowMatching.h;
 * docs/ecnf.md).
 *
 * The flow is the ODE dx/dt = v(t, x) of an EGNN vector field (networks/EgnnVectorField.h) from
 * the base at t = 0, the standard Gaussian on the zero-centroid subspace, to the data at t = 1.
 * Densities follow the instantaneous change of variables d log p_t(x_t)/dt = -div v(t, x_t):
 *
 *   sample:  x0 ~ p0, integrate (x, L) from t = 0 to 1 with dL/dt = div v, log q(x1) = log p0(x0) - L(1)
 *   logProb: integrate (x, L) from t = 1 (x1, centred) to 0 with dL/dt = div v, log q(x1) = log p0(x0) + L(0)
 *
 * with L accumulated in float64 whatever the field's dtype. div v is the exact trace of the
 * N D x N D Jacobian ("divergence": "exact"; v is translation invariant with zero mean, so that
 * trace equals the trace on the zero-centroid subspace) or Hutchinson's estimate with one Gaussian
 * probe per integration ("hutchinson"). Log-densities are with respect to the Lebesgue measure of
 * the zero-centroid subspace, as every family's; logProb centres its input, so it is invariant to
 * translations, and (v being equivariant) to rotations, reflections and permutations of equal
 * particle types.
 *
 * Gradients: with grad mode on, the parameters' gradients flow through the solver's steps
 * (discretise-then-optimise); without it the divergence still uses autograd internally (it needs
 * no graph of the parameters). Not usable under c10::InferenceMode, which forbids autograd.
 *
 * No auxiliary variables: aux is [B, 0], log pi(aux|x) = 0, marginalLogProb is logProb.
 */
#include "openmmbg/ecnf/EquivariantCnfConfig.h"
#include "openmmbg/ecnf/ContinuousFlow.h"
#include "openmmbg/Model.h"
#include "openmmbg/networks/EgnnVectorField.h"

namespace OpenMMBG {

class EquivariantCnfModel : public Model {
public:
    explicit EquivariantCnfModel(const EquivariantCnfConfig& config);
    /** The family key of the configuration. */
    static const char* familyName() { return "ecnf"; }

    std::string family() const override { return familyName(); }
    std::string configJson() const override { return config_.toJson(); }
    int64_t numParticles() const override { return config_.numParticles; }
    int64_t dim() const override { return config_.dim; }
    torch::TensorOptions options() const override;
    void to(const torch::Device& device) override { field_->to(device); }

    /** baseToSample(sampleBase(n)). */
    ModelSample sample(int64_t n, torch::Generator& generator) override;
    /** log q(x) [B]; aux must be undefined or empty [B, 0]. */
    torch::Tensor logProb(const torch::Tensor& x, const torch::Tensor& aux) override;
    std::vector<int64_t> auxiliaryShape() const override { return {0}; }
    bool hasAuxiliary() const override { return false; }
    torch::Tensor sampleAuxiliary(const torch::Tensor& x, torch::Generator& generator) override;
    torch::Tensor logAuxiliaryTarget(const torch::Tensor& x, const torch::Tensor& aux) override;
    torch::Tensor marginalLogProb(const torch::Tensor& x, int64_t numAuxSamples, torch::Generator& generator) override;
    bool rotationInvariant() const override { return true; }
    /** {logProb, zeros}: the family has no training penalty. */
    ModelDensity logProbAndPenalty(const torch::Tensor& x, const torch::Tensor& aux) override;
    /**
     * The random draws of n samples [n, N D] (base points, then for "hutchinson" the probe [n, N D]):
     * drawn on `generator`'s device in float64 and moved, so a CPU generator gives the same samples
     * on every device.
     */
    torch::Tensor sampleBase(int64_t n, torch::Generator& generator) override;
    std::pair<ModelSample, torch::Tensor> baseToSample(const torch::Tensor& base) override;
    torch::nn::Module& module() override { return *field_; }
    std::vector<std::pair<std::string, torch::Tensor>> namedTensors() override;

    const EquivariantCnfConfig& config() const { return config_; }
    /** The vector field v(t, x). */
    EgnnVectorField& field() { return field_; }
    /** The vector field as a function (sharing the parameters), for ContinuousFlow.h. */
    VectorField vectorField();
    /** The statistics of the last sample/logProb call. */
    const IntegrationStatistics& lastIntegration() const { return last_; }
    /** The solver options from the configuration. */
    OdeOptions odeOptions() const;

private:
    EquivariantCnfConfig config_;
    EgnnVectorField field_{nullptr};
    IntegrationStatistics last_;
    torch::Generator probeGenerator_;  // Hutchinson probes of logProb, which takes no generator
};

}  // namespace OpenMMBG
