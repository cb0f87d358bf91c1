#include "openmmbg/io/DcdReader.h"

#include "openmmbg/io/Files.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

namespace OpenMMBG {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& message) {
    throw std::runtime_error("'" + path + "': " + message);
}

int32_t int32At(const char* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

int32_t swapped(int32_t v) {
    uint32_t u = static_cast<uint32_t>(v);
    u = (u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24);
    return static_cast<int32_t>(u);
}

/** Reads exactly n bytes at offset into buffer, or reports what is missing. */
void readInto(std::ifstream& in, const std::string& path, int64_t offset, int64_t n, const char* what,
              std::string& buffer) {
    buffer.resize(size_t(n));
    in.clear();
    in.seekg(offset);
    in.read(buffer.data(), n);
    if (in.gcount() != n)
        fail(path, std::string("truncated ") + what + " (needs " + std::to_string(n) + " bytes at offset " +
                       std::to_string(offset) + ", found " + std::to_string(in.gcount()) + ")");
}

std::string readAt(std::ifstream& in, const std::string& path, int64_t offset, int64_t n, const char* what) {
    std::string buffer;
    readInto(in, path, offset, n, what, buffer);
    return buffer;
}

std::ifstream openFile(const std::string& path) {
    checkReadableFile(path);  // regular files only: a FIFO or device would block or never end
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(path, "cannot open file");
    return in;
}

int64_t fileSize(std::ifstream& in) {
    in.seekg(0, std::ios::end);
    return static_cast<int64_t>(in.tellg());
}

DcdHeader parseHeader(std::ifstream& in, const std::string& path) {
    const int64_t size = fileSize(in);
    if (size < 4)
        fail(path, "not a DCD file (only " + std::to_string(size) + " bytes)");
    const std::string first = readAt(in, path, 0, std::min<int64_t>(size, 12), "header");
    const int32_t marker = int32At(first.data());
    const bool cord = first.size() >= 8 && first.compare(4, 4, "CORD") == 0;
    if (marker != 84 || !cord) {
        if (swapped(marker) == 84 && cord)
            fail(path, "big-endian DCD files are not supported (OpenMM writes little-endian)");
        if (marker == 84 && first.size() >= 12 && int32At(first.data() + 4) == 0 && first.compare(8, 4, "CORD") == 0)
            fail(path, "DCD files with 8-byte record markers are not supported (OpenMM writes 4-byte markers)");
        fail(path, "not a DCD file (bad magic: expected a record of 84 bytes starting with 'CORD')");
    }
    const std::string head = readAt(in, path, 0, 96, "header");
    int32_t icntrl[20];
    std::memcpy(icntrl, head.data() + 8, sizeof(icntrl));
    if (int32At(head.data() + 88) != 84)
        fail(path, "not a DCD file (bad end marker of the first record: " + std::to_string(int32At(head.data() + 88)) +
                       ", expected 84)");
    DcdHeader h;
    h.headerFrames = icntrl[0];
    h.firstStep = icntrl[1];
    h.interval = icntrl[2];
    const bool charmm = icntrl[19] != 0;  // X-PLOR files leave the CHARMM version at 0
    if (charmm) {
        float dt;
        std::memcpy(&dt, &icntrl[9], 4);
        h.timestep = dt;
        h.hasUnitCell = icntrl[10] != 0;
        if (icntrl[11] != 0)
            fail(path, "DCD files with 4-D coordinates are not supported");
    } else {
        double dt;
        std::memcpy(&dt, &icntrl[9], 8);
        h.timestep = dt;
    }
    if (icntrl[8] != 0)
        fail(path, "DCD files with fixed atoms are not supported (the header declares " + std::to_string(icntrl[8]) +
                       " fixed atoms)");
    if (h.headerFrames < 0)
        fail(path, "bad header: negative frame count " + std::to_string(h.headerFrames));

    // Title record: [4 + 80 n] n lines of 80 characters [4 + 80 n].
    const int32_t titleBytes = int32At(head.data() + 92);
    if (titleBytes < 4 || (titleBytes - 4) % 80 != 0)
        fail(path, "not a DCD file (bad title record length " + std::to_string(titleBytes) + ")");
    const std::string title = readAt(in, path, 96, int64_t(titleBytes) + 4, "title record");
    const int32_t numTitles = int32At(title.data());
    if (int64_t(numTitles) * 80 + 4 != titleBytes || int32At(title.data() + titleBytes) != titleBytes)
        fail(path, "not a DCD file (inconsistent title record)");
    for (int i = 0; i < numTitles; i++) {
        std::string line = title.substr(4 + 80 * size_t(i), 80);
        line.erase(line.find_last_not_of(std::string("\0 ", 2)) + 1);
        h.titles.push_back(line);
    }

    // Atom count record: [4] N [4].
    const int64_t atomOffset = 96 + int64_t(titleBytes) + 4;
    const std::string atoms = readAt(in, path, atomOffset, 12, "atom count record");
    if (int32At(atoms.data()) != 4 || int32At(atoms.data() + 8) != 4)
        fail(path, "not a DCD file (bad atom count record)");
    h.numParticles = int32At(atoms.data() + 4);
    if (h.numParticles <= 0)
        fail(path, "bad header: " + std::to_string(h.numParticles) + " particles");

    h.headerBytes = atomOffset + 12;
    h.frameBytes = (h.hasUnitCell ? 56 : 0) + 3 * (4 * h.numParticles + 8);
    const int64_t body = std::max<int64_t>(0, size - h.headerBytes);
    h.numFrames = body / h.frameBytes;
    h.partialLastFrame = body % h.frameBytes != 0;
    return h;
}

}  // namespace

DcdHeader readDcdHeader(const std::string& path) {
    std::ifstream in = openFile(path);
    return parseHeader(in, path);
}

Array readDcd(const std::string& path, const DcdReadOptions& options) {
    std::ifstream in = openFile(path);
    const DcdHeader h = parseHeader(in, path);
    const int64_t n = h.numParticles;
    if (options.expectedParticles >= 0 && options.expectedParticles != n)
        fail(path, "the file holds " + std::to_string(n) + " particles but " +
                       std::to_string(options.expectedParticles) + " were expected");
    if (!options.allowTruncated) {
        if (h.partialLastFrame)
            fail(path, "truncated: frame " + std::to_string(h.numFrames) + " (0-based) is incomplete (" +
                           std::to_string((fileSize(in) - h.headerBytes) % h.frameBytes) + " of " +
                           std::to_string(h.frameBytes) + " bytes); set allowTruncated to read the " +
                           std::to_string(h.numFrames) + " complete frames");
        if (h.headerFrames > h.numFrames)
            fail(path, "truncated: the header promises " + std::to_string(h.headerFrames) +
                           " frames but the file holds " + std::to_string(h.numFrames) + " (frame " +
                           std::to_string(h.numFrames) + " is missing)");
    }
    std::vector<int64_t> particles = options.particles;
    if (particles.empty()) {
        particles.resize(size_t(n));
        for (int64_t i = 0; i < n; i++)
            particles[size_t(i)] = i;
    }
    for (int64_t p : particles)
        if (p < 0 || p >= n)
            fail(path, "particle index " + std::to_string(p) + " is out of range for a file of " + std::to_string(n) +
                           " particles");
    if (options.stride < 1)
        fail(path, "frame stride must be at least 1, got " + std::to_string(options.stride));
    const int64_t end = options.end < 0 ? h.numFrames : options.end;
    if (options.begin < 0 || end > h.numFrames || options.begin > end)
        fail(path, "frame range [" + std::to_string(options.begin) + ", " + std::to_string(end) +
                       ") is outside the file's " + std::to_string(h.numFrames) + " frames");

    const int64_t numSelected = static_cast<int64_t>(particles.size());
    const int64_t frames = (end - options.begin + options.stride - 1) / options.stride;
    Array out;
    out.shape = {frames, numSelected, 3};
    out.values.resize(size_t(frames * numSelected * 3));
    const int64_t recordBytes = 4 * n;
    std::vector<float> coords(size_t(3 * n));
    std::string buffer;
    for (int64_t k = 0; k < frames; k++) {
        const int64_t frame = options.begin + k * options.stride;
        readInto(in, path, h.headerBytes + frame * h.frameBytes, h.frameBytes, "frame", buffer);
        auto what = [frame] { return "frame " + std::to_string(frame); };
        const char* p = buffer.data();
        if (h.hasUnitCell) {
            if (int32At(p) != 48 || int32At(p + 52) != 48)
                fail(path, what() + ": bad unit cell record markers (" + std::to_string(int32At(p)) + ", " +
                               std::to_string(int32At(p + 52)) + "; expected 48)");
            p += 56;
        }
        for (int d = 0; d < 3; d++) {
            const int32_t before = int32At(p), after = int32At(p + 4 + recordBytes);
            if (before != recordBytes || after != recordBytes)
                fail(path, what() + ": bad record markers (" + std::to_string(before) + ", " + std::to_string(after) +
                               ") around the " + std::string(1, "xyz"[d]) + " coordinates; expected " +
                               std::to_string(recordBytes));
            std::memcpy(coords.data() + d * n, p + 4, size_t(recordBytes));
            p += recordBytes + 8;
        }
        double* row = out.values.data() + k * numSelected * 3;
        for (int64_t i = 0; i < numSelected; i++)
            for (int d = 0; d < 3; d++)
                row[i * 3 + d] = double(coords[size_t(d * n + particles[size_t(i)])]) / 10.0;
    }
    return out;
}

}  // namespace OpenMMBG
