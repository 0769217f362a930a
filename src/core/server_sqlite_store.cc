#include "core/server_sqlite_store.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "core/fifo_lock.h"
#include "core/wal_checkpointer.h"

namespace deltasync {

namespace {

constexpr const char* kServerV1 = R"sql(
CREATE TABLE user_versions (
  user_id               TEXT PRIMARY KEY,
  version               INTEGER NOT NULL,            -- last version given to a change of this user
  last_server_timestamp INTEGER NOT NULL DEFAULT 0   -- strictly increasing per user
) WITHOUT ROWID;

CREATE TABLE entity_changes (
  id               INTEGER PRIMARY KEY,
  user_id          TEXT NOT NULL,
  version          INTEGER NOT NULL,                 -- 1, 2, 3... per user, without gaps
  change_id        TEXT NOT NULL,
  device_id        TEXT,
  change_type      TEXT NOT NULL CHECK (change_type IN ('CREATED', 'UPDATED', 'DELETED')),
  entity_type      TEXT NOT NULL,
  entity_id        TEXT NOT NULL,
  change_data      TEXT,                             -- what was applied: full object, or the fields set
  base_version     INTEGER,
  client_timestamp INTEGER NOT NULL,
  server_timestamp INTEGER NOT NULL,
  resolution       TEXT,                             -- set when the change met a conflict
  UNIQUE (user_id, version),
  UNIQUE (user_id, change_id)
);
CREATE INDEX entity_changes_by_entity ON entity_changes (user_id, entity_type, entity_id, version);

CREATE TABLE entities (
  user_id          TEXT NOT NULL,
  entity_type      TEXT NOT NULL,
  entity_id        TEXT NOT NULL,
  data             TEXT,                             -- current (or, when deleted, last live) state
  deleted          INTEGER NOT NULL DEFAULT 0,
  version          INTEGER NOT NULL,                 -- version of the last change applied to it
  device_id        TEXT,
  client_timestamp INTEGER NOT NULL,
  server_timestamp INTEGER NOT NULL,
  PRIMARY KEY (user_id, entity_type, entity_id)
);
CREATE INDEX entities_by_server_time ON entities (user_id, server_timestamp);

CREATE TABLE devices (
  user_id            TEXT NOT NULL,
  device_id          TEXT NOT NULL,
  last_push_at       INTEGER,
  last_pull_at       INTEGER,
  changes_pushed     INTEGER NOT NULL DEFAULT 0,
  conflicts_reported INTEGER NOT NULL DEFAULT 0,
  last_seen_version  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;

-- The outcome of every changeId ever pushed, so a replay returns it without re-applying.
CREATE TABLE change_results (
  user_id       TEXT NOT NULL,
  change_id     TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,                      -- of the change's content: a reused changeId is detected
  outcome       TEXT NOT NULL CHECK (outcome IN ('applied', 'conflict', 'error')),
  version       INTEGER,
  conflict_id   INTEGER,
  reason        TEXT,
  strategy      TEXT,
  winner        TEXT,
  error_code    TEXT,
  error_message TEXT,
  entity_type   TEXT NOT NULL,
  entity_id     TEXT NOT NULL,
  action        TEXT NOT NULL,
  PRIMARY KEY (user_id, change_id)
) WITHOUT ROWID;

CREATE TABLE conflicts (
  id               INTEGER PRIMARY KEY,
  user_id          TEXT NOT NULL,
  change_id        TEXT NOT NULL,
  device_id        TEXT,
  entity_type      TEXT NOT NULL,
  entity_id        TEXT NOT NULL,
  change_type      TEXT NOT NULL,
  client_data      TEXT,
  base_version     INTEGER,
  client_timestamp INTEGER NOT NULL,
  server_version   INTEGER,
  status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  resolution       TEXT,
  created_at       INTEGER NOT NULL,
  resolved_at      INTEGER
);
CREATE INDEX conflicts_by_user ON conflicts (user_id, status, id);
)sql";

// Version 2: conflict ids numbered per user (1, 2, 3 ... for each user), so that one user's
// conflict ids say nothing about another user's activity. change_results keeps the number.
constexpr const char* kServerV2 = R"sql(
ALTER TABLE conflicts ADD COLUMN number INTEGER;
UPDATE conflicts SET number =
  (SELECT count(*) FROM conflicts AS earlier WHERE earlier.user_id = conflicts.user_id AND earlier.id <= conflicts.id);
CREATE UNIQUE INDEX conflicts_by_user_number ON conflicts (user_id, number);
UPDATE change_results SET conflict_id =
  (SELECT number FROM conflicts WHERE conflicts.id = change_results.conflict_id)
  WHERE conflict_id IS NOT NULL;
)sql";

class SqliteQuery final : public SqlQuery {
 public:
  explicit SqliteQuery(Statement& stmt) : stmt_(stmt) {}
  void BindNull(int index) override { stmt_.BindNull(index); }
  void BindInt(int index, int64_t value) override { stmt_.BindInt(index, value); }
  void BindText(int index, std::string_view value) override { stmt_.BindText(index, value); }
  Result<bool> Step() override { return stmt_.Step(); }
  void Reset() override { stmt_.Reset(); }
  bool IsNull(int column) const override { return stmt_.IsNull(column); }
  int64_t Int(int column) const override { return stmt_.Int(column); }
  std::string_view Text(int column) const override { return stmt_.Text(column); }

 private:
  Statement& stmt_;
};

// The outcome of one group commit, which every request of the group waits for.
class CommitGroup {
 public:
  Status Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    settled_changed_.wait(lock, [&] { return settled_; });
    return outcome_;
  }
  void Settle(Status outcome) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      outcome_ = std::move(outcome);
      settled_ = true;
    }
    settled_changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable settled_changed_;
  bool settled_ = false;  // guarded by mutex_
  Status outcome_;        // guarded by mutex_
};

// The store's one connection. Requests that hold it one after another share one write
// transaction (a group): the request that opens it runs in it, each later one in a savepoint of
// its own, so a request that fails rolls back only its own writes, and the group ends with one
// COMMIT (one WAL commit).
// Used by one request at a time (the store's lock); the group's state is only touched then.
class SqliteSession final : public SqlSession {
 public:
  explicit SqliteSession(std::unique_ptr<Database> db) : db_(std::move(db)) {}

  Database& db() { return *db_; }

  Result<SqlQuery*> Cached(const char* sql) override {
    auto it = queries_.find(sql);
    if (it != queries_.end()) return it->second.get();
    Result<Statement*> stmt = db_->Cached(sql);
    if (!stmt.ok()) return stmt.status();
    auto query = std::make_unique<SqliteQuery>(*stmt.value());
    SqlQuery* raw = query.get();
    queries_.emplace(sql, std::move(query));
    return raw;
  }

  // The store's lock already serializes every request, so the user is not needed here. The
  // request that opens a group runs in the group's own transaction (nothing else is in it
  // yet); a request that joins one runs in a savepoint, which costs SQLite a copy of each page
  // it changes.
  Status Begin(const std::string& /*user_id*/) override {
    if (!group_transaction_) {
      group_transaction_.emplace(*db_);
      Status status = group_transaction_->status();
      if (!status.ok()) {
        group_transaction_.reset();
        return status;
      }
      group_ = std::make_shared<CommitGroup>();
      group_requests_ = 1;
      group_committed_requests_ = 0;
      request_group_ = group_;
      opened_group_ = true;
    } else {
      savepoint_.emplace(*db_);
      Status status = savepoint_->status();
      if (!status.ok()) {
        savepoint_.reset();
        return status;
      }
    }
    in_transaction_ = true;
    return Status::Ok();
  }
  Status AnnounceCommit(const std::string& /*user_id*/, int64_t /*version*/) override {
    return Status::Ok();
  }
  // The request's writes join the group's; they are durable once the group commits.
  Status Commit() override {
    if (!opened_group_) DS_RETURN_IF_ERROR(savepoint_->Commit());  // on failure Rollback() follows
    savepoint_.reset();
    in_transaction_ = false;
    ++group_committed_requests_;
    return Status::Ok();
  }
  void Rollback() override {
    in_transaction_ = false;
    if (!opened_group_) {
      savepoint_.reset();
      return;
    }
    // The group holds nothing but this request's writes (it still holds the lock), so it ends.
    opened_group_ = false;
    group_transaction_.reset();
    group_->Settle(Status::Ok());
    group_.reset();
    request_group_.reset();
  }

  // A request takes the connection: whatever it reads or writes belongs to the open group, if
  // any, and it answers after the group commits.
  void StartRequest() {
    request_group_ = group_;
    if (group_) ++group_requests_;
  }
  // The group whose commit the request that held the connection waits for (none: it touched none).
  // A transaction the request left unfinished is rolled back.
  std::shared_ptr<CommitGroup> EndRequest() {
    if (in_transaction_) Rollback();
    opened_group_ = false;
    return std::move(request_group_);
  }

  // Whether the group can take another request: SQLite did not roll its transaction back (an I/O
  // error or a full disk can) and it is not full.
  bool GroupCanGrow() const { return db_->TransactionAlive() && group_requests_ < kMaxGroupRequests; }

  // Commits the group, or finds that SQLite rolled it back during the current request, and
  // settles it. The current request gets what happened; every other request of the group, whose
  // writes went with it through no fault of its own, gets UNAVAILABLE and runs again.
  Status EndGroup() {
    Status outcome = db_->TransactionAlive()
                         ? group_transaction_->Commit()
                         : Status::Storage("SQLite rolled the transaction back after an error");
    group_transaction_.reset();
    if (outcome.ok()) {
      requests_committed_.fetch_add(group_committed_requests_, std::memory_order_relaxed);
      commits_.fetch_add(1, std::memory_order_relaxed);
      group_->Settle(Status::Ok());
    } else {
      group_->Settle(Status::Error(StatusCode::kUnavailable,
                                   "The transaction this request shared with others failed: " + outcome.message()));
    }
    group_.reset();
    return outcome;
  }

  GroupCommitStats Stats() const {
    GroupCommitStats stats;
    stats.requests = requests_committed_.load(std::memory_order_relaxed);
    stats.commits = commits_.load(std::memory_order_relaxed);
    return stats;
  }

 private:
  // Bounds how many requests the first request of a group waits for.
  static constexpr int kMaxGroupRequests = 16;

  std::unique_ptr<Database> db_;
  std::optional<Transaction> group_transaction_;  // BEGIN IMMEDIATE ... COMMIT of the open group
  std::optional<Transaction> savepoint_;          // the request's own, when it joined the group
  std::shared_ptr<CommitGroup> group_;            // the open group's outcome
  int group_requests_ = 0;            // requests that used the open group
  int group_committed_requests_ = 0;  // those of them that committed it
  std::atomic<uint64_t> requests_committed_{0};
  std::atomic<uint64_t> commits_{0};
  std::shared_ptr<CommitGroup> request_group_;  // the group the current request used
  bool opened_group_ = false;                   // the current request began the open group
  bool in_transaction_ = false;                 // the current request began and did not finish
  std::unordered_map<const char*, std::unique_ptr<SqliteQuery>> queries_;
};

class SqliteServerStore final : public ServerStore {
 public:
  explicit SqliteServerStore(std::unique_ptr<Database> db) : session_(std::move(db)) {}

  // Moves the file's checkpoints off the request path (WalCheckpointer).
  Status CheckpointInBackground(const std::string& path, const DatabaseOptions& options) {
    Result<std::unique_ptr<WalCheckpointer>> started = WalCheckpointer::ForFile(session_.db(), path, options);
    if (!started.ok()) return started.status();
    checkpointer_ = std::move(started).value();
    return Status::Ok();
  }

  // Requests get the session in the order they asked for it (FifoLock).
  Result<SessionLease> Acquire() override {
    lock_.lock();
    session_.StartRequest();
    return SessionLease(&session_, [this](SqlSession*) { return Release(); });
  }
  // One process owns the file: every commit is made here, so there is nothing to listen to.
  void ListenForOtherProcesses(CommitListener /*listener*/) override {}

  GroupCommitStats Stats() const {
    GroupCommitStats stats = session_.Stats();
    stats.waiting = lock_.waiting();
    return stats;
  }

 private:
  // Group commit: while requests wait for the session, the open group stays open for them and
  // the last of them commits it; this request's response waits for that commit.
  Status Release() {
    std::shared_ptr<CommitGroup> group = session_.EndRequest();
    if (!group) {
      lock_.unlock();
      return Status::Ok();
    }
    if (lock_.waiting() > 0 && session_.GroupCanGrow()) {
      lock_.unlock();
      return group->Wait();
    }
    Status outcome = session_.EndGroup();
    lock_.unlock();
    return outcome;
  }

  FifoLock lock_;
  SqliteSession session_;
  std::unique_ptr<WalCheckpointer> checkpointer_;  // after session_: stopped before its connection closes
};

}  // namespace

GroupCommitStats SqliteGroupCommitStats(const ServerStore& store) {
  return static_cast<const SqliteServerStore&>(store).Stats();
}

const std::vector<Migration>& ServerMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, kServerV1},
      {2, kServerV2},
      // Version 3: the CHECKs that list three values become ORs, as in the client's version 7,
      // so an insert builds no temporary B-tree to check them.
      {3,
       "",
       {{"entity_changes", "CHECK (change_type IN ('CREATED', 'UPDATED', 'DELETED'))",
         "CHECK (change_type = 'CREATED' OR change_type = 'UPDATED' OR change_type = 'DELETED')"},
        {"change_results", "CHECK (outcome IN ('applied', 'conflict', 'error'))",
         "CHECK (outcome = 'applied' OR outcome = 'conflict' OR outcome = 'error')"}}},
  };
  return kMigrations;
}

Result<std::unique_ptr<ServerStore>> OpenSqliteServerStore(const std::string& path,
                                                           const DatabaseOptions& options) {
  DatabaseOptions db_options = options;
  db_options.enable_wal = false;
  Result<std::unique_ptr<Database>> db = Database::Open(path, db_options);
  if (!db.ok()) return db.status();
  DS_RETURN_IF_ERROR(Migrate(*db.value(), ServerMigrations(), kServerApplicationId));
  DS_RETURN_IF_ERROR(db.value()->EnableWal());
  auto store = std::make_unique<SqliteServerStore>(std::move(db).value());
  DS_RETURN_IF_ERROR(store->CheckpointInBackground(path, options));
  return std::unique_ptr<ServerStore>(std::move(store));
}

}  // namespace deltasync
