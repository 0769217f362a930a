#include "core/sqlite.h"

#include <csignal>
#include <cstdlib>

#include <string>

namespace deltasync {

namespace {

StatusCode CodeForSqlite(int rc) {
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StatusCode::kBusy;
    case SQLITE_NOTADB:
      return StatusCode::kNotADatabase;
    case SQLITE_TOOBIG:
      return StatusCode::kLimitExceeded;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
      return StatusCode::kInternal;
    default:
      return StatusCode::kStorage;
  }
}

}  // namespace

// ---- Statement

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::BindNull(int index) { sqlite3_bind_null(stmt_, index); }
void Statement::BindInt(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
void Statement::BindDouble(int index, double value) { sqlite3_bind_double(stmt_, index, value); }
void Statement::BindText(int index, std::string_view value) {
  sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8);
}
void Statement::BindOptionalText(int index, const std::optional<std::string>& value) {
  if (value) {
    BindText(index, *value);
  } else {
    BindNull(index);
  }
}
void Statement::BindOptionalInt(int index, const std::optional<int64_t>& value) {
  if (value) {
    BindInt(index, *value);
  } else {
    BindNull(index);
  }
}

Result<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status status = db_->ErrorStatus(rc, "SQLite statement failed");
  sqlite3_reset(stmt_);
  return status;
}

Status Statement::Run() {
  Result<bool> stepped = Step();
  if (!stepped.ok()) return stepped.status();
  sqlite3_reset(stmt_);
  return Status::Ok();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::Double(int column) const { return sqlite3_column_double(stmt_, column); }
std::string_view Statement::Text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return {};
  return std::string_view(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}
std::optional<std::string> Statement::OptionalText(int column) const {
  if (IsNull(column)) return std::nullopt;
  return std::string(Text(column));
}
std::optional<int64_t> Statement::OptionalInt(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

Statement::Scope::~Scope() { stmt_.Reset(); }

// ---- Database

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, const DatabaseOptions& options) {
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (!options.must_exist) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, options.vfs.empty() ? nullptr : options.vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string message = "Could not open database '" + path + "': " +
                          (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    sqlite3_close_v2(raw);
    if ((rc & 0xFF) == SQLITE_CANTOPEN && options.must_exist) {
      return Status::NotFound(std::move(message));
    }
    return Status::Error(CodeForSqlite(rc), std::move(message));
  }
  std::unique_ptr<Database> db(new Database(raw, path, options.busy_timeout_ms));
  db->crash_at_commit_ = options.crash_at_commit;
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);

  if (!options.read_only && options.enable_wal) DS_RETURN_IF_ERROR(db->EnableWal());
  DS_RETURN_IF_ERROR(db->Exec(options.durability == Durability::kFull ? "PRAGMA synchronous=FULL"
                                                                       : "PRAGMA synchronous=NORMAL"));
  DS_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-" +
                              std::to_string(options.cache_kib)));
  return db;
}

Database::~Database() {
  cache_.clear();  // statements must be finalized before the connection closes
  sqlite3_close_v2(db_);
}

Status Database::ErrorStatus(int rc, std::string_view what) const {
  std::string message(what);
  message += ": ";
  message += sqlite3_errmsg(db_);
  if ((rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED) {
    message += " (the database stayed locked by another connection past busyTimeoutMs)";
  }
  return Status::Error(CodeForSqlite(rc), std::move(message));
}

Status Database::EnableWal() {
  // A new file's first switch to WAL can report SQLITE_BUSY at once, without the
  // busy handler, while another connection is creating the same file.
  constexpr int kStepMs = 5;
  for (int waited = 0;; waited += kStepMs) {
    Status status = Exec("PRAGMA journal_mode=WAL");
    if (status.ok() || status.code() != StatusCode::kBusy || waited >= busy_timeout_ms_) return status;
    sqlite3_sleep(kStepMs);
  }
}

Status Database::Exec(std::string_view sql) {
  std::string owned(sql);
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    // `error` holds the same text as sqlite3_errmsg(), which ErrorStatus reads (and
    // for BUSY it adds the busyTimeoutMs hint).
    sqlite3_free(error);
    return ErrorStatus(rc, "SQLite exec failed");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Statement>> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                    &stmt, nullptr);
  if (rc != SQLITE_OK) return ErrorStatus(rc, "SQLite prepare failed");
  return std::unique_ptr<Statement>(new Statement(this, stmt));
}

int64_t Database::CachedVmSteps() const {
  int64_t steps = 0;
  for (const auto& [sql, statement] : cache_) steps += sqlite3_stmt_status(statement->handle(), SQLITE_STMTSTATUS_VM_STEP, 0);
  return steps;
}

Result<Statement*> Database::Cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return it->second.get();
  Result<std::unique_ptr<Statement>> prepared = Prepare(sql);
  if (!prepared.ok()) return prepared.status();
  Statement* raw = prepared.value().get();
  cache_.emplace(sql, std::move(prepared).value());
  return raw;
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
int Database::Changes() const { return sqlite3_changes(db_); }

// ---- Transaction

Transaction::Transaction(Database& db) : db_(db) {
  depth_ = db_.transaction_depth_ + 1;
  begin_status_ = depth_ == 1 ? db_.Exec("BEGIN IMMEDIATE")
                              : db_.Exec("SAVEPOINT ds_" + std::to_string(depth_));
  if (begin_status_.ok()) {
    active_ = true;
    db_.transaction_depth_ = depth_;
  }
}

Transaction::~Transaction() {
  if (!active_) return;
  if (depth_ == 1) {
    db_.Exec("ROLLBACK");
  } else {
    const std::string name = "ds_" + std::to_string(depth_);
    db_.Exec("ROLLBACK TO " + name + "; RELEASE " + name);
  }
  db_.transaction_depth_ = depth_ - 1;
}

void Database::CrashPoint(bool after_commit) {
  if (crash_at_commit_ == 0) return;
  if (!after_commit) ++commits_;
  if ((after_commit ? -commits_ : commits_) != crash_at_commit_) return;
#ifdef SIGKILL
  std::raise(SIGKILL);
#endif
  std::abort();
}

Status Transaction::Commit() {
  if (!active_) return Status::Internal("Commit of a transaction that is not active");
  if (depth_ == 1) db_.CrashPoint(false);
  Status status = depth_ == 1 ? db_.Exec("COMMIT") : db_.Exec("RELEASE ds_" + std::to_string(depth_));
  if (status.ok() && depth_ == 1) db_.CrashPoint(true);
  if (!status.ok()) return status;  // the destructor rolls back
  active_ = false;
  db_.transaction_depth_ = depth_ - 1;
  return Status::Ok();
}

}  // namespace deltasync
