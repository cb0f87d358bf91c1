#pragma once
/**
 * Reading configurations for training and evaluation. This header does not depend on LibTorch.
 */
#include <cstdint>
#include <string>
#include <vector>

namespace OpenMMBG {

/** A dense array read from disk: row-major float64 values and their shape. */
struct Array {
    std::vector<int64_t> shape;
    std::vector<double> values;
    int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
    int64_t rowSize() const;
};

/**
 * Read a NumPy .npy file (format versions 1-3) holding little-endian float32 or float64 data in C
 * order. Throws std::runtime_error naming the file and the problem for anything else.
 */
Array readNpy(const std::string& path);

/**
 * Interpret an array of shape [n, N * D] or [n, N, D] as n configurations of N particles in D
 * dimensions and return [n, N, D] row-major. Throws std::runtime_error on a mismatch.
 * @param centre subtract each configuration's centroid
 */
Array asConfigurations(const Array& data, int numParticles, int dim, bool centre, const std::string& source);

/** Rows [begin, end) of an array. */
Array sliceRows(const Array& data, int64_t begin, int64_t end);

}  // namespace OpenMMBG
