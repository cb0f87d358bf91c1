#include "OpenMMBGVersion.h"

namespace OpenMMBG {

std::string getVersion() { return OPENMMBG_VERSION; }

}  // namespace OpenMMBG
