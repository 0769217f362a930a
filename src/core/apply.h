// Delta application: a pull page (core/pull_page.h), validated completely first so that a
// malformed page changes nothing, is applied in bounded chunks, one transaction per chunk,
// each advancing the stored server cursor to the last change it applied. A caller can
// release the database between chunks (see DeltaApplier::ApplyChunk).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/apply_decision.h"
#include "core/change.h"
#include "core/conflict_store.h"
#include "core/env.h"
#include "core/json.h"
#include "core/pull_page.h"
#include "core/queue.h"
#include "core/sqlite.h"
#include "core/status.h"
#include "core/store.h"
#include "simdjson.h"

namespace deltasync {

// A pulled change that met local changes the server has not acknowledged.
struct AppliedConflict {
  std::string entity_type;
  std::string entity_id;
  std::string change_id;  // the remote change
  int64_t version = 0;
  ConflictStrategy strategy = ConflictStrategy::kNewestWins;
  std::string winner;  // "local", "remote", "merged" or "manual" (kept open)
  std::optional<int64_t> conflict_id;  // kManual: the id for resolveConflict
};

// A pushed change the server rejected as a conflict (its winner was not the client).
struct LostChange {
  std::string change_id;
  std::string entity_type;
  std::string entity_id;
  std::string winner;
  std::string resolution;
  std::string reason;
  std::optional<int64_t> conflict_id;
  std::optional<int64_t> server_version;
};

struct ApplyResult {
  int64_t applied = 0;
  int64_t skipped = 0;  // already applied (version not newer than the document's)
  std::vector<AppliedConflict> conflicts;
  std::optional<int64_t> latest_server_version;  // the cursor after the page
  bool has_more = false;
  bool resynced = false;  // the page reset the client to the server's (older) history
  // Push verdicts, when the page was a sync response.
  int64_t pushed_applied = 0;
  std::vector<PushVerdict> pushed_conflicts;  // every conflict the server reported
  std::vector<std::string> pushed_failed;     // changeIds that are now 'failed' (out of retries)
  int64_t pushed_rejected = 0;                // changes the server rejected with an error
};

enum class ResolveUse { kLocal, kRemote, kMerged };

// A verdict on an open conflict, as the app's resolver gave it. It holds only while the
// conflict is still at `remote_version` (a later pull replaced what the resolver saw).
struct ConflictVerdict {
  int64_t conflict_id = 0;
  int64_t remote_version = 0;
  std::string local_token;  // the LocalStateToken of the local side the resolver saw
  // nullopt: leave the conflict open for a person (needsManualReview, or `error`).
  std::optional<ResolveUse> use;
  std::optional<std::string> data;   // kMerged: canonical JSON object
  std::optional<std::string> error;  // why the resolver failed, recorded with the conflict
};

// What ResolveConflict settled: the entity, and the document now visible (nullopt if deleted).
struct ResolvedConflict {
  std::string entity_type;
  std::string entity_id;
  std::optional<std::string> visible;
};

struct VerdictOutcome {
  enum class Kind { kResolved, kLeftForReview, kStale } kind = Kind::kResolved;
  int64_t conflict_id = 0;
  std::string entity_type;
  std::string entity_id;
};

class DeltaApplier {
 public:
  // REQUIRES: all references outlive the applier.
  // `per_type` overrides `strategy` for the entity types it names.
  DeltaApplier(Database& db, Clock& clock, ChangeQueue& queue, ConflictStrategy strategy,
               std::map<std::string, ConflictStrategy> per_type = {});
  DeltaApplier(const DeltaApplier&) = delete;
  DeltaApplier& operator=(const DeltaApplier&) = delete;

  // Applies page.changes[begin, end) in one transaction and moves the cursor to the
  // last of them (and, when `end` is the end of a page without hasMore, to the page's
  // latestServerVersion). Accumulates into *result. `page` may hold a window of the page's
  // changes (PageChangeReader): positions are then within the window.
  // A page with `resync` first resets the client to the server's history: the cursor goes to
  // 0, the client's acknowledged changes above the server's head (which the server lost) are
  // queued again, and documents pulled above the head are re-pulled from the server.
  // `stop_early`, when given, is asked after each change once `min_changes` of the chunk are
  // applied: true commits what is applied so far and returns, so a writer waiting for the
  // database gets it within a few changes instead of a whole chunk. *reached (when given)
  // is where the chunk ended, the `begin` of the next one.
  Status ApplyChunk(const PullPage& page, size_t begin, size_t end, ApplyResult* result,
                    const std::function<bool()>& stop_early = {}, size_t min_changes = 1,
                    size_t* reached = nullptr);

  // Records the server's verdicts on pushed changes, in one transaction: applied changes are
  // synced; a change that lost a conflict leaves the queue and its entity rolls back to the
  // server's data (with any later local changes replayed on it); a rejected change counts a
  // retry and is failed after max_retries.
  Status ApplyVerdicts(const PullPage& page, int64_t max_retries, ApplyResult* result);

  // The stored server cursor (0 before the first pull).
  Result<int64_t> Cursor();

  // Open conflicts (strategies kManual and kCustom) as a JSON array (ConflictStore::OpenJson).
  Result<std::string> ConflictsJson();
  // The conflicts the app's resolver has to settle (ConflictStore::AwaitingResolverJson).
  Result<std::string> AwaitingResolverJson();
  // Applies the resolver's verdicts in one transaction: each is settled as by ResolveConflict,
  // left open for review, or skipped as stale (no longer awaiting a resolver at its
  // remote_version, or the local side changed since the resolver saw it). A verdict that fails
  // to apply leaves its conflict for review, with the reason, and the others go on. Returns one
  // outcome per verdict, in the verdicts' order.
  Result<std::vector<VerdictOutcome>> SettleConflicts(const std::vector<ConflictVerdict>& verdicts);
  // Settles an open conflict. `data` (canonical JSON object) is required for kMerged.
  // Queues what the server must learn and returns the entity and its new visible document.
  Result<ResolvedConflict> ResolveConflict(int64_t conflict_id, ResolveUse use, const std::optional<std::string>& data);

 private:
  using State = EntityState;

  // The entities that may hold local changes under a chunk whose first change has
  // `first_version`; Unknown() when the queue holds more than about `chunk_changes` rows to list.
  Result<DirtyEntities> LoadDirtyEntities(int64_t first_version, size_t chunk_changes);
  Status ApplyOne(const RemoteChange& change, const DirtyEntities& dirty_entities, ApplyResult* result);
  // The entity's unacknowledged changes and, with `acknowledged_above`, also those the server
  // acknowledged at a higher version.
  Result<std::vector<LocalChange>> LocalChanges(const std::string& entity_type, const std::string& entity_id,
                                                std::optional<int64_t> acknowledged_above = std::nullopt);
  // ReplayLocalChanges with the applier's parser.
  Result<State> Replay(State base, const std::vector<LocalChange>& changes, bool only_in_flight,
                       bool created_merges = false);
  // Carries out PlanConflict's plan for `change`, which met `locals`.
  Status SettleWithLocalChanges(const RemoteChange& change, const std::vector<LocalChange>& locals,
                                const State& server_before, const State& server_after, ApplyResult* result);
  Status DiscardUnsent(const std::vector<LocalChange>& changes);
  Status WriteDocument(const RemoteChange& change, const State& visible, const State& server, bool dirty);
  Status WriteRolledBack(const RemoteChange& change, const State& visible, const State& server, bool dirty);
  ConflictStrategy StrategyFor(const std::string& entity_type) const;
  // ResolveConflict inside the caller's transaction.
  Result<std::optional<std::string>> Resolve(int64_t conflict_id, const ConflictStore::OpenConflict& open, ResolveUse use,
                                             const std::optional<std::string>& data);
  Status SetCursor(int64_t version);
  Status ResetToServerHistory(int64_t head);

  Database& db_;
  Clock& clock_;
  ChangeQueue& queue_;
  ConflictStrategy strategy_;
  std::map<std::string, ConflictStrategy> per_type_;
  ConflictStore conflicts_;
  simdjson::ondemand::parser parser_;
};

}  // namespace deltasync
