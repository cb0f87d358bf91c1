// Reading DCD files: files written byte by byte in the layout of OpenMM's DCDFile (with and without
// unit cells) read back exactly (float32 angstrom -> nm), particle subsets and frame ranges, and
// clear errors for bad, truncated and mismatched files.
#include "openmmbg/io/DcdReader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

using namespace OpenMMBG;

namespace {

void put32(std::string& out, int32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void putFloat(std::string& out, float v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void putDouble(std::string& out, double v) { out.append(reinterpret_cast<const char*>(&v), 8); }

/** Frame f, particle i, coordinate d in angstrom: values that are not round in float32. */
float coordinate(int f, int i, int d) { return 1.1f * float(f) - 2.7f * float(i) + 0.37f * float(d * d) + 0.013f; }

/** The bytes OpenMM's DCDFile writes for numFrames frames of n particles (see openmm/app/dcdfile.py). */
std::string dcdBytes(int n, int numFrames, bool unitCell, int headerFrames = -1) {
    std::string out;
    put32(out, 84);
    out += "CORD";
    const int32_t icntrl9[9] = {
        headerFrames < 0 ? numFrames : headerFrames, 100, 10, 100 + 10 * (numFrames - 1), 0, 0, 0, 0, 0};
    for (int32_t v : icntrl9)
        put32(out, v);
    putFloat(out, float(0.002 / 0.04888821));
    const int32_t rest[13] = {unitCell ? 1 : 0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 84, 164, 2};
    for (int32_t v : rest)
        put32(out, v);
    std::string title1 = "Created by OpenMM", title2 = "Created Thu Jan  1 00:00:00 1970";
    title1.resize(80, '\0');
    title2.resize(80, '\0');
    out += title1 + title2;
    put32(out, 164);
    put32(out, 4);
    put32(out, n);
    put32(out, 4);
    for (int f = 0; f < numFrames; f++) {
        if (unitCell) {
            put32(out, 48);
            for (double v : {20.0 + f, 0.0, 21.0, 0.0, 0.0, 22.0})
                putDouble(out, v);
            put32(out, 48);
        }
        for (int d = 0; d < 3; d++) {
            put32(out, 4 * n);
            for (int i = 0; i < n; i++)
                putFloat(out, coordinate(f, i, d));
            put32(out, 4 * n);
        }
    }
    return out;
}

std::string writeFile(const std::string& name, const std::string& bytes) {
    const std::string path = (std::filesystem::temp_directory_path() / ("openmmbg_dcd_" + name)).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

void expectError(const std::function<void()>& f, const std::string& fragment) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected one mentioning '" << fragment << "'";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

void expectFrames(const Array& a, const std::vector<int>& frames, const std::vector<int>& particles) {
    ASSERT_EQ(a.shape, (std::vector<int64_t>{int64_t(frames.size()), int64_t(particles.size()), 3}));
    for (size_t k = 0; k < frames.size(); k++)
        for (size_t i = 0; i < particles.size(); i++)
            for (int d = 0; d < 3; d++)
                EXPECT_EQ(a.values[(k * particles.size() + i) * 3 + d],
                          double(coordinate(frames[k], particles[i], d)) / 10.0)
                    << "frame " << frames[k] << " particle " << particles[i] << " dim " << d;
}

}  // namespace

TEST(DcdReader, ReadsFramesWithoutUnitCell) {
    const std::string path = writeFile("plain.dcd", dcdBytes(3, 4, false));
    const DcdHeader h = readDcdHeader(path);
    EXPECT_EQ(h.numParticles, 3);
    EXPECT_EQ(h.numFrames, 4);
    EXPECT_EQ(h.headerFrames, 4);
    EXPECT_FALSE(h.hasUnitCell);
    EXPECT_FALSE(h.partialLastFrame);
    EXPECT_EQ(h.firstStep, 100);
    EXPECT_EQ(h.interval, 10);
    EXPECT_FLOAT_EQ(h.timestep, float(0.002 / 0.04888821));
    ASSERT_EQ(h.titles.size(), 2u);
    EXPECT_EQ(h.titles[0], "Created by OpenMM");
    EXPECT_EQ(h.headerBytes, 276);
    EXPECT_EQ(h.frameBytes, 3 * (4 * 3 + 8));
    expectFrames(readDcd(path), {0, 1, 2, 3}, {0, 1, 2});
}

TEST(DcdReader, ReadsFramesWithUnitCell) {
    const std::string path = writeFile("cell.dcd", dcdBytes(5, 3, true));
    const DcdHeader h = readDcdHeader(path);
    EXPECT_TRUE(h.hasUnitCell);
    EXPECT_EQ(h.numFrames, 3);
    EXPECT_EQ(h.frameBytes, 56 + 3 * (4 * 5 + 8));
    expectFrames(readDcd(path), {0, 1, 2}, {0, 1, 2, 3, 4});
}

TEST(DcdReader, ParticleSubsetAndFrameRange) {
    const std::string path = writeFile("subset.dcd", dcdBytes(4, 6, true));
    DcdReadOptions options;
    options.particles = {3, 0, 3};
    options.begin = 1;
    options.end = 6;
    options.stride = 2;
    options.expectedParticles = 4;
    expectFrames(readDcd(path, options), {1, 3, 5}, {3, 0, 3});
    options.end = -1;
    options.begin = 4;
    options.stride = 1;
    expectFrames(readDcd(path, options), {4, 5}, {3, 0, 3});
    options.begin = 6;
    expectFrames(readDcd(path, options), {}, {3, 0, 3});
}

TEST(DcdReader, HeaderOnlyFileHasNoFrames) {
    const std::string path = writeFile("empty.dcd", dcdBytes(2, 0, false));
    const Array a = readDcd(path);
    EXPECT_EQ(a.shape, (std::vector<int64_t>{0, 2, 3}));
}

TEST(DcdReader, TruncatedLastFrameIsAnErrorUnlessAllowed) {
    std::string bytes = dcdBytes(3, 4, true);
    bytes.resize(bytes.size() - 5);
    const std::string path = writeFile("truncated.dcd", bytes);
    EXPECT_TRUE(readDcdHeader(path).partialLastFrame);
    expectError([&] { readDcd(path); }, "truncated: frame 3 (0-based) is incomplete");
    DcdReadOptions options;
    options.allowTruncated = true;
    expectFrames(readDcd(path, options), {0, 1, 2}, {0, 1, 2});
}

TEST(DcdReader, MissingFramesAreAnErrorUnlessAllowed) {
    const std::string path = writeFile("missing.dcd", dcdBytes(3, 2, false, 5));
    expectError([&] { readDcd(path); }, "the header promises 5 frames but the file holds 2 (frame 2 is missing)");
    DcdReadOptions options;
    options.allowTruncated = true;
    expectFrames(readDcd(path, options), {0, 1}, {0, 1, 2});
}

TEST(DcdReader, BadFilesAreClearErrors) {
    expectError([] { readDcd("/nonexistent/file.dcd"); }, "cannot open '/nonexistent/file.dcd' for reading");
    expectError([] { readDcd(writeFile("tiny.dcd", "ab")); }, "not a DCD file");
    expectError([] { readDcd(writeFile("text.dcd", std::string(300, 'x'))); }, "not a DCD file (bad magic");
    // A header cut inside the title record.
    expectError([] { readDcd(writeFile("cut.dcd", dcdBytes(3, 1, false).substr(0, 150))); }, "truncated title record");

    std::string bigEndian = dcdBytes(3, 1, false);
    const char swappedMarker[4] = {0, 0, 0, 84};
    std::memcpy(bigEndian.data(), swappedMarker, 4);
    expectError([&] { readDcd(writeFile("big.dcd", bigEndian)); }, "big-endian");

    std::string longMarkers = dcdBytes(3, 1, false);
    longMarkers.insert(4, std::string(4, '\0'));
    expectError([&] { readDcd(writeFile("long.dcd", longMarkers)); }, "8-byte record markers");

    std::string fixed = dcdBytes(3, 1, false);
    const int32_t two = 2;
    std::memcpy(fixed.data() + 8 + 4 * 8, &two, 4);
    expectError([&] { readDcd(writeFile("fixed.dcd", fixed)); }, "fixed atoms");

    // A frame whose record marker does not match the particle count.
    std::string corrupt = dcdBytes(3, 2, false);
    const int32_t wrong = 16;
    std::memcpy(corrupt.data() + 276 + 60, &wrong, 4);  // the x record of frame 1
    expectError([&] { readDcd(writeFile("corrupt.dcd", corrupt)); },
                "frame 1: bad record markers (16, 12) around the x coordinates");
}

TEST(DcdReader, BadSelectionsAreClearErrors) {
    const std::string path = writeFile("select.dcd", dcdBytes(3, 4, false));
    DcdReadOptions options;
    options.particles = {0, 3};
    expectError([&] { readDcd(path, options); }, "particle index 3 is out of range for a file of 3 particles");
    options.particles = {-1};
    expectError([&] { readDcd(path, options); }, "particle index -1 is out of range");
    options = DcdReadOptions();
    options.expectedParticles = 22;
    expectError([&] { readDcd(path, options); }, "the file holds 3 particles but 22 were expected");
    options = DcdReadOptions();
    options.end = 5;
    expectError([&] { readDcd(path, options); }, "frame range [0, 5) is outside the file's 4 frames");
    options = DcdReadOptions();
    options.begin = 3;
    options.end = 2;
    expectError([&] { readDcd(path, options); }, "frame range [3, 2)");
    options = DcdReadOptions();
    options.stride = 0;
    expectError([&] { readDcd(path, options); }, "frame stride must be at least 1");
}

// ---- DcdWriter ----
#include "openmmbg/io/DcdWriter.h"

namespace {

std::vector<double> writerFrame(int f, int n) {
    std::vector<double> x(3 * n);
    for (int i = 0; i < n; i++)
        for (int d = 0; d < 3; d++)
            x[3 * i + d] = 0.1 * coordinate(f, i, d);  // nm; float-exact in angstrom
    return x;
}

}  // namespace

TEST(DcdWriter, FramesReadBackExactlyAndTheHeaderIsCurrent) {
    const std::string path = (std::filesystem::temp_directory_path() / "openmmbg_writer.dcd").string();
    const int n = 5;
    {
        DcdWriter writer(path, n, 500, 500, 0.001);
        for (int f = 0; f < 3; f++) {
            writer.writeFrame(writerFrame(f, n).data());
            writer.flush();
            // Readable after every frame, with the frame count in the header.
            DcdHeader h = readDcdHeader(path);
            EXPECT_EQ(h.numFrames, f + 1);
            EXPECT_EQ(h.headerFrames, f + 1);
        }
    }
    DcdHeader h = readDcdHeader(path);
    EXPECT_EQ(h.numParticles, n);
    EXPECT_EQ(h.firstStep, 500);
    EXPECT_EQ(h.interval, 500);
    EXPECT_NEAR(h.timestep * 0.04888821, 0.001, 1e-9);
    EXPECT_FALSE(h.hasUnitCell);
    Array a = readDcd(path);
    ASSERT_EQ(a.shape, (std::vector<int64_t>{3, n, 3}));
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < n; i++)
            for (int d = 0; d < 3; d++)
                EXPECT_NEAR(a.values[(f * n + i) * 3 + d], 0.1 * coordinate(f, i, d), 1e-6);
}

TEST(DcdWriter, ReopeningKeepsTheRequestedFramesAndDropsTheRest) {
    const std::string path = (std::filesystem::temp_directory_path() / "openmmbg_writer_resume.dcd").string();
    const int n = 4;
    {
        DcdWriter writer(path, n, 10, 10, 0.002);
        for (int f = 0; f < 5; f++)
            writer.writeFrame(writerFrame(f, n).data());
    }
    {
        // A killed run may also leave half a frame: append a few stray bytes.
        std::ofstream out(path, std::ios::binary | std::ios::app);
        out << "partial";
    }
    {
        DcdWriter writer(path, n, 10, 10, 0.002, 3);
        EXPECT_EQ(writer.getNumFrames(), 3);
        writer.writeFrame(writerFrame(7, n).data());
    }
    Array a = readDcd(path);
    ASSERT_EQ(a.shape[0], 4);
    EXPECT_NEAR(a.values[(2 * n) * 3], 0.1 * coordinate(2, 0, 0), 1e-6);
    EXPECT_NEAR(a.values[(3 * n) * 3], 0.1 * coordinate(7, 0, 0), 1e-6);
    EXPECT_FALSE(readDcdHeader(path).partialLastFrame);
    EXPECT_THROW(DcdWriter(path, n + 1, 10, 10, 0.002, 1), std::runtime_error);  // wrong particle count
    EXPECT_THROW(DcdWriter(path, n, 10, 10, 0.002, 9), std::runtime_error);      // fewer frames than kept
    EXPECT_THROW(DcdWriter("/nonexistent/dir/x.dcd", n, 10, 10, 0.002), std::runtime_error);
}
