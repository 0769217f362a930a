#include "core/apply.h"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>


namespace deltasync {

namespace {

// The entities of the rows kLocalChanges can return for a change at version ?1 or above, at most ?2.
constexpr const char* kDirtyEntities =
    "SELECT entity_type, entity_id FROM changes WHERE status IN ('pending', 'syncing', 'failed') "
    "UNION ALL SELECT entity_type, entity_id FROM changes INDEXED BY changes_synced_by_version "
    "WHERE status = 'synced' AND server_version > ?1 LIMIT ?2";
// A queue with more candidate rows than this, and than the chunk has changes, is not listed:
// each change asks for its own entity's local changes, one indexed lookup, which then costs less.
constexpr size_t kMinDirtyRowsListed = 256;
constexpr const char* kLoadForApply =
    "SELECT data, base, version, deleted FROM documents WHERE entity_type = ?1 AND entity_id = ?2";
// Writes a pulled state unless the stored document already has this version or a newer one.
constexpr const char* kUpsertRemote =
    "INSERT INTO documents (entity_type, entity_id, data, base, version, deleted, updated_at, last_synced_at, "
    "deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, CASE WHEN ?6 THEN ?7 END) "
    "ON CONFLICT (entity_type, entity_id) DO UPDATE SET data = excluded.data, base = excluded.base, "
    "version = excluded.version, deleted = excluded.deleted, updated_at = excluded.updated_at, "
    "last_synced_at = excluded.last_synced_at, "
    "deleted_at = CASE WHEN excluded.deleted THEN coalesce(documents.deleted_at, excluded.deleted_at) END "
    "WHERE documents.version IS NULL OR documents.version < excluded.version";
// A rollback after a lost conflict: the server's verdict is authoritative whatever the stored version.
constexpr const char* kWriteRolledBack =
    "INSERT INTO documents (entity_type, entity_id, data, base, version, deleted, updated_at, last_synced_at, "
    "deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, CASE WHEN ?6 THEN ?7 END) "
    "ON CONFLICT (entity_type, entity_id) DO UPDATE SET data = excluded.data, base = excluded.base, "
    "version = max(coalesce(documents.version, 0), coalesce(excluded.version, 0)), deleted = excluded.deleted, "
    "updated_at = excluded.updated_at, last_synced_at = excluded.last_synced_at, "
    "deleted_at = CASE WHEN excluded.deleted THEN coalesce(documents.deleted_at, excluded.deleted_at) END";
// The entity's local changes the server has not acknowledged, and those it acknowledged at a
// version above ?3: a pulled change older than them must not take them back.
constexpr const char* kLocalChanges =
    "SELECT id, change_id, type, data, timestamp, status FROM changes "
    "WHERE entity_type = ?1 AND entity_id = ?2 AND (status != 'synced' OR server_version > ?3) ORDER BY id";
constexpr const char* kGetCursor = "SELECT value FROM meta WHERE key = 'server_version'";
// After the server went back in time to `head` (?1): the client's acknowledged changes it lost
// are sent again (their changeIds are new to it), and documents pulled above the head take the
// server's state again when it is re-pulled.
constexpr const char* kResendLostChanges =
    "UPDATE changes SET status = 'pending', synced_at = NULL, server_version = NULL, updated_at = ?2 "
    "WHERE status = 'synced' AND server_version > ?1";
constexpr const char* kForgetLostVersions = "UPDATE documents SET version = NULL WHERE version > ?1";
constexpr const char* kSetCursor =
    "INSERT INTO meta (key, value) VALUES ('server_version', ?1) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value";
constexpr const char* kWriteResolved =
    "UPDATE documents SET data = ?3, base = ?4, deleted = ?5, updated_at = ?6, "
    "deleted_at = CASE WHEN ?5 THEN ?6 END WHERE entity_type = ?1 AND entity_id = ?2";

}  // namespace

DeltaApplier::DeltaApplier(Database& db, Clock& clock, ChangeQueue& queue, ConflictStrategy strategy,
                           std::map<std::string, ConflictStrategy> per_type)
    : db_(db), clock_(clock), queue_(queue), strategy_(strategy), per_type_(std::move(per_type)), conflicts_(db, clock) {}

ConflictStrategy DeltaApplier::StrategyFor(const std::string& entity_type) const {
  auto it = per_type_.find(entity_type);
  return it == per_type_.end() ? strategy_ : it->second;
}

Status DeltaApplier::ApplyVerdicts(const PullPage& page, int64_t max_retries, ApplyResult* result) {
  if (page.verdicts.empty()) return Status::Ok();
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  // A response sends an entity's serverData once: later conflicts of the entity refer to it.
  std::map<std::pair<std::string, std::string>, const PushVerdict*> data_by_entity;
  for (const PushVerdict& verdict : page.verdicts) {
    if (verdict.kind == PushVerdict::Kind::kConflict && !verdict.server_data_omitted) {
      data_by_entity.emplace(std::make_pair(verdict.entity_type, verdict.entity_id), &verdict);
    }
  }
  for (const PushVerdict& listed : page.verdicts) {
    PushVerdict filled;
    const PushVerdict* verdict_ptr = &listed;
    if (listed.kind == PushVerdict::Kind::kConflict && listed.server_data_omitted &&
        listed.winner != "client" && listed.winner != "merged") {
      auto found = data_by_entity.find(std::make_pair(listed.entity_type, listed.entity_id));
      // Left out over the response's byte budget: the change stays unsettled, goes back to
      // pending and is reported again (with its data) on a later request.
      if (found == data_by_entity.end()) continue;
      filled = listed;
      filled.server_data = found->second->server_data;
      filled.server_version = found->second->server_version;
      verdict_ptr = &filled;
    }
    const PushVerdict& verdict = *verdict_ptr;
    switch (verdict.kind) {
      case PushVerdict::Kind::kApplied: {
        Status synced = queue_.MarkSynced(verdict.change_id, verdict.version);
        // Not in flight any more (discarded meanwhile, or reported twice): nothing to record.
        if (!synced.ok() && synced.code() != StatusCode::kNotFound) return synced;
        if (synced.ok()) ++result->pushed_applied;
        break;
      }
      case PushVerdict::Kind::kConflict: {
        result->pushed_conflicts.push_back(verdict);
        result->pushed_conflicts.back().server_data.reset();  // reported without the data
        if (verdict.winner == "client" || verdict.winner == "merged") break;  // also in applied
        // The change lost: it leaves the queue, and the entity rolls back to the server's state.
        Result<bool> removed = queue_.ForgetInFlight(verdict.change_id);
        if (!removed.ok()) return removed.status();
        if (!removed.value() || verdict.entity_type.empty() || verdict.entity_id.empty()) break;
        Result<std::vector<LocalChange>> locals = LocalChanges(verdict.entity_type, verdict.entity_id);
        if (!locals.ok()) return locals.status();
        Result<State> visible = Replay(State{verdict.server_data}, locals.value(), false);
        if (!visible.ok()) return visible.status();
        RemoteChange rollback;
        rollback.entity_type = verdict.entity_type;
        rollback.entity_id = verdict.entity_id;
        rollback.version = verdict.server_version.value_or(0);
        DS_RETURN_IF_ERROR(WriteRolledBack(rollback, visible.value(), State{verdict.server_data},
                                           !locals.value().empty()));
        break;
      }
      case PushVerdict::Kind::kError: {
        const std::string error = verdict.error_code + ": " + verdict.error_message;
        Result<ChangeStatus> status = queue_.MarkFailed(verdict.change_id, error, max_retries);
        if (!status.ok() && status.status().code() != StatusCode::kNotFound) return status.status();
        if (status.ok()) {
          ++result->pushed_rejected;
          if (status.value() == ChangeStatus::kFailed) result->pushed_failed.push_back(verdict.change_id);
        }
        break;
      }
    }
  }
  return tx.Commit();
}

Status DeltaApplier::WriteRolledBack(const RemoteChange& change, const State& visible, const State& server,
                                     bool dirty) {
  Result<Statement*> stmt = db_.Cached(kWriteRolledBack);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, change.entity_type);
  scope->BindText(2, change.entity_id);
  scope->BindOptionalText(3, visible.data);
  if (dirty) {
    scope->BindOptionalText(4, server.data);
  } else {
    scope->BindNull(4);
  }
  if (change.version > 0) {
    scope->BindInt(5, change.version);
  } else {
    scope->BindNull(5);
  }
  scope->BindInt(6, visible.data ? 0 : 1);
  scope->BindInt(7, clock_.NowMs());
  return scope->Run();
}

Status DeltaApplier::ResetToServerHistory(int64_t head) {
  const int64_t now = clock_.NowMs();
  {
    Result<Statement*> stmt = db_.Cached(kResendLostChanges);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindInt(1, head);
    scope->BindInt(2, now);
    DS_RETURN_IF_ERROR(scope->Run());
  }
  {
    Result<Statement*> stmt = db_.Cached(kForgetLostVersions);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindInt(1, head);
    DS_RETURN_IF_ERROR(scope->Run());
  }
  Result<Statement*> stmt = db_.Cached(kSetCursor);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, "0");
  return scope->Run();
}

Result<int64_t> DeltaApplier::Cursor() {
  Result<Statement*> stmt = db_.Cached(kGetCursor);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return int64_t{0};
  return static_cast<int64_t>(std::stoll(std::string(scope->Text(0))));
}

Status DeltaApplier::SetCursor(int64_t version) {
  Result<int64_t> current = Cursor();
  if (!current.ok()) return current.status();
  if (version <= current.value()) return Status::Ok();
  Result<Statement*> stmt = db_.Cached(kSetCursor);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  const std::string text = std::to_string(version);
  scope->BindText(1, text);
  return scope->Run();
}

Status DeltaApplier::ApplyChunk(const PullPage& page, size_t begin, size_t end, ApplyResult* result,
                                const std::function<bool()>& stop_early, size_t min_changes,
                                size_t* reached) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  if (page.resync && page.window_start + begin == 0) {
    DS_RETURN_IF_ERROR(ResetToServerHistory(page.resync_from.value_or(page.head_version.value_or(0))));
    result->resynced = true;
  }
  Result<DirtyEntities> dirty = LoadDirtyEntities(
      end > begin ? page.changes[begin].version : std::numeric_limits<int64_t>::max(), end - begin);
  if (!dirty.ok()) return dirty.status();
  for (size_t i = begin; i < end; ++i) {
    Status status = ApplyOne(page.changes[i], dirty.value(), result);
    if (!status.ok()) {
      return Status::Error(status.code(), "Applying newChanges[" + std::to_string(page.window_start + i) + "] (changeId " +
                                              page.changes[i].change_id + "): " + status.message());
    }
    if (stop_early && i + 1 < end && i + 1 - begin >= min_changes && stop_early()) end = i + 1;
  }
  if (reached != nullptr) *reached = end;
  int64_t cursor = end > begin ? page.changes[end - 1].version : 0;
  if (page.window_start + end == page.ChangeCount() && !page.has_more && page.latest_server_version) {
    cursor = std::max(cursor, *page.latest_server_version);
  }
  DS_RETURN_IF_ERROR(SetCursor(cursor));
  Result<int64_t> stored = Cursor();
  if (!stored.ok()) return stored.status();
  DS_RETURN_IF_ERROR(tx.Commit());
  result->latest_server_version = stored.value();
  result->has_more = page.has_more;
  return Status::Ok();
}

Result<DirtyEntities> DeltaApplier::LoadDirtyEntities(int64_t first_version, size_t chunk_changes) {
  const size_t limit = std::max(kMinDirtyRowsListed, chunk_changes);
  Result<Statement*> stmt = db_.Cached(kDirtyEntities);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, first_version);
  scope->BindInt(2, static_cast<int64_t>(limit) + 1);
  std::vector<DirtyEntities::Key> keys;
  for (;;) {
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    if (keys.size() == limit) return DirtyEntities::Unknown();
    keys.emplace_back(std::string(scope->Text(0)), std::string(scope->Text(1)));
  }
  return DirtyEntities::Of(std::move(keys));
}

Result<std::vector<LocalChange>> DeltaApplier::LocalChanges(const std::string& entity_type,
                                                                        const std::string& entity_id,
                                                                        std::optional<int64_t> acknowledged_above) {
  Result<Statement*> stmt = db_.Cached(kLocalChanges);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, entity_type);
  scope->BindText(2, entity_id);
  scope->BindInt(3, acknowledged_above.value_or(std::numeric_limits<int64_t>::max()));
  std::vector<LocalChange> changes;
  for (;;) {
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    changes.push_back(LocalChange{scope->Int(0), std::string(scope->Text(1)),
                                  ParseChangeType(scope->Text(2)).value_or(ChangeType::kUpdated),
                                  scope->OptionalText(3), scope->Int(4),
                                  ParseChangeStatus(scope->Text(5)).value_or(ChangeStatus::kPending)});
  }
  return changes;
}

Result<DeltaApplier::State> DeltaApplier::Replay(State base, const std::vector<LocalChange>& changes,
                                                 bool only_in_flight, bool created_merges) {
  return ReplayLocalChanges(parser_, std::move(base), changes, only_in_flight, created_merges);
}

Status DeltaApplier::DiscardUnsent(const std::vector<LocalChange>& changes) {
  for (const LocalChange& change : changes) {
    if (change.status == ChangeStatus::kSyncing) continue;
    DS_RETURN_IF_ERROR(queue_.Discard(change.change_id));
  }
  return Status::Ok();
}

Status DeltaApplier::WriteDocument(const RemoteChange& change, const State& visible, const State& server,
                                   bool dirty) {
  Result<Statement*> stmt = db_.Cached(kUpsertRemote);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, change.entity_type);
  scope->BindText(2, change.entity_id);
  scope->BindOptionalText(3, visible.data);
  if (dirty) {
    scope->BindOptionalText(4, server.data);
  } else {
    scope->BindNull(4);
  }
  scope->BindInt(5, change.version);
  scope->BindInt(6, visible.data ? 0 : 1);
  scope->BindInt(7, clock_.NowMs());
  return scope->Run();
}

Status DeltaApplier::ApplyOne(const RemoteChange& change, const DirtyEntities& dirty_entities, ApplyResult* result) {
  std::vector<LocalChange> locals;
  if (dirty_entities.MayHaveLocalChanges(change.entity_type, change.entity_id)) {
    Result<std::vector<LocalChange>> loaded = LocalChanges(change.entity_type, change.entity_id, change.version);
    if (!loaded.ok()) return loaded.status();
    locals = std::move(loaded).value();
  }
  // A change of ours the server acknowledged after this one: the server ordered it later, so
  // it stays on top of the pulled state until its own version is pulled.
  const bool acknowledged_later = std::any_of(locals.begin(), locals.end(), [](const LocalChange& local) {
    return local.status == ChangeStatus::kSynced;
  });

  // Fast path: no local changes, and the pulled state does not depend on the stored one.
  if (locals.empty() && change.type != ChangeType::kUpdated) {
    const State pulled{change.type == ChangeType::kDeleted ? std::nullopt : change.data};
    DS_RETURN_IF_ERROR(WriteDocument(change, pulled, State{}, false));
    if (db_.Changes() > 0) {
      ++result->applied;
    } else {
      ++result->skipped;
    }
    return Status::Ok();
  }

  std::optional<std::string> data, base;
  std::optional<int64_t> version;
  bool found = false, deleted = false;
  {
    Result<Statement*> stmt = db_.Cached(kLoadForApply);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, change.entity_type);
    scope->BindText(2, change.entity_id);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (row.value()) {
      found = true;
      data = scope->OptionalText(0);
      base = scope->OptionalText(1);
      version = scope->OptionalInt(2);
      deleted = scope->Int(3) != 0;
    }
  }
  if (version && *version >= change.version) {
    ++result->skipped;
    return Status::Ok();
  }
  const bool dirty = !locals.empty();
  // The server state before this change: `base` while local changes sit on top, else the document.
  State server_before;
  if (dirty) {
    server_before.data = base;
  } else if (found && !deleted) {
    server_before.data = data;
  }
  State server_after;
  switch (change.type) {
    case ChangeType::kCreated:
      server_after.data = change.data;
      break;
    case ChangeType::kUpdated: {
      Result<std::string> merged =
          ShallowMergeObjects(parser_, server_before.data ? *server_before.data : "{}", *change.data);
      if (!merged.ok()) return merged.status();
      server_after.data = std::move(merged).value();
      break;
    }
    case ChangeType::kDeleted:
      break;
  }
  ++result->applied;
  if (!dirty) return WriteDocument(change, server_after, State{}, false);

  Result<bool> own = queue_.IsKnownChangeId(change.change_id);
  if (!own.ok()) return own.status();
  if (own.value() || acknowledged_later) {
    // Our own change coming back, or one the server ordered before a change of ours: the
    // local changes still apply on top of it.
    Result<State> visible = Replay(server_after, locals, false);
    if (!visible.ok()) return visible.status();
    return WriteDocument(change, visible.value(), server_after, true);
  }

  return SettleWithLocalChanges(change, locals, server_before, server_after, result);
}

Status DeltaApplier::SettleWithLocalChanges(const RemoteChange& change, const std::vector<LocalChange>& locals,
                                            const State& server_before, const State& server_after,
                                            ApplyResult* result) {
  const ConflictStrategy configured = StrategyFor(change.entity_type);
  Result<ConflictPlan> planned = PlanConflict(parser_, change, locals, configured, server_after.data.has_value());
  if (!planned.ok()) return planned.status();
  const ConflictPlan& plan = planned.value();
  for (const ConflictPlan::Rewrite& rewrite : plan.rewrites) {
    DS_RETURN_IF_ERROR(queue_.RewriteUnsent(rewrite.id, rewrite.type, rewrite.data));
  }
  for (const std::string& change_id : plan.discards) DS_RETURN_IF_ERROR(queue_.Discard(change_id));
  AppliedConflict conflict{change.entity_type, change.entity_id, change.change_id, change.version, configured,
                           plan.winner, {}};
  if (plan.open_conflict) {
    // Kept open: a person settles it, or the app's resolver once the page is applied.
    Result<int64_t> id = conflicts_.Open(change, server_after.data, server_before.data,
                                         plan.strategy == ConflictStrategy::kCustom);
    if (!id.ok()) return id.status();
    conflict.conflict_id = id.value();
  }
  Result<State> visible = Replay(plan.replay_on_state_before ? server_before : server_after, plan.remaining,
                                 false, plan.created_merges);
  if (!visible.ok()) return visible.status();
  if (plan.rebase) {
    // The local side saw this version and kept its changes: they are now based on it.
    DS_RETURN_IF_ERROR(queue_.RebaseUnsent(change.entity_type, change.entity_id, change.version));
  }
  result->conflicts.push_back(std::move(conflict));
  return WriteDocument(change, visible.value(), server_after, !plan.remaining.empty());
}

Result<std::string> DeltaApplier::ConflictsJson() { return conflicts_.OpenJson(); }

Result<std::string> DeltaApplier::AwaitingResolverJson() { return conflicts_.AwaitingResolverJson(); }

Result<ResolvedConflict> DeltaApplier::ResolveConflict(int64_t conflict_id, ResolveUse use,
                                                       const std::optional<std::string>& data) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  Result<std::optional<ConflictStore::OpenConflict>> open = conflicts_.Load(conflict_id);
  if (!open.ok()) return open.status();
  if (!open.value()) return Status::NotFound("No open conflict has id " + std::to_string(conflict_id));
  Result<std::optional<std::string>> visible = Resolve(conflict_id, *open.value(), use, data);
  if (!visible.ok()) return visible.status();
  DS_RETURN_IF_ERROR(tx.Commit());
  return ResolvedConflict{open.value()->entity_type, open.value()->entity_id, std::move(visible).value()};
}

Result<std::vector<VerdictOutcome>> DeltaApplier::SettleConflicts(const std::vector<ConflictVerdict>& verdicts) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  std::vector<VerdictOutcome> outcomes;
  outcomes.reserve(verdicts.size());
  for (const ConflictVerdict& verdict : verdicts) {
    VerdictOutcome outcome;
    outcome.conflict_id = verdict.conflict_id;
    Result<std::optional<ConflictStore::OpenConflict>> open = conflicts_.Load(verdict.conflict_id);
    if (!open.ok()) return open.status();
    bool stale = !open.value() || !open.value()->awaiting_resolver ||
                 open.value()->remote_version != verdict.remote_version;
    if (!stale) {
      Result<std::optional<std::string>> local = conflicts_.LocalSide(open.value()->entity_type, open.value()->entity_id);
      if (!local.ok()) return local.status();
      stale = LocalStateToken(local.value()) != verdict.local_token;
    }
    if (stale) {
      outcome.kind = VerdictOutcome::Kind::kStale;
      outcomes.push_back(std::move(outcome));
      continue;
    }
    outcome.entity_type = open.value()->entity_type;
    outcome.entity_id = open.value()->entity_id;
    if (verdict.use) {
      // Each verdict in a savepoint of its own: one that fails leaves its conflict for review.
      Status done;
      {
        Transaction one(db_);
        DS_RETURN_IF_ERROR(one.status());
        Result<std::optional<std::string>> visible = Resolve(verdict.conflict_id, *open.value(), *verdict.use, verdict.data);
        done = visible.ok() ? one.Commit() : visible.status();
      }  // rolled back here unless committed
      if (done.ok()) {
        outcome.kind = VerdictOutcome::Kind::kResolved;
        outcomes.push_back(std::move(outcome));
        continue;
      }
      if (done.code() == StatusCode::kStorage || done.code() == StatusCode::kBusy || done.code() == StatusCode::kClosed) {
        return done;  // the database, not the verdict: nothing of the batch is written
      }
      DS_RETURN_IF_ERROR(conflicts_.LeaveForReview(verdict.conflict_id, "The verdict could not be applied: " + done.message()));
      outcome.kind = VerdictOutcome::Kind::kLeftForReview;
    } else {
      DS_RETURN_IF_ERROR(conflicts_.LeaveForReview(verdict.conflict_id, verdict.error));
      outcome.kind = VerdictOutcome::Kind::kLeftForReview;
    }
    outcomes.push_back(std::move(outcome));
  }
  DS_RETURN_IF_ERROR(tx.Commit());
  return outcomes;
}

Result<std::optional<std::string>> DeltaApplier::Resolve(int64_t conflict_id, const ConflictStore::OpenConflict& open,
                                                         ResolveUse use, const std::optional<std::string>& data) {
  const std::string& entity_type = open.entity_type;
  const std::string& entity_id = open.entity_id;
  // The local side is the visible document now: local writes since the conflict opened count.
  Result<std::optional<std::string>> current = conflicts_.LocalSide(entity_type, entity_id);
  if (!current.ok()) return current.status();
  const std::optional<std::string>& local = current.value();
  const std::optional<std::string>& remote = open.remote;
  const int64_t remote_version = open.remote_version;
  Result<std::vector<LocalChange>> locals = LocalChanges(entity_type, entity_id);
  if (!locals.ok()) return locals.status();
  DS_RETURN_IF_ERROR(DiscardUnsent(locals.value()));
  const bool in_flight = std::any_of(locals.value().begin(), locals.value().end(),
                                     [](const LocalChange& c) { return c.status == ChangeStatus::kSyncing; });

  std::optional<std::string> target;
  const char* resolution = "remote";
  bool queued = false;
  if (use == ResolveUse::kRemote) {
    Result<State> replayed = Replay(State{remote}, locals.value(), true);
    if (!replayed.ok()) return replayed.status();
    target = replayed.value().data;
  } else {
    resolution = use == ResolveUse::kLocal ? "local" : "merged";
    target = use == ResolveUse::kLocal ? local : data;
    ChangeInput change;
    change.entity_type = entity_type;
    change.entity_id = entity_id;
    change.base_version = remote_version;
    if (!target) {
      change.type = ChangeType::kDeleted;
    } else if (!remote) {
      change.type = ChangeType::kCreated;
      change.data = target;
    } else {
      change.type = ChangeType::kUpdated;
      Result<std::string> delta = DeltaWithRemovals(parser_, *target, *remote);
      if (!delta.ok()) return delta.status();
      change.data = std::move(delta).value();
    }
    if (target || remote) {
      Result<EnqueueResult> enqueued = queue_.Enqueue(change);
      if (!enqueued.ok()) return enqueued.status();
      queued = true;
    }
  }
  {
    Result<Statement*> stmt = db_.Cached(kWriteResolved);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, entity_type);
    scope->BindText(2, entity_id);
    scope->BindOptionalText(3, target);
    if (queued || in_flight) {
      scope->BindOptionalText(4, remote);
    } else {
      scope->BindNull(4);
    }
    scope->BindInt(5, target ? 0 : 1);
    scope->BindInt(6, clock_.NowMs());
    DS_RETURN_IF_ERROR(scope->Run());
  }
  DS_RETURN_IF_ERROR(conflicts_.MarkResolved(conflict_id, resolution));
  return target;
}

}  // namespace deltasync
