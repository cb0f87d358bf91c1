#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"

#include <stdexcept>

namespace OpenMMBG {

ModelSample AugmentedCouplingFlowModel::sample(int64_t n, torch::Generator& generator) {
    FlowSample s = flow_->sample(n, generator);
    return {s.x, s.a, s.logQ};
}

ModelDensity AugmentedCouplingFlowModel::logProbAndPenalty(const torch::Tensor& x, const torch::Tensor& aux) {
    FlowDensity d = flow_->logProbWithAux(x, aux);
    return {d.logQ, flow_->config().auxLossWeight * d.aux};
}

torch::Tensor AugmentedCouplingFlowModel::sampleBase(int64_t n, torch::Generator& generator) {
    const FlowConfig& c = flow_->config();
    torch::Tensor x0 = CentreOfMassFreeGaussian::sample(n, c.numParticles, c.dim, generator, flow_->options());
    return joinState(x0, flow_->sampleAugmented(x0, generator));
}

std::pair<ModelSample, torch::Tensor> AugmentedCouplingFlowModel::baseToSample(const torch::Tensor& z0) {
    const FlowConfig& c = flow_->config();
    BijectorOutput out = flow_->forwardMap(z0);
    ModelSample s{out.z.select(2, 0), out.z.narrow(2, 1, c.numAug), flow_->baseLogProb(z0) - out.logDet};
    return {s, c.auxLossWeight * out.aux};
}

std::vector<std::pair<std::string, torch::Tensor>> AugmentedCouplingFlowModel::namedTensors() {
    // Parameters only: everything else the flow holds follows from its configuration.
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (auto& item : flow_->named_parameters())
        tensors.emplace_back(item.key(), item.value());
    return tensors;
}

AugmentedCouplingFlow& augmentedCouplingFlowOf(Model& model, const std::string& who) {
    auto* eacf = dynamic_cast<AugmentedCouplingFlowModel*>(&model);
    if (eacf == nullptr)
        throw std::invalid_argument(who + ": needs a model of family \"eacf\" (got \"" + model.family() + "\")");
    return eacf->flow();
}

}  // namespace OpenMMBG
