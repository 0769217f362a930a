#pragma once

#include <memory>
#include <string>

namespace deltasync {

// Marks a database file as open by a live client, with an advisory lock on a companion file
// ("<path>-open"): shared while the client is open, and taken exclusively for a moment at
// open and at close. The operating system drops the lock when a process dies, so a marker
// tells a client whether another live client (in this process or another) has the file open.
// That decides whether changes left "in flight" are a crash's leftovers (returned to pending)
// or another client's sync in progress (left alone).
//
// On platforms without flock, and where the companion file cannot be created, every client
// counts as the only one (the behaviour before markers existed).
//
// Thread safety: an instance is used by one thread at a time; instances are independent.
class OpenMarker {
 public:
  // REQUIRES: `path` is a database file (not ":memory:").
  static std::unique_ptr<OpenMarker> Acquire(const std::string& path);
  ~OpenMarker();
  OpenMarker(const OpenMarker&) = delete;
  OpenMarker& operator=(const OpenMarker&) = delete;

  // True when no other live client had the file open when this one opened it.
  bool alone_at_open() const { return alone_at_open_; }

 private:
  OpenMarker(std::string path, int fd, bool alone) : path_(std::move(path)), fd_(fd), alone_at_open_(alone) {}

  std::string path_;
  int fd_ = -1;
  bool alone_at_open_ = true;
};

}  // namespace deltasync
