#pragma once
/**
 * The model family "ic": the internal-coordinate flow (InternalCoordinateFlow) behind the Model
 * interface, as a density on Cartesian configurations x [B, N, 3] with a uniform orientation.
 *
 * sample(n): z ~ q_z, R ~ Haar on SO(3), x = R toCanonical(z) with the centroid (the mean over
 * atoms) removed. logProb(x) = log q_z(z(x)) - log J(z(x)) - log(8 pi^2): the density of x on the
 * fibre of configurations with a fixed centroid (docs/internal-coordinates.md), invariant to
 * rotations and translations of x, which is what the Force's Metropolis-Hastings rule needs.
 *
 * The valid domain. The flow's bonds and angles live on the real line, but only bonds > 0 and
 * angles in (0, pi) (and finite dihedrals) are internal coordinates of a configuration. Samples and
 * inputs outside that domain get log q = -inf, never NaN: such a sample is no proposal of the
 * model's density on valid configurations (its x is the image of another, valid z) and must be
 * rejected; then the mass outside the domain only adds rejections and the move stays exact
 * (docs/internal-coordinates.md). Inputs outside it are degenerate (coincident or collinear atoms,
 * non-finite positions).
 *
 * No auxiliary variables: aux is [B, 0], log pi(aux|x) = 0 and marginalLogProb is logProb.
 */
#include "openmmbg/ic/InternalCoordinateFlow.h"
#include "openmmbg/Model.h"

namespace OpenMMBG {

class InternalCoordinateFlowModel : public Model {
public:
    explicit InternalCoordinateFlowModel(InternalCoordinateFlow flow) : flow_(std::move(flow)) {}
    /** The family key of the configuration. */
    static const char* familyName() { return "ic"; }

    std::string family() const override { return familyName(); }
    std::string configJson() const override { return flow_->config().toJson(); }
    int64_t numParticles() const override { return flow_->config().numParticles; }
    int64_t dim() const override { return 3; }
    torch::TensorOptions options() const override { return flow_->options(); }
    void to(const torch::Device& device) override { flow_->to(device); }

    /** baseToSample(sampleBase(n)). */
    ModelSample sample(int64_t n, torch::Generator& generator) override;
    /** log q(x) [B]; aux must be undefined or empty [B, 0]. */
    torch::Tensor logProb(const torch::Tensor& x, const torch::Tensor& aux) override;
    std::vector<int64_t> auxiliaryShape() const override { return {0}; }
    bool hasAuxiliary() const override { return false; }
    torch::Tensor sampleAuxiliary(const torch::Tensor& x, torch::Generator& generator) override;
    torch::Tensor logAuxiliaryTarget(const torch::Tensor& x, const torch::Tensor& aux) override;
    torch::Tensor marginalLogProb(const torch::Tensor& x, int64_t numAuxSamples, torch::Generator& generator) override;
    /** log q(x) depends on the internal coordinates only. */
    bool rotationInvariant() const override { return true; }
    /** {logProb, zeros}: the family has no training penalty. */
    ModelDensity logProbAndPenalty(const torch::Tensor& x, const torch::Tensor& aux) override;
    /** fitStatistics(x) unless the statistics are fitted already (a trained or loaded model keeps its own). */
    void initialiseFromData(const torch::Tensor& x) override;
    torch::nn::Module& module() override { return *flow_; }
    /**
     * The parameters and the fixed statistics (bond_mean, bond_std, angle_mean, angle_std,
     * dihedral_shift, statistics_fitted).
     */
    std::vector<std::pair<std::string, torch::Tensor>> namedTensors() override;

    /**
     * The random draws of n samples [n, D + 9]: the flow's base points [n, D] (D = 3N - 6), then
     * the orientations R, drawn uniformly on SO(3), row-major. The noise comes from `generator`'s
     * device and moves to the model's, so a CPU generator gives the same samples on every device.
     */
    torch::Tensor sampleBase(int64_t n, torch::Generator& generator) override;
    /**
     * The samples of base draws [n, D + 9] and their penalty (zeros); differentiable in the
     * parameters, so a loss can be recomputed from kept draws.
     */
    std::pair<ModelSample, torch::Tensor> baseToSample(const torch::Tensor& base) override;

    /** Set the standardisation from configurations x [n, N, 3] (see InternalCoordinateFlowImpl::fitStatistics). */
    void fitStatistics(const torch::Tensor& x) { flow_->fitStatistics(x); }
    /** The flow on internal coordinates. */
    InternalCoordinateFlow& flow() { return flow_; }

private:
    /** log q(x) from internal coordinates: -inf outside the valid domain (see the header comment). */
    torch::Tensor logProbOf(const InternalCoordinates& ic, const torch::Tensor& logQz) const;
    InternalCoordinateFlow flow_;
};

}  // namespace OpenMMBG
