#include "openmmbg/Threads.h"

#include "openmmbg/Validation.h"

#include <torch/torch.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace OpenMMBG {

namespace {

// A positive integer from an environment variable, or 0 when unset or not one.
int threadsFromEnvironment(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr)
        return 0;
    try {
        return int(parseInteger(name, value, 1, 1024));
    } catch (const std::invalid_argument&) {
        return 0;
    }
}

}  // namespace

int defaultNumThreads() {
    for (const char* name : {"OPENMMBG_NUM_THREADS", "OMP_NUM_THREADS"})
        if (const int n = threadsFromEnvironment(name))
            return n;
    return 1;
}

void applyThreadPolicy() {
    static std::once_flag once;
    std::call_once(once, [] { torch::set_num_threads(defaultNumThreads()); });
}

void setNumThreads(int n) {
    requireInRange("the number of threads", int64_t(n), 1, 1024);
    applyThreadPolicy();  // so a later first model does not undo this choice
    torch::set_num_threads(n);
}

int getNumThreads() { return at::get_num_threads(); }

}  // namespace OpenMMBG
