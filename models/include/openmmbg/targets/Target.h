#pragma once
/**
 * Unnormalised target densities on positions: log p~(x) = -U(x) / kT. Energies are reduced
 * (in units of kT), positions are in the target's length unit (nm for OpenMM systems; reduced
 * units for the built-in DW4/LJ targets, where one length unit is 1 nm and kT = 1 kJ/mol).
 *
 * Shapes: x [B, N, D]; energies [B]; forces [B, N, D] = -dU/dx / kT.
 */
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>

namespace OpenMMBG {

class Target {
public:
    virtual ~Target() = default;
    virtual int numParticles() const = 0;
    virtual int dim() const = 0;
    /** A short name ("dw4", "lj13", "openmm-system", ...). */
    virtual std::string name() const = 0;
    /**
     * Reduced energies U(x)/kT [B]. Differentiable with respect to x through autograd, so training
     * objectives can back-propagate through it.
     */
    virtual torch::Tensor energy(const torch::Tensor& x) = 0;
    /** Reduced energies [B] and forces -dU/dx / kT [B, N, D]. The default uses autograd on energy(). */
    virtual std::pair<torch::Tensor, torch::Tensor> energyAndForces(const torch::Tensor& x);
    /** log p~(x) = -U(x)/kT [B]. */
    torch::Tensor logProb(const torch::Tensor& x) { return -energy(x); }
};

/**
 * The built-in targets of docs/eacf-mapping.md#target-energies: "dw4" (4 particles, 2-D double well), "lj13" and
 * "lj55" (Lennard-Jones clusters with a harmonic tether to the centroid). Throws
 * std::invalid_argument for an unknown name.
 */
std::shared_ptr<Target> makeBuiltinTarget(const std::string& name);

}  // namespace OpenMMBG
