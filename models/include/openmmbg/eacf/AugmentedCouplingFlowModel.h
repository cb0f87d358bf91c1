#pragma once
/**
 * The model family "eacf": the E-ACF and Non-E-ACF augmented coupling flows (AugmentedCouplingFlow)
 * behind the Model interface. The auxiliary variables are the augmented variables a [B, N, A, D]
 * with pi(a|x) the isotropic Gaussian around x of scale "aug_scale".
 */
#include "openmmbg/eacf/AugmentedCouplingFlow.h"
#include "openmmbg/Model.h"

namespace OpenMMBG {

class AugmentedCouplingFlowModel : public Model {
public:
    explicit AugmentedCouplingFlowModel(AugmentedCouplingFlow flow) : flow_(std::move(flow)) {}
    /** The family key of the configuration. */
    static const char* familyName() { return "eacf"; }

    std::string family() const override { return familyName(); }
    std::string configJson() const override { return flow_->config().toJson(); }
    int64_t numParticles() const override { return flow_->config().numParticles; }
    int64_t dim() const override { return flow_->config().dim; }
    torch::TensorOptions options() const override { return flow_->options(); }
    void to(const torch::Device& device) override { flow_->to(device); }

    ModelSample sample(int64_t n, torch::Generator& generator) override;
    torch::Tensor logProb(const torch::Tensor& x, const torch::Tensor& aux) override { return flow_->logProb(x, aux); }
    std::vector<int64_t> auxiliaryShape() const override {
        const FlowConfig& c = flow_->config();
        return {c.numParticles, c.numAug, c.dim};
    }
    bool hasAuxiliary() const override { return true; }
    torch::Tensor sampleAuxiliary(const torch::Tensor& x, torch::Generator& generator) override {
        return flow_->sampleAugmented(x, generator);
    }
    torch::Tensor logAuxiliaryTarget(const torch::Tensor& x, const torch::Tensor& aux) override {
        return flow_->logAugmentedTarget(x, aux);
    }
    torch::Tensor marginalLogProb(const torch::Tensor& x, int64_t numAuxSamples, torch::Generator& generator) override {
        return flow_->marginalLogProb(x, numAuxSamples, generator);
    }
    bool rotationInvariant() const override { return flow_->config().projection != "none"; }
    ModelDensity logProbAndPenalty(const torch::Tensor& x, const torch::Tensor& aux) override;
    /** z0 = (x0, a0) [n, N, 1 + A, D]: x0 from the zero-CoM Gaussian, a0 ~ pi(a|x0). */
    torch::Tensor sampleBase(int64_t n, torch::Generator& generator) override;
    std::pair<ModelSample, torch::Tensor> baseToSample(const torch::Tensor& base) override;
    torch::nn::Module& module() override { return *flow_; }
    std::vector<std::pair<std::string, torch::Tensor>> namedTensors() override;

    /** The flow itself, for E-ACF-specific code (its trainers and FAB's joint-space sampler). */
    AugmentedCouplingFlow& flow() { return flow_; }

private:
    AugmentedCouplingFlow flow_;
};

/**
 * The augmented coupling flow of a model of family "eacf". Throws std::invalid_argument naming
 * `who` (the operation that needs it) for other families.
 */
AugmentedCouplingFlow& augmentedCouplingFlowOf(Model& model, const std::string& who);

}  // namespace OpenMMBG
