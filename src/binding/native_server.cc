#include "binding/native_server.h"

#include <string>
#include <utility>

#include "binding/test_hooks.h"
#include "core/server_inspection.h"

namespace deltasync::binding {

namespace {

class ServerTask : public Napi::AsyncWorker {
 public:
  ServerTask(Napi::Env env, DeltaSyncAddon* addon, std::shared_ptr<SyncServerCore> server,
             std::function<Result<std::string>(SyncServerCore&, const std::string&)> operation)
      : Napi::AsyncWorker(env, "deltasync:server"),
        addon_(addon),
        deferred_(Napi::Promise::Deferred::New(env)),
        server_(std::move(server)),
        operation_(std::move(operation)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }
  void ResolveAsBytes() { as_bytes_ = true; }

  // The request body: a string is converted here; the bytes of a Buffer are referenced
  // here and copied on the worker thread, so a large body does not stall the event loop.
  void SetBody(const Napi::Value& value) {
    if (value.IsEmpty() || value.IsUndefined()) return;
    if (value.IsString()) {
      body_ = value.As<Napi::String>().Utf8Value();
    } else if (value.IsTypedArray()) {
      Napi::TypedArray array = value.As<Napi::TypedArray>();
      body_owner_ = Napi::Persistent(value.As<Napi::Object>());
      body_data_ = static_cast<const char*>(array.ArrayBuffer().Data()) + array.ByteOffset();
      body_size_ = array.ByteLength();
    } else {
      throw Napi::TypeError::New(value.Env(), "Expected a string or a Buffer");
    }
  }

 protected:
  void Execute() override {
    if (body_data_ != nullptr) body_.assign(body_data_, body_size_);
    result_ = std::make_unique<Result<std::string>>(operation_(*server_, body_));
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    server_.reset();
    if (!result_->ok()) {
      RejectWith(env, result_->status());
      return;
    }
    // Responses are bounded by ServerLimits::max_response_bytes; this is the last guard, so
    // that no response can ever take the process down on its way into V8.
    const std::string& text = result_->value();
    if (!as_bytes_ && text.size() > kMaxResponseChars) {
      RejectWith(env, Status::LimitExceeded("The response (" + std::to_string(text.size()) +
                                            " bytes) is larger than a JavaScript string can hold"));
      return;
    }
    try {
      // A Buffer is a copy, not an external buffer: Electron's V8 sandbox refuses those.
      deferred_.Resolve(as_bytes_ ? Napi::Value(Napi::Buffer<char>::Copy(env, text.data(), text.size()))
                                  : Napi::Value(Napi::String::New(env, text)));
    } catch (const Napi::Error&) {
      RejectWith(env, Status::LimitExceeded("The response (" + std::to_string(text.size()) +
                                            " bytes) could not be made into a JavaScript " +
                                            (as_bytes_ ? "Buffer" : "string")));
    }
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  // V8's limit on a string's length (String::kMaxLength on 64-bit builds).
  static constexpr size_t kMaxResponseChars = (size_t{1} << 29) - 24;

  void RejectWith(Napi::Env env, const deltasync::Status& status) { addon_->Reject(env, deferred_, status); }

  DeltaSyncAddon* addon_;
  Napi::Promise::Deferred deferred_;
  bool as_bytes_ = false;
  std::shared_ptr<SyncServerCore> server_;
  std::function<Result<std::string>(SyncServerCore&, const std::string&)> operation_;
  std::unique_ptr<Result<std::string>> result_;
  std::string body_;
  Napi::ObjectReference body_owner_;
  const char* body_data_ = nullptr;
  size_t body_size_ = 0;
};

}  // namespace

Napi::Function NativeServer::Define(Napi::Env env, DeltaSyncAddon* addon) {
  return DefineClass(env, "NativeServer",
                     {
                         InstanceMethod("close", &NativeServer::Close),
                         InstanceMethod("isOpen", &NativeServer::IsOpen),
                         InstanceMethod("sync", &NativeServer::Sync),
                         InstanceMethod("push", &NativeServer::Push),
                         InstanceMethod("pull", &NativeServer::Pull),
                         InstanceMethod("status", &NativeServer::Status),
                         InstanceMethod("conflicts", &NativeServer::Conflicts),
                         InstanceMethod("inspect", &NativeServer::Inspect),
                         InstanceMethod("resolveConflict", &NativeServer::ResolveConflict),
                         InstanceMethod("importSnapshot", &NativeServer::ImportSnapshot),
                         InstanceMethod("compatPush", &NativeServer::CompatPush),
                         InstanceMethod("compatPull", &NativeServer::CompatPull),
                         InstanceMethod("compatFull", &NativeServer::CompatFull),
                         InstanceMethod("compatChanges", &NativeServer::CompatChanges),
                         InstanceMethod("compatResolve", &NativeServer::CompatResolve),
                         InstanceMethod("compatMigrate", &NativeServer::CompatMigrate),
                         InstanceMethod("onCommit", &NativeServer::OnCommit),
                     },
                     addon);
}

// new NativeServer({ path | postgres: {connectionString, schema, poolSize, libpq}, conflicts, perType: {type: strategy}, toleranceMs, maxClockSkewMs, durability, busyTimeoutMs,
//                    maxChangesPerPush, maxPullLimit, defaultPullLimit, maxResponseBytes, maxDepth,
//                    maxDocumentBytes })
NativeServer::NativeServer(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<NativeServer>(info), addon_(static_cast<DeltaSyncAddon*>(info.Data())) {
  Napi::Env env = info.Env();
  Napi::Object options = info[0].As<Napi::Object>();
  ServerOptions server_options;
  if (options.Get("path").IsString()) server_options.path = options.Get("path").As<Napi::String>().Utf8Value();
  if (options.Get("postgres").IsObject()) {
    Napi::Object postgres = options.Get("postgres").As<Napi::Object>();
    PostgresOptions store;
    auto text = [&](const char* key, std::string* out) {
      if (postgres.Get(key).IsString()) *out = postgres.Get(key).As<Napi::String>().Utf8Value();
    };
    text("connectionString", &store.connection_string);
    text("schema", &store.schema);
    text("libpq", &store.libpq_path);
    if (postgres.Get("poolSize").IsNumber()) store.pool_size = postgres.Get("poolSize").As<Napi::Number>().Int32Value();
    server_options.postgres = std::move(store);
  }
  auto strategy = [](const Napi::Value& value) {
    return ParseConflictStrategy(value.As<Napi::String>().Utf8Value()).value_or(ConflictStrategy::kNewestWins);
  };
  if (options.Get("conflicts").IsString()) server_options.conflicts = strategy(options.Get("conflicts"));
  if (options.Get("perType").IsObject()) {
    Napi::Object per_type = options.Get("perType").As<Napi::Object>();
    Napi::Array keys = per_type.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
      server_options.per_type[key] = strategy(per_type.Get(key));
    }
  }
  auto number = [&](const char* key) -> std::optional<int64_t> {
    Napi::Value value = options.Get(key);
    if (!value.IsNumber()) return std::nullopt;
    return value.As<Napi::Number>().Int64Value();
  };
  if (auto value = number("toleranceMs")) server_options.tolerance_ms = *value;
  if (auto value = number("maxClockSkewMs")) server_options.max_clock_skew_ms = *value;
  if (auto value = number("busyTimeoutMs")) server_options.busy_timeout_ms = static_cast<int>(*value);
  if (auto value = number("maxChangesPerPush")) server_options.limits.max_changes_per_push = static_cast<size_t>(*value);
  if (auto value = number("maxPullLimit")) server_options.limits.max_pull_limit = static_cast<size_t>(*value);
  if (auto value = number("defaultPullLimit")) server_options.limits.default_pull_limit = static_cast<size_t>(*value);
  if (auto value = number("maxResponseBytes")) server_options.limits.max_response_bytes = static_cast<size_t>(*value);
  if (auto value = number("maxDepth")) server_options.limits.json.max_depth = static_cast<int>(*value);
  if (auto value = number("maxDocumentBytes")) server_options.limits.json.max_document_bytes = static_cast<size_t>(*value);
  // Test hook DELTASYNC_TEST_HOOKS=server-crash-at-commit=<n>: see DatabaseOptions::crash_at_commit.
  server_options.crash_at_commit = TestHook("server-crash-at-commit").value_or(0);
  if (options.Get("durability").IsString() && options.Get("durability").As<Napi::String>().Utf8Value() == "full") {
    server_options.durability = Durability::kFull;
  }
  Result<std::unique_ptr<SyncServerCore>> opened = SyncServerCore::Open(server_options, std::make_shared<SystemClock>());
  if (!opened.ok()) addon_->Throw(env, opened.status());
  server_ = std::shared_ptr<SyncServerCore>(std::move(opened).value());
}

Napi::Value NativeServer::Run(Napi::Env env, Operation operation, Napi::Value body, bool as_bytes) {
  if (!server_) addon_->Throw(env, Status::Closed("The server is closed"));
  auto* task = new ServerTask(env, addon_, server_, std::move(operation));
  if (as_bytes) task->ResolveAsBytes();
  try {
    task->SetBody(body);
  } catch (...) {
    delete task;
    throw;
  }
  Napi::Promise promise = task->Promise();
  task->Queue();
  return promise;
}

CompatOptions NativeServer::ReadCompat(const Napi::Value& value) {
  CompatOptions compat;
  if (!value.IsObject()) return compat;
  Napi::Object id_fields = value.As<Napi::Object>();
  Napi::Array keys = id_fields.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    compat.id_fields[key] = id_fields.Get(key).As<Napi::String>().Utf8Value();
  }
  return compat;
}

Napi::Value NativeServer::RunCompat(const Napi::CallbackInfo& info, CompatCall call, bool as_bytes) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  CompatOptions compat = ReadCompat(info[2]);
  return Run(
      info.Env(),
      [user = std::move(user), compat = std::move(compat), call](SyncServerCore& server,
                                                                 const std::string& body) {
        return (server.*call)(user, body, compat);
      },
      info[1], as_bytes);
}

Napi::Value NativeServer::Close(const Napi::CallbackInfo& info) {
  ReleaseCommitListener();  // a commit still in flight finds the sink closed
  server_.reset();
  return info.Env().Undefined();
}

Napi::Value NativeServer::IsOpen(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !!server_); }

namespace {
// The resolver argument of sync/push/compatPush/compatFull: null, or { finalRound, verdicts:
// [{ changeId, use: 'client' | 'server' | 'merged' | 'manual', serverVersion, data? (JSON text), note? }] }.
std::shared_ptr<ResolverExchange> ResolverArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsObject()) return nullptr;
  Napi::Object arg = info[index].As<Napi::Object>();
  auto exchange = std::make_shared<ResolverExchange>();
  exchange->final_round = arg.Get("finalRound").ToBoolean().Value();
  Napi::Array verdicts = arg.Get("verdicts").As<Napi::Array>();
  for (uint32_t i = 0; i < verdicts.Length(); ++i) {
    Napi::Object entry = verdicts.Get(i).As<Napi::Object>();
    CustomVerdict verdict;
    const std::string use = entry.Get("use").IsString() ? entry.Get("use").As<Napi::String>().Utf8Value() : "";
    verdict.use = use == "client"   ? CustomVerdict::Use::kClient
                  : use == "server" ? CustomVerdict::Use::kServer
                  : use == "merged" ? CustomVerdict::Use::kMerged
                                    : CustomVerdict::Use::kManual;
    verdict.server_version = entry.Get("serverVersion").As<Napi::Number>().Int64Value();
    if (entry.Get("data").IsString()) verdict.data = entry.Get("data").As<Napi::String>().Utf8Value();
    if (entry.Get("note").IsString()) verdict.note = entry.Get("note").As<Napi::String>().Utf8Value();
    exchange->verdicts[entry.Get("changeId").As<Napi::String>().Utf8Value()] = std::move(verdict);
  }
  return exchange;
}

// sync/push: (userId, body, deviceIdHeader | null, resolver?)
RequestContext ContextArg(const Napi::CallbackInfo& info) {
  RequestContext context;
  if (info.Length() > 2 && info[2].IsString()) context.device_id = info[2].As<Napi::String>().Utf8Value();
  context.resolver = ResolverArg(info, 3);
  return context;
}
}  // namespace

// sync(userId, body, deviceIdHeader?, exchange?) -> Promise<Buffer of JSON>: what POST /v2 writes
// as it is (SyncServer.sync parses it)
Napi::Value NativeServer::Sync(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  return Run(
      info.Env(),
      [user = std::move(user), context = ContextArg(info)](SyncServerCore& server, const std::string& body) {
        return server.Sync(user, body, context);
      },
      info[1], /*as_bytes=*/true);
}

Napi::Value NativeServer::Push(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  return Run(
      info.Env(),
      [user = std::move(user), context = ContextArg(info)](SyncServerCore& server, const std::string& body) {
        return server.Push(user, body, context);
      },
      info[1]);
}

// pull(userId, deviceId | null, since, limit | null)
Napi::Value NativeServer::Pull(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  std::optional<std::string> device;
  if (info[1].IsString()) device = info[1].As<Napi::String>().Utf8Value();
  const int64_t since = info[2].As<Napi::Number>().Int64Value();
  std::optional<int64_t> limit;
  if (info[3].IsNumber()) limit = info[3].As<Napi::Number>().Int64Value();
  return Run(info.Env(), [user = std::move(user), device = std::move(device), since, limit](
                             SyncServerCore& server, const std::string&) { return server.Pull(user, device, since, limit); });
}

Napi::Value NativeServer::Status(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  std::string device = info[1].As<Napi::String>().Utf8Value();
  return Run(info.Env(), [user = std::move(user), device = std::move(device)](SyncServerCore& server, const std::string&) {
    return server.DeviceStatus(user, device);
  });
}

// conflicts(userId, after?) -> Promise<JSON text>
Napi::Value NativeServer::Conflicts(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  const int64_t after = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : 0;
  return Run(info.Env(), [user = std::move(user), after](SyncServerCore& server, const std::string&) {
    return server.Conflicts(user, after);
  });
}

// inspect(view, {userId, after, afterId, before, limit, days, entityType, entityId, deviceId,
// changeType}) -> Promise<JSON text>. lib/inspector.js checks the types; absent fields are
// undefined.
Napi::Value NativeServer::Inspect(const Napi::CallbackInfo& info) {
  InspectQuery query;
  const std::optional<InspectQuery::View> view = ParseInspectView(info[0].As<Napi::String>().Utf8Value());
  if (!view) {
    Napi::TypeError::New(info.Env(), "unknown inspector view").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  query.view = *view;
  Napi::Object params = info[1].As<Napi::Object>();
  auto text = [&](const char* key) -> std::optional<std::string> {
    Napi::Value value = params.Get(key);
    if (!value.IsString()) return std::nullopt;
    return value.As<Napi::String>().Utf8Value();
  };
  auto number = [&](const char* key) -> std::optional<int64_t> {
    Napi::Value value = params.Get(key);
    if (!value.IsNumber()) return std::nullopt;
    return value.As<Napi::Number>().Int64Value();
  };
  query.user_id = text("userId");
  query.after = text("after");
  query.after_id = number("afterId");
  query.before = number("before");
  query.limit = number("limit");
  query.days = number("days");
  query.entity_type = text("entityType");
  query.entity_id = text("entityId");
  query.device_id = text("deviceId");
  query.change_type = text("changeType");
  return Run(info.Env(), [query = std::move(query)](SyncServerCore& server, const std::string&) {
    return server.Inspect(query);
  });
}

// resolveConflict(userId, conflictId, resolutionJson)
Napi::Value NativeServer::ResolveConflict(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  const int64_t id = info[1].As<Napi::Number>().Int64Value();
  return Run(
      info.Env(),
      [user = std::move(user), id](SyncServerCore& server, const std::string& resolution) {
        return server.ResolveConflict(user, id, resolution);
      },
      info[2]);
}

// importSnapshot(userId, stateJson, idFields)
Napi::Value NativeServer::ImportSnapshot(const Napi::CallbackInfo& info) {
  return RunCompat(info, &SyncServerCore::ImportSnapshot, /*as_bytes=*/false);
}

// compatMigrate(userId, body, idFields)
Napi::Value NativeServer::CompatMigrate(const Napi::CallbackInfo& info) {
  return RunCompat(info, &SyncServerCore::CompatMigrate, /*as_bytes=*/true);  // a route's answer
}

// compatPush(userId, body, idFields, resolver?)
Napi::Value NativeServer::CompatPush(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  CompatOptions compat = ReadCompat(info[2]);
  RequestContext context;
  context.resolver = ResolverArg(info, 3);
  return Run(
      info.Env(),
      [user = std::move(user), compat, context](SyncServerCore& server, const std::string& body) {
        return server.CompatPush(user, body, compat, context);
      },
      info[1], /*as_bytes=*/true);  // a route's answer
}

// compatPull(userId, body, idFields)
Napi::Value NativeServer::CompatPull(const Napi::CallbackInfo& info) {
  return RunCompat(info, &SyncServerCore::CompatPull, /*as_bytes=*/true);  // a route's answer
}

// compatFull(userId, body, idFields, resolver?)
Napi::Value NativeServer::CompatFull(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  CompatOptions compat = ReadCompat(info[2]);
  RequestContext context;
  context.resolver = ResolverArg(info, 3);
  return Run(
      info.Env(),
      [user = std::move(user), compat, context](SyncServerCore& server, const std::string& body) {
        return server.CompatFull(user, body, compat, context);
      },
      info[1], /*as_bytes=*/true);  // a route's answer
}

// compatChanges(userId, since | null, idFields)
Napi::Value NativeServer::CompatChanges(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  std::optional<std::string> since;
  if (info[1].IsString()) since = info[1].As<Napi::String>().Utf8Value();
  CompatOptions compat = ReadCompat(info[2]);
  return Run(info.Env(), [user = std::move(user), since = std::move(since), compat](
                             SyncServerCore& server, const std::string&) { return server.CompatChanges(user, since, compat); },
             Napi::Value(), /*as_bytes=*/true);  // a route's answer
}

Napi::Value NativeServer::CompatResolve(const Napi::CallbackInfo& info) {
  std::string user = info[0].As<Napi::String>().Utf8Value();
  return Run(
      info.Env(),
      [user = std::move(user)](SyncServerCore& server, const std::string& body) { return server.CompatResolve(user, body); },
      info[1], /*as_bytes=*/true);  // a route's answer
}

// onCommit(fn | null): fn(userId, headVersion) after each commit that advanced a user's log,
// from whichever request made it. The listener does not keep the process alive.
Napi::Value NativeServer::OnCommit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!server_) addon_->Throw(env, Status::Closed("The server is closed"));
  ReleaseCommitListener();
  if (!info[0].IsFunction()) {
    server_->SetCommitListener(nullptr);
    return env.Undefined();
  }
  auto sink = std::make_shared<CommitSink>();
  sink->function = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "deltasync:commits", 0, 1);
  sink->function.Unref(env);
  sink->open = true;
  commit_sink_ = sink;
  server_->SetCommitListener([sink](const std::string& user_id, int64_t head_version) {
    std::lock_guard<std::mutex> lock(sink->mutex);
    if (!sink->open) return;
    auto* event = new std::pair<std::string, int64_t>(user_id, head_version);
    napi_status status = sink->function.NonBlockingCall(
        event, [](Napi::Env call_env, Napi::Function callback, std::pair<std::string, int64_t>* data) {
          std::unique_ptr<std::pair<std::string, int64_t>> owned(data);
          if (call_env == nullptr || callback.IsEmpty()) return;
          callback.Call({Napi::String::New(call_env, owned->first),
                         Napi::Number::New(call_env, static_cast<double>(owned->second))});
        });
    if (status != napi_ok) delete event;
  });
  return env.Undefined();
}

void NativeServer::ReleaseCommitListener() {
  if (!commit_sink_) return;
  {
    std::lock_guard<std::mutex> lock(commit_sink_->mutex);
    if (commit_sink_->open) {
      commit_sink_->open = false;
      commit_sink_->function.Release();
    }
  }
  commit_sink_.reset();
}

}  // namespace deltasync::binding
