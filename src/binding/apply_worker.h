// ApplyWorker: applies one pulled page off the main thread. Execute() validates the
// whole page a window at a time, then applies it chunk by chunk: a page over
// kDecodeOncePageBytes is decoded again a window at a time (so it holds about two windows
// of decoded changes, not the page's), the next window decoded on a thread of its own
// while one is written (PagePrefetcher); a smaller one keeps its changes decoded from
// validation. It takes the client's lock only
// for one chunk at a time so that writes from the main thread wait at most one
// chunk. Progress reaches JS at most once per 16 ms.
#pragma once

#include <napi.h>

#include <chrono>
#include <memory>

#include "binding/addon.h"
#include "binding/native_client.h"
#include "core/apply.h"
#include "simdjson.h"

namespace deltasync::binding {

struct ApplyProgress {
  int64_t applied = 0;
  int64_t total = 0;
  int64_t bytes_parsed = 0;
};

class ApplyWorker : public Napi::AsyncProgressWorker<ApplyProgress> {
 public:
  // `max_retries`: for a whole sync response, how many rejections fail a pushed change.
  ApplyWorker(Napi::Env env, DeltaSyncAddon* addon, std::shared_ptr<ClientSlot> slot, simdjson::padded_string input,
              JsonLimits limits, int64_t chunk_size, int64_t max_retries, Napi::Value on_progress);
  // Bytes still owned by `owner` (a Buffer or ArrayBuffer, kept alive by a reference): the
  // worker reads them in place, a window at a time, never on the main thread.
  void SetExternalInput(Napi::Object owner, const uint8_t* data, size_t size);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override;
  void OnProgress(const ApplyProgress* data, size_t count) override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  DeltaSyncAddon* addon_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ClientSlot> slot_;
  simdjson::padded_string input_;
  Napi::ObjectReference external_owner_;
  const uint8_t* external_data_ = nullptr;
  size_t external_size_ = 0;
  JsonLimits limits_;
  int64_t chunk_size_;
  int64_t max_retries_;
  Napi::FunctionReference on_progress_;
  Status status_;
  ApplyResult result_;
};

}  // namespace deltasync::binding
