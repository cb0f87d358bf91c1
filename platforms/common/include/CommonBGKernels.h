#pragma once
/**
 * The MoveModelledParticlesKernel of the Reference, CPU and OpenCL platforms: positions and
 * velocities go through ContextImpl (which handles each platform's atom order and precision), and
 * the flow runs on the CPU. The CUDA platform derives from it to keep the data on its GPU.
 *
 * Internal to the plugins (not an installed header), so LibTorch types may appear here.
 */
#include "OpenMMBGKernels.h"

#include "openmm/KernelFactory.h"
#include "openmm/Platform.h"
#include "openmm/Vec3.h"

#include <ATen/core/Tensor.h>

namespace OpenMMBG {

class CommonMoveModelledParticlesKernel : public MoveModelledParticlesKernel {
public:
    CommonMoveModelledParticlesKernel(const std::string& name, const OpenMM::Platform& platform)
        : MoveModelledParticlesKernel(name, platform) {}
    void initialize(const OpenMM::System& system, const std::vector<int>& particles) override;
    std::string getDevice() const override { return "cpu"; }
    void runOnDevice(const std::function<void()>& work) override { work(); }
    /** Reads all positions of the Context; setPositions writes them back with the modelled ones replaced. */
    at::Tensor getPositions(OpenMM::ContextImpl& context) override;
    void setPositions(OpenMM::ContextImpl& context, const at::Tensor& positions) override;
    at::Tensor getVelocities(OpenMM::ContextImpl& context) override;
    void setVelocities(OpenMM::ContextImpl& context, const at::Tensor& velocities) override;

protected:
    /** The System indices of the modelled particles, in model order. */
    const std::vector<int>& getParticles() const { return particles; }

private:
    std::vector<int> particles;
    // All positions of the Context as the last getPositions read them: setPositions writes them
    // back with the modelled particles replaced.
    std::vector<OpenMM::Vec3> hostPositions;
};

/** Creates CommonMoveModelledParticlesKernel (Reference, CPU and OpenCL platforms). */
class CommonBGKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override;
};

}  // namespace OpenMMBG
