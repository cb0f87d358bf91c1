#pragma once
/**
 * Kernel interface of the openmm-bg plugin. As for OpenMM's MonteCarloBarostat, the ForceImpl
 * (BoltzmannGeneratorProposalImpl) makes every decision (model, proposals, acceptance, random
 * numbers, counters); a platform's kernel only moves data: it reads and writes the modelled
 * particles' positions and velocities where the platform keeps them, and says on which LibTorch
 * device the flow should run so that those data need not leave it (the CUDA platform keeps them on
 * its GPU). The tensors are LibTorch's, declared here only, so this header needs no LibTorch.
 */
#include "openmm/KernelImpl.h"
#include "openmm/System.h"
#include "openmm/internal/ContextImpl.h"

#include <functional>
#include <string>
#include <vector>

namespace at {
class Tensor;
}  // namespace at

namespace OpenMMBG {

/** Reads and writes the positions and velocities of the particles a BoltzmannGeneratorProposal models. */
class MoveModelledParticlesKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() { return "MoveModelledParticles"; }
    MoveModelledParticlesKernel(const std::string& name, const OpenMM::Platform& platform)
        : OpenMM::KernelImpl(name, platform) {}
    /** @param particles the System indices of the modelled particles, in model order (validated) */
    virtual void initialize(const OpenMM::System& system, const std::vector<int>& particles) = 0;
    /** The LibTorch device the flow runs on and the tensors below live on: "cpu" or "cuda:N". */
    virtual std::string getDevice() const = 0;
    /**
     * Runs `work` (flow calls and the methods below) with the device ready: the CUDA platform makes
     * LibTorch's CUDA context current around it; OpenMM's own calls select their context as usual.
     */
    virtual void runOnDevice(const std::function<void()>& work) = 0;
    /** The modelled particles' positions (nm), unwrapped as Context::getState gives them: float64 [n, 3]. */
    virtual at::Tensor getPositions(OpenMM::ContextImpl& context) = 0;
    /** Writes the modelled particles' positions (nm, float64 [n, 3]); all other particles are unchanged. */
    virtual void setPositions(OpenMM::ContextImpl& context, const at::Tensor& positions) = 0;
    /** The modelled particles' velocities (nm/ps): float64 [n, 3]. */
    virtual at::Tensor getVelocities(OpenMM::ContextImpl& context) = 0;
    /** Writes the modelled particles' velocities (nm/ps, float64 [n, 3]); all others are unchanged. */
    virtual void setVelocities(OpenMM::ContextImpl& context, const at::Tensor& velocities) = 0;
};

}  // namespace OpenMMBG
