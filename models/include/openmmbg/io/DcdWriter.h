#pragma once
/**
 * Writing trajectories in the DCD format OpenMM's DCDReporter writes (and readDcd reads): the
 * CHARMM flavour, little-endian, float32 coordinates in angstrom, no unit cell. Frames are appended
 * one at a time and the header's frame count is kept current, so a file is readable after every
 * frame. A run that resumes from a checkpoint reopens its file keeping exactly the frames the
 * checkpoint knows about (anything a killed run wrote after it is cut off). No LibTorch, no OpenMM.
 */
#include <cstdint>
#include <fstream>
#include <string>

namespace OpenMMBG {

class DcdWriter {
public:
    /**
     * Create `path` (replacing it), or, with keepFrames >= 0, reopen it and keep its first
     * keepFrames frames. Throws std::runtime_error naming the file if it cannot be written, or, on
     * reopening, if it is not a DCD file of numParticles particles holding at least keepFrames
     * complete frames.
     * @param firstStep     step of the first frame (header field)
     * @param interval      steps between frames (header field)
     * @param timestepPs    integration time step in ps (stored in AKMA units, as OpenMM does)
     */
    DcdWriter(const std::string& path, int64_t numParticles, int64_t firstStep, int64_t interval, double timestepPs,
              int64_t keepFrames = -1);
    /** Append one frame: xyz [numParticles * 3] in nm. */
    void writeFrame(const double* xyz);
    /** Push what was written to the operating system. */
    void flush();
    int64_t getNumFrames() const { return numFrames; }
    const std::string& getPath() const { return path; }

private:
    std::string path;
    int64_t numParticles, numFrames = 0;
    std::fstream file;
};

}  // namespace OpenMMBG
