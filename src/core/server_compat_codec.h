// The wire codec of the compatible routes (the older designs in shared/seeds): records grouped by
// entity type in, records grouped by entity type out. A record is a whole document; its id is
// the configured id field, else "id", else "<singular>_id"; its time is updated_at / updatedAt;
// a truthy deleted flag makes it a delete. Pure: no store, no decisions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/change.h"
#include "core/server.h"
#include "core/server_codec.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

// {deviceId, changes?: {entityType: [records]}, lastSyncTimestamp?} of /push, /pull and /full.
struct CompatRequest {
  std::string device_id;
  std::vector<ChangeInput> changes;
  std::optional<int64_t> since;  // lastSyncTimestamp, in ms
};

// Decodes a compatible request body, or refuses it whole. `with_changes`: read `changes`;
// `with_since`: read lastSyncTimestamp; anything else is validated and ignored.
Status DecodeCompatRequest(simdjson::ondemand::parser& parser, simdjson::ondemand::parser& scratch,
                           const std::string& body, const CompatOptions& compat,
                           const ServerLimits& limits, bool with_changes,
                           bool with_since, CompatRequest* out);

// Decodes an importSnapshot state ({entityType: [records]}) into changes from the device
// "snapshot", with changeIds "snapshot-<fingerprint>"; no limit on the number of records.
Status DecodeSnapshot(simdjson::ondemand::parser& parser, simdjson::ondemand::parser& scratch,
                      const std::string& state, const CompatOptions& compat,
                      const ServerLimits& limits, std::vector<ChangeInput>* out);

// Decodes the body of POST /v2/migrate as DecodeSnapshot does its state. The state is the body
// itself, {entityType: [records]}, or, when the body's one field besides "deviceId" is an object
// "state", that object; a "deviceId" beside the state is not an entity type. Errors name the
// records as the state's ("state.notes[0]"), in either form.
Status DecodeMigrateRequest(simdjson::ondemand::parser& parser, simdjson::ondemand::parser& scratch,
                            const std::string& body, const CompatOptions& compat,
                            const ServerLimits& limits, std::vector<ChangeInput>* out);

// {conflictId, resolution: "client" | "server" | "merged" | {use, data}, data?} of /resolve.
struct CompatResolveRequest {
  int64_t conflict_id = 0;
  Resolution resolution;
};
Status DecodeCompatResolve(simdjson::ondemand::parser& parser, const std::string& body,
                           const ServerLimits& limits, CompatResolveRequest* out);

// When the entity's state was stored: `committed`, the server's commit time (strictly
// increasing per user: the order pages follow); `admitted`, the time its change was judged by
// (the pushed time, or the time the server received it when that was further ahead than
// `max_clock_skew_ms`).
struct CompatRecordTimes {
  int64_t committed = 0;
  int64_t admitted = 0;
  int64_t max_clock_skew_ms = 0;
};

// The entity as a compatible record: the id under the field it was pushed with (a number stays
// a number); its updated_at / updatedAt as pushed, or, for one the server clamped
// (AdmittedTimestamp), the time the server received it under the same field and of the same JSON
// type; a record pushed without one gets updated_at, the commit time. A deleted entity is its
// id, updated_at and "deleted":true. `data`: the stored document (for a deleted entity, its last
// live state), if any.
Result<std::string> EncodeCompatRecord(simdjson::ondemand::parser& scratch,
                                       const CompatOptions& compat, const std::string& entity_type,
                                       const std::string& entity_id,
                                       const std::optional<std::string_view>& data, bool deleted,
                                       const CompatRecordTimes& times);

// {entityType: [records], ...}: `records` maps each type to its records joined with commas.
void AppendRecordsByType(const std::map<std::string, std::string>& records, std::string* out);

}  // namespace deltasync
