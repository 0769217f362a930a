// Per-environment state of the addon. Each Node.js environment (the main thread
// and every worker_thread) gets its own instance; nothing is static.
#pragma once

#include <napi.h>

#include <unordered_set>

#include "core/status.h"

namespace deltasync::binding {

class NativeClient;

class DeltaSyncAddon : public Napi::Addon<DeltaSyncAddon> {
 public:
  DeltaSyncAddon(Napi::Env env, Napi::Object exports);
  // Runs at environment teardown: closes every client still open in this environment.
  ~DeltaSyncAddon();

  Napi::FunctionReference native_client_constructor;
  Napi::FunctionReference sync_error_constructor;  // set by lib/ through setErrorClass
  std::unordered_set<NativeClient*> open_clients;

  // Throws `status` into JS as a SyncError with its code.
  // REQUIRES: !status.ok().
  [[noreturn]] void Throw(Napi::Env env, const Status& status);
  // Rejects `deferred` with `status` as a SyncError (what Throw would throw).
  // REQUIRES: !status.ok().
  void Reject(Napi::Env env, Napi::Promise::Deferred& deferred, const Status& status);

 private:
  Napi::Value SetErrorClass(const Napi::CallbackInfo& info);
};

}  // namespace deltasync::binding
