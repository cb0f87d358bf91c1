#pragma once
/**
 * Reading and writing whole files: the one home of file checks and atomic writes. LibTorch-free.
 *
 * Reads take regular files only (a directory, FIFO or device such as /dev/zero is refused before
 * anything is read, so nothing hangs or reads forever) and read exactly the size the file has.
 * Writes replace regular files only (a device node or directory at the target is refused, never
 * replaced), atomically.
 */
#include <cstdint>
#include <string>

namespace OpenMMBG {

/**
 * Read a whole regular file; throws FileAccessError if it cannot be read, is not a regular file, or
 * is larger than `maxBytes`.
 */
std::string readFileBytes(const std::string& path, uint64_t maxBytes = uint64_t(1) << 36);
/**
 * Opens a regular file for streaming reads and returns its size in bytes; throws FileAccessError as
 * readFileBytes does (for readers that do not take the whole file at once, e.g. DCD).
 */
uint64_t checkReadableFile(const std::string& path);
/**
 * Checks, before any long work, that `path` can be written by writeFileAtomically: its folder exists
 * and takes a new file, and the path is not a directory, device, FIFO or socket. When
 * `expectedBytes` is given, also that the file system has that much free space. Throws
 * FileAccessError naming the path and the problem. Creates nothing that stays.
 */
void checkWritableFile(const std::string& path, uint64_t expectedBytes = 0);
/**
 * Write a file atomically: write a temporary file beside it (`path.tmp.<pid>`), flush and sync, then
 * rename over the target, so a kill leaves the old or the new file, never a partial one. Throws
 * FileAccessError naming the path (also for a full disk); the target is untouched on failure.
 */
void writeFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace OpenMMBG
