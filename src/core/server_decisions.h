// The sync server's decisions: what a pushed change does, given the state a store read for it.
// Idempotency fingerprints, clock hygiene, conflict detection, the five strategies (with the
// three-way merge and the host's custom verdicts), what a write stores and the size limit on
// it. Pure: no store, no encoding, no clock (times come in), so every rule here is tested
// without a database and holds alike for the SQLite and the PostgreSQL store.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/change.h"
#include "core/json.h"
#include "core/server.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

// An entity as the store holds it: its last live state also while deleted, so that an update
// that wins later can revive it.
struct EntityRow {
  bool found = false;
  std::optional<std::string> data;
  bool deleted = false;
  int64_t version = 0;
  std::optional<std::string> device_id;  // the device whose change made this version
  int64_t client_timestamp = 0;
};

// A change another device logged for the entity after the pushed change's baseVersion.
struct ServerChange {
  ChangeType type = ChangeType::kUpdated;
  std::optional<std::string> data;
  int64_t client_timestamp = 0;
};

// 128 bits from two FNV-1a streams over length-prefixed parts; identifies content, not secrets.
std::string Fingerprint(std::initializer_list<std::string_view> parts);

// What a changeId stands for: a changeId seen again with another fingerprint is a reuse, not a
// replay.
std::string ChangeFingerprint(const ChangeInput& change);

// A timestamp further ahead of the server's clock than `max_skew_ms` is taken as the time the
// server received the change, so a device with a wrong clock cannot pin an entity against
// every later edit.
int64_t AdmittedTimestamp(int64_t sent, int64_t received_at, int64_t max_skew_ms);

// Whether judging the change needs the entity's log since its baseVersion (ServerChange list).
bool NeedsServerChanges(const ChangeInput& change, const EntityRow& entity,
                        const std::string& device_id);

struct ConflictCheck {
  bool conflict = false;
  std::string reason;
  bool server_whole_entity = false;  // another device created or deleted it since baseVersion
};

// Whether the change conflicts with what other devices did to the entity: with a baseVersion,
// a change of theirs since it; without one, a state at least as new (within `tolerance_ms`).
// `server_changes` is what NeedsServerChanges asked for, else empty.
ConflictCheck DetectConflict(const ChangeInput& change, const EntityRow& entity,
                             const std::string& device_id,
                             const std::vector<ServerChange>& server_changes, int64_t tolerance_ms);

// What the configured strategy makes of a conflicting change.
struct ConflictDecision {
  bool ask_resolver = false;  // custom: nothing is decided until the host's resolver has spoken
  bool apply = false;
  std::string winner;       // client, server, merged or manual (kept open for resolveConflict)
  std::string reason_note;  // appended to the conflict's reason
};

// The host's custom verdicts for this request, and whether one may still be asked for.
struct ResolverState {
  const ResolverExchange* exchange = nullptr;  // null: no resolver was given the conflict
  // The host's verdict on a change, if it was given for the entity's current version.
  const CustomVerdict* CurrentVerdict(const std::string& change_id, int64_t entity_version) const;
};

// Decides a conflict. The merge strategy keeps the client's fields that no server change since
// baseVersion (or, without one, no newer server state) touched, and falls back to newest-wins
// against a create or a delete. A merged outcome rewrites `change` into the change that makes
// the merged document (its type and data): apply that.
Result<ConflictDecision> DecideConflict(simdjson::ondemand::parser& parser,
                                        ConflictStrategy strategy, ChangeInput* change,
                                        const EntityRow& entity,
                                        const std::vector<ServerChange>& server_changes,
                                        const ConflictCheck& check, const ResolverState& resolver,
                                        int64_t tolerance_ms);

// The live document a change of `type` with `data` makes of the entity: a CREATED's data, an
// UPDATED's fields set on the entity's last state, nothing for a DELETED.
Result<std::optional<std::string>> DocumentAfter(simdjson::ondemand::parser& parser,
                                                 ChangeType type,
                                                 const std::optional<std::string>& data,
                                                 const EntityRow& entity);

// The change that makes the entity `merged` as a whole: an UPDATED of the differing fields
// (removed ones set to null) on a live entity, else a CREATED.
Status ToMergedChange(simdjson::ondemand::parser& parser, const EntityRow& entity,
                      const std::string& merged, ChangeInput* change);

// What applying a change writes: the entity's new state and the change the log records.
struct EntityWrite {
  std::optional<std::string> document;  // for a delete: the last live state, kept for a revival
  bool deleted = false;
  ChangeType logged_type = ChangeType::kCreated;
  std::optional<std::string> logged_data;  // null for a DELETED
};

// Plans the write of `data` (for UPDATED: the fields to set). An UPDATED of a deleted entity
// is logged as the CREATED of the whole revived document, since devices that saw the delete
// have nothing to set fields on. LIMIT_EXCEEDED when the stored document would be larger than
// any device may pull, decided before a version is taken so that versions stay gapless.
Result<EntityWrite> PlanWrite(simdjson::ondemand::parser& parser, const ChangeInput& change,
                              const std::optional<std::string>& data, const EntityRow& entity,
                              const JsonLimits& limits);

// Checks the host's "merged" verdicts against the document limits, canonicalizing their data;
// one that is not a document within them leaves its conflict for a person instead.
void ValidateVerdicts(simdjson::ondemand::parser& parser, const JsonLimits& limits,
                      ResolverExchange* exchange);

// Rebuilds an entity's state from its log, one change at a time in version order.
class HistoryFold {
 public:
  Status Add(simdjson::ondemand::parser& parser, ChangeType type,
             const std::optional<std::string>& data);
  // nullopt: absent or deleted at that point.
  const std::optional<std::string>& state() const { return state_; }

 private:
  std::optional<std::string> state_;
};

// resolveConflict: the change that settles a manual conflict with `use` ("client" or
// "merged"; "server" applies nothing). A merged document replaces the server's field for field;
// the client's fields revive a deleted entity.
Status PlanResolution(simdjson::ondemand::parser& parser, const std::string& use,
                      const std::optional<std::string>& merged, const EntityRow& entity,
                      ChangeInput* change);

}  // namespace deltasync
