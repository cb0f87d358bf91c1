#include "openmmbg/io/DataIO.h"

#include "openmmbg/Validation.h"
#include "openmmbg/io/Files.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace OpenMMBG {

int64_t Array::rowSize() const {
    int64_t n = 1;
    for (size_t i = 1; i < shape.size(); i++)
        n *= shape[i];
    return n;
}

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& message) {
    throw std::runtime_error("'" + path + "': " + message);
}

}  // namespace

Array readNpy(const std::string& path) {
    const std::string bytes = readFileBytes(path);
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
        fail(path, "not a .npy file (bad magic)");
    const int major = uint8_t(bytes[6]);
    size_t headerLen, offset;
    if (major == 1) {
        headerLen = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12)
            fail(path, "truncated .npy header");
        uint32_t n;
        std::memcpy(&n, bytes.data() + 8, 4);
        headerLen = n;
        offset = 12;
    } else {
        fail(path, ".npy format version " + std::to_string(major) + " is not supported");
    }
    if (offset + headerLen > bytes.size())
        fail(path, "truncated .npy header");
    const std::string header = bytes.substr(offset, headerLen);
    std::smatch m;
    if (!std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([^']*)'")))
        fail(path, "no dtype in .npy header");
    const std::string descr = m[1];
    int itemSize;
    if (descr == "<f4")
        itemSize = 4;
    else if (descr == "<f8")
        itemSize = 8;
    else
        fail(path, "dtype '" + descr + "' is not supported (need little-endian float32 or float64)");
    if (std::regex_search(header, m, std::regex("'fortran_order'\\s*:\\s*True")))
        fail(path, "Fortran-ordered arrays are not supported");
    if (!std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
        fail(path, "no shape in .npy header");
    Array result;
    int64_t count = 1;
    std::string dims = m[1];
    std::regex number("\\d+");
    try {
        // 64-bit sizes with overflow refused: a damaged header cannot wrap to a small count.
        for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it) {
            result.shape.push_back(parseInteger("a .npy dimension", it->str(), 0, INT64_MAX));
            count = checkedMultiply("the .npy array", count, result.shape.back());
        }
        checkedMultiply("the .npy array", count, itemSize);
    } catch (const std::invalid_argument& e) {
        fail(path, std::string("corrupt .npy header: ") + e.what());
    }
    const size_t dataStart = offset + headerLen;
    if (uint64_t(bytes.size() - dataStart) < uint64_t(count) * uint64_t(itemSize))
        fail(path, "truncated: the header promises " + std::to_string(count) + " values but the file is too short");
    result.values.resize(count);
    const char* p = bytes.data() + dataStart;
    if (itemSize == 8) {
        std::memcpy(result.values.data(), p, count * 8);
    } else {
        for (int64_t i = 0; i < count; i++) {
            float f;
            std::memcpy(&f, p + 4 * i, 4);
            result.values[i] = f;
        }
    }
    return result;
}

Array asConfigurations(const Array& data, int numParticles, int dim, bool centre, const std::string& source) {
    const int64_t per = int64_t(numParticles) * dim;
    if (data.shape.empty() || data.rowSize() != per)
        throw std::runtime_error("'" + source + "': rows hold " + std::to_string(data.rowSize()) + " values but " +
                                 std::to_string(numParticles) + " particles in " + std::to_string(dim) +
                                 " dimensions need " + std::to_string(per));
    Array out;
    out.shape = {data.rows(), numParticles, dim};
    out.values = data.values;
    if (centre) {
        for (int64_t r = 0; r < data.rows(); r++) {
            double* row = out.values.data() + r * per;
            for (int d = 0; d < dim; d++) {
                double mean = 0;
                for (int i = 0; i < numParticles; i++)
                    mean += row[i * dim + d];
                mean /= numParticles;
                for (int i = 0; i < numParticles; i++)
                    row[i * dim + d] -= mean;
            }
        }
    }
    return out;
}

Array sliceRows(const Array& data, int64_t begin, int64_t end) {
    if (begin < 0 || end > data.rows() || begin > end)
        throw std::runtime_error("row range [" + std::to_string(begin) + ", " + std::to_string(end) +
                                 ") is outside an array of " + std::to_string(data.rows()) + " rows");
    Array out;
    out.shape = data.shape;
    out.shape[0] = end - begin;
    const int64_t rs = data.rowSize();
    out.values.assign(data.values.begin() + begin * rs, data.values.begin() + end * rs);
    return out;
}

}  // namespace OpenMMBG
