// The wire codec of the sync server: decoding the v2 request, and the shapes every route's
// outcome lists are encoded in (v2 and the compatible routes of the older designs). Pure: no
// store, no decisions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/change.h"
#include "core/server.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

// One change's outcome, in a form both the v2 and the compatible responses are built from.
struct Outcome {
  enum class Kind { kApplied, kConflict, kError } kind = Kind::kApplied;
  std::string change_id;
  std::string entity_type;
  std::string entity_id;
  std::string action;              // CREATE, UPDATE or DELETE
  std::optional<int64_t> version;  // when applied (also for conflicts the client won)
  std::optional<int64_t> conflict_id;
  std::string reason;
  std::string strategy;
  std::string winner;  // client, server, merged, manual
  std::string error_code;
  std::string error_message;
  bool replayed = false;  // the recorded outcome of a changeId seen before
};

// What an item of a response's outcome lists says. kServerState: ,"serverVersion" and
// "serverData" (or "serverDataOmitted") of the entity now; kConflictId only when there is one.
enum class OutcomeField {
  kChangeId,
  kVersion,
  kEntityType,
  kEntityId,
  kAction,
  kReason,
  kResolution,
  kWinner,
  kConflictId,
  kServerState,
  kErrorCode,
  kErrorMessage
};
struct OutcomeKey {
  const char* name;
  OutcomeField field;
};
// The keys, in order, of the items of "applied", "conflicts" and "errors".
struct OutcomeShape {
  std::vector<OutcomeKey> applied, conflicts, errors;
};

struct PushRequest {
  std::string device_id;
  int64_t last_known_version = 0;
  std::optional<int64_t> limit;
  std::vector<ChangeInput> changes;
};

std::string FormatIso8601(int64_t ms);

void AppendNullable(std::string* out, const std::optional<std::string>& json);

void AppendString(std::string* out, std::string_view text);

// The v2 response (DESIGN.md section 4).
const OutcomeShape& V2Outcomes();

// The compatible routes' push responses (shared/seeds): records are named by entity, uniqueId
// is the record's id.
const OutcomeShape& CompatOutcomes();

void AppendOutcomeField(const Outcome& outcome, OutcomeField field, std::string* out);

const char* ActionName(ChangeType type);

// What every route says of a device id it refuses.
inline constexpr const char* kDeviceIdExpected = "a non-empty string of at most 256 bytes";

// What every route says of a body that is JSON but not an object.
extern const char* const kNotABodyObject;

// A device id: a non-empty string of at most 256 bytes without NUL.
bool IsValidDeviceId(std::string_view id);

// Reads the body's deviceId, or refuses it as INVALID_ARGUMENT naming "deviceId".
Status ReadDeviceId(simdjson::ondemand::value value, std::string* out);

// Parses `padded` as one JSON object, or refuses it as INVALID_ARGUMENT: "Malformed JSON in
// <what> (...)", or `not_object` when it is JSON but not an object.
Status OpenRequestObject(simdjson::ondemand::parser& parser, simdjson::padded_string& padded,
                         const std::string& what, const std::string& not_object,
                         simdjson::ondemand::document* doc, simdjson::ondemand::object* object);

// How a manual conflict is settled: use "client", "server" or "merged" (with the merged
// document as data).
struct Resolution {
  std::string use;
  std::optional<std::string> data;
};

// Parses {use: "client" | "server" | "merged" (or "local" / "remote"), data?}; data is checked
// against the document limits and canonicalized.
Status ParseResolution(simdjson::ondemand::parser& parser, const std::string& json,
                       const ServerLimits& limits, Resolution* out);

// Which conflicts of one response carry their entity's serverData. An entity's data is sent
// once per response; past the response's byte budget it is left out, except for the first
// one, so that a response always settles at least one conflict.
class ServerDataBudget {
 public:
  explicit ServerDataBudget(size_t max_bytes) : max_bytes_(max_bytes) {}
  // Whether to send `bytes` of data for the entity, given the response's size so far.
  bool Admit(const std::string& entity_type, const std::string& entity_id, size_t bytes,
             size_t response_size);

 private:
  size_t max_bytes_;
  std::unordered_set<std::string> sent_;
};

// ,"serverVersion":n,"serverData":{...}|null, or ,"serverVersion":n,"serverDataOmitted":true.
// `version`: null when the server never had the entity; `data`: null when it is deleted.
void AppendServerState(const std::string& entity_type, const std::string& entity_id,
                       std::optional<int64_t> version, const std::optional<std::string>& data,
                       ServerDataBudget& budget, std::string* out);

// A change of the user's log as a page of newChanges lists it.
struct LoggedChange {
  int64_t version = 0;
  std::string_view change_id;
  std::string_view type;
  std::string_view entity_type;
  std::string_view entity_id;
  std::optional<std::string_view> data;
  int64_t timestamp = 0;
  std::optional<std::string_view> device_id;
};
void AppendLoggedChange(const LoggedChange& change, std::string* out);

// What the host's resolver is given for a custom conflict: the server's document, the one the
// client's change would make, the one it was based on, and the change itself.
struct ResolverContext {
  const ChangeInput& change;
  const std::string& device_id;
  const std::optional<std::string>& server;
  int64_t server_version;
  const std::optional<std::string>& client;
  const std::optional<std::string>& base;
};
void AppendResolverContext(const ResolverContext& context, std::string* out);

// An open conflict as conflicts() lists it.
struct OpenConflict {
  int64_t id = 0;
  std::string_view change_id;
  std::optional<std::string_view> device_id;
  std::string_view entity_type;
  std::string_view entity_id;
  std::string_view type;
  std::optional<std::string_view> client_data;
  std::optional<int64_t> base_version;
  int64_t client_timestamp = 0;
  int64_t created_at = 0;
  std::optional<std::string_view> server_data;  // null when the entity is deleted or absent
  std::optional<int64_t> server_version;
  // The inspector's listing adds "baseData": the document at baseVersion (null: absent then).
  bool with_base = false;
  std::optional<std::string_view> base_data;
};
void AppendOpenConflict(const OpenConflict& conflict, std::string* out);

// Decodes a v2 request body ({deviceId, changes, lastKnownServerVersion?, limit?}; the last two
// only `with_pull_fields`), or refuses it whole. The X-Device-ID header names the device when
// the body does not.
Status DecodePushRequest(simdjson::ondemand::parser& parser, const std::string& body,
                         bool with_pull_fields, const RequestContext& context,
                         const ServerLimits& limits, PushRequest* out);

}  // namespace deltasync
