#pragma once
/**
 * Reading trajectories in the DCD format written by OpenMM's DCDReporter / DCDFile (the CHARMM
 * flavour): little-endian, 4-byte Fortran record markers, an optional unit-cell record before each
 * frame, coordinates stored as float32 in angstrom. This header depends on neither LibTorch nor
 * OpenMM.
 *
 * File layout read here (all integers int32, every record framed by its byte length before and after):
 *   [84] "CORD" icntrl[20] [84]           icntrl[0] frames, [1] first step, [2] interval, [8] fixed
 *                                         atoms, [9] time step (float32), [10] unit cell, [11] 4-D
 *   [4 + 80 n] n title lines of 80 chars [..]
 *   [4] number of atoms [4]
 *   per frame: ([48] 6 float64 unit cell [48]) if icntrl[10] != 0, then [4N] x [4N] [4N] y [4N] [4N] z [4N]
 *
 * Not supported (each is a clear error): big-endian files, 8-byte record markers, fixed atoms
 * (icntrl[8] != 0), 4-D coordinates (icntrl[11] != 0).
 */
#include "openmmbg/io/DataIO.h"

#include <cstdint>
#include <string>
#include <vector>

namespace OpenMMBG {

/** What the header of a DCD file says, plus the number of complete frames the file holds. */
struct DcdHeader {
    int64_t numParticles = 0;
    /** Complete frames in the file, counted from its size. */
    int64_t numFrames = 0;
    /** The frame count written in the header (OpenMM keeps it equal to numFrames). */
    int64_t headerFrames = 0;
    /** True when the file's size leaves a partial frame after the last complete one. */
    bool partialLastFrame = false;
    bool hasUnitCell = false;
    int64_t firstStep = 0;
    int64_t interval = 0;
    /** Time step in AKMA time units (OpenMM writes dt[ps] / 0.04888821). */
    double timestep = 0;
    std::vector<std::string> titles;
    /** Bytes before the first frame, and bytes per frame. */
    int64_t headerBytes = 0;
    int64_t frameBytes = 0;
};

/** Which part of a DCD file to read. */
struct DcdReadOptions {
    /** 0-based particle indices to return, in this order (duplicates allowed); empty: all particles. */
    std::vector<int64_t> particles;
    /** Frames begin, begin + stride, ... below end; end < 0 means the number of frames. */
    int64_t begin = 0;
    int64_t end = -1;
    int64_t stride = 1;
    /** If >= 0, the file must describe exactly this many particles. */
    int64_t expectedParticles = -1;
    /**
     * A file whose last frame is incomplete (a writer stopped mid-frame), or holds fewer frames than
     * its header promises, is an error naming the frame; with this flag, only the complete frames
     * are read.
     */
    bool allowTruncated = false;
};

/** Read and check the header of a DCD file. Throws std::runtime_error naming the file and the problem. */
DcdHeader readDcdHeader(const std::string& path);

/**
 * Read positions from a DCD file as an Array of shape [frames, particles, 3] in nm (the file's
 * float32 angstrom values divided by 10, in double precision). Unit cells are skipped; positions
 * are returned as stored (not wrapped). Throws std::runtime_error naming the file and the problem:
 * not a DCD file, an unsupported variant, a truncated file (unless options.allowTruncated), a
 * particle index out of range, a particle count different from options.expectedParticles, a bad
 * frame range or stride.
 */
Array readDcd(const std::string& path, const DcdReadOptions& options = DcdReadOptions());

}  // namespace OpenMMBG
