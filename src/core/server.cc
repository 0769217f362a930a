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

// ---- small helpers

uint64_t Fnv1a(std::string_view text, uint64_t hash) {
  for (const char ch : text) {
    hash ^= static_cast<unsigned char>(ch);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

// 128 bits from two FNV-1a streams with different offsets; identifies content, not secrets.
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

struct EntityRow {
  bool found = false;
  std::optional<std::string> data;
  bool deleted = false;
  int64_t version = 0;
  std::optional<std::string> device_id;
  int64_t client_timestamp = 0;
};

}  // namespace


// ---------------------------------------------------------------------------------------------
// Impl: one operation on one session of the store, with access to the server's options.

class SyncServerCore::Impl {
 public:
  Impl(SyncServerCore& server, SqlSession& session) : s_(server), session_(session) {}

  SqlSession& session() { return session_; }

  // What is left of the response byte budget once `used` bytes are written.
  size_t RemainingBudget(size_t used) const {
    const size_t max = s_.options_.limits.max_response_bytes;
    return used >= max ? 0 : max - used;
  }

  ConflictStrategy StrategyFor(const std::string& entity_type) const {
    auto it = s_.options_.per_type.find(entity_type);
    return it == s_.options_.per_type.end() ? s_.options_.conflicts : it->second;
  }

  // ---- decoding



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

  // The live document a change of `type` with `data` makes of the entity: a CREATED's data, an
  // UPDATED's fields set on the entity's last state, nothing for a DELETED.
  Result<std::optional<std::string>> DocumentAfter(ChangeType type, const std::optional<std::string>& data,
                                                   const EntityRow& entity) {
    if (type == ChangeType::kDeleted) return std::optional<std::string>();
    if (type == ChangeType::kCreated) return data;
    Result<std::string> merged =
        ShallowMergeObjects(session_.scratch_parser(), entity.data ? *entity.data : "{}", data ? *data : "{}");
    if (!merged.ok()) return merged.status();
    return std::optional<std::string>(std::move(merged).value());
  }

  // Applies `data_to_apply` (for UPDATED: the fields to set) and logs it. Returns the new version.
  Result<int64_t> Apply(const std::string& user_id, const std::string& device_id, const ChangeInput& change,
                        const std::optional<std::string>& data_to_apply, const EntityRow& entity,
                        const std::string& resolution) {
    std::optional<std::string> new_data;
    bool deleted = false;
    ChangeType logged_type = change.type;
    std::optional<std::string> logged_data = data_to_apply;
    switch (change.type) {
      case ChangeType::kCreated:
        new_data = data_to_apply;
        break;
      case ChangeType::kUpdated: {
        Result<std::optional<std::string>> merged = DocumentAfter(ChangeType::kUpdated, data_to_apply, entity);
        if (!merged.ok()) return merged.status();
        new_data = std::move(merged).value();
        if (!entity.found || entity.deleted) {
          // Devices that saw the delete have nothing to set these fields on: log the whole revived document.
          logged_type = ChangeType::kCreated;
          logged_data = new_data;
        }
        break;
      }
      case ChangeType::kDeleted:
        new_data = entity.data;  // the last live state, so that an update that wins later can revive it
        deleted = true;
        break;
    }
    // The limit holds for what is stored, not only for what was sent: an UPDATED merged onto
    // the entity may not make it larger than any device could pull. Checked before a version
    // is taken, so versions stay gapless.
    const size_t max_bytes = s_.options_.limits.json.max_document_bytes;
    if (!deleted && new_data && new_data->size() > max_bytes) {
      return Status::LimitExceeded("Applying this change would make " + change.entity_type + "/" + change.entity_id +
                                   " " + std::to_string(new_data->size()) + " bytes, over the limit of " +
                                   std::to_string(max_bytes) + " bytes per document");
    }
    Result<std::pair<int64_t, int64_t>> next = NextVersion(user_id);
    if (!next.ok()) return next.status();
    const int64_t version = next.value().first;
    const int64_t server_timestamp = next.value().second;
    {
      const std::optional<std::string> logged = logged_type == ChangeType::kDeleted ? std::nullopt : logged_data;
      Result<SqlQuery*> stmt = session_.Cached(kInsertChange);
      if (!stmt.ok()) return stmt.status();
      SqlQuery::Scope scope(*stmt.value());
      scope->BindText(1, user_id);
      scope->BindInt(2, version);
      scope->BindText(3, *change.change_id);
      scope->BindText(4, device_id);
      scope->BindText(5, ChangeTypeName(logged_type));
      scope->BindText(6, change.entity_type);
      scope->BindText(7, change.entity_id);
      scope->BindOptionalText(8, logged);  // bound without a copy: `logged` must outlive Run()
      scope->BindOptionalInt(9, change.base_version);
      scope->BindInt(10, *change.timestamp);
      scope->BindInt(11, server_timestamp);
      if (resolution.empty()) {
        scope->BindNull(12);
      } else {
        scope->BindText(12, resolution);
      }
      DS_RETURN_IF_ERROR(scope->Run());
    }
    Result<SqlQuery*> stmt = session_.Cached(kUpsertEntity);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, change.entity_type);
    scope->BindText(3, change.entity_id);
    scope->BindOptionalText(4, new_data);
    scope->BindInt(5, deleted ? 1 : 0);
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
    auto text_or_null = [&](int index, const std::string& text) {
      if (text.empty()) {
        scope->BindNull(index);
      } else {
        scope->BindText(index, text);
      }
    };
    text_or_null(7, outcome.reason);
    text_or_null(8, outcome.strategy);
    text_or_null(9, outcome.winner);
    text_or_null(10, outcome.error_code);
    text_or_null(11, outcome.error_message);
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
      std::optional<int64_t> recorded_version;
      {
        Result<SqlQuery*> stmt = session_.Cached(kFindResult);
        if (!stmt.ok()) return stmt.status();
        SqlQuery::Scope scope(*stmt.value());
        scope->BindText(1, user_id);
        scope->BindText(2, key);
        Result<bool> row = scope->Step();
        if (!row.ok()) return row.status();
        if (!row.value()) break;  // unused: a new change under this key
        recorded_version = scope->OptionalInt(2);
      }
      if (!recorded_version || *recorded_version == current.value().version) break;  // a replay
      key += "@" + std::to_string(*recorded_version);
    }
    change->change_id = std::move(key);
    return Status::Ok();
  }

  // Set by the compatible routes: their changeIds are derived from the records' content.
  void UseContentAddressedIds() { content_addressed_ids_ = true; }

  // Takes the host's verdicts; merged data that is not a document within the limits leaves
  // its conflict for a person instead.
  void UseResolver(const RequestContext& context) {
    resolver_ = context.resolver.get();
    if (!resolver_) return;
    for (auto& [change_id, verdict] : context.resolver->verdicts) {
      if (verdict.use != CustomVerdict::Use::kMerged) continue;
      std::string copy;
      Status valid = Status::InvalidArgument("use \"merged\" came without data");
      if (verdict.data) {
        simdjson::padded_string padded(*verdict.data);
        simdjson::ondemand::document doc;
        simdjson::ondemand::value value;
        simdjson::ondemand::json_type type;
        valid = session_.parser().iterate(padded).get(doc) == simdjson::SUCCESS &&
                        doc.get_value().get(value) == simdjson::SUCCESS &&
                        value.type().get(type) == simdjson::SUCCESS && type == simdjson::ondemand::json_type::object
                    ? CopyValidatedJson(value, 0, s_.options_.limits.json, "data", &copy)
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

  // The host's verdict on a change, if it was given for the entity's current version.
  const CustomVerdict* CurrentVerdict(const std::string& change_id, int64_t entity_version) const {
    if (!resolver_) return nullptr;
    auto found = resolver_->verdicts.find(change_id);
    if (found == resolver_->verdicts.end() || found->second.server_version != entity_version) return nullptr;
    return &found->second;
  }
  // Whether custom conflicts wait for the host's resolver: then nothing may be committed.
  bool AwaitingResolver() const { return !resolver_contexts_.empty(); }
  std::string ResolverRequest() const { return "{\"resolverContexts\":" + resolver_contexts_ + "]}"; }

  // The entity's state at `version`, rebuilt from its log (nullopt: absent or deleted then).
  Result<std::optional<std::string>> StateAt(const std::string& user_id, const std::string& entity_type,
                                             const std::string& entity_id, int64_t version) {
    Result<SqlQuery*> stmt = session_.Cached(kEntityHistory);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindText(1, user_id);
    scope->BindText(2, entity_type);
    scope->BindText(3, entity_id);
    scope->BindInt(4, version);
    std::optional<std::string> state;
    for (;;) {
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) break;
      const std::optional<ChangeType> type = ParseChangeType(scope->Text(0));
      if (type == ChangeType::kDeleted) {
        state.reset();
      } else if (type == ChangeType::kCreated || !state) {
        state = scope->OptionalText(1);
      } else if (!scope->IsNull(1)) {
        Result<std::string> merged = ShallowMergeObjects(session_.scratch_parser(), *state, scope->Text(1));
        if (!merged.ok()) return merged.status();
        state = std::move(merged).value();
      }
    }
    return state;
  }


  // Adds what the host's resolver is given for a custom conflict.
  Status AskResolver(const std::string& user_id, const std::string& device_id, const ChangeInput& change,
                     const EntityRow& entity) {
    Result<std::optional<std::string>> proposed = DocumentAfter(change.type, change.data, entity);
    if (!proposed.ok()) return proposed.status();
    std::optional<std::string> base;
    if (change.base_version) {
      Result<std::optional<std::string>> at = StateAt(user_id, change.entity_type, change.entity_id, *change.base_version);
      if (!at.ok()) return at.status();
      base = std::move(at).value();
    }
    std::string& out = resolver_contexts_;
    out.append(out.empty() ? "[" : ",");
    out.append("{\"changeId\":");
    AppendString(&out, *change.change_id);
    out.append(",\"entityType\":");
    AppendString(&out, change.entity_type);
    out.append(",\"entityId\":");
    AppendString(&out, change.entity_id);
    out.append(",\"server\":");
    AppendNullable(&out, entity.found && !entity.deleted ? entity.data : std::nullopt);
    out.append(",\"client\":");
    AppendNullable(&out, proposed.value());
    out.append(",\"base\":");
    AppendNullable(&out, base);
    out.append(",\"serverVersion\":").append(std::to_string(entity.version));
    out.append(",\"clientChange\":{\"changeId\":");
    AppendString(&out, *change.change_id);
    out.append(",\"type\":");
    AppendString(&out, ChangeTypeName(change.type));
    out.append(",\"data\":");
    AppendNullable(&out, change.type == ChangeType::kDeleted ? std::nullopt : change.data);
    out.append(",\"baseVersion\":");
    out.append(change.base_version ? std::to_string(*change.base_version) : "null");
    out.append(",\"timestamp\":").append(std::to_string(*change.timestamp));
    out.append(",\"deviceId\":");
    AppendString(&out, device_id);
    out.append("}}");
    return Status::Ok();
  }

  // The change that makes the entity `merged` as a whole: an UPDATED of the differing fields
  // (removed ones set to null) on a live entity, else a CREATED.
  Status ToMergedChange(const EntityRow& entity, const std::string& merged, ChangeInput* change) {
    change->type = entity.found && !entity.deleted ? ChangeType::kUpdated : ChangeType::kCreated;
    change->data = merged;
    if (change->type == ChangeType::kUpdated && entity.data) {
      Result<std::string> delta = DeltaWithRemovals(session_.scratch_parser(), merged, *entity.data);
      if (!delta.ok()) return delta.status();
      change->data = std::move(delta).value();
    }
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

    {  // Idempotency: a changeId seen before returns its recorded outcome.
      Result<SqlQuery*> stmt = session_.Cached(kFindResult);
      if (!stmt.ok()) return stmt.status();
      SqlQuery::Scope scope(*stmt.value());
      scope->BindText(1, user_id);
      scope->BindText(2, *change.change_id);
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (row.value()) {
        if (scope->Text(0) != fingerprint) {
          return Status::Conflict("The changeId \"" + *change.change_id + "\" of changes[" + std::to_string(index) +
                                  "].changeId was used before for a different change");
        }
        const std::string_view kind = scope->Text(1);
        outcome.kind = kind == "applied"    ? Outcome::Kind::kApplied
                       : kind == "conflict" ? Outcome::Kind::kConflict
                                            : Outcome::Kind::kError;
        outcome.version = scope->OptionalInt(2);
        outcome.conflict_id = scope->OptionalInt(3);
        outcome.reason = scope->OptionalText(4).value_or("");
        outcome.strategy = scope->OptionalText(5).value_or("");
        outcome.winner = scope->OptionalText(6).value_or("");
        outcome.error_code = scope->OptionalText(7).value_or("");
        outcome.error_message = scope->OptionalText(8).value_or("");
        outcome.action = std::string(scope->Text(9));
        outcome.replayed = true;
        outcomes->push_back(std::move(outcome));
        return Status::Ok();
      }
    }

    // Clock hygiene: a timestamp further ahead of the server's clock than the allowed skew is
    // taken as the time the server received it, so a device with a wrong clock cannot pin
    // an entity against every later edit. (After the idempotency check: a replay compares
    // the change as it was sent.)
    const int64_t received_at = s_.clock_->NowMs();
    if (*change.timestamp > received_at + s_.options_.max_clock_skew_ms) change.timestamp = received_at;

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
    if (change.type == ChangeType::kCreated && entity.found && !entity.deleted) {
      outcome.action = "UPDATE";
    }

    // Conflict detection.
    bool conflict = false;
    std::vector<std::pair<std::optional<std::string>, int64_t>> server_changes;  // (data, timestamp) since base
    bool server_whole_entity = false;  // a CREATED or DELETED by another device since base
    if (entity.found && entity.device_id != std::optional<std::string>(device_id)) {
      if (change.base_version) {
        if (entity.version > *change.base_version) {
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
            if (scope->Text(0) != "UPDATED") server_whole_entity = true;
            server_changes.emplace_back(scope->OptionalText(1), scope->Int(2));
          }
          conflict = !server_changes.empty();
          outcome.reason = "changed on the server after baseVersion " + std::to_string(*change.base_version) +
                           " by another device";
        }
      } else if (entity.client_timestamp + tolerance >= *change.timestamp) {
        conflict = true;
        outcome.reason = "the server's copy is as new as or newer than the change (no baseVersion to compare)";
      }
      if (conflict && entity.deleted && change.type != ChangeType::kDeleted) {
        outcome.reason = "deleted on the server by another device";
      }
    }

    std::optional<std::string> data_to_apply = change.data;
    bool apply = true;
    if (conflict) {
      outcome.kind = Outcome::Kind::kConflict;
      ConflictStrategy strategy = StrategyFor(change.entity_type);
      outcome.strategy = ConflictStrategyName(strategy);
      const bool change_is_newer = *change.timestamp > entity.client_timestamp + tolerance;
      if (strategy == ConflictStrategy::kMerge &&
          (change.type != ChangeType::kUpdated || entity.deleted || server_whole_entity)) {
        strategy = ConflictStrategy::kNewestWins;  // no fields to merge against a create or a delete
      }
      switch (strategy) {
        case ConflictStrategy::kServerWins:
          apply = false;
          outcome.winner = "server";
          break;
        case ConflictStrategy::kClientWins:
          outcome.winner = "client";
          break;
        case ConflictStrategy::kNewestWins:
          apply = change_is_newer;
          outcome.winner = apply ? "client" : "server";
          break;
        case ConflictStrategy::kMerge: {
          // Three-way: fields the server changed since baseVersion (from the log), or all of the
          // server's fields when there is no baseVersion, against the fields this change sets.
          std::map<std::string, int64_t> server_fields;  // field -> newest server timestamp touching it
          if (change.base_version) {
            for (const auto& [data, timestamp] : server_changes) {
              if (!data) continue;
              Result<std::unordered_set<std::string>> keys = ObjectKeys(session_.scratch_parser(), *data);
              if (!keys.ok()) return keys.status();
              for (const std::string& key : keys.value()) {
                int64_t& newest = server_fields[key];
                newest = std::max(newest, timestamp);
              }
            }
          } else if (entity.data) {
            Result<std::unordered_set<std::string>> keys = ObjectKeys(session_.scratch_parser(), *entity.data);
            if (!keys.ok()) return keys.status();
            for (const std::string& key : keys.value()) server_fields[key] = entity.client_timestamp;
          }
          Result<std::unordered_set<std::string>> client_keys = ObjectKeys(session_.scratch_parser(), *change.data);
          if (!client_keys.ok()) return client_keys.status();
          std::unordered_set<std::string> lost;
          for (const std::string& key : client_keys.value()) {
            auto it = server_fields.find(key);
            if (it != server_fields.end() && *change.timestamp <= it->second + tolerance) lost.insert(key);
          }
          if (lost.size() == client_keys.value().size()) {
            apply = false;
            outcome.winner = "server";
          } else {
            outcome.winner = "merged";
            if (!lost.empty()) {
              Result<std::string> kept = ObjectWithoutKeys(session_.scratch_parser(), *change.data, lost);
              if (!kept.ok()) return kept.status();
              data_to_apply = std::move(kept).value();
            }
          }
          break;
        }
        case ConflictStrategy::kCustom: {
          const CustomVerdict* verdict = CurrentVerdict(*change.change_id, entity.version);
          if (!verdict && resolver_ && !resolver_->final_round) {
            // Nothing of it is applied or recorded until the resolver has spoken.
            return AskResolver(user_id, device_id, change, entity);
          }
          const CustomVerdict::Use use = verdict ? verdict->use : CustomVerdict::Use::kManual;
          if (!verdict) {
            outcome.reason += resolver_ ? "; the entity kept changing while the resolver decided"
                                        : "; no resolver was given the conflict";
          } else if (!verdict->note.empty()) {
            outcome.reason += "; " + verdict->note;
          }
          if (use == CustomVerdict::Use::kClient) {
            outcome.winner = "client";
          } else if (use == CustomVerdict::Use::kServer) {
            apply = false;
            outcome.winner = "server";
          } else if (use == CustomVerdict::Use::kMerged) {
            outcome.winner = "merged";
            DS_RETURN_IF_ERROR(ToMergedChange(entity, *verdict->data, &change));
            data_to_apply = change.data;
          } else {
            apply = false;
            outcome.winner = "manual";
          }
          break;
        }
        case ConflictStrategy::kManual:
          apply = false;
          outcome.winner = "manual";
          break;
      }
      if (outcome.winner == "manual") {  // kept open until resolveConflict()
        Result<int64_t> id = OpenManualConflict(user_id, device_id, change, entity);
        if (!id.ok()) return id.status();
        outcome.conflict_id = id.value();
      }
    }
    if (apply) {
      Result<int64_t> version =
          Apply(user_id, device_id, change, data_to_apply, entity, conflict ? outcome.strategy + ":" + outcome.winner : "");
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

  // ---- encoding

  // Which conflicts of one response carry their entity's serverData. An entity's data is sent
  // once per response; past the response's byte budget it is left out, except for the first
  // one, so that a response always settles at least one conflict.
  class ServerDataBudget {
   public:
    explicit ServerDataBudget(size_t max_bytes) : max_bytes_(max_bytes) {}
    // Whether to send `bytes` of data for the entity, given the response's size so far.
    bool Admit(const std::string& entity_type, const std::string& entity_id, size_t bytes, size_t response_size) {
      std::string key = entity_type;
      key.push_back('\0');
      key.append(entity_id);
      if (sent_.count(key) != 0) return false;
      if (!sent_.empty() && response_size + bytes > max_bytes_) return false;
      sent_.insert(std::move(key));
      return true;
    }

   private:
    size_t max_bytes_;
    std::unordered_set<std::string> sent_;
  };

  // ,"serverVersion":n,"serverData":{...}|null, or ,"serverVersion":n,"serverDataOmitted":true
  Status AppendCurrentState(const std::string& user_id, const Outcome& outcome, ServerDataBudget& budget,
                            std::string* out) {
    Result<EntityRow> entity = LoadEntity(user_id, outcome.entity_type, outcome.entity_id);
    if (!entity.ok()) return entity.status();
    out->append(",\"serverVersion\":");
    out->append(entity.value().found ? std::to_string(entity.value().version) : "null");
    const std::optional<std::string>& data =
        entity.value().found && !entity.value().deleted ? entity.value().data : std::nullopt;
    if (!budget.Admit(outcome.entity_type, outcome.entity_id, data ? data->size() : 4, out->size())) {
      out->append(",\"serverDataOmitted\":true");
      return Status::Ok();
    }
    out->append(",\"serverData\":");
    AppendNullable(out, data);
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
          if (key.field == OutcomeField::kServerState) {  // ,"serverVersion":..,"serverData":..
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
        const int64_t version = scope->Int(0);
        out->append("{\"version\":").append(std::to_string(version));
        out->append(",\"changeId\":");
        AppendString(out, scope->Text(1));
        out->append(",\"type\":");
        AppendString(out, scope->Text(2));
        out->append(",\"entityType\":");
        AppendString(out, scope->Text(3));
        out->append(",\"entityId\":");
        AppendString(out, scope->Text(4));
        out->append(",\"data\":");
        out->append(scope->IsNull(5) ? "null" : std::string(scope->Text(5)));
        out->append(",\"timestamp\":").append(std::to_string(scope->Int(6)));
        out->append(",\"deviceId\":");
        if (scope->IsNull(7)) {
          out->append("null");
        } else {
          AppendString(out, scope->Text(7));
        }
        out->push_back('}');
        if (rows > 0 && out->size() - page_start > max_bytes) {
          out->resize(row_start);  // over the byte budget: this change opens the next page
          has_more = true;
          break;
        }
        ++rows;
        last_version = version;
      }
    }
    const int64_t cursor = has_more ? last_version : head;
    out->append("],\"latestServerVersion\":").append(std::to_string(cursor));
    out->append(",\"headVersion\":").append(std::to_string(head));
    out->append(",\"hasMore\":").append(has_more ? "true" : "false");
    if (resync) out->append(",\"resync\":true,\"resyncFrom\":").append(std::to_string(known_head));
    if (device_id) {
      Result<SqlQuery*> touch = session_.Cached(kTouchDevicePull);
      if (!touch.ok()) return touch.status();
      SqlQuery::Scope scope(*touch.value());
      scope->BindText(1, user_id);
      scope->BindText(2, *device_id);
      scope->BindInt(3, s_.clock_->NowMs());
      scope->BindInt(4, cursor);
      DS_RETURN_IF_ERROR(scope->Run());
    }
    return Status::Ok();
  }

  // ---- compatible routes

  Status TouchDevicePull(const std::string& user_id, const std::string& device_id) {
    Result<std::pair<int64_t, int64_t>> latest = UserVersion(user_id);
    if (!latest.ok()) return latest.status();
    Result<SqlQuery*> touch = session_.Cached(kTouchDevicePull);
    if (!touch.ok()) return touch.status();
    SqlQuery::Scope scope(*touch.value());
    scope->BindText(1, user_id);
    scope->BindText(2, device_id);
    scope->BindInt(3, s_.clock_->NowMs());
    scope->BindInt(4, latest.value().first);
    return scope->Run();
  }

  std::string IdFieldFor(const CompatOptions& compat, const std::string& entity_type) {
    auto it = compat.id_fields.find(entity_type);
    return it == compat.id_fields.end() ? std::string() : it->second;
  }

  // Turns {entityType: [records]} into changes. A record's id is its `idField`, else `id`,
  // else `<singular>_id`; its time is updated_at / updatedAt; a truthy deleted flag makes a DELETED.
  Status DecodeRecordsByType(simdjson::ondemand::object by_type, const CompatOptions& compat,
                             const std::string& device_id, const std::string& what, std::vector<ChangeInput>* out) {
    const JsonLimits& limits = s_.options_.limits.json;
    return ForEachField(by_type, what, "Malformed JSON in " + what,
                        [&](std::string_view type_key, simdjson::ondemand::value records_value) -> Status {
      const std::string entity_type(type_key);
      const std::string name = what + "." + entity_type;
      if (!IsValidEntityType(entity_type)) {
        return ExpectedError("entity types matching [A-Za-z0-9_.-]{1,64}", "the keys of " + what,
                             "\"" + entity_type.substr(0, 40) + "\" of type string");
      }
      simdjson::ondemand::array records;
      if (records_value.get_array().get(records) != simdjson::SUCCESS) {
        return ExpectedError("an array of records", name, DescribeReceived(records_value));
      }
      const std::string configured = IdFieldFor(compat, entity_type);
      const std::string singular_id = Singular(entity_type) + "_id";
      size_t index = 0;
      for (auto record_result : records) {
        const std::string record_name = name + "[" + std::to_string(index++) + "]";
        simdjson::ondemand::value record_value;
        simdjson::ondemand::object record;
        if (std::move(record_result).get(record_value) != simdjson::SUCCESS ||
            record_value.get_object().get(record) != simdjson::SUCCESS) {
          return ExpectedError("an object", record_name, "another value");
        }
        std::string canonical;
        DS_RETURN_IF_ERROR(CopyValidatedJson(record_value, 0, limits, record_name, &canonical));
        if (out->size() >= s_.options_.limits.max_changes_per_push) {
          return Status::LimitExceeded("Too many records in one request (the limit is " +
                                       std::to_string(s_.options_.limits.max_changes_per_push) + ")");
        }
        // Second pass over the canonical copy: id, time, deleted flag, bookkeeping fields.
        simdjson::padded_string padded(canonical);
        simdjson::ondemand::document doc;
        simdjson::ondemand::object fields;
        if (session_.scratch_parser().iterate(padded).get(doc) != simdjson::SUCCESS ||
            doc.get_object().get(fields) != simdjson::SUCCESS) {
          return Status::Internal("canonical record did not parse");
        }
        std::optional<std::string> id_configured, id_plain, id_singular;
        std::optional<int64_t> timestamp;
        bool deleted = false;
        std::unordered_set<std::string> drop;
        for (auto field_result : fields) {
          simdjson::ondemand::field field;
          std::string_view key;
          if (std::move(field_result).get(field) != simdjson::SUCCESS ||
              field.unescaped_key(false).get(key) != simdjson::SUCCESS) {
            return Status::Internal("canonical record field");
          }
          simdjson::ondemand::value value = field.value();
          auto read_id = [&](std::optional<std::string>* slot) {
            std::string_view text;
            int64_t number = 0;
            simdjson::ondemand::json_type type;
            if (value.type().get(type) != simdjson::SUCCESS) return;
            if (type == simdjson::ondemand::json_type::string && value.get_string().get(text) == simdjson::SUCCESS &&
                !text.empty() && text.size() <= 256) {
              *slot = std::string(text);
            } else if (type == simdjson::ondemand::json_type::number &&
                       value.get_int64().get(number) == simdjson::SUCCESS) {
              *slot = std::to_string(number);
            }
          };
          if (!configured.empty() && key == configured) {
            read_id(&id_configured);
          } else if (key == "id") {
            read_id(&id_plain);
          } else if (key == singular_id) {
            read_id(&id_singular);
          } else if (key == "updated_at" || key == "updatedAt") {
            std::string_view text;
            double number = 0;
            simdjson::ondemand::json_type type;
            if (value.type().get(type) == simdjson::SUCCESS) {
              if (type == simdjson::ondemand::json_type::string && value.get_string().get(text) == simdjson::SUCCESS) {
                timestamp = ParseIso8601Ms(text);
                if (!timestamp) {
                  return ExpectedError("an ISO 8601 time", record_name + "." + std::string(key),
                                       "\"" + std::string(text.substr(0, 40)) + "\" of type string");
                }
              } else if (type == simdjson::ondemand::json_type::number &&
                         value.get_double().get(number) == simdjson::SUCCESS) {
                if (!(number >= 0 && number <= 8.64e15)) {
                  return ExpectedError("milliseconds since the epoch", record_name + "." + std::string(key),
                                       DescribeReceived(value));
                }
                timestamp = static_cast<int64_t>(number);
              }
            }
          } else if (IsDeletedFlag(key)) {
            bool flag = false;
            if (value.get_bool().get(flag) == simdjson::SUCCESS && flag) deleted = true;
          } else if (IsBookkeepingField(key)) {
            drop.insert(std::string(key));
          }
        }
        ChangeInput change;
        change.entity_type = entity_type;
        std::optional<std::string> id = id_configured ? id_configured : id_plain ? id_plain : id_singular;
        if (!id) {
          return ExpectedError("an id (\"" + (configured.empty() ? std::string("id") : configured) + "\" or \"" +
                                   singular_id + "\": a string or an integer)",
                               record_name, "a record without one");
        }
        change.entity_id = *id;
        change.timestamp = timestamp.value_or(s_.clock_->NowMs());
        Result<std::string> data = drop.empty() ? Result<std::string>(canonical) : ObjectWithoutKeys(session_.scratch_parser(), canonical, drop);
        if (!data.ok()) return data.status();
        // A full record: CREATED stores it whole, and on an existing entity replaces it (action UPDATE).
        if (deleted) {
          change.type = ChangeType::kDeleted;
        } else {
          change.type = ChangeType::kCreated;
          change.data = std::move(data).value();
        }
        // The same record pushed again (a retry) gets the same changeId and so is applied once.
        change.change_id = "compat-" + Fingerprint({device_id, entity_type, change.entity_id, canonical});
        out->push_back(std::move(change));
      }
      return Status::Ok();
    });
  }

  Status DecodeCompatBody(const std::string& body, const CompatOptions& compat, std::string* device_id, std::vector<ChangeInput>* changes,
                          std::optional<int64_t>* last_sync, std::optional<std::string>* last_sync_text) {
    simdjson::padded_string padded(body);
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (auto error = session_.parser().iterate(padded).get(doc)) {
      return Status::InvalidArgument(std::string("Malformed JSON in the request body (") +
                                     simdjson::error_message(error) + ")");
    }
    if (doc.get_object().get(object) != simdjson::SUCCESS) {
      return Status::InvalidArgument("Expected a JSON object for the request body");
    }
    // deviceId may follow `changes`; the changeIds need it, so read it first.
    {
      simdjson::ondemand::value device;
      if (object.find_field_unordered("deviceId").get(device) == simdjson::SUCCESS) {
        std::string_view text;
        if (device.get_string().get(text) != simdjson::SUCCESS || text.empty() || text.size() > 256 ||
            text.find('\0') != std::string_view::npos) {
          return ExpectedError("a non-empty string of at most 256 bytes", "deviceId", DescribeReceived(device));
        }
        device_id->assign(text);
      }
      if (object.reset().error()) return Status::InvalidArgument("Malformed JSON in the request body");
    }
    if (device_id->empty()) return ExpectedError("a non-empty string of at most 256 bytes", "deviceId", "undefined");
    DS_RETURN_IF_ERROR(ForEachField(object, "the request body", "Malformed JSON in the request body",
                                    [&](std::string_view key, simdjson::ondemand::value value) -> Status {
      if (key == "changes" && changes) {
        simdjson::ondemand::object by_type;
        if (value.get_object().get(by_type) != simdjson::SUCCESS) {
          return ExpectedError("an object of entity types to arrays of records", "changes", DescribeReceived(value));
        }
        DS_RETURN_IF_ERROR(DecodeRecordsByType(by_type, compat, *device_id, "changes", changes));
      } else if (key == "lastSyncTimestamp" && last_sync) {
        simdjson::ondemand::json_type type;
        std::string_view text;
        double number = 0;
        if (value.type().get(type) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed lastSyncTimestamp");
        if (type == simdjson::ondemand::json_type::null) return Status::Ok();
        if (type == simdjson::ondemand::json_type::string && value.get_string().get(text) == simdjson::SUCCESS &&
            ParseIso8601Ms(text)) {
          *last_sync = ParseIso8601Ms(text);
          *last_sync_text = std::string(text);
        } else if (type == simdjson::ondemand::json_type::number && value.get_double().get(number) == simdjson::SUCCESS &&
                   number >= 0 && number <= 8.64e15) {
          *last_sync = static_cast<int64_t>(number);
        } else {
          return ExpectedError("an ISO 8601 time or milliseconds", "lastSyncTimestamp", DescribeReceived(value));
        }
      } else {
        std::string ignored;
        DS_RETURN_IF_ERROR(CopyValidatedJson(value, 1, s_.options_.limits.json, key, &ignored));
      }
      return Status::Ok();
    }));
    if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the request body");
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
      const std::string entity_id(scope->Text(1));
      const int64_t server_timestamp = scope->Int(4);
      const std::string configured = IdFieldFor(compat, entity_type);
      const std::string singular_id = Singular(entity_type) + "_id";
      const bool deleted = scope->Int(3) != 0;
      // The id field the records were pushed with: the configured one, or one the stored
      // (for a deleted entity, its last) state has, else "id".
      std::string id_field = configured.empty() ? "id" : configured;
      bool has_time = false;
      std::string rest = "{}";
      if (!scope->IsNull(2)) {
        const std::string_view data = scope->Text(2);
        Result<std::unordered_set<std::string>> keys = ObjectKeys(session_.scratch_parser(), data);
        if (!keys.ok()) return keys.status();
        if (configured.empty() && !keys.value().count("id") && keys.value().count(singular_id)) id_field = singular_id;
        has_time = keys.value().count("updated_at") > 0 || keys.value().count("updatedAt") > 0;
        if (!deleted) rest = std::string(data);
      }
      // The id as it was pushed (a number stays a number), else the entity id as a string.
      std::string id_json;
      if (!scope->IsNull(2)) {
        simdjson::padded_string padded(scope->Text(2));
        simdjson::ondemand::document doc;
        simdjson::ondemand::value id_value;
        std::string_view raw;
        if (session_.scratch_parser().iterate(padded).get(doc) == simdjson::SUCCESS &&
            doc.find_field_unordered(id_field).get(id_value) == simdjson::SUCCESS &&
            id_value.raw_json().get(raw) == simdjson::SUCCESS) {
          id_json = std::string(TrimJsonWhitespace(raw));
        }
      }
      if (id_json.empty()) {
        AppendString(&id_json, entity_id);
      }
      std::string record = "{";
      AppendString(&record, id_field);
      record.push_back(':');
      record.append(id_json);
      if (!has_time || deleted) {
        // A record keeps the updated_at it was pushed with; one without gets the server's commit time.
        record.append(",\"updated_at\":");
        AppendString(&record, FormatIso8601(server_timestamp));
      }
      if (deleted) {
        record.append(",\"deleted\":true}");  // a deleted entity: its id and the flag
      } else {
        Result<std::string> fields = ObjectWithoutKeys(session_.scratch_parser(), rest, {id_field});
        if (!fields.ok()) return fields.status();
        if (fields.value().size() > 2) {
          record.push_back(',');
          record.append(fields.value(), 1, std::string::npos);
        } else {
          record.push_back('}');
        }
      }
      record_bytes += record.size() + 1;
      if (rows > 1 && record_bytes > max_bytes) {
        *has_more = true;
        break;
      }
      std::string& list = by_type[entity_type];
      if (!list.empty()) list.push_back(',');
      list.append(record);
      last_included = server_timestamp;
    }
    if (*has_more) next_since = last_included;
    out->push_back('{');
    bool first = true;
    for (const auto& [entity_type, records] : by_type) {
      if (!first) out->push_back(',');
      first = false;
      AppendString(out, entity_type);
      out->append(":[").append(records).push_back(']');
    }
    out->push_back('}');
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
  const ResolverExchange* resolver_ = nullptr;
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
  return WithSession([&](Impl& impl) -> Result<std::string> {
    PushRequest push;
    DS_RETURN_IF_ERROR(DecodePushRequest(impl.session().parser(), request, true, context, options_.limits, &push));
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
    DS_RETURN_IF_ERROR(impl.AppendPull(user_id, push.device_id, push.last_known_version,
                                       push.limit.value_or(static_cast<int64_t>(options_.limits.default_pull_limit)),
                                       impl.RemainingBudget(out.size()), &out, before.value().first));
    out.push_back('}');
    DS_RETURN_IF_ERROR(impl.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::Push(const std::string& user_id, const std::string& request,
                                         const RequestContext& context) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    PushRequest push;
    DS_RETURN_IF_ERROR(DecodePushRequest(impl.session().parser(), request, false, context, options_.limits, &push));
    SessionTransaction tx(impl.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::vector<Outcome> outcomes;
    impl.UseResolver(context);
    DS_RETURN_IF_ERROR(impl.PushChanges(user_id, push.device_id, push.changes, &outcomes));
    if (impl.AwaitingResolver()) return impl.ResolverRequest();  // rolled back: nothing applied
    std::string out = "{";
    DS_RETURN_IF_ERROR(impl.AppendOutcomes(user_id, outcomes, V2Outcomes(), &out));
    Result<std::pair<int64_t, int64_t>> latest = impl.UserVersion(user_id);
    if (!latest.ok()) return latest.status();
    out.append(",\"latestServerVersion\":").append(std::to_string(latest.value().first)).push_back('}');
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
      out += "{\"id\":" + std::to_string(scope->Int(0)) + ",\"changeId\":";
      AppendJsonString(&out, scope->Text(1));
      out += ",\"deviceId\":";
      if (scope->IsNull(2)) {
        out += "null";
      } else {
        AppendJsonString(&out, scope->Text(2));
      }
      out += ",\"entityType\":";
      AppendJsonString(&out, scope->Text(3));
      out += ",\"entityId\":";
      AppendJsonString(&out, scope->Text(4));
      out += ",\"type\":";
      AppendJsonString(&out, scope->Text(5));
      out += ",\"clientData\":";
      out += scope->IsNull(6) ? "null" : std::string(scope->Text(6));
      out += ",\"baseVersion\":" + (scope->IsNull(7) ? std::string("null") : std::to_string(scope->Int(7)));
      out += ",\"clientTimestamp\":" + std::to_string(scope->Int(8));
      out += ",\"createdAt\":" + std::to_string(scope->Int(9));
      const bool live = !scope->IsNull(12) && scope->Int(11) == 0;
      out += ",\"serverData\":";
      out += live && !scope->IsNull(10) ? std::string(scope->Text(10)) : "null";
      out += ",\"serverVersion\":" + (scope->IsNull(12) ? std::string("null") : std::to_string(scope->Int(12))) + "}";
    }
    out.push_back(']');
    return out;
  });
}

Result<std::string> SyncServerCore::ResolveConflict(const std::string& user_id, int64_t conflict_id,
                                                    const std::string& resolution) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    // {use: "client" | "server" | "merged" (or local / remote), data?}
    std::string use;
    std::optional<std::string> data;
    {
      simdjson::padded_string padded(resolution);
      simdjson::ondemand::document doc;
      simdjson::ondemand::object object;
      if (impl.session().parser().iterate(padded).get(doc) != simdjson::SUCCESS || doc.get_object().get(object) != simdjson::SUCCESS) {
        return Status::InvalidArgument("Expected an object { use, data? } for resolution");
      }
      for (auto field_result : object) {
        simdjson::ondemand::field field;
        std::string_view key;
        if (std::move(field_result).get(field) != simdjson::SUCCESS ||
            field.unescaped_key(false).get(key) != simdjson::SUCCESS) {
          return Status::InvalidArgument("Malformed resolution");
        }
        simdjson::ondemand::value value = field.value();
        if (key == "use") {
          std::string_view text;
          if (value.get_string().get(text) != simdjson::SUCCESS) {
            return ExpectedError("\"client\", \"server\" or \"merged\"", "resolution.use", DescribeReceived(value));
          }
          use = text == "local" ? "client" : text == "remote" ? "server" : std::string(text);
        } else if (key == "data") {
          simdjson::ondemand::json_type type;
          if (value.type().get(type) != simdjson::SUCCESS || type != simdjson::ondemand::json_type::object) {
            return ExpectedError("an object", "resolution.data", DescribeReceived(value));
          }
          std::string copy;
          DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, options_.limits.json, "resolution.data", &copy));
          data = std::move(copy);
        } else {
          return Status::InvalidArgument("Unknown field \"" + std::string(key) + "\" in resolution (expected use, data)");
        }
      }
    }
    if (use != "client" && use != "server" && use != "merged") {
      return ExpectedError("\"client\", \"server\" or \"merged\"", "resolution.use",
                           use.empty() ? std::string("undefined") : "\"" + use + "\" of type string");
    }
    if (use == "merged" && !data) return ExpectedError("an object", "resolution.data", "undefined");

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
      if (use == "merged") {
        DS_RETURN_IF_ERROR(impl.ToMergedChange(entity.value(), *data, &change));  // replaces the server's, field for field
      } else if (change.type == ChangeType::kUpdated && (!entity.value().found || entity.value().deleted)) {
        change.type = ChangeType::kCreated;  // the client's fields revive a deleted entity
        Result<std::optional<std::string>> revived = impl.DocumentAfter(ChangeType::kUpdated, change.data, entity.value());
        if (!revived.ok()) return revived.status();
        change.data = std::move(revived).value();
      }
      change.timestamp = clock_->NowMs();
      Result<int64_t> applied =
          impl.Apply(user_id, device_id, change, change.data, entity.value(), "manual:" + use);
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
      Result<SqlQuery*> stmt = impl.session().Cached(kFindResult);
      if (!stmt.ok()) return stmt.status();
      std::string fingerprint;
      {
        SqlQuery::Scope scope(*stmt.value());
        scope->BindText(1, user_id);
        scope->BindText(2, *change.change_id);
        Result<bool> row = scope->Step();
        if (!row.ok()) return row.status();
        if (row.value()) fingerprint = std::string(scope->Text(0));
      }
      if (!fingerprint.empty()) DS_RETURN_IF_ERROR(impl.RecordOutcome(user_id, fingerprint, outcome));
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
  });
}

Result<std::string> SyncServerCore::ImportSnapshot(const std::string& user_id, const std::string& state,
                                                   const CompatOptions& compat) {
  return WithSession([&](Impl& impl) -> Result<std::string> {
    simdjson::padded_string padded(state);
    simdjson::ondemand::document doc;
    simdjson::ondemand::object by_type;
    if (auto error = impl.session().parser().iterate(padded).get(doc)) {
      return Status::InvalidArgument(std::string("Malformed JSON in the snapshot (") + simdjson::error_message(error) +
                                     ")");
    }
    if (doc.get_object().get(by_type) != simdjson::SUCCESS) {
      return Status::InvalidArgument("Expected an object of entity types to arrays of records for state");
    }
    SessionTransaction tx(impl.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::vector<ChangeInput> changes;
    const size_t saved_limit = options_.limits.max_changes_per_push;
    options_.limits.max_changes_per_push = static_cast<size_t>(-1);  // a snapshot is one import, not a push
    Status decoded = impl.DecodeRecordsByType(by_type, compat, "snapshot", "state", &changes);
    options_.limits.max_changes_per_push = saved_limit;
    DS_RETURN_IF_ERROR(decoded);
    if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the snapshot");
    int64_t imported = 0, skipped = 0;
    for (size_t i = 0; i < changes.size(); ++i) {
      ChangeInput& change = changes[i];
      change.change_id = "snapshot-" + change.change_id->substr(std::string("compat-").size());
      std::vector<Outcome> outcomes;
      DS_RETURN_IF_ERROR(impl.ProcessChange(user_id, "snapshot", change, i, &outcomes));
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
    SessionTransaction tx(impl.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::string device_id;
    std::vector<ChangeInput> changes;
    std::optional<int64_t> since;
    std::optional<std::string> since_text;
    DS_RETURN_IF_ERROR(impl.DecodeCompatBody(body, compat, &device_id, push ? &changes : nullptr,
                                             pull ? &since : nullptr, pull ? &since_text : nullptr));
    std::string out = "{\"success\":true";
    if (push) {
      impl.UseContentAddressedIds();
      impl.UseResolver(context);
      std::vector<Outcome> outcomes;
      DS_RETURN_IF_ERROR(impl.PushChanges(user_id, device_id, changes, &outcomes));
      if (impl.AwaitingResolver()) return impl.ResolverRequest();  // rolled back: nothing applied
      out.push_back(',');
      DS_RETURN_IF_ERROR(impl.AppendOutcomes(user_id, outcomes, CompatOutcomes(), &out));
    }
    if (pull) {
      std::string pulled;
      bool has_more = false;
      Result<int64_t> next = impl.AppendEntitiesSince(user_id, since.value_or(0), compat, impl.RemainingBudget(out.size()),
                                                      &pulled, &has_more);
      if (!next.ok()) return next.status();
      DS_RETURN_IF_ERROR(impl.TouchDevicePull(user_id, device_id));
      out += ",\"changes\":" + pulled + ",\"timestamp\":";
      AppendJsonString(&out, FormatIso8601(next.value()));
      out += ",\"hasMore\":" + std::string(has_more ? "true" : "false");
      if (!push) out += ",\"conflicts\":[]";
      out += ",\"deviceId\":";
      AppendJsonString(&out, device_id);
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
  // {conflictId, resolution: "client" | "server" | "merged" | {use, data}, data?}
  int64_t conflict_id = 0;
  std::string resolution;
  {
    simdjson::ondemand::parser parser;  // a body of a few fields, outside any session
    simdjson::padded_string padded(body);
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS || doc.get_object().get(object) != simdjson::SUCCESS) {
      return Status::InvalidArgument("Expected a JSON object for the request body");
    }
    std::string use;
    std::optional<std::string> data;
    DS_RETURN_IF_ERROR(ForEachField(object, "the request body", "Malformed JSON in the request body",
                                    [&](std::string_view key, simdjson::ondemand::value value) -> Status {
      if (key == "conflictId") {
        if (value.get_int64().get(conflict_id) != simdjson::SUCCESS || conflict_id < 1) {
          return ExpectedError("a positive integer", "conflictId", DescribeReceived(value));
        }
      } else if (key == "resolution") {
        simdjson::ondemand::json_type type;
        if (value.type().get(type) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed resolution");
        if (type == simdjson::ondemand::json_type::string) {
          std::string_view text;
          if (value.get_string().get(text) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed resolution");
          use.assign(text);
        } else {
          std::string copy;
          DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, options_.limits.json, "resolution", &copy));
          resolution = std::move(copy);
        }
      } else if (key == "data") {
        std::string copy;
        DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, options_.limits.json, "data", &copy));
        data = std::move(copy);
      } else {
        std::string ignored;
        DS_RETURN_IF_ERROR(CopyValidatedJson(value, 1, options_.limits.json, key, &ignored));
      }
      return Status::Ok();
    }));
    if (conflict_id == 0) return ExpectedError("a positive integer", "conflictId", "undefined");
    if (resolution.empty()) {
      resolution = "{\"use\":";
      AppendJsonString(&resolution, use);
      if (data) resolution += ",\"data\":" + *data;
      resolution += "}";
    }
  }
  Result<std::string> resolved = ResolveConflict(user_id, conflict_id, resolution);
  if (!resolved.ok()) return resolved;
  return "{\"success\":true," + resolved.value().substr(1);
}

}  // namespace deltasync
