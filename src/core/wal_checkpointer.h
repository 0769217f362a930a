// Copies a WAL database's log back into its file on a thread and connection of its own, so
// that the connection that writes never pays for a checkpoint inside its transaction. SQLite's
// automatic checkpoint runs in the COMMIT that crosses its threshold: on a busy server that
// one request waits for the copy and its fsync while every other request waits for it.
//
// The writer's commits are counted with sqlite3_wal_hook (which replaces the automatic
// checkpoint). Once `threshold_pages` frames of the log are not yet copied back (not: the log
// is that long, which a busy log stays), the thread runs a PASSIVE checkpoint, which never
// blocks the writer or readers. Should the log still reach `limit_pages` (the thread cannot
// keep up, or a reader pins old frames), the committing connection checkpoints itself, as
// SQLite would, so the log stays bounded.
//
// Thread safety: the hook runs on whichever thread commits through `writer` (one at a time,
// as SQLite requires of a connection); requested() and completed() may be called from any
// thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/sqlite.h"
#include "core/status.h"

namespace deltasync {

class WalCheckpointer {
 public:
  // Watches `writer`'s commits and checkpoints through `checkpointer` (a second connection to
  // the same file). REQUIRES: both outlive this object, `writer` in WAL mode.
  static Result<std::unique_ptr<WalCheckpointer>> Start(Database& writer, std::unique_ptr<Database> checkpointer,
                                                        int threshold_pages = 1000, int limit_pages = 20000);
  ~WalCheckpointer();  // stops the thread; the writer's checkpoints go back to SQLite's own
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // For the database file `path` that `writer` opened with `options`: a checkpointer on a second
  // connection to it. Null for ":memory:" and temporary databases, which have no log, and when
  // the second connection cannot be opened (the writer then checkpoints as SQLite does).
  static Result<std::unique_ptr<WalCheckpointer>> ForFile(Database& writer, const std::string& path,
                                                          const DatabaseOptions& options);

  // Checkpoints the thread has been asked for, and has completed, so far.
  uint64_t requested() const;
  uint64_t completed() const;

 private:
  WalCheckpointer(Database& writer, std::unique_ptr<Database> checkpointer, int threshold_pages, int limit_pages);
  static int OnCommit(void* self, sqlite3* db, const char* schema, int wal_pages);
  void Run();

  Database& writer_;
  std::unique_ptr<Database> checkpointer_;
  const int threshold_pages_;
  const int limit_pages_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // What the last checkpoint saw, written by the thread: the log's length in the high 32 bits,
  // the frames it copied back in the low 32. A log shorter than that length has restarted since.
  std::atomic<uint64_t> checkpointed_{0};
  std::atomic<int> last_log_frames_{0};  // the log's length at the writer's last commit
  bool pending_ = false;         // guarded by mutex_
  bool stopping_ = false;        // guarded by mutex_
  uint64_t requested_ = 0;       // guarded by mutex_
  uint64_t completed_ = 0;       // guarded by mutex_
  std::thread thread_;      // last: started once the rest is set up
};

}  // namespace deltasync
