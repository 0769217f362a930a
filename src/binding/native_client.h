// NativeClient: the JS handle of a core::Client. Arguments arrive already
// validated by lib/; documents and change records cross as JSON text, and lists
// return as JSON text, which lib/ parses. Pulled pages cross as bytes and are
// applied on a worker thread (see apply_worker.h).
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "binding/addon.h"
#include "core/client.h"
#include "core/scheduler.h"

namespace deltasync::binding {

// Shared by the JS handle and any apply worker in flight. `mutex` serializes all
// use of `client`; `client` is null once closed.
struct ClientSlot {
  std::recursive_mutex mutex;
  std::unique_ptr<Client> client;
  // Whether `client` is still open, readable without the mutex (isOpen() must not wait for a
  // worker's chunk).
  std::atomic<bool> open{false};
  // Main-thread calls waiting for `mutex`: a worker that finished a chunk lets them in
  // before it takes the next one, so a write waits at most one chunk.
  std::atomic<int> waiters{0};

  // How every main-thread call takes `mutex`: counted in `waiters` while it waits, so that a
  // worker between chunks lets it in. A call that took the mutex without it could wait for a
  // whole pulled page.
  std::unique_lock<std::recursive_mutex> LockAsCaller();
  // Lets waiting main-thread calls take the mutex; called by workers between chunks, unlocked.
  void YieldToWaiters() const;
};

class NativeClient : public Napi::ObjectWrap<NativeClient> {
 public:
  static Napi::Function Define(Napi::Env env, DeltaSyncAddon* addon);
  explicit NativeClient(const Napi::CallbackInfo& info);
  ~NativeClient() override;

  // Rolls back open JS transactions and closes the database; idempotent. Waits for
  // an apply chunk in progress, and later calls throw CLOSED.
  void CloseNative();

 private:
  // Locks the slot and returns the open client, or throws CLOSED.
  Client& Require(Napi::Env env, std::unique_lock<std::recursive_mutex>& lock);
  void ThrowIfError(Napi::Env env, const Status& status);

  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsOpen(const Napi::CallbackInfo& info);
  Napi::Value DeviceId(const Napi::CallbackInfo& info);
  Napi::Value RecoveredAtOpen(const Napi::CallbackInfo& info);
  // queue
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
  // store
  Napi::Value Put(const Napi::CallbackInfo& info);
  Napi::Value Patch(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value Get(const Napi::CallbackInfo& info);
  Napi::Value List(const Napi::CallbackInfo& info);
  Napi::Value ExplainList(const Napi::CallbackInfo& info);
  Napi::Value CreateIndex(const Napi::CallbackInfo& info);
  Napi::Value PurgeTombstones(const Napi::CallbackInfo& info);
  Napi::Value Begin(const Napi::CallbackInfo& info);
  Napi::Value Commit(const Napi::CallbackInfo& info);
  Napi::Value Rollback(const Napi::CallbackInfo& info);
  // pulled changes
  Napi::Value ApplyRemote(const Napi::CallbackInfo& info);
  Napi::Value Cursor(const Napi::CallbackInfo& info);
  Napi::Value Conflicts(const Napi::CallbackInfo& info);
  Napi::Value ResolveConflict(const Napi::CallbackInfo& info);
  Napi::Value AwaitingResolver(const Napi::CallbackInfo& info);
  Napi::Value SettleConflicts(const Napi::CallbackInfo& info);
  // ingestion
  Napi::Value Ingest(const Napi::CallbackInfo& info);
  Napi::Value IngestStatus(const Napi::CallbackInfo& info);
  Napi::Value ResetIngest(const Napi::CallbackInfo& info);
  // scheduler
  Scheduler& RequireScheduler(Napi::Env env);
  Napi::Value SchedConfigure(const Napi::CallbackInfo& info);
  Napi::Value SchedStart(const Napi::CallbackInfo& info);
  Napi::Value SchedStop(const Napi::CallbackInfo& info);
  Napi::Value SchedNotify(const Napi::CallbackInfo& info);
  Napi::Value SchedRequestManual(const Napi::CallbackInfo& info);
  Napi::Value SchedNextWakeAt(const Napi::CallbackInfo& info);
  Napi::Value SchedTryStart(const Napi::CallbackInfo& info);
  Napi::Value SchedFinished(const Napi::CallbackInfo& info);
  Napi::Value SchedStatus(const Napi::CallbackInfo& info);
  Napi::Value SchedTryProbe(const Napi::CallbackInfo& info);
  Napi::Value SchedProbeFinished(const Napi::CallbackInfo& info);
  Napi::Value SchedTryOpenStream(const Napi::CallbackInfo& info);
  Napi::Value SchedStreamOpened(const Napi::CallbackInfo& info);
  Napi::Value SchedStreamClosed(const Napi::CallbackInfo& info);
  Napi::Value SchedWantsStream(const Napi::CallbackInfo& info);

  DeltaSyncAddon* addon_;
  std::shared_ptr<ClientSlot> slot_;
  // Open JS transactions (client.transaction), innermost last, each holding the slot's lock.
  std::vector<std::unique_ptr<Transaction>> transactions_;
  std::vector<std::unique_lock<std::recursive_mutex>> transaction_locks_;
  SystemClock scheduler_clock_;
  SystemRandom scheduler_random_;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace deltasync::binding
