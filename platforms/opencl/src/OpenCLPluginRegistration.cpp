// Entry points OpenMM calls when it loads the plugin: register the common kernels on the OpenCL
// platform when it exists. The flow runs on the CPU and positions travel through ContextImpl,
// which maps OpenCL's reordered atoms and its single/mixed/double precision buffers.
#include "CommonBGKernels.h"

#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/PluginInitializer.h"

using namespace OpenMM;

extern "C" OPENMM_EXPORT void registerPlatforms() {}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    try {
        Platform& platform = Platform::getPlatformByName("OpenCL");
        platform.registerKernelFactory(OpenMMBG::MoveModelledParticlesKernel::Name(),
                                       new OpenMMBG::CommonBGKernelFactory());
    } catch (const OpenMMException&) {
        // No OpenCL platform in this process: nothing to register.
    }
}
