// libpq, PostgreSQL's client library, loaded at run time. Only the stable C ABI documented in
// libpq-fe.h is declared here (the functions' signatures and the values of the enums used), so
// building deltasync needs no PostgreSQL headers and running it needs libpq only when a
// PostgreSQL store is opened.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"

namespace deltasync {

struct PgConn;    // libpq's PGconn
struct PgResult;  // libpq's PGresult

// libpq's PGnotify (its public fields, in their order).
struct PgNotify {
  char* relname;
  int be_pid;
  char* extra;
  PgNotify* next;
};

inline constexpr int kPgConnectionOk = 0;     // CONNECTION_OK
inline constexpr int kPgCommandOk = 1;        // PGRES_COMMAND_OK
inline constexpr int kPgTuplesOk = 2;         // PGRES_TUPLES_OK
inline constexpr int kPgTransactionIdle = 0;  // PQTRANS_IDLE
inline constexpr int kPgDiagSqlState = 'C';   // PG_DIAG_SQLSTATE

class Libpq {
 public:
  // Loads `path` (empty: the platform's libpq.so.5 / libpq.5.dylib).
  static Result<std::unique_ptr<Libpq>> Load(const std::string& path);
  ~Libpq();
  Libpq(const Libpq&) = delete;
  Libpq& operator=(const Libpq&) = delete;

  PgConn* (*PQconnectdbParams)(const char* const* keywords, const char* const* values,
                               int expand_dbname) = nullptr;
  int (*PQstatus)(const PgConn* conn) = nullptr;
  int (*PQtransactionStatus)(const PgConn* conn) = nullptr;
  char* (*PQerrorMessage)(const PgConn* conn) = nullptr;
  void (*PQfinish)(PgConn* conn) = nullptr;
  PgResult* (*PQexec)(PgConn* conn, const char* query) = nullptr;
  PgResult* (*PQprepare)(PgConn* conn, const char* name, const char* query, int n_params,
                         const unsigned int* param_types) = nullptr;
  PgResult* (*PQexecPrepared)(PgConn* conn, const char* name, int n_params,
                              const char* const* values, const int* lengths, const int* formats,
                              int result_format) = nullptr;
  int (*PQresultStatus)(const PgResult* result) = nullptr;
  char* (*PQresultErrorField)(const PgResult* result, int field) = nullptr;
  char* (*PQresultErrorMessage)(const PgResult* result) = nullptr;
  int (*PQntuples)(const PgResult* result) = nullptr;
  char* (*PQgetvalue)(const PgResult* result, int row, int column) = nullptr;
  int (*PQgetisnull)(const PgResult* result, int row, int column) = nullptr;
  int (*PQgetlength)(const PgResult* result, int row, int column) = nullptr;
  void (*PQclear)(PgResult* result) = nullptr;
  int (*PQsocket)(const PgConn* conn) = nullptr;
  int (*PQconsumeInput)(PgConn* conn) = nullptr;
  PgNotify* (*PQnotifies)(PgConn* conn) = nullptr;
  void (*PQfreemem)(void* pointer) = nullptr;
  char* (*PQescapeLiteral)(PgConn* conn, const char* text, size_t length) = nullptr;
  void* (*PQsetNoticeProcessor)(PgConn* conn, void (*processor)(void*, const char*),
                                void* arg) = nullptr;

 private:
  Libpq() = default;
  void* handle_ = nullptr;
};

// Frees a PGresult when it goes out of scope.
class PgResultPtr {
 public:
  PgResultPtr(const Libpq& pq, PgResult* result) : pq_(pq), result_(result) {}
  ~PgResultPtr() {
    if (result_ != nullptr) pq_.PQclear(result_);
  }
  PgResultPtr(const PgResultPtr&) = delete;
  PgResultPtr& operator=(const PgResultPtr&) = delete;
  PgResult* get() const { return result_; }

 private:
  const Libpq& pq_;
  PgResult* result_;
};

}  // namespace deltasync
