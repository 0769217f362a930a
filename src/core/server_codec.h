// The wire codec of the sync server: decoding the v2 request, and the shapes every route's
// outcome lists are encoded in (v2 and the compatible routes of the older designs). Pure: no
// store, no decisions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

std::string Singular(const std::string& plural);

// Record fields that describe a client's local sync bookkeeping, not the entity.
bool IsBookkeepingField(std::string_view key);

bool IsDeletedFlag(std::string_view key);

// Decodes a v2 request body ({deviceId, changes, lastKnownServerVersion?, limit?}; the last two
// only `with_pull_fields`), or refuses it whole. The X-Device-ID header names the device when
// the body does not.
Status DecodePushRequest(simdjson::ondemand::parser& parser, const std::string& body,
                         bool with_pull_fields, const RequestContext& context,
                         const ServerLimits& limits, PushRequest* out);

}  // namespace deltasync
