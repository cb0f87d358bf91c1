#pragma once
/**
 * Version of the openmm-bg plugin. Public header: no LibTorch.
 */
#include <string>

namespace OpenMMBG {

/** The plugin's version string, e.g. "0.1.0". */
std::string getVersion();

}  // namespace OpenMMBG
