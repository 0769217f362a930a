#include "core/server_codec.h"

#include <cinttypes>
#include <cstdio>

#include "core/change_codec.h"
#include "core/json.h"

namespace deltasync {

std::string FormatIso8601(int64_t ms) {
  int64_t days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
  int64_t rem = ms - days * 86400000;
  // civil_from_days (Howard Hinnant's algorithm, public domain description)
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  char out[96];
  std::snprintf(out, sizeof out,
                "%04" PRId64 "-%02" PRId64 "-%02" PRId64 "T%02" PRId64 ":%02" PRId64 ":%02" PRId64
                ".%03" PRId64 "Z",
                y, m, d, rem / 3600000, (rem / 60000) % 60, (rem / 1000) % 60, rem % 1000);
  return out;
}

void AppendNullable(std::string* out, const std::optional<std::string>& json) {
  out->append(json ? *json : "null");
}

void AppendString(std::string* out, std::string_view text) { AppendJsonString(out, text); }

// The v2 response (DESIGN.md section 4).
const OutcomeShape& V2Outcomes() {
  static const OutcomeShape shape{
      {{"changeId", OutcomeField::kChangeId}, {"version", OutcomeField::kVersion}},
      {{"changeId", OutcomeField::kChangeId},
       {"conflictId", OutcomeField::kConflictId},
       {"entityType", OutcomeField::kEntityType},
       {"entityId", OutcomeField::kEntityId},
       {"reason", OutcomeField::kReason},
       {"resolution", OutcomeField::kResolution},
       {"winner", OutcomeField::kWinner},
       {"", OutcomeField::kServerState}},
      {{"changeId", OutcomeField::kChangeId},
       {"code", OutcomeField::kErrorCode},
       {"message", OutcomeField::kErrorMessage}},
  };
  return shape;
}

// The compatible routes' push responses (shared/seeds): records are named by entity, uniqueId
// is the record's id.
const OutcomeShape& CompatOutcomes() {
  static const OutcomeShape shape{
      {{"entityType", OutcomeField::kEntityType},
       {"entityId", OutcomeField::kEntityId},
       {"action", OutcomeField::kAction},
       {"uniqueId", OutcomeField::kEntityId},
       {"version", OutcomeField::kVersion}},
      {{"entityType", OutcomeField::kEntityType},
       {"entityId", OutcomeField::kEntityId},
       {"resolution", OutcomeField::kResolution},
       {"winner", OutcomeField::kWinner},
       {"reason", OutcomeField::kReason},
       {"conflictId", OutcomeField::kConflictId},
       {"", OutcomeField::kServerState}},
      {{"entityType", OutcomeField::kEntityType},
       {"entityId", OutcomeField::kEntityId},
       {"code", OutcomeField::kErrorCode},
       {"error", OutcomeField::kErrorMessage}},
  };
  return shape;
}

void AppendOutcomeField(const Outcome& outcome, OutcomeField field, std::string* out) {
  switch (field) {
    case OutcomeField::kChangeId:
      return AppendString(out, outcome.change_id);
    case OutcomeField::kVersion:
      out->append(std::to_string(outcome.version.value_or(0)));
      return;
    case OutcomeField::kEntityType:
      return AppendString(out, outcome.entity_type);
    case OutcomeField::kEntityId:
      return AppendString(out, outcome.entity_id);
    case OutcomeField::kAction:
      return AppendString(out, outcome.action);
    case OutcomeField::kReason:
      return AppendString(out, outcome.reason);
    case OutcomeField::kResolution:
      return AppendString(out, outcome.strategy);
    case OutcomeField::kWinner:
      return AppendString(out, outcome.winner);
    case OutcomeField::kConflictId:
      out->append(std::to_string(outcome.conflict_id.value_or(0)));
      return;
    case OutcomeField::kErrorCode:
      return AppendString(out, outcome.error_code);
    case OutcomeField::kErrorMessage:
      return AppendString(out, outcome.error_message);
    case OutcomeField::kServerState:
      return;  // needs the store: AppendOutcomes
  }
}

const char* ActionName(ChangeType type) {
  switch (type) {
    case ChangeType::kCreated:
      return "CREATE";
    case ChangeType::kUpdated:
      return "UPDATE";
    case ChangeType::kDeleted:
      return "DELETE";
  }
  return "UPDATE";
}

std::string Singular(const std::string& plural) {
  if (plural.size() > 3 && plural.compare(plural.size() - 3, 3, "ies") == 0) {
    return plural.substr(0, plural.size() - 3) + "y";
  }
  if (plural.size() > 1 && plural.back() == 's') return plural.substr(0, plural.size() - 1);
  return plural;
}

// Record fields that describe a client's local sync bookkeeping, not the entity.
bool IsBookkeepingField(std::string_view key) {
  return key == "sync_status" || key == "syncStatus" || key == "isDirty" || key == "is_dirty" ||
         key == "lastSyncedAt" || key == "last_synced_at";
}

bool IsDeletedFlag(std::string_view key) {
  return key == "deleted" || key == "is_deleted" || key == "isDeleted" || key == "_deleted";
}

Status DecodePushRequest(simdjson::ondemand::parser& parser, const std::string& body,
                         bool with_pull_fields, const RequestContext& context,
                         const ServerLimits& limits, PushRequest* out) {
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (auto error = parser.iterate(padded).get(doc)) {
    return Status::InvalidArgument(std::string("Malformed JSON in the request body (") +
                                   simdjson::error_message(error) + ")");
  }
  if (doc.get_object().get(object) != simdjson::SUCCESS) {
    return Status::InvalidArgument("Expected a JSON object for the request body");
  }
  bool has_device = false;
  DS_RETURN_IF_ERROR(ForEachField(
      object, "the request body", "Malformed JSON in the request body",
      [&](std::string_view key, simdjson::ondemand::value value) -> Status {
        if (key == "deviceId") {
          std::string_view text;
          simdjson::ondemand::json_type type;
          if (value.type().get(type) != simdjson::SUCCESS ||
              type != simdjson::ondemand::json_type::string ||
              value.get_string().get(text) != simdjson::SUCCESS || text.empty() ||
              text.size() > 256 || text.find('\0') != std::string_view::npos) {
            return ExpectedError("a non-empty string of at most 256 bytes", "deviceId",
                                 DescribeReceived(value));
          }
          out->device_id.assign(text);
          has_device = true;
        } else if (key == "changes") {
          simdjson::ondemand::array array;
          if (value.get_array().get(array) != simdjson::SUCCESS) {
            return ExpectedError("an array of changes", "changes", DescribeReceived(value));
          }
          size_t count = 0;
          if (array.count_elements().get(count) != simdjson::SUCCESS) {
            return Status::InvalidArgument("Malformed JSON in changes");
          }
          if (count > limits.max_changes_per_push) {
            return Status::LimitExceeded(
                "Too many changes in one request: " + std::to_string(count) + " (the limit is " +
                std::to_string(limits.max_changes_per_push) + ")");
          }
          DS_RETURN_IF_ERROR(DecodeChangeArray(array, DecodeMode::kServer, limits.json, "changes",
                                               &out->changes, nullptr));
        } else if (with_pull_fields && key == "lastKnownServerVersion") {
          int64_t version = 0;
          bool is_null = false;
          if (value.is_null().get(is_null) == simdjson::SUCCESS && is_null) return Status::Ok();
          if (value.get_int64().get(version) != simdjson::SUCCESS || version < 0 ||
              version > kMaxSafeInteger) {
            return ExpectedError("a non-negative integer", "lastKnownServerVersion",
                                 DescribeReceived(value));
          }
          out->last_known_version = version;
        } else if (with_pull_fields && key == "limit") {
          int64_t limit = 0;
          if (value.get_int64().get(limit) != simdjson::SUCCESS || limit < 1 ||
              limit > static_cast<int64_t>(limits.max_pull_limit)) {
            return ExpectedError("an integer from 1 to " + std::to_string(limits.max_pull_limit),
                                 "limit", DescribeReceived(value));
          }
          out->limit = limit;
        } else {
          std::string ignored;
          DS_RETURN_IF_ERROR(CopyValidatedJson(value, 1, limits.json, key, &ignored));
        }
        return Status::Ok();
      }));
  if (!has_device && !context.device_id.empty()) {
    const std::string& header = context.device_id;
    if (header.size() > 256 || header.find('\0') != std::string::npos) {
      return ExpectedError("a non-empty string of at most 256 bytes", "the X-Device-ID header",
                           std::to_string(header.size()) + " bytes");
    }
    out->device_id = header;
    has_device = true;
  }
  if (!has_device)
    return ExpectedError("a non-empty string of at most 256 bytes", "deviceId", "undefined");
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the request body");
  return Status::Ok();
}

}  // namespace deltasync
