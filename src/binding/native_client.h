// NativeClient: the JS handle of a core::Client. Arguments arrive already
// validated by lib/; change records cross as JSON text and lists of changes
// return as JSON text, which lib/ parses.
#pragma once

#include <napi.h>

#include <memory>

#include "binding/addon.h"
#include "core/client.h"

namespace deltasync::binding {

class NativeClient : public Napi::ObjectWrap<NativeClient> {
 public:
  static Napi::Function Define(Napi::Env env, DeltaSyncAddon* addon);
  explicit NativeClient(const Napi::CallbackInfo& info);
  ~NativeClient() override;

  // Closes the database; idempotent. Later calls throw CLOSED.
  void CloseNative();

 private:
  Client& Require(Napi::Env env);
  void ThrowIfError(Napi::Env env, const Status& status);

  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsOpen(const Napi::CallbackInfo& info);
  Napi::Value DeviceId(const Napi::CallbackInfo& info);
  Napi::Value RecoveredAtOpen(const Napi::CallbackInfo& info);
  Napi::Value Enqueue(const Napi::CallbackInfo& info);
  Napi::Value EnqueueMany(const Napi::CallbackInfo& info);
  Napi::Value ImportLegacy(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Failed(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Export(const Napi::CallbackInfo& info);
  Napi::Value RetryFailed(const Napi::CallbackInfo& info);
  Napi::Value Discard(const Napi::CallbackInfo& info);
  Napi::Value TakeBatch(const Napi::CallbackInfo& info);
  Napi::Value MarkSynced(const Napi::CallbackInfo& info);
  Napi::Value MarkFailed(const Napi::CallbackInfo& info);
  Napi::Value ReleaseInFlight(const Napi::CallbackInfo& info);
  Napi::Value PurgeSynced(const Napi::CallbackInfo& info);

  DeltaSyncAddon* addon_;
  std::unique_ptr<Client> client_;
};

}  // namespace deltasync::binding
