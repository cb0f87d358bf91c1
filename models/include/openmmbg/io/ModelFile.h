#pragma once
/**
 * The .bgm model file: the safetensors layout, readable from numpy without torch.
 *
 *   [8 bytes: little-endian uint64 H][H bytes: JSON header][raw little-endian tensor data]
 *
 * The header maps each parameter name to {"dtype": "F32"|"F64", "shape": [...],
 * "data_offsets": [begin, end]} (offsets relative to the start of the data section) and holds
 * "__metadata__" with string values: "format" = "openmmbg-flow", "format_version" = "1",
 * "config" = the full model configuration as JSON (its "family" picks the model family; files
 * without it are "eacf"), "checksum" = "fnv1a64:<16 hex digits>" of the data section, plus any
 * user metadata. See docs/model-format.md.
 */
#include "openmmbg/eacf/AugmentedCouplingFlow.h"
#include "openmmbg/Model.h"
#include "openmmbg/io/Files.h"

#include <map>
#include <memory>
#include <string>

namespace OpenMMBG {

/** Serialise a model (configuration and the tensors it names) to the bytes of a .bgm file. */
std::string serializeModel(Model& model, const std::map<std::string, std::string>& metadata = {});
/**
 * Rebuild a model of any family from the bytes of a .bgm file. Throws std::runtime_error naming the
 * problem (truncated, corrupt, unsupported version, or tensors that do not match the configuration).
 * @param source a name for error messages (the file path)
 */
std::shared_ptr<Model> deserializeModel(const std::string& bytes, const std::string& source = "model");
/** Write a model atomically. */
void saveModel(Model& model, const std::string& path, const std::map<std::string, std::string>& metadata = {});
/** Load a model of any family from a .bgm file. */
std::shared_ptr<Model> loadModel(const std::string& path);

/** Serialise a flow (configuration and parameters) to the bytes of a .bgm file. */
std::string serializeFlow(AugmentedCouplingFlow& flow, const std::map<std::string, std::string>& metadata = {});
/**
 * Rebuild a flow from the bytes of a .bgm file. Throws std::runtime_error naming the problem
 * (truncated, corrupt, unsupported version, or tensors that do not match the configuration).
 * @param source a name for error messages (the file path)
 */
AugmentedCouplingFlow deserializeFlow(const std::string& bytes, const std::string& source = "model");
/** Read the user metadata of a .bgm file's bytes. */
std::map<std::string, std::string> readFlowMetadata(const std::string& bytes, const std::string& source = "model");
/** Write a flow atomically (temporary file in the same directory, then rename). */
void saveFlow(AugmentedCouplingFlow& flow, const std::string& path,
              const std::map<std::string, std::string>& metadata = {});
/** Load a flow from a .bgm file. */
AugmentedCouplingFlow loadFlow(const std::string& path);

}  // namespace OpenMMBG
