#include "core/json.h"

#include <cmath>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace deltasync {

using simdjson::ondemand::json_type;
using simdjson::ondemand::number_type;

const char* JsonTypeName(json_type type) {
  switch (type) {
    case json_type::object: return "object";
    case json_type::array: return "array";
    case json_type::string: return "string";
    case json_type::number: return "number";
    case json_type::boolean: return "boolean";
    case json_type::null: return "null";
    default: return "unknown";
  }
}

void AppendJsonString(std::string* out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (byte < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[byte >> 4]);
          out->push_back(kHex[byte & 0xF]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

std::string_view TrimJsonWhitespace(std::string_view text) {
  while (!text.empty() && IsJsonWhitespace(text.back())) text.remove_suffix(1);
  return text;
}

std::string DescribeReceived(simdjson::ondemand::value value) {
  const std::string_view raw = TrimJsonWhitespace(value.raw_json_token());
  if (raw.empty()) return "malformed JSON";
  switch (raw.front()) {
    case '{': return "an object";
    case '[': return "an array";
    default: break;
  }
  json_type type = json_type::number;
  switch (raw.front()) {
    case '"': type = json_type::string; break;
    case 't':
    case 'f': type = json_type::boolean; break;
    case 'n': type = json_type::null; break;
    default: break;
  }
  if (type == json_type::null) return "null";
  std::string out(raw.size() > 40 ? raw.substr(0, 37) : raw);
  if (raw.size() > 40) out += "...";
  return out + " of type " + JsonTypeName(type);
}

namespace {

// Where a value sits in the document being copied, for error messages: a chain of frames on
// the stack, put together as text ("changes[3].data.tags[1]") only when an error needs it.
struct JsonPath {
  enum class Kind { kRoot, kKey, kIndex };
  const JsonPath* parent = nullptr;
  Kind kind = Kind::kRoot;
  std::string_view text;  // the root's path, or a key
  size_t index = 0;

  static JsonPath Key(const JsonPath& parent, std::string_view key) { return {&parent, Kind::kKey, key, 0}; }
  static JsonPath Index(const JsonPath& parent, size_t index) { return {&parent, Kind::kIndex, {}, index}; }

  void AppendTo(std::string* out) const {
    if (parent != nullptr) parent->AppendTo(out);
    switch (kind) {
      case Kind::kRoot: out->append(text); break;
      case Kind::kKey: out->push_back('.'); out->append(text); break;
      case Kind::kIndex: out->append("[" + std::to_string(index) + "]"); break;
    }
  }
};

std::string ErrorMessage(const JsonPath& path, std::string_view what) {
  std::string message(what);
  message.append(" at ");
  path.AppendTo(&message);
  return message;
}

Status MalformedAt(const JsonPath& path, simdjson::error_code error) {
  return Status::InvalidArgument(ErrorMessage(path, std::string("Malformed JSON (") +
                                                        simdjson::error_message(error) + ")"));
}

// `raw`: the number as written. A non-zero number that reads as 0 (1e-400) has underflowed.
bool IsExactInJavaScript(simdjson::ondemand::number number, std::string_view raw) {
  switch (number.get_number_type()) {
    case number_type::signed_integer: {
      const int64_t v = number.get_int64();
      const auto d = static_cast<double>(v);
      return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && static_cast<int64_t>(d) == v;
    }
    case number_type::unsigned_integer: {
      const uint64_t v = number.get_uint64();
      const auto d = static_cast<double>(v);
      return d < 18446744073709551616.0 && static_cast<uint64_t>(d) == v;
    }
    case number_type::floating_point_number: {
      const double d = number.get_double();
      if (!std::isfinite(d)) return false;
      if (d != 0) return true;
      const std::string_view mantissa = raw.substr(0, raw.find_first_of("eE"));
      return mantissa.find_first_of("123456789") == std::string_view::npos;
    }
    default:
      return false;
  }
}

Status CopyValue(simdjson::ondemand::value value, int depth, const JsonLimits& limits, const JsonPath& path,
                 std::string* out, TopLevelField* located = nullptr);

// `located`, when set, is looked for among this object's own keys only.
Status CopyObject(simdjson::ondemand::object object, int depth, const JsonLimits& limits, const JsonPath& path,
                  std::string* out, TopLevelField* located) {
  out->push_back('{');
  KeySet keys;
  bool first = true;
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    if (auto error = std::move(field_result).get(field)) return MalformedAt(path, error);
    std::string_view raw_key = field.key_raw_json_token();
    std::string_view key;
    if (auto error = field.unescaped_key(false).get(key)) return MalformedAt(path, error);
    if (!keys.Insert(key)) {
      return Status::InvalidArgument(ErrorMessage(path, "Duplicate key \"" + std::string(key) + "\" in object"));
    }
    if (key == "__proto__" || key == "constructor") {
      // Keys that rewrite an object's prototype when JavaScript code copies them naively.
      return Status::InvalidArgument(ErrorMessage(path, "Reserved key \"" + std::string(key) + "\" in object"));
    }
    if (key.find('\0') != std::string_view::npos) {
      return Status::InvalidArgument(ErrorMessage(path, "NUL character in an object key"));
    }
    if (!first) out->push_back(',');
    first = false;
    out->append(TrimJsonWhitespace(raw_key));
    out->push_back(':');
    const size_t value_begin = out->size();
    const bool wanted = located != nullptr && key == located->name;
    Status status = CopyValue(field.value(), depth + 1, limits, JsonPath::Key(path, key), out);
    if (!status.ok()) return status;
    if (wanted) {
      located->found = true;
      located->begin = value_begin;
      located->end = out->size();
    }
    if (out->size() > limits.max_document_bytes) {
      return Status::LimitExceeded(ErrorMessage(path, "Document larger than the limit of " +
                                                          std::to_string(limits.max_document_bytes) + " bytes"));
    }
  }
  out->push_back('}');
  return Status::Ok();
}

Status CopyArray(simdjson::ondemand::array array, int depth, const JsonLimits& limits, const JsonPath& path,
                 std::string* out) {
  out->push_back('[');
  size_t index = 0;
  for (auto element_result : array) {
    simdjson::ondemand::value element;
    if (auto error = std::move(element_result).get(element)) return MalformedAt(path, error);
    if (index > 0) out->push_back(',');
    Status status = CopyValue(element, depth + 1, limits, JsonPath::Index(path, index), out);
    if (!status.ok()) return status;
    ++index;
    if (out->size() > limits.max_document_bytes) {
      return Status::LimitExceeded(ErrorMessage(path, "Document larger than the limit of " +
                                                          std::to_string(limits.max_document_bytes) + " bytes"));
    }
  }
  out->push_back(']');
  return Status::Ok();
}

Status CopyValue(simdjson::ondemand::value value, int depth, const JsonLimits& limits, const JsonPath& path,
                 std::string* out, TopLevelField* located) {
  json_type type;
  if (auto error = value.type().get(type)) return MalformedAt(path, error);
  if ((type == json_type::object || type == json_type::array) && depth >= limits.max_depth) {
    return Status::LimitExceeded(
        ErrorMessage(path, "JSON nested deeper than the limit of " + std::to_string(limits.max_depth)));
  }
  switch (type) {
    case json_type::object: {
      simdjson::ondemand::object object;
      if (auto error = value.get_object().get(object)) return MalformedAt(path, error);
      return CopyObject(object, depth, limits, path, out, located);
    }
    case json_type::array: {
      simdjson::ondemand::array array;
      if (auto error = value.get_array().get(array)) return MalformedAt(path, error);
      return CopyArray(array, depth, limits, path, out);
    }
    case json_type::string: {
      std::string_view raw = TrimJsonWhitespace(value.raw_json_token());
      std::string_view unescaped;
      if (auto error = value.get_string().get(unescaped)) {
        return Status::InvalidArgument(
            ErrorMessage(path, std::string("Invalid string (") + simdjson::error_message(error) +
                                   "): lone surrogate or bad escape"));
      }
      if (unescaped.find('\0') != std::string_view::npos) {
        return Status::InvalidArgument(ErrorMessage(path, "NUL character in a string"));
      }
      out->append(raw);
      return Status::Ok();
    }
    case json_type::number: {
      std::string_view raw = TrimJsonWhitespace(value.raw_json_token());
      simdjson::ondemand::number number;
      auto error = value.get_number().get(number);
      if (error || !IsExactInJavaScript(number, raw)) {
        return Status::InvalidArgument(ErrorMessage(
            path, "Number " + std::string(raw.substr(0, 40)) + " cannot be held exactly by a JavaScript number"));
      }
      out->append(raw);
      return Status::Ok();
    }
    case json_type::boolean: {
      bool flag = false;
      if (auto error = value.get_bool().get(flag)) return MalformedAt(path, error);
      out->append(flag ? "true" : "false");
      return Status::Ok();
    }
    case json_type::null: {
      bool is_null = false;
      if (auto error = value.is_null().get(is_null); error || !is_null) {
        return MalformedAt(path, error ? error : simdjson::N_ATOM_ERROR);
      }
      out->append("null");
      return Status::Ok();
    }
    default:
      return MalformedAt(path, simdjson::INCORRECT_TYPE);
  }
}

bool DomEquals(simdjson::dom::element a, simdjson::dom::element b) {
  using simdjson::dom::element_type;
  const element_type ta = a.type();
  const element_type tb = b.type();
  const bool a_number = ta == element_type::INT64 || ta == element_type::UINT64 || ta == element_type::DOUBLE;
  const bool b_number = tb == element_type::INT64 || tb == element_type::UINT64 || tb == element_type::DOUBLE;
  if (a_number && b_number) {
    if (ta == tb && ta == element_type::INT64) {
      int64_t x = 0, y = 0;
      return a.get_int64().get(x) == simdjson::SUCCESS && b.get_int64().get(y) == simdjson::SUCCESS && x == y;
    }
    if (ta == tb && ta == element_type::UINT64) {
      uint64_t x = 0, y = 0;
      return a.get_uint64().get(x) == simdjson::SUCCESS && b.get_uint64().get(y) == simdjson::SUCCESS && x == y;
    }
    double x = 0, y = 0;
    return a.get_double().get(x) == simdjson::SUCCESS && b.get_double().get(y) == simdjson::SUCCESS && x == y;
  }
  if (ta != tb) return false;
  switch (ta) {
    case element_type::STRING: {
      std::string_view x, y;
      return a.get_string().get(x) == simdjson::SUCCESS && b.get_string().get(y) == simdjson::SUCCESS && x == y;
    }
    case element_type::BOOL: {
      bool x = false, y = false;
      return a.get_bool().get(x) == simdjson::SUCCESS && b.get_bool().get(y) == simdjson::SUCCESS && x == y;
    }
    case element_type::NULL_VALUE:
      return true;
    case element_type::ARRAY: {
      simdjson::dom::array xa, xb;
      if (a.get_array().get(xa) != simdjson::SUCCESS || b.get_array().get(xb) != simdjson::SUCCESS) return false;
      if (xa.size() != xb.size()) return false;
      auto ib = xb.begin();
      for (simdjson::dom::element item : xa) {
        if (!DomEquals(item, *ib)) return false;
        ++ib;
      }
      return true;
    }
    case element_type::OBJECT: {
      simdjson::dom::object oa, ob;
      if (a.get_object().get(oa) != simdjson::SUCCESS || b.get_object().get(ob) != simdjson::SUCCESS) return false;
      if (oa.size() != ob.size()) return false;
      for (simdjson::dom::key_value_pair field : oa) {
        simdjson::dom::element other;
        if (ob.at_key(field.key).get(other) != simdjson::SUCCESS) return false;
        if (!DomEquals(field.value, other)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

Status KeyGuard::Check(std::string_view key, std::string_view where) {
  if (!seen_.emplace(key).second) {
    return Status::InvalidArgument("Duplicate key \"" + std::string(key) + "\" in " + std::string(where));
  }
  return Status::Ok();
}

Result<std::unordered_set<std::string>> ObjectKeys(simdjson::ondemand::parser& parser, std::string_view json) {
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS || doc.get_object().get(object) != simdjson::SUCCESS) {
    return Status::Internal("expected a stored JSON object");
  }
  std::unordered_set<std::string> keys;
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) != simdjson::SUCCESS ||
        field.unescaped_key(false).get(key) != simdjson::SUCCESS) {
      return Status::Internal("stored JSON object has a bad field");
    }
    keys.insert(std::string(key));
  }
  return keys;
}

Result<std::string> ObjectWithoutKeys(simdjson::ondemand::parser& parser, std::string_view json,
                                      const std::unordered_set<std::string>& drop) {
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS || doc.get_object().get(object) != simdjson::SUCCESS) {
    return Status::Internal("expected a stored JSON object");
  }
  std::string out = "{";
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    if (std::move(field_result).get(field) != simdjson::SUCCESS) return Status::Internal("bad stored field");
    // The raw token must be read before unescaped_key() consumes the key.
    std::string_view raw_key = TrimJsonWhitespace(field.key_raw_json_token());
    std::string_view key;
    std::string_view raw_value;
    if (field.unescaped_key(false).get(key) != simdjson::SUCCESS ||
        field.value().raw_json().get(raw_value) != simdjson::SUCCESS) {
      return Status::Internal("bad stored field");
    }
    if (drop.count(std::string(key))) continue;
    if (out.size() > 1) out.push_back(',');
    out.append(raw_key).push_back(':');
    out.append(TrimJsonWhitespace(raw_value));
  }
  out.push_back('}');
  return out;
}

Result<std::string> DeltaWithRemovals(simdjson::ondemand::parser& parser, std::string_view doc,
                                      std::string_view previous) {
  Result<std::unordered_set<std::string>> kept = ObjectKeys(parser, doc);
  if (!kept.ok()) return kept.status();
  simdjson::padded_string padded(previous);
  simdjson::ondemand::document old_doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(old_doc) != simdjson::SUCCESS ||
      old_doc.get_object().get(object) != simdjson::SUCCESS) {
    return Status::Internal("expected a stored JSON object");
  }
  std::string delta(doc);
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    if (std::move(field_result).get(field) != simdjson::SUCCESS) return Status::Internal("bad stored field");
    std::string_view raw = TrimJsonWhitespace(field.key_raw_json_token());
    std::string_view key;
    if (field.unescaped_key(false).get(key) != simdjson::SUCCESS) return Status::Internal("bad stored key");
    if (kept.value().count(std::string(key))) continue;
    delta.pop_back();  // '}'
    if (delta.size() > 1) delta.push_back(',');
    delta.append(raw).append(":null}");
  }
  return delta;
}

bool JsonValueEquals(std::string_view a, std::string_view b) {
  if (a == b) return true;
  simdjson::dom::parser parser_a, parser_b;
  simdjson::dom::element ea, eb;
  if (parser_a.parse(a.data(), a.size()).get(ea) != simdjson::SUCCESS) return false;
  if (parser_b.parse(b.data(), b.size()).get(eb) != simdjson::SUCCESS) return false;
  return DomEquals(ea, eb);
}

namespace {

// CopyValue of a whole value, leaving `out` as it was when the value is refused.
Status CopyWhole(simdjson::ondemand::value value, int depth, const JsonLimits& limits, const JsonPath& path,
                 std::string* out, TopLevelField* field) {
  const size_t start = out->size();
  if (field != nullptr) field->found = false;
  Status status = CopyValue(value, depth, limits, path, out, field);
  if (!status.ok()) {
    out->resize(start);
    if (field != nullptr) field->found = false;
  }
  return status;
}

}  // namespace

Status CopyValidatedJson(simdjson::ondemand::value value, int depth, const JsonLimits& limits,
                         std::string_view path, std::string* out) {
  return CopyValidatedJson(value, depth, limits, path, out, nullptr);
}

Status CopyValidatedJson(simdjson::ondemand::value value, int depth, const JsonLimits& limits,
                         std::string_view path, std::string* out, TopLevelField* field) {
  return CopyWhole(value, depth, limits, JsonPath{nullptr, JsonPath::Kind::kRoot, path, 0}, out, field);
}

Status CopyValidatedField(simdjson::ondemand::value value, int depth, const JsonLimits& limits,
                          std::string_view path, std::string_view field, std::string* out) {
  const JsonPath root{nullptr, JsonPath::Kind::kRoot, path, 0};
  return CopyWhole(value, depth, limits, JsonPath::Key(root, field), out, nullptr);
}

Result<std::string> ShallowMergeObjects(simdjson::ondemand::parser& parser, std::string_view base,
                                        std::string_view patch, PatchNulls nulls) {
  // "raw key":value entries in order, and where each unescaped key sits.
  std::vector<std::string> fields;
  std::unordered_map<std::string, size_t> position;
  auto collect = [&](std::string_view text, bool overriding) -> Status {
    simdjson::padded_string padded(text);
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return Status::Internal("merge: unparsable stored JSON");
    simdjson::ondemand::object object;
    if (doc.get_object().get(object) != simdjson::SUCCESS) return Status::Internal("merge: stored JSON is not an object");
    for (auto field_result : object) {
      simdjson::ondemand::field field;
      if (std::move(field_result).get(field) != simdjson::SUCCESS) return Status::Internal("merge: bad field");
      // The raw token must be read before unescaped_key() consumes the key.
      std::string_view raw_key = TrimJsonWhitespace(field.key_raw_json_token());
      std::string_view key;
      if (field.unescaped_key(false).get(key) != simdjson::SUCCESS) return Status::Internal("merge: bad key");
      std::string_view raw_value;
      if (field.value().raw_json().get(raw_value) != simdjson::SUCCESS) return Status::Internal("merge: bad value");
      std::string entry;
      entry.reserve(raw_key.size() + raw_value.size() + 1);
      entry.append(raw_key).push_back(':');
      entry.append(TrimJsonWhitespace(raw_value));
      const bool removes = overriding && nulls == PatchNulls::kRemove && TrimJsonWhitespace(raw_value) == "null";
      auto [it, inserted] = position.emplace(std::string(key), fields.size());
      if (inserted) {
        fields.push_back(removes ? std::string() : std::move(entry));
      } else if (overriding) {
        fields[it->second] = removes ? std::string() : std::move(entry);
      }
    }
    return Status::Ok();
  };
  DS_RETURN_IF_ERROR(collect(base, false));
  DS_RETURN_IF_ERROR(collect(patch, true));
  std::string out = "{";
  for (const std::string& field : fields) {
    if (field.empty()) continue;  // removed by a null
    if (out.size() > 1) out.push_back(',');
    out.append(field);
  }
  out.push_back('}');
  return out;
}

void JsonObjectWriter::Key(std::string_view key) {
  out_->append(first_ ? "\"" : ",\"").append(key).append("\":");
  first_ = false;
}

JsonObjectWriter& JsonObjectWriter::String(std::string_view key, std::string_view value) {
  Key(key);
  AppendJsonString(out_, value);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::OptionalString(std::string_view key, const std::optional<std::string_view>& value) {
  if (value) return String(key, *value);
  return Raw(key, "null");
}

JsonObjectWriter& JsonObjectWriter::Int(std::string_view key, int64_t value) {
  Key(key);
  out_->append(std::to_string(value));
  return *this;
}

JsonObjectWriter& JsonObjectWriter::OptionalInt(std::string_view key, const std::optional<int64_t>& value) {
  if (value) return Int(key, *value);
  return Raw(key, "null");
}

JsonObjectWriter& JsonObjectWriter::Bool(std::string_view key, bool value) {
  return Raw(key, value ? "true" : "false");
}

JsonObjectWriter& JsonObjectWriter::Raw(std::string_view key, std::string_view json) {
  Key(key);
  out_->append(json);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::OptionalRaw(std::string_view key, const std::optional<std::string_view>& json) {
  return Raw(key, json ? *json : std::string_view("null"));
}

}  // namespace deltasync
