#include "core/queue.h"

#include <string>
#include <utility>

namespace deltasync {

const char* const kChangeColumns =
    "id, change_id, tenant_id, user_id, entity_type, entity_id, type, data, base_version, timestamp, "
    "created_at, updated_at, synced_at, status, retry_count, last_error, server_version";

namespace {

#define DS_CHANGE_COLUMNS                                                                            \
  "id, change_id, tenant_id, user_id, entity_type, entity_id, type, data, base_version, timestamp, " \
  "created_at, updated_at, synced_at, status, retry_count, last_error, server_version"

constexpr const char* kFindKnownId =
    "SELECT 1 FROM changes WHERE change_id = ?1 UNION ALL SELECT 1 FROM change_aliases WHERE change_id = ?1 LIMIT 1";
constexpr const char* kFindLatestForEntity =
    "SELECT id, change_id, type, data, status, attempts, base_version, "
    "EXISTS (SELECT 1 FROM changes AS e WHERE e.entity_type = ?1 AND e.entity_id = ?2 AND e.id < changes.id "
    "AND (e.attempts > 0 OR e.status != 'pending')), "
    "(SELECT d.version FROM documents AS d WHERE d.entity_type = ?1 AND d.entity_id = ?2) "
    "FROM changes WHERE entity_type = ?1 AND entity_id = ?2 ORDER BY id DESC LIMIT 1";
constexpr const char* kInsertChange =
    "INSERT INTO changes (change_id, tenant_id, user_id, entity_type, entity_id, type, data, base_version, "
    "timestamp, created_at, updated_at, status, retry_count, last_error, attempts) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, 'pending', ?11, ?12, CASE WHEN ?11 > 0 THEN 1 ELSE 0 END)";
constexpr const char* kUpdateCoalesced =
    "UPDATE changes SET type = ?2, data = ?3, timestamp = max(timestamp, ?4), updated_at = ?5 WHERE id = ?1";
constexpr const char* kDeleteById = "DELETE FROM changes WHERE id = ?1";
// A CREATED folded into a DELETED of an entity the server has: the delete names the version it
// was made on, so the server can tell a concurrent change from a stale one.
constexpr const char* kSetMissingBaseVersion = "UPDATE changes SET base_version = ?2 WHERE id = ?1 AND base_version IS NULL";
constexpr const char* kInsertAlias =
    "INSERT OR REPLACE INTO change_aliases (change_id, merged_into) VALUES (?1, ?2)";
constexpr const char* kPendingAll =
    "SELECT " DS_CHANGE_COLUMNS " FROM changes WHERE status = 'pending' ORDER BY id LIMIT ?1";
constexpr const char* kPendingByType =
    "SELECT " DS_CHANGE_COLUMNS " FROM changes WHERE status = 'pending' AND entity_type = ?1 ORDER BY id LIMIT ?2";
constexpr const char* kFailedAll = "SELECT " DS_CHANGE_COLUMNS " FROM changes WHERE status = 'failed' ORDER BY id";
constexpr const char* kAll = "SELECT " DS_CHANGE_COLUMNS " FROM changes ORDER BY id";
// Only unacknowledged rows are grouped (through changes_by_status); synced history is only counted.
constexpr const char* kStats =
    "SELECT entity_type, status, count(*), min(created_at) FROM changes "
    "WHERE status IN ('pending', 'syncing', 'failed') GROUP BY entity_type, status";
constexpr const char* kUnsyncedTotals =
    "SELECT '', status, count(*), NULL FROM changes WHERE status IN ('pending', 'syncing', 'failed') GROUP BY status";
constexpr const char* kSyncedCount =
    "SELECT count(*) FROM changes INDEXED BY changes_synced_by_time WHERE status = 'synced'";
constexpr const char* kLastSyncTime = "SELECT value FROM meta WHERE key = 'last_sync_time'";
constexpr const char* kSetLastSyncTime =
    "INSERT INTO meta (key, value) VALUES ('last_sync_time', ?1) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value";
constexpr const char* kRetryFailed =
    "UPDATE changes SET status = 'pending', retry_count = 0, updated_at = ?1 WHERE status = 'failed'";
constexpr const char* kStatusOf = "SELECT status FROM changes WHERE change_id = ?1";
constexpr const char* kDiscard = "DELETE FROM changes WHERE change_id = ?1";
constexpr const char* kTakeBatch =
    "SELECT " DS_CHANGE_COLUMNS " FROM changes AS c WHERE c.status = 'pending' AND NOT EXISTS ("
    "  SELECT 1 FROM changes AS p WHERE p.entity_type = c.entity_type AND p.entity_id = c.entity_id"
    "  AND p.id < c.id AND p.status != 'synced') "
    "ORDER BY c.id LIMIT ?1";
constexpr const char* kMarkSyncing =
    "UPDATE changes SET status = 'syncing', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1";
constexpr const char* kForgetInFlight = "DELETE FROM changes WHERE change_id = ?1 AND status = 'syncing'";
constexpr const char* kRebaseUnsent =
    "UPDATE changes SET base_version = ?3 WHERE entity_type = ?1 AND entity_id = ?2 AND attempts = 0 "
    "AND status IN ('pending', 'failed')";
constexpr const char* kRewriteUnsent =
    "UPDATE changes SET type = ?4, data = ?2, updated_at = ?3 WHERE id = ?1 AND attempts = 0 "
    "AND status IN ('pending', 'failed')";
constexpr const char* kMarkSynced =
    "UPDATE changes SET status = 'synced', synced_at = ?2, updated_at = ?2, server_version = ?3, last_error = NULL "
    "WHERE change_id = ?1 AND status = 'syncing'";
constexpr const char* kMarkFailed =
    "UPDATE changes SET retry_count = retry_count + 1, last_error = ?2, updated_at = ?3, "
    "status = CASE WHEN retry_count + 1 >= ?4 THEN 'failed' ELSE 'pending' END "
    "WHERE change_id = ?1 AND status = 'syncing' RETURNING status";
constexpr const char* kReleaseInFlight =
    "UPDATE changes SET status = 'pending', updated_at = ?1 WHERE status = 'syncing'";
// LIMIT -1: no limit.
constexpr const char* kPurgeSynced =
    "DELETE FROM changes WHERE id IN (SELECT id FROM changes INDEXED BY changes_synced_by_time "
    "WHERE status = 'synced' AND synced_at < ?1 ORDER BY synced_at LIMIT ?2)";

#undef DS_CHANGE_COLUMNS

}  // namespace

const char* EnqueueOutcomeName(EnqueueOutcome outcome) {
  switch (outcome) {
    case EnqueueOutcome::kQueued: return "queued";
    case EnqueueOutcome::kCoalesced: return "coalesced";
    case EnqueueOutcome::kCancelled: return "cancelled";
    case EnqueueOutcome::kDuplicate: return "duplicate";
  }
  return "queued";
}

Change ReadChangeRow(const Statement& stmt) {
  Change change;
  change.id = stmt.Int(0);
  change.change_id = std::string(stmt.Text(1));
  change.tenant_id = stmt.OptionalText(2);
  change.user_id = stmt.OptionalText(3);
  change.entity_type = std::string(stmt.Text(4));
  change.entity_id = std::string(stmt.Text(5));
  change.type = ParseChangeType(stmt.Text(6)).value_or(ChangeType::kUpdated);
  change.data = stmt.OptionalText(7);
  change.base_version = stmt.OptionalInt(8);
  change.timestamp = stmt.Int(9);
  change.created_at = stmt.Int(10);
  change.updated_at = stmt.Int(11);
  change.synced_at = stmt.OptionalInt(12);
  change.status = ParseChangeStatus(stmt.Text(13)).value_or(ChangeStatus::kPending);
  change.retry_count = stmt.Int(14);
  change.last_error = stmt.OptionalText(15);
  change.server_version = stmt.OptionalInt(16);
  return change;
}

ChangeQueue::ChangeQueue(Database& db, Clock& clock, Random& random, QueueOptions options)
    : db_(db), clock_(clock), random_(random), options_(std::move(options)) {}

Result<bool> ChangeQueue::IsKnownChangeId(const std::string& change_id) {
  Result<Statement*> stmt = db_.Cached(kFindKnownId);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, change_id);
  return scope->Step();
}

Status ChangeQueue::AddAlias(const std::string& change_id, const std::optional<std::string>& merged_into) {
  Result<Statement*> stmt = db_.Cached(kInsertAlias);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, change_id);
  scope->BindOptionalText(2, merged_into);
  return scope->Run();
}

Result<EnqueueResult> ChangeQueue::EnqueueLocked(const ChangeInput& input, bool skip_duplicates) {
  EnqueueResult result;
  result.change_id = input.change_id ? *input.change_id : random_.UuidV7(clock_.NowMs());
  if (input.change_id) {
    Result<bool> known = IsKnownChangeId(result.change_id);
    if (!known.ok()) return known.status();
    if (known.value()) {
      if (skip_duplicates) {
        result.outcome = EnqueueOutcome::kDuplicate;
        return result;
      }
      return Status::Conflict("The changeId \"" + result.change_id + "\" is already queued");
    }
  }
  const int64_t now = clock_.NowMs();
  const int64_t timestamp = input.timestamp.value_or(now);

  // Only an UPDATED or a DELETED folds into the pending change before it; a CREATED is always
  // queued as it is, so it needs no look at the entity's changes.
  if (options_.coalesce && input.type != ChangeType::kCreated) {
    Result<Statement*> latest_stmt = db_.Cached(kFindLatestForEntity);
    if (!latest_stmt.ok()) return latest_stmt.status();
    Statement::Scope latest(*latest_stmt.value());
    latest->BindText(1, input.entity_type);
    latest->BindText(2, input.entity_id);
    Result<bool> found = latest->Step();
    if (!found.ok()) return found.status();
    // Only a change that was never sent may be rewritten: the server may already have
    // applied the changeId of one that was, and would ignore its new content.
    if (found.value() && latest->Text(4) == "pending" && latest->Int(5) == 0) {
      const int64_t row_id = latest->Int(0);
      std::string into(latest->Text(1));
      const std::optional<ChangeType> previous = ParseChangeType(latest->Text(2));
      std::optional<std::string> previous_data = latest->OptionalText(3);
      // The server may know the entity although this CREATED was never sent: it was made over a
      // pulled version (base_version), an older change of the entity was sent, the store holds a
      // version pulled from the server (one a lost conflict rolled it back to, say), or the
      // change now queued names a version it was made on.
      const std::optional<int64_t> pulled_version = latest->OptionalInt(8);
      const bool server_may_know =
          !latest->IsNull(6) || latest->Int(7) != 0 || pulled_version.has_value() || input.base_version.has_value();
      latest->Reset();

      const bool created_then_updated = previous == ChangeType::kCreated && input.type == ChangeType::kUpdated;
      const bool updated_then_updated = previous == ChangeType::kUpdated && input.type == ChangeType::kUpdated;
      const bool created_then_deleted = previous == ChangeType::kCreated && input.type == ChangeType::kDeleted;
      const bool updated_then_deleted = (previous == ChangeType::kUpdated && input.type == ChangeType::kDeleted) ||
                                        (created_then_deleted && server_may_know);

      if (created_then_updated || updated_then_updated || updated_then_deleted) {
        std::optional<std::string> merged;
        ChangeType merged_type = *previous;
        if (updated_then_deleted) {
          merged_type = ChangeType::kDeleted;
        } else if (previous_data && input.data) {
          // Into a CREATED (a whole document) a null removes the field; between two
          // deltas it is kept, so that it still removes the field on the server.
          Result<std::string> combined = ShallowMergeObjects(
              merge_parser_, *previous_data, *input.data,
              created_then_updated ? PatchNulls::kRemove : PatchNulls::kKeep);
          if (!combined.ok()) return combined.status();
          merged = std::move(combined).value();
          if (merged->size() > options_.max_document_bytes) {
            return Status::LimitExceeded("Folding this change into the pending change of " + input.entity_type + "/" +
                                         input.entity_id + " would make it " + std::to_string(merged->size()) +
                                         " bytes, over the limit of " + std::to_string(options_.max_document_bytes) +
                                         " bytes per document");
          }
        } else {
          merged = input.data ? input.data : previous_data;
        }
        Result<Statement*> update_stmt = db_.Cached(kUpdateCoalesced);
        if (!update_stmt.ok()) return update_stmt.status();
        Statement::Scope update(*update_stmt.value());
        update->BindInt(1, row_id);
        update->BindText(2, ChangeTypeName(merged_type));
        update->BindOptionalText(3, merged);
        update->BindInt(4, timestamp);
        update->BindInt(5, now);
        DS_RETURN_IF_ERROR(update->Run());
        DS_RETURN_IF_ERROR(AddAlias(result.change_id, into));
        if (created_then_deleted && (input.base_version || pulled_version)) {
          Result<Statement*> base_stmt = db_.Cached(kSetMissingBaseVersion);
          if (!base_stmt.ok()) return base_stmt.status();
          Statement::Scope base(*base_stmt.value());
          base->BindInt(1, row_id);
          base->BindInt(2, input.base_version ? *input.base_version : *pulled_version);
          DS_RETURN_IF_ERROR(base->Run());
        }
        result.outcome = EnqueueOutcome::kCoalesced;
        result.into = std::move(into);
        return result;
      }
      if (created_then_deleted && !server_may_know) {
        // The server never saw the entity: nothing needs to be sent.
        Result<Statement*> delete_stmt = db_.Cached(kDeleteById);
        if (!delete_stmt.ok()) return delete_stmt.status();
        Statement::Scope remove(*delete_stmt.value());
        remove->BindInt(1, row_id);
        DS_RETURN_IF_ERROR(remove->Run());
        DS_RETURN_IF_ERROR(AddAlias(into, std::nullopt));
        DS_RETURN_IF_ERROR(AddAlias(result.change_id, std::nullopt));
        result.outcome = EnqueueOutcome::kCancelled;
        return result;
      }
    }
  }

  Result<Statement*> insert_stmt = db_.Cached(kInsertChange);
  if (!insert_stmt.ok()) return insert_stmt.status();
  Statement::Scope insert(*insert_stmt.value());
  insert->BindText(1, result.change_id);
  insert->BindOptionalText(2, input.tenant_id ? input.tenant_id : options_.tenant_id);
  insert->BindOptionalText(3, input.user_id ? input.user_id : options_.user_id);
  insert->BindText(4, input.entity_type);
  insert->BindText(5, input.entity_id);
  insert->BindText(6, ChangeTypeName(input.type));
  insert->BindOptionalText(7, input.data);
  insert->BindOptionalInt(8, input.base_version);
  insert->BindInt(9, timestamp);
  insert->BindInt(10, now);
  insert->BindInt(11, input.retry_count);
  insert->BindOptionalText(12, input.last_error);
  DS_RETURN_IF_ERROR(insert->Run());
  result.outcome = EnqueueOutcome::kQueued;
  return result;
}

Result<EnqueueResult> ChangeQueue::Enqueue(const ChangeInput& input, const BeforeEach& before) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  if (before) DS_RETURN_IF_ERROR(before(input));
  Result<EnqueueResult> result = EnqueueLocked(input, false);
  if (!result.ok()) return result;
  DS_RETURN_IF_ERROR(tx.Commit());
  return result;
}

Result<std::vector<EnqueueResult>> ChangeQueue::EnqueueMany(const std::vector<ChangeInput>& inputs,
                                                            const BeforeEach& before) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  std::vector<EnqueueResult> results;
  results.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (before) DS_RETURN_IF_ERROR(before(inputs[i]));
    Result<EnqueueResult> result = EnqueueLocked(inputs[i], false);
    if (!result.ok()) {
      return Status::Error(result.status().code(),
                           "changes[" + std::to_string(i) + "]: " + result.status().message());
    }
    results.push_back(std::move(result).value());
  }
  DS_RETURN_IF_ERROR(tx.Commit());
  return results;
}

Result<ImportResult> ChangeQueue::ImportLegacy(const std::vector<ChangeInput>& inputs, int64_t already_skipped,
                                               const BeforeEach& before) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  ImportResult summary;
  summary.skipped = already_skipped;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (before) DS_RETURN_IF_ERROR(before(inputs[i]));
    Result<EnqueueResult> result = EnqueueLocked(inputs[i], true);
    if (!result.ok()) {
      return Status::Error(result.status().code(),
                           "records[" + std::to_string(i) + "]: " + result.status().message());
    }
    if (result.value().outcome == EnqueueOutcome::kDuplicate) {
      ++summary.skipped;
    } else {
      ++summary.imported;
    }
  }
  DS_RETURN_IF_ERROR(tx.Commit());
  return summary;
}

Result<std::vector<Change>> ChangeQueue::Query(const char* sql, const std::optional<std::string>& text_param,
                                               std::optional<int64_t> int_param) {
  Result<Statement*> stmt = db_.Cached(sql);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  if (text_param) scope->BindText(1, *text_param);
  if (int_param) scope->BindInt(text_param ? 2 : 1, *int_param);
  std::vector<Change> changes;
  for (;;) {
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    changes.push_back(ReadChangeRow(*scope));
  }
  return changes;
}

Result<std::vector<Change>> ChangeQueue::Pending(int64_t limit, const std::optional<std::string>& entity_type) {
  const int64_t bound = limit > 0 ? limit : -1;
  return Query(entity_type ? kPendingByType : kPendingAll, entity_type, bound);
}

Result<std::vector<Change>> ChangeQueue::Failed() { return Query(kFailedAll, std::nullopt, std::nullopt); }

Result<std::vector<Change>> ChangeQueue::All() { return Query(kAll, std::nullopt, std::nullopt); }

Result<QueueStats> ChangeQueue::Stats(QueueStatsDetail detail) {
  const bool full = detail == QueueStatsDetail::kFull;
  QueueStats stats;
  Result<Statement*> stmt = db_.Cached(full ? kStats : kUnsyncedTotals);
  if (!stmt.ok()) return stmt.status();
  {
    Statement::Scope scope(*stmt.value());
    for (;;) {
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) break;
      const std::optional<ChangeStatus> status = ParseChangeStatus(scope->Text(1));
      const int64_t count = scope->Int(2);
      if (!status) continue;
      // kUnsyncedTotals has no entity type (column 0) or oldest time (column 3).
      EntityTypeCounts unused;
      EntityTypeCounts& of_type = full ? stats.by_entity_type[std::string(scope->Text(0))] : unused;
      switch (*status) {
        case ChangeStatus::kPending: {
          stats.pending += count;
          of_type.pending += count;
          const int64_t oldest = scope->Int(3);
          if (full && (!stats.oldest_pending_at || oldest < *stats.oldest_pending_at)) stats.oldest_pending_at = oldest;
          break;
        }
        case ChangeStatus::kSyncing:
          stats.syncing += count;
          of_type.syncing += count;
          break;
        case ChangeStatus::kFailed:
          stats.failed += count;
          of_type.failed += count;
          break;
        case ChangeStatus::kSynced:
          stats.synced += count;
          break;
      }
    }
  }
  if (full) {
    Result<Statement*> synced = db_.Cached(kSyncedCount);
    if (!synced.ok()) return synced.status();
    Statement::Scope scope(*synced.value());
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    stats.synced = scope->Int(0);
  }
  Result<Statement*> last = db_.Cached(kLastSyncTime);
  if (!last.ok()) return last.status();
  Statement::Scope scope(*last.value());
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  if (row.value()) stats.last_sync_time = std::stoll(std::string(scope->Text(0)));
  return stats;
}

Result<int64_t> ChangeQueue::RetryFailed() {
  Result<Statement*> stmt = db_.Cached(kRetryFailed);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, clock_.NowMs());
  DS_RETURN_IF_ERROR(scope->Run());
  return static_cast<int64_t>(db_.Changes());
}

Status ChangeQueue::Discard(const std::string& change_id) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  {
    Result<Statement*> stmt = db_.Cached(kStatusOf);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, change_id);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) return Status::NotFound("No queued change has changeId \"" + change_id + "\"");
    if (scope->Text(0) == "syncing") {
      return Status::Conflict("The change \"" + change_id + "\" is in flight and cannot be discarded now");
    }
  }
  Result<Statement*> stmt = db_.Cached(kDiscard);
  if (!stmt.ok()) return stmt.status();
  {
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, change_id);
    DS_RETURN_IF_ERROR(scope->Run());
  }
  DS_RETURN_IF_ERROR(AddAlias(change_id, std::nullopt));
  return tx.Commit();
}

Result<std::vector<Change>> ChangeQueue::TakeBatch(int64_t limit) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  Result<std::vector<Change>> batch = Query(kTakeBatch, std::nullopt, limit > 0 ? limit : -1);
  if (!batch.ok()) return batch;
  const int64_t now = clock_.NowMs();
  Result<Statement*> stmt = db_.Cached(kMarkSyncing);
  if (!stmt.ok()) return stmt.status();
  for (Change& change : batch.value()) {
    Statement::Scope scope(*stmt.value());
    scope->BindInt(1, change.id);
    scope->BindInt(2, now);
    DS_RETURN_IF_ERROR(scope->Run());
    change.status = ChangeStatus::kSyncing;
    change.updated_at = now;
  }
  DS_RETURN_IF_ERROR(tx.Commit());
  return batch;
}

Result<bool> ChangeQueue::ForgetInFlight(const std::string& change_id) {
  Result<Statement*> stmt = db_.Cached(kForgetInFlight);
  if (!stmt.ok()) return stmt.status();
  {
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, change_id);
    DS_RETURN_IF_ERROR(scope->Run());
  }
  if (db_.Changes() == 0) return false;
  DS_RETURN_IF_ERROR(AddAlias(change_id, std::nullopt));
  return true;
}

Status ChangeQueue::RebaseUnsent(const std::string& entity_type, const std::string& entity_id, int64_t version) {
  Result<Statement*> stmt = db_.Cached(kRebaseUnsent);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, entity_type);
  scope->BindText(2, entity_id);
  scope->BindInt(3, version);
  return scope->Run();
}

Status ChangeQueue::RewriteUnsent(int64_t id, ChangeType type, const std::string& data) {
  Result<Statement*> stmt = db_.Cached(kRewriteUnsent);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, id);
  scope->BindText(2, data);
  scope->BindInt(3, clock_.NowMs());
  scope->BindText(4, ChangeTypeName(type));
  DS_RETURN_IF_ERROR(scope->Run());
  if (db_.Changes() == 0) return Status::Conflict("The change was sent already and cannot be rewritten");
  return Status::Ok();
}

Status ChangeQueue::MarkSynced(const std::string& change_id, std::optional<int64_t> server_version) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  const int64_t now = clock_.NowMs();
  {
    Result<Statement*> stmt = db_.Cached(kMarkSynced);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, change_id);
    scope->BindInt(2, now);
    scope->BindOptionalInt(3, server_version);
    DS_RETURN_IF_ERROR(scope->Run());
    if (db_.Changes() == 0) return Status::NotFound("No change in flight has changeId \"" + change_id + "\"");
  }
  {
    Result<Statement*> stmt = db_.Cached(kSetLastSyncTime);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    const std::string value = std::to_string(now);
    scope->BindText(1, value);
    DS_RETURN_IF_ERROR(scope->Run());
  }
  return tx.Commit();
}

Result<ChangeStatus> ChangeQueue::MarkFailed(const std::string& change_id, const std::string& error,
                                             int64_t max_retries) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  Result<Statement*> stmt = db_.Cached(kMarkFailed);
  if (!stmt.ok()) return stmt.status();
  ChangeStatus status = ChangeStatus::kPending;
  {
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, change_id);
    scope->BindText(2, error);
    scope->BindInt(3, clock_.NowMs());
    scope->BindInt(4, max_retries);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) return Status::NotFound("No change in flight has changeId \"" + change_id + "\"");
    status = ParseChangeStatus(scope->Text(0)).value_or(ChangeStatus::kPending);
  }
  DS_RETURN_IF_ERROR(tx.Commit());
  return status;
}

Result<int64_t> ChangeQueue::ReleaseInFlight() {
  Result<Statement*> stmt = db_.Cached(kReleaseInFlight);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, clock_.NowMs());
  DS_RETURN_IF_ERROR(scope->Run());
  return static_cast<int64_t>(db_.Changes());
}

Result<int64_t> ChangeQueue::RecoverInFlight() { return ReleaseInFlight(); }

Result<int64_t> ChangeQueue::PurgeSynced(int64_t retention_ms, int64_t max_rows) {
  Result<Statement*> stmt = db_.Cached(kPurgeSynced);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, clock_.NowMs() - retention_ms);
  scope->BindInt(2, max_rows);
  DS_RETURN_IF_ERROR(scope->Run());
  return static_cast<int64_t>(db_.Changes());
}

}  // namespace deltasync
