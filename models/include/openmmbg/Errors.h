#pragma once
/**
 * The flow library's error types, one per kind of failure, so callers (the Python bindings, the
 * command-line tool, the OpenMM plugin) map errors by type, never by message text:
 *
 *   std::invalid_argument  a bad value, configuration key, option or array shape (Python ValueError);
 *   FileAccessError        a file that cannot be opened, read, written or renamed (Python OSError);
 *   std::bad_alloc         out of memory (Python MemoryError);
 *   std::runtime_error     anything else, e.g. a corrupt model file or checkpoint (Python RuntimeError).
 *
 * Messages name the thing and the bad value: "<what>: <problem> (got <value>)". LibTorch-free.
 */
#include <stdexcept>
#include <string>

namespace OpenMMBG {

/** A file that cannot be opened, read, written or renamed; the message names the path. */
class FileAccessError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace OpenMMBG
