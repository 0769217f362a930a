#include "binding/native_client.h"

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "binding/apply_worker.h"
#include "binding/settle_worker.h"
#include "binding/ingest_worker.h"
#include "binding/test_hooks.h"

namespace deltasync::binding {

namespace {

// Reads a JS string as UTF-8 into a std::string, with SIMDJSON_PADDING bytes of spare
// capacity so that the decoder can parse it in place.
std::string ReadString(const Napi::Value& value) {
  napi_env env = value.Env();
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, nullptr, 0, &length) != napi_ok) {
    throw Napi::TypeError::New(env, "Expected a string");
  }
  std::string out;
  out.reserve(length + simdjson::SIMDJSON_PADDING);
  out.resize(length);
  napi_get_value_string_utf8(env, value, out.data(), length + 1, &length);
  return out;
}

// A short string argument (an entity type or id, which lib/ has checked): read in one pass,
// without the padding ReadString reserves for simdjson. A longer one is read as ReadString does.
std::string ReadKey(const Napi::Value& value) {
  char buffer[512];
  size_t length = 0;
  // A longer string is cut short of a whole character (at most 3 bytes) before the buffer's
  // end; it, and a value that is no string, are left to ReadString.
  if (napi_get_value_string_utf8(value.Env(), value, buffer, sizeof(buffer), &length) == napi_ok &&
      length + 4 < sizeof(buffer)) {
    return std::string(buffer, length);
  }
  return ReadString(value);
}

// Copies a string, Buffer, TypedArray, DataView or ArrayBuffer into a buffer padded for simdjson.
simdjson::padded_string ReadBytes(const Napi::Value& value) {
  napi_env env = value.Env();
  if (value.IsString()) {
    size_t length = 0;
    napi_get_value_string_utf8(env, value, nullptr, 0, &length);
    simdjson::padded_string out(length);
    std::string scratch(length, '\0');
    napi_get_value_string_utf8(env, value, scratch.data(), length + 1, &length);
    std::memcpy(out.data(), scratch.data(), length);
    return out;
  }
  const uint8_t* data = nullptr;
  size_t length = 0;
  if (value.IsTypedArray()) {
    Napi::TypedArray array = value.As<Napi::TypedArray>();
    data = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    length = array.ByteLength();
  } else if (value.IsDataView()) {
    Napi::DataView view = value.As<Napi::DataView>();
    data = static_cast<const uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
    length = view.ByteLength();
  } else if (value.IsArrayBuffer()) {
    Napi::ArrayBuffer buffer = value.As<Napi::ArrayBuffer>();
    data = static_cast<const uint8_t*>(buffer.Data());
    length = buffer.ByteLength();
  } else {
    throw Napi::TypeError::New(env, "Expected a string, Buffer, Uint8Array or ArrayBuffer");
  }
  simdjson::padded_string out(length);
  if (length > 0) std::memcpy(out.data(), data, length);
  return out;
}

std::optional<std::string> OptionalString(const Napi::Object& options, const char* key) {
  Napi::Value value = options.Get(key);
  if (!value.IsString()) return std::nullopt;
  return ReadString(value);
}

Napi::Object WriteEventObject(Napi::Env env, const WriteEvent& event) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("entityType", event.entity_type);
  out.Set("entityId", event.entity_id);
  out.Set("type", ChangeTypeName(event.type));
  out.Set("changeId", event.change_id);
  out.Set("outcome", EnqueueOutcomeName(event.outcome));
  return out;
}

}  // namespace

Napi::Function NativeClient::Define(Napi::Env env, DeltaSyncAddon* addon) {
  Napi::Function ctor = DefineClass(
      env, "NativeClient",
      {
          InstanceMethod("close", &NativeClient::Close),
          InstanceMethod("isOpen", &NativeClient::IsOpen),
          InstanceMethod("deviceId", &NativeClient::DeviceId),
          InstanceMethod("recoveredAtOpen", &NativeClient::RecoveredAtOpen),
          InstanceMethod("enqueue", &NativeClient::Enqueue),
          InstanceMethod("enqueueMany", &NativeClient::EnqueueMany),
          InstanceMethod("importLegacy", &NativeClient::ImportLegacy),
          InstanceMethod("pending", &NativeClient::Pending),
          InstanceMethod("failed", &NativeClient::Failed),
          InstanceMethod("stats", &NativeClient::Stats),
          InstanceMethod("exportJson", &NativeClient::Export),
          InstanceMethod("retryFailed", &NativeClient::RetryFailed),
          InstanceMethod("discard", &NativeClient::Discard),
          InstanceMethod("takeBatch", &NativeClient::TakeBatch),
          InstanceMethod("markSynced", &NativeClient::MarkSynced),
          InstanceMethod("markFailed", &NativeClient::MarkFailed),
          InstanceMethod("releaseInFlight", &NativeClient::ReleaseInFlight),
          InstanceMethod("purgeSynced", &NativeClient::PurgeSynced),
          InstanceMethod("put", &NativeClient::Put),
          InstanceMethod("patch", &NativeClient::Patch),
          InstanceMethod("delete", &NativeClient::Delete),
          InstanceMethod("get", &NativeClient::Get),
          InstanceMethod("list", &NativeClient::List),
          InstanceMethod("explainList", &NativeClient::ExplainList),
          InstanceMethod("createIndex", &NativeClient::CreateIndex),
          InstanceMethod("purgeTombstones", &NativeClient::PurgeTombstones),
          InstanceMethod("begin", &NativeClient::Begin),
          InstanceMethod("commit", &NativeClient::Commit),
          InstanceMethod("rollback", &NativeClient::Rollback),
          InstanceMethod("applyRemote", &NativeClient::ApplyRemote),
          InstanceMethod("cursor", &NativeClient::Cursor),
          InstanceMethod("conflicts", &NativeClient::Conflicts),
          InstanceMethod("resolveConflict", &NativeClient::ResolveConflict),
          InstanceMethod("awaitingResolver", &NativeClient::AwaitingResolver),
          InstanceMethod("settleConflicts", &NativeClient::SettleConflicts),
          InstanceMethod("ingest", &NativeClient::Ingest),
          InstanceMethod("ingestStatus", &NativeClient::IngestStatus),
          InstanceMethod("resetIngest", &NativeClient::ResetIngest),
          InstanceMethod("schedConfigure", &NativeClient::SchedConfigure),
          InstanceMethod("schedStart", &NativeClient::SchedStart),
          InstanceMethod("schedStop", &NativeClient::SchedStop),
          InstanceMethod("schedNotify", &NativeClient::SchedNotify),
          InstanceMethod("schedRequestManual", &NativeClient::SchedRequestManual),
          InstanceMethod("schedNextWakeAt", &NativeClient::SchedNextWakeAt),
          InstanceMethod("schedTryStart", &NativeClient::SchedTryStart),
          InstanceMethod("schedFinished", &NativeClient::SchedFinished),
          InstanceMethod("schedStatus", &NativeClient::SchedStatus),
          InstanceMethod("schedTryProbe", &NativeClient::SchedTryProbe),
          InstanceMethod("schedProbeFinished", &NativeClient::SchedProbeFinished),
          InstanceMethod("schedTryOpenStream", &NativeClient::SchedTryOpenStream),
          InstanceMethod("schedStreamOpened", &NativeClient::SchedStreamOpened),
          InstanceMethod("schedStreamClosed", &NativeClient::SchedStreamClosed),
          InstanceMethod("schedWantsStream", &NativeClient::SchedWantsStream),
      },
      addon);
  addon->native_client_constructor = Napi::Persistent(ctor);
  return ctor;
}

// new NativeClient({ path, deviceId?, userId?, tenantId?, coalesce, durability, busyTimeoutMs,
//                    maxDepth, maxDocumentBytes, conflicts, tombstoneRetentionMs, applyChunkSize })
namespace {

// The clock of a new client: the system's, or, under the test hook
// DELTASYNC_TEST_HOOKS=clock-skew-ms=<n> (read when the client is made), the system's shifted by
// n ms, so that simulations can give each device a wrong clock for its store writes too.
std::shared_ptr<Clock> ClientClock() {
  const std::optional<int64_t> skew = TestHook("clock-skew-ms");
  if (!skew) return std::make_shared<SystemClock>();
  return std::make_shared<OffsetClock>(*skew);
}

}  // namespace

NativeClient::NativeClient(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<NativeClient>(info),
      addon_(static_cast<DeltaSyncAddon*>(info.Data())),
      slot_(std::make_shared<ClientSlot>()) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Expected an options object");
  Napi::Object options = info[0].As<Napi::Object>();
  ClientOptions client_options;
  client_options.path = ReadString(options.Get("path"));
  client_options.device_id = OptionalString(options, "deviceId");
  client_options.user_id = OptionalString(options, "userId");
  client_options.tenant_id = OptionalString(options, "tenantId");
  client_options.coalesce = options.Get("coalesce").ToBoolean().Value();
  client_options.durability =
      OptionalString(options, "durability") == std::optional<std::string>("full") ? Durability::kFull
                                                                                   : Durability::kNormal;
  auto number = [&](const char* key) -> std::optional<int64_t> {
    Napi::Value value = options.Get(key);
    if (!value.IsNumber()) return std::nullopt;
    return value.As<Napi::Number>().Int64Value();
  };
  if (auto value = number("busyTimeoutMs")) client_options.busy_timeout_ms = static_cast<int>(*value);
  if (auto value = number("maxDepth")) client_options.limits.max_depth = static_cast<int>(*value);
  if (auto value = number("maxDocumentBytes")) client_options.limits.max_document_bytes = static_cast<size_t>(*value);
  if (auto value = number("tombstoneRetentionMs")) client_options.tombstone_retention_ms = *value;
  if (auto value = number("applyChunkSize")) client_options.apply_chunk_size = *value;
  client_options.must_exist = options.Get("mustExist").ToBoolean().Value();
  client_options.observer = options.Get("observer").ToBoolean().Value();
  // Test hook DELTASYNC_TEST_HOOKS=crash-at-commit=<n>: see DatabaseOptions::crash_at_commit.
  client_options.crash_at_commit = TestHook("crash-at-commit").value_or(0);
  if (auto strategy = OptionalString(options, "conflicts")) {
    client_options.conflicts = ParseConflictStrategy(*strategy).value_or(ConflictStrategy::kNewestWins);
  }
  if (options.Get("conflictsPerType").IsObject()) {
    Napi::Object per_type = options.Get("conflictsPerType").As<Napi::Object>();
    Napi::Array keys = per_type.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      const std::string key = ReadString(keys.Get(i));
      client_options.conflicts_per_type[key] =
          ParseConflictStrategy(ReadString(per_type.Get(key))).value_or(ConflictStrategy::kNewestWins);
    }
  }
  Result<std::unique_ptr<Client>> opened =
      Client::Open(client_options, ClientClock(), std::make_shared<SystemRandom>());
  if (!opened.ok()) addon_->Throw(env, opened.status());
  slot_->client = std::move(opened).value();
  slot_->open.store(slot_->client != nullptr, std::memory_order_release);
  addon_->open_clients.insert(this);
}

NativeClient::~NativeClient() { CloseNative(); }

void NativeClient::CloseNative() {
  if (!slot_) return;
  while (!transactions_.empty()) {
    transactions_.pop_back();  // rolls back
    transaction_locks_.pop_back();
  }
  {
    std::unique_lock<std::recursive_mutex> lock = slot_->LockAsCaller();
    slot_->open.store(false, std::memory_order_release);
    slot_->client.reset();
  }
  addon_->open_clients.erase(this);
}

std::unique_lock<std::recursive_mutex> ClientSlot::LockAsCaller() {
  waiters.fetch_add(1, std::memory_order_acq_rel);
  std::unique_lock<std::recursive_mutex> lock(mutex);
  waiters.fetch_sub(1, std::memory_order_acq_rel);
  return lock;
}

void ClientSlot::YieldToWaiters() const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  while (waiters.load(std::memory_order_acquire) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
}

Client& NativeClient::Require(Napi::Env env, std::unique_lock<std::recursive_mutex>& lock) {
  lock = slot_->LockAsCaller();
  if (!slot_->client) {
    lock.unlock();
    addon_->Throw(env, Status::Closed("The client is closed"));
  }
  return *slot_->client;
}

void NativeClient::ThrowIfError(Napi::Env env, const Status& status) {
  if (!status.ok()) addon_->Throw(env, status);
}

#define DS_REQUIRE_CLIENT(env)                      \
  std::unique_lock<std::recursive_mutex> ds_lock_; \
  Client& client = Require(env, ds_lock_)

Napi::Value NativeClient::Close(const Napi::CallbackInfo& info) {
  CloseNative();
  return info.Env().Undefined();
}

Napi::Value NativeClient::IsOpen(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), slot_->open.load(std::memory_order_acquire));
}

Napi::Value NativeClient::DeviceId(const Napi::CallbackInfo& info) {
  DS_REQUIRE_CLIENT(info.Env());
  return Napi::String::New(info.Env(), client.device_id());
}

Napi::Value NativeClient::RecoveredAtOpen(const Napi::CallbackInfo& info) {
  DS_REQUIRE_CLIENT(info.Env());
  return Napi::Number::New(info.Env(), static_cast<double>(client.recovered_at_open()));
}

// enqueue(changeJson) -> { changeId, outcome, into? }
Napi::Value NativeClient::Enqueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string json = ReadString(info[0]);
  DS_REQUIRE_CLIENT(env);
  ChangeInput input;
  ThrowIfError(env, client.decoder().DecodeOne(json, "change", &input));
  Result<EnqueueResult> result = client.EnqueueDirect(input);
  ThrowIfError(env, result.status());
  Napi::Object out = Napi::Object::New(env);
  out.Set("changeId", result.value().change_id);
  out.Set("outcome", EnqueueOutcomeName(result.value().outcome));
  if (!result.value().into.empty()) out.Set("into", result.value().into);
  return out;
}

// enqueueMany(changesJson) -> { queued, coalesced, cancelled, changeIds }
Napi::Value NativeClient::EnqueueMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string json = ReadString(info[0]);
  DS_REQUIRE_CLIENT(env);
  std::vector<ChangeInput> inputs;
  Status decoded = client.decoder().DecodeArray(json, DecodeMode::kWire, "changes", &inputs, nullptr);
  client.decoder().ReleaseLargeBuffers(json.size());
  ThrowIfError(env, decoded);
  Result<std::vector<EnqueueResult>> results = client.EnqueueManyDirect(inputs);
  ThrowIfError(env, results.status());
  int64_t queued = 0, coalesced = 0, cancelled = 0;
  Napi::Array change_ids = Napi::Array::New(env, results.value().size());
  uint32_t index = 0;
  for (const EnqueueResult& result : results.value()) {
    switch (result.outcome) {
      case EnqueueOutcome::kQueued: ++queued; break;
      case EnqueueOutcome::kCoalesced: ++coalesced; break;
      case EnqueueOutcome::kCancelled: ++cancelled; break;
      case EnqueueOutcome::kDuplicate: break;
    }
    change_ids.Set(index++, Napi::String::New(env, result.change_id));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("queued", Napi::Number::New(env, static_cast<double>(queued)));
  out.Set("coalesced", Napi::Number::New(env, static_cast<double>(coalesced)));
  out.Set("cancelled", Napi::Number::New(env, static_cast<double>(cancelled)));
  out.Set("changeIds", change_ids);
  return out;
}

// importLegacy(recordsJson) -> { imported, skipped }
Napi::Value NativeClient::ImportLegacy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string json = ReadString(info[0]);
  DS_REQUIRE_CLIENT(env);
  std::vector<ChangeInput> inputs;
  size_t synced = 0;
  Status decoded = client.decoder().DecodeArray(json, DecodeMode::kLegacy, "records", &inputs, &synced);
  client.decoder().ReleaseLargeBuffers(json.size());
  ThrowIfError(env, decoded);
  Result<ImportResult> result = client.ImportLegacyDirect(inputs, static_cast<int64_t>(synced));
  ThrowIfError(env, result.status());
  Napi::Object out = Napi::Object::New(env);
  out.Set("imported", Napi::Number::New(env, static_cast<double>(result.value().imported)));
  out.Set("skipped", Napi::Number::New(env, static_cast<double>(result.value().skipped)));
  return out;
}

// pending(limit, entityType | null) -> JSON array
Napi::Value NativeClient::Pending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t limit = info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : 0;
  std::optional<std::string> entity_type;
  if (info[1].IsString()) entity_type = ReadString(info[1]);
  DS_REQUIRE_CLIENT(env);
  Result<std::vector<Change>> changes = client.queue().Pending(limit, entity_type);
  ThrowIfError(env, changes.status());
  return Napi::String::New(env, ChangesToJson(changes.value()));
}

Napi::Value NativeClient::Failed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<std::vector<Change>> changes = client.queue().Failed();
  ThrowIfError(env, changes.status());
  return Napi::String::New(env, ChangesToJson(changes.value()));
}

Napi::Value NativeClient::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  // stats(false): the unsynced totals only.
  const bool full = !(info.Length() > 0 && info[0].IsBoolean() && !info[0].As<Napi::Boolean>().Value());
  Result<QueueStats> stats = client.queue().Stats(full ? QueueStatsDetail::kFull : QueueStatsDetail::kUnsyncedTotals);
  ThrowIfError(env, stats.status());
  return Napi::String::New(env, StatsToJson(stats.value()));
}

Napi::Value NativeClient::Export(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<std::string> json = client.ExportJson();
  ThrowIfError(env, json.status());
  return Napi::String::New(env, json.value());
}

Napi::Value NativeClient::RetryFailed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<int64_t> count = client.queue().RetryFailed();
  ThrowIfError(env, count.status());
  return Napi::Number::New(env, static_cast<double>(count.value()));
}

Napi::Value NativeClient::Discard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string change_id = ReadString(info[0]);
  DS_REQUIRE_CLIENT(env);
  ThrowIfError(env, client.queue().Discard(change_id));
  return env.Undefined();
}

Napi::Value NativeClient::TakeBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<std::vector<Change>> batch = client.queue().TakeBatch(info[0].As<Napi::Number>().Int64Value());
  ThrowIfError(env, batch.status());
  return Napi::String::New(env, ChangesToJson(batch.value()));
}

Napi::Value NativeClient::MarkSynced(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string change_id = ReadString(info[0]);
  std::optional<int64_t> version;
  if (info[1].IsNumber()) version = info[1].As<Napi::Number>().Int64Value();
  DS_REQUIRE_CLIENT(env);
  ThrowIfError(env, client.queue().MarkSynced(change_id, version));
  return env.Undefined();
}

Napi::Value NativeClient::MarkFailed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string change_id = ReadString(info[0]);
  const std::string error = ReadString(info[1]);
  const int64_t max_retries = info[2].As<Napi::Number>().Int64Value();
  DS_REQUIRE_CLIENT(env);
  Result<ChangeStatus> status = client.queue().MarkFailed(change_id, error, max_retries);
  ThrowIfError(env, status.status());
  return Napi::String::New(env, ChangeStatusName(status.value()));
}

Napi::Value NativeClient::ReleaseInFlight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<int64_t> count = client.queue().ReleaseInFlight();
  ThrowIfError(env, count.status());
  return Napi::Number::New(env, static_cast<double>(count.value()));
}

Napi::Value NativeClient::PurgeSynced(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  const int64_t max_rows = info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : -1;
  Result<int64_t> count = client.queue().PurgeSynced(info[0].As<Napi::Number>().Int64Value(), max_rows);
  ThrowIfError(env, count.status());
  return Napi::Number::New(env, static_cast<double>(count.value()));
}

// ---- store

Napi::Value NativeClient::Put(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string entity_type = ReadKey(info[0]);
  const std::string entity_id = ReadKey(info[1]);
  const std::string json = ReadString(info[2]);
  DS_REQUIRE_CLIENT(env);
  std::string doc;
  ThrowIfError(env, client.decoder().ValidateDocument(json, "doc", &doc));
  Result<WriteEvent> event = client.store().Put(entity_type, entity_id, doc);
  ThrowIfError(env, event.status());
  return WriteEventObject(env, event.value());
}

Napi::Value NativeClient::Patch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string entity_type = ReadKey(info[0]);
  const std::string entity_id = ReadKey(info[1]);
  const std::string json = ReadString(info[2]);
  DS_REQUIRE_CLIENT(env);
  std::string fields;
  ThrowIfError(env, client.decoder().ValidateDocument(json, "fields", &fields));
  Result<WriteEvent> event = client.store().Patch(entity_type, entity_id, fields);
  ThrowIfError(env, event.status());
  return WriteEventObject(env, event.value());
}

Napi::Value NativeClient::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string entity_type = ReadKey(info[0]);
  const std::string entity_id = ReadKey(info[1]);
  DS_REQUIRE_CLIENT(env);
  Result<std::optional<WriteEvent>> event = client.store().Delete(entity_type, entity_id);
  ThrowIfError(env, event.status());
  if (!event.value()) return env.Null();
  return WriteEventObject(env, *event.value());
}

// get(entityType, entityId, withMeta) -> data JSON text | { data, version, dirty, deleted, lastSyncedAt, updatedAt } | null
Napi::Value NativeClient::Get(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string entity_type = ReadKey(info[0]);
  const std::string entity_id = ReadKey(info[1]);
  const bool with_meta = info[2].ToBoolean().Value();
  DS_REQUIRE_CLIENT(env);
  Result<std::optional<StoredDocument>> doc = client.store().Get(entity_type, entity_id, with_meta);
  ThrowIfError(env, doc.status());
  if (!doc.value()) return env.Null();
  const StoredDocument& stored = *doc.value();
  if (!with_meta) return Napi::String::New(env, *stored.data);
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", stored.data ? Napi::Value(Napi::String::New(env, *stored.data)) : env.Null());
  out.Set("version", stored.meta.version ? Napi::Value(Napi::Number::New(env, static_cast<double>(*stored.meta.version)))
                                         : env.Null());
  out.Set("dirty", stored.meta.dirty);
  out.Set("deleted", stored.meta.deleted);
  out.Set("lastSyncedAt", stored.meta.last_synced_at
                              ? Napi::Value(Napi::Number::New(env, static_cast<double>(*stored.meta.last_synced_at)))
                              : env.Null());
  out.Set("updatedAt", Napi::Number::New(env, static_cast<double>(stored.meta.updated_at)));
  return out;
}

// list(entityType, queryJson) -> JSON array text
Napi::Value NativeClient::List(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string entity_type = ReadKey(info[0]);
  const std::string query_json = ReadString(info[1]);
  DS_REQUIRE_CLIENT(env);
  ListQuery query;
  ThrowIfError(env, client.decoder().DecodeQuery(query_json, &query));
  Result<std::string> json = client.store().List(entity_type, query);
  ThrowIfError(env, json.status());
  return Napi::String::New(env, json.value());
}

Napi::Value NativeClient::ExplainList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string entity_type = ReadKey(info[0]);
  const std::string query_json = ReadString(info[1]);
  DS_REQUIRE_CLIENT(env);
  ListQuery query;
  ThrowIfError(env, client.decoder().DecodeQuery(query_json, &query));
  Result<std::string> plan = client.store().ExplainList(entity_type, query);
  ThrowIfError(env, plan.status());
  return Napi::String::New(env, plan.value());
}

Napi::Value NativeClient::CreateIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string entity_type = ReadKey(info[0]);
  const std::string field = ReadString(info[1]);
  DS_REQUIRE_CLIENT(env);
  ThrowIfError(env, client.store().CreateIndex(entity_type, field));
  return env.Undefined();
}

Napi::Value NativeClient::PurgeTombstones(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<int64_t> count = info[0].IsNumber() ? client.store().PurgeTombstones(info[0].As<Napi::Number>().Int64Value())
                                             : client.PurgeExpiredTombstones();
  ThrowIfError(env, count.status());
  return Napi::Number::New(env, static_cast<double>(count.value()));
}

// begin(): opens a (nested) transaction that holds the client until commit() or rollback().
Napi::Value NativeClient::Begin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::unique_lock<std::recursive_mutex> lock;
  Client& client = Require(env, lock);
  auto tx = std::make_unique<Transaction>(client.database());
  ThrowIfError(env, tx->status());
  transactions_.push_back(std::move(tx));
  transaction_locks_.push_back(std::move(lock));
  return Napi::Number::New(env, static_cast<double>(transactions_.size()));
}

Napi::Value NativeClient::Commit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (transactions_.empty()) addon_->Throw(env, Status::Internal("commit without an open transaction"));
  Status status = transactions_.back()->Commit();
  transactions_.pop_back();  // rolls back when the commit failed
  transaction_locks_.pop_back();
  ThrowIfError(env, status);
  return env.Undefined();
}

Napi::Value NativeClient::Rollback(const Napi::CallbackInfo& info) {
  if (!transactions_.empty()) {
    transactions_.pop_back();
    transaction_locks_.pop_back();
  }
  return info.Env().Undefined();
}

// ---- pulled changes

// applyRemote(bytes, onProgress?) -> Promise<{ applied, skipped, conflicts, latestServerVersion }>
Napi::Value NativeClient::ApplyRemote(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // A string must become UTF-8 here; bytes are only referenced here and copied on the worker.
  simdjson::padded_string input;
  const uint8_t* external = nullptr;
  size_t external_size = 0;
  if (info[0].IsString()) {
    input = ReadBytes(info[0]);
  } else if (info[0].IsTypedArray()) {
    Napi::TypedArray array = info[0].As<Napi::TypedArray>();
    external = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    external_size = array.ByteLength();
  } else if (info[0].IsDataView()) {
    Napi::DataView view = info[0].As<Napi::DataView>();
    external = static_cast<const uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
    external_size = view.ByteLength();
  } else if (info[0].IsArrayBuffer()) {
    Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
    external = static_cast<const uint8_t*>(buffer.Data());
    external_size = buffer.ByteLength();
  } else {
    input = ReadBytes(info[0]);  // throws the type error
  }
  JsonLimits limits;
  int64_t chunk_size = 1000;
  {
    DS_REQUIRE_CLIENT(env);
    limits = client.options().limits;
    chunk_size = client.options().apply_chunk_size;
    if (!transactions_.empty()) {
      addon_->Throw(env, Status::Error(StatusCode::kConflict,
                                       "applyRemote cannot run inside client.transaction(): the page is applied "
                                       "asynchronously, in transactions of its own"));
    }
  }
  const int64_t max_retries = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 5;
  auto* worker = new ApplyWorker(env, addon_, slot_, std::move(input), limits, chunk_size, max_retries, info[1]);
  if (external != nullptr || external_size > 0) worker->SetExternalInput(info[0].As<Napi::Object>(), external, external_size);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value NativeClient::Cursor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<int64_t> cursor = client.applier().Cursor();
  ThrowIfError(env, cursor.status());
  return Napi::Number::New(env, static_cast<double>(cursor.value()));
}

Napi::Value NativeClient::Conflicts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<std::string> json = client.applier().ConflictsJson();
  ThrowIfError(env, json.status());
  return Napi::String::New(env, json.value());
}

// resolveConflict(id, use, dataJson | null) -> { entityType, entityId, document: JSON text | null }
Napi::Value NativeClient::ResolveConflict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t id = info[0].As<Napi::Number>().Int64Value();
  const std::string use = ReadString(info[1]);
  std::optional<std::string> json;
  if (info[2].IsString()) json = ReadString(info[2]);
  DS_REQUIRE_CLIENT(env);
  std::optional<std::string> data;
  if (json) {
    std::string doc;
    ThrowIfError(env, client.decoder().ValidateDocument(*json, "resolution.data", &doc));
    data = std::move(doc);
  }
  const ResolveUse resolve_use =
      use == "local" ? ResolveUse::kLocal : use == "remote" ? ResolveUse::kRemote : ResolveUse::kMerged;
  Result<ResolvedConflict> resolved = client.applier().ResolveConflict(id, resolve_use, data);
  ThrowIfError(env, resolved.status());
  Napi::Object out = Napi::Object::New(env);
  out.Set("entityType", resolved.value().entity_type);
  out.Set("entityId", resolved.value().entity_id);
  out.Set("document", resolved.value().visible ? Napi::Value(Napi::String::New(env, *resolved.value().visible)) : env.Null());
  return out;
}

// awaitingResolver() -> JSON text of the conflicts the app's resolver has to settle
Napi::Value NativeClient::AwaitingResolver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Result<std::string> json = client.applier().AwaitingResolverJson();
  ThrowIfError(env, json.status());
  return Napi::String::New(env, json.value());
}

// settleConflicts([{ id, remoteVersion, localToken, use?, data? (JSON text), error? }])
//   -> Promise<[{ id, outcome: 'resolved' | 'review' | 'stale', entityType, entityId }]> (SettleWorker)
// Data that is not a valid document leaves its conflict for review, with the reason.
Napi::Value NativeClient::SettleConflicts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array input = info[0].As<Napi::Array>();
  std::vector<ConflictVerdict> verdicts;
  verdicts.reserve(input.Length());
  DS_REQUIRE_CLIENT(env);
  for (uint32_t i = 0; i < input.Length(); ++i) {
    Napi::Object entry = input.Get(i).As<Napi::Object>();
    ConflictVerdict verdict;
    verdict.conflict_id = entry.Get("id").As<Napi::Number>().Int64Value();
    verdict.remote_version = entry.Get("remoteVersion").As<Napi::Number>().Int64Value();
    verdict.local_token = ReadString(entry.Get("localToken"));
    if (entry.Get("use").IsString()) {
      const std::string use = ReadString(entry.Get("use"));
      verdict.use = use == "local" ? ResolveUse::kLocal : use == "remote" ? ResolveUse::kRemote : ResolveUse::kMerged;
    }
    if (entry.Get("error").IsString()) verdict.error = ReadString(entry.Get("error"));
    if (verdict.use == ResolveUse::kMerged) {
      std::string doc;
      Status valid = entry.Get("data").IsString()
                         ? client.decoder().ValidateDocument(ReadString(entry.Get("data")), "data", &doc)
                         : Status::InvalidArgument("use \"merged\" came without data");
      if (valid.ok()) {
        verdict.data = std::move(doc);
      } else {
        verdict.use.reset();
        verdict.error = "The resolver's merged data was refused: " + valid.message();
      }
    }
    verdicts.push_back(std::move(verdict));
  }
  auto* worker = new SettleWorker(env, addon_, slot_, std::move(verdicts));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// ---- ingestion

// ingest(dir, { pattern, entityType, idField, incremental, dryRun, maxFiles, skipExisting, forceFullSync }, onProgress)
Napi::Value NativeClient::Ingest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = ReadString(info[0]);
  Napi::Object options = info[1].As<Napi::Object>();
  IngestOptions ingest;
  if (options.Get("pattern").IsString()) ingest.pattern = ReadString(options.Get("pattern"));
  if (options.Get("entityType").IsString()) ingest.entity_type = ReadString(options.Get("entityType"));
  if (options.Get("idField").IsString()) ingest.id_field = ReadString(options.Get("idField"));
  if (options.Get("incremental").IsBoolean()) ingest.incremental = options.Get("incremental").ToBoolean().Value();
  ingest.dry_run = options.Get("dryRun").ToBoolean().Value();
  ingest.skip_existing = options.Get("skipExisting").ToBoolean().Value();
  ingest.force_full_sync = options.Get("forceFullSync").ToBoolean().Value();
  if (options.Get("maxFiles").IsNumber()) ingest.max_files = options.Get("maxFiles").As<Napi::Number>().Int64Value();
  {
    DS_REQUIRE_CLIENT(env);
    (void)client;
    if (!transactions_.empty()) {
      addon_->Throw(env, Status::Conflict("ingest cannot run inside client.transaction()"));
    }
  }
  auto* worker = new IngestWorker(env, addon_, slot_, std::move(dir), std::move(ingest), info[2]);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value NativeClient::IngestStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Ingester ingester(client.database(), client.clock(), client.store(), client.options().limits);
  Result<std::string> json = ingester.StatusJson();
  ThrowIfError(env, json.status());
  return Napi::String::New(env, json.value());
}

Napi::Value NativeClient::ResetIngest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DS_REQUIRE_CLIENT(env);
  Ingester ingester(client.database(), client.clock(), client.store(), client.options().limits);
  ThrowIfError(env, ingester.Reset());
  return env.Undefined();
}

// ---- scheduler (see core/scheduler.h); lib/engine.js arms the timers and runs the cycles

// schedConfigure({ periodicMs, minIntervalMs, localChangeDelayMs, maxRetries, baseDelayMs, maxDelayMs, maxRetryAfterMs,
//                  healthIntervalMs, unreachableAfter })
Napi::Value NativeClient::SchedConfigure(const Napi::CallbackInfo& info) {
  Napi::Object options = info[0].As<Napi::Object>();
  auto number = [&](const char* key, int64_t fallback) {
    Napi::Value value = options.Get(key);
    return value.IsNumber() ? value.As<Napi::Number>().Int64Value() : fallback;
  };
  SchedulerOptions scheduler_options;
  scheduler_options.periodic_ms = number("periodicMs", scheduler_options.periodic_ms);
  scheduler_options.min_interval_ms = number("minIntervalMs", scheduler_options.min_interval_ms);
  scheduler_options.local_change_delay_ms = number("localChangeDelayMs", scheduler_options.local_change_delay_ms);
  scheduler_options.retry.max_retries = number("maxRetries", scheduler_options.retry.max_retries);
  scheduler_options.retry.base_delay_ms = number("baseDelayMs", scheduler_options.retry.base_delay_ms);
  scheduler_options.retry.max_delay_ms = number("maxDelayMs", scheduler_options.retry.max_delay_ms);
  scheduler_options.retry.max_retry_after_ms = number("maxRetryAfterMs", scheduler_options.retry.max_retry_after_ms);
  scheduler_options.health.interval_ms = number("healthIntervalMs", scheduler_options.health.interval_ms);
  scheduler_options.health.unreachable_after = number("unreachableAfter", scheduler_options.health.unreachable_after);
  scheduler_options.live.enabled = options.Get("live").ToBoolean().Value();
  scheduler_options.live.poke_debounce_ms = number("pokeDebounceMs", scheduler_options.live.poke_debounce_ms);
  scheduler_options.live.fallback_after = number("liveFallbackAfter", scheduler_options.live.fallback_after);
  scheduler_ = std::make_unique<Scheduler>(scheduler_clock_, scheduler_random_, scheduler_options);
  return info.Env().Undefined();
}

Scheduler& NativeClient::RequireScheduler(Napi::Env env) {
  if (!scheduler_) addon_->Throw(env, Status::Internal("the scheduler is not configured"));
  return *scheduler_;
}

Napi::Value NativeClient::SchedStart(const Napi::CallbackInfo& info) {
  RequireScheduler(info.Env()).Start();
  return info.Env().Undefined();
}

Napi::Value NativeClient::SchedStop(const Napi::CallbackInfo& info) {
  RequireScheduler(info.Env()).Stop();
  return info.Env().Undefined();
}

Napi::Value NativeClient::SchedNotify(const Napi::CallbackInfo& info) {
  Scheduler& scheduler = RequireScheduler(info.Env());
  const std::string event = info[0].As<Napi::String>().Utf8Value();
  if (event == "online") scheduler.Notify(SchedulerEvent::kOnline);
  else if (event == "offline") scheduler.Notify(SchedulerEvent::kOffline);
  else if (event == "focus") scheduler.Notify(SchedulerEvent::kFocus);
  else if (event == "blur") scheduler.Notify(SchedulerEvent::kBlur);
  else if (event == "visible") scheduler.Notify(SchedulerEvent::kVisible);
  else if (event == "hidden") scheduler.Notify(SchedulerEvent::kHidden);
  else if (event == "change") scheduler.Notify(SchedulerEvent::kLocalChange);
  else if (event == "poke") scheduler.Notify(SchedulerEvent::kPoke);
  return info.Env().Undefined();
}

Napi::Value NativeClient::SchedRequestManual(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), RequireScheduler(info.Env()).RequestManual());
}

Napi::Value NativeClient::SchedNextWakeAt(const Napi::CallbackInfo& info) {
  std::optional<int64_t> at = RequireScheduler(info.Env()).NextWakeAt();
  if (!at) return info.Env().Null();
  return Napi::Number::New(info.Env(), static_cast<double>(*at));
}

Napi::Value NativeClient::SchedTryStart(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), RequireScheduler(info.Env()).TryStartCycle());
}

// schedFinished("success" | "transient" | "unreachable" | "auth" | "aborted", retryAfterMs | null)
Napi::Value NativeClient::SchedFinished(const Napi::CallbackInfo& info) {
  Scheduler& scheduler = RequireScheduler(info.Env());
  const std::string outcome = info[0].As<Napi::String>().Utf8Value();
  std::optional<int64_t> retry_after;
  if (info[1].IsNumber()) retry_after = info[1].As<Napi::Number>().Int64Value();
  scheduler.OnCycleFinished(outcome == "success"     ? CycleOutcome::kSuccess
                            : outcome == "transient" ? CycleOutcome::kTransient
                            : outcome == "unreachable" ? CycleOutcome::kUnreachable
                            : outcome == "auth"      ? CycleOutcome::kAuthFailed
                                                     : CycleOutcome::kAborted,
                            retry_after);
  return info.Env().Undefined();
}

Napi::Value NativeClient::SchedStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Scheduler& scheduler = RequireScheduler(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("state", SchedulerStateName(scheduler.state()));
  std::optional<int64_t> next = scheduler.next_sync_at();
  out.Set("nextSyncAt", next ? Napi::Value(Napi::Number::New(env, static_cast<double>(*next))) : env.Null());
  out.Set("failures", Napi::Number::New(env, static_cast<double>(scheduler.consecutive_failures())));
  out.Set("online", scheduler.online());
  out.Set("authBlocked", scheduler.auth_blocked());
  const char* reason = OfflineReasonName(scheduler.offline_reason());
  out.Set("offlineReason", reason != nullptr ? Napi::Value(Napi::String::New(env, reason)) : env.Null());
  std::optional<int64_t> probe = scheduler.next_probe_at();
  out.Set("nextProbeAt", probe ? Napi::Value(Napi::Number::New(env, static_cast<double>(*probe))) : env.Null());
  out.Set("live", scheduler.live());
  out.Set("liveFallback", scheduler.live_fallback());
  return out;
}

Napi::Value NativeClient::SchedTryOpenStream(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), RequireScheduler(info.Env()).TryOpenStream());
}

Napi::Value NativeClient::SchedStreamOpened(const Napi::CallbackInfo& info) {
  RequireScheduler(info.Env()).OnStreamOpened();
  return info.Env().Undefined();
}

// schedStreamClosed(failed: boolean, retryAfterMs: number | null)
Napi::Value NativeClient::SchedStreamClosed(const Napi::CallbackInfo& info) {
  std::optional<int64_t> retry_after;
  if (info.Length() > 1 && info[1].IsNumber()) retry_after = info[1].As<Napi::Number>().Int64Value();
  RequireScheduler(info.Env()).OnStreamClosed(info[0].ToBoolean().Value(), retry_after);
  return info.Env().Undefined();
}

Napi::Value NativeClient::SchedWantsStream(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), RequireScheduler(info.Env()).WantsStream());
}

Napi::Value NativeClient::SchedTryProbe(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), RequireScheduler(info.Env()).TryStartProbe());
}

// schedProbeFinished(reached: boolean)
Napi::Value NativeClient::SchedProbeFinished(const Napi::CallbackInfo& info) {
  RequireScheduler(info.Env()).OnProbeFinished(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

#undef DS_REQUIRE_CLIENT

}  // namespace deltasync::binding
