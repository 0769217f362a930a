#include "binding/ingest_worker.h"

#include <chrono>
#include <mutex>
#include <thread>
#include <utility>

#include "binding/test_hooks.h"

namespace deltasync::binding {

IngestWorker::IngestWorker(Napi::Env env, DeltaSyncAddon* addon, std::shared_ptr<ClientSlot> slot, std::string dir,
                           IngestOptions options, Napi::Value on_progress)
    : Napi::AsyncProgressWorker<IngestProgress>(env, "deltasync:ingest"),
      addon_(addon),
      deferred_(Napi::Promise::Deferred::New(env)),
      slot_(std::move(slot)),
      dir_(std::move(dir)),
      options_(std::move(options)) {
  if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
  pause_after_first_progress_ = TestHook("ingest-pause-after-first-progress").has_value();
}

void IngestWorker::Execute(const ExecutionProgress& progress) {
  std::unique_ptr<Ingester> ingester;
  {
    std::lock_guard<std::recursive_mutex> lock(slot_->mutex);
    if (!slot_->client) {
      status_ = Status::Closed("The client is closed");
      return;
    }
    Client& client = *slot_->client;
    ingester = std::make_unique<Ingester>(client.database(), client.clock(), client.store(), client.options().limits);
  }
  auto lock = [slot = slot_]() {
    slot->YieldToWaiters();  // main-thread writes go first between chunks
    std::unique_lock<std::recursive_mutex> held(slot->mutex);
    if (!slot->client) held.unlock();
    return held;
  };
  using SteadyClock = std::chrono::steady_clock;
  auto last_report = SteadyClock::now() - std::chrono::milliseconds(16);
  bool paused = false;
  auto report_progress = [&](const IngestProgress& state) {
    const auto now = SteadyClock::now();
    if (now - last_report < std::chrono::milliseconds(16) && state.files_done < state.files_total) return;
    last_report = now;
    progress.Send(&state, 1);
    if (pause_after_first_progress_ && !paused && state.records > 0) {
      paused = true;
      for (int waited_ms = 0; waited_ms < 10000; ++waited_ms) {
        {
          std::lock_guard<std::recursive_mutex> guard(slot_->mutex);
          if (!slot_->client) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  };
  Result<IngestReport> report = ingester->Run(dir_, options_, lock, report_progress);
  if (!report.ok()) {
    status_ = report.status();
    return;
  }
  report_json_ = IngestReportJson(report.value());
}

void IngestWorker::OnProgress(const IngestProgress* data, size_t count) {
  if (count == 0 || on_progress_.IsEmpty() || !slot_->client) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object report = Napi::Object::New(env);
  report.Set("filesDone", Napi::Number::New(env, static_cast<double>(data->files_done)));
  report.Set("filesTotal", Napi::Number::New(env, static_cast<double>(data->files_total)));
  report.Set("records", Napi::Number::New(env, static_cast<double>(data->records)));
  report.Set("bytes", Napi::Number::New(env, static_cast<double>(data->bytes)));
  on_progress_.Call({report});
}

void IngestWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (!status_.ok()) {
    addon_->Reject(env, deferred_, status_);
    return;
  }
  deferred_.Resolve(Napi::String::New(env, report_json_));
}

void IngestWorker::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

}  // namespace deltasync::binding
