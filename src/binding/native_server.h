// NativeServer: the JS handle of a SyncServerCore. Every operation runs on the
// libuv thread pool (decode, validate, apply and encode in C++) and resolves with
// the response as JSON text, which the Express router sends as it is.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>

#include "binding/addon.h"
#include "core/server.h"

namespace deltasync::binding {

class NativeServer : public Napi::ObjectWrap<NativeServer> {
 public:
  static Napi::Function Define(Napi::Env env, DeltaSyncAddon* addon);
  explicit NativeServer(const Napi::CallbackInfo& info);
  ~NativeServer() override { ReleaseCommitListener(); }

 private:
  // Receives the request body (empty when the operation takes none).
  using Operation = std::function<Result<std::string>(SyncServerCore&, const std::string&)>;
  // Queues `operation` on a worker; its promise resolves with the response as a string, or
  // with `as_bytes` as a Buffer of its UTF-8 (what an HTTP route writes as it is).
  Napi::Value Run(Napi::Env env, Operation operation, Napi::Value body = Napi::Value(), bool as_bytes = false);
  CompatOptions ReadCompat(const Napi::Value& value);
  // (userId, body, idFields): runs `call` on the body with the user and the compat options.
  using CompatCall = Result<std::string> (SyncServerCore::*)(const std::string&, const std::string&,
                                                             const CompatOptions&);
  // (userId, body, idFields, ...) of an older design's route; `as_bytes` as for Run().
  Napi::Value RunCompat(const Napi::CallbackInfo& info, CompatCall call, bool as_bytes);

  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsOpen(const Napi::CallbackInfo& info);
  Napi::Value Sync(const Napi::CallbackInfo& info);
  Napi::Value Push(const Napi::CallbackInfo& info);
  Napi::Value Pull(const Napi::CallbackInfo& info);
  Napi::Value Status(const Napi::CallbackInfo& info);
  Napi::Value Conflicts(const Napi::CallbackInfo& info);
  Napi::Value Inspect(const Napi::CallbackInfo& info);
  Napi::Value ResolveConflict(const Napi::CallbackInfo& info);
  Napi::Value ImportSnapshot(const Napi::CallbackInfo& info);
  Napi::Value CompatMigrate(const Napi::CallbackInfo& info);
  Napi::Value CompatPush(const Napi::CallbackInfo& info);
  Napi::Value CompatPull(const Napi::CallbackInfo& info);
  Napi::Value CompatFull(const Napi::CallbackInfo& info);
  Napi::Value CompatChanges(const Napi::CallbackInfo& info);
  Napi::Value CompatResolve(const Napi::CallbackInfo& info);
  Napi::Value OnCommit(const Napi::CallbackInfo& info);
  // Stops delivering commits to JS (close, or a new listener).
  void ReleaseCommitListener();

  // Where commits reach JS: a thread-safe function, called from the worker threads while open.
  struct CommitSink {
    std::mutex mutex;
    Napi::ThreadSafeFunction function;
    bool open = false;
  };

  DeltaSyncAddon* addon_;
  std::shared_ptr<CommitSink> commit_sink_;
  // Null once closed; tasks in flight hold their own reference until they finish.
  std::shared_ptr<SyncServerCore> server_;
};

}  // namespace deltasync::binding
