// A thread that is joined when its owner goes away, whatever way its scope is left, and that
// gets a stack of a known size: the platform's default for a new thread can be as small as
// 128 KB, while JSON decoding recurses once per nesting level (up to JsonLimits::max_depth).
//
// Thread safety: one owner constructs and destroys it.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <new>
#include <string>

#include "core/status.h"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define DELTASYNC_HAS_PTHREAD 1
#else
#include <system_error>
#include <thread>
#endif

namespace deltasync {

class JoiningThread {
 public:
  // The stack of the new thread: what libuv's worker threads get on Linux.
  static constexpr size_t kStackBytes = size_t{8} << 20;

  // Starts `body` on a new thread. When no thread can be started, started() is false and
  // `body` never runs: the owner then does the work itself.
  explicit JoiningThread(std::function<void()> body);
  ~JoiningThread();
  JoiningThread(const JoiningThread&) = delete;
  JoiningThread& operator=(const JoiningThread&) = delete;

  bool started() const { return started_; }

 private:
  std::function<void()> body_;
  bool started_ = false;
#ifdef DELTASYNC_HAS_PTHREAD
  pthread_t thread_{};
#else
  std::thread thread_;
#endif
};

// Runs `work` (which returns a Status) and turns an exception it throws (out of memory) into
// an INTERNAL status, so that work on a thread of its own never ends the process.
template <typename Work>
Status StatusOfWork(Work&& work) noexcept {
  try {
    return work();
  } catch (const std::bad_alloc&) {
    return Status::Internal("Out of memory");
  } catch (const std::exception& error) {
    return Status::Internal(error.what());
  } catch (...) {
    return Status::Internal("Unexpected exception");
  }
}

}  // namespace deltasync
