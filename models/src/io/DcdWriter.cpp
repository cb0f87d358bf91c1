#include "openmmbg/io/DcdWriter.h"

#include "openmmbg/io/DcdReader.h"

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace OpenMMBG {

namespace {

// Byte offset of icntrl[0] (the frame count): after the 4-byte record marker and "CORD".
const std::streamoff FRAME_COUNT_OFFSET = 8;

void putInt(std::string& out, int32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void putFloat(std::string& out, float v) { out.append(reinterpret_cast<const char*>(&v), 4); }

std::string header(int64_t numParticles, int64_t firstStep, int64_t interval, double timestepPs) {
    std::string h;
    putInt(h, 84);
    h += "CORD";
    int32_t icntrl[20] = {};
    icntrl[1] = int32_t(firstStep);
    icntrl[2] = int32_t(interval);
    icntrl[19] = 24;  // CHARMM version, as OpenMM writes
    for (int i = 0; i < 20; i++) {
        if (i == 9)
            putFloat(h, float(timestepPs / 0.04888821));  // AKMA time units
        else
            putInt(h, icntrl[i]);
    }
    putInt(h, 84);
    std::string title = "Created by openmm-bg";
    title.resize(80, ' ');
    putInt(h, 84);
    putInt(h, 1);
    h += title;
    putInt(h, 84);
    putInt(h, 4);
    putInt(h, int32_t(numParticles));
    putInt(h, 4);
    return h;
}

[[noreturn]] void fail(const std::string& path, const std::string& message) {
    throw std::runtime_error("'" + path + "': " + message);
}

}  // namespace

DcdWriter::DcdWriter(const std::string& path, int64_t numParticles, int64_t firstStep, int64_t interval,
                     double timestepPs, int64_t keepFrames)
    : path(path), numParticles(numParticles) {
    if (numParticles < 1)
        fail(path, "a DCD file needs at least one particle");
    if (keepFrames < 0) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << header(numParticles, firstStep, interval, timestepPs);
        if (!out)
            fail(path, "cannot write");
    } else {
        DcdHeader h = readDcdHeader(path);
        if (h.numParticles != numParticles)
            fail(path, "holds " + std::to_string(h.numParticles) + " particles, not " + std::to_string(numParticles));
        if (h.hasUnitCell)
            fail(path, "has unit cells; cannot append frames without them");
        if (h.numFrames < keepFrames)
            fail(path, "holds " + std::to_string(h.numFrames) + " complete frames but the checkpoint expects " +
                           std::to_string(keepFrames));
        std::filesystem::resize_file(path, uintmax_t(h.headerBytes + keepFrames * h.frameBytes));
        numFrames = keepFrames;
    }
    file.open(path, std::ios::binary | std::ios::in | std::ios::out);
    if (!file)
        fail(path, "cannot open for writing");
    file.seekp(FRAME_COUNT_OFFSET);
    int32_t count = int32_t(numFrames);
    file.write(reinterpret_cast<const char*>(&count), 4);
    file.seekp(0, std::ios::end);
}

void DcdWriter::writeFrame(const double* xyz) {
    const int32_t bytes = int32_t(4 * numParticles);
    std::string frame;
    frame.reserve(size_t(3 * (bytes + 8)));
    for (int d = 0; d < 3; d++) {
        putInt(frame, bytes);
        for (int64_t i = 0; i < numParticles; i++)
            putFloat(frame, float(xyz[3 * i + d] * 10.0));  // nm -> angstrom
        putInt(frame, bytes);
    }
    file.seekp(0, std::ios::end);
    file.write(frame.data(), std::streamsize(frame.size()));
    numFrames++;
    file.seekp(FRAME_COUNT_OFFSET);
    int32_t count = int32_t(numFrames);
    file.write(reinterpret_cast<const char*>(&count), 4);
    file.seekp(0, std::ios::end);
    if (!file)
        fail(path, "write failed (disk full?)");
}

void DcdWriter::flush() {
    file.flush();
    if (!file)
        fail(path, "flush failed");
}

}  // namespace OpenMMBG
