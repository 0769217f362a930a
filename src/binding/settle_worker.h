// SettleWorker: writes the app's resolver verdicts (DeltaApplier::SettleConflicts) off the
// main thread, in one transaction under the client's lock, and resolves with
// [{ id, outcome: 'resolved' | 'review' | 'stale', entityType, entityId }].
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "binding/addon.h"
#include "binding/native_client.h"
#include "core/apply.h"

namespace deltasync::binding {

class SettleWorker : public Napi::AsyncWorker {
 public:
  SettleWorker(Napi::Env env, DeltaSyncAddon* addon, std::shared_ptr<ClientSlot> slot,
               std::vector<ConflictVerdict> verdicts);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  DeltaSyncAddon* addon_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ClientSlot> slot_;
  std::vector<ConflictVerdict> verdicts_;
  Status status_ = Status::Ok();
  std::vector<VerdictOutcome> outcomes_;
};

}  // namespace deltasync::binding
