#include "core/apply_decision.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "core/json.h"

namespace deltasync {

std::optional<ConflictStrategy> ParseConflictStrategy(std::string_view name) {
  if (name == "newest_wins") return ConflictStrategy::kNewestWins;
  if (name == "server_wins") return ConflictStrategy::kServerWins;
  if (name == "client_wins") return ConflictStrategy::kClientWins;
  if (name == "merge") return ConflictStrategy::kMerge;
  if (name == "manual") return ConflictStrategy::kManual;
  if (name == "custom") return ConflictStrategy::kCustom;
  return std::nullopt;
}

DirtyEntities DirtyEntities::Of(std::vector<Key> keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return DirtyEntities(false, std::move(keys));
}

bool DirtyEntities::MayHaveLocalChanges(std::string_view entity_type, std::string_view entity_id) const {
  if (unknown_) return true;
  auto before = [](const Key& key, std::pair<std::string_view, std::string_view> wanted) {
    const int by_type = std::string_view(key.first).compare(wanted.first);
    return by_type < 0 || (by_type == 0 && std::string_view(key.second) < wanted.second);
  };
  auto it = std::lower_bound(keys_.begin(), keys_.end(), std::make_pair(entity_type, entity_id), before);
  return it != keys_.end() && it->first == entity_type && it->second == entity_id;
}

const char* ConflictStrategyName(ConflictStrategy strategy) {
  switch (strategy) {
    case ConflictStrategy::kNewestWins: return "newest_wins";
    case ConflictStrategy::kServerWins: return "server_wins";
    case ConflictStrategy::kClientWins: return "client_wins";
    case ConflictStrategy::kMerge: return "merge";
    case ConflictStrategy::kManual: return "manual";
    case ConflictStrategy::kCustom: return "custom";
  }
  return "newest_wins";
}

Result<EntityState> ReplayLocalChanges(simdjson::ondemand::parser& parser, EntityState state,
                                       const std::vector<LocalChange>& changes, bool only_in_flight,
                                       bool created_merges) {
  for (const LocalChange& change : changes) {
    if (only_in_flight && change.status != ChangeStatus::kSyncing) continue;
    switch (change.type) {
      case ChangeType::kCreated:
        if (created_merges && state.data && change.data) {
          Result<std::string> merged = ShallowMergeObjects(parser, *state.data, *change.data);
          if (!merged.ok()) return merged.status();
          state.data = std::move(merged).value();
        } else {
          state.data = change.data;
        }
        break;
      case ChangeType::kUpdated: {
        // Fields set on a document that is not there (deleted meanwhile) do not make one.
        if (!change.data || !state.data) break;
        Result<std::string> merged = ShallowMergeObjects(parser, *state.data, *change.data);
        if (!merged.ok()) return merged.status();
        state.data = std::move(merged).value();
        break;
      }
      case ChangeType::kDeleted:
        state.data.reset();
        break;
    }
  }
  return state;
}

namespace {

// Merge: the local changes' fields that the remote change also sets go to the remote change
// when it is at least as new; the rest stay.
Status PlanMerge(simdjson::ondemand::parser& parser, const RemoteChange& change,
                 const std::vector<LocalChange>& locals, bool server_has_state, ConflictPlan* plan) {
  Result<std::unordered_set<std::string>> remote_keys = ObjectKeys(parser, *change.data);
  if (!remote_keys.ok()) return remote_keys.status();
  for (const LocalChange& local : locals) {
    if (local.status == ChangeStatus::kSyncing || !local.data) {
      plan->remaining.push_back(local);
      continue;
    }
    // A CREATED kept against a state the server has becomes an UPDATED of its fields, so the
    // server sets them on its document instead of replacing it.
    const ChangeType kept_type =
        local.type == ChangeType::kCreated && server_has_state ? ChangeType::kUpdated : local.type;
    std::string kept;
    if (change.timestamp < local.timestamp) {
      kept = *local.data;  // every local field is newer: all stay
    } else {
      Result<std::string> without = ObjectWithoutKeys(parser, *local.data, remote_keys.value());
      if (!without.ok()) return without.status();
      kept = std::move(without).value();
      if (kept == "{}" && local.type == ChangeType::kUpdated) {
        plan->discards.push_back(local.change_id);
        continue;
      }
    }
    LocalChange rewritten = local;
    rewritten.type = kept_type;
    if (kept != *local.data || kept_type != local.type) plan->rewrites.push_back({local.id, kept_type, kept});
    rewritten.data = std::move(kept);
    plan->remaining.push_back(std::move(rewritten));
  }
  return Status::Ok();
}

}  // namespace

Result<ConflictPlan> PlanConflict(simdjson::ondemand::parser& parser, const RemoteChange& change,
                                  const std::vector<LocalChange>& locals, ConflictStrategy configured,
                                  bool server_has_state) {
  ConflictPlan plan;
  int64_t newest_local = 0;
  bool local_deletes = false;
  for (const LocalChange& local : locals) {
    newest_local = std::max(newest_local, local.timestamp);
    local_deletes = local_deletes || local.type == ChangeType::kDeleted;
  }
  const bool remote_is_newer = change.timestamp >= newest_local;  // a tie goes to the remote
  plan.strategy = configured;
  if (plan.strategy == ConflictStrategy::kMerge && (local_deletes || change.type == ChangeType::kDeleted)) {
    plan.strategy = ConflictStrategy::kNewestWins;  // a delete has no fields to merge
  }
  switch (plan.strategy) {
    case ConflictStrategy::kClientWins: plan.winner = "local"; break;
    case ConflictStrategy::kServerWins: plan.winner = "remote"; break;
    case ConflictStrategy::kNewestWins: plan.winner = remote_is_newer ? "remote" : "local"; break;
    case ConflictStrategy::kMerge: plan.winner = "merged"; break;
    case ConflictStrategy::kManual: plan.winner = "manual"; break;
    case ConflictStrategy::kCustom: plan.winner = "custom"; break;
  }
  if (plan.winner == "remote") {
    // The unsent local changes go; those in flight stay on top until the server answers them.
    for (const LocalChange& local : locals) {
      if (local.status == ChangeStatus::kSyncing) {
        plan.remaining.push_back(local);
      } else {
        plan.discards.push_back(local.change_id);
      }
    }
    return plan;
  }
  plan.replay_on_state_before = change.type == ChangeType::kDeleted;
  plan.open_conflict = plan.winner == "manual" || plan.winner == "custom";
  plan.rebase = !plan.open_conflict;
  if (plan.winner == "merged") {
    plan.created_merges = true;
    DS_RETURN_IF_ERROR(PlanMerge(parser, change, locals, server_has_state, &plan));
  } else {
    plan.remaining = locals;
  }
  return plan;
}

}  // namespace deltasync
