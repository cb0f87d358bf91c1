#include "internal/OpenMMPlugins.h"

#include "openmm/Platform.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace OpenMMBG {

std::string openmmPluginDirectory() {
    if (const char* env = std::getenv("OPENMM_PLUGIN_DIR"))
        return env;
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&OpenMM::Platform::getNumPlatforms), &info) != 0 && info.dli_fname) {
        const std::filesystem::path libraryDir = std::filesystem::path(info.dli_fname).parent_path();
        for (const char* candidate : {"plugins", "openmm/plugins"}) {
            std::error_code ec;
            if (std::filesystem::is_directory(libraryDir / candidate, ec))
                return (libraryDir / candidate).string();
        }
    }
    return OpenMM::Platform::getDefaultPluginsDirectory();
}

void loadOpenMMPlugins() {
    static std::once_flag loaded;
    std::call_once(loaded, [] { OpenMM::Platform::loadPluginsFromDirectory(openmmPluginDirectory()); });
}

}  // namespace OpenMMBG
