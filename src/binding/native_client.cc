#include "binding/native_client.h"

#include <string>
#include <utility>
#include <vector>

namespace deltasync::binding {

namespace {

// Reads a JS string as UTF-8 into a std::string.
std::string ReadString(const Napi::Value& value) {
  napi_env env = value.Env();
  size_t length = 0;
  napi_status status = napi_get_value_string_utf8(env, value, nullptr, 0, &length);
  if (status != napi_ok) throw Napi::Error::New(env, "Expected a string");
  std::string out(length, '\0');
  napi_get_value_string_utf8(env, value, out.data(), length + 1, &length);
  return out;
}

std::optional<std::string> OptionalString(const Napi::Object& options, const char* key) {
  Napi::Value value = options.Get(key);
  if (!value.IsString()) return std::nullopt;
  return ReadString(value);
}

Napi::Value JsonValue(Napi::Env env, const std::string& json) { return Napi::String::New(env, json); }

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
      },
      addon);
  addon->native_client_constructor = Napi::Persistent(ctor);
  return ctor;
}

// new NativeClient({ path, deviceId?, userId?, tenantId?, coalesce, durability, busyTimeoutMs,
//                    maxDepth, maxDocumentBytes })
NativeClient::NativeClient(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<NativeClient>(info), addon_(static_cast<DeltaSyncAddon*>(info.Data())) {
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
  if (options.Get("busyTimeoutMs").IsNumber()) {
    client_options.busy_timeout_ms = options.Get("busyTimeoutMs").As<Napi::Number>().Int32Value();
  }
  if (options.Get("maxDepth").IsNumber()) {
    client_options.limits.max_depth = options.Get("maxDepth").As<Napi::Number>().Int32Value();
  }
  if (options.Get("maxDocumentBytes").IsNumber()) {
    client_options.limits.max_document_bytes =
        static_cast<size_t>(options.Get("maxDocumentBytes").As<Napi::Number>().Int64Value());
  }
  Result<std::unique_ptr<Client>> opened =
      Client::Open(client_options, std::make_shared<SystemClock>(), std::make_shared<SystemRandom>());
  if (!opened.ok()) addon_->Throw(env, opened.status());
  client_ = std::move(opened).value();
  addon_->open_clients.insert(this);
}

NativeClient::~NativeClient() { CloseNative(); }

void NativeClient::CloseNative() {
  if (!client_) return;
  client_.reset();
  addon_->open_clients.erase(this);
}

Client& NativeClient::Require(Napi::Env env) {
  if (!client_) addon_->Throw(env, Status::Closed("The client is closed"));
  return *client_;
}

void NativeClient::ThrowIfError(Napi::Env env, const Status& status) {
  if (!status.ok()) addon_->Throw(env, status);
}

Napi::Value NativeClient::Close(const Napi::CallbackInfo& info) {
  CloseNative();
  return info.Env().Undefined();
}

Napi::Value NativeClient::IsOpen(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), client_ != nullptr);
}

Napi::Value NativeClient::DeviceId(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Require(info.Env()).device_id());
}

Napi::Value NativeClient::RecoveredAtOpen(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Require(info.Env()).recovered_at_open()));
}

// enqueue(changeJson) -> { changeId, outcome, into? }
Napi::Value NativeClient::Enqueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client& client = Require(env);
  const std::string json = ReadString(info[0]);
  ChangeInput input;
  ThrowIfError(env, client.decoder().DecodeOne(json, "change", &input));
  Result<EnqueueResult> result = client.queue().Enqueue(input);
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
  Client& client = Require(env);
  const std::string json = ReadString(info[0]);
  std::vector<ChangeInput> inputs;
  ThrowIfError(env, client.decoder().DecodeArray(json, DecodeMode::kWire, "changes", &inputs, nullptr));
  Result<std::vector<EnqueueResult>> results = client.queue().EnqueueMany(inputs);
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
  Client& client = Require(env);
  const std::string json = ReadString(info[0]);
  std::vector<ChangeInput> inputs;
  size_t synced = 0;
  ThrowIfError(env, client.decoder().DecodeArray(json, DecodeMode::kLegacy, "records", &inputs, &synced));
  Result<ImportResult> result = client.queue().ImportLegacy(inputs, static_cast<int64_t>(synced));
  ThrowIfError(env, result.status());
  Napi::Object out = Napi::Object::New(env);
  out.Set("imported", Napi::Number::New(env, static_cast<double>(result.value().imported)));
  out.Set("skipped", Napi::Number::New(env, static_cast<double>(result.value().skipped)));
  return out;
}

// pending(limit, entityType | null) -> JSON array
Napi::Value NativeClient::Pending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client& client = Require(env);
  const int64_t limit = info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : 0;
  std::optional<std::string> entity_type;
  if (info[1].IsString()) entity_type = ReadString(info[1]);
  Result<std::vector<Change>> changes = client.queue().Pending(limit, entity_type);
  ThrowIfError(env, changes.status());
  return JsonValue(env, ChangesToJson(changes.value()));
}

Napi::Value NativeClient::Failed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Result<std::vector<Change>> changes = Require(env).queue().Failed();
  ThrowIfError(env, changes.status());
  return JsonValue(env, ChangesToJson(changes.value()));
}

Napi::Value NativeClient::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Result<QueueStats> stats = Require(env).queue().Stats();
  ThrowIfError(env, stats.status());
  return JsonValue(env, StatsToJson(stats.value()));
}

Napi::Value NativeClient::Export(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Result<std::string> json = Require(env).ExportJson();
  ThrowIfError(env, json.status());
  return JsonValue(env, json.value());
}

Napi::Value NativeClient::RetryFailed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Result<int64_t> count = Require(env).queue().RetryFailed();
  ThrowIfError(env, count.status());
  return Napi::Number::New(env, static_cast<double>(count.value()));
}

Napi::Value NativeClient::Discard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client& client = Require(env);
  ThrowIfError(env, client.queue().Discard(ReadString(info[0])));
  return env.Undefined();
}

Napi::Value NativeClient::TakeBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client& client = Require(env);
  Result<std::vector<Change>> batch = client.queue().TakeBatch(info[0].As<Napi::Number>().Int64Value());
  ThrowIfError(env, batch.status());
  return JsonValue(env, ChangesToJson(batch.value()));
}

Napi::Value NativeClient::MarkSynced(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client& client = Require(env);
  std::optional<int64_t> version;
  if (info[1].IsNumber()) version = info[1].As<Napi::Number>().Int64Value();
  ThrowIfError(env, client.queue().MarkSynced(ReadString(info[0]), version));
  return env.Undefined();
}

Napi::Value NativeClient::MarkFailed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client& client = Require(env);
  Result<ChangeStatus> status = client.queue().MarkFailed(ReadString(info[0]), ReadString(info[1]),
                                                          info[2].As<Napi::Number>().Int64Value());
  ThrowIfError(env, status.status());
  return Napi::String::New(env, ChangeStatusName(status.value()));
}

Napi::Value NativeClient::ReleaseInFlight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Result<int64_t> count = Require(env).queue().ReleaseInFlight();
  ThrowIfError(env, count.status());
  return Napi::Number::New(env, static_cast<double>(count.value()));
}

Napi::Value NativeClient::PurgeSynced(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Client& client = Require(env);
  Result<int64_t> count = client.queue().PurgeSynced(info[0].As<Napi::Number>().Int64Value());
  ThrowIfError(env, count.status());
  return Napi::Number::New(env, static_cast<double>(count.value()));
}

}  // namespace deltasync::binding
