// Entry points OpenMM calls when it loads the plugin (Platform::loadPluginsFromDirectory).
// Kernel factories for the Reference and CPU platforms are registered here as Forces are added;
// the flow-proposal kernels arrive with BoltzmannGeneratorProposal.
#include "openmm/Platform.h"
#include "openmm/PluginInitializer.h"

extern "C" OPENMM_EXPORT void registerPlatforms() {}

extern "C" OPENMM_EXPORT void registerKernelFactories() {}
