// SyncServerCore: the server half. An embedded SQLite file holds, per user, a
// change log with gapless versions (entity_changes), the current entity state,
// per-device status, open conflicts and the recorded result of every changeId.
//
// Every operation takes and returns JSON text (the wire protocol of DESIGN.md
// section 4), so that requests are decoded and responses encoded here, off the
// JS main thread.
//
// Thread safety: thread-safe. The store serializes each user's operations (the SQLite
// store: every operation, on its one connection), so versions stay gapless and changeIds
// unique whatever the concurrency.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/apply.h"
#include "core/change.h"
#include "core/env.h"
#include "core/json.h"
#include "core/parser_pool.h"
#include "core/schema.h"
#include "core/server_postgres_store.h"
#include "core/server_store.h"
#include "core/sqlite.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

struct ServerLimits {
  // The request body limit (enforced by the router) is the guard on a push's size; this count
  // only stops a pathological request, so a client sending its whole queue gets through.
  size_t max_changes_per_push = 100000;
  size_t max_pull_limit = 10000;
  size_t default_pull_limit = 1000;
  // Every response stops adding pulled changes, records and conflicts' serverData at this
  // many bytes (hasMore / serverDataOmitted tell the rest); one change or one conflict's
  // data always goes, so each response makes progress.
  size_t max_response_bytes = 4 * 1024 * 1024;
  JsonLimits json;  // depth 64, document 1 MiB
};

// The app's own conflict resolver (strategy kCustom) runs in the host, outside the core. A
// request that meets custom conflicts without a verdict applies nothing: its result is
// {"resolverContexts": [{changeId, entityType, entityId, server, client, base, serverVersion,
// clientChange: {changeId, type, data, baseVersion, timestamp, deviceId}}]}, and the host runs
// it again with the resolver's verdicts. A verdict holds while the entity is still at the
// serverVersion the resolver saw; the outcome is recorded with the change, so a replay of the
// change returns it without asking again.
struct CustomVerdict {
  enum class Use { kClient, kServer, kMerged, kManual } use = Use::kManual;
  int64_t server_version = 0;
  std::optional<std::string> data;  // kMerged: the whole document (JSON, validated by the core)
  std::string note;                 // why a verdict is kManual when the resolver failed
};

struct ResolverExchange {
  std::map<std::string, CustomVerdict> verdicts;  // by changeId
  // Conflicts still without a (current) verdict become manual instead of asking again.
  bool final_round = false;
};

// What the HTTP layer knows about a request beyond its body.
struct RequestContext {
  // The X-Device-ID header: the device when the body names none.
  std::string device_id;
  // Set when some entity type has a custom strategy; without it such conflicts become manual.
  // The core checks the verdicts' merged data in it (a refused document becomes kManual).
  std::shared_ptr<ResolverExchange> resolver;
};

struct ServerOptions {
  std::string path;                         // the SQLite file, unless `postgres` is set
  std::optional<PostgresOptions> postgres;  // the PostgreSQL database instead of a file
  ConflictStrategy conflicts = ConflictStrategy::kNewestWins;
  std::map<std::string, ConflictStrategy> per_type;  // entity type -> strategy
  int64_t tolerance_ms = 1000;                       // newest_wins: closer than this is a tie (server wins)
  // A change timestamped further ahead of the server's clock than this is stamped with the
  // time the server received it instead (v2 and the compatible routes alike).
  int64_t max_clock_skew_ms = 60000;
  Durability durability = Durability::kNormal;
  int busy_timeout_ms = 10000;
  ServerLimits limits;
  int64_t crash_at_commit = 0;  // test hook: DatabaseOptions::crash_at_commit
};

// Options of the compatible (older-design) routes.
struct CompatOptions {
  // entity type -> field holding the record id; default: "id", else "<singular>_id" (customers -> customer_id)
  std::map<std::string, std::string> id_fields;
};

struct Resolution;
struct InspectQuery;

class SyncServerCore {
 public:
  static Result<std::unique_ptr<SyncServerCore>> Open(const ServerOptions& options, std::shared_ptr<Clock> clock);
  SyncServerCore(const SyncServerCore&) = delete;
  SyncServerCore& operator=(const SyncServerCore&) = delete;

  // The unified v2 exchange. `request`: {deviceId, lastKnownServerVersion, changes, limit?}.
  // Returns {applied, conflicts, errors, newChanges, latestServerVersion, headVersion, hasMore[, resync]}:
  // latestServerVersion is the version this response brings the device to (the cursor to
  // send next), headVersion the user's newest version. When lastKnownServerVersion is ahead
  // of the head (the server's database went back in time), the page starts from 0 and
  // carries "resync": true.
  // A malformed request is INVALID_ARGUMENT / LIMIT_EXCEEDED and nothing is applied; a
  // changeId reused with a different body is CONFLICT and nothing is applied.
  Result<std::string> Sync(const std::string& user_id, const std::string& request,
                           const RequestContext& context = {});
  // `request`: {deviceId, changes}. Returns {applied, conflicts, errors, latestServerVersion}.
  Result<std::string> Push(const std::string& user_id, const std::string& request,
                           const RequestContext& context = {});
  // Returns {newChanges, latestServerVersion, hasMore} for versions after `since`.
  Result<std::string> Pull(const std::string& user_id, const std::optional<std::string>& device_id, int64_t since,
                           std::optional<int64_t> limit);
  // {deviceId, lastPushAt, lastPullAt, changesPushed, conflictsReported, openConflicts, latestServerVersion, lastSeenVersion}
  Result<std::string> DeviceStatus(const std::string& user_id, const std::string& device_id);
  // Open conflicts (manual strategy) of a user with an id above `after`, as a JSON array, oldest
  // first, stopping past max_response_bytes (at least one): ask again after the last id.
  Result<std::string> Conflicts(const std::string& user_id, int64_t after = 0);
  // `resolution`: {use: "client" | "server" | "merged", data?}. Returns {conflictId, resolution, version?, serverData}.
  Result<std::string> ResolveConflict(const std::string& user_id, int64_t conflict_id, const std::string& resolution);
  // `state`: {entityType: [records]} (a legacy full-state blob). Each record becomes a CREATED
  // change (idempotent: importing the same record twice imports it once). Returns {imported, skipped, latestServerVersion}.
  Result<std::string> ImportSnapshot(const std::string& user_id, const std::string& state, const CompatOptions& compat);

  // ---- compatible routes (shared/seeds), thin wrappers over the operations above
  // POST /push {deviceId, changes: {entityType: [records with updated_at]}} -> {success, applied, conflicts, errors}
  Result<std::string> CompatPush(const std::string& user_id, const std::string& body, const CompatOptions& compat,
                                 const RequestContext& context = {});
  // POST /pull {deviceId, lastSyncTimestamp} -> {success, changes: {entityType: [records]}, timestamp, conflicts, deviceId}
  Result<std::string> CompatPull(const std::string& user_id, const std::string& body, const CompatOptions& compat);
  // POST /full: push then pull, one response with both.
  Result<std::string> CompatFull(const std::string& user_id, const std::string& body, const CompatOptions& compat,
                                 const RequestContext& context = {});
  // GET /changes?since=ISO8601 -> {since, updatedAt, entities: {entityType: [records]}}
  Result<std::string> CompatChanges(const std::string& user_id, const std::optional<std::string>& since,
                                    const CompatOptions& compat);
  // POST /resolve-conflict {conflictId, resolution: "client"|"server"|"merged"|{use, data}, data?}
  Result<std::string> CompatResolve(const std::string& user_id, const std::string& body);
  // POST /v2/migrate {entityType: [records]} or {state: {...}}, either with an optional deviceId:
  // imported as ImportSnapshot does. -> {success, imported, skipped, latestServerVersion}
  Result<std::string> CompatMigrate(const std::string& user_id, const std::string& body, const CompatOptions& compat);

  // The inspector's read-only views (server_inspection.h): JSON, or INVALID_ARGUMENT for a
  // query that breaks their rules.
  Result<std::string> Inspect(const InspectQuery& query);

  const ServerOptions& options() const { return options_; }

  // Called after each commit that advanced a user's log, once it is durable, with the user's new
  // head version (calls for one user may arrive out of version order: keep the highest),
  // on the thread that ran the operation (or, for another process's commit on the same
  // PostgreSQL database, on the store's listening thread): it must not block or call back into
  // the server. Replaces any earlier listener; an empty one removes it. Never
  // waits for an operation in progress.
  using CommitListener = std::function<void(const std::string& user_id, int64_t head_version)>;
  void SetCommitListener(CommitListener listener);

 private:
  SyncServerCore(ServerOptions options, std::shared_ptr<Clock> clock);
  // CompatPush (push), CompatPull (pull) and CompatFull (both): one request, one transaction.
  Result<std::string> CompatExchange(const std::string& user_id, const std::string& body, const CompatOptions& compat,
                                     const RequestContext& context, bool push, bool pull);
  class Operation;
  class Inspection;
  // Sync (with `pull`) and Push: one request, one transaction.
  Result<std::string> Exchange(const std::string& user_id, const std::string& request, const RequestContext& context,
                               bool pull);
  // ImportSnapshot and CompatMigrate, once the records are decoded: their answer, `opening`
  // (the object's "{" and any fields before the counts) then
  // "imported":n,"skipped":n,"latestServerVersion":n}.
  Result<std::string> Import(const std::string& user_id, const std::vector<ChangeInput>& changes,
                             std::string_view opening);
  // ResolveConflict and CompatResolve, once the resolution is decoded.
  Result<std::string> Resolve(Operation& op, const std::string& user_id, int64_t conflict_id,
                              const Resolution& resolution);
  // Runs `operation` on a session of the store, again (a bounded number of times) while it fails
  // with UNAVAILABLE: a transaction the database aborted (serialization failure, deadlock, lost
  // connection) left nothing behind, and changeIds make a repeated push a replay.
  template <typename Body>
  Result<std::string> WithSession(Body body);
  void NotifyCommit(const std::string& user_id, int64_t head_version);

  ServerOptions options_;
  std::shared_ptr<Clock> clock_;
  ParserPool parsers_;  // for decoding a request before it borrows a session
  std::mutex listener_mutex_;  // guards commit_listener_ and listening_, so setting it never waits for a request
  CommitListener commit_listener_;
  bool listening_ = false;
  std::unique_ptr<ServerStore> store_;  // last: destroyed (its listener stopped) before the listener
};

}  // namespace deltasync
