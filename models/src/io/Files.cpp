#include "openmmbg/io/Files.h"

#include "openmmbg/Errors.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace OpenMMBG {

std::string readFileBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw FileAccessError("cannot open '" + path + "' for reading");
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad())
        throw FileAccessError("error reading '" + path + "'");
    return s.str();
}

void writeFileAtomically(const std::string& path, const std::string& bytes) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out)
            throw FileAccessError("cannot open '" + tmp + "' for writing");
        out.write(bytes.data(), bytes.size());
        out.flush();
        if (!out) {
            std::remove(tmp.c_str());
            throw FileAccessError("error writing '" + tmp + "'");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw FileAccessError("cannot rename '" + tmp + "' to '" + path + "'");
    }
}

}  // namespace OpenMMBG
