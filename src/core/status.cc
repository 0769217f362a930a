#include "core/status.h"

namespace deltasync {

const char* CodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kConflict: return "CONFLICT";
    case StatusCode::kClosed: return "CLOSED";
    case StatusCode::kStorage: return "STORAGE";
    case StatusCode::kBusy: return "BUSY";
    case StatusCode::kLimitExceeded: return "LIMIT_EXCEEDED";
    case StatusCode::kNotADatabase: return "NOT_A_DATABASE";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
  }
  return "INTERNAL";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace deltasync
