#pragma once
/**
 * CUDA platform kernels of the openmm-bg plugin: the common proposal kernel with the flow on the
 * Context's GPU (LibTorch device cuda:<DeviceIndex>).
 *
 * OpenMM's CUDA platform runs in a CUDA context of its own; LibTorch uses the device's primary
 * context. The kernel retains the primary context and makes it current around every flow call, so
 * LibTorch's memory and kernels never land in OpenMM's context; OpenMM's calls (positions,
 * energies) select their own context as they always do.
 */
#include "CommonBGKernels.h"

#include <cuda.h>

namespace OpenMMBG {

class CudaCalcBoltzmannGeneratorProposalKernel : public CommonCalcBoltzmannGeneratorProposalKernel {
public:
    /** @param deviceIndex the CUDA device of the Context (its DeviceIndex property) */
    CudaCalcBoltzmannGeneratorProposalKernel(const std::string& name, const OpenMM::Platform& platform, int deviceIndex);
    ~CudaCalcBoltzmannGeneratorProposalKernel() override;

protected:
    std::string getFlowDevice() const override { return "cuda:" + std::to_string(deviceIndex); }
    void runFlowCalls(const std::function<void()>& calls) override;

private:
    int deviceIndex;
    CUdevice device = 0;
    CUcontext primaryContext = nullptr;
};

/** Creates CudaCalcBoltzmannGeneratorProposalKernel for Contexts on the CUDA platform. */
class CudaBGKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                         OpenMM::ContextImpl& context) const override;
};

}  // namespace OpenMMBG
