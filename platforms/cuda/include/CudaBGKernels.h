#pragma once
/**
 * CUDA platform kernel of the openmm-bg plugin: the MoveModelledParticlesKernel with the flow on the
 * Context's GPU (LibTorch device cuda:<DeviceIndex>) and the modelled particles kept on the GPU.
 *
 * OpenMM's CUDA platform runs in a CUDA context of its own; LibTorch uses the device's primary
 * context. The kernel retains the primary context and makes it current around each attempt, so
 * LibTorch's memory and kernels never land in OpenMM's context; OpenMM's calls (energies) select
 * their own context as they always do. Positions and velocities move between OpenMM's arrays
 * (posq, posqCorrection, velm) and LibTorch tensors by device-to-device copies, with the two
 * contexts synchronised at each hand-over; the gather and scatter of the modelled particles
 * through OpenMM's atom order (getAtomIndex) and the periodic cell offsets are LibTorch
 * operations on the GPU. Only indices, cell offsets and the flow's CPU-drawn noise cross the host.
 */
#include "CommonBGKernels.h"

#include <cuda.h>

namespace OpenMM {
class CudaArray;
class CudaContext;
}  // namespace OpenMM

namespace OpenMMBG {

class CudaMoveModelledParticlesKernel : public CommonMoveModelledParticlesKernel {
public:
    /** @param cu the CUDA context of the Context's first device, where the flow runs too */
    CudaMoveModelledParticlesKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::CudaContext& cu);
    ~CudaMoveModelledParticlesKernel() override;
    std::string getDevice() const override;
    void runOnDevice(const std::function<void()>& work) override;
    at::Tensor getPositions(OpenMM::ContextImpl& context) override;
    void setPositions(OpenMM::ContextImpl& context, const at::Tensor& positions) override;
    at::Tensor getVelocities(OpenMM::ContextImpl& context) override;
    void setVelocities(OpenMM::ContextImpl& context, const at::Tensor& velocities) override;

private:
    /** Waits for OpenMM's queued work on the device (before LibTorch reads its arrays). */
    void synchronizeOpenMM();
    /** A copy of an OpenMM array of 4-vectors as a tensor [rows, 4] of the given type. */
    at::Tensor copyFromOpenMM(OpenMM::CudaArray& array, c10::ScalarType type);
    /** Copies a tensor [rows, 4] back into the OpenMM array it came from. */
    void copyToOpenMM(const at::Tensor& values, OpenMM::CudaArray& array);
    /** Where each modelled particle sits in OpenMM's (reordered) arrays: int64 [n] on the GPU. */
    at::Tensor modelledSlots();
    /** The periodic cell offsets of the modelled particles times the box vectors (nm): [n, 3]. */
    at::Tensor modelledCellShifts(const std::vector<int>& slots);

    OpenMM::CudaContext& cu;
    CUdevice device = 0;
    CUcontext primaryContext = nullptr;
    std::vector<int> slots;  // host copy of the last modelledSlots()
    at::Tensor slotsOnDevice;
};

/** Creates CudaMoveModelledParticlesKernel for Contexts on the CUDA platform. */
class CudaBGKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override;
};

}  // namespace OpenMMBG
