// Reading .npy files: float32 and float64, format versions 1 and 2, particle-major flattening,
// centring, and clear errors for bad files.
#include "openmmbg/io/DataIO.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

using namespace OpenMMBG;

namespace {

std::string writeNpy(const std::string& name, const std::string& descr, const std::string& shape, const void* data,
                     size_t bytes, int version = 1, bool fortran = false) {
    std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                         ", 'shape': " + shape + ", }";
    const size_t prefix = version == 1 ? 10 : 12;
    while ((prefix + header.size() + 1) % 64 != 0)
        header += ' ';
    header += '\n';
    std::string out = "\x93NUMPY";
    out += char(version);
    out += char(0);
    if (version == 1) {
        uint16_t n = header.size();
        out.append(reinterpret_cast<const char*>(&n), 2);
    } else {
        uint32_t n = header.size();
        out.append(reinterpret_cast<const char*>(&n), 4);
    }
    out += header;
    out.append(static_cast<const char*>(data), bytes);
    std::string path = (std::filesystem::temp_directory_path() / ("openmmbg_npy_" + name)).string();
    std::ofstream(path, std::ios::binary) << out;
    return path;
}

void expectError(const std::string& path, const std::string& fragment) {
    try {
        readNpy(path);
        ADD_FAILURE() << "no error for " << path;
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(ReadNpy, Float32AndFloat64) {
    float f[6] = {1, 2, 3, 4, 5, 6.5f};
    double d[6] = {1, 2, 3, 4, 5, 6.25};
    Array a = readNpy(writeNpy("f4.npy", "<f4", "(2, 3)", f, sizeof(f)));
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.values[5], 6.5);
    Array b = readNpy(writeNpy("f8.npy", "<f8", "(3, 2)", d, sizeof(d), 2));
    EXPECT_EQ(b.shape, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(b.values[5], 6.25);
}

TEST(ReadNpy, ConfigurationsAndCentring) {
    // Two particles in 2-D, particle-major: (x0, y0, x1, y1).
    double d[8] = {0, 0, 2, 4, 1, 1, 1, 1};
    Array raw = readNpy(writeNpy("conf.npy", "<f8", "(2, 4)", d, sizeof(d)));
    Array c = asConfigurations(raw, 2, 2, true, "conf");
    EXPECT_EQ(c.shape, (std::vector<int64_t>{2, 2, 2}));
    EXPECT_EQ(c.values[0], -1.0);
    EXPECT_EQ(c.values[1], -2.0);
    EXPECT_EQ(c.values[2], 1.0);
    EXPECT_EQ(c.values[3], 2.0);
    EXPECT_THROW(asConfigurations(raw, 3, 2, true, "conf"), std::runtime_error);
    Array s = sliceRows(raw, 1, 2);
    EXPECT_EQ(s.rows(), 1);
    EXPECT_EQ(s.values[0], 1.0);
    EXPECT_THROW(sliceRows(raw, 1, 3), std::runtime_error);
}

TEST(ReadNpy, BadFiles) {
    int32_t i[2] = {1, 2};
    double d[4] = {1, 2, 3, 4};
    expectError(writeNpy("int.npy", "<i4", "(2,)", i, sizeof(i)), "not supported");
    expectError(writeNpy("big.npy", ">f8", "(4,)", d, sizeof(d)), "not supported");
    expectError(writeNpy("fortran.npy", "<f8", "(2, 2)", d, sizeof(d), 1, true), "Fortran");
    expectError(writeNpy("short.npy", "<f8", "(8,)", d, sizeof(d)), "truncated");
    std::string path = (std::filesystem::temp_directory_path() / "openmmbg_npy_magic.npy").string();
    std::ofstream(path, std::ios::binary) << "not a numpy file at all";
    expectError(path, "bad magic");
    expectError("/nonexistent/file.npy", "cannot open");
}
