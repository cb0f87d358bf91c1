// Entry points OpenMM calls when it loads the plugin (Platform::loadPluginsFromDirectory): register
// the common kernels on every platform derived from ReferencePlatform, which includes the CPU
// platform (and so the Reference/CPU Contexts that LocalEnergyMinimizer creates).
#include "CommonBGKernels.h"

#include "openmm/Platform.h"
#include "openmm/PluginInitializer.h"
#include "openmm/reference/ReferencePlatform.h"

using namespace OpenMM;

extern "C" OPENMM_EXPORT void registerPlatforms() {}

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (dynamic_cast<ReferencePlatform*>(&platform) != nullptr)
            platform.registerKernelFactory(OpenMMBG::MoveModelledParticlesKernel::Name(),
                                           new OpenMMBG::CommonBGKernelFactory());
    }
}
