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
  using F = OutcomeField;
  static const OutcomeShape shape{
      {{"changeId", F::kChangeId}, {"version", F::kVersion}},
      {{"changeId", F::kChangeId}, {"conflictId", F::kConflictId}, {"entityType", F::kEntityType},
       {"entityId", F::kEntityId}, {"reason", F::kReason}, {"resolution", F::kResolution},
       {"winner", F::kWinner}, {"", F::kServerState}},
      {{"changeId", F::kChangeId}, {"code", F::kErrorCode}, {"message", F::kErrorMessage}},
  };
  return shape;
}

// The compatible routes' push responses (shared/seeds): records are named by entity, uniqueId
// is the record's id.
const OutcomeShape& CompatOutcomes() {
  using F = OutcomeField;
  static const OutcomeShape shape{
      {{"entityType", F::kEntityType}, {"entityId", F::kEntityId}, {"action", F::kAction},
       {"uniqueId", F::kEntityId}, {"version", F::kVersion}},
      {{"entityType", F::kEntityType}, {"entityId", F::kEntityId}, {"resolution", F::kResolution},
       {"winner", F::kWinner}, {"reason", F::kReason}, {"conflictId", F::kConflictId},
       {"", F::kServerState}},
      {{"entityType", F::kEntityType}, {"entityId", F::kEntityId}, {"code", F::kErrorCode},
       {"error", F::kErrorMessage}},
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

const char* const kNotABodyObject = "Expected a JSON object for the request body";

bool IsValidDeviceId(std::string_view id) {
  return !id.empty() && id.size() <= 256 && id.find('\0') == std::string_view::npos;
}

Status ReadDeviceId(simdjson::ondemand::value value, std::string* out) {
  std::string_view text;
  simdjson::ondemand::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS || type != simdjson::ondemand::json_type::string ||
      value.get_string().get(text) != simdjson::SUCCESS || !IsValidDeviceId(text)) {
    return ExpectedError(kDeviceIdExpected, "deviceId", DescribeReceived(value));
  }
  out->assign(text);
  return Status::Ok();
}

Status OpenRequestObject(simdjson::ondemand::parser& parser, simdjson::padded_string& padded,
                         const std::string& what, const std::string& not_object,
                         simdjson::ondemand::document* doc, simdjson::ondemand::object* object) {
  if (auto error = parser.iterate(padded).get(*doc)) {
    return Status::InvalidArgument("Malformed JSON in " + what + " (" + simdjson::error_message(error) +
                                   ")");
  }
  const simdjson::error_code error = doc->get_object().get(*object);
  if (error == simdjson::INCORRECT_TYPE) return Status::InvalidArgument(not_object);
  if (error) {
    return Status::InvalidArgument("Malformed JSON in " + what + " (" + simdjson::error_message(error) + ")");
  }
  return Status::Ok();
}

Status ParseResolution(simdjson::ondemand::parser& parser, const std::string& json,
                       const ServerLimits& limits, Resolution* out) {
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(object) != simdjson::SUCCESS) {
    return Status::InvalidArgument("Expected an object { use, data? } for resolution");
  }
  const char* const kUses = "\"client\", \"server\" or \"merged\"";
  DS_RETURN_IF_ERROR(ForEachField(
      object, "resolution", "Malformed resolution",
      [&](std::string_view key, simdjson::ondemand::value value) -> Status {
        if (key == "use") {
          std::string_view text;
          if (value.get_string().get(text) != simdjson::SUCCESS) {
            return ExpectedError(kUses, "resolution.use", DescribeReceived(value));
          }
          out->use = text == "local" ? "client" : text == "remote" ? "server" : std::string(text);
        } else if (key == "data") {
          simdjson::ondemand::json_type type;
          if (value.type().get(type) != simdjson::SUCCESS ||
              type != simdjson::ondemand::json_type::object) {
            return ExpectedError("an object", "resolution.data", DescribeReceived(value));
          }
          std::string copy;
          DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, limits.json, "resolution.data", &copy));
          out->data = std::move(copy);
        } else {
          return Status::InvalidArgument("Unknown field \"" + std::string(key) +
                                         "\" in resolution (expected use, data)");
        }
        return Status::Ok();
      }));
  if (out->use != "client" && out->use != "server" && out->use != "merged") {
    return ExpectedError(kUses, "resolution.use",
                         out->use.empty() ? std::string("undefined")
                                          : "\"" + out->use + "\" of type string");
  }
  if (out->use == "merged" && !out->data) {
    return ExpectedError("an object", "resolution.data", "undefined");
  }
  return Status::Ok();
}

bool ServerDataBudget::Admit(const std::string& entity_type, const std::string& entity_id,
                             size_t bytes, size_t response_size) {
  std::string key = entity_type;
  key.push_back('\0');
  key.append(entity_id);
  if (sent_.count(key) != 0) return false;
  if (!sent_.empty() && response_size + bytes > max_bytes_) return false;
  sent_.insert(std::move(key));
  return true;
}

void AppendServerState(const std::string& entity_type, const std::string& entity_id,
                       std::optional<int64_t> version, const std::optional<std::string>& data,
                       ServerDataBudget& budget, std::string* out) {
  out->append(",\"serverVersion\":");
  out->append(version ? std::to_string(*version) : "null");
  if (!budget.Admit(entity_type, entity_id, data ? data->size() : 4, out->size())) {
    out->append(",\"serverDataOmitted\":true");
    return;
  }
  out->append(",\"serverData\":");
  AppendNullable(out, data);
}

void AppendLoggedChange(const LoggedChange& change, std::string* out) {
  JsonObjectWriter(out)
      .Int("version", change.version)
      .String("changeId", change.change_id)
      .String("type", change.type)
      .String("entityType", change.entity_type)
      .String("entityId", change.entity_id)
      .OptionalRaw("data", change.data)
      .Int("timestamp", change.timestamp)
      .OptionalString("deviceId", change.device_id)
      .Close();
}

void AppendResolverContext(const ResolverContext& context, std::string* out) {
  const ChangeInput& change = context.change;
  const bool deleted = change.type == ChangeType::kDeleted;
  std::string client_change;
  JsonObjectWriter(&client_change)
      .String("changeId", *change.change_id)
      .String("type", ChangeTypeName(change.type))
      .OptionalRaw("data", deleted ? std::nullopt : change.data)
      .OptionalInt("baseVersion", change.base_version)
      .Int("timestamp", *change.timestamp)
      .String("deviceId", context.device_id)
      .Close();
  JsonObjectWriter(out)
      .String("changeId", *change.change_id)
      .String("entityType", change.entity_type)
      .String("entityId", change.entity_id)
      .OptionalRaw("server", context.server)
      .OptionalRaw("client", context.client)
      .OptionalRaw("base", context.base)
      .Int("serverVersion", context.server_version)
      .Raw("clientChange", client_change)
      .Close();
}

void AppendOpenConflict(const OpenConflict& conflict, std::string* out) {
  JsonObjectWriter item(out);
  item
      .Int("id", conflict.id)
      .String("changeId", conflict.change_id)
      .OptionalString("deviceId", conflict.device_id)
      .String("entityType", conflict.entity_type)
      .String("entityId", conflict.entity_id)
      .String("type", conflict.type)
      .OptionalRaw("clientData", conflict.client_data)
      .OptionalInt("baseVersion", conflict.base_version)
      .Int("clientTimestamp", conflict.client_timestamp)
      .Int("createdAt", conflict.created_at)
      .OptionalRaw("serverData", conflict.server_data)
      .OptionalInt("serverVersion", conflict.server_version);
  if (conflict.with_base) item.OptionalRaw("baseData", conflict.base_data);
  item.Close();
}

Status DecodePushRequest(simdjson::ondemand::parser& parser, const std::string& body,
                         bool with_pull_fields, const RequestContext& context,
                         const ServerLimits& limits, PushRequest* out) {
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  DS_RETURN_IF_ERROR(OpenRequestObject(parser, padded, "the request body", kNotABodyObject, &doc, &object));
  bool has_device = false;
  DS_RETURN_IF_ERROR(ForEachField(
      object, "the request body", "Malformed JSON in the request body",
      [&](std::string_view key, simdjson::ondemand::value value) -> Status {
        if (key == "deviceId") {
          DS_RETURN_IF_ERROR(ReadDeviceId(value, &out->device_id));
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
    if (!IsValidDeviceId(header)) {
      return ExpectedError(kDeviceIdExpected, "the X-Device-ID header",
                           std::to_string(header.size()) + " bytes");
    }
    out->device_id = header;
    has_device = true;
  }
  if (!has_device) return ExpectedError(kDeviceIdExpected, "deviceId", "undefined");
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the request body");
  return Status::Ok();
}

}  // namespace deltasync
