#include "core/server_compat_codec.h"

#include <unordered_set>
#include <utility>

#include "core/change_codec.h"
#include "core/json.h"
#include "core/server_decisions.h"

namespace deltasync {

namespace {

// Where records come from: the ids their changes get and how many may come in one body.
struct RecordSource {
  std::string device_id;
  // The changeIds are "<prefix>-<fingerprint of device, type, id and content>", so the same
  // record pushed again (a retry) is applied once.
  std::string id_prefix;
  size_t max_records = 0;
};

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

std::string IdFieldFor(const CompatOptions& compat, const std::string& entity_type) {
  auto it = compat.id_fields.find(entity_type);
  return it == compat.id_fields.end() ? std::string() : it->second;
}

// A record id: a non-empty string of at most 256 bytes, or an integer (as its decimal text).
std::optional<std::string> ReadRecordId(simdjson::ondemand::value value) {
  std::string_view text;
  int64_t number = 0;
  simdjson::ondemand::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return std::nullopt;
  if (type == simdjson::ondemand::json_type::string &&
      value.get_string().get(text) == simdjson::SUCCESS && !text.empty() && text.size() <= 256) {
    return std::string(text);
  }
  if (type == simdjson::ondemand::json_type::number &&
      value.get_int64().get(number) == simdjson::SUCCESS) {
    return std::to_string(number);
  }
  return std::nullopt;
}

// The fields a compatible record carries its time in.
constexpr const char* kRecordTimeFields[] = {"updated_at", "updatedAt"};

bool IsRecordTimeField(std::string_view key) {
  for (const char* field : kRecordTimeFields) {
    if (key == field) return true;
  }
  return false;
}

// updated_at / updatedAt: an ISO 8601 time or milliseconds since the epoch; other types are
// not a time and are left as they are.
Status ReadRecordTime(simdjson::ondemand::value value, const std::string& name,
                      std::optional<int64_t>* out) {
  std::string_view text;
  double number = 0;
  simdjson::ondemand::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return Status::Ok();
  if (type == simdjson::ondemand::json_type::string &&
      value.get_string().get(text) == simdjson::SUCCESS) {
    *out = ParseIso8601Ms(text);
    if (!*out) {
      return ExpectedError("an ISO 8601 time", name,
                           "\"" + std::string(text.substr(0, 40)) + "\" of type string");
    }
  } else if (type == simdjson::ondemand::json_type::number &&
             value.get_double().get(number) == simdjson::SUCCESS) {
    if (!(number >= 0 && number <= 8.64e15)) {
      return ExpectedError("milliseconds since the epoch", name, DescribeReceived(value));
    }
    *out = static_cast<int64_t>(number);
  }
  return Status::Ok();
}

// One record, already copied canonical, as a change.
Status RecordToChange(simdjson::ondemand::parser& scratch, const CompatOptions& compat,
                      const RecordSource& source, const std::string& entity_type,
                      const std::string& record_name, const std::string& canonical,
                      ChangeInput* change) {
  const std::string configured = IdFieldFor(compat, entity_type);
  const std::string singular_id = Singular(entity_type) + "_id";
  simdjson::padded_string padded(canonical);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object fields;
  if (scratch.iterate(padded).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(fields) != simdjson::SUCCESS) {
    return Status::Internal("canonical record did not parse");
  }
  std::optional<std::string> id_configured, id_plain, id_singular;
  bool has_id_field = false;
  std::optional<int64_t> timestamp;
  bool deleted = false;
  std::unordered_set<std::string> drop;
  DS_RETURN_IF_ERROR(
      ForEachField(fields, record_name, "canonical record field",
                   [&](std::string_view key, simdjson::ondemand::value value) -> Status {
                     if (!configured.empty() && key == configured) {
                       has_id_field = true;
                       id_configured = ReadRecordId(value);
                     } else if (key == "id") {
                       has_id_field = true;
                       id_plain = ReadRecordId(value);
                     } else if (key == singular_id) {
                       has_id_field = true;
                       id_singular = ReadRecordId(value);
                     } else if (IsRecordTimeField(key)) {
                       DS_RETURN_IF_ERROR(
                           ReadRecordTime(value, record_name + "." + std::string(key), &timestamp));
                     } else if (IsDeletedFlag(key)) {
                       bool flag = false;
                       if (value.get_bool().get(flag) == simdjson::SUCCESS && flag) deleted = true;
                     } else if (IsBookkeepingField(key)) {
                       drop.insert(std::string(key));
                     }
                     return Status::Ok();
                   }));
  const std::optional<std::string>& id = id_configured ? id_configured
                                         : id_plain    ? id_plain
                                                       : id_singular;
  if (!id) {
    return ExpectedError("an id (\"" + (configured.empty() ? std::string("id") : configured) +
                             "\" or \"" + singular_id + "\": a string of 1 to 256 bytes or an integer)",
                         record_name, has_id_field ? "a record whose id is neither" : "a record without one");
  }
  change->entity_type = entity_type;
  change->entity_id = *id;
  change->timestamp = timestamp;  // none: the time the server processes it (ProcessChange)
  // A full record: CREATED stores it whole, and on an existing entity replaces it (action UPDATE).
  if (deleted) {
    change->type = ChangeType::kDeleted;
  } else {
    Result<std::string> data =
        drop.empty() ? Result<std::string>(canonical) : ObjectWithoutKeys(scratch, canonical, drop);
    if (!data.ok()) return data.status();
    change->type = ChangeType::kCreated;
    change->data = std::move(data).value();
  }
  change->change_id = source.id_prefix + "-" +
                      Fingerprint({source.device_id, entity_type, change->entity_id, canonical});
  return Status::Ok();
}

// {entityType: [records]} into changes, in order.
Status DecodeRecordsByType(simdjson::ondemand::object by_type, simdjson::ondemand::parser& scratch,
                           const CompatOptions& compat, const JsonLimits& limits,
                           const RecordSource& source, const std::string& what,
                           std::vector<ChangeInput>* out, std::string_view not_a_type = {}) {
  return ForEachField(
      by_type, what, "Malformed JSON in " + what,
      [&](std::string_view type_key, simdjson::ondemand::value records_value) -> Status {
        if (!not_a_type.empty() && type_key == not_a_type) return Status::Ok();
        const std::string entity_type(type_key);
        const std::string name = what + "." + entity_type;
        if (!IsValidEntityType(entity_type)) {
          return ExpectedError("entity types matching [A-Za-z0-9_.-]{1,64}", "the keys of " + what,
                               "\"" + entity_type.substr(0, 40) + "\" of type string");
        }
        simdjson::ondemand::array records;
        if (records_value.get_array().get(records) != simdjson::SUCCESS) {
          return ExpectedError("an array of records", name, DescribeReceived(records_value));
        }
        size_t index = 0;
        for (auto record_result : records) {
          const std::string record_name = name + "[" + std::to_string(index++) + "]";
          // The type only: CopyValidatedJson opens the object itself, and a value's object may be
          // opened once (opening an empty one steps past it).
          simdjson::ondemand::value record_value;
          simdjson::ondemand::json_type record_type;
          if (std::move(record_result).get(record_value) != simdjson::SUCCESS ||
              record_value.type().get(record_type) != simdjson::SUCCESS ||
              record_type != simdjson::ondemand::json_type::object) {
            return ExpectedError("an object", record_name, "another value");
          }
          std::string canonical;
          DS_RETURN_IF_ERROR(CopyValidatedJson(record_value, 0, limits, record_name, &canonical));
          if (out->size() >= source.max_records) {
            return Status::LimitExceeded("Too many records in one request (the limit is " +
                                         std::to_string(source.max_records) + ")");
          }
          ChangeInput change;
          DS_RETURN_IF_ERROR(RecordToChange(scratch, compat, source, entity_type, record_name,
                                            canonical, &change));
          out->push_back(std::move(change));
        }
        return Status::Ok();
      });
}

// lastSyncTimestamp: null, an ISO 8601 time or milliseconds.
Status ReadLastSync(simdjson::ondemand::value value, std::optional<int64_t>* out) {
  simdjson::ondemand::json_type type;
  std::string_view text;
  double number = 0;
  if (value.type().get(type) != simdjson::SUCCESS)
    return Status::InvalidArgument("Malformed lastSyncTimestamp");
  if (type == simdjson::ondemand::json_type::null) return Status::Ok();
  if (type == simdjson::ondemand::json_type::string &&
      value.get_string().get(text) == simdjson::SUCCESS && ParseIso8601Ms(text)) {
    *out = ParseIso8601Ms(text);
  } else if (type == simdjson::ondemand::json_type::number &&
             value.get_double().get(number) == simdjson::SUCCESS && number >= 0 &&
             number <= 8.64e15) {
    *out = static_cast<int64_t>(number);
  } else {
    return ExpectedError("an ISO 8601 time or milliseconds", "lastSyncTimestamp",
                         DescribeReceived(value));
  }
  return Status::Ok();
}

}  // namespace

Status DecodeCompatRequest(simdjson::ondemand::parser& parser, simdjson::ondemand::parser& scratch,
                           const std::string& body, const CompatOptions& compat,
                           const ServerLimits& limits, bool with_changes,
                           bool with_since, CompatRequest* out) {
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  DS_RETURN_IF_ERROR(OpenRequestObject(parser, padded, "the request body", kNotABodyObject, &doc, &object));
  // deviceId may follow `changes`; the changeIds need it, so read it first.
  {
    simdjson::ondemand::value device;
    if (object.find_field_unordered("deviceId").get(device) == simdjson::SUCCESS) {
      DS_RETURN_IF_ERROR(ReadDeviceId(device, &out->device_id));
    }
    if (object.reset().error())
      return Status::InvalidArgument("Malformed JSON in the request body");
  }
  if (out->device_id.empty()) return ExpectedError(kDeviceIdExpected, "deviceId", "undefined");
  const RecordSource source{out->device_id, "compat", limits.max_changes_per_push};
  DS_RETURN_IF_ERROR(
      ForEachField(object, "the request body", "Malformed JSON in the request body",
                   [&](std::string_view key, simdjson::ondemand::value value) -> Status {
                     if (key == "changes" && with_changes) {
                       simdjson::ondemand::object by_type;
                       if (value.get_object().get(by_type) != simdjson::SUCCESS) {
                         return ExpectedError("an object of entity types to arrays of records",
                                              "changes", DescribeReceived(value));
                       }
                       return DecodeRecordsByType(by_type, scratch, compat, limits.json, source,
                                                  "changes", &out->changes);
                     }
                     if (key == "lastSyncTimestamp" && with_since)
                       return ReadLastSync(value, &out->since);
                     std::string ignored;
                     return CopyValidatedJson(value, 1, limits.json, key, &ignored);
                   }));
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the request body");
  return Status::Ok();
}

namespace {
// A snapshot is one import, not a push: no limit on its number of records.
RecordSource SnapshotSource() { return RecordSource{"snapshot", "snapshot", static_cast<size_t>(-1)}; }
}  // namespace

Status DecodeSnapshot(simdjson::ondemand::parser& parser, simdjson::ondemand::parser& scratch,
                      const std::string& state, const CompatOptions& compat,
                      const ServerLimits& limits, std::vector<ChangeInput>* out) {
  simdjson::padded_string padded(state);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object by_type;
  DS_RETURN_IF_ERROR(OpenRequestObject(parser, padded, "the snapshot",
                                       "Expected an object of entity types to arrays of records for state",
                                       &doc, &by_type));
  DS_RETURN_IF_ERROR(
      DecodeRecordsByType(by_type, scratch, compat, limits.json, SnapshotSource(), "state", out));
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the snapshot");
  return Status::Ok();
}

Status DecodeMigrateRequest(simdjson::ondemand::parser& parser, simdjson::ondemand::parser& scratch,
                            const std::string& body, const CompatOptions& compat,
                            const ServerLimits& limits, std::vector<ChangeInput>* out) {
  constexpr const char* kNotAState = "Expected an object { entityType: [records] } for the request body";
  constexpr std::string_view kDeviceId = "deviceId";
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  DS_RETURN_IF_ERROR(OpenRequestObject(parser, padded, "the request body", kNotAState, &doc, &object));
  // First the shape: which fields there are, and whether "state" holds an object.
  size_t fields = 0;
  bool state_object = false;
  DS_RETURN_IF_ERROR(ForEachField(object, "the request body", "Malformed JSON in the request body",
                                  [&](std::string_view key, simdjson::ondemand::value value) -> Status {
                                    if (key == kDeviceId) return Status::Ok();
                                    ++fields;
                                    simdjson::ondemand::json_type type;
                                    state_object = key == "state" && value.type().get(type) == simdjson::SUCCESS &&
                                                   type == simdjson::ondemand::json_type::object;
                                    return Status::Ok();
                                  }));
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the request body");
  // Then the records, of the state or of the body itself: the first pass read it whole, so both
  // the object and its "state" open again.
  doc.rewind();
  simdjson::ondemand::object state;
  if (doc.get_object().get(object) != simdjson::SUCCESS ||
      (fields == 1 && state_object && object.find_field_unordered("state").get_object().get(state))) {
    return Status::InvalidArgument("Malformed JSON in the request body");
  }
  if (fields == 1 && state_object) {
    return DecodeRecordsByType(state, scratch, compat, limits.json, SnapshotSource(), "state", out);
  }
  return DecodeRecordsByType(object, scratch, compat, limits.json, SnapshotSource(), "state", out, kDeviceId);
}

Status DecodeCompatResolve(simdjson::ondemand::parser& parser, const std::string& body,
                           const ServerLimits& limits, CompatResolveRequest* out) {
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  DS_RETURN_IF_ERROR(OpenRequestObject(parser, padded, "the request body", kNotABodyObject, &doc, &object));
  std::optional<std::string> resolution_object;
  std::string use;
  std::optional<std::string> data;
  DS_RETURN_IF_ERROR(ForEachField(
      object, "the request body", "Malformed JSON in the request body",
      [&](std::string_view key, simdjson::ondemand::value value) -> Status {
        if (key == "conflictId") {
          if (value.get_int64().get(out->conflict_id) != simdjson::SUCCESS ||
              out->conflict_id < 1) {
            return ExpectedError("a positive integer", "conflictId", DescribeReceived(value));
          }
        } else if (key == "resolution") {
          simdjson::ondemand::json_type type;
          if (value.type().get(type) != simdjson::SUCCESS)
            return Status::InvalidArgument("Malformed resolution");
          if (type == simdjson::ondemand::json_type::string) {
            std::string_view text;
            if (value.get_string().get(text) != simdjson::SUCCESS)
              return Status::InvalidArgument("Malformed resolution");
            use.assign(text);
          } else {
            std::string copy;
            DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, limits.json, "resolution", &copy));
            resolution_object = std::move(copy);
          }
        } else if (key == "data") {
          std::string copy;
          DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, limits.json, "data", &copy));
          data = std::move(copy);
        } else {
          std::string ignored;
          DS_RETURN_IF_ERROR(CopyValidatedJson(value, 1, limits.json, key, &ignored));
        }
        return Status::Ok();
      }));
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the request body");
  if (out->conflict_id == 0) return ExpectedError("a positive integer", "conflictId", "undefined");
  if (!resolution_object) {  // the short form says the same as {use, data}
    resolution_object = "{\"use\":";
    AppendString(&*resolution_object, use);
    if (data) resolution_object->append(",\"data\":").append(*data);
    resolution_object->push_back('}');
  }
  return ParseResolution(parser, *resolution_object, limits, &out->resolution);
}

Result<std::string> EncodeCompatRecord(simdjson::ondemand::parser& scratch,
                                       const CompatOptions& compat, const std::string& entity_type,
                                       const std::string& entity_id,
                                       const std::optional<std::string_view>& data, bool deleted,
                                       const CompatRecordTimes& times) {
  const std::string configured = IdFieldFor(compat, entity_type);
  const std::string singular_id = Singular(entity_type) + "_id";
  // The id field the records were pushed with: the configured one, or one the stored (for a
  // deleted entity, its last) state has, else "id".
  std::string id_field = configured.empty() ? "id" : configured;
  bool has_time = false;
  // Time fields the server clamped (further ahead of the time it received them than the skew
  // allows): each is sent again as the received time, as a string or a number as it was pushed.
  std::vector<std::pair<std::string, std::string>> clamped;
  std::string_view rest = "{}";
  std::string id_json;  // the id as it was pushed (a number stays a number)
  if (data) {
    Result<std::unordered_set<std::string>> keys = ObjectKeys(scratch, *data);
    if (!keys.ok()) return keys.status();
    if (configured.empty() && !keys.value().count("id") && keys.value().count(singular_id))
      id_field = singular_id;
    for (const char* field : kRecordTimeFields) has_time = has_time || keys.value().count(field) > 0;
    if (!deleted) rest = *data;
    simdjson::padded_string padded(*data);
    simdjson::ondemand::document doc;
    simdjson::ondemand::value id_value;
    std::string_view raw;
    if (scratch.iterate(padded).get(doc) == simdjson::SUCCESS &&
        doc.find_field_unordered(id_field).get(id_value) == simdjson::SUCCESS &&
        id_value.raw_json().get(raw) == simdjson::SUCCESS) {
      id_json = std::string(TrimJsonWhitespace(raw));
    }
    for (const char* time_field : kRecordTimeFields) {
      simdjson::ondemand::value time_value;
      simdjson::ondemand::json_type type;
      std::optional<int64_t> sent;
      if (!has_time || doc.find_field_unordered(time_field).get(time_value) != simdjson::SUCCESS ||
          time_value.type().get(type) != simdjson::SUCCESS ||
          !ReadRecordTime(time_value, time_field, &sent).ok() || !sent ||
          AdmittedTimestamp(*sent, times.admitted, times.max_clock_skew_ms) == *sent) {
        continue;
      }
      std::string received;
      if (type == simdjson::ondemand::json_type::number) {
        received = std::to_string(times.admitted);
      } else {
        AppendString(&received, FormatIso8601(times.admitted));
      }
      clamped.emplace_back(time_field, std::move(received));
    }
  }
  if (id_json.empty()) AppendString(&id_json, entity_id);
  std::string record = "{";
  AppendString(&record, id_field);
  record.push_back(':');
  record.append(id_json);
  if (!has_time || deleted) {
    // A record keeps the updated_at it was pushed with; one without gets the server's commit time.
    record.append(",\"updated_at\":");
    AppendString(&record, FormatIso8601(times.committed));
  }
  if (deleted) {
    record.append(",\"deleted\":true}");
    return record;
  }
  std::unordered_set<std::string> replaced = {id_field};
  for (const auto& [field, value] : clamped) {
    replaced.insert(field);
    record.push_back(',');
    AppendString(&record, field);
    record.push_back(':');
    record.append(value);
  }
  Result<std::string> fields = ObjectWithoutKeys(scratch, rest, replaced);
  if (!fields.ok()) return fields.status();
  if (fields.value().size() > 2) {
    record.push_back(',');
    record.append(fields.value(), 1, std::string::npos);
  } else {
    record.push_back('}');
  }
  return record;
}

void AppendRecordsByType(const std::map<std::string, std::string>& records, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const auto& [entity_type, list] : records) {
    if (!first) out->push_back(',');
    first = false;
    AppendString(out, entity_type);
    out->append(":[").append(list).push_back(']');
  }
  out->push_back('}');
}

}  // namespace deltasync
