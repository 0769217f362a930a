// FaultVfs: a test-only SQLite VFS that wraps the default one and makes chosen file
// operations fail with SQLITE_IOERR_* at the Nth call, to check that every I/O error
// surfaces as a Status and leaves the database whole.
//
// It is registered under kName, never as the default: a connection uses it only when
// opened with DatabaseOptions::vfs = FaultVfs::kName (or, for objects whose options do
// not name a VFS, inside a ScopedDefaultVfs). Every file of such a connection (the
// database, its WAL and any journal) goes through it.
//
// Counting: while armed, every call of an armed kind (on any file of any connection
// using the shim) increments one counter; the call that makes it reach `fail_at` fails,
// and with `persistent` so does every armed call after it, until Disarm().
//
// Thread safety: Arm/Disarm and the counters may be used from any thread; a trial is
// expected to arm, run one operation and disarm on one thread.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace deltasync {
namespace testing_util {

// Bits of the operation mask given to FaultVfs::Arm.
enum FaultOp : unsigned {
  kFaultWrite = 1u << 0,     // xWrite    -> SQLITE_IOERR_WRITE
  kFaultSync = 1u << 1,      // xSync     -> SQLITE_IOERR_FSYNC
  kFaultTruncate = 1u << 2,  // xTruncate -> SQLITE_IOERR_TRUNCATE
  kFaultRead = 1u << 3,      // xRead     -> SQLITE_IOERR_READ
  kFaultWriteSide = kFaultWrite | kFaultSync | kFaultTruncate,
  kFaultAll = kFaultWriteSide | kFaultRead,
};

class FaultVfs {
 public:
  static constexpr const char* kName = "faulty";

  // The process-wide shim, registered (not as the default) on first use.
  static FaultVfs& Get();

  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  // Resets the counters and fails the `fail_at`-th (1-based) call of a kind in `ops`.
  void Arm(int64_t fail_at, unsigned ops, bool persistent);
  // Stops injecting; the counters keep their values until the next Arm.
  void Disarm();

  // Calls of an armed kind since the last Arm.
  int64_t operations() const { return operations_.load(); }
  // Failures injected since the last Arm.
  int64_t failures() const { return failures_.load(); }

  // Called by the shim's file methods: true when this call must fail.
  bool ShouldFail(FaultOp op);

  // ---- Power loss. While tracking, the shim remembers each file's content as of its last
  // xSync (a file that existed when first opened counts as synced). PowerCut() stops the
  // machine: every file handle open at that moment ignores its later writes, truncates, syncs
  // and deletes (close the connections then, as a dead process would never write again).
  // Restore() then puts every tracked file back to its last synced content (or removes one
  // never synced), removes the shared-memory index files, and resumes normal work.
  void TrackDurability(bool on);
  void PowerCut();
  void Restore();

  // Called by the shim (REQUIRES: tracking): a file opened, synced or deleted.
  void NoteOpened(const std::string& path, sqlite3_file* real);
  void NoteSynced(const std::string& path, sqlite3_file* real);
  void NoteDeleted(const std::string& path);
  bool tracking() const { return tracking_.load(); }
  // True while the machine is "off": nothing written after PowerCut() reaches the disk.
  bool powered_off() const { return powered_off_.load(); }
  // The generation of a handle: a handle opened before the last PowerCut() is dead.
  int64_t generation() const { return generation_.load(); }

  // The name to open connections with (DatabaseOptions::vfs). Take it from Get(), so
  // that the shim is registered before SQLite looks it up.
  const char* name() const { return kName; }
  sqlite3_vfs* vfs() { return &vfs_; }
  sqlite3_vfs* real() { return real_; }

 private:
  FaultVfs();

  sqlite3_vfs vfs_{};
  sqlite3_vfs* real_ = nullptr;
  std::atomic<bool> armed_{false};
  std::atomic<unsigned> ops_{0};
  std::atomic<bool> persistent_{false};
  std::atomic<int64_t> fail_at_{0};
  std::atomic<int64_t> operations_{0};
  std::atomic<int64_t> failures_{0};

  std::atomic<bool> tracking_{false};
  std::atomic<bool> powered_off_{false};
  std::atomic<int64_t> generation_{0};
  std::mutex durable_mutex_;
  std::map<std::string, std::optional<std::string>> durable_;  // path -> content at its last sync
};

// Makes the shim SQLite's default VFS while it lives, and restores the previous default
// after. Only for opening objects whose options cannot name a VFS (SyncServerCore::Open
// builds its own DatabaseOptions); the connection keeps the shim after the scope ends.
// REQUIRES: no other thread opens a connection meanwhile.
class ScopedDefaultVfs {
 public:
  ScopedDefaultVfs();
  ~ScopedDefaultVfs();
  ScopedDefaultVfs(const ScopedDefaultVfs&) = delete;
  ScopedDefaultVfs& operator=(const ScopedDefaultVfs&) = delete;

 private:
  sqlite3_vfs* previous_;
};

}  // namespace testing_util
}  // namespace deltasync
