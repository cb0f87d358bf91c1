// Entry points OpenMM calls when it loads the plugin: register the CUDA kernels on the CUDA
// platform when it exists (OpenMM's CUDA plugin loaded, e.g. from the openmm-cuda-13 wheel).
#include "CudaBGKernels.h"

#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/PluginInitializer.h"

using namespace OpenMM;

extern "C" OPENMM_EXPORT void registerPlatforms() {}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    try {
        Platform& platform = Platform::getPlatformByName("CUDA");
        platform.registerKernelFactory(OpenMMBG::MoveModelledParticlesKernel::Name(),
                                       new OpenMMBG::CudaBGKernelFactory());
    } catch (const OpenMMException&) {
        // No CUDA platform in this process: nothing to register.
    }
}
