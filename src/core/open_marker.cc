#include "core/open_marker.h"

#include <filesystem>
#include <system_error>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#define DELTASYNC_HAS_FLOCK 1
#endif

namespace deltasync {

#ifdef DELTASYNC_HAS_FLOCK
namespace {

// Whether `fd` is still the file at `path` (a closing client may have removed it meanwhile).
bool StillLinked(int fd, const std::string& path) {
  struct stat opened {};
  struct stat named {};
  return fstat(fd, &opened) == 0 && stat(path.c_str(), &named) == 0 && opened.st_ino == named.st_ino &&
         opened.st_dev == named.st_dev;
}

int FlockRetrying(int fd, int operation) {
  int result;
  do {
    result = flock(fd, operation);
  } while (result != 0 && errno == EINTR);
  return result;
}

}  // namespace

std::unique_ptr<OpenMarker> OpenMarker::Acquire(const std::string& path) {
  // Named after the file's canonical path, so "./a.db", "a.db" and a link to it share one marker.
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
  const std::string marker = (ec ? path : canonical.string()) + "-open";
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = open(marker.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return std::unique_ptr<OpenMarker>(new OpenMarker(marker, -1, true));
    bool alone = FlockRetrying(fd, LOCK_EX | LOCK_NB) == 0;
    // Hold it shared from now on (blocking: another client holds it exclusively only for a moment).
    if (FlockRetrying(fd, LOCK_SH) != 0) {
      close(fd);
      return std::unique_ptr<OpenMarker>(new OpenMarker(marker, -1, true));
    }
    if (StillLinked(fd, marker)) return std::unique_ptr<OpenMarker>(new OpenMarker(marker, fd, alone));
    close(fd);  // removed by a client that closed meanwhile: take the new file
  }
  return std::unique_ptr<OpenMarker>(new OpenMarker(marker, -1, true));
}

OpenMarker::~OpenMarker() {
  if (fd_ < 0) return;
  // The last client out removes the companion file; any other keeps it (and its lock).
  if (FlockRetrying(fd_, LOCK_EX | LOCK_NB) == 0 && StillLinked(fd_, path_)) unlink(path_.c_str());
  close(fd_);
}

#else

std::unique_ptr<OpenMarker> OpenMarker::Acquire(const std::string& path) {
  return std::unique_ptr<OpenMarker>(new OpenMarker(path + "-open", -1, true));
}

OpenMarker::~OpenMarker() = default;

#endif

}  // namespace deltasync
