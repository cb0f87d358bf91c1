#include "CudaBGKernels.h"

#include "openmm/OpenMMException.h"
#include "openmm/cuda/CudaContext.h"
#include "openmm/cuda/CudaPlatform.h"
#include "openmm/internal/ContextImpl.h"

#include <torch/torch.h>

#include <dlfcn.h>

using namespace OpenMM;

namespace OpenMMBG {

namespace {

// The few driver functions the kernel needs, from the libcuda.so.1 that OpenMM's CUDA platform has
// loaded already: the plugin then links without a driver or its stub (a PyPI-only CUDA build).
struct Driver {
    CUresult (*init)(unsigned int);
    CUresult (*primaryCtxRetain)(CUcontext*, CUdevice);
    CUresult (*primaryCtxRelease)(CUdevice);
    CUresult (*ctxPushCurrent)(CUcontext);
    CUresult (*ctxPopCurrent)(CUcontext*);
    CUresult (*ctxSynchronize)();
    CUresult (*copy)(CUdeviceptr, CUdeviceptr, size_t);
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
        resolve(library, "cuDevicePrimaryCtxRetain", d.primaryCtxRetain);
        resolve(library, "cuDevicePrimaryCtxRelease_v2", d.primaryCtxRelease);
        resolve(library, "cuCtxPushCurrent_v2", d.ctxPushCurrent);
        resolve(library, "cuCtxPopCurrent_v2", d.ctxPopCurrent);
        resolve(library, "cuCtxSynchronize", d.ctxSynchronize);
        // With unified addressing cuMemcpy copies between the memory of any two contexts on the
        // device, which is how data cross between OpenMM's context and LibTorch's.
        resolve(library, "cuMemcpy", d.copy);
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

CudaMoveModelledParticlesKernel::CudaMoveModelledParticlesKernel(const std::string& name, const Platform& platform,
                                                                 CudaContext& cu)
    : CommonMoveModelledParticlesKernel(name, platform), cu(cu) {
    check(driver().init(0), "cuInit");
    device = cu.getDevice();
    check(driver().primaryCtxRetain(&primaryContext, device), "cuDevicePrimaryCtxRetain");
}

CudaMoveModelledParticlesKernel::~CudaMoveModelledParticlesKernel() {
    if (primaryContext != nullptr)
        driver().primaryCtxRelease(device);
}

std::string CudaMoveModelledParticlesKernel::getDevice() const {
    return "cuda:" + std::to_string(cu.getDeviceIndex());
}

void CudaMoveModelledParticlesKernel::runOnDevice(const std::function<void()>& work) {
    check(driver().ctxPushCurrent(primaryContext), "making LibTorch's context current");
    try {
        work();
        // Every read of a result (item(), copies to the host) has synchronised with LibTorch's
        // work already; this covers work whose result nobody read.
        check(driver().ctxSynchronize(), "synchronising LibTorch's context");
    } catch (...) {
        CUcontext popped;
        driver().ctxPopCurrent(&popped);
        throw;
    }
    CUcontext popped;
    check(driver().ctxPopCurrent(&popped), "restoring OpenMM's context");
}

void CudaMoveModelledParticlesKernel::synchronizeOpenMM() {
    check(driver().ctxPushCurrent(cu.getContext()), "making OpenMM's context current");
    const CUresult result = driver().ctxSynchronize();
    CUcontext popped;
    driver().ctxPopCurrent(&popped);
    check(result, "synchronising OpenMM's context");
}

torch::Tensor CudaMoveModelledParticlesKernel::copyFromOpenMM(CudaArray& array, c10::ScalarType type) {
    torch::Tensor values = torch::empty({int64_t(array.getSize()), 4},
                                        torch::TensorOptions().dtype(type).device(torch::kCUDA, cu.getDeviceIndex()));
    if (int(values.element_size() * 4) != array.getElementSize())
        throw OpenMMException("BoltzmannGeneratorProposal (CUDA): OpenMM's array " + array.getName() + " has elements of " +
                              std::to_string(array.getElementSize()) + " bytes, expected " +
                              std::to_string(values.element_size() * 4));
    // The caching allocator may hand out memory that LibTorch's queued work still uses.
    check(driver().ctxSynchronize(), "synchronising LibTorch's context");
    check(driver().copy(CUdeviceptr(values.data_ptr()), array.getDevicePointer(), array.getSize() * array.getElementSize()),
          ("copying " + array.getName() + " from OpenMM").c_str());
    check(driver().ctxSynchronize(), "synchronising LibTorch's context");
    return values;
}

void CudaMoveModelledParticlesKernel::copyToOpenMM(const torch::Tensor& values, CudaArray& array) {
    const torch::Tensor contiguous = values.contiguous();
    if (size_t(contiguous.numel() * contiguous.element_size()) != array.getSize() * array.getElementSize())
        throw OpenMMException("BoltzmannGeneratorProposal (CUDA): a copy of " + array.getName() + " changed size");
    check(driver().ctxSynchronize(), "synchronising LibTorch's context");
    check(driver().copy(array.getDevicePointer(), CUdeviceptr(contiguous.data_ptr()), array.getSize() * array.getElementSize()),
          ("copying " + array.getName() + " to OpenMM").c_str());
    check(driver().ctxSynchronize(), "synchronising LibTorch's context");
}

torch::Tensor CudaMoveModelledParticlesKernel::modelledSlots() {
    // OpenMM reorders atoms now and then (getAtomIndex()[slot] = the atom in that slot), so the
    // slots are looked up on every call; the device copy is refreshed only when they moved.
    const std::vector<int>& particles = getParticles();
    const std::vector<int>& order = cu.getAtomIndex();
    std::vector<int> modelledIndex(order.size(), -1);
    for (size_t i = 0; i < particles.size(); i++)
        modelledIndex[particles[i]] = int(i);
    std::vector<int> now(particles.size(), -1);
    for (int slot = 0; slot < cu.getNumAtoms(); slot++)
        if (modelledIndex[order[slot]] >= 0)
            now[modelledIndex[order[slot]]] = slot;
    if (now != slots || !slotsOnDevice.defined()) {
        slots = now;
        slotsOnDevice = torch::tensor(std::vector<int64_t>(slots.begin(), slots.end()), torch::kInt64)
                            .to(torch::Device(torch::kCUDA, cu.getDeviceIndex()));
    }
    return slotsOnDevice;
}

torch::Tensor CudaMoveModelledParticlesKernel::modelledCellShifts(const std::vector<int>& slots) {
    // OpenMM keeps wrapped positions in posq and the whole periodic cells it wrapped each atom by in
    // posCellOffsets (host side): the position the user sees is posq - offsets . box.
    std::vector<mm_int4>& offsets = cu.getPosCellOffsets();
    Vec3 box[3];
    cu.getPeriodicBoxVectors(box[0], box[1], box[2]);
    std::vector<double> shifts(3 * slots.size(), 0.0);
    bool any = false;
    for (size_t i = 0; i < slots.size(); i++) {
        if (size_t(slots[i]) >= offsets.size())
            continue;
        const mm_int4 o = offsets[slots[i]];
        if (o.x == 0 && o.y == 0 && o.z == 0)
            continue;
        any = true;
        const Vec3 shift = box[0] * o.x + box[1] * o.y + box[2] * o.z;
        for (int d = 0; d < 3; d++)
            shifts[3 * i + d] = shift[d];
    }
    if (!any)
        return torch::Tensor();
    return torch::tensor(shifts, torch::kFloat64).view({int64_t(slots.size()), 3})
        .to(torch::Device(torch::kCUDA, cu.getDeviceIndex()));
}

torch::Tensor CudaMoveModelledParticlesKernel::getPositions(ContextImpl&) {
    synchronizeOpenMM();
    const torch::Tensor where = modelledSlots();
    const auto type = cu.getUseDoublePrecision() ? torch::kFloat64 : torch::kFloat32;
    torch::Tensor x = copyFromOpenMM(cu.getPosq(), type).index_select(0, where).narrow(1, 0, 3).to(torch::kFloat64);
    if (cu.getUseMixedPrecision())
        x = x + copyFromOpenMM(cu.getPosqCorrection(), torch::kFloat32).index_select(0, where).narrow(1, 0, 3).to(torch::kFloat64);
    const torch::Tensor shifts = modelledCellShifts(slots);
    return shifts.defined() ? x - shifts : x;
}

void CudaMoveModelledParticlesKernel::setPositions(ContextImpl&, const torch::Tensor& positions) {
    synchronizeOpenMM();
    const torch::Tensor where = modelledSlots();
    const torch::Tensor shifts = modelledCellShifts(slots);
    const torch::Tensor wrapped = shifts.defined() ? positions + shifts : positions;
    const auto type = cu.getUseDoublePrecision() ? torch::kFloat64 : torch::kFloat32;
    // Whole rows are gathered and scattered back, so the charges in posq.w stay as they are.
    torch::Tensor posq = copyFromOpenMM(cu.getPosq(), type);
    torch::Tensor rows = posq.index_select(0, where);
    rows.narrow(1, 0, 3).copy_(wrapped);  // rounds to float in single and mixed precision, as OpenMM does
    posq.index_copy_(0, where, rows);
    copyToOpenMM(posq, cu.getPosq());
    if (cu.getUseMixedPrecision()) {
        // The correction holds what float lost: x - (float) x, as OpenMM's setPositions stores it.
        torch::Tensor correction = copyFromOpenMM(cu.getPosqCorrection(), torch::kFloat32);
        torch::Tensor correctionRows = correction.index_select(0, where);
        correctionRows.narrow(1, 0, 3).copy_(wrapped - wrapped.to(torch::kFloat32).to(torch::kFloat64));
        correction.index_copy_(0, where, correctionRows);
        copyToOpenMM(correction, cu.getPosqCorrection());
    }
}

torch::Tensor CudaMoveModelledParticlesKernel::getVelocities(ContextImpl&) {
    synchronizeOpenMM();
    const torch::Tensor where = modelledSlots();
    const bool doubleVelocities = cu.getUseDoublePrecision() || cu.getUseMixedPrecision();
    return copyFromOpenMM(cu.getVelm(), doubleVelocities ? torch::kFloat64 : torch::kFloat32)
        .index_select(0, where).narrow(1, 0, 3).to(torch::kFloat64);
}

void CudaMoveModelledParticlesKernel::setVelocities(ContextImpl&, const torch::Tensor& velocities) {
    synchronizeOpenMM();
    const torch::Tensor where = modelledSlots();
    const bool doubleVelocities = cu.getUseDoublePrecision() || cu.getUseMixedPrecision();
    torch::Tensor velm = copyFromOpenMM(cu.getVelm(), doubleVelocities ? torch::kFloat64 : torch::kFloat32);
    torch::Tensor rows = velm.index_select(0, where);
    rows.narrow(1, 0, 3).copy_(velocities);  // velm.w (the inverse mass) stays
    velm.index_copy_(0, where, rows);
    copyToOpenMM(velm, cu.getVelm());
}

KernelImpl* CudaBGKernelFactory::createKernelImpl(std::string name, const Platform& platform,
                                                  ContextImpl& context) const {
    if (name != MoveModelledParticlesKernel::Name())
        throw OpenMMException("CudaBGKernelFactory: no kernel named '" + name + "'");
    // The platform data and their CudaContexts exist before Forces are initialised. With several
    // devices (DeviceIndex "0,1") the flow runs on the first, which holds the positions.
    auto* data = static_cast<CudaPlatform::PlatformData*>(context.getPlatformData());
    return new CudaMoveModelledParticlesKernel(name, platform, *data->contexts[0]);
}

}  // namespace OpenMMBG
