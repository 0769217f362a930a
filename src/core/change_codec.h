// Decoding change records from JSON (as JS hands them over, or as an older
// client's queue dump holds them) and encoding queue contents back to JSON.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/change.h"
#include "core/json.h"
#include "core/status.h"
#include "core/store.h"
#include "simdjson.h"

namespace deltasync {

enum class DecodeMode {
  // The wire shape of DESIGN.md section 4: camelCase fields, unknown fields rejected.
  kWire,
  // Older clients' queues: also snake_case (entity_type, payload_json, change_id),
  // `action` (create/update/delete), ISO 8601 times, `status`; unknown fields ignored.
  kLegacy,
  // What a server accepts from any client: the wire shape, changeId required, other
  // fields (a queue's retryCount, say) validated as JSON and ignored.
  kServer,
};

// Decodes one change record object. In kLegacy mode *skip is set for synced rows.
Status DecodeChangeRecord(simdjson::ondemand::object object, DecodeMode mode, const JsonLimits& limits,
                          const std::string& name, ChangeInput* out, bool* skip);

// Decodes an array of change records, naming elements "<name>[i]".
Status DecodeChangeArray(simdjson::ondemand::array array, DecodeMode mode, const JsonLimits& limits,
                         std::string_view name, std::vector<ChangeInput>* out, size_t* skipped);

// Entity type names: [A-Za-z0-9_.-]{1,64}, except "__proto__" and "constructor".
bool IsValidEntityType(std::string_view name);

// One message shape for every argument error:
// "Expected <expected> for <name> but received <received>".
Status ExpectedError(std::string_view expected, std::string_view name, std::string_view received);

// Thread safety: one decoder per thread; it reuses its parser between calls.
class ChangeDecoder {
 public:
  explicit ChangeDecoder(JsonLimits limits = {}) : limits_(limits) {}

  // Decodes one change object. `name` names it in error messages ("change").
  Status DecodeOne(const std::string& json, std::string_view name, ChangeInput* out);

  // Decodes an array of change objects; `name` names the array ("changes").
  // In kLegacy mode records whose status is "synced" are counted in *skipped and left out.
  Status DecodeArray(const std::string& json, DecodeMode mode, std::string_view name,
                     std::vector<ChangeInput>* out, size_t* skipped);

  // Validates a document (a JSON object) against the limits and writes its canonical form.
  Status ValidateDocument(const std::string& json, std::string_view name, std::string* out);

  // Decodes list() options ({where, orderBy, limit, offset}).
  Status DecodeQuery(const std::string& json, ListQuery* out);

  // Frees the parser's and scratch buffers after an input of `input_size` bytes when it was large.
  // REQUIRES: nothing decoded from the last input is still referenced.
  void ReleaseLargeBuffers(size_t input_size);

 private:
  // The input itself when the caller left SIMDJSON_PADDING bytes of capacity, else a padded copy.
  simdjson::padded_string_view Padded(const std::string& json);

  JsonLimits limits_;
  simdjson::ondemand::parser parser_;
  simdjson::padded_string scratch_;
};

// Appends `change` as a JSON object with camelCase fields.
void AppendChangeJson(const Change& change, std::string* out);
// A JSON array of changes.
std::string ChangesToJson(const std::vector<Change>& changes);

// Parses "2024-11-07T12:00:00Z", "2024-11-07T12:00:00.123+02:00" or "2024-11-07"
// into milliseconds since the epoch.
std::optional<int64_t> ParseIso8601Ms(std::string_view text);

}  // namespace deltasync
