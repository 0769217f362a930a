#include "core/wal_checkpointer.h"

#include <sqlite3.h>

#include <utility>

namespace deltasync {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(Database& writer,
                                                                std::unique_ptr<Database> checkpointer,
                                                                int threshold_pages, int limit_pages) {
  std::unique_ptr<WalCheckpointer> started(
      new WalCheckpointer(writer, std::move(checkpointer), threshold_pages, limit_pages));
  sqlite3_wal_hook(writer.handle(), &WalCheckpointer::OnCommit, started.get());
  return started;
}

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::ForFile(Database& writer, const std::string& path,
                                                                  const DatabaseOptions& options) {
  if (path.empty() || path == ":memory:") return std::unique_ptr<WalCheckpointer>();
  DatabaseOptions second = options;
  second.must_exist = true;
  second.crash_at_commit = 0;  // the crash hook counts the writer's commits only
  Result<std::unique_ptr<Database>> db = Database::Open(path, second);
  // Without a second connection the writer keeps SQLite's own automatic checkpoint.
  if (!db.ok()) return std::unique_ptr<WalCheckpointer>();
  return Start(writer, std::move(db).value());
}

WalCheckpointer::WalCheckpointer(Database& writer, std::unique_ptr<Database> checkpointer, int threshold_pages,
                                 int limit_pages)
    : writer_(writer),
      checkpointer_(std::move(checkpointer)),
      threshold_pages_(threshold_pages),
      limit_pages_(limit_pages),
      thread_([this] { Run(); }) {}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_autocheckpoint(writer_.handle(), 1000);  // removes OnCommit; SQLite's default again
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  sqlite3_interrupt(checkpointer_->handle());  // a checkpoint in progress stops early: close() does not wait for it
  thread_.join();
}

uint64_t WalCheckpointer::requested() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return requested_;
}

uint64_t WalCheckpointer::completed() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return completed_;
}

// Runs on the writer's thread, after its commit, with the writer's lock on the database
// released: it only signals, unless the log is past its limit.
int WalCheckpointer::OnCommit(void* self, sqlite3* db, const char* schema, int wal_pages) {
  auto* checkpointer = static_cast<WalCheckpointer*>(self);
  if (wal_pages >= checkpointer->limit_pages_) {
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }
  const bool restarted = wal_pages < checkpointer->last_log_frames_.exchange(wal_pages, std::memory_order_relaxed);
  uint64_t checkpointed = checkpointer->checkpointed_.load(std::memory_order_acquire);
  if (restarted && checkpointed != 0) {
    // What the last checkpoint copied belongs to the old log. (Unless the thread has stored a
    // newer checkpoint meanwhile, which the exchange leaves in place.)
    if (checkpointer->checkpointed_.compare_exchange_strong(checkpointed, 0, std::memory_order_acq_rel)) {
      checkpointed = 0;
    }
  }
  const auto log_then = static_cast<int>(checkpointed >> 32);
  const auto copied = static_cast<int>(checkpointed & 0xFFFFFFFFu);
  // A log shorter than the checkpoint saw has restarted since: none of it is copied back.
  const int not_copied = wal_pages < log_then ? wal_pages : wal_pages - copied;
  if (not_copied >= checkpointer->threshold_pages_) {
    {
      std::lock_guard<std::mutex> guard(checkpointer->mutex_);
      if (checkpointer->pending_) return SQLITE_OK;
      checkpointer->pending_ = true;
      ++checkpointer->requested_;
    }
    checkpointer->wake_.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::Run() {
  std::unique_lock<std::mutex> guard(mutex_);
  for (;;) {
    wake_.wait(guard, [&] { return pending_ || stopping_; });
    if (stopping_) return;
    guard.unlock();
    // A failure (the file is busy in a way PASSIVE cannot wait out) leaves the frames for the
    // next request or for the writer's own checkpoint at the limit.
    int log_frames = 0;
    int copied_frames = 0;
    if (sqlite3_wal_checkpoint_v2(checkpointer_->handle(), "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                  &copied_frames) == SQLITE_OK &&
        log_frames >= 0 && copied_frames >= 0) {
      checkpointed_.store((static_cast<uint64_t>(log_frames) << 32) | static_cast<uint32_t>(copied_frames),
                          std::memory_order_release);
    }
    guard.lock();
    pending_ = false;
    ++completed_;
  }
}

}  // namespace deltasync
