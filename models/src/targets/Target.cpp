#include "openmmbg/targets/Target.h"

namespace OpenMMBG {

std::pair<torch::Tensor, torch::Tensor> Target::energyAndForces(const torch::Tensor& x) {
    torch::Tensor xg = x.detach().requires_grad_(true);
    // The whole graph, including the sum, is built with gradients on, so callers may hold a
    // NoGradGuard.
    torch::AutoGradMode enable(true);
    torch::Tensor e = energy(xg);
    torch::Tensor grad = torch::autograd::grad({e.sum()}, {xg})[0];
    return {e.detach(), -grad};
}

}  // namespace OpenMMBG
