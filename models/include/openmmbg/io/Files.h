#pragma once
/** Reading and writing whole files: the one home of atomic writes. LibTorch-free. */
#include <string>

namespace OpenMMBG {

/** Read a whole file; throws FileAccessError if it cannot be read. */
std::string readFileBytes(const std::string& path);
/**
 * Write a file atomically: write a temporary file beside it (`path.tmp.<pid>`), flush, then rename
 * over the target, so a kill leaves the old or the new file, never a partial one. Throws
 * FileAccessError naming the path; the target is untouched on failure.
 */
void writeFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace OpenMMBG
