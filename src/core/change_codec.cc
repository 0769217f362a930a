#include "core/change_codec.h"

#include <cctype>
#include <cmath>
#include <string>

namespace deltasync {

using simdjson::ondemand::json_type;

namespace {

constexpr size_t kMaxEntityIdBytes = 256;
constexpr size_t kMaxChangeIdBytes = 256;
constexpr size_t kMaxErrorBytes = 4096;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::optional<ChangeType> ParseLegacyType(std::string_view text) {
  if (EqualsIgnoreCase(text, "CREATED") || EqualsIgnoreCase(text, "create") || EqualsIgnoreCase(text, "insert")) {
    return ChangeType::kCreated;
  }
  if (EqualsIgnoreCase(text, "UPDATED") || EqualsIgnoreCase(text, "update") || EqualsIgnoreCase(text, "upsert")) {
    return ChangeType::kUpdated;
  }
  if (EqualsIgnoreCase(text, "DELETED") || EqualsIgnoreCase(text, "delete") || EqualsIgnoreCase(text, "remove")) {
    return ChangeType::kDeleted;
  }
  return std::nullopt;
}

// Reads an identifier: a string of 1..max bytes, or (legacy) an integer rendered as text.
Status ReadId(simdjson::ondemand::value value, bool allow_number, size_t max_bytes, const std::string& path,
              std::string* out) {
  json_type type;
  if (value.type().get(type) == simdjson::SUCCESS) {
    if (type == json_type::string) {
      std::string_view text;
      if (value.get_string().get(text) == simdjson::SUCCESS && !text.empty() && text.size() <= max_bytes &&
          text.find('\0') == std::string_view::npos) {
        out->assign(text);
        return Status::Ok();
      }
    } else if (type == json_type::number && allow_number) {
      int64_t number = 0;
      if (value.get_int64().get(number) == simdjson::SUCCESS) {
        *out = std::to_string(number);
        return Status::Ok();
      }
    }
  }
  return ExpectedError("a non-empty string of at most " + std::to_string(max_bytes) + " bytes", path,
                       DescribeReceived(value));
}

Status ReadTimestamp(simdjson::ondemand::value value, bool allow_iso, const std::string& path, int64_t* out) {
  json_type type;
  if (value.type().get(type) == simdjson::SUCCESS) {
    if (type == json_type::number) {
      double number = 0;
      if (value.get_double().get(number) == simdjson::SUCCESS && std::isfinite(number) && number >= 0 &&
          number <= 8.64e15 && std::floor(number) == number) {
        *out = static_cast<int64_t>(number);
        return Status::Ok();
      }
    } else if (type == json_type::string && allow_iso) {
      std::string_view text;
      if (value.get_string().get(text) == simdjson::SUCCESS) {
        if (auto parsed = ParseIso8601Ms(text)) {
          *out = *parsed;
          return Status::Ok();
        }
      }
    }
  }
  return ExpectedError(allow_iso ? "milliseconds since the epoch or an ISO 8601 string"
                                 : "a non-negative integer of milliseconds since the epoch",
                       path, DescribeReceived(value));
}

Status ReadOptionalText(simdjson::ondemand::value value, size_t max_bytes, const std::string& path,
                        std::optional<std::string>* out) {
  bool is_null = false;
  if (value.is_null().get(is_null) == simdjson::SUCCESS && is_null) {
    out->reset();
    return Status::Ok();
  }
  std::string text;
  DS_RETURN_IF_ERROR(ReadId(value, false, max_bytes, path, &text));
  *out = std::move(text);
  return Status::Ok();
}

}  // namespace

bool IsValidEntityType(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (name == "__proto__" || name == "constructor") return false;  // they become JSON object keys
  for (const char ch : name) {
    const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    ch == '.' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

Status ExpectedError(std::string_view expected, std::string_view name, std::string_view received) {
  std::string message = "Expected ";
  message.append(expected).append(" for ").append(name).append(" but received ").append(received);
  return Status::InvalidArgument(std::move(message));
}

simdjson::padded_string_view ChangeDecoder::Padded(const std::string& json) {
  if (json.capacity() >= json.size() + simdjson::SIMDJSON_PADDING) {
    return simdjson::padded_string_view(json.data(), json.size(), json.capacity());
  }
  scratch_ = simdjson::padded_string(json);
  return simdjson::padded_string_view(scratch_.data(), scratch_.size(), scratch_.size() + simdjson::SIMDJSON_PADDING);
}

void ChangeDecoder::ReleaseLargeBuffers(size_t input_size) {
  // A parser grows to the largest input it has seen and keeps that memory; after a
  // large batch, start over so an idle client does not hold on to it.
  constexpr size_t kKeepBelow = 1 << 20;
  if (input_size < kKeepBelow) return;
  scratch_ = simdjson::padded_string();
  parser_ = simdjson::ondemand::parser();
}

Status ChangeDecoder::DecodeOne(const std::string& json, std::string_view name, ChangeInput* out) {
  simdjson::ondemand::document doc;
  if (auto error = parser_.iterate(Padded(json)).get(doc)) {
    return Status::InvalidArgument(std::string("Malformed JSON for ") + std::string(name) + " (" +
                                   simdjson::error_message(error) + ")");
  }
  simdjson::ondemand::object object;
  if (doc.get_object().get(object) != simdjson::SUCCESS) {
    return ExpectedError("an object", name, "a value of another type");
  }
  bool skip = false;
  DS_RETURN_IF_ERROR(DecodeChangeRecord(object, DecodeMode::kWire, limits_, std::string(name), out, &skip));
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after " + std::string(name));
  return Status::Ok();
}

Status ChangeDecoder::DecodeArray(const std::string& json, DecodeMode mode, std::string_view name,
                                  std::vector<ChangeInput>* out, size_t* skipped) {
  simdjson::ondemand::document doc;
  if (auto error = parser_.iterate(Padded(json)).get(doc)) {
    return Status::InvalidArgument(std::string("Malformed JSON for ") + std::string(name) + " (" +
                                   simdjson::error_message(error) + ")");
  }
  simdjson::ondemand::json_type root_type;
  if (auto error = doc.type().get(root_type)) {
    return Status::InvalidArgument(std::string("Malformed JSON for ") + std::string(name) + " (" +
                                   simdjson::error_message(error) + ")");
  }
  simdjson::ondemand::array array;
  if (root_type != json_type::array || doc.get_array().get(array) != simdjson::SUCCESS) {
    return ExpectedError("an array of change records", name, std::string("JSON of type ") + JsonTypeName(root_type));
  }
  DS_RETURN_IF_ERROR(DecodeChangeArray(array, mode, limits_, name, out, skipped));
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after " + std::string(name));
  return Status::Ok();
}

Status ChangeDecoder::ValidateDocument(const std::string& json, std::string_view name, std::string* out) {
  scratch_ = simdjson::padded_string(json);
  simdjson::ondemand::document doc;
  simdjson::ondemand::value value;
  if (auto error = parser_.iterate(scratch_).get(doc)) {
    return Status::InvalidArgument("Malformed JSON for " + std::string(name) + " (" + simdjson::error_message(error) +
                                   ")");
  }
  if (doc.get_value().get(value) != simdjson::SUCCESS) {
    return Status::InvalidArgument("Malformed JSON for " + std::string(name));
  }
  json_type type;
  if (value.type().get(type) != simdjson::SUCCESS || type != json_type::object) {
    return ExpectedError("a plain object", name, DescribeReceived(value));
  }
  out->clear();
  DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, limits_, name, out));
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after " + std::string(name));
  return Status::Ok();
}

Status ChangeDecoder::DecodeQuery(const std::string& json, ListQuery* out) {
  return DecodeListQuery(parser_, json, out);
}

Status DecodeChangeArray(simdjson::ondemand::array array, DecodeMode mode, const JsonLimits& limits,
                         std::string_view name, std::vector<ChangeInput>* out, size_t* skipped) {
  size_t index = 0;
  std::string element_name;
  for (auto element_result : array) {
    simdjson::ondemand::value element;
    element_name.assign(name).append("[").append(std::to_string(index)).append("]");
    if (auto error = std::move(element_result).get(element)) {
      return Status::InvalidArgument("Malformed JSON at " + element_name + " (" + simdjson::error_message(error) + ")");
    }
    simdjson::ondemand::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      return ExpectedError("an object", element_name, DescribeReceived(element));
    }
    ChangeInput input;
    bool skip = false;
    DS_RETURN_IF_ERROR(DecodeChangeRecord(object, mode, limits, element_name, &input, &skip));
    if (skip) {
      if (skipped) ++*skipped;
    } else {
      out->push_back(std::move(input));
    }
    ++index;
  }
  return Status::Ok();
}

Status DecodeChangeRecord(simdjson::ondemand::object object, DecodeMode mode, const JsonLimits& limits,
                          const std::string& name, ChangeInput* out, bool* skip) {
  const bool legacy = mode == DecodeMode::kLegacy;
  const bool server = mode == DecodeMode::kServer;
  bool has_type = false, has_entity_type = false, has_entity_id = false;
  std::optional<std::string> legacy_id;  // `id`: a fallback changeId for legacy rows
  std::string path;
  std::vector<std::string> seen_keys;
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    if (auto error = std::move(field_result).get(field)) {
      return Status::InvalidArgument("Malformed JSON in " + name + " (" + simdjson::error_message(error) + ")");
    }
    std::string_view key;
    if (auto error = field.unescaped_key(false).get(key)) {
      return Status::InvalidArgument("Malformed key in " + name + " (" + simdjson::error_message(error) + ")");
    }
    path.assign(name).append(".").append(key);
    for (const std::string& seen : seen_keys) {
      if (seen == key) return Status::InvalidArgument("Duplicate key \"" + std::string(key) + "\" in " + name);
    }
    seen_keys.emplace_back(key);
    simdjson::ondemand::value value = field.value();

    if (key == "changeId" || (legacy && key == "change_id")) {
      std::string id;
      DS_RETURN_IF_ERROR(ReadId(value, legacy, kMaxChangeIdBytes, path, &id));
      out->change_id = std::move(id);
    } else if (key == "type" || (legacy && key == "action")) {
      std::string_view text;
      std::optional<ChangeType> type;
      json_type json_kind;
      if (value.type().get(json_kind) == simdjson::SUCCESS && json_kind == json_type::string &&
          value.get_string().get(text) == simdjson::SUCCESS) {
        type = legacy ? ParseLegacyType(text) : ParseChangeType(text);
      }
      if (!type) {
        return ExpectedError(legacy ? "one of CREATED, UPDATED, DELETED (or create, update, delete)"
                                    : "one of \"CREATED\", \"UPDATED\", \"DELETED\"",
                             path, DescribeReceived(value));
      }
      out->type = *type;
      has_type = true;
    } else if (key == "entityType" || (legacy && key == "entity_type")) {
      std::string_view text;
      json_type json_kind;
      if (value.type().get(json_kind) != simdjson::SUCCESS || json_kind != json_type::string ||
          value.get_string().get(text) != simdjson::SUCCESS || !IsValidEntityType(text)) {
        return ExpectedError("a string matching [A-Za-z0-9_.-]{1,64}", path, DescribeReceived(value));
      }
      out->entity_type.assign(text);
      has_entity_type = true;
    } else if (key == "entityId" || (legacy && key == "entity_id")) {
      DS_RETURN_IF_ERROR(ReadId(value, legacy, kMaxEntityIdBytes, path, &out->entity_id));
      has_entity_id = true;
    } else if (key == "data" || (legacy && (key == "payload" || key == "change_data" || key == "changeData"))) {
      json_type json_kind;
      if (value.type().get(json_kind) != simdjson::SUCCESS) {
        return ExpectedError("an object", path, "malformed JSON");
      }
      if (json_kind == json_type::null) {
        out->data.reset();
      } else if (json_kind == json_type::object) {
        std::string copy;
        DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, limits, path, &copy));
        out->data = std::move(copy);
      } else {
        return ExpectedError("an object or null", path, DescribeReceived(value));
      }
    } else if (legacy && key == "payload_json") {
      // A JSON document stored as a string, as SQL outbox tables keep it (NULL for deletes).
      bool is_null = false;
      if (value.is_null().get(is_null) == simdjson::SUCCESS && is_null) {
        out->data.reset();
        continue;
      }
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) {
        return ExpectedError("a string holding a JSON object", path, DescribeReceived(value));
      }
      simdjson::ondemand::parser nested_parser;
      simdjson::padded_string nested(text);
      simdjson::ondemand::document nested_doc;
      simdjson::ondemand::value nested_value;
      if (nested_parser.iterate(nested).get(nested_doc) != simdjson::SUCCESS ||
          nested_doc.get_value().get(nested_value) != simdjson::SUCCESS) {
        return ExpectedError("a string holding a JSON object", path, "malformed JSON");
      }
      json_type json_kind;
      if (nested_value.type().get(json_kind) != simdjson::SUCCESS || json_kind != json_type::object) {
        return ExpectedError("a string holding a JSON object", path, "JSON of another type");
      }
      std::string copy;
      DS_RETURN_IF_ERROR(CopyValidatedJson(nested_value, 0, limits, path, &copy));
      out->data = std::move(copy);
    } else if (key == "baseVersion" || (legacy && key == "base_version")) {
      bool is_null = false;
      if (value.is_null().get(is_null) == simdjson::SUCCESS && is_null) {
        out->base_version.reset();
      } else {
        int64_t version = 0;
        if (value.get_int64().get(version) != simdjson::SUCCESS || version < 0 || version > kMaxSafeInteger) {
          return ExpectedError("a non-negative integer or null", path, DescribeReceived(value));
        }
        out->base_version = version;
      }
    } else if (key == "timestamp" || (legacy && (key == "createdAt" || key == "created_at"))) {
      if (key != "timestamp" && out->timestamp) continue;  // an explicit timestamp wins
      int64_t ms = 0;
      DS_RETURN_IF_ERROR(ReadTimestamp(value, legacy, path, &ms));
      out->timestamp = ms;
    } else if (key == "tenantId" || (legacy && key == "tenant_id")) {
      DS_RETURN_IF_ERROR(ReadOptionalText(value, kMaxEntityIdBytes, path, &out->tenant_id));
    } else if (key == "userId" || (legacy && key == "user_id")) {
      DS_RETURN_IF_ERROR(ReadOptionalText(value, kMaxEntityIdBytes, path, &out->user_id));
    } else if (legacy && key == "id") {
      std::string id;
      if (ReadId(value, true, kMaxChangeIdBytes, path, &id).ok()) legacy_id = std::move(id);
    } else if (legacy && (key == "retryCount" || key == "retry_count")) {
      int64_t count = 0;
      if (value.get_int64().get(count) != simdjson::SUCCESS || count < 0) {
        return ExpectedError("a non-negative integer", path, DescribeReceived(value));
      }
      out->retry_count = count;
    } else if (legacy && (key == "lastError" || key == "error_message" || key == "error")) {
      std::string_view text;
      if (value.get_string().get(text) == simdjson::SUCCESS) out->last_error = std::string(text.substr(0, kMaxErrorBytes));
    } else if (legacy && key == "status") {
      std::string_view text;
      if (value.get_string().get(text) == simdjson::SUCCESS && EqualsIgnoreCase(text, "synced")) *skip = true;
    } else if (server) {
      std::string ignored;
      DS_RETURN_IF_ERROR(CopyValidatedJson(value, 1, limits, path, &ignored));
    } else if (!legacy) {
      return Status::InvalidArgument("Unknown field \"" + std::string(key) + "\" in " + name +
                                     " (expected changeId, type, entityType, entityId, data, baseVersion, "
                                     "timestamp, tenantId, userId)");
    }
  }
  if (!has_type) return ExpectedError("one of \"CREATED\", \"UPDATED\", \"DELETED\"", name + ".type", "undefined");
  if (!has_entity_type) return ExpectedError("a string matching [A-Za-z0-9_.-]{1,64}", name + ".entityType", "undefined");
  if (!has_entity_id) return ExpectedError("a non-empty string of at most 256 bytes", name + ".entityId", "undefined");
  if (!out->change_id && legacy_id) out->change_id = std::move(legacy_id);
  if (legacy && !out->change_id) {
    return ExpectedError("a changeId (or id) so the import stays idempotent", name + ".changeId", "undefined");
  }
  if (server && !out->change_id) {
    return ExpectedError("a non-empty string of at most 256 bytes (the idempotency key)", name + ".changeId",
                         "undefined");
  }
  if (out->type != ChangeType::kDeleted && !out->data) {
    return ExpectedError("an object", name + ".data", std::string("nothing (") + ChangeTypeName(out->type) +
                                                          " changes carry their fields)");
  }
  return Status::Ok();
}

void AppendChangeJson(const Change& change, std::string* out) {
  auto text_or_null = [out](const std::optional<std::string>& value) {
    if (value) {
      AppendJsonString(out, *value);
    } else {
      out->append("null");
    }
  };
  auto int_or_null = [out](const std::optional<int64_t>& value) {
    out->append(value ? std::to_string(*value) : "null");
  };
  out->append("{\"id\":").append(std::to_string(change.id));
  out->append(",\"changeId\":");
  AppendJsonString(out, change.change_id);
  out->append(",\"type\":\"").append(ChangeTypeName(change.type)).append("\"");
  out->append(",\"entityType\":");
  AppendJsonString(out, change.entity_type);
  out->append(",\"entityId\":");
  AppendJsonString(out, change.entity_id);
  out->append(",\"data\":").append(change.data ? *change.data : "null");
  out->append(",\"baseVersion\":");
  int_or_null(change.base_version);
  out->append(",\"timestamp\":").append(std::to_string(change.timestamp));
  out->append(",\"tenantId\":");
  text_or_null(change.tenant_id);
  out->append(",\"userId\":");
  text_or_null(change.user_id);
  out->append(",\"status\":\"").append(ChangeStatusName(change.status)).append("\"");
  out->append(",\"retryCount\":").append(std::to_string(change.retry_count));
  out->append(",\"lastError\":");
  text_or_null(change.last_error);
  out->append(",\"createdAt\":").append(std::to_string(change.created_at));
  out->append(",\"updatedAt\":").append(std::to_string(change.updated_at));
  out->append(",\"syncedAt\":");
  int_or_null(change.synced_at);
  out->append(",\"serverVersion\":");
  int_or_null(change.server_version);
  out->push_back('}');
}

std::string ChangesToJson(const std::vector<Change>& changes) {
  std::string out = "[";
  for (size_t i = 0; i < changes.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendChangeJson(changes[i], &out);
  }
  out.push_back(']');
  return out;
}

namespace {

bool ReadDigits(std::string_view text, size_t& pos, size_t count, int* out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (size_t i = 0; i < count; ++i) {
    const char ch = text[pos + i];
    if (ch < '0' || ch > '9') return false;
    value = value * 10 + (ch - '0');
  }
  pos += count;
  *out = value;
  return true;
}

int64_t DaysFromCivil(int64_t y, int m, int d) {
  // Howard Hinnant's days_from_civil algorithm (public domain description).
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

std::optional<int64_t> ParseIso8601Ms(std::string_view text) {
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
  if (!ReadDigits(text, pos, 4, &year) || pos >= text.size() || text[pos++] != '-' ||
      !ReadDigits(text, pos, 2, &month) || pos >= text.size() || text[pos++] != '-' ||
      !ReadDigits(text, pos, 2, &day)) {
    return std::nullopt;
  }
  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDaysInMonth[month - 1]) return std::nullopt;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return std::nullopt;
  int64_t offset_minutes = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != ' ') return std::nullopt;
    ++pos;
    if (!ReadDigits(text, pos, 2, &hour) || pos >= text.size() || text[pos++] != ':' ||
        !ReadDigits(text, pos, 2, &minute)) {
      return std::nullopt;
    }
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!ReadDigits(text, pos, 2, &second)) return std::nullopt;
      if (pos < text.size() && text[pos] == '.') {
        ++pos;
        size_t digits = 0;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
          if (digits < 3) millis = millis * 10 + (text[pos] - '0');
          ++digits;
          ++pos;
        }
        if (digits == 0) return std::nullopt;
        for (size_t i = digits; i < 3; ++i) millis *= 10;
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    if (pos < text.size()) {
      if (text[pos] == 'Z' || text[pos] == 'z') {
        ++pos;
      } else if (text[pos] == '+' || text[pos] == '-') {
        const int sign = text[pos] == '-' ? -1 : 1;
        ++pos;
        int off_h = 0, off_m = 0;
        if (!ReadDigits(text, pos, 2, &off_h)) return std::nullopt;
        if (pos < text.size() && text[pos] == ':') ++pos;
        if (!ReadDigits(text, pos, 2, &off_m)) return std::nullopt;
        offset_minutes = sign * (off_h * 60 + off_m);
      } else {
        return std::nullopt;
      }
    }
    if (pos != text.size()) return std::nullopt;
  }
  const int64_t days = DaysFromCivil(year, month, day);
  const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return seconds * 1000 + millis;
}

}  // namespace deltasync
