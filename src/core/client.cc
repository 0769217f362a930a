#include "core/client.h"

#include <string>
#include <utility>

#include "core/ingest.h"
#include "core/schema.h"

namespace deltasync {

namespace {

constexpr const char* kGetMeta = "SELECT value FROM meta WHERE key = ?1";
constexpr const char* kSetMeta =
    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

void AppendOptionalInt(std::string* out, const std::optional<int64_t>& value) {
  out->append(value ? std::to_string(*value) : "null");
}

void AppendOptionalText(std::string* out, const std::optional<std::string>& value) {
  if (value) {
    AppendJsonString(out, *value);
  } else {
    out->append("null");
  }
}

}  // namespace

std::string StatsToJson(const QueueStats& stats) {
  std::string out = "{\"pending\":" + std::to_string(stats.pending) +
                    ",\"syncing\":" + std::to_string(stats.syncing) +
                    ",\"failed\":" + std::to_string(stats.failed) + ",\"synced\":" + std::to_string(stats.synced) +
                    ",\"byEntityType\":{";
  bool first = true;
  for (const auto& [entity_type, counts] : stats.by_entity_type) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, entity_type);
    out += ":{\"pending\":" + std::to_string(counts.pending) + ",\"syncing\":" + std::to_string(counts.syncing) +
           ",\"failed\":" + std::to_string(counts.failed) + "}";
  }
  out += "},\"oldestPendingAt\":";
  AppendOptionalInt(&out, stats.oldest_pending_at);
  out += ",\"lastSyncTime\":";
  AppendOptionalInt(&out, stats.last_sync_time);
  out.push_back('}');
  return out;
}

Result<std::unique_ptr<Client>> Client::Open(const ClientOptions& options, std::shared_ptr<Clock> clock,
                                             std::shared_ptr<Random> random) {
  // Several processes or threads opening one new file at once can meet SQLite's lock
  // without its busy handler (the first switch to WAL, a hot journal): open again, up to
  // the busy timeout, before reporting BUSY.
  constexpr int kStepMs = 10;
  for (int waited = 0;; waited += kStepMs) {
    std::unique_ptr<Client> client(new Client(options, clock, random));
    Status status = client->Initialize();
    if (status.ok()) return client;
    if (status.code() != StatusCode::kBusy || waited >= options.busy_timeout_ms) return status;
    client.reset();
    sqlite3_sleep(kStepMs);
  }
}

Status Client::Initialize() {
  DatabaseOptions db_options;
  db_options.durability = options_.durability;
  db_options.busy_timeout_ms = options_.busy_timeout_ms;
  db_options.cache_kib = kClientCacheKib;
  db_options.enable_wal = false;  // not before Migrate has checked that the file is ours
  db_options.must_exist = options_.must_exist;
  db_options.crash_at_commit = options_.crash_at_commit;
  Result<std::unique_ptr<Database>> opened = Database::Open(options_.path, db_options);
  if (!opened.ok()) return opened.status();
  db_ = std::move(opened).value();
  DS_RETURN_IF_ERROR(Migrate(*db_, ClientMigrations(), kApplicationId, options_.must_exist));
  DS_RETURN_IF_ERROR(db_->EnableWal());
  const bool file = options_.path != ":memory:" && !options_.path.empty();
  if (file && !options_.observer) {
    open_marker_ = OpenMarker::Acquire(options_.path);
    // Checkpoints off the writing thread: otherwise a put() whose commit crosses the log's
    // threshold copies back what a whole pulled page wrote.
    Result<std::unique_ptr<WalCheckpointer>> checkpointer = WalCheckpointer::ForFile(*db_, options_.path, db_options);
    if (!checkpointer.ok()) return checkpointer.status();
    checkpointer_ = std::move(checkpointer).value();
  }

  QueueOptions queue_options;
  queue_options.coalesce = options_.coalesce;
  queue_options.tenant_id = options_.tenant_id;
  queue_options.user_id = options_.user_id;
  queue_options.max_document_bytes = options_.limits.max_document_bytes;
  queue_ = std::make_unique<ChangeQueue>(*db_, *clock_, *random_, queue_options);
  store_ = std::make_unique<DocumentStore>(*db_, *clock_, *queue_, options_.limits.max_document_bytes);
  applier_ = std::make_unique<DeltaApplier>(*db_, *clock_, *queue_, options_.conflicts,
                                            options_.conflicts_per_type);

  Transaction tx(*db_);
  DS_RETURN_IF_ERROR(tx.status());
  std::optional<std::string> stored;
  {
    Result<Statement*> get = db_->Cached(kGetMeta);
    if (!get.ok()) return get.status();
    Statement::Scope scope(*get.value());
    scope->BindText(1, "device_id");
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (row.value()) stored = std::string(scope->Text(0));
  }
  device_id_ = options_.device_id ? *options_.device_id : stored ? *stored : random_->UuidV4();
  if (device_id_ != stored) {
    Result<Statement*> set = db_->Cached(kSetMeta);
    if (!set.ok()) return set.status();
    Statement::Scope scope(*set.value());
    scope->BindText(1, "device_id");
    scope->BindText(2, device_id_);
    DS_RETURN_IF_ERROR(scope->Run());
  }
  // Changes in flight, and an ingest run in progress, are a crash's or a close()'s leftovers only
  // when no other live client has the file open: another one's sync or ingest is left alone.
  if (!options_.observer && (!open_marker_ || open_marker_->alone_at_open())) {
    Result<int64_t> recovered = queue_->RecoverInFlight();
    if (!recovered.ok()) return recovered.status();
    recovered_at_open_ = recovered.value();
    DS_RETURN_IF_ERROR(MarkInterruptedIngest(*db_));
  }
  return tx.Commit();
}

Result<EnqueueResult> Client::EnqueueDirect(const ChangeInput& input) {
  Result<bool> has_documents = store_->HasDocuments();
  if (!has_documents.ok()) return has_documents.status();
  if (!has_documents.value()) return queue_->Enqueue(input);
  return queue_->Enqueue(input, [this](const ChangeInput& change) {
    return store_->KeepBaseForDirectChange(change.entity_type, change.entity_id);
  });
}

Result<std::vector<EnqueueResult>> Client::EnqueueManyDirect(const std::vector<ChangeInput>& inputs) {
  Result<bool> has_documents = store_->HasDocuments();
  if (!has_documents.ok()) return has_documents.status();
  if (!has_documents.value()) return queue_->EnqueueMany(inputs);
  return queue_->EnqueueMany(inputs, [this](const ChangeInput& change) {
    return store_->KeepBaseForDirectChange(change.entity_type, change.entity_id);
  });
}

Result<ImportResult> Client::ImportLegacyDirect(const std::vector<ChangeInput>& inputs, int64_t already_skipped) {
  Result<bool> has_documents = store_->HasDocuments();
  if (!has_documents.ok()) return has_documents.status();
  if (!has_documents.value()) return queue_->ImportLegacy(inputs, already_skipped);
  return queue_->ImportLegacy(inputs, already_skipped, [this](const ChangeInput& change) {
    return store_->KeepBaseForDirectChange(change.entity_type, change.entity_id);
  });
}

Result<std::string> Client::ExportJson() {
  // One read transaction so stats and rows describe the same moment.
  Transaction tx(*db_);
  DS_RETURN_IF_ERROR(tx.status());
  Result<QueueStats> stats = queue_->Stats();
  Result<std::vector<Change>> changes = queue_->All();
  Result<int> schema = SchemaVersion(*db_);
  DS_RETURN_IF_ERROR(tx.Commit());
  if (!stats.ok()) return stats.status();
  if (!changes.ok()) return changes.status();
  if (!schema.ok()) return schema.status();
  std::string out = "{\"format\":\"deltasync.queue-export\",\"formatVersion\":1,\"exportedAt\":";
  out += std::to_string(clock_->NowMs());
  out += ",\"deviceId\":";
  AppendJsonString(&out, device_id_);
  out += ",\"userId\":";
  AppendOptionalText(&out, options_.user_id);
  out += ",\"tenantId\":";
  AppendOptionalText(&out, options_.tenant_id);
  out += ",\"schemaVersion\":" + std::to_string(schema.value());
  out += ",\"stats\":" + StatsToJson(stats.value());
  out += ",\"changes\":" + ChangesToJson(changes.value());
  out.push_back('}');
  return out;
}

}  // namespace deltasync
