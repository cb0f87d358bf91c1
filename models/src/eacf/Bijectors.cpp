#include "openmmbg/eacf/Bijectors.h"

namespace OpenMMBG {

torch::Tensor centreOn(const torch::Tensor& z, int64_t slot) {
    return z - z.select(2, slot).mean(1, true).unsqueeze(2);
}

CouplingImpl::CouplingImpl(std::vector<int64_t> transformedSlots, std::vector<int64_t> conditioningSlots,
                           std::shared_ptr<ConditionerImpl> conditionerNet, std::shared_ptr<Projection> proj,
                           const std::vector<int>& headUnits, double randomInitScale)
    : conditioner(std::move(conditionerNet)), projection(std::move(proj)) {
    transformed = torch::tensor(transformedSlots, torch::kLong);
    conditioning = torch::tensor(conditioningSlots, torch::kLong);
    // Each transformed slot t takes its reference points from conditioning slot t mod m_in.
    std::vector<int64_t> anchors;
    for (size_t t = 0; t < transformedSlots.size(); t++)
        anchors.push_back(int64_t(t % conditioningSlots.size()));
    anchorSlots = torch::tensor(anchors, torch::kLong);
    register_module("conditioner", conditioner);
    const int m = int(transformedSlots.size());
    head = register_module("head", StableMLP(conditioner->numFeatures(), headUnits, m * projection->numParams()));
    torch::NoGradGuard guard;
    if (randomInitScale > 0) {
        head->finalLayer->weight.normal_(0.0, randomInitScale);
        head->finalLayer->bias.normal_(0.0, randomInitScale);
    } else {
        head->finalLayer->weight.zero_();
        head->finalLayer->bias.zero_();
    }
}

BijectorOutput CouplingImpl::apply(const torch::Tensor& z, bool inverse) {
    const int64_t B = z.size(0), N = z.size(1), D = z.size(3);
    const int64_t m = transformed.size(0);
    // The slot indices live on the CPU (Module::to(dtype) would convert buffers); on another
    // device they are copied per call, a few bytes.
    const torch::Tensor conditioningSlots = conditioning.to(z.device()), transformedSlots = transformed.to(z.device());
    torch::Tensor cond = z.index_select(2, conditioningSlots);
    torch::Tensor points = z.index_select(2, transformedSlots);
    ConditionerOutput features = conditioner->forward(cond);
    torch::Tensor params = head->forward(features.invariants).view({B, N, m, projection->numParams()});
    torch::Tensor vectors = features.vectors.view({B, N, m, projection->numVectors(), D});
    torch::Tensor anchors = cond.index_select(2, anchorSlots.to(z.device()));
    ProjectionResult r = projection->apply(points, anchors, vectors, params, inverse);
    return {z.index_copy(2, transformedSlots, r.points), r.logDet, r.aux};
}

ShiftCentreOfMassImpl::ShiftCentreOfMassImpl(int64_t centreSlot, Bijector innerBijector)
    : centreSlot(centreSlot), inner(std::move(innerBijector)) {
    register_module("inner", inner);
}

BijectorOutput ShiftCentreOfMassImpl::apply(const torch::Tensor& z, bool inverse) {
    torch::Tensor shifted = centreOn(z, centreSlot);
    BijectorOutput out = inverse ? inner->inverse(shifted) : inner->forward(shifted);
    out.z = centreOn(out.z, 0);
    return out;
}

}  // namespace OpenMMBG
