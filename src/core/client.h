// Client: one local deltasync database (queue, document store, pulled-change
// applier, metadata) opened with its options. Owns the connection and everything on it.
//
// Thread safety: not thread-safe; the binding uses it from one thread.
#pragma once

#include <memory>
#include <map>
#include <optional>
#include <string>

#include "core/apply.h"
#include "core/change_codec.h"
#include "core/env.h"
#include "core/json.h"
#include "core/open_marker.h"
#include "core/queue.h"
#include "core/sqlite.h"
#include "core/store.h"
#include "core/wal_checkpointer.h"

namespace deltasync {

struct ClientOptions {
  std::string path;                       // SQLite file, or ":memory:"
  std::optional<std::string> device_id;   // persisted; generated on first open when absent
  std::optional<std::string> user_id;
  std::optional<std::string> tenant_id;
  bool coalesce = true;
  Durability durability = Durability::kNormal;
  int busy_timeout_ms = 10000;
  JsonLimits limits;
  ConflictStrategy conflicts = ConflictStrategy::kNewestWins;  // for pulled changes that meet local ones
  std::map<std::string, ConflictStrategy> conflicts_per_type;  // entity type -> strategy, over `conflicts`
  int64_t tombstone_retention_ms = 30LL * 24 * 60 * 60 * 1000;  // synced tombstones older than this are purged
  int64_t apply_chunk_size = 1000;  // changes per transaction when applying a pulled page
  bool must_exist = false;          // fail with NOT_FOUND instead of creating a missing file
  // A tool looking at a file an app may have open (the device inspector): takes no part in
  // the app's life. It never returns changes in flight to pending, holds no open marker (so
  // an app starting meanwhile still recovers its own crash leftovers) and runs no checkpoint.
  bool observer = false;
  int64_t crash_at_commit = 0;      // test hook: DatabaseOptions::crash_at_commit
};

class Client {
 public:
  // Opens or creates the database, upgrades its schema, settles the device id and, when no
  // other live client has the file open, returns changes left in flight by a crash to pending.
  static Result<std::unique_ptr<Client>> Open(const ClientOptions& options, std::shared_ptr<Clock> clock,
                                              std::shared_ptr<Random> random);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& device_id() const { return device_id_; }
  const ClientOptions& options() const { return options_; }
  // How many in-flight changes the last open returned to pending.
  int64_t recovered_at_open() const { return recovered_at_open_; }

  ChangeQueue& queue() { return *queue_; }
  DocumentStore& store() { return *store_; }
  DeltaApplier& applier() { return *applier_; }
  ChangeDecoder& decoder() { return decoder_; }
  Database& database() { return *db_; }
  Clock& clock() { return *clock_; }

  // Queue writes made directly (client.queue): like ChangeQueue's, but a change for an
  // entity the document store holds keeps that document's state as its server base.
  Result<EnqueueResult> EnqueueDirect(const ChangeInput& input);
  Result<std::vector<EnqueueResult>> EnqueueManyDirect(const std::vector<ChangeInput>& inputs);
  Result<ImportResult> ImportLegacyDirect(const std::vector<ChangeInput>& inputs, int64_t already_skipped);

  // Deletes tombstones whose delete is synced and older than tombstone_retention_ms.
  Result<int64_t> PurgeExpiredTombstones() { return store_->PurgeTombstones(options_.tombstone_retention_ms); }

  // A JSON document of everything queued, for debugging and support.
  Result<std::string> ExportJson();

 private:
  Client(ClientOptions options, std::shared_ptr<Clock> clock, std::shared_ptr<Random> random)
      : options_(std::move(options)), clock_(std::move(clock)), random_(std::move(random)),
        decoder_(options_.limits) {}
  Status Initialize();

  ClientOptions options_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<Random> random_;
  // Declared before db_, so released only after the database is closed.
  std::unique_ptr<OpenMarker> open_marker_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<WalCheckpointer> checkpointer_;  // after db_: stopped before it closes
  std::unique_ptr<ChangeQueue> queue_;
  std::unique_ptr<DocumentStore> store_;
  std::unique_ptr<DeltaApplier> applier_;
  ChangeDecoder decoder_;
  std::string device_id_;
  int64_t recovered_at_open_ = 0;
};

// {"pending":..,"syncing":..,"failed":..,"synced":..,"byEntityType":{..},"oldestPendingAt":..,"lastSyncTime":..}
std::string StatsToJson(const QueueStats& stats);

}  // namespace deltasync
