#include "openmmbg/io/TensorArchive.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace OpenMMBG {

using nlohmann::json;

namespace {

const uint64_t MAX_HEADER = 64ull << 20;

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", (unsigned long long) v);
    return buf;
}

bool littleEndianHost() {
    uint16_t probe = 1;
    unsigned char first;
    std::memcpy(&first, &probe, 1);
    return first == 1;
}

std::string dtypeName(torch::ScalarType t) {
    switch (t) {
        case torch::kFloat32: return "F32";
        case torch::kFloat64: return "F64";
        case torch::kInt64: return "I64";
        case torch::kUInt8: return "U8";
        default: throw std::invalid_argument(std::string("TensorArchive: unsupported dtype ") + c10::toString(t));
    }
}

bool dtypeFromName(const std::string& name, torch::ScalarType& t) {
    if (name == "F32") t = torch::kFloat32;
    else if (name == "F64") t = torch::kFloat64;
    else if (name == "I64") t = torch::kInt64;
    else if (name == "U8") t = torch::kUInt8;
    else return false;
    return true;
}

}  // namespace

uint64_t fnv1a64(const char* data, size_t size) {
    uint64_t h = 14695981039346656037ull;  // offset basis
    for (size_t i = 0; i < size; i++) {
        h ^= uint8_t(data[i]);
        h *= 1099511628211ull;  // FNV prime
    }
    return h;
}

bool TensorArchive::has(const std::string& name) const {
    for (auto& t : tensors)
        if (t.first == name)
            return true;
    return false;
}

const torch::Tensor& TensorArchive::get(const std::string& name, const std::string& source) const {
    for (auto& t : tensors)
        if (t.first == name)
            return t.second;
    throw std::runtime_error("'" + source + "': tensor '" + name + "' is missing");
}

std::vector<double> TensorArchive::getDoubles(const std::string& name, const std::string& source) const {
    return toHostDoubles(get(name, source));
}

std::vector<double> toHostDoubles(const torch::Tensor& t) {
    torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

std::string serializeArchive(const TensorArchive& archive) {
    if (!littleEndianHost())
        throw std::runtime_error("TensorArchive: big-endian hosts are not supported");
    json header;
    std::string data;
    for (auto& [name, tensor] : archive.tensors) {
        torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
        const std::string dtype = dtypeName(t.scalar_type());
        uint64_t begin = data.size();
        data.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
        header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {begin, data.size()}}};
    }
    json meta = json::object();
    for (auto& [k, v] : archive.metadata)
        meta[k] = v;
    meta["checksum"] = "fnv1a64:" + hex64(fnv1a64(data.data(), data.size()));
    header["__metadata__"] = meta;
    std::string text = header.dump();
    // Pad so the data section starts 8-byte aligned (as safetensors does).
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    uint64_t n = text.size();
    std::memcpy(&out[0], &n, 8);
    return out + text + data;
}

TensorArchive deserializeArchive(const std::string& bytes, const std::string& source, const std::string& kind) {
    auto fail = [&](const std::string& message) -> void {
        throw std::runtime_error(kind + " '" + source + "': " + message);
    };
    if (!littleEndianHost())
        fail("big-endian hosts are not supported");
    if (bytes.size() < 8)
        fail("truncated: " + std::to_string(bytes.size()) + " bytes, too short to hold the header length");
    uint64_t headerSize;
    std::memcpy(&headerSize, bytes.data(), 8);
    if (headerSize > MAX_HEADER)
        fail("corrupt: header length " + std::to_string(headerSize) + " is implausible");
    if (headerSize > bytes.size() - 8)
        fail("truncated: header needs " + std::to_string(headerSize) + " bytes but only " +
             std::to_string(bytes.size() - 8) + " follow");
    json header;
    try {
        header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + headerSize);
    } catch (const json::exception& e) {
        fail(std::string("corrupt header (not valid JSON): ") + e.what());
    }
    if (!header.is_object() || !header.contains("__metadata__") || !header["__metadata__"].is_object())
        fail("corrupt header: no __metadata__ object (not an openmmbg file)");
    TensorArchive archive;
    for (auto& [key, value] : header["__metadata__"].items()) {
        if (!value.is_string())
            fail("corrupt header: metadata entry '" + key + "' is not a string");
        archive.metadata[key] = value.get<std::string>();
    }
    const char* data = bytes.data() + 8 + headerSize;
    const uint64_t dataSize = bytes.size() - 8 - headerSize;
    // Tensors in data order, so the archive keeps the writer's order.
    std::vector<std::pair<std::string, uint64_t>> order;
    uint64_t dataEnd = 0;
    for (auto& [name, entry] : header.items()) {
        if (name == "__metadata__")
            continue;
        try {
            torch::ScalarType dtype;
            if (!dtypeFromName(entry.at("dtype").get<std::string>(), dtype))
                fail("tensor '" + name + "' has unsupported dtype " + entry.at("dtype").dump());
            std::vector<int64_t> shape = entry.at("shape").get<std::vector<int64_t>>();
            std::vector<uint64_t> offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
            int64_t numel = 1;
            for (int64_t s : shape) {
                if (s < 0)
                    fail("corrupt header: tensor '" + name + "' has a negative dimension");
                numel *= s;
            }
            const uint64_t nbytes = uint64_t(numel) * torch::elementSize(dtype);
            if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != nbytes)
                fail("corrupt header: tensor '" + name + "' has inconsistent data offsets");
            if (offsets[1] > dataSize)
                fail("truncated: tensor '" + name + "' ends at byte " + std::to_string(offsets[1]) +
                     " of a data section of " + std::to_string(dataSize) + " bytes");
            torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
            if (nbytes > 0)
                std::memcpy(t.data_ptr(), data + offsets[0], nbytes);
            archive.tensors.emplace_back(name, t);
            order.emplace_back(name, offsets[0]);
            dataEnd = std::max(dataEnd, offsets[1]);
        } catch (const json::exception& e) {
            fail("corrupt header entry for tensor '" + name + "': " + e.what());
        }
    }
    if (dataEnd != dataSize)
        fail("corrupt: data section has " + std::to_string(dataSize) + " bytes, tensors use " + std::to_string(dataEnd));
    const std::string actual = "fnv1a64:" + hex64(fnv1a64(data, dataSize));
    if (archive.metadata["checksum"] != actual)
        fail("corrupt: checksum mismatch (header says " + archive.metadata["checksum"] + ", data gives " + actual + ")");
    std::map<std::string, uint64_t> offsetOf(order.begin(), order.end());
    std::stable_sort(archive.tensors.begin(), archive.tensors.end(),
                     [&](const auto& a, const auto& b) { return offsetOf[a.first] < offsetOf[b.first]; });
    return archive;
}

}  // namespace OpenMMBG
