// dcd_dump: prints what OpenMMBG::readDcd returns, as JSON, for tests/python/test_dcd.py.
//
//   dcd_dump FILE [--particles i,j,...] [--begin B] [--end E] [--stride S] [--expected N]
//                 [--allow-truncated] [--header]
//
// Prints {"shape": [...], "values": [...]} (nm, 17 significant digits), or with --header the
// header fields. On an error it prints the message to stderr and exits with status 1.
#include "openmmbg/io/DcdReader.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>

using namespace OpenMMBG;

namespace {

std::vector<int64_t> parseList(const std::string& text) {
    std::vector<int64_t> out;
    std::stringstream s(text);
    std::string item;
    while (std::getline(s, item, ','))
        out.push_back(std::stoll(item));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::string path;
        DcdReadOptions options;
        bool header = false;
        for (int i = 1; i < argc; i++) {
            const std::string arg = argv[i];
            auto value = [&]() -> std::string {
                if (i + 1 >= argc)
                    throw std::runtime_error(arg + " needs a value");
                return argv[++i];
            };
            if (arg == "--particles")
                options.particles = parseList(value());
            else if (arg == "--begin")
                options.begin = std::stoll(value());
            else if (arg == "--end")
                options.end = std::stoll(value());
            else if (arg == "--stride")
                options.stride = std::stoll(value());
            else if (arg == "--expected")
                options.expectedParticles = std::stoll(value());
            else if (arg == "--allow-truncated")
                options.allowTruncated = true;
            else if (arg == "--header")
                header = true;
            else if (path.empty())
                path = arg;
            else
                throw std::runtime_error("unexpected argument '" + arg + "'");
        }
        if (path.empty())
            throw std::runtime_error("usage: dcd_dump FILE [options]");
        if (header) {
            const DcdHeader h = readDcdHeader(path);
            std::printf(
                "{\"num_particles\": %lld, \"num_frames\": %lld, \"header_frames\": %lld, "
                "\"partial_last_frame\": %s, \"has_unit_cell\": %s, \"first_step\": %lld, \"interval\": %lld, "
                "\"timestep\": %.17g}\n",
                (long long)h.numParticles, (long long)h.numFrames, (long long)h.headerFrames,
                h.partialLastFrame ? "true" : "false", h.hasUnitCell ? "true" : "false", (long long)h.firstStep,
                (long long)h.interval, h.timestep);
            return 0;
        }
        const Array a = readDcd(path, options);
        std::string out = "{\"shape\": [";
        for (size_t i = 0; i < a.shape.size(); i++)
            out += (i ? ", " : "") + std::to_string(a.shape[i]);
        out += "], \"values\": [";
        char buffer[32];
        for (size_t i = 0; i < a.values.size(); i++) {
            std::snprintf(buffer, sizeof(buffer), "%s%.17g", i ? ", " : "", a.values[i]);
            out += buffer;
        }
        out += "]}\n";
        std::fputs(out.c_str(), stdout);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dcd_dump: %s\n", e.what());
        return 1;
    }
}
