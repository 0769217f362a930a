#include "core/libpq.h"

#include <dlfcn.h>

namespace deltasync {

namespace {

template <typename Function>
bool Bind(void* handle, const char* name, Function* out) {
  void* symbol = dlsym(handle, name);
  if (symbol == nullptr) return false;
  *out = reinterpret_cast<Function>(symbol);
  return true;
}

}  // namespace

Result<std::unique_ptr<Libpq>> Libpq::Load(const std::string& path) {
#if defined(__APPLE__)
  const char* default_name = "libpq.5.dylib";
#else
  const char* default_name = "libpq.so.5";
#endif
  const std::string name = path.empty() ? default_name : path;
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Status::Error(
        StatusCode::kUnavailable,
        "PostgreSQL's client library (" + name + ") could not be loaded" +
            (why != nullptr ? std::string(": ") + why : std::string()) +
            ". Install it (Debian/Ubuntu: apt install libpq5; macOS: brew install libpq) "
            "or name it with postgres.libpq");
  }
  std::unique_ptr<Libpq> pq(new Libpq());
  pq->handle_ = handle;
  const bool complete =
      Bind(handle, "PQconnectdbParams", &pq->PQconnectdbParams) &&
      Bind(handle, "PQstatus", &pq->PQstatus) &&
      Bind(handle, "PQtransactionStatus", &pq->PQtransactionStatus) &&
      Bind(handle, "PQerrorMessage", &pq->PQerrorMessage) &&
      Bind(handle, "PQfinish", &pq->PQfinish) && Bind(handle, "PQexec", &pq->PQexec) &&
      Bind(handle, "PQprepare", &pq->PQprepare) &&
      Bind(handle, "PQexecPrepared", &pq->PQexecPrepared) &&
      Bind(handle, "PQresultStatus", &pq->PQresultStatus) &&
      Bind(handle, "PQresultErrorField", &pq->PQresultErrorField) &&
      Bind(handle, "PQresultErrorMessage", &pq->PQresultErrorMessage) &&
      Bind(handle, "PQntuples", &pq->PQntuples) && Bind(handle, "PQgetvalue", &pq->PQgetvalue) &&
      Bind(handle, "PQgetisnull", &pq->PQgetisnull) &&
      Bind(handle, "PQgetlength", &pq->PQgetlength) && Bind(handle, "PQclear", &pq->PQclear) &&
      Bind(handle, "PQsocket", &pq->PQsocket) &&
      Bind(handle, "PQconsumeInput", &pq->PQconsumeInput) &&
      Bind(handle, "PQnotifies", &pq->PQnotifies) && Bind(handle, "PQfreemem", &pq->PQfreemem) &&
      Bind(handle, "PQescapeLiteral", &pq->PQescapeLiteral) &&
      Bind(handle, "PQsetNoticeProcessor", &pq->PQsetNoticeProcessor);
  if (!complete) {
    return Status::Error(StatusCode::kUnavailable,
                         name + " is not a libpq this release can use (a function is missing)");
  }
  return pq;
}

Libpq::~Libpq() {
  if (handle_ != nullptr) dlclose(handle_);
}

}  // namespace deltasync
