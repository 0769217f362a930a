// RAII wrappers over the SQLite C API: Database (a connection), Statement
// (a prepared statement), Transaction (BEGIN IMMEDIATE or a SAVEPOINT when
// nested; rolls back unless committed).
//
// Thread safety: a Database and everything derived from it must be used by one
// thread at a time (SQLite is compiled with SQLITE_THREADSAFE=2).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace deltasync {

enum class Durability {
  kNormal,  // WAL + synchronous=NORMAL: survives an application crash, may lose the last commits on power loss
  kFull,    // WAL + synchronous=FULL: every commit is fsynced; survives power loss
};

// The page caches of deltasync's connections, in KiB. A client's store lives in the app's own
// process, next to its UI, so it keeps a small one and leaves the rest to the OS's page cache:
// applying 100,000 pulled changes into 50,000 documents runs as fast with 4 MB as with 16 MB,
// and peaks 12 MB lower. A server's store, and the tools that open one, keep 16 MB.
inline constexpr int kClientCacheKib = 4000;
inline constexpr int kServerCacheKib = 16000;

struct DatabaseOptions {
  Durability durability = Durability::kNormal;
  // How long a write waits for another connection's lock before failing with BUSY.
  int busy_timeout_ms = 10000;
  bool read_only = false;
  // The page cache this connection may hold, in KiB (SQLite's `cache_size`, negated).
  int cache_kib = kServerCacheKib;
  // When true, opening a path that does not exist fails instead of creating it.
  bool must_exist = false;
  // Switch to WAL at open. Callers that must first check whose file it is (and so
  // must not modify a foreign file) pass false and call EnableWal() afterwards.
  bool enable_wal = true;
  // The name of a registered SQLite VFS to open the file through; empty: the default VFS.
  // (Tests use it to inject I/O faults.)
  std::string vfs;
  // Test hook for crash tests: > 0 kills the process (SIGKILL) just before this connection's
  // Nth COMMIT, < 0 just after its |N|th. 0: never. So a seed names its kill point exactly.
  int64_t crash_at_commit = 0;
};

class Database;

// A prepared statement. Created by Database::Prepare. Reset on every Step()
// that finishes and by the destructor of Statement::Scope.
class Statement {
 public:
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameter indexes are 1-based, as in SQLite.
  void BindNull(int index);
  void BindInt(int index, int64_t value);
  void BindDouble(int index, double value);
  void BindText(int index, std::string_view value);  // SQLITE_TRANSIENT is not used: value must outlive Step()
  void BindOptionalText(int index, const std::optional<std::string>& value);
  void BindOptionalInt(int index, const std::optional<int64_t>& value);

  // Advances. Returns true when a row is available, false when done.
  Result<bool> Step();
  // Runs a statement that returns no rows (or ignores them).
  Status Run();
  void Reset();

  bool IsNull(int column) const;
  int64_t Int(int column) const;
  double Double(int column) const;
  std::string_view Text(int column) const;
  std::optional<std::string> OptionalText(int column) const;
  std::optional<int64_t> OptionalInt(int column) const;

  sqlite3_stmt* handle() const { return stmt_; }

  // Resets the statement and clears its bindings when it goes out of scope, so
  // a statement borrowed from the cache never holds a read lock or stale values.
  class Scope {
   public:
    explicit Scope(Statement& stmt) : stmt_(stmt) {}
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    Statement* operator->() { return &stmt_; }
    Statement& operator*() { return stmt_; }

   private:
    Statement& stmt_;
  };

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Database* db_;
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  // Opens (creating unless options.must_exist) the file at `path`; ":memory:" is allowed.
  // Sets WAL, the durability level and the busy timeout.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, const DatabaseOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Switches the file to WAL. Retries while another connection holds a lock that
  // prevents the switch, for up to the busy timeout.
  Status EnableWal();

  // Runs one or more statements that return no rows.
  Status Exec(std::string_view sql);
  // Prepares a statement owned by the caller.
  Result<std::unique_ptr<Statement>> Prepare(std::string_view sql);
  // Returns a cached prepared statement for `sql`, prepared on first use and keyed by
  // the pointer. REQUIRES: `sql` has static storage (a constant). The statement stays
  // valid until the Database is destroyed. Wrap uses in Statement::Scope.
  Result<Statement*> Cached(const char* sql);
  // The virtual-machine steps every cached statement has run so far: a count of the work
  // done that, unlike time, does not depend on the machine (tests check how it scales).
  int64_t CachedVmSteps() const;

  int64_t LastInsertRowId() const;
  int Changes() const;
  bool InTransaction() const { return transaction_depth_ > 0; }
  // Whether SQLite still holds the transaction BEGIN opened: an I/O error, a full disk or an
  // interrupt can roll it back on its own, savepoints and all.
  bool TransactionAlive() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

  // Turns the connection's last error into a Status, prefixed by `what`.
  Status ErrorStatus(int rc, std::string_view what) const;

 private:
  friend class Transaction;
  Database(sqlite3* db, std::string path, int busy_timeout_ms)
      : db_(db), path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms) {}
  // The crash-test hook around each outermost COMMIT (see DatabaseOptions::crash_at_commit).
  void CrashPoint(bool after_commit);
  sqlite3* db_;
  std::string path_;
  int busy_timeout_ms_;
  int transaction_depth_ = 0;
  int64_t crash_at_commit_ = 0;
  int64_t commits_ = 0;
  std::unordered_map<const char*, std::unique_ptr<Statement>> cache_;
};

// A write transaction: BEGIN IMMEDIATE at the outermost level (so the write lock is
// taken up front and a reader never has to upgrade, which is what keeps SQLITE_BUSY
// away from callers), a SAVEPOINT when nested. Rolls back in the destructor unless
// Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // The status of BEGIN; check it before using the transaction.
  const Status& status() const { return begin_status_; }
  Status Commit();

 private:
  Database& db_;
  Status begin_status_;
  bool active_ = false;
  int depth_ = 0;  // 1 = outermost
};

}  // namespace deltasync
