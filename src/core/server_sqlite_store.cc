#include "core/server_sqlite_store.h"

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

  // The store's mutex already serializes every request, so the user is not needed here.
  Status Begin(const std::string& /*user_id*/) override {
    transaction_.emplace(*db_);
    Status status = transaction_->status();
    if (!status.ok()) transaction_.reset();
    return status;
  }
  Status AnnounceCommit(const std::string& /*user_id*/, int64_t /*version*/) override {
    return Status::Ok();
  }
  Status Commit() override {
    Status status = transaction_->Commit();
    transaction_.reset();
    return status;
  }
  void Rollback() override { transaction_.reset(); }

 private:
  std::unique_ptr<Database> db_;
  std::optional<Transaction> transaction_;
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
    return SessionLease(&session_, [this](SqlSession*) { lock_.unlock(); });
  }
  // One process owns the file: every commit is made here, so there is nothing to listen to.
  void ListenForOtherProcesses(CommitListener /*listener*/) override {}

 private:
  FifoLock lock_;
  SqliteSession session_;
  std::unique_ptr<WalCheckpointer> checkpointer_;  // after session_: stopped before its connection closes
};

}  // namespace

const std::vector<Migration>& ServerMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, kServerV1},
      {2, kServerV2},
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
