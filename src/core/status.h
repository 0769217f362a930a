// Status: the result of every core operation that can fail. Either ok, or a
// stable error code plus a message naming what was wrong and what was expected.
// The core never throws across module boundaries; the binding turns a non-ok
// Status into a JS SyncError whose `code` is CodeName(code()).
#pragma once

#include <string>
#include <utility>

namespace deltasync {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller passed something malformed or out of range
  kNotFound,         // the named change, document or conflict does not exist
  kConflict,         // the operation contradicts stored state (e.g. a reused changeId)
  kClosed,           // the client was closed
  kStorage,          // SQLite reported an I/O, corruption or full-disk error
  kBusy,             // the database stayed locked by another connection past busyTimeoutMs
  kLimitExceeded,    // a configured limit (size, depth, count) was exceeded
  kNotADatabase,     // the file is not a deltasync database, or is from a newer release
  kInternal,         // a bug: an invariant did not hold
  kUnavailable,      // the database server could not be reached or kept aborting the transaction: retry later
};

// The stable string used as SyncError.code in JavaScript.
const char* CodeName(StatusCode code);

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(StatusCode code, std::string message) { return Status(code, std::move(message)); }
  static Status InvalidArgument(std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message));
  }
  static Status NotFound(std::string message) { return Status(StatusCode::kNotFound, std::move(message)); }
  static Status Conflict(std::string message) { return Status(StatusCode::kConflict, std::move(message)); }
  static Status Closed(std::string message) { return Status(StatusCode::kClosed, std::move(message)); }
  static Status Storage(std::string message) { return Status(StatusCode::kStorage, std::move(message)); }
  static Status LimitExceeded(std::string message) {
    return Status(StatusCode::kLimitExceeded, std::move(message));
  }
  static Status Internal(std::string message) { return Status(StatusCode::kInternal, std::move(message)); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return value_; }
  const T& value() const& { return value_; }
  T&& value() && { return std::move(value_); }

 private:
  Status status_;
  T value_{};
};

}  // namespace deltasync

// The local is named after the line, so that a DS_RETURN_IF_ERROR inside a lambda given to
// another one does not shadow it.
#define DS_STATUS_CONCAT_INNER(a, b) a##b
#define DS_STATUS_CONCAT(a, b) DS_STATUS_CONCAT_INNER(a, b)
#define DS_RETURN_IF_ERROR(expr) DS_RETURN_IF_ERROR_NAMED(DS_STATUS_CONCAT(ds_status_, __LINE__), expr)
#define DS_RETURN_IF_ERROR_NAMED(name, expr) \
  do {                                       \
    ::deltasync::Status name = (expr);       \
    if (!name.ok()) return name;             \
  } while (0)
