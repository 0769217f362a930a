#include "binding/settle_worker.h"

#include <mutex>
#include <utility>

namespace deltasync::binding {

SettleWorker::SettleWorker(Napi::Env env, DeltaSyncAddon* addon, std::shared_ptr<ClientSlot> slot,
                           std::vector<ConflictVerdict> verdicts)
    : Napi::AsyncWorker(env, "deltasync:settleConflicts"),
      addon_(addon),
      deferred_(Napi::Promise::Deferred::New(env)),
      slot_(std::move(slot)),
      verdicts_(std::move(verdicts)) {}

void SettleWorker::Execute() {
  std::lock_guard<std::recursive_mutex> lock(slot_->mutex);
  if (!slot_->client) {
    status_ = Status::Closed("The client was closed before the resolvers' verdicts were written");
    return;
  }
  Result<std::vector<VerdictOutcome>> settled = slot_->client->applier().SettleConflicts(verdicts_);
  status_ = settled.status();
  if (settled.ok()) outcomes_ = std::move(settled).value();
}

void SettleWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (!status_.ok()) {
    addon_->Reject(env, deferred_, status_);
    return;
  }
  Napi::Array out = Napi::Array::New(env, outcomes_.size());
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    const VerdictOutcome& outcome = outcomes_[i];
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("id", Napi::Number::New(env, static_cast<double>(outcome.conflict_id)));
    entry.Set("outcome", outcome.kind == VerdictOutcome::Kind::kResolved       ? "resolved"
                         : outcome.kind == VerdictOutcome::Kind::kLeftForReview ? "review"
                                                                                 : "stale");
    entry.Set("entityType", outcome.entity_type);
    entry.Set("entityId", outcome.entity_id);
    out.Set(static_cast<uint32_t>(i), entry);
  }
  deferred_.Resolve(out);
}

void SettleWorker::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

}  // namespace deltasync::binding
