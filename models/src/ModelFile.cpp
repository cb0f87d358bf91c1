#include "openmmbg/ModelFile.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace OpenMMBG {

using nlohmann::json;

namespace {

const char* FORMAT_NAME = "openmmbg-flow";
const int FORMAT_VERSION = 1;
const uint64_t MAX_HEADER = 64ull << 20;

uint64_t fnv1a64(const char* data, size_t size) {
    uint64_t h = 14695981039346656037ull;  // FNV-1a 64-bit offset basis
    for (size_t i = 0; i < size; i++) {
        h ^= uint8_t(data[i]);
        h *= 1099511628211ull;
    }
    return h;
}

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", (unsigned long long) v);
    return buf;
}

[[noreturn]] void fail(const std::string& source, const std::string& message) {
    throw std::runtime_error("model file '" + source + "': " + message);
}

bool littleEndianHost() {
    uint16_t probe = 1;
    unsigned char first;
    std::memcpy(&first, &probe, 1);
    return first == 1;
}

struct ParsedFile {
    json header;
    std::map<std::string, std::string> metadata;
    const char* data;
    uint64_t dataSize;
};

ParsedFile parse(const std::string& bytes, const std::string& source) {
    if (!littleEndianHost())
        fail(source, "big-endian hosts are not supported");
    if (bytes.size() < 8)
        fail(source, "truncated: " + std::to_string(bytes.size()) + " bytes, too short to hold the header length");
    uint64_t headerSize;
    std::memcpy(&headerSize, bytes.data(), 8);
    if (headerSize > MAX_HEADER)
        fail(source, "corrupt: header length " + std::to_string(headerSize) + " is implausible");
    if (headerSize > bytes.size() - 8)
        fail(source, "truncated: header needs " + std::to_string(headerSize) + " bytes but only " +
                         std::to_string(bytes.size() - 8) + " follow");
    ParsedFile p;
    try {
        p.header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + headerSize);
    } catch (const json::exception& e) {
        fail(source, std::string("corrupt header (not valid JSON): ") + e.what());
    }
    if (!p.header.is_object() || !p.header.contains("__metadata__") || !p.header["__metadata__"].is_object())
        fail(source, "corrupt header: no __metadata__ object (not an openmmbg model)");
    for (auto& [key, value] : p.header["__metadata__"].items()) {
        if (!value.is_string())
            fail(source, "corrupt header: metadata entry '" + key + "' is not a string");
        p.metadata[key] = value.get<std::string>();
    }
    if (p.metadata["format"] != FORMAT_NAME)
        fail(source, "not an openmmbg model (format '" + p.metadata["format"] + "')");
    int version = 0;
    try {
        version = std::stoi(p.metadata["format_version"]);
    } catch (...) {
        fail(source, "corrupt header: bad format_version '" + p.metadata["format_version"] + "'");
    }
    if (version < 1 || version > FORMAT_VERSION)
        fail(source, "format version " + std::to_string(version) + " is not supported (this build reads up to " +
                         std::to_string(FORMAT_VERSION) + ")");
    p.data = bytes.data() + 8 + headerSize;
    p.dataSize = bytes.size() - 8 - headerSize;
    return p;
}

}  // namespace

std::string serializeFlow(AugmentedCouplingFlow& flow, const std::map<std::string, std::string>& metadata) {
    json header;
    json meta = json::object();
    for (auto& [k, v] : metadata)
        meta[k] = v;
    meta["format"] = FORMAT_NAME;
    meta["format_version"] = std::to_string(FORMAT_VERSION);
    meta["config"] = flow->config().toJson();
    std::string data;
    for (auto& item : flow->named_parameters()) {
        torch::Tensor t = item.value().detach().to(torch::kCPU).contiguous();
        const std::string dtype = t.scalar_type() == torch::kFloat64 ? "F64" : "F32";
        if (dtype == "F32")
            t = t.to(torch::kFloat32);
        uint64_t begin = data.size();
        data.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
        header[item.key()] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {begin, data.size()}}};
    }
    meta["checksum"] = "fnv1a64:" + hex64(fnv1a64(data.data(), data.size()));
    header["__metadata__"] = meta;
    std::string text = header.dump();
    // Pad the header with spaces so the data section starts 8-byte aligned (as safetensors does).
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    uint64_t n = text.size();
    std::memcpy(&out[0], &n, 8);
    return out + text + data;
}

std::map<std::string, std::string> readFlowMetadata(const std::string& bytes, const std::string& source) {
    return parse(bytes, source).metadata;
}

AugmentedCouplingFlow deserializeFlow(const std::string& bytes, const std::string& source) {
    ParsedFile p = parse(bytes, source);
    FlowConfig config;
    try {
        config = FlowConfig::fromJson(p.metadata["config"]);
    } catch (const std::exception& e) {
        fail(source, std::string("bad configuration: ") + e.what());
    }
    std::string expected = p.metadata["checksum"];
    std::string actual = "fnv1a64:" + hex64(fnv1a64(p.data, p.dataSize));
    AugmentedCouplingFlow flow(config);
    const std::string wantDtype = config.dtype == "float64" ? "F64" : "F32";
    auto params = flow->named_parameters();
    size_t numTensors = 0;
    uint64_t dataEnd = 0;
    torch::NoGradGuard guard;
    for (auto& item : params) {
        const std::string& name = item.key();
        if (!p.header.contains(name))
            fail(source, "does not match its configuration: tensor '" + name + "' is missing");
        const json& entry = p.header[name];
        try {
            std::string dtype = entry.at("dtype").get<std::string>();
            std::vector<int64_t> shape = entry.at("shape").get<std::vector<int64_t>>();
            std::vector<uint64_t> offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
            if (dtype != wantDtype)
                fail(source, "tensor '" + name + "' has dtype " + dtype + " but the configuration says " + config.dtype);
            if (shape != item.value().sizes().vec())
                fail(source, "does not match its configuration: tensor '" + name + "' has shape " +
                                 json(shape).dump() + ", expected " + json(item.value().sizes().vec()).dump());
            uint64_t nbytes = uint64_t(item.value().numel()) * item.value().element_size();
            if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != nbytes)
                fail(source, "corrupt header: tensor '" + name + "' has inconsistent data offsets");
            if (offsets[1] > p.dataSize)
                fail(source, "truncated: tensor '" + name + "' ends at byte " + std::to_string(offsets[1]) +
                                 " of a data section of " + std::to_string(p.dataSize) + " bytes");
            std::memcpy(item.value().data_ptr(), p.data + offsets[0], nbytes);
            dataEnd = std::max(dataEnd, offsets[1]);
        } catch (const json::exception& e) {
            fail(source, "corrupt header entry for tensor '" + name + "': " + e.what());
        }
        numTensors++;
    }
    if (p.header.size() - 1 != numTensors)
        fail(source, "does not match its configuration: it holds " + std::to_string(p.header.size() - 1) +
                         " tensors, the configuration needs " + std::to_string(numTensors));
    if (dataEnd != p.dataSize)
        fail(source, "corrupt: data section has " + std::to_string(p.dataSize) + " bytes, tensors use " +
                         std::to_string(dataEnd));
    if (expected != actual)
        fail(source, "corrupt: checksum mismatch (header says " + expected + ", data gives " + actual + ")");
    return flow;
}

std::string readFileBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot open '" + path + "' for reading");
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad())
        throw std::runtime_error("error reading '" + path + "'");
    return s.str();
}

void writeFileAtomically(const std::string& path, const std::string& bytes) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out)
            throw std::runtime_error("cannot open '" + tmp + "' for writing");
        out.write(bytes.data(), bytes.size());
        out.flush();
        if (!out) {
            std::remove(tmp.c_str());
            throw std::runtime_error("error writing '" + tmp + "'");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "'");
    }
}

void saveFlow(AugmentedCouplingFlow& flow, const std::string& path, const std::map<std::string, std::string>& metadata) {
    writeFileAtomically(path, serializeFlow(flow, metadata));
}

AugmentedCouplingFlow loadFlow(const std::string& path) { return deserializeFlow(readFileBytes(path), path); }

}  // namespace OpenMMBG
