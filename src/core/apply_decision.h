// The decisions of delta application that need no database: how a pulled change meets an
// entity's unacknowledged local changes, and what the entity looks like with local changes
// replayed on top. DeltaApplier loads their inputs and carries out what they decide.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/change.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

// kCustom: the app's own resolver decides (in JS, after the native work, see ConflictStore).
enum class ConflictStrategy { kNewestWins, kServerWins, kClientWins, kMerge, kManual, kCustom };
std::optional<ConflictStrategy> ParseConflictStrategy(std::string_view name);
const char* ConflictStrategyName(ConflictStrategy strategy);  // "newest_wins", ...

// A change of the entity in the local queue that the server has not acknowledged yet (or, for
// a pulled change it ordered first, has acknowledged at a later version).
struct LocalChange {
  int64_t id = 0;  // the queue's row
  std::string change_id;
  ChangeType type = ChangeType::kUpdated;
  std::optional<std::string> data;  // canonical JSON object; none for a DELETED
  int64_t timestamp = 0;
  ChangeStatus status = ChangeStatus::kPending;
};

// The entities a chunk of pulled changes may find local changes on: those with a change in
// the queue the server has not acknowledged, or acknowledged above the chunk's first version.
// Only they are asked for their local changes. A queue with too many such rows to list cheaply
// gives Unknown(): every entity is asked.
class DirtyEntities {
 public:
  using Key = std::pair<std::string, std::string>;  // entity type, entity id

  DirtyEntities() = default;  // none
  static DirtyEntities Unknown() { return DirtyEntities(true, {}); }
  static DirtyEntities Of(std::vector<Key> keys);  // in any order, repeats allowed

  bool MayHaveLocalChanges(std::string_view entity_type, std::string_view entity_id) const;

 private:
  DirtyEntities(bool unknown, std::vector<Key> keys) : unknown_(unknown), keys_(std::move(keys)) {}
  bool unknown_ = false;
  std::vector<Key> keys_;  // sorted, unique
};

// An entity as one side sees it.
struct EntityState {
  std::optional<std::string> data;  // nullopt: absent or deleted
};

// Applies local changes (all, or only those in flight) on top of `base`. With `created_merges`
// a local CREATED sets its fields on the base instead of replacing it.
Result<EntityState> ReplayLocalChanges(simdjson::ondemand::parser& parser, EntityState base,
                                       const std::vector<LocalChange>& changes, bool only_in_flight,
                                       bool created_merges = false);

// How a pulled change that meets local changes is settled.
struct ConflictPlan {
  struct Rewrite {
    int64_t id = 0;  // the queue's row of an unsent local change
    ChangeType type = ChangeType::kUpdated;
    std::string data;
  };

  ConflictStrategy strategy = ConflictStrategy::kNewestWins;  // as applied: a delete turns kMerge into kNewestWins
  std::string winner;  // "remote", "local", "merged", "manual" or "custom"
  bool open_conflict = false;  // manual or custom: kept open for a person or the app's resolver
  // The local changes that stay on top of the entity, as they will be queued.
  std::vector<LocalChange> remaining;
  std::vector<Rewrite> rewrites;      // unsent local changes whose type or fields change
  std::vector<std::string> discards;  // unsent local changes dropped (change ids)
  // The remaining changes replay on the state before the pulled change (a pulled DELETED that
  // the local side outlives) instead of the pulled state; a local CREATED merges its fields.
  bool replay_on_state_before = false;
  bool created_merges = false;
  // The remaining unsent changes saw the pulled version: they are rebased on it.
  bool rebase = false;
};

// Settles `change` against `locals`, which the server ordered after it (so neither is the
// other's echo). A change in flight is never rewritten or dropped. `server_has_state`: the
// entity exists on the server once `change` is applied; a local CREATED that stays then
// becomes an UPDATED of its fields. Ties of timestamps go to the remote change.
// REQUIRES: `locals` is not empty; change.data is set unless change.type is kDeleted.
Result<ConflictPlan> PlanConflict(simdjson::ondemand::parser& parser, const RemoteChange& change,
                                  const std::vector<LocalChange>& locals, ConflictStrategy configured,
                                  bool server_has_state);

}  // namespace deltasync
