#pragma once
// The loop settings that every objective's options carry under the same names (private to the flow
// library): the learning rates, the gradient guard, masking, the time limit, the seed and the
// checkpoint. Each objective's own loopSettings sets the rest (iterations, warmup, schedules).
#include "../JsonObjectReader.h"
#include "openmmbg/Validation.h"
#include "openmmbg/training/Training.h"
#include "openmmbg/training/TrainingLoop.h"

#include <set>
#include <string>

namespace OpenMMBG {

/**
 * Checks the shared settings through the shared validation (openmmbg/Validation.h), as
 * std::invalid_argument "training options: ...": learning rates finite and >= 0 (0 freezes the
 * parameters), the guard's factors positive and finite, the time limit >= 0, the gradient window
 * and checkpoint interval >= 1.
 */
template <class Options>
void checkSharedLoopOptions(const Options& o) {
    try {
        requireNonNegative("initial_learning_rate", o.initialLearningRate);
        requireNonNegative("peak_learning_rate", o.peakLearningRate);
        requireNonNegative("final_learning_rate", o.finalLearningRate);
        requirePositive("skip_factor", o.skipFactor);
        requirePositive("clip_factor", o.clipFactor);
        requireFinite("min_log_q", o.minLogQ);
        requireNonNegative("time_limit", o.timeLimit);
        requireInRange("gradient_window", int64_t(o.gradientWindow), 1, INT32_MAX);
        requireInRange("checkpoint_every", int64_t(o.checkpointEvery), 1, INT32_MAX);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("training options: ") + e.what());
    }
}

/** The keys of maximum-likelihood options (flow matching's reader adds its own). */
std::set<std::string> maximumLikelihoodOptionKeys();
/** Maximum-likelihood options from a reader that knows (at least) those keys, checked. */
MaximumLikelihoodOptions readMaximumLikelihoodOptions(const JsonObjectReader& j);

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
