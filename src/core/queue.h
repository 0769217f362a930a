// ChangeQueue: the durable outbox. Every change is a row in `changes`; a change
// moves pending -> syncing (taken for sending) -> synced, or back to pending on
// a transient failure, or to failed after max retries.
//
// Ordering: per entity, changes are sent in the order they were queued, and
// nothing is taken while an earlier change of the same entity is failed or in
// flight. Coalescing (DESIGN.md section 5) only ever rewrites the newest change of
// an entity, and only while it is pending and was never sent: an in-flight change,
// or one that went out and came back to pending after a failure, is never rewritten.
//
// Thread safety: not thread-safe; one thread at a time, like its Database.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/change.h"
#include "core/env.h"
#include "core/json.h"
#include "core/sqlite.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

struct QueueOptions {
  bool coalesce = true;
  std::optional<std::string> tenant_id;  // stamped on changes that carry none
  // Coalescing may not build a change larger than this (the server's document limit).
  size_t max_document_bytes = 1024 * 1024;
  std::optional<std::string> user_id;
};

enum class EnqueueOutcome {
  kQueued,     // a new row
  kCoalesced,  // folded into the entity's pending change (`into` names it)
  kCancelled,  // a DELETED met the entity's pending CREATED: both are gone
  kDuplicate,  // importLegacy only: this changeId was already queued or folded
};
const char* EnqueueOutcomeName(EnqueueOutcome outcome);

struct EnqueueResult {
  EnqueueOutcome outcome = EnqueueOutcome::kQueued;
  std::string change_id;  // the input's changeId (generated when it had none)
  std::string into;       // kCoalesced: the surviving change's changeId
};

struct EntityTypeCounts {
  int64_t pending = 0;
  int64_t syncing = 0;
  int64_t failed = 0;
};

struct QueueStats {
  int64_t pending = 0;
  int64_t syncing = 0;
  int64_t failed = 0;
  int64_t synced = 0;  // retained synced rows, until PurgeSynced
  std::map<std::string, EntityTypeCounts> by_entity_type;
  std::optional<int64_t> oldest_pending_at;
  std::optional<int64_t> last_sync_time;
};

// What Stats counts. kUnsyncedTotals reads only the status index (changes_by_status), several
// times faster on a long queue: the sync engine's status needs no more.
enum class QueueStatsDetail {
  kFull,            // every field
  kUnsyncedTotals,  // pending, syncing, failed and last_sync_time; the rest left empty
};

struct ImportResult {
  int64_t imported = 0;
  int64_t skipped = 0;  // already queued (by changeId) or already synced
};

class ChangeQueue {
 public:
  // REQUIRES: `db` has the client schema; db, clock and random outlive the queue.
  ChangeQueue(Database& db, Clock& clock, Random& random, QueueOptions options);
  ChangeQueue(const ChangeQueue&) = delete;
  ChangeQueue& operator=(const ChangeQueue&) = delete;

  // Runs inside the enqueue's transaction just before each change is queued.
  using BeforeEach = std::function<Status(const ChangeInput&)>;

  // Queues one change in its own transaction (a savepoint when one is open).
  // A changeId that is already queued, or was folded into another change, is CONFLICT.
  Result<EnqueueResult> Enqueue(const ChangeInput& input, const BeforeEach& before = {});
  // Enqueue inside the caller's transaction, without a savepoint of its own: for writers that
  // already make the change part of one atomic unit (a document write, an ingest chunk).
  // REQUIRES: a transaction is open, and the caller rolls it back when this fails.
  Result<EnqueueResult> EnqueueInTransaction(const ChangeInput& input) { return EnqueueLocked(input, false); }
  // Queues all or none, in one transaction, in order.
  Result<std::vector<EnqueueResult>> EnqueueMany(const std::vector<ChangeInput>& inputs,
                                                 const BeforeEach& before = {});
  // Queues the records of an older client's queue, skipping changeIds already known,
  // so importing the same dump twice imports it once.
  Result<ImportResult> ImportLegacy(const std::vector<ChangeInput>& inputs, int64_t already_skipped,
                                    const BeforeEach& before = {});

  // Pending changes, oldest first. `limit` <= 0 means all.
  Result<std::vector<Change>> Pending(int64_t limit, const std::optional<std::string>& entity_type);
  Result<std::vector<Change>> Failed();
  // Every row in the queue, oldest first (for export).
  Result<std::vector<Change>> All();
  Result<QueueStats> Stats(QueueStatsDetail detail = QueueStatsDetail::kFull);
  // Failed changes become pending again with their retry count reset. Returns how many.
  Result<int64_t> RetryFailed();
  // Removes a pending, failed or synced change. In flight: CONFLICT. Unknown: NOT_FOUND.
  Status Discard(const std::string& change_id);

  // True when `change_id` is queued, or was folded into another change or discarded.
  Result<bool> IsKnownChangeId(const std::string& change_id);
  // Sets base_version on the entity's never-sent changes: they now build on `version`.
  Status RebaseUnsent(const std::string& entity_type, const std::string& entity_id, int64_t version);
  // Replaces the type and data of a change that was never sent. CONFLICT if it was sent.
  Status RewriteUnsent(int64_t id, ChangeType type, const std::string& data);

  // ---- Transitions used by the sync engine.

  // Takes up to `limit` pending changes for sending (pending -> syncing), oldest
  // first, and at most one per entity: the oldest unacknowledged one. A later change of
  // an entity goes out only once the earlier one is acknowledged, so it can never
  // overtake one that the server rejects (and a failed change blocks only its entity).
  Result<std::vector<Change>> TakeBatch(int64_t limit);
  // The server applied the change as `server_version` (syncing -> synced).
  Status MarkSynced(const std::string& change_id, std::optional<int64_t> server_version);
  // A permanent per-change rejection: counts a retry and records the error; the
  // change returns to pending, or becomes failed once retry_count reaches
  // max_retries. Returns the new status.
  Result<ChangeStatus> MarkFailed(const std::string& change_id, const std::string& error, int64_t max_retries);
  // The server settled an in-flight change for good without applying it (a lost
  // conflict): it leaves the queue. Returns false when it was not in flight.
  Result<bool> ForgetInFlight(const std::string& change_id);
  // A transient failure of the whole request: in-flight changes return to pending
  // without counting a retry. Returns how many.
  Result<int64_t> ReleaseInFlight();
  // Deletes synced rows whose synced_at is older than now - retention_ms, the oldest first and
  // at most max_rows of them (all when max_rows is negative), so that one call stays short
  // however much history has aged at once. Returns how many.
  Result<int64_t> PurgeSynced(int64_t retention_ms, int64_t max_rows = -1);
  // Crash recovery, run at open: rows left syncing return to pending. Returns how many.
  Result<int64_t> RecoverInFlight();

 private:
  Result<EnqueueResult> EnqueueLocked(const ChangeInput& input, bool skip_duplicates);
  Status AddAlias(const std::string& change_id, const std::optional<std::string>& merged_into);
  Result<std::vector<Change>> Query(const char* sql, const std::optional<std::string>& text_param,
                                    std::optional<int64_t> int_param);

  Database& db_;
  Clock& clock_;
  Random& random_;
  QueueOptions options_;
  simdjson::ondemand::parser merge_parser_;
};

// Reads one row of the canonical column list (kChangeColumns) into a Change.
Change ReadChangeRow(const Statement& stmt);
extern const char* const kChangeColumns;

}  // namespace deltasync
