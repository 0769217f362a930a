// A lock handed to waiters in the order they asked for it (a ticket lock). A plain mutex lets
// the thread that just released it take it again at once, so under load one request can wait
// behind many later ones; with this, a request waits only for those that asked before it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace deltasync {

class FifoLock {
 public:
  void lock() {
    std::unique_lock<std::mutex> guard(mutex_);
    const uint64_t ticket = next_ticket_++;
    turn_changed_.wait(guard, [&] { return serving_ == ticket; });
  }
  void unlock() {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      ++serving_;
    }
    turn_changed_.notify_all();
  }
  // Threads waiting for the lock now (not counting its holder).
  uint64_t waiting() const {
    std::lock_guard<std::mutex> guard(mutex_);
    const uint64_t asked = next_ticket_ - serving_;
    return asked == 0 ? 0 : asked - 1;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable turn_changed_;
  uint64_t next_ticket_ = 0;  // guarded by mutex_
  uint64_t serving_ = 0;      // guarded by mutex_: the ticket that holds the lock
};

}  // namespace deltasync
