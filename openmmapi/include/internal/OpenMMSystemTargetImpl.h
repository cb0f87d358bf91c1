#pragma once
/**
 * The LibTorch side of OpenMMSystemTarget: an OpenMMBG::Target (models/include/openmmbg/targets/Target.h)
 * whose reduced energies U(x)/kT are differentiable, so a flow can be trained against an OpenMM
 * System. Internal header: it includes LibTorch.
 */
#include "OpenMMSystemTarget.h"
#include "openmmbg/targets/Target.h"

#include <memory>
#include <string>
#include <utility>

namespace OpenMMBG {

/**
 * Target over the selected particles of an OpenMMSystemTarget, in nm.
 *
 * Shapes: x [B, N, 3] (any floating dtype, any device: it is evaluated in float64 on the CPU);
 * energy(x) [B] and forces [B, N, 3] = -dU/dx / kT, returned in x's dtype and on x's device.
 *
 * energy(x) is an autograd function when grad mode is on and x requires grad: the forward pass
 * evaluates energies and forces through the Context pool and saves the forces; the backward pass
 * returns -forces / kT * grad_output. It is differentiable once (no second derivatives).
 * Configurations whose energy is not finite have energy +inf and zero gradient.
 */
class OpenMMSystemTargetImpl : public Target {
public:
    explicit OpenMMSystemTargetImpl(std::shared_ptr<OpenMMSystemTarget> system);
    int numParticles() const override;
    int dim() const override { return 3; }
    std::string name() const override { return "openmm-system"; }
    torch::Tensor energy(const torch::Tensor& x) override;
    /** Reduced energies and forces from one evaluation (no autograd). */
    std::pair<torch::Tensor, torch::Tensor> energyAndForces(const torch::Tensor& x) override;
    OpenMMSystemTarget& getSystemTarget() { return *system; }

private:
    std::shared_ptr<OpenMMSystemTarget> system;
};

}  // namespace OpenMMBG
