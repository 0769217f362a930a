#include "core/server_operation.h"

#include <algorithm>
#include <map>

#include "core/change_codec.h"
#include "core/json.h"
#include "core/server_compat_codec.h"

namespace deltasync {

namespace {

// The queries are written once, in the SQL that SQLite and PostgreSQL both speak (?N parameters,
// ON CONFLICT, IS DISTINCT FROM, no dialect's own functions); each store runs them.
constexpr const char* kFindResult =
    "SELECT fingerprint, outcome, version, conflict_id, reason, strategy, winner, error_code, "
    "error_message, action "
    "FROM change_results WHERE user_id = ?1 AND change_id = ?2";
constexpr const char* kInsertResult =
    "INSERT INTO change_results (user_id, change_id, fingerprint, outcome, version, conflict_id, "
    "reason, "
    "strategy, winner, error_code, error_message, entity_type, entity_id, action) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
    "ON CONFLICT (user_id, change_id) DO UPDATE SET fingerprint = excluded.fingerprint, outcome = "
    "excluded.outcome, "
    "version = excluded.version, conflict_id = excluded.conflict_id, reason = excluded.reason, "
    "strategy = excluded.strategy, winner = excluded.winner, error_code = excluded.error_code, "
    "error_message = excluded.error_message, entity_type = excluded.entity_type, entity_id = "
    "excluded.entity_id, "
    "action = excluded.action";
constexpr const char* kLoadEntity =
    "SELECT data, deleted, version, device_id, client_timestamp FROM entities "
    "WHERE user_id = ?1 AND entity_type = ?2 AND entity_id = ?3";
// An entity's history up to a version, to rebuild the state a change was based on.
constexpr const char* kEntityHistory =
    "SELECT change_type, change_data FROM entity_changes WHERE user_id = ?1 AND entity_type = ?2 "
    "AND entity_id = ?3 "
    "AND version <= ?4 ORDER BY version";
constexpr const char* kChangesSince =
    "SELECT change_type, change_data, client_timestamp FROM entity_changes "
    "WHERE user_id = ?1 AND entity_type = ?2 AND entity_id = ?3 AND version > ?4 AND device_id IS "
    "DISTINCT FROM ?5 "
    "ORDER BY version";
constexpr const char* kSaveUserVersion =
    "INSERT INTO user_versions (user_id, version, last_server_timestamp) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, "
    "last_server_timestamp = excluded.last_server_timestamp";
constexpr const char* kUserVersion =
    "SELECT version, last_server_timestamp FROM user_versions WHERE user_id = ?1";
constexpr const char* kInsertChange =
    "INSERT INTO entity_changes (user_id, version, change_id, device_id, change_type, entity_type, "
    "entity_id, "
    "change_data, base_version, client_timestamp, server_timestamp, resolution) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr const char* kUpsertEntity =
    "INSERT INTO entities (user_id, entity_type, entity_id, data, deleted, version, device_id, "
    "client_timestamp, "
    "server_timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT (user_id, entity_type, entity_id) DO UPDATE SET data = excluded.data, deleted = "
    "excluded.deleted, "
    "version = excluded.version, device_id = excluded.device_id, client_timestamp = "
    "excluded.client_timestamp, "
    "server_timestamp = excluded.server_timestamp";
constexpr const char* kInsertConflict =
    "INSERT INTO conflicts (user_id, change_id, device_id, entity_type, entity_id, change_type, "
    "client_data, "
    "base_version, client_timestamp, server_version, created_at, number) VALUES (?1, ?2, ?3, ?4, "
    "?5, ?6, ?7, ?8, ?9, "
    "?10, ?11, (SELECT coalesce(max(number), 0) + 1 FROM conflicts WHERE user_id = ?1)) RETURNING "
    "number";
constexpr const char* kTouchDevicePush =
    "INSERT INTO devices (user_id, device_id, last_push_at, changes_pushed, conflicts_reported) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, device_id) DO UPDATE SET last_push_at = "
    "excluded.last_push_at, "
    "changes_pushed = devices.changes_pushed + excluded.changes_pushed, "
    "conflicts_reported = devices.conflicts_reported + excluded.conflicts_reported";
constexpr const char* kTouchDevicePull =
    "INSERT INTO devices (user_id, device_id, last_pull_at, last_seen_version) VALUES (?1, ?2, ?3, "
    "?4) "
    "ON CONFLICT (user_id, device_id) DO UPDATE SET last_pull_at = excluded.last_pull_at, "
    "last_seen_version = CASE WHEN excluded.last_seen_version > devices.last_seen_version "
    "THEN excluded.last_seen_version ELSE devices.last_seen_version END";
constexpr const char* kPullChanges =
    "SELECT version, change_id, change_type, entity_type, entity_id, change_data, "
    "client_timestamp, device_id "
    "FROM entity_changes WHERE user_id = ?1 AND version > ?2 ORDER BY version LIMIT ?3";
constexpr const char* kDeviceStatus =
    "SELECT last_push_at, last_pull_at, changes_pushed, conflicts_reported, last_seen_version FROM "
    "devices "
    "WHERE user_id = ?1 AND device_id = ?2";
constexpr const char* kOpenConflictCount =
    "SELECT count(*) FROM conflicts WHERE user_id = ?1 AND status = 'open'";
constexpr const char* kOpenConflicts =
    "SELECT c.number, c.change_id, c.device_id, c.entity_type, c.entity_id, c.change_type, "
    "c.client_data, "
    "c.base_version, c.client_timestamp, c.created_at, e.data, e.deleted, e.version FROM conflicts "
    "AS c "
    "LEFT JOIN entities AS e ON e.user_id = c.user_id AND e.entity_type = c.entity_type AND "
    "e.entity_id = c.entity_id "
    "WHERE c.user_id = ?1 AND c.status = 'open' AND c.number > ?2 ORDER BY c.number";
constexpr const char* kLoadConflict =
    "SELECT change_id, device_id, entity_type, entity_id, change_type, client_data, base_version, "
    "client_timestamp "
    "FROM conflicts WHERE user_id = ?1 AND number = ?2 AND status = 'open'";
constexpr const char* kCloseConflict =
    "UPDATE conflicts SET status = 'resolved', resolution = ?3, resolved_at = ?4 WHERE user_id = "
    "?1 AND number = ?2";
constexpr const char* kEntitiesSince =
    "SELECT entity_type, entity_id, data, deleted, server_timestamp, client_timestamp FROM entities "
    "WHERE user_id = ?1 AND server_timestamp > ?2 ORDER BY server_timestamp LIMIT ?3";
constexpr const char* kEntityTypes =
    "SELECT DISTINCT entity_type FROM entities WHERE user_id = ?1 ORDER BY 1";

constexpr int64_t kCompatPullLimit = 1000;

// Text the log stores as NULL when there is none.
std::optional<std::string_view> NullIfEmpty(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return std::string_view(text);
}

}  // namespace

size_t SyncServerCore::Operation::RemainingBudget(size_t used) const {
  const size_t max = s_.options_.limits.max_response_bytes;
  return used >= max ? 0 : max - used;
}

ConflictStrategy SyncServerCore::Operation::StrategyFor(const std::string& entity_type) const {
  auto it = s_.options_.per_type.find(entity_type);
  return it == s_.options_.per_type.end() ? s_.options_.conflicts : it->second;
}

Result<EntityRow> SyncServerCore::Operation::LoadEntity(const std::string& user_id,
                                                        const std::string& entity_type,
                                                        const std::string& entity_id) {
  Result<SqlQuery*> stmt = session_.Cached(kLoadEntity);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, entity_type, entity_id);
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  EntityRow entity;
  if (!row.value()) return entity;
  entity.found = true;
  entity.data = scope->OptionalText(0);
  entity.deleted = scope->Int(1) != 0;
  entity.version = scope->Int(2);
  entity.device_id = scope->OptionalText(3);
  entity.client_timestamp = scope->Int(4);
  return entity;
}

Result<std::pair<int64_t, int64_t>> SyncServerCore::Operation::NextVersion(
    const std::string& user_id) {
  if (!counter_loaded_ || counter_user_ != user_id) {
    DS_RETURN_IF_ERROR(FlushCounter());
    Result<std::pair<int64_t, int64_t>> stored = StoredUserVersion(user_id);
    if (!stored.ok()) return stored.status();
    counter_user_ = user_id;
    counter_version_ = stored.value().first;
    counter_timestamp_ = stored.value().second;
    counter_loaded_ = true;
  }
  ++counter_version_;
  counter_timestamp_ = std::max(counter_timestamp_ + 1, s_.clock_->NowMs());
  counter_dirty_ = true;
  return std::make_pair(counter_version_, counter_timestamp_);
}

Status SyncServerCore::Operation::Commit(SessionTransaction& tx) {
  if (advanced_) DS_RETURN_IF_ERROR(session_.AnnounceCommit(counter_user_, counter_version_));
  DS_RETURN_IF_ERROR(tx.Commit());
  committed_ = true;
  return Status::Ok();
}

void SyncServerCore::Operation::NotifyDurableCommit() {
  if (committed_ && advanced_) s_.NotifyCommit(counter_user_, counter_version_);
}

Status SyncServerCore::Operation::FlushCounter() {
  if (!counter_dirty_) return Status::Ok();
  DS_RETURN_IF_ERROR(
      session_.Run(kSaveUserVersion, counter_user_, counter_version_, counter_timestamp_));
  counter_dirty_ = false;
  advanced_ = true;
  return Status::Ok();
}

Result<std::pair<int64_t, int64_t>> SyncServerCore::Operation::UserVersion(
    const std::string& user_id) {
  if (counter_loaded_ && counter_user_ == user_id)
    return std::make_pair(counter_version_, counter_timestamp_);
  return StoredUserVersion(user_id);
}

Result<std::pair<int64_t, int64_t>> SyncServerCore::Operation::StoredUserVersion(
    const std::string& user_id) {
  Result<SqlQuery*> stmt = session_.Cached(kUserVersion);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindText(1, user_id);
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return std::make_pair(int64_t{0}, int64_t{0});
  return std::make_pair(scope->Int(0), scope->Int(1));
}

Result<std::optional<std::string>> SyncServerCore::Operation::FindRecordedOutcome(
    const std::string& user_id, const std::string& change_id, Outcome* outcome) {
  Result<SqlQuery*> stmt = session_.Cached(kFindResult);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, change_id);
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return std::optional<std::string>();
  const std::string_view kind = scope->Text(1);
  outcome->kind = kind == "applied"    ? Outcome::Kind::kApplied
                  : kind == "conflict" ? Outcome::Kind::kConflict
                                       : Outcome::Kind::kError;
  outcome->version = scope->OptionalInt(2);
  outcome->conflict_id = scope->OptionalInt(3);
  outcome->reason = scope->OptionalText(4).value_or("");
  outcome->strategy = scope->OptionalText(5).value_or("");
  outcome->winner = scope->OptionalText(6).value_or("");
  outcome->error_code = scope->OptionalText(7).value_or("");
  outcome->error_message = scope->OptionalText(8).value_or("");
  outcome->action = std::string(scope->Text(9));
  outcome->replayed = true;
  return std::optional<std::string>(std::string(scope->Text(0)));
}

Result<int64_t> SyncServerCore::Operation::Write(const std::string& user_id,
                                                 const std::string& device_id,
                                                 const ChangeInput& change,
                                                 const std::optional<std::string>& data,
                                                 const EntityRow& entity,
                                                 const std::string& resolution) {
  Result<EntityWrite> planned = PlanWrite(scratch(), change, data, entity, s_.options_.limits.json);
  if (!planned.ok()) return planned.status();
  const EntityWrite& write = planned.value();
  Result<std::pair<int64_t, int64_t>> next = NextVersion(user_id);
  if (!next.ok()) return next.status();
  const int64_t version = next.value().first;
  const int64_t server_timestamp = next.value().second;
  // The logged data is bound without a copy: `write` outlives the Run.
  DS_RETURN_IF_ERROR(session_.Run(kInsertChange, user_id, version, *change.change_id, device_id,
                                  ChangeTypeName(write.logged_type), change.entity_type,
                                  change.entity_id, write.logged_data, change.base_version,
                                  *change.timestamp, server_timestamp, NullIfEmpty(resolution)));
  DS_RETURN_IF_ERROR(session_.Run(kUpsertEntity, user_id, change.entity_type, change.entity_id,
                                  write.document, int64_t{write.deleted ? 1 : 0}, version,
                                  device_id, *change.timestamp, server_timestamp));
  return version;
}

Status SyncServerCore::Operation::RecordOutcome(const std::string& user_id,
                                                const std::string& fingerprint,
                                                const Outcome& outcome) {
  const char* kind = outcome.kind == Outcome::Kind::kApplied    ? "applied"
                     : outcome.kind == Outcome::Kind::kConflict ? "conflict"
                                                                : "error";
  return session_.Run(kInsertResult, user_id, outcome.change_id, fingerprint, kind, outcome.version,
                      outcome.conflict_id, NullIfEmpty(outcome.reason),
                      NullIfEmpty(outcome.strategy), NullIfEmpty(outcome.winner),
                      NullIfEmpty(outcome.error_code), NullIfEmpty(outcome.error_message),
                      outcome.entity_type, outcome.entity_id, outcome.action);
}

Status SyncServerCore::Operation::RekeyRevert(const std::string& user_id, ChangeInput* change) {
  Result<EntityRow> current = LoadEntity(user_id, change->entity_type, change->entity_id);
  if (!current.ok()) return current.status();
  if (!current.value().found) return Status::Ok();
  std::string key = *change->change_id;
  // Each step follows a recorded outcome with a version below the entity's, so the chain is
  // at most as long as the entity's history; the bound only guards against a corrupt file.
  for (int64_t step = 0; step <= current.value().version; ++step) {
    Outcome recorded;
    Result<std::optional<std::string>> found = FindRecordedOutcome(user_id, key, &recorded);
    if (!found.ok()) return found.status();
    if (!found.value()) break;  // unused: a new change under this key
    if (!recorded.version || *recorded.version == current.value().version) break;  // a replay
    key += "@" + std::to_string(*recorded.version);
  }
  change->change_id = std::move(key);
  return Status::Ok();
}

void SyncServerCore::Operation::UseResolver(const RequestContext& context) {
  resolver_.exchange = context.resolver.get();
  if (context.resolver)
    ValidateVerdicts(session_.parser(), s_.options_.limits.json, context.resolver.get());
}

Result<std::optional<std::string>> SyncServerCore::Operation::StateAt(const std::string& user_id,
                                                                      std::string_view entity_type,
                                                                      std::string_view entity_id,
                                                                      int64_t version) {
  Result<SqlQuery*> stmt = session_.Cached(kEntityHistory);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, entity_type, entity_id, version);
  HistoryFold fold;
  for (;;) {
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    const ChangeType type = ParseChangeType(scope->Text(0)).value_or(ChangeType::kUpdated);
    DS_RETURN_IF_ERROR(fold.Add(scratch(), type, scope->OptionalText(1)));
  }
  return fold.state();
}

Result<std::vector<ServerChange>> SyncServerCore::Operation::ServerChangesSince(
    const std::string& user_id, const std::string& device_id, const ChangeInput& change) {
  std::vector<ServerChange> changes;
  Result<SqlQuery*> stmt = session_.Cached(kChangesSince);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, change.entity_type, change.entity_id, *change.base_version, device_id);
  for (;;) {
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    ServerChange server_change;
    server_change.type = ParseChangeType(scope->Text(0)).value_or(ChangeType::kUpdated);
    server_change.data = scope->OptionalText(1);
    server_change.client_timestamp = scope->Int(2);
    changes.push_back(std::move(server_change));
  }
  return changes;
}

Status SyncServerCore::Operation::AskResolver(const std::string& user_id,
                                              const std::string& device_id,
                                              const ChangeInput& change, const EntityRow& entity) {
  Result<std::optional<std::string>> proposed =
      DocumentAfter(scratch(), change.type, change.data, entity);
  if (!proposed.ok()) return proposed.status();
  std::optional<std::string> base;
  if (change.base_version) {
    Result<std::optional<std::string>> at =
        StateAt(user_id, change.entity_type, change.entity_id, *change.base_version);
    if (!at.ok()) return at.status();
    base = std::move(at).value();
  }
  const std::optional<std::string> server =
      entity.found && !entity.deleted ? entity.data : std::nullopt;
  resolver_contexts_.append(resolver_contexts_.empty() ? "[" : ",");
  AppendResolverContext({change, device_id, server, entity.version, proposed.value(), base},
                        &resolver_contexts_);
  return Status::Ok();
}

Result<int64_t> SyncServerCore::Operation::OpenManualConflict(const std::string& user_id,
                                                              const std::string& device_id,
                                                              const ChangeInput& change,
                                                              const EntityRow& entity) {
  Result<SqlQuery*> stmt = session_.Cached(kInsertConflict);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, *change.change_id, device_id, change.entity_type, change.entity_id,
                 ChangeTypeName(change.type), change.data, change.base_version, *change.timestamp,
                 entity.version, s_.clock_->NowMs());
  Result<bool> inserted = scope->Step();
  if (!inserted.ok()) return inserted.status();
  return scope->Int(0);
}

Status SyncServerCore::Operation::ProcessChange(const std::string& user_id,
                                                const std::string& device_id,
                                                const ChangeInput& input, size_t index,
                                                std::vector<Outcome>* outcomes) {
  ChangeInput change = input;
  if (!change.timestamp) change.timestamp = s_.clock_->NowMs();
  if (content_addressed_ids_) DS_RETURN_IF_ERROR(RekeyRevert(user_id, &change));
  const std::string fingerprint = ChangeFingerprint(change);
  Outcome outcome;
  outcome.change_id = *change.change_id;
  outcome.entity_type = change.entity_type;
  outcome.entity_id = change.entity_id;
  outcome.action = ActionName(change.type);

  // Idempotency: a changeId seen before returns its recorded outcome.
  Result<std::optional<std::string>> recorded =
      FindRecordedOutcome(user_id, *change.change_id, &outcome);
  if (!recorded.ok()) return recorded.status();
  if (recorded.value()) {
    if (*recorded.value() != fingerprint) {
      return Status::Conflict("The changeId \"" + *change.change_id + "\" of changes[" +
                              std::to_string(index) +
                              "].changeId was used before for a different change");
    }
    outcomes->push_back(std::move(outcome));
    return Status::Ok();
  }

  // After the idempotency check: a replay compares the change as it was sent.
  change.timestamp =
      AdmittedTimestamp(*change.timestamp, s_.clock_->NowMs(), s_.options_.max_clock_skew_ms);

  Result<EntityRow> loaded = LoadEntity(user_id, change.entity_type, change.entity_id);
  if (!loaded.ok()) return loaded.status();
  const EntityRow& entity = loaded.value();
  const int64_t tolerance = s_.options_.tolerance_ms;

  if (change.type == ChangeType::kUpdated && !entity.found) {
    outcome.kind = Outcome::Kind::kError;
    outcome.error_code = "NOT_FOUND";
    outcome.error_message = "UPDATED of " + change.entity_type + "/" + change.entity_id +
                            ", which the server does not have (send CREATED first)";
    // Not recorded: nothing was applied, and a retry after the cause is gone must be judged again.
    outcomes->push_back(std::move(outcome));
    return Status::Ok();
  }
  if (change.type == ChangeType::kCreated && entity.found && !entity.deleted)
    outcome.action = "UPDATE";

  std::vector<ServerChange> server_changes;
  if (NeedsServerChanges(change, entity, device_id)) {
    Result<std::vector<ServerChange>> since = ServerChangesSince(user_id, device_id, change);
    if (!since.ok()) return since.status();
    server_changes = std::move(since).value();
  }
  const ConflictCheck check = DetectConflict(change, entity, device_id, server_changes, tolerance);
  outcome.reason = check.reason;
  bool apply = true;
  if (check.conflict) {
    const ConflictStrategy strategy = StrategyFor(change.entity_type);
    const ChangeInput sent = change;  // what a manual conflict and the resolver are shown
    Result<ConflictDecision> decided = DecideConflict(scratch(), strategy, &change, entity,
                                                      server_changes, check, resolver_, tolerance);
    if (!decided.ok()) return decided.status();
    const ConflictDecision& decision = decided.value();
    // Nothing of it is applied or recorded until the resolver has spoken.
    if (decision.ask_resolver) return AskResolver(user_id, device_id, sent, entity);
    outcome.kind = Outcome::Kind::kConflict;
    outcome.strategy = ConflictStrategyName(strategy);
    outcome.winner = decision.winner;
    outcome.reason += decision.reason_note;
    apply = decision.apply;
    if (decision.winner == "manual") {  // kept open until resolveConflict()
      Result<int64_t> id = OpenManualConflict(user_id, device_id, sent, entity);
      if (!id.ok()) return id.status();
      outcome.conflict_id = id.value();
    }
  }
  if (apply) {
    Result<int64_t> version = Write(user_id, device_id, change, change.data, entity,
                                    check.conflict ? outcome.strategy + ":" + outcome.winner : "");
    if (!version.ok() && version.status().code() == StatusCode::kLimitExceeded) {
      // This change alone is refused; nothing of it is stored and the others go on. Not
      // recorded, like any error: a retry after the entity shrank is judged again.
      Outcome refused;
      refused.kind = Outcome::Kind::kError;
      refused.change_id = outcome.change_id;
      refused.entity_type = outcome.entity_type;
      refused.entity_id = outcome.entity_id;
      refused.action = outcome.action;
      refused.error_code = "LIMIT_EXCEEDED";
      refused.error_message = version.status().message();
      outcomes->push_back(std::move(refused));
      return Status::Ok();
    }
    if (!version.ok()) return version.status();
    outcome.version = version.value();
  }
  DS_RETURN_IF_ERROR(RecordOutcome(user_id, fingerprint, outcome));
  outcomes->push_back(std::move(outcome));
  return Status::Ok();
}

Status SyncServerCore::Operation::PushChanges(const std::string& user_id,
                                              const std::string& device_id,
                                              const std::vector<ChangeInput>& changes,
                                              std::vector<Outcome>* outcomes) {
  for (size_t i = 0; i < changes.size(); ++i) {
    DS_RETURN_IF_ERROR(ProcessChange(user_id, device_id, changes[i], i, outcomes));
  }
  DS_RETURN_IF_ERROR(FlushCounter());
  if (changes.empty()) return Status::Ok();  // a pull-only request is not a push
  int64_t applied = 0, conflicts = 0;
  for (const Outcome& outcome : *outcomes) {
    if (outcome.replayed) continue;  // counted when it first happened
    if (outcome.version) ++applied;
    if (outcome.kind == Outcome::Kind::kConflict) ++conflicts;
  }
  return session_.Run(kTouchDevicePush, user_id, device_id, s_.clock_->NowMs(), applied, conflicts);
}

Status SyncServerCore::Operation::TouchDevicePull(const std::string& user_id,
                                                  const std::string& device_id,
                                                  int64_t seen_version) {
  return session_.Run(kTouchDevicePull, user_id, device_id, s_.clock_->NowMs(), seen_version);
}

Status SyncServerCore::Operation::LoadOpenConflict(const std::string& user_id, int64_t conflict_id,
                                                   ChangeInput* change, std::string* device_id) {
  Result<SqlQuery*> stmt = session_.Cached(kLoadConflict);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, conflict_id);
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  if (!row.value())
    return Status::NotFound("No open conflict has id " + std::to_string(conflict_id));
  change->change_id = std::string(scope->Text(0));
  *device_id = scope->OptionalText(1).value_or("");
  change->entity_type = std::string(scope->Text(2));
  change->entity_id = std::string(scope->Text(3));
  change->type = ParseChangeType(scope->Text(4)).value_or(ChangeType::kUpdated);
  change->data = scope->OptionalText(5);
  change->base_version = scope->OptionalInt(6);
  change->timestamp = scope->Int(7);
  return Status::Ok();
}

Status SyncServerCore::Operation::CloseConflict(const std::string& user_id, int64_t conflict_id,
                                                const std::string& use) {
  return session_.Run(kCloseConflict, user_id, conflict_id, use, s_.clock_->NowMs());
}

Status SyncServerCore::Operation::AppendDeviceStatus(const std::string& user_id,
                                                     const std::string& device_id,
                                                     std::string* out) {
  Result<SqlQuery*> stmt = session_.Cached(kDeviceStatus);
  if (!stmt.ok()) return stmt.status();
  JsonObjectWriter status(out);
  status.String("deviceId", device_id);
  {
    SqlQuery::Scope scope(*stmt.value());
    scope->BindAll(user_id, device_id);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value())
      return Status::NotFound("No device \"" + device_id + "\" has synced for this user");
    status.OptionalInt("lastPushAt", scope->OptionalInt(0))
        .OptionalInt("lastPullAt", scope->OptionalInt(1))
        .Int("changesPushed", scope->Int(2))
        .Int("conflictsReported", scope->Int(3))
        .Int("lastSeenVersion", scope->Int(4));
  }
  Result<int64_t> open = OpenConflictCount(user_id);
  if (!open.ok()) return open.status();
  status.Int("openConflicts", open.value());
  Result<std::pair<int64_t, int64_t>> latest = UserVersion(user_id);
  if (!latest.ok()) return latest.status();
  status.Int("latestServerVersion", latest.value().first).Close();
  return Status::Ok();
}

Result<int64_t> SyncServerCore::Operation::OpenConflictCount(const std::string& user_id) {
  Result<SqlQuery*> stmt = session_.Cached(kOpenConflictCount);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id);
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  return scope->Int(0);
}

Status SyncServerCore::Operation::AppendOpenConflicts(const std::string& user_id, int64_t after,
                                                      std::string* out) {
  Result<SqlQuery*> stmt = session_.Cached(kOpenConflicts);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, after);
  const size_t start = out->size();
  out->push_back('[');
  for (;;) {
    const size_t listed = out->size() - start;
    if (listed > 1 && listed > s_.options_.limits.max_response_bytes) break;
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    if (listed > 1) out->push_back(',');
    OpenConflict conflict;
    conflict.id = scope->Int(0);
    conflict.change_id = scope->Text(1);
    conflict.device_id = scope->OptionalView(2);
    conflict.entity_type = scope->Text(3);
    conflict.entity_id = scope->Text(4);
    conflict.type = scope->Text(5);
    conflict.client_data = scope->OptionalView(6);
    conflict.base_version = scope->OptionalInt(7);
    conflict.client_timestamp = scope->Int(8);
    conflict.created_at = scope->Int(9);
    conflict.server_version = scope->OptionalInt(12);
    if (conflict.server_version && scope->Int(11) == 0)
      conflict.server_data = scope->OptionalView(10);
    AppendOpenConflict(conflict, out);
  }
  out->push_back(']');
  return Status::Ok();
}

Status SyncServerCore::Operation::AppendCurrentState(const std::string& user_id,
                                                     const Outcome& outcome,
                                                     ServerDataBudget& budget, std::string* out) {
  Result<EntityRow> entity = LoadEntity(user_id, outcome.entity_type, outcome.entity_id);
  if (!entity.ok()) return entity.status();
  const EntityRow& now = entity.value();
  AppendServerState(outcome.entity_type, outcome.entity_id,
                    now.found ? std::optional<int64_t>(now.version) : std::nullopt,
                    now.found && !now.deleted ? now.data : std::nullopt, budget, out);
  return Status::Ok();
}

Status SyncServerCore::Operation::AppendOutcomes(const std::string& user_id,
                                                 const std::vector<Outcome>& outcomes,
                                                 const OutcomeShape& shape, std::string* out) {
  ServerDataBudget budget(s_.options_.limits.max_response_bytes);
  const struct {
    const char* list;
    const std::vector<OutcomeKey>& keys;
    bool (*listed)(const Outcome&);
  } lists[] = {
      {"\"applied\":[", shape.applied, [](const Outcome& o) { return o.version.has_value(); }},
      {"],\"conflicts\":[", shape.conflicts,
       [](const Outcome& o) { return o.kind == Outcome::Kind::kConflict; }},
      {"],\"errors\":[", shape.errors,
       [](const Outcome& o) { return o.kind == Outcome::Kind::kError; }},
  };
  for (const auto& list : lists) {
    out->append(list.list);
    bool first = true;
    for (const Outcome& outcome : outcomes) {
      if (!list.listed(outcome)) continue;
      if (!first) out->push_back(',');
      first = false;
      out->push_back('{');
      bool first_key = true;
      for (const OutcomeKey& key : list.keys) {
        if (key.field == OutcomeField::kConflictId && !outcome.conflict_id) continue;
        if (key.field == OutcomeField::kServerState) {
          DS_RETURN_IF_ERROR(AppendCurrentState(user_id, outcome, budget, out));
          continue;
        }
        if (!first_key) out->push_back(',');
        first_key = false;
        out->push_back('"');
        out->append(key.name).append("\":");
        AppendOutcomeField(outcome, key.field, out);
      }
      out->push_back('}');
    }
  }
  out->push_back(']');
  return Status::Ok();
}

Status SyncServerCore::Operation::AppendPull(const std::string& user_id,
                                             const std::optional<std::string>& device_id,
                                             int64_t since, int64_t limit, size_t max_bytes,
                                             std::string* out,
                                             std::optional<int64_t> history_head) {
  Result<std::pair<int64_t, int64_t>> latest = UserVersion(user_id);
  if (!latest.ok()) return latest.status();
  const int64_t head = latest.value().first;
  const int64_t known_head = history_head.value_or(head);
  const bool resync = since > known_head;
  if (resync) since = 0;
  Result<SqlQuery*> stmt = session_.Cached(kPullChanges);
  if (!stmt.ok()) return stmt.status();
  int64_t rows = 0, last_version = since;
  bool has_more = false;
  out->append("\"newChanges\":[");
  const size_t page_start = out->size();
  {
    SqlQuery::Scope scope(*stmt.value());
    scope->BindAll(user_id, since, limit + 1);
    for (;;) {
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) break;
      if (rows == limit) {
        has_more = true;
        break;
      }
      const size_t row_start = out->size();
      if (rows > 0) out->push_back(',');
      LoggedChange change;
      change.version = scope->Int(0);
      change.change_id = scope->Text(1);
      change.type = scope->Text(2);
      change.entity_type = scope->Text(3);
      change.entity_id = scope->Text(4);
      change.data = scope->OptionalView(5);
      change.timestamp = scope->Int(6);
      change.device_id = scope->OptionalView(7);
      AppendLoggedChange(change, out);
      if (rows > 0 && out->size() - page_start > max_bytes) {
        out->resize(row_start);  // over the byte budget: this change opens the next page
        has_more = true;
        break;
      }
      ++rows;
      last_version = change.version;
    }
  }
  const int64_t cursor = has_more ? last_version : head;
  out->append("],\"latestServerVersion\":").append(std::to_string(cursor));
  out->append(",\"headVersion\":").append(std::to_string(head));
  out->append(",\"hasMore\":").append(has_more ? "true" : "false");
  if (resync) out->append(",\"resync\":true,\"resyncFrom\":").append(std::to_string(known_head));
  if (device_id) DS_RETURN_IF_ERROR(TouchDevicePull(user_id, *device_id, cursor));
  return Status::Ok();
}

Result<int64_t> SyncServerCore::Operation::AppendEntitiesSince(const std::string& user_id,
                                                               int64_t since,
                                                               const CompatOptions& compat,
                                                               size_t max_bytes, std::string* out,
                                                               bool* has_more) {
  std::map<std::string, std::string> by_type;  // entity type -> records joined with commas
  {
    Result<SqlQuery*> types = session_.Cached(kEntityTypes);
    if (!types.ok()) return types.status();
    SqlQuery::Scope scope(*types.value());
    scope->BindText(1, user_id);
    for (;;) {
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) break;
      by_type.emplace(std::string(scope->Text(0)), std::string());
    }
  }
  // The types an app configured are listed even before the user has any: clients of the older
  // designs loop over each one's array.
  for (const auto& configured : compat.id_fields) by_type.emplace(configured.first, std::string());
  Result<std::pair<int64_t, int64_t>> latest = UserVersion(user_id);
  if (!latest.ok()) return latest.status();
  int64_t next_since = std::max(since, latest.value().second);
  *has_more = false;
  Result<SqlQuery*> stmt = session_.Cached(kEntitiesSince);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, since, kCompatPullLimit + 1);
  int64_t rows = 0;
  int64_t last_included = since;
  size_t record_bytes = 0;
  for (;;) {
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    if (rows == kCompatPullLimit) {
      *has_more = true;
      break;
    }
    ++rows;
    const std::string entity_type(scope->Text(0));
    const int64_t server_timestamp = scope->Int(4);
    Result<std::string> record =
        EncodeCompatRecord(scratch(), compat, entity_type, std::string(scope->Text(1)),
                           scope->OptionalView(2), scope->Int(3) != 0,
                           CompatRecordTimes{server_timestamp, scope->Int(5), s_.options_.max_clock_skew_ms});
    if (!record.ok()) return record.status();
    record_bytes += record.value().size() + 1;
    if (rows > 1 && record_bytes > max_bytes) {
      *has_more = true;
      break;
    }
    std::string& list = by_type[entity_type];
    if (!list.empty()) list.push_back(',');
    list.append(record.value());
    last_included = server_timestamp;
  }
  if (*has_more) next_since = last_included;
  AppendRecordsByType(by_type, out);
  return next_since;
}

}  // namespace deltasync
