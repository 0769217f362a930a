#include "core/server_decisions.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <unordered_set>
#include <utility>

namespace deltasync {

namespace {

uint64_t Fnv1a(std::string_view text, uint64_t hash) {
  for (const char ch : text) {
    hash ^= static_cast<unsigned char>(ch);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

// Merge: the client's fields that the server also changed, at the same time or later (within
// the tolerance). With a baseVersion the server's fields are those its changes since then set;
// without one, every field of the server's state, as of its last change.
Result<std::unordered_set<std::string>> FieldsLostToServer(
    simdjson::ondemand::parser& parser, const ChangeInput& change, const EntityRow& entity,
    const std::vector<ServerChange>& server_changes,
    const std::unordered_set<std::string>& client_keys, int64_t tolerance_ms) {
  std::map<std::string, int64_t> server_fields;  // field -> newest server timestamp touching it
  if (change.base_version) {
    for (const ServerChange& server_change : server_changes) {
      if (!server_change.data) continue;
      Result<std::unordered_set<std::string>> keys = ObjectKeys(parser, *server_change.data);
      if (!keys.ok()) return keys.status();
      for (const std::string& key : keys.value()) {
        int64_t& newest = server_fields[key];
        newest = std::max(newest, server_change.client_timestamp);
      }
    }
  } else if (entity.data) {
    Result<std::unordered_set<std::string>> keys = ObjectKeys(parser, *entity.data);
    if (!keys.ok()) return keys.status();
    for (const std::string& key : keys.value()) server_fields[key] = entity.client_timestamp;
  }
  std::unordered_set<std::string> lost;
  for (const std::string& key : client_keys) {
    auto it = server_fields.find(key);
    if (it != server_fields.end() && *change.timestamp <= it->second + tolerance_ms)
      lost.insert(key);
  }
  return lost;
}

}  // namespace

std::string Fingerprint(std::initializer_list<std::string_view> parts) {
  uint64_t a = 0xcbf29ce484222325ull;
  uint64_t b = 0x84222325cbf29ce4ull;
  for (std::string_view part : parts) {
    const std::string length = std::to_string(part.size()) + ":";
    a = Fnv1a(part, Fnv1a(length, a));
    b = Fnv1a(part, Fnv1a(length, b ^ 0x9e3779b97f4a7c15ull));
  }
  char out[33];
  std::snprintf(out, sizeof out, "%016" PRIx64 "%016" PRIx64, a, b);
  return out;
}

std::string ChangeFingerprint(const ChangeInput& change) {
  const std::string base = change.base_version ? std::to_string(*change.base_version) : "-";
  return Fingerprint({ChangeTypeName(change.type), change.entity_type, change.entity_id,
                      change.data ? std::string_view(*change.data) : std::string_view("-"), base});
}

int64_t AdmittedTimestamp(int64_t sent, int64_t received_at, int64_t max_skew_ms) {
  return sent > received_at + max_skew_ms ? received_at : sent;
}

bool NeedsServerChanges(const ChangeInput& change, const EntityRow& entity,
                        const std::string& device_id) {
  return entity.found && entity.device_id != std::optional<std::string>(device_id) &&
         change.base_version && entity.version > *change.base_version;
}

ConflictCheck DetectConflict(const ChangeInput& change, const EntityRow& entity,
                             const std::string& device_id,
                             const std::vector<ServerChange>& server_changes,
                             int64_t tolerance_ms) {
  ConflictCheck check;
  if (!entity.found || entity.device_id == std::optional<std::string>(device_id)) return check;
  if (change.base_version) {
    if (entity.version > *change.base_version) {
      for (const ServerChange& server_change : server_changes) {
        if (server_change.type != ChangeType::kUpdated) check.server_whole_entity = true;
      }
      check.conflict = !server_changes.empty();
      check.reason = "changed on the server after baseVersion " +
                     std::to_string(*change.base_version) + " by another device";
    }
  } else if (entity.client_timestamp + tolerance_ms >= *change.timestamp) {
    check.conflict = true;
    check.reason =
        "the server's copy is as new as or newer than the change (no baseVersion to compare)";
  }
  if (check.conflict && entity.deleted && change.type != ChangeType::kDeleted) {
    check.reason = "deleted on the server by another device";
  }
  return check;
}

const CustomVerdict* ResolverState::CurrentVerdict(const std::string& change_id,
                                                   int64_t entity_version) const {
  if (!exchange) return nullptr;
  auto found = exchange->verdicts.find(change_id);
  if (found == exchange->verdicts.end() || found->second.server_version != entity_version)
    return nullptr;
  return &found->second;
}

Result<ConflictDecision> DecideConflict(simdjson::ondemand::parser& parser,
                                        ConflictStrategy strategy, ChangeInput* change,
                                        const EntityRow& entity,
                                        const std::vector<ServerChange>& server_changes,
                                        const ConflictCheck& check, const ResolverState& resolver,
                                        int64_t tolerance_ms) {
  ConflictDecision decision;
  if (strategy == ConflictStrategy::kMerge &&
      (change->type != ChangeType::kUpdated || entity.deleted || check.server_whole_entity)) {
    strategy = ConflictStrategy::kNewestWins;  // no fields to merge against a create or a delete
  }
  switch (strategy) {
    case ConflictStrategy::kServerWins:
      decision.winner = "server";
      break;
    case ConflictStrategy::kClientWins:
      decision.apply = true;
      decision.winner = "client";
      break;
    case ConflictStrategy::kNewestWins:
      decision.apply = *change->timestamp > entity.client_timestamp + tolerance_ms;
      decision.winner = decision.apply ? "client" : "server";
      break;
    case ConflictStrategy::kMerge: {
      Result<std::unordered_set<std::string>> client_keys = ObjectKeys(parser, *change->data);
      if (!client_keys.ok()) return client_keys.status();
      Result<std::unordered_set<std::string>> lost = FieldsLostToServer(
          parser, *change, entity, server_changes, client_keys.value(), tolerance_ms);
      if (!lost.ok()) return lost.status();
      if (lost.value().size() == client_keys.value().size()) {
        decision.winner = "server";
        break;
      }
      decision.apply = true;
      decision.winner = "merged";
      if (!lost.value().empty()) {
        Result<std::string> kept = ObjectWithoutKeys(parser, *change->data, lost.value());
        if (!kept.ok()) return kept.status();
        change->data = std::move(kept).value();
      }
      break;
    }
    case ConflictStrategy::kCustom: {
      const CustomVerdict* verdict = resolver.CurrentVerdict(*change->change_id, entity.version);
      if (!verdict && resolver.exchange && !resolver.exchange->final_round) {
        decision.ask_resolver = true;
        return decision;
      }
      const CustomVerdict::Use use = verdict ? verdict->use : CustomVerdict::Use::kManual;
      if (!verdict) {
        decision.reason_note = resolver.exchange
                                   ? "; the entity kept changing while the resolver decided"
                                   : "; no resolver was given the conflict";
      } else if (!verdict->note.empty()) {
        decision.reason_note = "; " + verdict->note;
      }
      if (use == CustomVerdict::Use::kClient) {
        decision.apply = true;
        decision.winner = "client";
      } else if (use == CustomVerdict::Use::kServer) {
        decision.winner = "server";
      } else if (use == CustomVerdict::Use::kMerged) {
        decision.apply = true;
        decision.winner = "merged";
        DS_RETURN_IF_ERROR(ToMergedChange(parser, entity, *verdict->data, change));
      } else {
        decision.winner = "manual";
      }
      break;
    }
    case ConflictStrategy::kManual:
      decision.winner = "manual";
      break;
  }
  return decision;
}

Result<std::optional<std::string>> DocumentAfter(simdjson::ondemand::parser& parser,
                                                 ChangeType type,
                                                 const std::optional<std::string>& data,
                                                 const EntityRow& entity) {
  if (type == ChangeType::kDeleted) return std::optional<std::string>();
  if (type == ChangeType::kCreated) return data;
  Result<std::string> merged =
      ShallowMergeObjects(parser, entity.data ? *entity.data : "{}", data ? *data : "{}");
  if (!merged.ok()) return merged.status();
  return std::optional<std::string>(std::move(merged).value());
}

Status ToMergedChange(simdjson::ondemand::parser& parser, const EntityRow& entity,
                      const std::string& merged, ChangeInput* change) {
  change->type = entity.found && !entity.deleted ? ChangeType::kUpdated : ChangeType::kCreated;
  change->data = merged;
  if (change->type == ChangeType::kUpdated && entity.data) {
    Result<std::string> delta = DeltaWithRemovals(parser, merged, *entity.data);
    if (!delta.ok()) return delta.status();
    change->data = std::move(delta).value();
  }
  return Status::Ok();
}

Result<EntityWrite> PlanWrite(simdjson::ondemand::parser& parser, const ChangeInput& change,
                              const std::optional<std::string>& data, const EntityRow& entity,
                              const JsonLimits& limits) {
  EntityWrite write;
  write.logged_type = change.type;
  write.logged_data = data;
  switch (change.type) {
    case ChangeType::kCreated:
      write.document = data;
      break;
    case ChangeType::kUpdated: {
      Result<std::optional<std::string>> merged =
          DocumentAfter(parser, ChangeType::kUpdated, data, entity);
      if (!merged.ok()) return merged.status();
      write.document = std::move(merged).value();
      if (!entity.found || entity.deleted) {
        write.logged_type = ChangeType::kCreated;
        write.logged_data = write.document;
      }
      break;
    }
    case ChangeType::kDeleted:
      write.document = entity.data;
      write.deleted = true;
      write.logged_data.reset();
      break;
  }
  const size_t max_bytes = limits.max_document_bytes;
  if (!write.deleted && write.document && write.document->size() > max_bytes) {
    return Status::LimitExceeded("Applying this change would make " + change.entity_type + "/" +
                                 change.entity_id + " " + std::to_string(write.document->size()) +
                                 " bytes, over the limit of " + std::to_string(max_bytes) +
                                 " bytes per document");
  }
  return write;
}

void ValidateVerdicts(simdjson::ondemand::parser& parser, const JsonLimits& limits,
                      ResolverExchange* exchange) {
  for (auto& [change_id, verdict] : exchange->verdicts) {
    if (verdict.use != CustomVerdict::Use::kMerged) continue;
    std::string copy;
    Status valid = Status::InvalidArgument("use \"merged\" came without data");
    if (verdict.data) {
      simdjson::padded_string padded(*verdict.data);
      simdjson::ondemand::document doc;
      simdjson::ondemand::value value;
      simdjson::ondemand::json_type type;
      valid = parser.iterate(padded).get(doc) == simdjson::SUCCESS &&
                      doc.get_value().get(value) == simdjson::SUCCESS &&
                      value.type().get(type) == simdjson::SUCCESS &&
                      type == simdjson::ondemand::json_type::object
                  ? CopyValidatedJson(value, 0, limits, "data", &copy)
                  : Status::InvalidArgument("data is not a JSON object");
    }
    if (valid.ok()) {
      verdict.data = std::move(copy);
    } else {
      verdict.use = CustomVerdict::Use::kManual;
      verdict.data.reset();
      verdict.note = "the resolver's merged data was refused: " + valid.message();
    }
  }
}

Status HistoryFold::Add(simdjson::ondemand::parser& parser, ChangeType type,
                        const std::optional<std::string>& data) {
  if (type == ChangeType::kDeleted) {
    state_.reset();
  } else if (type == ChangeType::kCreated || !state_) {
    state_ = data;
  } else if (data) {
    Result<std::string> merged = ShallowMergeObjects(parser, *state_, *data);
    if (!merged.ok()) return merged.status();
    state_ = std::move(merged).value();
  }
  return Status::Ok();
}

Status PlanResolution(simdjson::ondemand::parser& parser, const std::string& use,
                      const std::optional<std::string>& merged, const EntityRow& entity,
                      ChangeInput* change) {
  if (use == "merged") return ToMergedChange(parser, entity, *merged, change);
  if (change->type == ChangeType::kUpdated && (!entity.found || entity.deleted)) {
    change->type = ChangeType::kCreated;
    Result<std::optional<std::string>> revived =
        DocumentAfter(parser, ChangeType::kUpdated, change->data, entity);
    if (!revived.ok()) return revived.status();
    change->data = std::move(revived).value();
  }
  return Status::Ok();
}

}  // namespace deltasync
