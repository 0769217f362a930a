#include "core/schema.h"

#include <string>

namespace deltasync {

namespace {

// Version 1: the durable change queue and the key-value metadata (device id, cursors).
constexpr const char* kClientV1 = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE changes (
  id             INTEGER PRIMARY KEY,            -- local order of the queue
  change_id      TEXT NOT NULL UNIQUE,           -- client UUID, the server's idempotency key
  tenant_id      TEXT,
  user_id        TEXT,
  entity_type    TEXT NOT NULL,
  entity_id      TEXT NOT NULL,
  type           TEXT NOT NULL CHECK (type IN ('CREATED', 'UPDATED', 'DELETED')),
  data           TEXT,                           -- JSON object, NULL for DELETED
  base_version   INTEGER,
  timestamp      INTEGER NOT NULL,               -- when the change was made (ms)
  created_at     INTEGER NOT NULL,               -- when it was queued (ms)
  updated_at     INTEGER NOT NULL,               -- last coalesce or status change (ms)
  synced_at      INTEGER,
  status         TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'syncing', 'synced', 'failed')),
  retry_count    INTEGER NOT NULL DEFAULT 0,
  last_error     TEXT,
  server_version INTEGER
);
CREATE INDEX changes_by_entity ON changes (entity_type, entity_id, id);
CREATE INDEX changes_by_status ON changes (status, id);

-- changeIds that were folded into another change by coalescing (or cancelled out),
-- so that a replayed enqueue or legacy import of them is recognised as done.
CREATE TABLE change_aliases (
  change_id   TEXT PRIMARY KEY,
  merged_into TEXT                                -- surviving changeId, NULL when cancelled
) WITHOUT ROWID;
)sql";

// Version 2: the document store, pulled-change conflicts, and a send counter on
// queued changes (a change that was ever sent must never be coalesced: the server
// may already have applied its changeId).
constexpr const char* kClientV2 = R"sql(
ALTER TABLE changes ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
UPDATE changes SET attempts = 1 WHERE retry_count > 0 OR status != 'pending';

CREATE TABLE documents (
  id             INTEGER PRIMARY KEY,
  entity_type    TEXT NOT NULL,
  entity_id      TEXT NOT NULL,
  data           TEXT,                 -- visible state: server state with local changes on top; NULL when deleted
  base           TEXT,                 -- while local changes are unacknowledged: the server state they sit on
  version        INTEGER,              -- server version of the last pulled change
  deleted        INTEGER NOT NULL DEFAULT 0,
  updated_at     INTEGER NOT NULL,
  last_synced_at INTEGER,
  deleted_at     INTEGER,
  UNIQUE (entity_type, entity_id)
);

CREATE TABLE document_indexes (
  entity_type TEXT NOT NULL,
  field       TEXT NOT NULL,
  name        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (entity_type, field)
) WITHOUT ROWID;

CREATE TABLE conflicts (
  id               INTEGER PRIMARY KEY,
  entity_type      TEXT NOT NULL,
  entity_id        TEXT NOT NULL,
  local_data       TEXT,               -- NULL: deleted locally
  remote_data      TEXT,               -- NULL: deleted on the server
  remote_version   INTEGER NOT NULL,
  remote_change_id TEXT NOT NULL,
  remote_timestamp INTEGER NOT NULL,
  status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  resolution       TEXT,
  created_at       INTEGER NOT NULL,
  resolved_at      INTEGER
);
CREATE UNIQUE INDEX conflicts_open_by_entity ON conflicts (entity_type, entity_id) WHERE status = 'open';
)sql";

// Version 3: the manifest of ingested files.
constexpr const char* kClientV3 = R"sql(
CREATE TABLE ingest_files (
  root        TEXT NOT NULL,     -- the ingested directory, canonical
  path        TEXT NOT NULL,     -- relative to root, '/'-separated
  size        INTEGER NOT NULL,
  mtime_ms    INTEGER NOT NULL,
  sha256      TEXT NOT NULL,
  records     INTEGER NOT NULL,
  ingested_at INTEGER NOT NULL,
  PRIMARY KEY (root, path)
) WITHOUT ROWID;
)sql";

// Version 4: tombstones are found without scanning every document.
constexpr const char* kClientV4 = R"sql(
CREATE INDEX documents_tombstones ON documents (deleted_at) WHERE deleted = 1;
)sql";

// Version 5: the synced history is reached by its own indexes, so a queue's cost per sync cycle
// does not grow with how many changes it has synced (purging by age, "anything acknowledged
// above this version?").
constexpr const char* kClientV5 = R"sql(
CREATE INDEX changes_synced_by_time ON changes (synced_at) WHERE status = 'synced';
CREATE INDEX changes_synced_by_version ON changes (server_version) WHERE status = 'synced';
)sql";

// Version 6: what an app's own conflict resolver is given (the common base, the remote change)
// and whether one still has to look at the conflict, or failed to settle it.
constexpr const char* kClientV6 = R"sql(
ALTER TABLE conflicts ADD COLUMN base_data TEXT;
ALTER TABLE conflicts ADD COLUMN remote_type TEXT;
ALTER TABLE conflicts ADD COLUMN remote_change_data TEXT;
ALTER TABLE conflicts ADD COLUMN remote_device_id TEXT;
ALTER TABLE conflicts ADD COLUMN awaiting_resolver INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conflicts ADD COLUMN resolver_error TEXT;
CREATE INDEX conflicts_awaiting_resolver ON conflicts (id) WHERE status = 'open' AND awaiting_resolver = 1;
)sql";

}  // namespace

const std::vector<Migration>& ClientMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, kClientV1},
      {2, kClientV2},
      {3, kClientV3},
      {4, kClientV4},
      {5, kClientV5},
      {6, kClientV6},
      // Version 7: the CHECKs that list three or more values become ORs. SQLite evaluates
      // `x IN ('a', 'b', 'c')` by building a temporary B-tree for every row it writes, which
      // took more time than the insert itself.
      {7,
       "",
       {{"changes", "CHECK (type IN ('CREATED', 'UPDATED', 'DELETED'))",
         "CHECK (type = 'CREATED' OR type = 'UPDATED' OR type = 'DELETED')"},
        {"changes", "CHECK (status IN ('pending', 'syncing', 'synced', 'failed'))",
         "CHECK (status = 'pending' OR status = 'syncing' OR status = 'synced' OR status = 'failed')"}}},
  };
  return kMigrations;
}

namespace {

// While alive, the connection may write sqlite_schema. Reset() (or the destructor, when an edit
// failed first) turns that off and makes the connection read its definitions again. A connection
// opened with SQLITE_DBCONFIG_DEFENSIVE may not write sqlite_schema: its edits fail and roll back.
class WritableSchema {
 public:
  explicit WritableSchema(Database& db) : db_(db), status_(db.Exec("PRAGMA writable_schema=ON")) {}
  ~WritableSchema() {
    if (!reset_) (void)Reset();
  }
  WritableSchema(const WritableSchema&) = delete;
  WritableSchema& operator=(const WritableSchema&) = delete;
  const Status& status() const { return status_; }
  Status Reset() {
    reset_ = true;
    return db_.Exec("PRAGMA writable_schema=RESET");
  }

 private:
  Database& db_;
  Status status_;
  bool reset_ = false;
};

// The first column of the first row `sql` gives.
Result<int64_t> QueryInt(Database& db, const char* sql) {
  Result<std::unique_ptr<Statement>> stmt = db.Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  Result<bool> row = stmt.value()->Step();
  if (!row.ok()) return row.status();
  return stmt.value()->Int(0);
}

// SQLite's procedure for a change every row already satisfies: edit the text, read the
// definitions again, then bump schema_version. The bump makes other connections read them again
// before their next statement, and this one too should the caller's transaction roll back.
// Each edited definition must hold its `to` afterwards: a `from` that matches nothing is a
// mistake in the migration or a file whose tables deltasync did not write.
Status EditTableDefinitions(Database& db, const std::vector<TableDefinitionEdit>& edits) {
  if (edits.empty()) return Status::Ok();
  Result<int64_t> schema_version = QueryInt(db, "PRAGMA schema_version");
  if (!schema_version.ok()) return schema_version.status();
  {
    WritableSchema writable(db);
    DS_RETURN_IF_ERROR(writable.status());
    Result<std::unique_ptr<Statement>> edit =
        db.Prepare("UPDATE sqlite_schema SET sql = replace(sql, ?2, ?3) WHERE type = 'table' AND name = ?1 "
                   "RETURNING instr(sql, ?3) > 0");
    if (!edit.ok()) return edit.status();
    for (const TableDefinitionEdit& change : edits) {
      Statement::Scope scope(*edit.value());
      scope->BindText(1, change.table);
      scope->BindText(2, change.from);
      scope->BindText(3, change.to);
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value() || scope->Int(0) == 0) {
        return Status::Error(StatusCode::kNotADatabase, std::string("The definition of table '") + change.table +
                                                            "' is not the one deltasync wrote");
      }
    }
    DS_RETURN_IF_ERROR(writable.Reset());
  }
  DS_RETURN_IF_ERROR(db.Exec("PRAGMA schema_version=" + std::to_string(schema_version.value() + 1)));
  // The edited definitions must parse: reading any table's makes SQLite load them all.
  return QueryInt(db, "SELECT count(*) FROM sqlite_schema").status();
}

}  // namespace

Result<int> SchemaVersion(Database& db) {
  Result<int64_t> version = QueryInt(db, "PRAGMA user_version");
  if (!version.ok()) return version.status();
  return static_cast<int>(version.value());
}

Status Migrate(Database& db, const std::vector<Migration>& migrations, int32_t wanted_id, bool must_be_initialized) {
  const int newest = migrations.empty() ? 0 : migrations.back().version;
  Transaction check(db);
  DS_RETURN_IF_ERROR(check.status());
  Result<int> version = SchemaVersion(db);
  if (!version.ok()) return version.status();
  Result<int64_t> app = QueryInt(db, "PRAGMA application_id");
  if (!app.ok()) return app.status();
  const int64_t application_id = app.value();
  Result<int64_t> tables = QueryInt(db, "SELECT count(*) FROM sqlite_schema");
  if (!tables.ok()) return tables.status();
  const int64_t table_count = tables.value();

  if (application_id != wanted_id && (application_id == kApplicationId || application_id == kServerApplicationId)) {
    return Status::Error(StatusCode::kNotADatabase,
                         "The file '" + db.path() + "' is a deltasync " +
                             (application_id == kServerApplicationId ? "server" : "client") + " database, not a " +
                             (wanted_id == kServerApplicationId ? "server" : "client") + " database");
  }
  if (application_id != wanted_id && (application_id != 0 || table_count > 0)) {
    return Status::Error(StatusCode::kNotADatabase,
                         "The file '" + db.path() + "' is an SQLite database but not a deltasync database");
  }
  if (must_be_initialized && application_id == 0 && table_count == 0) {
    return Status::Error(StatusCode::kNotADatabase,
                         "The file '" + db.path() + "' is an empty SQLite database, not a deltasync database");
  }
  if (version.value() > newest) {
    return Status::Error(StatusCode::kNotADatabase,
                         "The file '" + db.path() + "' has schema version " + std::to_string(version.value()) +
                             ", newer than this release supports (" + std::to_string(newest) +
                             "); upgrade deltasync to open it");
  }
  if (version.value() == newest) return check.Commit();
  if (application_id == 0) {
    DS_RETURN_IF_ERROR(db.Exec("PRAGMA application_id=" + std::to_string(wanted_id)));
  }
  DS_RETURN_IF_ERROR(check.Commit());

  for (const Migration& migration : migrations) {
    if (migration.version <= version.value()) continue;
    Transaction tx(db);
    DS_RETURN_IF_ERROR(tx.status());
    // Another connection may have run this migration since we looked.
    Result<int> current = SchemaVersion(db);
    if (!current.ok()) return current.status();
    if (current.value() >= migration.version) continue;
    Status applied = db.Exec(migration.sql);
    if (applied.ok()) applied = EditTableDefinitions(db, migration.edits);
    if (!applied.ok()) {
      return Status::Error(applied.code(), "Migration to schema version " + std::to_string(migration.version) +
                                               " failed: " + applied.message());
    }
    DS_RETURN_IF_ERROR(db.Exec("PRAGMA user_version=" + std::to_string(migration.version)));
    DS_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

}  // namespace deltasync
