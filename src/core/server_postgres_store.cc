#include "core/server_postgres_store.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/change_codec.h"
#include "core/libpq.h"

namespace deltasync {

namespace {

// The same tables as the SQLite store's (server_sqlite_store.cc) in PostgreSQL's types. Text
// compares byte by byte (COLLATE "C"), so every ORDER BY matches SQLite's whatever the
// database's locale.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE user_versions (
  user_id               TEXT COLLATE "C" PRIMARY KEY,
  version               BIGINT NOT NULL,
  last_server_timestamp BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE entity_changes (
  id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id          TEXT COLLATE "C" NOT NULL,
  version          BIGINT NOT NULL,
  change_id        TEXT COLLATE "C" NOT NULL,
  device_id        TEXT COLLATE "C",
  change_type      TEXT NOT NULL CHECK (change_type IN ('CREATED', 'UPDATED', 'DELETED')),
  entity_type      TEXT COLLATE "C" NOT NULL,
  entity_id        TEXT COLLATE "C" NOT NULL,
  change_data      TEXT,
  base_version     BIGINT,
  client_timestamp BIGINT NOT NULL,
  server_timestamp BIGINT NOT NULL,
  resolution       TEXT,
  UNIQUE (user_id, version),
  UNIQUE (user_id, change_id)
);
CREATE INDEX entity_changes_by_entity ON entity_changes (user_id, entity_type, entity_id, version);
CREATE TABLE entities (
  user_id          TEXT COLLATE "C" NOT NULL,
  entity_type      TEXT COLLATE "C" NOT NULL,
  entity_id        TEXT COLLATE "C" NOT NULL,
  data             TEXT,
  deleted          INTEGER NOT NULL DEFAULT 0,
  version          BIGINT NOT NULL,
  device_id        TEXT COLLATE "C",
  client_timestamp BIGINT NOT NULL,
  server_timestamp BIGINT NOT NULL,
  PRIMARY KEY (user_id, entity_type, entity_id)
);
CREATE INDEX entities_by_server_time ON entities (user_id, server_timestamp);
CREATE TABLE devices (
  user_id            TEXT COLLATE "C" NOT NULL,
  device_id          TEXT COLLATE "C" NOT NULL,
  last_push_at       BIGINT,
  last_pull_at       BIGINT,
  changes_pushed     BIGINT NOT NULL DEFAULT 0,
  conflicts_reported BIGINT NOT NULL DEFAULT 0,
  last_seen_version  BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, device_id)
);
CREATE TABLE change_results (
  user_id       TEXT COLLATE "C" NOT NULL,
  change_id     TEXT COLLATE "C" NOT NULL,
  fingerprint   TEXT NOT NULL,
  outcome       TEXT NOT NULL CHECK (outcome IN ('applied', 'conflict', 'error')),
  version       BIGINT,
  conflict_id   BIGINT,
  reason        TEXT,
  strategy      TEXT,
  winner        TEXT,
  error_code    TEXT,
  error_message TEXT,
  entity_type   TEXT COLLATE "C" NOT NULL,
  entity_id     TEXT COLLATE "C" NOT NULL,
  action        TEXT NOT NULL,
  PRIMARY KEY (user_id, change_id)
);
CREATE TABLE conflicts (
  id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id          TEXT COLLATE "C" NOT NULL,
  number           BIGINT NOT NULL,
  change_id        TEXT COLLATE "C" NOT NULL,
  device_id        TEXT COLLATE "C",
  entity_type      TEXT COLLATE "C" NOT NULL,
  entity_id        TEXT COLLATE "C" NOT NULL,
  change_type      TEXT NOT NULL,
  client_data      TEXT,
  base_version     BIGINT,
  client_timestamp BIGINT NOT NULL,
  server_version   BIGINT,
  status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  resolution       TEXT,
  created_at       BIGINT NOT NULL,
  resolved_at      BIGINT,
  UNIQUE (user_id, number)
);
CREATE INDEX conflicts_by_user ON conflicts (user_id, status, number);
)sql";

// The user's head row, created at version 0 the first time, then locked for the transaction.
constexpr const char* kLockUser = "SELECT version FROM user_versions WHERE user_id = ?1 FOR UPDATE";
constexpr const char* kCreateUser =
    "INSERT INTO user_versions (user_id, version, last_server_timestamp) VALUES (?1, 0, 0) "
    "ON CONFLICT (user_id) DO NOTHING";
constexpr const char* kNotify = "SELECT pg_notify('deltasync_commits', ?1)";
constexpr const char* kChannel = "deltasync_commits";
// NOTIFY's payload limit is 8000 bytes; a longer user id is not announced (see docs/scaling.md).
constexpr size_t kMaxNotifyPayload = 7900;
constexpr char kSeparator = '\x1f';

bool IsValidSchemaName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char ch = name[i];
    const bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
    if (!letter && !(i > 0 && ch >= '0' && ch <= '9')) return false;
  }
  return true;
}

std::string QuoteIdentifier(const std::string& name) { return "\"" + name + "\""; }

// `?1`, `?2`... (the SQL both stores speak) as PostgreSQL's `$1`, `$2`...; counts the parameters.
std::string ToPostgresParameters(const char* sql, int* count) {
  std::string out;
  *count = 0;
  for (const char* p = sql; *p != '\0'; ++p) {
    if (*p != '?') {
      out.push_back(*p);
      continue;
    }
    out.push_back('$');
    int index = 0;
    while (p[1] >= '0' && p[1] <= '9') {
      index = index * 10 + (p[1] - '0');
      out.push_back(*++p);
    }
    if (index > *count) *count = index;
  }
  return out;
}

std::string Trimmed(const char* text) {
  std::string out = text != nullptr ? text : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

bool StartsWith(const char* text, const char* prefix) {
  return text != nullptr &&
         std::string_view(text).substr(0, std::string_view(prefix).size()) == prefix;
}

void IgnoreNotice(void*, const char*) {}

// A failed libpq call as a Status. What a retry may cure (a serialization failure, a deadlock, a
// lost connection, a server shutting down or out of resources) is UNAVAILABLE.
Status PgError(const Libpq& pq, PgConn* conn, const PgResult* result, const char* what) {
  const char* state = result != nullptr ? pq.PQresultErrorField(result, kPgDiagSqlState) : nullptr;
  const std::string message = Trimmed(result != nullptr && *pq.PQresultErrorMessage(result) != '\0'
                                          ? pq.PQresultErrorMessage(result)
                                          : pq.PQerrorMessage(conn));
  const std::string detail =
      std::string(what) + ": " + message + (state ? " (SQLSTATE " + std::string(state) + ")" : "");
  if (pq.PQstatus(conn) != kPgConnectionOk || state == nullptr || StartsWith(state, "08") ||
      StartsWith(state, "40") || StartsWith(state, "53") || StartsWith(state, "57") ||
      StartsWith(state, "55P03")) {
    return Status::Error(StatusCode::kUnavailable, "PostgreSQL is unavailable: " + detail);
  }
  if (StartsWith(state, "22"))
    return Status::InvalidArgument("PostgreSQL refused a value: " + detail);
  if (StartsWith(state, "54"))
    return Status::LimitExceeded("PostgreSQL refused a value as too large: " + detail);
  return Status::Error(StatusCode::kStorage, "PostgreSQL: " + detail);
}

class PgSession;

class PgQuery final : public SqlQuery {
 public:
  PgQuery(PgSession& session, std::string name, int parameters)
      : session_(session), name_(std::move(name)), values_(parameters), nulls_(parameters, true) {}
  ~PgQuery() override { Reset(); }

  void BindNull(int index) override { nulls_[index - 1] = true; }
  void BindInt(int index, int64_t value) override {
    values_[index - 1] = std::to_string(value);
    nulls_[index - 1] = false;
  }
  void BindText(int index, std::string_view value) override {
    if (value.find('\0') != std::string_view::npos) has_nul_ = true;
    values_[index - 1].assign(value);
    nulls_[index - 1] = false;
  }
  Result<bool> Step() override;
  // Queued on the session as `EXECUTE name(literals)`: the writes of a request reach the server
  // together, with its next read or its commit, in one round trip.
  Status Run() override;
  void Reset() override;
  bool IsNull(int column) const override;
  int64_t Int(int column) const override;
  std::string_view Text(int column) const override;

 private:
  // PostgreSQL's text cannot hold a NUL byte: a query bound with one is refused, not sent.
  Status Sendable() const;

  PgSession& session_;
  std::string name_;
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
  bool has_nul_ = false;
  PgResult* result_ = nullptr;
  int row_ = -1;
  int rows_ = 0;
};

class PgSession final : public SqlSession {
 public:
  PgSession(const Libpq& pq, const PostgresOptions& options, std::string origin)
      : pq_(pq), options_(options), origin_(std::move(origin)) {}
  ~PgSession() override { Disconnect(); }

  const Libpq& pq() const { return pq_; }
  PgConn* conn() const { return conn_; }

  // Connects when there is no healthy connection: a lost one is replaced here, between requests.
  Status EnsureConnected() {
    if (conn_ != nullptr && pq_.PQstatus(conn_) == kPgConnectionOk &&
        pq_.PQtransactionStatus(conn_) == kPgTransactionIdle) {
      return Status::Ok();
    }
    Disconnect();
    const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {"10", "deltasync", options_.connection_string.c_str(), nullptr};
    conn_ = pq_.PQconnectdbParams(keywords, values, 1);
    if (conn_ == nullptr || pq_.PQstatus(conn_) != kPgConnectionOk) {
      Status status = Status::Error(
          StatusCode::kUnavailable,
          "Could not connect to PostgreSQL: " +
              Trimmed(conn_ != nullptr ? pq_.PQerrorMessage(conn_) : "out of memory"));
      Disconnect();
      return status;
    }
    pq_.PQsetNoticeProcessor(conn_, IgnoreNotice, nullptr);
    return Exec(("SET search_path TO " + QuoteIdentifier(options_.schema)).c_str(),
                "Setting the schema");
  }

  // Queues a statement (SQL text) to be sent with the next read or the commit.
  void Defer(std::string statement) {
    pending_ += statement;
    pending_ += ";\n";
  }

  // Sends the queued statements, if any, in one round trip.
  Status Flush() {
    if (pending_.empty()) return Status::Ok();
    std::string batch;
    batch.swap(pending_);
    return Exec(batch.c_str(), "Running queued queries");
  }

  Status Exec(const char* sql, const char* what) {
    PgResultPtr result(pq_, pq_.PQexec(conn_, sql));
    const int status = result.get() != nullptr ? pq_.PQresultStatus(result.get()) : -1;
    if (status != kPgCommandOk && status != kPgTuplesOk)
      return PgError(pq_, conn_, result.get(), what);
    return Status::Ok();
  }

  Result<SqlQuery*> Cached(const char* sql) override {
    auto it = queries_.find(sql);
    if (it != queries_.end()) return it->second.get();
    int parameters = 0;
    const std::string text = ToPostgresParameters(sql, &parameters);
    std::string name = "ds" + std::to_string(queries_.size());
    PgResultPtr prepared(pq_, pq_.PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr));
    if (prepared.get() == nullptr || pq_.PQresultStatus(prepared.get()) != kPgCommandOk) {
      return PgError(pq_, conn_, prepared.get(), "Preparing a query");
    }
    auto query = std::make_unique<PgQuery>(*this, std::move(name), parameters);
    SqlQuery* raw = query.get();
    queries_.emplace(sql, std::move(query));
    return raw;
  }

  Status Begin(const std::string& user_id) override {
    DS_RETURN_IF_ERROR(Exec("BEGIN", "Beginning a transaction"));
    for (int attempt = 0; attempt < 2; ++attempt) {
      Result<SqlQuery*> lock = Cached(kLockUser);
      if (!lock.ok()) return lock.status();
      SqlQuery::Scope scope(*lock.value());
      scope->BindText(1, user_id);
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (row.value()) return Status::Ok();
      Result<SqlQuery*> create = Cached(kCreateUser);
      if (!create.ok()) return create.status();
      SqlQuery::Scope create_scope(*create.value());
      create_scope->BindText(1, user_id);
      DS_RETURN_IF_ERROR(create_scope->Run());
    }
    return Status::Error(StatusCode::kInternal,
                         "The user's row in user_versions could not be locked");
  }

  Status AnnounceCommit(const std::string& user_id, int64_t version) override {
    std::string payload = origin_;
    payload.push_back(kSeparator);
    payload += options_.schema;
    payload.push_back(kSeparator);
    payload += std::to_string(version);
    payload.push_back(kSeparator);
    payload += user_id;
    if (payload.size() > kMaxNotifyPayload) return Status::Ok();
    Result<SqlQuery*> notify = Cached(kNotify);
    if (!notify.ok()) return notify.status();
    SqlQuery::Scope scope(*notify.value());
    scope->BindText(1, payload);
    return scope->Run();
  }

  Status Commit() override {
    Defer("COMMIT");
    return Flush();
  }

  void Rollback() override {
    pending_.clear();
    if (conn_ == nullptr || pq_.PQstatus(conn_) != kPgConnectionOk) return;
    PgResultPtr result(pq_, pq_.PQexec(conn_, "ROLLBACK"));
  }

 private:
  void Disconnect() {
    pending_.clear();
    queries_.clear();  // prepared statements belong to the connection
    if (conn_ != nullptr) pq_.PQfinish(conn_);
    conn_ = nullptr;
  }

  const Libpq& pq_;
  const PostgresOptions& options_;
  std::string origin_;
  PgConn* conn_ = nullptr;
  std::unordered_map<const char*, std::unique_ptr<PgQuery>> queries_;
  std::string pending_;  // statements queued by PgQuery::Run, sent by Flush
};

Status PgQuery::Sendable() const {
  if (has_nul_) return Status::InvalidArgument("Text sent to PostgreSQL may not contain a NUL byte");
  return Status::Ok();
}

Status PgQuery::Run() {
  DS_RETURN_IF_ERROR(Sendable());
  const Libpq& pq = session_.pq();
  std::string statement = "EXECUTE " + name_;
  for (size_t i = 0; i < values_.size(); ++i) {
    statement += i == 0 ? "(" : ", ";
    if (nulls_[i]) {
      statement += "NULL";
      continue;
    }
    char* literal = pq.PQescapeLiteral(session_.conn(), values_[i].data(), values_[i].size());
    if (literal == nullptr) return PgError(pq, session_.conn(), nullptr, "Quoting a value");
    statement += literal;
    pq.PQfreemem(literal);
  }
  if (!values_.empty()) statement += ")";
  session_.Defer(std::move(statement));
  return Status::Ok();
}

Result<bool> PgQuery::Step() {
  if (result_ == nullptr) {
    DS_RETURN_IF_ERROR(Sendable());
    DS_RETURN_IF_ERROR(session_.Flush());
    const Libpq& pq = session_.pq();
    std::vector<const char*> values(values_.size());
    std::vector<int> lengths(values_.size());
    for (size_t i = 0; i < values_.size(); ++i) {
      values[i] = nulls_[i] ? nullptr : values_[i].c_str();
      lengths[i] = static_cast<int>(values_[i].size());
    }
    result_ = pq.PQexecPrepared(session_.conn(), name_.c_str(), static_cast<int>(values.size()),
                                values.data(), lengths.data(), nullptr, 0);
    const int status = result_ != nullptr ? pq.PQresultStatus(result_) : -1;
    if (status != kPgCommandOk && status != kPgTuplesOk) {
      Status error = PgError(pq, session_.conn(), result_, "Running a query");
      Reset();
      return error;
    }
    rows_ = status == kPgTuplesOk ? pq.PQntuples(result_) : 0;
    row_ = -1;
  }
  return ++row_ < rows_;
}

void PgQuery::Reset() {
  if (result_ != nullptr) session_.pq().PQclear(result_);
  result_ = nullptr;
  row_ = -1;
  rows_ = 0;
  has_nul_ = false;
  std::fill(nulls_.begin(), nulls_.end(), true);
}

bool PgQuery::IsNull(int column) const {
  return session_.pq().PQgetisnull(result_, row_, column) != 0;
}

int64_t PgQuery::Int(int column) const {
  return std::strtoll(session_.pq().PQgetvalue(result_, row_, column), nullptr, 10);
}

std::string_view PgQuery::Text(int column) const {
  const Libpq& pq = session_.pq();
  return std::string_view(pq.PQgetvalue(result_, row_, column),
                          static_cast<size_t>(pq.PQgetlength(result_, row_, column)));
}

class PostgresServerStore final : public ServerStore {
 public:
  PostgresServerStore(std::unique_ptr<Libpq> pq, PostgresOptions options, std::string origin)
      : pq_(std::move(pq)), options_(std::move(options)), origin_(std::move(origin)) {}

  ~PostgresServerStore() override {
    if (listening_thread_.joinable()) {
      stopping_ = true;
      const char byte = 1;
      (void)!write(wake_[1], &byte, 1);
      listening_thread_.join();
    }
    if (wake_[0] >= 0) close(wake_[0]);
    if (wake_[1] >= 0) close(wake_[1]);
  }

  Result<SessionLease> Acquire() override {
    PgSession* session = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const bool free = available_.wait_for(lock, std::chrono::seconds(30), [&] {
        return !idle_.empty() || static_cast<int>(sessions_.size()) < options_.pool_size;
      });
      if (!free) {
        return Status::Error(
            StatusCode::kUnavailable,
            "Every PostgreSQL connection of the pool stayed busy for 30 s (postgres.poolSize is " +
                std::to_string(options_.pool_size) + ")");
      }
      if (!idle_.empty()) {
        session = idle_.back();
        idle_.pop_back();
      } else {
        sessions_.push_back(std::make_unique<PgSession>(*pq_, options_, origin_));
        session = sessions_.back().get();
      }
    }
    SessionLease lease(session,
                       [this](SqlSession* given) {
                         GiveBack(static_cast<PgSession*>(given));
                         return Status::Ok();  // each request committed its own transaction
                       });
    DS_RETURN_IF_ERROR(session->EnsureConnected());
    return lease;
  }

  // Listening starts with the store (StartListening), so that a stream opened after the
  // server started never misses a commit announced in the meantime.
  void ListenForOtherProcesses(CommitListener listener) override {
    std::lock_guard<std::mutex> lock(listener_mutex_);
    listener_ = std::move(listener);
  }

  // Starts the listening thread and waits (up to the connect timeout) until it listens.
  void StartListening() {
    if (pipe(wake_) != 0) return;
    listening_thread_ = std::thread([this] { Listen(); });
    std::unique_lock<std::mutex> lock(listener_mutex_);
    listening_changed_.wait_for(lock, std::chrono::seconds(15), [&] { return listen_attempted_; });
  }

 private:
  void GiveBack(PgSession* session) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_.push_back(session);
    }
    available_.notify_one();
  }

  // Until the store closes: LISTEN on a connection of its own, and hand every other process's
  // commit announcement to the listener. A lost connection is opened again after a pause.
  void Listen() {
    int pause_ms = 100;
    while (!stopping_) {
      PgSession session(*pq_, options_, origin_);
      const bool listening = session.EnsureConnected().ok() &&
                             session.Exec((std::string("LISTEN ") + kChannel).c_str(), "Listening").ok();
      {
        std::lock_guard<std::mutex> lock(listener_mutex_);
        listen_attempted_ = true;
      }
      listening_changed_.notify_all();
      if (listening) {
        pause_ms = 100;
        Receive(session);
      }
      if (stopping_) break;
      pollfd wake{wake_[0], POLLIN, 0};
      if (poll(&wake, 1, pause_ms) > 0) break;
      pause_ms = std::min(pause_ms * 2, 5000);
    }
  }

  void Receive(PgSession& session) {
    const Libpq& pq = *pq_;
    while (!stopping_) {
      pollfd fds[2] = {{pq.PQsocket(session.conn()), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents != 0) return;
      if (pq.PQconsumeInput(session.conn()) == 0) return;  // the connection is gone
      while (PgNotify* notify = pq.PQnotifies(session.conn())) {
        Deliver(notify->extra != nullptr ? notify->extra : "");
        pq.PQfreemem(notify);
      }
    }
  }

  // "<origin>\x1f<schema>\x1f<version>\x1f<user id>": this process's own commits were told
  // already, when they were made.
  void Deliver(std::string_view payload) {
    const size_t origin_end = payload.find(kSeparator);
    if (origin_end == std::string_view::npos || payload.substr(0, origin_end) == origin_) return;
    const size_t schema_end = payload.find(kSeparator, origin_end + 1);
    if (schema_end == std::string_view::npos ||
        payload.substr(origin_end + 1, schema_end - origin_end - 1) != options_.schema) {
      return;
    }
    const size_t version_end = payload.find(kSeparator, schema_end + 1);
    if (version_end == std::string_view::npos) return;
    const std::string version(payload.substr(schema_end + 1, version_end - schema_end - 1));
    CommitListener listener;
    {
      // Copied, then called unlocked: the listener takes the server's own lock.
      std::lock_guard<std::mutex> lock(listener_mutex_);
      listener = listener_;
    }
    if (listener) listener(std::string(payload.substr(version_end + 1)), std::strtoll(version.c_str(), nullptr, 10));
  }

  std::unique_ptr<Libpq> pq_;
  PostgresOptions options_;
  std::string origin_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<PgSession>> sessions_;
  std::vector<PgSession*> idle_;
  std::mutex listener_mutex_;  // guards listener_ and listen_attempted_
  std::condition_variable listening_changed_;
  CommitListener listener_;
  bool listen_attempted_ = false;
  std::thread listening_thread_;
  std::atomic<bool> stopping_{false};
  int wake_[2] = {-1, -1};
};

// Creates the schema and its tables, or checks their version, under a lock that other processes
// opening the same schema wait for.
Status Migrate(PgSession& session, const std::string& schema) {
  DS_RETURN_IF_ERROR(session.Exec("BEGIN", "Beginning the migration"));
  const std::string quoted = QuoteIdentifier(schema);
  DS_RETURN_IF_ERROR(session.Exec(
      ("SELECT pg_advisory_xact_lock(hashtext('deltasync schema " + schema + "'))").c_str(),
      "Locking the schema"));
  DS_RETURN_IF_ERROR(
      session.Exec(("CREATE SCHEMA IF NOT EXISTS " + quoted).c_str(), "Creating the schema"));
  DS_RETURN_IF_ERROR(session.Exec(
      ("CREATE TABLE IF NOT EXISTS " + quoted + ".deltasync_schema (version INTEGER NOT NULL)")
          .c_str(),
      "Creating the schema's version table"));
  const Libpq& pq = session.pq();
  PgResultPtr result(
      pq, pq.PQexec(session.conn(),
                    ("SELECT max(version) FROM " + quoted + ".deltasync_schema").c_str()));
  if (result.get() == nullptr || pq.PQresultStatus(result.get()) != kPgTuplesOk) {
    return PgError(pq, session.conn(), result.get(), "Reading the schema's version");
  }
  const int version =
      pq.PQgetisnull(result.get(), 0, 0) ? 0 : std::atoi(pq.PQgetvalue(result.get(), 0, 0));
  if (version > kPostgresSchemaVersion) {
    session.Rollback();
    return Status::Error(StatusCode::kNotADatabase,
                         "The PostgreSQL schema \"" + schema + "\" is at version " +
                             std::to_string(version) +
                             ", newer than this release of deltasync understands (" +
                             std::to_string(kPostgresSchemaVersion) + "): upgrade deltasync");
  }
  if (version < 1) {
    DS_RETURN_IF_ERROR(
        session.Exec(("SET LOCAL search_path TO " + quoted).c_str(), "Choosing the schema"));
    DS_RETURN_IF_ERROR(session.Exec(kSchemaV1, "Creating the tables"));
    DS_RETURN_IF_ERROR(
        session.Exec(("INSERT INTO " + quoted + ".deltasync_schema (version) VALUES (1)").c_str(),
                     "Recording the version"));
  }
  return session.Exec("COMMIT", "Committing the migration");
}

}  // namespace

Result<std::unique_ptr<ServerStore>> OpenPostgresServerStore(const PostgresOptions& options) {
  // The one place these rules live: lib/server.js checks only the options' JavaScript types.
  if (!IsValidSchemaName(options.schema)) {
    return ExpectedError("a name of 1-63 letters, digits or underscores, not starting with a digit",
                         "options.postgres.schema",
                         "\"" + options.schema.substr(0, 40) + "\" of type string");
  }
  if (options.pool_size < 1 || options.pool_size > 1000) {
    return ExpectedError("an integer from 1 to 1000", "options.postgres.poolSize",
                         std::to_string(options.pool_size) + " of type number");
  }
  Result<std::unique_ptr<Libpq>> pq = Libpq::Load(options.libpq_path);
  if (!pq.ok()) return pq.status();
  // Tells this process's commit announcements from other processes' (see Deliver).
  std::random_device device;
  const std::string origin = std::to_string(device()) + "-" + std::to_string(device()) + "-" +
                             std::to_string(static_cast<long long>(getpid()));
  auto store = std::make_unique<PostgresServerStore>(std::move(pq).value(), options, origin);
  {
    Result<SessionLease> lease = store->Acquire();
    if (!lease.ok()) return lease.status();
    Status migrated = Migrate(static_cast<PgSession&>(lease.value().session()), options.schema);
    if (!migrated.ok()) {
      lease.value().session().Rollback();
      return migrated;
    }
  }
  store->StartListening();
  return std::unique_ptr<ServerStore>(std::move(store));
}

}  // namespace deltasync
