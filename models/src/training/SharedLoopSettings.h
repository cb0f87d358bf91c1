#pragma once
// The loop settings that every objective's options carry under the same names (private to the flow
// library): the learning rates, the gradient guard, masking, the time limit, the seed and the
// checkpoint. Each objective's own loopSettings sets the rest (iterations, warmup, schedules).
#include "openmmbg/training/TrainingLoop.h"

namespace OpenMMBG {

template <class Options>
TrainingLoopSettings sharedLoopSettings(const Options& o) {
    TrainingLoopSettings s;
    s.initialLearningRate = o.initialLearningRate;
    s.peakLearningRate = o.peakLearningRate;
    s.finalLearningRate = o.finalLearningRate;
    s.gradientWindow = o.gradientWindow;
    s.skipFactor = o.skipFactor;
    s.clipFactor = o.clipFactor;
    s.minLogQ = o.minLogQ;
    s.timeLimit = o.timeLimit;
    s.seed = o.seed;
    s.checkpointPath = o.checkpointPath;
    s.checkpointEvery = o.checkpointEvery;
    return s;
}

}  // namespace OpenMMBG
