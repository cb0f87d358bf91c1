#pragma once
/**
 * Where OpenMM's own platform plugins (CPU, OpenCL, CUDA, ...) are, and loading them: the one
 * home of that search, used by OpenMMSystemTarget (for a platform named but not registered) and by
 * `openmmbg remd`. Internal header: exported by libOpenMMBG for the tool, not public API.
 */
#include <string>

namespace OpenMMBG {

/**
 * The folder of OpenMM's platform plugins, the first of:
 *  1. $OPENMM_PLUGIN_DIR, if set (as `import openmm` does);
 *  2. "plugins" beside the libOpenMM.so this process loaded (the wheel's and OpenMM's own
 *     install layout), then "openmm/plugins" beside it (Debian's), if it is a folder;
 *  3. OpenMM's compiled-in default, OpenMM::Platform::getDefaultPluginsDirectory().
 * The libOpenMM.so found at run time, not one found at build time: plugins must match the library
 * they plug into.
 */
std::string openmmPluginDirectory();

/**
 * Loads OpenMM's platform plugins from openmmPluginDirectory(), once per process: later calls do
 * nothing (loading a folder twice would register its platforms twice). Thread-safe. A plugin that
 * fails to load is listed by OpenMM::Platform::getPluginLoadFailures(), not thrown.
 */
void loadOpenMMPlugins();

}  // namespace OpenMMBG
