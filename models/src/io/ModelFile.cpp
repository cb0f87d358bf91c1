#include "openmmbg/io/ModelFile.h"

#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/Errors.h"
#include "openmmbg/Validation.h"
#include "openmmbg/io/TensorArchive.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace OpenMMBG {

namespace {

const char* FORMAT_NAME = "openmmbg-flow";
// Version 2 adds the header checksum (TensorArchive.h); version 1 files (data checksum only) stay
// readable.
const int FORMAT_VERSION = 2;
const char* KIND = "model file";

[[noreturn]] void fail(const std::string& source, const std::string& message) {
    throw std::runtime_error(std::string(KIND) + " '" + source + "': " + message);
}

// Parse the archive and check that it is a model file this build can read.
TensorArchive parse(const std::string& bytes, const std::string& source) {
    TensorArchive archive = deserializeArchive(bytes, source, KIND);
    if (archive.metadata["format"] != FORMAT_NAME)
        fail(source, "not an openmmbg model (format '" + archive.metadata["format"] + "')");
    int64_t version = 0;
    try {
        version = parseInteger("format_version", archive.metadata["format_version"], 0, 1000000);
    } catch (const std::invalid_argument&) {
        fail(source, "corrupt header: bad format_version '" + archive.metadata["format_version"] + "'");
    }
    if (version < 1 || version > FORMAT_VERSION)
        fail(source, "format version " + std::to_string(version) + " is not supported (this build reads up to " +
                         std::to_string(FORMAT_VERSION) + ")");
    if (version >= 2 && !archive.headerChecked)
        fail(source, "corrupt header: a version " + std::to_string(version) + " file must carry a header checksum");
    return archive;
}

}  // namespace

std::string serializeModel(Model& model, const std::map<std::string, std::string>& metadata) {
    TensorArchive archive;
    archive.metadata = metadata;
    archive.metadata["format"] = FORMAT_NAME;
    archive.metadata["format_version"] = std::to_string(FORMAT_VERSION);
    archive.metadata["config"] = model.configJson();
    for (auto& [name, tensor] : model.namedTensors())
        archive.tensors.emplace_back(name, tensor);
    return serializeArchive(archive);
}

std::map<std::string, std::string> readFlowMetadata(const std::string& bytes, const std::string& source) {
    return parse(bytes, source).metadata;
}

std::shared_ptr<Model> deserializeModel(const std::string& bytes, const std::string& source) {
    TensorArchive archive = parse(bytes, source);
    std::shared_ptr<Model> model;
    try {
        model = makeModel(archive.metadata["config"]);
    } catch (const std::exception& e) {
        fail(source, std::string("bad configuration: ") + e.what());
    }
    torch::NoGradGuard guard;
    size_t numTensors = 0;
    for (auto& [name, tensor] : model->namedTensors()) {
        if (!archive.has(name))
            fail(source, "does not match its configuration: tensor '" + name + "' is missing");
        const torch::Tensor& stored = archive.get(name);
        if (stored.scalar_type() != tensor.scalar_type())
            fail(source, "tensor '" + name + "' has dtype " + c10::toString(stored.scalar_type()) +
                             " but the configuration says " + c10::toString(tensor.scalar_type()));
        if (stored.sizes() != tensor.sizes())
            fail(source, "does not match its configuration: tensor '" + name + "' has shape " +
                             c10::str(stored.sizes()) + ", expected " + c10::str(tensor.sizes()));
        tensor.copy_(stored);
        numTensors++;
    }
    if (archive.tensors.size() != numTensors)
        fail(source, "does not match its configuration: it holds " + std::to_string(archive.tensors.size()) +
                         " tensors, the configuration needs " + std::to_string(numTensors));
    return model;
}

std::string serializeFlow(AugmentedCouplingFlow& flow, const std::map<std::string, std::string>& metadata) {
    AugmentedCouplingFlowModel model(flow);
    return serializeModel(model, metadata);
}

AugmentedCouplingFlow deserializeFlow(const std::string& bytes, const std::string& source) {
    std::shared_ptr<Model> model = deserializeModel(bytes, source);
    try {
        return augmentedCouplingFlowOf(*model, "model file '" + source + "'");
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(e.what());
    }
}

void saveFlow(AugmentedCouplingFlow& flow, const std::string& path, const std::map<std::string, std::string>& metadata) {
    writeFileAtomically(path, serializeFlow(flow, metadata));
}

AugmentedCouplingFlow loadFlow(const std::string& path) { return deserializeFlow(readFileBytes(path), path); }

void saveModel(Model& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
    writeFileAtomically(path, serializeModel(model, metadata));
}

std::shared_ptr<Model> loadModel(const std::string& path) { return deserializeModel(readFileBytes(path), path); }

}  // namespace OpenMMBG
