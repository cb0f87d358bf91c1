#pragma once
/**
 * Named tensors plus string metadata in the safetensors layout:
 *
 *   [8 bytes: little-endian uint64 H][H bytes: JSON header, space-padded to 8-byte alignment]
 *   [raw little-endian tensor data]
 *
 * The header maps each name to {"dtype": "F32"|"F64"|"I64"|"U8", "shape": [...],
 * "data_offsets": [begin, end]} and holds "__metadata__" (string values) with "checksum" =
 * "fnv1a64:<16 hex digits>" of the data section and "header_checksum" (the same hash of the canonical
 * header dump without that entry: keys sorted, no spaces), so no byte of either can change unnoticed;
 * archives written before header checksums are read with the data checksum alone. Model files (.bgm) and training checkpoints are
 * archives. Tensors are stored in insertion order.
 */
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace OpenMMBG {

struct TensorArchive {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    std::map<std::string, std::string> metadata;
    /** Set by deserializeArchive when the header carried a header checksum and it matched. */
    bool headerChecked = false;

    /** The tensor with this name; throws std::runtime_error naming `source` if it is absent. */
    const torch::Tensor& get(const std::string& name, const std::string& source = "archive") const;
    /** The values of the tensor with this name as float64 on the host, whatever its stored dtype. */
    std::vector<double> getDoubles(const std::string& name, const std::string& source = "archive") const;
    bool has(const std::string& name) const;
};

/**
 * The values of a tensor (any device and dtype) as float64 on the host, in row-major order: the
 * form in which the torch-free interfaces (FlowModel, the plugin's kernels) and checkpoint restores
 * take tensors out of LibTorch.
 */
std::vector<double> toHostDoubles(const torch::Tensor& t);

/** Serialise an archive (tensors are copied to CPU, contiguous). */
std::string serializeArchive(const TensorArchive& archive);
/**
 * Parse an archive; throws std::runtime_error("<kind> '<source>': ...") naming the problem for
 * truncated or corrupt bytes and checksum mismatches.
 */
TensorArchive deserializeArchive(const std::string& bytes, const std::string& source, const std::string& kind);

/**
 * The header checksum of an archive header given as JSON text: "fnv1a64:<16 hex digits>" of its
 * canonical dump without the header_checksum entry. Throws std::invalid_argument for text that is
 * not a JSON object with a __metadata__ object.
 */
std::string headerChecksum(const std::string& headerJson);

/** FNV-1a 64-bit hash. */
uint64_t fnv1a64(const char* data, size_t size);

}  // namespace OpenMMBG
