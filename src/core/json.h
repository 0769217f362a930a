// JSON helpers over simdjson On-Demand: validated canonical copies, shallow
// merges and string escaping. Every function here treats its input as hostile.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

struct JsonLimits {
  int max_depth = 64;                       // nesting of objects and arrays
  size_t max_document_bytes = 1024 * 1024;  // one document's canonical size
};

// The name JS would use for the value's type: "object", "array", "string",
// "number", "boolean" or "null".
const char* JsonTypeName(simdjson::ondemand::json_type type);

// Appends `text` as a JSON string literal (with quotes), escaping as JSON requires.
void AppendJsonString(std::string* out, std::string_view text);

// Appends one JSON object member by member, in call order. Keys are the caller's own
// literals (written as they are); string values are escaped, raw values are already JSON, and
// an absent optional is null. Close() writes the closing brace.
class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(std::string* out) : out_(out) { out_->push_back('{'); }
  JsonObjectWriter& String(std::string_view key, std::string_view value);
  JsonObjectWriter& OptionalString(std::string_view key, const std::optional<std::string_view>& value);
  JsonObjectWriter& Int(std::string_view key, int64_t value);
  JsonObjectWriter& OptionalInt(std::string_view key, const std::optional<int64_t>& value);
  JsonObjectWriter& Bool(std::string_view key, bool value);
  JsonObjectWriter& Raw(std::string_view key, std::string_view json);
  JsonObjectWriter& OptionalRaw(std::string_view key, const std::optional<std::string_view>& json);
  void Close() { out_->push_back('}'); }

 private:
  void Key(std::string_view key);
  std::string* out_;
  bool first_ = true;
};

// A short rendering of a received value for error messages ("42 of type number",
// "an object"), cut to at most 40 bytes. Does not consume the value.
std::string DescribeReceived(simdjson::ondemand::value value);

// The keys of one JSON object seen so far, to refuse a duplicate: the first 16 without an
// allocation. REQUIRES: the keys' bytes outlive the set.
class KeySet {
 public:
  // Returns false when `key` was already present.
  bool Insert(std::string_view key) {
    if (large_.empty() && small_size_ < small_.size()) {
      for (size_t i = 0; i < small_size_; ++i) {
        if (small_[i] == key) return false;
      }
      small_[small_size_++] = key;
      return true;
    }
    if (large_.empty()) large_.insert(small_.begin(), small_.end());
    return large_.insert(key).second;
  }

 private:
  std::array<std::string_view, 16> small_;
  size_t small_size_ = 0;
  std::unordered_set<std::string_view> large_;
};

// Validates `value` and appends its canonical (minified) JSON to `out`.
// Rejects: nesting deeper than limits.max_depth, duplicate object keys, the keys
// "__proto__" and "constructor" (prototype pollution in JavaScript consumers), NUL
// characters in strings and keys, numbers that JavaScript cannot hold exactly (out
// of double range, or integers that a double would round), invalid string escapes
// and lone surrogates.
// `path` names the value in error messages (e.g. "changes[3].data").
// REQUIRES: depth is the nesting level of `value` itself (0 for a document root).
Status CopyValidatedJson(simdjson::ondemand::value value, int depth, const JsonLimits& limits,
                         std::string_view path, std::string* out);

// CopyValidatedJson of the value named `path` + "." + `field` in error messages, a name put
// together only for an error.
Status CopyValidatedField(simdjson::ondemand::value value, int depth, const JsonLimits& limits,
                          std::string_view path, std::string_view field, std::string* out);

// One top-level field of an object, found while CopyValidatedJson copies it: where its
// canonical value sits in `out` (keys are unique, so there is at most one).
struct TopLevelField {
  std::string_view name;  // the key, unescaped: "\u0069d" in the JSON is the key "id"
  bool found = false;
  size_t begin = 0;       // [begin, end) of the canonical value in `out`
  size_t end = 0;
};

// CopyValidatedJson that also locates `field` when `value` is an object.
Status CopyValidatedJson(simdjson::ondemand::value value, int depth, const JsonLimits& limits,
                         std::string_view path, std::string* out, TopLevelField* field);

// What a null value in a patch means.
enum class PatchNulls {
  kKeep,    // null is a value: combining two deltas keeps it, so it still removes the field later
  kRemove,  // null removes the field: applying a delta to a document (RFC 7396 at the top level)
};

// Returns `base` with every top-level field of `patch` set on it (fields of
// `patch` win; nested objects are replaced, not merged). With PatchNulls::kRemove a
// null in `patch` removes the field instead.
// REQUIRES: both are canonical JSON objects produced by CopyValidatedJson.
Result<std::string> ShallowMergeObjects(simdjson::ondemand::parser& parser, std::string_view base,
                                        std::string_view patch,
                                        PatchNulls nulls = PatchNulls::kRemove);

// The top-level keys of a canonical JSON object (unescaped).
Result<std::unordered_set<std::string>> ObjectKeys(simdjson::ondemand::parser& parser,
                                                   std::string_view json);

// A canonical JSON object without the given top-level keys.
Result<std::string> ObjectWithoutKeys(simdjson::ondemand::parser& parser, std::string_view json,
                                      const std::unordered_set<std::string>& drop);

// `doc` as an UPDATED delta against `previous`: every field of `doc`, plus null for each
// top-level field of `previous` that `doc` dropped (a null removes the field).
// REQUIRES: both are canonical JSON objects.
Result<std::string> DeltaWithRemovals(simdjson::ondemand::parser& parser, std::string_view doc,
                                      std::string_view previous);

// True when two JSON texts hold the same value: objects compare by key regardless of
// order, numbers by value (1.0 equals 1), strings after unescaping. Invalid JSON is unequal.
bool JsonValueEquals(std::string_view a, std::string_view b);

// Largest integer JavaScript holds exactly (2^53 - 1): the ceiling of versions and counters.
inline constexpr int64_t kMaxSafeInteger = 9007199254740991;

// Remembers the keys of one JSON object; Check() refuses one seen before, so that a
// repeated field can never silently override (or add to) the first.
class KeyGuard {
 public:
  // O(1) per key: a hostile object with many keys costs linear time, not quadratic.
  Status Check(std::string_view key, std::string_view where);

 private:
  std::unordered_set<std::string> seen_;
};

// Calls fn(key, value) for each field of `object` in order: a field that cannot be read is
// refused with `malformed`, a repeated key with KeyGuard's error naming `where`; stops at the
// first error fn returns.
template <typename Fn>
Status ForEachField(simdjson::ondemand::object& object, std::string_view where,
                    const std::string& malformed, Fn&& fn) {
  KeyGuard keys;
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) != simdjson::SUCCESS ||
        field.unescaped_key(false).get(key) != simdjson::SUCCESS) {
      return Status::InvalidArgument(malformed);
    }
    DS_RETURN_IF_ERROR(keys.Check(key, where));
    DS_RETURN_IF_ERROR(fn(key, field.value()));
  }
  return Status::Ok();
}

// JSON's whitespace: space, tab, line feed, carriage return.
constexpr bool IsJsonWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Trims JSON whitespace from the end of a raw token.
std::string_view TrimJsonWhitespace(std::string_view text);

}  // namespace deltasync
