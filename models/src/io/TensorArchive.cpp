#include "openmmbg/io/TensorArchive.h"

#include "openmmbg/Validation.h"

#include <nlohmann/json.hpp>

#include <functional>

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

// `text` with every byte outside printable ASCII as \xNN: the parser's message quotes the bad bytes
// of a damaged header, and an error message must stay valid text (Python decodes it as UTF-8).
std::string printable(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (c >= 0x20 && c < 0x7f) {
            out += char(c);
        } else {
            char buf[5];
            std::snprintf(buf, sizeof(buf), "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

// The checksum of a header: FNV-1a of its canonical dump (keys sorted, no spaces) without the
// header_checksum entry itself, so any edit of the header (a configuration value, a shape, an
// offset) is detected, as the data checksum detects edits of the data.
std::string checksumOfHeader(json header) {
    header["__metadata__"].erase("header_checksum");
    const std::string canonical = header.dump();
    return "fnv1a64:" + hex64(fnv1a64(canonical.data(), canonical.size()));
}

// A non-negative integer in a header entry; 64-bit, with the value's range checked (a float such
// as 2**70 or a negative number is refused, never converted).
uint64_t headerInteger(const json& value, uint64_t max, const std::function<void(const std::string&)>& fail,
                       const std::string& what) {
    if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0))
        fail("corrupt header: " + what + " is not a non-negative integer (got " + value.dump() + ")");
    const uint64_t v = value.get<uint64_t>();
    if (v > max)
        fail("corrupt header: " + what + " is " + std::to_string(v) + ", more than the file can hold");
    return v;
}

}  // namespace

std::string headerChecksum(const std::string& headerJson) {
    json header;
    try {
        header = json::parse(headerJson);
    } catch (const json::exception& e) {
        throw std::invalid_argument(std::string("headerChecksum: not valid JSON: ") + e.what());
    }
    if (!header.is_object() || !header.contains("__metadata__") || !header["__metadata__"].is_object())
        throw std::invalid_argument("headerChecksum: expected an object with a __metadata__ object");
    return checksumOfHeader(header);
}

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
    header["__metadata__"]["header_checksum"] = checksumOfHeader(header);
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
    const std::function<void(const std::string&)> failFn = fail;
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
        fail(std::string("corrupt header (not valid JSON): ") + printable(e.what()));
    }
    if (!header.is_object() || !header.contains("__metadata__") || !header["__metadata__"].is_object())
        fail("corrupt header: no __metadata__ object (not an openmmbg file)");
    TensorArchive archive;
    if (header["__metadata__"].contains("header_checksum")) {
        const json& stored = header["__metadata__"]["header_checksum"];
        const std::string actual = checksumOfHeader(header);
        if (!stored.is_string() || stored.get<std::string>() != actual)
            fail("corrupt: header checksum mismatch (the header was edited or damaged; header says " + stored.dump() +
                 ", header gives " + actual + ")");
        archive.headerChecked = true;
    }
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
            const json& shapeJson = entry.at("shape");
            const json& offsetsJson = entry.at("data_offsets");
            if (!shapeJson.is_array() || shapeJson.size() > size_t(Limits::kMaxTensorRank))
                fail("corrupt header: tensor '" + name + "' has a shape that is not a list of at most " +
                     std::to_string(Limits::kMaxTensorRank) + " sizes");
            // Every size is bounded by the data section before anything is allocated: a tensor
            // with elements cannot have a dimension longer than the file.
            std::vector<int64_t> shape;
            int64_t numel = 1;
            for (const json& s : shapeJson) {
                shape.push_back(int64_t(headerInteger(s, dataSize, failFn, "a dimension of tensor '" + name + "'")));
                numel = checkedMultiply("tensor '" + name + "'", numel, shape.back());
            }
            if (!offsetsJson.is_array() || offsetsJson.size() != 2)
                fail("corrupt header: tensor '" + name + "' has inconsistent data offsets");
            const std::vector<uint64_t> offsets = {
                headerInteger(offsetsJson[0], ~uint64_t(0), failFn, "an offset of tensor '" + name + "'"),
                headerInteger(offsetsJson[1], ~uint64_t(0), failFn, "an offset of tensor '" + name + "'")};
            const uint64_t nbytes = uint64_t(checkedMultiply("tensor '" + name + "'", numel,
                                                             int64_t(torch::elementSize(dtype))));
            if (offsets[1] < offsets[0] || offsets[1] - offsets[0] != nbytes)
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
        } catch (const std::invalid_argument& e) {
            fail(std::string("corrupt header: ") + e.what());
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
