// What the server's decisions read and write through: a session (one connection, used by one
// request at a time) with prepared queries, and a store that lends sessions. The queries are
// written once, in the SQL both stores speak (`?N` parameters); each store runs them in its
// own dialect. The guarantees a store gives are in docs/architecture.md ("What a store must
// guarantee").
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace deltasync {

// A prepared query. Parameters are 1-based, columns 0-based. Rows are read after Step()
// returns true; the values stay valid until the next Step() or Reset().
class SqlQuery {
 public:
  virtual ~SqlQuery() = default;

  virtual void BindNull(int index) = 0;
  virtual void BindInt(int index, int64_t value) = 0;
  // `value` must outlive the next Step().
  virtual void BindText(int index, std::string_view value) = 0;
  void BindOptionalText(int index, const std::optional<std::string>& value) {
    if (value) {
      BindText(index, *value);
    } else {
      BindNull(index);
    }
  }
  void BindOptionalInt(int index, const std::optional<int64_t>& value) {
    if (value) {
      BindInt(index, *value);
    } else {
      BindNull(index);
    }
  }

  // Binds `values` to parameters 1..N in order: strings as text, integers, nullptr and absent
  // optionals as null. Text must outlive the next Step().
  template <typename... Values>
  void BindAll(const Values&... values) {
    int index = 0;
    (Bind(++index, values), ...);
  }

  // Runs the query on the first call, then advances. True when a row is available.
  virtual Result<bool> Step() = 0;
  // Runs a query whose rows (if any) are not read. A store may send it later, with the next
  // query whose rows are read or with the commit, in the same transaction; its error then
  // fails that query or the commit.
  virtual Status Run() { return Step().status(); }
  // Forgets the bindings and the rows.
  virtual void Reset() = 0;

  virtual bool IsNull(int column) const = 0;
  virtual int64_t Int(int column) const = 0;
  virtual std::string_view Text(int column) const = 0;
  std::optional<std::string> OptionalText(int column) const {
    if (IsNull(column)) return std::nullopt;
    return std::string(Text(column));
  }
  // Valid until the next Step() or Reset().
  std::optional<std::string_view> OptionalView(int column) const {
    if (IsNull(column)) return std::nullopt;
    return Text(column);
  }
  std::optional<int64_t> OptionalInt(int column) const {
    if (IsNull(column)) return std::nullopt;
    return Int(column);
  }

  void Bind(int index, std::string_view value) { BindText(index, value); }
  void Bind(int index, const char* value) { BindText(index, value); }
  void Bind(int index, const std::string& value) { BindText(index, value); }
  void Bind(int index, int64_t value) { BindInt(index, value); }
  void Bind(int index, std::nullptr_t) { BindNull(index); }
  void Bind(int index, const std::optional<std::string>& value) { BindOptionalText(index, value); }
  void Bind(int index, const std::optional<std::string_view>& value) {
    if (value) {
      BindText(index, *value);
    } else {
      BindNull(index);
    }
  }
  void Bind(int index, const std::optional<int64_t>& value) { BindOptionalInt(index, value); }

  // Resets the query when it goes out of scope, so a query borrowed from the cache never
  // holds stale bindings or rows.
  class Scope {
   public:
    explicit Scope(SqlQuery& query) : query_(query) {}
    ~Scope() { query_.Reset(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    SqlQuery* operator->() { return &query_; }

   private:
    SqlQuery& query_;
  };
};

// One connection and what a request needs beside it (its JSON parsers).
class SqlSession {
 public:
  virtual ~SqlSession() = default;

  // The query for `sql`, prepared on first use and cached by the pointer. REQUIRES: `sql` has
  // static storage.
  virtual Result<SqlQuery*> Cached(const char* sql) = 0;

  // Begins a transaction that serializes with every other transaction of `user_id` until
  // Commit() or Rollback().
  virtual Status Begin(const std::string& user_id) = 0;
  // Tells the store's other processes, at commit, that the user's log reached `version`. Called
  // inside the transaction, before Commit().
  virtual Status AnnounceCommit(const std::string& user_id, int64_t version) = 0;
  // Ends the transaction with its writes kept. They are durable once SessionLease::Release()
  // returns OK (a store may commit several requests' transactions together).
  virtual Status Commit() = 0;
  virtual void Rollback() = 0;

  // Runs `sql` with `values` bound in order (SqlQuery::BindAll); its rows, if any, are not read.
  template <typename... Values>
  Status Run(const char* sql, const Values&... values) {
    Result<SqlQuery*> query = Cached(sql);
    if (!query.ok()) return query.status();
    SqlQuery::Scope scope(*query.value());
    scope->BindAll(values...);
    return scope->Run();
  }

  simdjson::ondemand::parser& parser() { return parser_; }
  simdjson::ondemand::parser& scratch_parser() { return scratch_parser_; }

 private:
  simdjson::ondemand::parser parser_;
  simdjson::ondemand::parser scratch_parser_;
};

// A session lent to one request. Release() gives it back and returns once what the request
// wrote is durable (a store may commit several requests' transactions together): its error
// means the request's writes were not kept. The destructor releases a lease not yet released.
class SessionLease {
 public:
  using GiveBack = std::function<Status(SqlSession*)>;
  SessionLease() = default;
  SessionLease(SqlSession* session, GiveBack give_back) : session_(session), give_back_(std::move(give_back)) {}
  SessionLease(SessionLease&& other) noexcept
      : session_(other.session_), give_back_(std::move(other.give_back_)) {
    other.session_ = nullptr;
  }
  SessionLease& operator=(SessionLease&&) = delete;
  SessionLease(const SessionLease&) = delete;
  ~SessionLease() { (void)Release(); }
  SqlSession& session() { return *session_; }
  Status Release() {
    if (session_ == nullptr) return Status::Ok();
    SqlSession* session = session_;
    session_ = nullptr;
    return give_back_(session);
  }

 private:
  SqlSession* session_ = nullptr;
  GiveBack give_back_;
};

// Where the server's data lives: one SQLite file (one session, so one request at a time, with
// the transactions of requests that queue for it committed together) or a PostgreSQL database
// (a pool of sessions; requests of different users run at once).
class ServerStore {
 public:
  using CommitListener = std::function<void(const std::string& user_id, int64_t head_version)>;

  virtual ~ServerStore() = default;
  // Waits for a free session.
  virtual Result<SessionLease> Acquire() = 0;
  // Starts telling `listener` about commits made by other processes on the same database
  // (stores with one process never call it).
  virtual void ListenForOtherProcesses(CommitListener listener) = 0;
};

// Begins on construction, rolls back on destruction unless committed.
class SessionTransaction {
 public:
  SessionTransaction(SqlSession& session, const std::string& user_id) : session_(session) {
    status_ = session.Begin(user_id);
    active_ = status_.ok();
  }
  ~SessionTransaction() {
    if (active_) session_.Rollback();
  }
  SessionTransaction(const SessionTransaction&) = delete;
  SessionTransaction& operator=(const SessionTransaction&) = delete;

  const Status& status() const { return status_; }
  Status Commit() {
    Status status = session_.Commit();
    if (status.ok()) active_ = false;
    return status;
  }

 private:
  SqlSession& session_;
  Status status_;
  bool active_ = false;
};

}  // namespace deltasync
