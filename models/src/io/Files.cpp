#include "openmmbg/io/Files.h"

#include "openmmbg/Errors.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace OpenMMBG {

namespace {

std::string describeType(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

std::string systemError() { return std::strerror(errno); }

// Opens `path` for reading without blocking (a FIFO would block in open) and checks it is a
// regular file; returns the descriptor and its size.
int openRegular(const std::string& path, uint64_t& size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        throw FileAccessError("cannot open '" + path + "' for reading: " + systemError());
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        throw FileAccessError("cannot read '" + path + "': " + systemError());
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw FileAccessError("cannot read '" + path + "': it is " + describeType(st.st_mode) +
                              ", expected a regular file");
    }
    size = uint64_t(st.st_size);
    return fd;
}

std::string folderOf(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// Refuses a target that exists and is not a regular file (renaming over it would replace a device
// node, e.g. /dev/null, by a regular file).
void requireReplaceable(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        throw FileAccessError("cannot write '" + path + "': it is " + describeType(st.st_mode) +
                              "; only regular files are written");
}

}  // namespace

std::string readFileBytes(const std::string& path, uint64_t maxBytes) {
    uint64_t size = 0;
    const int fd = openRegular(path, size);
    if (size > maxBytes) {
        ::close(fd);
        throw FileAccessError("cannot read '" + path + "': " + std::to_string(size) + " bytes exceeds the limit of " +
                              std::to_string(maxBytes));
    }
    std::string bytes(size, '\0');
    uint64_t done = 0;
    while (done < size) {
        const ssize_t n = ::read(fd, &bytes[done], size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            const std::string why = n < 0 ? systemError() : "the file shrank while it was read";
            ::close(fd);
            throw FileAccessError("error reading '" + path + "': " + why);
        }
        done += uint64_t(n);
    }
    ::close(fd);
    return bytes;
}

uint64_t checkReadableFile(const std::string& path) {
    uint64_t size = 0;
    ::close(openRegular(path, size));
    return size;
}

void checkWritableFile(const std::string& path, uint64_t expectedBytes) {
    if (path.empty())
        throw FileAccessError("cannot write to an empty path");
    requireReplaceable(path);
    const std::string folder = folderOf(path);
    struct stat st;
    if (::stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw FileAccessError("cannot write '" + path + "': folder '" + folder + "' does not exist");
    // Create (and remove) the temporary file writeFileAtomically will use: the one test of
    // writability that also holds for root, read-only mounts and ACLs.
    const std::string probe = path + ".tmp." + std::to_string(::getpid());
    // (A stale temporary file of the same name, left by a killed process, is ours to replace.)
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        throw FileAccessError("cannot write '" + path + "': " + systemError());
    ::close(fd);
    ::unlink(probe.c_str());
    struct statvfs fs;
    if (expectedBytes > 0 && ::statvfs(folder.c_str(), &fs) == 0) {
        const uint64_t available = uint64_t(fs.f_bavail) * uint64_t(fs.f_frsize);
        if (available < expectedBytes)
            throw FileAccessError("cannot write '" + path + "': it needs about " + std::to_string(expectedBytes) +
                                  " bytes but only " + std::to_string(available) + " are free");
    }
}

void writeFileAtomically(const std::string& path, const std::string& bytes) {
    requireReplaceable(path);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw FileAccessError("cannot open '" + tmp + "' for writing: " + systemError());
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            const std::string why = systemError();
            ::close(fd);
            std::remove(tmp.c_str());
            throw FileAccessError("error writing '" + path + "': " + why);
        }
        done += size_t(n);
    }
    // fsync before the rename, so a crash cannot leave the new name on empty data.
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const std::string why = systemError();
        std::remove(tmp.c_str());
        throw FileAccessError("error writing '" + path + "': " + why);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = systemError();
        std::remove(tmp.c_str());
        throw FileAccessError("cannot rename '" + tmp + "' to '" + path + "': " + why);
    }
}

}  // namespace OpenMMBG
