#pragma once
// A .bgm file taken apart into its JSON header and data section, and put back together, for tests
// that edit model files (TestModelFile, TestBadInput's fuzzing).
#include "openmmbg/io/TensorArchive.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace OpenMMBG::testing {

struct ModelFileParts {
    nlohmann::json header;
    std::string data;
};

inline ModelFileParts splitModelFile(const std::string& bytes) {
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    return {nlohmann::json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

/**
 * The bytes of a file with this header and data. Unless `rechecksum` is false, the data and header
 * checksums are recomputed, so that edits reach the checks behind them.
 */
inline std::string joinModelFile(ModelFileParts p, bool rechecksum = true) {
    if (rechecksum && p.header.contains("__metadata__") && p.header["__metadata__"].is_object()) {
        char hex[17];
        std::snprintf(hex, sizeof(hex), "%016llx", (unsigned long long) fnv1a64(p.data.data(), p.data.size()));
        p.header["__metadata__"]["checksum"] = std::string("fnv1a64:") + hex;
        p.header["__metadata__"]["header_checksum"] = headerChecksum(p.header.dump());
    }
    const std::string text = p.header.dump();
    std::string out(8, '\0');
    const uint64_t n = text.size();
    std::memcpy(&out[0], &n, 8);
    return out + text + p.data;
}

}  // namespace OpenMMBG::testing
