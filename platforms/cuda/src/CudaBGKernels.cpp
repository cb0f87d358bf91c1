#include "CudaBGKernels.h"

#include "openmm/OpenMMException.h"
#include "openmm/cuda/CudaPlatform.h"
#include "openmm/internal/ContextImpl.h"

#include <dlfcn.h>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

// The few driver functions the kernel needs, from the libcuda.so.1 that OpenMM's CUDA platform has
// loaded already: the plugin then links without a driver or its stub (a PyPI-only CUDA build).
struct Driver {
    CUresult (*init)(unsigned int);
    CUresult (*deviceGet)(CUdevice*, int);
    CUresult (*primaryCtxRetain)(CUcontext*, CUdevice);
    CUresult (*primaryCtxRelease)(CUdevice);
    CUresult (*ctxPushCurrent)(CUcontext);
    CUresult (*ctxPopCurrent)(CUcontext*);
    CUresult (*getErrorString)(CUresult, const char**);
};

template <typename F>
void resolve(void* library, const char* symbol, F& function) {
    function = reinterpret_cast<F>(dlsym(library, symbol));
    if (function == nullptr)
        throw OpenMMException(std::string("BoltzmannGeneratorProposal (CUDA): libcuda.so.1 has no ") + symbol);
}

const Driver& driver() {
    static const Driver d = [] {
        void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
        if (library == nullptr)
            throw OpenMMException("BoltzmannGeneratorProposal (CUDA): cannot load the CUDA driver (libcuda.so.1)");
        Driver d;
        // Versioned names: what cuda.h maps cuCtxPushCurrent etc. to.
        resolve(library, "cuInit", d.init);
        resolve(library, "cuDeviceGet", d.deviceGet);
        resolve(library, "cuDevicePrimaryCtxRetain", d.primaryCtxRetain);
        resolve(library, "cuDevicePrimaryCtxRelease_v2", d.primaryCtxRelease);
        resolve(library, "cuCtxPushCurrent_v2", d.ctxPushCurrent);
        resolve(library, "cuCtxPopCurrent_v2", d.ctxPopCurrent);
        resolve(library, "cuGetErrorString", d.getErrorString);
        return d;
    }();
    return d;
}

void check(CUresult result, const char* what) {
    if (result != CUDA_SUCCESS) {
        const char* message = nullptr;
        driver().getErrorString(result, &message);
        throw OpenMMException(std::string("BoltzmannGeneratorProposal (CUDA): ") + what + " failed: " +
                              (message != nullptr ? message : std::to_string(int(result))));
    }
}

}  // namespace

CudaCalcBoltzmannGeneratorProposalKernel::CudaCalcBoltzmannGeneratorProposalKernel(const std::string& name,
                                                                                   const Platform& platform,
                                                                                   int deviceIndex)
    : CommonCalcBoltzmannGeneratorProposalKernel(name, platform), deviceIndex(deviceIndex) {
    check(driver().init(0), "cuInit");
    check(driver().deviceGet(&device, deviceIndex), "cuDeviceGet");
    check(driver().primaryCtxRetain(&primaryContext, device), "cuDevicePrimaryCtxRetain");
}

CudaCalcBoltzmannGeneratorProposalKernel::~CudaCalcBoltzmannGeneratorProposalKernel() {
    if (primaryContext != nullptr)
        driver().primaryCtxRelease(device);
}

void CudaCalcBoltzmannGeneratorProposalKernel::runFlowCalls(const std::function<void()>& calls) {
    check(driver().ctxPushCurrent(primaryContext), "making LibTorch's context current");
    try {
        // FlowModel returns host arrays, so every call has synchronised with LibTorch's stream
        // before the context is handed back.
        calls();
    } catch (...) {
        CUcontext popped;
        driver().ctxPopCurrent(&popped);
        throw;
    }
    CUcontext popped;
    check(driver().ctxPopCurrent(&popped), "restoring OpenMM's context");
}

KernelImpl* CudaBGKernelFactory::createKernelImpl(std::string name, const Platform& platform,
                                                  ContextImpl& context) const {
    if (name != CalcBoltzmannGeneratorProposalKernel::Name())
        throw OpenMMException("CudaBGKernelFactory: no kernel named '" + name + "'");
    // The platform data exist before Forces are initialised; DeviceIndex may list several devices
    // (one Context on several GPUs): the flow runs on the first.
    auto* data = static_cast<CudaPlatform::PlatformData*>(context.getPlatformData());
    const std::string devices = data->propertyValues[CudaPlatform::CudaDeviceIndex()];
    const int deviceIndex = devices.empty() ? 0 : std::stoi(devices.substr(0, devices.find(',')));
    return new CudaCalcBoltzmannGeneratorProposalKernel(name, platform, deviceIndex);
}

}  // namespace OpenMMBG
