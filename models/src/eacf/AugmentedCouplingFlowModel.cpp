#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"

#include <stdexcept>

namespace OpenMMBG {

ModelSample AugmentedCouplingFlowModel::sample(int64_t n, torch::Generator& generator) {
    FlowSample s = flow_->sample(n, generator);
    return {s.x, s.a, s.logQ};
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
