#include "binding/addon.h"

#include <vector>

#include "binding/native_client.h"
#include "binding/native_server.h"

namespace deltasync::binding {

DeltaSyncAddon::DeltaSyncAddon(Napi::Env env, Napi::Object exports) {
  DefineAddon(exports, {
                           InstanceMethod("setErrorClass", &DeltaSyncAddon::SetErrorClass),
                       });
  exports.Set("NativeClient", NativeClient::Define(env, this));
  exports.Set("NativeServer", NativeServer::Define(env, this));
}

DeltaSyncAddon::~DeltaSyncAddon() {
  std::vector<NativeClient*> clients(open_clients.begin(), open_clients.end());
  for (NativeClient* client : clients) client->CloseNative();
}

Napi::Value DeltaSyncAddon::SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "Expected a function for errorClass");
  }
  sync_error_constructor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

void DeltaSyncAddon::Throw(Napi::Env env, const Status& status) {
  Napi::String message = Napi::String::New(env, status.message());
  Napi::String code = Napi::String::New(env, CodeName(status.code()));
  if (!sync_error_constructor.IsEmpty()) {
    Napi::Object error = sync_error_constructor.New({message, code});
    throw Napi::Error(env, error);
  }
  Napi::Error error = Napi::Error::New(env, status.message());
  error.Set("code", code);
  throw error;
}

void DeltaSyncAddon::Reject(Napi::Env env, Napi::Promise::Deferred& deferred, const Status& status) {
  try {
    Throw(env, status);
  } catch (const Napi::Error& error) {
    deferred.Reject(error.Value());
  }
}

}  // namespace deltasync::binding

using deltasync::binding::DeltaSyncAddon;
NODE_API_NAMED_ADDON(deltasync, DeltaSyncAddon)
