// IngestWorker: runs client.ingest() / previewIngest() on the thread pool. The
// Ingester takes the client's lock one chunk of records at a time, so main-thread
// writes interleave; progress reaches JS at most once per 16 ms.
#pragma once

#include <napi.h>

#include <memory>

#include "binding/addon.h"
#include "binding/native_client.h"
#include "core/ingest.h"

namespace deltasync::binding {

class IngestWorker : public Napi::AsyncProgressWorker<IngestProgress> {
 public:
  IngestWorker(Napi::Env env, DeltaSyncAddon* addon, std::shared_ptr<ClientSlot> slot, std::string dir,
               IngestOptions options, Napi::Value on_progress);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override;
  void OnProgress(const IngestProgress* data, size_t count) override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  DeltaSyncAddon* addon_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ClientSlot> slot_;
  std::string dir_;
  IngestOptions options_;
  Napi::FunctionReference on_progress_;
  Status status_;
  std::string report_json_;
  // Test hook (DELTASYNC_TEST_HOOKS=ingest-pause-after-first-progress, read when the worker is
  // made): after the first progress report with records, the worker waits until the client is
  // closed, so a test interrupts a run at a known point instead of racing it.
  bool pause_after_first_progress_ = false;
};

}  // namespace deltasync::binding
