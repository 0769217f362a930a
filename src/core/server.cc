#include "core/server.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>

#include "core/change_codec.h"
#include "core/server_codec.h"
#include "core/server_compat_codec.h"
#include "core/server_decisions.h"
#include "core/server_sqlite_store.h"

namespace deltasync {

namespace {

// The queries are written once, in the SQL that SQLite and PostgreSQL both speak (?N parameters,
// ON CONFLICT, IS DISTINCT FROM, no dialect's own functions); each store runs them.
constexpr const char* kFindResult =
    "SELECT fingerprint, outcome, version, conflict_id, reason, strategy, winner, error_code, error_message, action "
    "FROM change_results WHERE user_id = ?1 AND change_id = ?2";
constexpr const char* kInsertResult =
    "INSERT INTO change_results (user_id, change_id, fingerprint, outcome, version, conflict_id, reason, "
    "strategy, winner, error_code, error_message, entity_type, entity_id, action) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
    "ON CONFLICT (user_id, change_id) DO UPDATE SET fingerprint = excluded.fingerprint, outcome = excluded.outcome, "
    "version = excluded.version, conflict_id = excluded.conflict_id, reason = excluded.reason, "
    "strategy = excluded.strategy, winner = excluded.winner, error_code = excluded.error_code, "
    "error_message = excluded.error_message, entity_type = excluded.entity_type, entity_id = excluded.entity_id, "
    "action = excluded.action";
constexpr const char* kLoadEntity =
    "SELECT data, deleted, version, device_id, client_timestamp FROM entities "
    "WHERE user_id = ?1 AND entity_type = ?2 AND entity_id = ?3";
// An entity's history up to a version, to rebuild the state a change was based on.
constexpr const char* kEntityHistory =
    "SELECT change_type, change_data FROM entity_changes WHERE user_id = ?1 AND entity_type = ?2 AND entity_id = ?3 "
    "AND version <= ?4 ORDER BY version";
constexpr const char* kChangesSince =
    "SELECT change_type, change_data, client_timestamp FROM entity_changes "
    "WHERE user_id = ?1 AND entity_type = ?2 AND entity_id = ?3 AND version > ?4 AND device_id IS DISTINCT FROM ?5 "
    "ORDER BY version";
constexpr const char* kSaveUserVersion =
    "INSERT INTO user_versions (user_id, version, last_server_timestamp) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, "
    "last_server_timestamp = excluded.last_server_timestamp";
constexpr const char* kUserVersion = "SELECT version, last_server_timestamp FROM user_versions WHERE user_id = ?1";
constexpr const char* kInsertChange =
    "INSERT INTO entity_changes (user_id, version, change_id, device_id, change_type, entity_type, entity_id, "
    "change_data, base_version, client_timestamp, server_timestamp, resolution) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr const char* kUpsertEntity =
    "INSERT INTO entities (user_id, entity_type, entity_id, data, deleted, version, device_id, client_timestamp, "
    "server_timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT (user_id, entity_type, entity_id) DO UPDATE SET data = excluded.data, deleted = excluded.deleted, "
    "version = excluded.version, device_id = excluded.device_id, client_timestamp = excluded.client_timestamp, "
    "server_timestamp = excluded.server_timestamp";
constexpr const char* kInsertConflict =
    "INSERT INTO conflicts (user_id, change_id, device_id, entity_type, entity_id, change_type, client_data, "
    "base_version, client_timestamp, server_version, created_at, number) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
    "?10, ?11, (SELECT coalesce(max(number), 0) + 1 FROM conflicts WHERE user_id = ?1)) RETURNING number";
constexpr const char* kTouchDevicePush =
    "INSERT INTO devices (user_id, device_id, last_push_at, changes_pushed, conflicts_reported) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, device_id) DO UPDATE SET last_push_at = excluded.last_push_at, "
    "changes_pushed = devices.changes_pushed + excluded.changes_pushed, "
    "conflicts_reported = devices.conflicts_reported + excluded.conflicts_reported";
constexpr const char* kTouchDevicePull =
    "INSERT INTO devices (user_id, device_id, last_pull_at, last_seen_version) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (user_id, device_id) DO UPDATE SET last_pull_at = excluded.last_pull_at, "
    "last_seen_version = CASE WHEN excluded.last_seen_version > devices.last_seen_version "
    "THEN excluded.last_seen_version ELSE devices.last_seen_version END";
constexpr const char* kPullChanges =
    "SELECT version, change_id, change_type, entity_type, entity_id, change_data, client_timestamp, device_id "
    "FROM entity_changes WHERE user_id = ?1 AND version > ?2 ORDER BY version LIMIT ?3";
constexpr const char* kDeviceStatus =
    "SELECT last_push_at, last_pull_at, changes_pushed, conflicts_reported, last_seen_version FROM devices "
    "WHERE user_id = ?1 AND device_id = ?2";
constexpr const char* kOpenConflictCount = "SELECT count(*) FROM conflicts WHERE user_id = ?1 AND status = 'open'";
constexpr const char* kOpenConflicts =
    "SELECT c.number, c.change_id, c.device_id, c.entity_type, c.entity_id, c.change_type, c.client_data, "
    "c.base_version, c.client_timestamp, c.created_at, e.data, e.deleted, e.version FROM conflicts AS c "
    "LEFT JOIN entities AS e ON e.user_id = c.user_id AND e.entity_type = c.entity_type AND e.entity_id = c.entity_id "
    "WHERE c.user_id = ?1 AND c.status = 'open' AND c.number > ?2 ORDER BY c.number";
constexpr const char* kLoadConflict =
    "SELECT change_id, device_id, entity_type, entity_id, change_type, client_data, base_version, client_timestamp "
    "FROM conflicts WHERE user_id = ?1 AND number = ?2 AND status = 'open'";
constexpr const char* kCloseConflict =
    "UPDATE conflicts SET status = 'resolved', resolution = ?3, resolved_at = ?4 WHERE user_id = ?1 AND number = ?2";
constexpr const char* kEntitiesSince =
    "SELECT entity_type, entity_id, data, deleted, server_timestamp FROM entities "
    "WHERE user_id = ?1 AND server_timestamp > ?2 ORDER BY server_timestamp LIMIT ?3";
constexpr const char* kEntityTypes = "SELECT DISTINCT entity_type FROM entities WHERE user_id = ?1 ORDER BY 1";

constexpr int64_t kCompatPullLimit = 1000;

void BindTextOrNull(SqlQuery& query, int index, const std::string& text) {
  if (text.empty()) {
    query.BindNull(index);
  } else {
    query.BindText(index, text);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Impl: one operation on one session of the store. It reads the state a decision needs, asks
// server_decisions.h, writes the outcome, and encodes with server_codec.h.

class SyncServerCore::Impl {
 public:
  Impl(SyncServerCore& server, SqlSession& session) : s_(server), session_(session) {}

  SqlSession& session() { return session_; }
  simdjson::ondemand::parser& scratch() { return session_.scratch_parser(); }

  // What is left of the response byte budget once `used` bytes are written.
  size_t RemainingBudget(size_t used) const {
    const size_t max = s_.options_.limits.max_response_bytes;
    return used >= max ? 0 : max - used;
  }

  ConflictStrategy StrategyFor(const std::string& entity_type) const {
    auto it = s_.options_.per_type.find(entity_type);
    return it == s_.options_.per_type.end() ? s_.options_.conflicts : it->second;
  }

  // ---- state

  Result<EntityRow> LoadEntity(const std::string& user_id, const std::string& entity_type,
                               const std::string& entity_id) {
    Result<SqlQuery*> stmt = session_.Cached(kLoadEntity);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, entity_type);
    scope->BindText(3, entity_id);
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

  // The user's version counter is read once per operation, advanced in memory for each
  // applied change, and written back by FlushCounter() inside the same transaction.
  Result<std::pair<int64_t, int64_t>> NextVersion(const std::string& user_id) {
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

  // Commits the operation's transaction and tells the commit listener when the user's log advanced.
  Status Commit(SessionTransaction& tx) {
    if (advanced_) DS_RETURN_IF_ERROR(session_.AnnounceCommit(counter_user_, counter_version_));
    DS_RETURN_IF_ERROR(tx.Commit());
    if (!advanced_) return Status::Ok();
    s_.NotifyCommit(counter_user_, counter_version_);
    return Status::Ok();
  }

  Status FlushCounter() {
    if (!counter_dirty_) return Status::Ok();
    Result<SqlQuery*> stmt = session_.Cached(kSaveUserVersion);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, counter_user_);
    scope->BindInt(2, counter_version_);
    scope->BindInt(3, counter_timestamp_);
    DS_RETURN_IF_ERROR(scope->Run());
    counter_dirty_ = false;
    advanced_ = true;
    return Status::Ok();
  }

  // (version, last server timestamp) of a user, including changes applied in this operation.
  Result<std::pair<int64_t, int64_t>> UserVersion(const std::string& user_id) {
    if (counter_loaded_ && counter_user_ == user_id) return std::make_pair(counter_version_, counter_timestamp_);
    return StoredUserVersion(user_id);
  }

  Result<std::pair<int64_t, int64_t>> StoredUserVersion(const std::string& user_id) {
    Result<SqlQuery*> stmt = session_.Cached(kUserVersion);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) return std::make_pair(int64_t{0}, int64_t{0});
    return std::make_pair(scope->Int(0), scope->Int(1));
  }

  // The outcome recorded for a changeId, into `outcome`, with the fingerprint of the change it
  // was recorded for; nullopt when the changeId is unused.
  Result<std::optional<std::string>> FindRecordedOutcome(const std::string& user_id, const std::string& change_id,
                                                         Outcome* outcome) {
    Result<SqlQuery*> stmt = session_.Cached(kFindResult);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, change_id);
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

  // Applies `data` (for UPDATED: the fields to set) and logs it. Returns the new version.
  Result<int64_t> Write(const std::string& user_id, const std::string& device_id, const ChangeInput& change,
                        const std::optional<std::string>& data, const EntityRow& entity,
                        const std::string& resolution) {
    Result<EntityWrite> planned = PlanWrite(scratch(), change, data, entity, s_.options_.limits.json);
    if (!planned.ok()) return planned.status();
    const EntityWrite& write = planned.value();
    Result<std::pair<int64_t, int64_t>> next = NextVersion(user_id);
    if (!next.ok()) return next.status();
    const int64_t version = next.value().first;
    const int64_t server_timestamp = next.value().second;
    {
      Result<SqlQuery*> stmt = session_.Cached(kInsertChange);
      if (!stmt.ok()) return stmt.status();
      SqlQuery::Scope scope(*stmt.value());
      scope->BindText(1, user_id);
      scope->BindInt(2, version);
      scope->BindText(3, *change.change_id);
      scope->BindText(4, device_id);
      scope->BindText(5, ChangeTypeName(write.logged_type));
      scope->BindText(6, change.entity_type);
      scope->BindText(7, change.entity_id);
      scope->BindOptionalText(8, write.logged_data);  // bound without a copy: `write` outlives Run()
      scope->BindOptionalInt(9, change.base_version);
      scope->BindInt(10, *change.timestamp);
      scope->BindInt(11, server_timestamp);
      BindTextOrNull(*scope, 12, resolution);
      DS_RETURN_IF_ERROR(scope->Run());
    }
    Result<SqlQuery*> stmt = session_.Cached(kUpsertEntity);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, change.entity_type);
    scope->BindText(3, change.entity_id);
    scope->BindOptionalText(4, write.document);
    scope->BindInt(5, write.deleted ? 1 : 0);
    scope->BindInt(6, version);
    scope->BindText(7, device_id);
    scope->BindInt(8, *change.timestamp);
    scope->BindInt(9, server_timestamp);
    DS_RETURN_IF_ERROR(scope->Run());
    return version;
  }

  Status RecordOutcome(const std::string& user_id, const std::string& fingerprint, const Outcome& outcome) {
    Result<SqlQuery*> stmt = session_.Cached(kInsertResult);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, outcome.change_id);
    scope->BindText(3, fingerprint);
    scope->BindText(4, outcome.kind == Outcome::Kind::kApplied    ? "applied"
                       : outcome.kind == Outcome::Kind::kConflict ? "conflict"
                                                                  : "error");
    scope->BindOptionalInt(5, outcome.version);
    scope->BindOptionalInt(6, outcome.conflict_id);
    BindTextOrNull(*scope, 7, outcome.reason);
    BindTextOrNull(*scope, 8, outcome.strategy);
    BindTextOrNull(*scope, 9, outcome.winner);
    BindTextOrNull(*scope, 10, outcome.error_code);
    BindTextOrNull(*scope, 11, outcome.error_message);
    scope->BindText(12, outcome.entity_type);
    scope->BindText(13, outcome.entity_id);
    scope->BindText(14, outcome.action);
    return scope->Run();
  }

  // The compatible routes derive a changeId from the record's content, so a record set back to
  // an earlier value would look like a replay of the push that first sent that value. A
  // content key whose recorded version is not the entity's current one is followed by the
  // key "<key>@<that version>": the first key along that chain that is unused names a new
  // change (a revert), and one whose version is current is a replay. So a revert applies,
  // and a retry of it (same content, nothing in between) is recognised.
  Status RekeyRevert(const std::string& user_id, ChangeInput* change) {
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

  // Set by the compatible routes: their changeIds are derived from the records' content.
  void UseContentAddressedIds() { content_addressed_ids_ = true; }

  // Takes the host's verdicts, checked against the document limits.
  void UseResolver(const RequestContext& context) {
    resolver_.exchange = context.resolver.get();
    if (context.resolver) ValidateVerdicts(session_.parser(), s_.options_.limits.json, context.resolver.get());
  }

  // Whether custom conflicts wait for the host's resolver: then nothing may be committed.
  bool AwaitingResolver() const { return !resolver_contexts_.empty(); }
  std::string ResolverRequest() const { return "{\"resolverContexts\":" + resolver_contexts_ + "]}"; }

  // The entity's state at `version`, rebuilt from its log (nullopt: absent or deleted then).
  Result<std::optional<std::string>> StateAt(const std::string& user_id, const ChangeInput& change,
                                             int64_t version) {
    Result<SqlQuery*> stmt = session_.Cached(kEntityHistory);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, change.entity_type);
    scope->BindText(3, change.entity_id);
    scope->BindInt(4, version);
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

  // What other devices logged for the change's entity after its baseVersion.
  Result<std::vector<ServerChange>> ServerChangesSince(const std::string& user_id, const std::string& device_id,
                                                       const ChangeInput& change) {
    std::vector<ServerChange> changes;
    Result<SqlQuery*> stmt = session_.Cached(kChangesSince);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, change.entity_type);
    scope->BindText(3, change.entity_id);
    scope->BindInt(4, *change.base_version);
    scope->BindText(5, device_id);
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

  // Adds what the host's resolver is given for a custom conflict.
  Status AskResolver(const std::string& user_id, const std::string& device_id, const ChangeInput& change,
                     const EntityRow& entity) {
    Result<std::optional<std::string>> proposed = DocumentAfter(scratch(), change.type, change.data, entity);
    if (!proposed.ok()) return proposed.status();
    std::optional<std::string> base;
    if (change.base_version) {
      Result<std::optional<std::string>> at = StateAt(user_id, change, *change.base_version);
      if (!at.ok()) return at.status();
      base = std::move(at).value();
    }
    const std::optional<std::string> server = entity.found && !entity.deleted ? entity.data : std::nullopt;
    resolver_contexts_.append(resolver_contexts_.empty() ? "[" : ",");
    AppendResolverContext({change, device_id, server, entity.version, proposed.value(), base}, &resolver_contexts_);
    return Status::Ok();
  }

  // Opens a manual conflict for the change. Returns its id.
  Result<int64_t> OpenManualConflict(const std::string& user_id, const std::string& device_id,
                                     const ChangeInput& change, const EntityRow& entity) {
    Result<SqlQuery*> stmt = session_.Cached(kInsertConflict);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, *change.change_id);
    scope->BindText(3, device_id);
    scope->BindText(4, change.entity_type);
    scope->BindText(5, change.entity_id);
    scope->BindText(6, ChangeTypeName(change.type));
    scope->BindOptionalText(7, change.data);
    scope->BindOptionalInt(8, change.base_version);
    scope->BindInt(9, *change.timestamp);
    scope->BindInt(10, entity.version);
    scope->BindInt(11, s_.clock_->NowMs());
    Result<bool> inserted = scope->Step();
    if (!inserted.ok()) return inserted.status();
    return scope->Int(0);
  }

  // Decides and applies one change. A changeId reused with other content is a request-level CONFLICT.
  Status ProcessChange(const std::string& user_id, const std::string& device_id, const ChangeInput& input,
                       size_t index, std::vector<Outcome>* outcomes) {
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
    Result<std::optional<std::string>> recorded = FindRecordedOutcome(user_id, *change.change_id, &outcome);
    if (!recorded.ok()) return recorded.status();
    if (recorded.value()) {
      if (*recorded.value() != fingerprint) {
        return Status::Conflict("The changeId \"" + *change.change_id + "\" of changes[" + std::to_string(index) +
                                "].changeId was used before for a different change");
      }
      outcomes->push_back(std::move(outcome));
      return Status::Ok();
    }

    // After the idempotency check: a replay compares the change as it was sent.
    change.timestamp = AdmittedTimestamp(*change.timestamp, s_.clock_->NowMs(), s_.options_.max_clock_skew_ms);

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
    if (change.type == ChangeType::kCreated && entity.found && !entity.deleted) outcome.action = "UPDATE";

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
      Result<ConflictDecision> decided =
          DecideConflict(scratch(), strategy, &change, entity, server_changes, check, resolver_, tolerance);
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

  // Runs the changes of one request in order; the caller holds a transaction.
  Status PushChanges(const std::string& user_id, const std::string& device_id, const std::vector<ChangeInput>& changes,
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
    Result<SqlQuery*> stmt = session_.Cached(kTouchDevicePush);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, device_id);
    scope->BindInt(3, s_.clock_->NowMs());
    scope->BindInt(4, applied);
    scope->BindInt(5, conflicts);
    return scope->Run();
  }

  Status TouchDevicePull(const std::string& user_id, const std::string& device_id, int64_t seen_version) {
    Result<SqlQuery*> touch = session_.Cached(kTouchDevicePull);
    if (!touch.ok()) return touch.status();
    SqlQuery::Scope scope(*touch.value());
    scope->BindText(1, user_id);
    scope->BindText(2, device_id);
    scope->BindInt(3, s_.clock_->NowMs());
    scope->BindInt(4, seen_version);
    return scope->Run();
  }

  // ---- encoding what the store holds

  // ,"serverVersion":..,"serverData":.. of the outcome's entity as it is now.
  Status AppendCurrentState(const std::string& user_id, const Outcome& outcome, ServerDataBudget& budget,
                            std::string* out) {
    Result<EntityRow> entity = LoadEntity(user_id, outcome.entity_type, outcome.entity_id);
    if (!entity.ok()) return entity.status();
    const EntityRow& now = entity.value();
    AppendServerState(outcome.entity_type, outcome.entity_id, now.found ? std::optional<int64_t>(now.version) : std::nullopt,
                      now.found && !now.deleted ? now.data : std::nullopt, budget, out);
    return Status::Ok();
  }

  // "applied":[...],"conflicts":[...],"errors":[...] of a response: the v2 one or the
  // compatible routes', whose items say the same in other words (OutcomeShape).
  Status AppendOutcomes(const std::string& user_id, const std::vector<Outcome>& outcomes, const OutcomeShape& shape,
                        std::string* out) {
    ServerDataBudget budget(s_.options_.limits.max_response_bytes);
    const struct {
      const char* list;
      const std::vector<OutcomeKey>& keys;
      bool (*listed)(const Outcome&);
    } lists[] = {
        {"\"applied\":[", shape.applied, [](const Outcome& o) { return o.version.has_value(); }},
        {"],\"conflicts\":[", shape.conflicts, [](const Outcome& o) { return o.kind == Outcome::Kind::kConflict; }},
        {"],\"errors\":[", shape.errors, [](const Outcome& o) { return o.kind == Outcome::Kind::kError; }},
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

  // "newChanges":[...],"latestServerVersion":n,"headVersion":n,"hasMore":b[,"resync":true]
  // At most `limit` changes and, past the first, at most `max_bytes` of them.
  // latestServerVersion is where this page brings the device (its next cursor), headVersion
  // the user's newest version. A cursor ahead of the head means the database went back in
  // time (a restored backup, a lost WAL): the page then starts from 0 and says "resync".
  // `history_head`: the head before this request's own pushes (they must not hide a cursor
  // that is ahead of the server's history); the head now when absent.
  Status AppendPull(const std::string& user_id, const std::optional<std::string>& device_id, int64_t since,
                    int64_t limit, size_t max_bytes, std::string* out, std::optional<int64_t> history_head = {}) {
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
      scope->BindText(1, user_id);
      scope->BindInt(2, since);
      scope->BindInt(3, limit + 1);
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
        if (!scope->IsNull(5)) change.data = scope->Text(5);
        change.timestamp = scope->Int(6);
        if (!scope->IsNull(7)) change.device_id = scope->Text(7);
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

  // "changes"/"entities": {entityType: [records]} of entities changed after `since` (server time),
  // at most kCompatPullLimit of them and, past the first, at most `max_bytes` of records.
  // Returns the time to send as the next `since` (server times are unique per user, so paging
  // by them neither skips nor repeats a record).
  Result<int64_t> AppendEntitiesSince(const std::string& user_id, int64_t since, const CompatOptions& compat,
                                      size_t max_bytes, std::string* out, bool* has_more) {
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
    Result<std::pair<int64_t, int64_t>> latest = UserVersion(user_id);
    if (!latest.ok()) return latest.status();
    int64_t next_since = std::max(since, latest.value().second);
    *has_more = false;
    Result<SqlQuery*> stmt = session_.Cached(kEntitiesSince);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindInt(2, since);
    scope->BindInt(3, kCompatPullLimit + 1);
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
                             scope->IsNull(2) ? std::nullopt : std::optional<std::string_view>(scope->Text(2)),
                             scope->Int(3) != 0, server_timestamp);
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

 private:
  SyncServerCore& s_;
  SqlSession& session_;
  std::string counter_user_;
  int64_t counter_version_ = 0;
  int64_t counter_timestamp_ = 0;
  bool counter_loaded_ = false;
  bool counter_dirty_ = false;
  bool content_addressed_ids_ = false;
  bool advanced_ = false;  // the user's version counter was written: the log advanced
  ResolverState resolver_;
  std::string resolver_contexts_;  // "[{...},...", what the host's resolver is asked
};

// ---------------------------------------------------------------------------------------------

SyncServerCore::SyncServerCore(ServerOptions options, std::shared_ptr<Clock> clock)
    : options_(std::move(options)), clock_(std::move(clock)) {}

Result<std::unique_ptr<SyncServerCore>> SyncServerCore::Open(const ServerOptions& options,
                                                             std::shared_ptr<Clock> clock) {
  std::unique_ptr<SyncServerCore> server(new SyncServerCore(options, std::move(clock)));
  Result<std::unique_ptr<ServerStore>> store = Status::Ok();
  if (options.postgres) {
    store = OpenPostgresServerStore(*options.postgres);
  } else {
    DatabaseOptions db_options;
    db_options.durability = options.durability;
    db_options.busy_timeout_ms = options.busy_timeout_ms;
    db_options.crash_at_commit = options.crash_at_commit;
    store = OpenSqliteServerStore(options.path, db_options);
  }
  if (!store.ok()) return store.status();
  server->store_ = std::move(store).value();
  return server;
}

void SyncServerCore::SetCommitListener(CommitListener listener) {
  std::lock_guard<std::mutex> lock(listener_mutex_);
  commit_listener_ = std::move(listener);
  if (commit_listener_ && !listening_) {
    listening_ = true;
    store_->ListenForOtherProcesses(
        [this](const std::string& user_id, int64_t head_version) { NotifyCommit(user_id, head_version); });
  }
}

void SyncServerCore::NotifyCommit(const std::string& user_id, int64_t head_version) {
  std::lock_guard<std::mutex> lock(listener_mutex_);
  if (commit_listener_) commit_listener_(user_id, head_version);
}

template <typename Operation>
Result<std::string> SyncServerCore::WithSession(Operation operation) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    Result<std::string> result = Status::Ok();
    {
      Result<SessionLease> lease = store_->Acquire();
      if (!lease.ok()) {
        result = lease.status();
      } else {
        Impl impl(*this, lease.value().session());
        result = operation(impl);
      }
    }
    if (result.ok() || result.status().code() != StatusCode::kUnavailable || attempt == kAttempts) return result;
  }
}

Result<std::string> SyncServerCore::Sync(const std::string& user_id, const std::string& request,
                                         const RequestContext& context) {
  return Exchange(user_id, request, context, /*pull=*/true);
}

Result<std::string> SyncServerCore::Push(const std::string& user_id, const std::string& request,
                                         const RequestContext& context) {
  return Exchange(user_id, request, context, /*pull=*/false);
}

Result<std::string> SyncServerCore::Exchange(const std::string& user_id, const std::string& request,
                                             const RequestContext& context, bool pull) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    PushRequest push;
    DS_RETURN_IF_ERROR(DecodePushRequest(impl.session().parser(), request, pull, context, options_.limits, &push));
    SessionTransaction tx(impl.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    Result<std::pair<int64_t, int64_t>> before = impl.UserVersion(user_id);
    if (!before.ok()) return before.status();
    std::vector<Outcome> outcomes;
    impl.UseResolver(context);
    DS_RETURN_IF_ERROR(impl.PushChanges(user_id, push.device_id, push.changes, &outcomes));
    if (impl.AwaitingResolver()) return impl.ResolverRequest();  // rolled back: nothing applied
    std::string out = "{";
    DS_RETURN_IF_ERROR(impl.AppendOutcomes(user_id, outcomes, V2Outcomes(), &out));
    out.push_back(',');
    if (pull) {
      DS_RETURN_IF_ERROR(impl.AppendPull(user_id, push.device_id, push.last_known_version,
                                         push.limit.value_or(static_cast<int64_t>(options_.limits.default_pull_limit)),
                                         impl.RemainingBudget(out.size()), &out, before.value().first));
    } else {
      Result<std::pair<int64_t, int64_t>> latest = impl.UserVersion(user_id);
      if (!latest.ok()) return latest.status();
      out.append("\"latestServerVersion\":").append(std::to_string(latest.value().first));
    }
    out.push_back('}');
    DS_RETURN_IF_ERROR(impl.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::Pull(const std::string& user_id, const std::optional<std::string>& device_id,
                                         int64_t since, std::optional<int64_t> limit) {
  if (since < 0) return ExpectedError("a non-negative integer", "since", std::to_string(since) + " of type number");
  const int64_t max_limit = static_cast<int64_t>(options_.limits.max_pull_limit);
  if (limit && (*limit < 1 || *limit > max_limit)) {
    return ExpectedError("an integer from 1 to " + std::to_string(max_limit), "limit",
                         std::to_string(*limit) + " of type number");
  }
  return WithSession([&](Impl& impl) -> Result<std::string> {
    SessionTransaction tx(impl.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::string out = "{";
    DS_RETURN_IF_ERROR(impl.AppendPull(user_id, device_id, since,
                                       limit.value_or(static_cast<int64_t>(options_.limits.default_pull_limit)),
                                       options_.limits.max_response_bytes, &out));
    out.push_back('}');
    DS_RETURN_IF_ERROR(impl.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::DeviceStatus(const std::string& user_id, const std::string& device_id) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    std::string out = "{\"deviceId\":";
    AppendJsonString(&out, device_id);
    Result<SqlQuery*> stmt = impl.session().Cached(kDeviceStatus);
    if (!stmt.ok()) return stmt.status();
    {
      SqlQuery::Scope scope(*stmt.value());
      scope->BindText(1, user_id);
      scope->BindText(2, device_id);
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) return Status::NotFound("No device \"" + device_id + "\" has synced for this user");
      auto time_or_null = [&](int column) {
        return scope->IsNull(column) ? std::string("null") : std::to_string(scope->Int(column));
      };
      out += ",\"lastPushAt\":" + time_or_null(0) + ",\"lastPullAt\":" + time_or_null(1) +
             ",\"changesPushed\":" + std::to_string(scope->Int(2)) +
             ",\"conflictsReported\":" + std::to_string(scope->Int(3)) +
             ",\"lastSeenVersion\":" + std::to_string(scope->Int(4));
    }
    Result<SqlQuery*> count = impl.session().Cached(kOpenConflictCount);
    if (!count.ok()) return count.status();
    {
      SqlQuery::Scope scope(*count.value());
      scope->BindText(1, user_id);
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      out += ",\"openConflicts\":" + std::to_string(scope->Int(0));
    }
    Result<std::pair<int64_t, int64_t>> latest = impl.UserVersion(user_id);
    if (!latest.ok()) return latest.status();
    out += ",\"latestServerVersion\":" + std::to_string(latest.value().first) + "}";
    return out;
  });
}

Result<std::string> SyncServerCore::Conflicts(const std::string& user_id, int64_t after) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    Result<SqlQuery*> stmt = impl.session().Cached(kOpenConflicts);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindInt(2, after);
    std::string out = "[";
    for (;;) {
      // Past the response budget the list stops (one conflict always goes): the caller asks
      // again after the last id it got.
      if (out.size() > 1 && out.size() > options_.limits.max_response_bytes) break;
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) break;
      if (out.size() > 1) out.push_back(',');
      auto optional_text = [&](int column) {
        return scope->IsNull(column) ? std::nullopt : std::optional<std::string_view>(scope->Text(column));
      };
      OpenConflict conflict;
      conflict.id = scope->Int(0);
      conflict.change_id = scope->Text(1);
      conflict.device_id = optional_text(2);
      conflict.entity_type = scope->Text(3);
      conflict.entity_id = scope->Text(4);
      conflict.type = scope->Text(5);
      conflict.client_data = optional_text(6);
      conflict.base_version = scope->OptionalInt(7);
      conflict.client_timestamp = scope->Int(8);
      conflict.created_at = scope->Int(9);
      conflict.server_version = scope->OptionalInt(12);
      if (conflict.server_version && scope->Int(11) == 0) conflict.server_data = optional_text(10);
      AppendOpenConflict(conflict, &out);
    }
    out.push_back(']');
    return out;
  });
}

Result<std::string> SyncServerCore::ResolveConflict(const std::string& user_id, int64_t conflict_id,
                                                    const std::string& resolution) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    Resolution parsed;
    DS_RETURN_IF_ERROR(ParseResolution(impl.session().parser(), resolution, options_.limits, &parsed));
    return Resolve(impl, user_id, conflict_id, parsed);
  });
}

Result<std::string> SyncServerCore::Resolve(Impl& impl, const std::string& user_id, int64_t conflict_id,
                                            const Resolution& resolution) {
  const std::string& use = resolution.use;
  SessionTransaction tx(impl.session(), user_id);
  DS_RETURN_IF_ERROR(tx.status());
  ChangeInput change;
  std::string device_id;
  {
    Result<SqlQuery*> stmt = impl.session().Cached(kLoadConflict);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindInt(2, conflict_id);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) return Status::NotFound("No open conflict has id " + std::to_string(conflict_id));
    change.change_id = std::string(scope->Text(0));
    device_id = scope->OptionalText(1).value_or("");
    change.entity_type = std::string(scope->Text(2));
    change.entity_id = std::string(scope->Text(3));
    change.type = ParseChangeType(scope->Text(4)).value_or(ChangeType::kUpdated);
    change.data = scope->OptionalText(5);
    change.base_version = scope->OptionalInt(6);
    change.timestamp = scope->Int(7);
  }
  Result<EntityRow> entity = impl.LoadEntity(user_id, change.entity_type, change.entity_id);
  if (!entity.ok()) return entity.status();
  std::optional<int64_t> version;
  if (use != "server") {
    DS_RETURN_IF_ERROR(PlanResolution(impl.scratch(), use, resolution.data, entity.value(), &change));
    change.timestamp = clock_->NowMs();
    Result<int64_t> applied = impl.Write(user_id, device_id, change, change.data, entity.value(), "manual:" + use);
    if (!applied.ok()) return applied.status();
    version = applied.value();
    DS_RETURN_IF_ERROR(impl.FlushCounter());
  }
  {
    Result<SqlQuery*> stmt = impl.session().Cached(kCloseConflict);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindInt(2, conflict_id);
    scope->BindText(3, use);
    scope->BindInt(4, clock_->NowMs());
    DS_RETURN_IF_ERROR(scope->Run());
  }
  // A replay of the original change now reports how it was settled.
  {
    Outcome recorded;
    Result<std::optional<std::string>> fingerprint = impl.FindRecordedOutcome(user_id, *change.change_id, &recorded);
    if (!fingerprint.ok()) return fingerprint.status();
    if (fingerprint.value()) {
      Outcome outcome;
      outcome.kind = version ? Outcome::Kind::kApplied : Outcome::Kind::kConflict;
      outcome.change_id = *change.change_id;
      outcome.entity_type = change.entity_type;
      outcome.entity_id = change.entity_id;
      outcome.action = ActionName(change.type);
      outcome.version = version;
      outcome.conflict_id = conflict_id;
      outcome.strategy = "manual";
      outcome.winner = use;
      outcome.reason = "settled by resolveConflict";
      DS_RETURN_IF_ERROR(impl.RecordOutcome(user_id, *fingerprint.value(), outcome));
    }
  }
  Result<EntityRow> after = impl.LoadEntity(user_id, change.entity_type, change.entity_id);
  if (!after.ok()) return after.status();
  std::string out = "{\"conflictId\":" + std::to_string(conflict_id) + ",\"resolution\":";
  AppendJsonString(&out, use);
  out += ",\"version\":" + (version ? std::to_string(*version) : std::string("null"));
  out += ",\"entityType\":";
  AppendJsonString(&out, change.entity_type);
  out += ",\"entityId\":";
  AppendJsonString(&out, change.entity_id);
  out += ",\"serverVersion\":" + (after.value().found ? std::to_string(after.value().version) : std::string("null"));
  out += ",\"serverData\":";
  AppendNullable(&out, after.value().found && !after.value().deleted ? after.value().data : std::nullopt);
  out.push_back('}');
  DS_RETURN_IF_ERROR(impl.Commit(tx));
  return out;
}

Result<std::string> SyncServerCore::ImportSnapshot(const std::string& user_id, const std::string& state,
                                                   const CompatOptions& compat) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    std::vector<ChangeInput> changes;
    DS_RETURN_IF_ERROR(DecodeSnapshot(impl.session().parser(), impl.scratch(), state, compat, options_.limits,
                                      clock_->NowMs(), &changes));
    SessionTransaction tx(impl.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    int64_t imported = 0, skipped = 0;
    for (size_t i = 0; i < changes.size(); ++i) {
      std::vector<Outcome> outcomes;
      DS_RETURN_IF_ERROR(impl.ProcessChange(user_id, "snapshot", changes[i], i, &outcomes));
      if (!outcomes.empty() && !outcomes.back().replayed && outcomes.back().kind == Outcome::Kind::kApplied &&
          outcomes.back().version) {
        ++imported;
      } else {
        ++skipped;
      }
    }
    DS_RETURN_IF_ERROR(impl.FlushCounter());
    Result<std::pair<int64_t, int64_t>> latest = impl.UserVersion(user_id);
    if (!latest.ok()) return latest.status();
    DS_RETURN_IF_ERROR(impl.Commit(tx));
    return "{\"imported\":" + std::to_string(imported) + ",\"skipped\":" + std::to_string(skipped) +
           ",\"latestServerVersion\":" + std::to_string(latest.value().first) + "}";
  });
}

Result<std::string> SyncServerCore::CompatPush(const std::string& user_id, const std::string& body,
                                               const CompatOptions& compat, const RequestContext& context) {
  return CompatExchange(user_id, body, compat, context, /*push=*/true, /*pull=*/false);
}

Result<std::string> SyncServerCore::CompatPull(const std::string& user_id, const std::string& body,
                                               const CompatOptions& compat) {
  return CompatExchange(user_id, body, compat, {}, /*push=*/false, /*pull=*/true);
}

Result<std::string> SyncServerCore::CompatFull(const std::string& user_id, const std::string& body,
                                               const CompatOptions& compat, const RequestContext& context) {
  return CompatExchange(user_id, body, compat, context, /*push=*/true, /*pull=*/true);
}

// {"success":true[,"applied":..,"conflicts":..,"errors":..][,"changes":..,"timestamp":..,"hasMore":..
// [,"conflicts":[]],"deviceId":..]}: what /push, /pull and /full answer.
Result<std::string> SyncServerCore::CompatExchange(const std::string& user_id, const std::string& body,
                                                   const CompatOptions& compat, const RequestContext& context,
                                                   bool push, bool pull) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    CompatRequest request;
    DS_RETURN_IF_ERROR(DecodeCompatRequest(impl.session().parser(), impl.scratch(), body, compat, options_.limits,
                                           clock_->NowMs(), push, pull, &request));
    SessionTransaction tx(impl.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::string out = "{\"success\":true";
    if (push) {
      impl.UseContentAddressedIds();
      impl.UseResolver(context);
      std::vector<Outcome> outcomes;
      DS_RETURN_IF_ERROR(impl.PushChanges(user_id, request.device_id, request.changes, &outcomes));
      if (impl.AwaitingResolver()) return impl.ResolverRequest();  // rolled back: nothing applied
      out.push_back(',');
      DS_RETURN_IF_ERROR(impl.AppendOutcomes(user_id, outcomes, CompatOutcomes(), &out));
    }
    if (pull) {
      std::string pulled;
      bool has_more = false;
      Result<int64_t> next = impl.AppendEntitiesSince(user_id, request.since.value_or(0), compat,
                                                      impl.RemainingBudget(out.size()), &pulled, &has_more);
      if (!next.ok()) return next.status();
      Result<std::pair<int64_t, int64_t>> latest = impl.UserVersion(user_id);
      if (!latest.ok()) return latest.status();
      DS_RETURN_IF_ERROR(impl.TouchDevicePull(user_id, request.device_id, latest.value().first));
      out += ",\"changes\":" + pulled + ",\"timestamp\":";
      AppendJsonString(&out, FormatIso8601(next.value()));
      out += ",\"hasMore\":" + std::string(has_more ? "true" : "false");
      if (!push) out += ",\"conflicts\":[]";
      out += ",\"deviceId\":";
      AppendJsonString(&out, request.device_id);
    }
    out.push_back('}');
    DS_RETURN_IF_ERROR(impl.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::CompatChanges(const std::string& user_id, const std::optional<std::string>& since,
                                                  const CompatOptions& compat) {
  std::optional<int64_t> since_ms = int64_t{0};
  if (since) {
    since_ms = ParseIso8601Ms(*since);
    if (!since_ms) return ExpectedError("an ISO 8601 time", "since", "\"" + since->substr(0, 40) + "\" of type string");
  }
  return WithSession([&](Impl& impl) -> Result<std::string> {
    SessionTransaction tx(impl.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::string entities;
    bool has_more = false;
    Result<int64_t> next = impl.AppendEntitiesSince(user_id, *since_ms, compat,
                                                    options_.limits.max_response_bytes, &entities, &has_more);
    if (!next.ok()) return next.status();
    std::string out = "{\"since\":";
    if (since) {
      AppendJsonString(&out, *since);
    } else {
      out += "null";
    }
    out += ",\"updatedAt\":";
    AppendJsonString(&out, FormatIso8601(next.value()));
    out += ",\"hasMore\":" + std::string(has_more ? "true" : "false") + ",\"entities\":" + entities + "}";
    DS_RETURN_IF_ERROR(impl.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::CompatResolve(const std::string& user_id, const std::string& body) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    CompatResolveRequest request;
    DS_RETURN_IF_ERROR(DecodeCompatResolve(impl.session().parser(), body, options_.limits, &request));
    Result<std::string> resolved = Resolve(impl, user_id, request.conflict_id, request.resolution);
    if (!resolved.ok()) return resolved;
    return "{\"success\":true," + resolved.value().substr(1);
  });
}

}  // namespace deltasync
