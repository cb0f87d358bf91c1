#include "openmmbg/ModelFile.h"

#include "openmmbg/TensorArchive.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace OpenMMBG {

namespace {

const char* FORMAT_NAME = "openmmbg-flow";
const int FORMAT_VERSION = 1;
const char* KIND = "model file";

[[noreturn]] void fail(const std::string& source, const std::string& message) {
    throw std::runtime_error(std::string(KIND) + " '" + source + "': " + message);
}

// Parse the archive and check that it is a model file this build can read.
TensorArchive parse(const std::string& bytes, const std::string& source) {
    TensorArchive archive = deserializeArchive(bytes, source, KIND);
    if (archive.metadata["format"] != FORMAT_NAME)
        fail(source, "not an openmmbg model (format '" + archive.metadata["format"] + "')");
    int version = 0;
    try {
        version = std::stoi(archive.metadata["format_version"]);
    } catch (...) {
        fail(source, "corrupt header: bad format_version '" + archive.metadata["format_version"] + "'");
    }
    if (version < 1 || version > FORMAT_VERSION)
        fail(source, "format version " + std::to_string(version) + " is not supported (this build reads up to " +
                         std::to_string(FORMAT_VERSION) + ")");
    return archive;
}

}  // namespace

std::string serializeFlow(AugmentedCouplingFlow& flow, const std::map<std::string, std::string>& metadata) {
    TensorArchive archive;
    archive.metadata = metadata;
    archive.metadata["format"] = FORMAT_NAME;
    archive.metadata["format_version"] = std::to_string(FORMAT_VERSION);
    archive.metadata["config"] = flow->config().toJson();
    for (auto& item : flow->named_parameters())
        archive.tensors.emplace_back(item.key(), item.value());
    return serializeArchive(archive);
}

std::map<std::string, std::string> readFlowMetadata(const std::string& bytes, const std::string& source) {
    return parse(bytes, source).metadata;
}

AugmentedCouplingFlow deserializeFlow(const std::string& bytes, const std::string& source) {
    TensorArchive archive = parse(bytes, source);
    FlowConfig config;
    try {
        config = FlowConfig::fromJson(archive.metadata["config"]);
    } catch (const std::exception& e) {
        fail(source, std::string("bad configuration: ") + e.what());
    }
    AugmentedCouplingFlow flow(config);
    torch::NoGradGuard guard;
    size_t numTensors = 0;
    for (auto& item : flow->named_parameters()) {
        const std::string& name = item.key();
        if (!archive.has(name))
            fail(source, "does not match its configuration: tensor '" + name + "' is missing");
        const torch::Tensor& stored = archive.get(name);
        if (stored.scalar_type() != item.value().scalar_type())
            fail(source, "tensor '" + name + "' has dtype " + c10::toString(stored.scalar_type()) +
                             " but the configuration says " + config.dtype);
        if (stored.sizes() != item.value().sizes())
            fail(source, "does not match its configuration: tensor '" + name + "' has shape " +
                             c10::str(stored.sizes()) + ", expected " + c10::str(item.value().sizes()));
        item.value().copy_(stored);
        numTensors++;
    }
    if (archive.tensors.size() != numTensors)
        fail(source, "does not match its configuration: it holds " + std::to_string(archive.tensors.size()) +
                         " tensors, the configuration needs " + std::to_string(numTensors));
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
