#include "openmmbg/Target.h"

namespace OpenMMBG {

std::pair<torch::Tensor, torch::Tensor> Target::energyAndForces(const torch::Tensor& x) {
    torch::Tensor xg = x.detach().requires_grad_(true);
    torch::Tensor e;
    {
        torch::AutoGradMode enable(true);
        e = energy(xg);
    }
    torch::Tensor grad = torch::autograd::grad({e.sum()}, {xg})[0];
    return {e.detach(), -grad};
}

}  // namespace OpenMMBG
