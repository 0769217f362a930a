#include "binding/apply_worker.h"

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/page_prefetcher.h"

namespace deltasync::binding {

namespace {
// Changes a chunk applies before a waiting caller may end it: progress is guaranteed, and a
// caller waits for at most this many (well under a millisecond).
constexpr size_t kChangesBeforeYield = 32;
}  // namespace

ApplyWorker::ApplyWorker(Napi::Env env, DeltaSyncAddon* addon, std::shared_ptr<ClientSlot> slot,
                         simdjson::padded_string input, JsonLimits limits, int64_t chunk_size,
                         int64_t max_retries, Napi::Value on_progress)
    : Napi::AsyncProgressWorker<ApplyProgress>(env, "deltasync:applyRemote"),
      addon_(addon),
      deferred_(Napi::Promise::Deferred::New(env)),
      slot_(std::move(slot)),
      input_(std::move(input)),
      limits_(limits),
      chunk_size_(std::max<int64_t>(1, chunk_size)),
      max_retries_(max_retries) {
  if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
}

void ApplyWorker::SetExternalInput(Napi::Object owner, const uint8_t* data, size_t size) {
  external_owner_ = Napi::Persistent(owner);
  external_data_ = data;
  external_size_ = size;
}

void ApplyWorker::Execute(const ExecutionProgress& progress) {
  const std::string_view bytes = external_data_ != nullptr || external_size_ > 0
                                     ? std::string_view(reinterpret_cast<const char*>(external_data_), external_size_)
                                     : std::string_view(input_.data(), input_.size());
  // Validate the whole page before touching the database, a window at a time. A large page
  // keeps none of its changes: they are decoded again a chunk at a time as they are applied,
  // so memory follows the chunk, not the page. A small one keeps them, decoded once.
  simdjson::ondemand::parser parser;
  PullPage page;
  PageLayout layout;
  const PageChanges keep = bytes.size() <= kDecodeOncePageBytes ? PageChanges::kKeep : PageChanges::kCountOnly;
  status_ = ValidatePullPage(parser, bytes, limits_, &page, &layout, keep);
  if (!status_.ok()) return;
  if (!page.verdicts.empty()) {
    // A whole sync response: record the verdicts on what was pushed before applying what was pulled.
    std::lock_guard<std::recursive_mutex> lock(slot_->mutex);
    if (!slot_->client) {
      status_ = Status::Closed("The client was closed before the sync response was applied");
      return;
    }
    status_ = slot_->client->applier().ApplyVerdicts(page, max_retries_, &result_);
    if (!status_.ok()) return;
  }
  if (!page.verdicts.empty()) slot_->YieldToWaiters();

  using SteadyClock = std::chrono::steady_clock;
  auto last_report = SteadyClock::now();
  const size_t total = page.ChangeCount();
  const size_t window = static_cast<size_t>(chunk_size_);
  // A page decoded again is decoded a window ahead, on a thread of its own (which then has the
  // parser), while the window before it is written.
  std::optional<PageChangeReader> reader;
  std::optional<PagePrefetcher> prefetcher;
  if (keep == PageChanges::kCountOnly && total > 0) {
    prefetcher.emplace(parser, bytes, layout, limits_, window);
  } else {
    reader.emplace(parser, bytes, layout, limits_);
  }
  size_t begin = 0;  // within page.changes: the changes kept from validation, or the window last read
  do {
    if (begin == page.changes.size()) {
      status_ = prefetcher ? prefetcher->Next(&page) : reader->Next(window, &page);
      if (!status_.ok()) return;
      begin = 0;
    }
    size_t end = std::min(page.changes.size(), begin + window);
    {
      std::lock_guard<std::recursive_mutex> lock(slot_->mutex);
      if (!slot_->client) {
        status_ = Status::Closed("The client was closed while applying a page; changes up to version " +
                                 std::to_string(result_.latest_server_version.value_or(0)) + " were applied");
        return;
      }
      // A main-thread call waiting for the client (a put() mid-apply) ends the chunk early,
      // so it waits for a few changes and one commit, not for a whole chunk.
      size_t reached = end;
      status_ = slot_->client->applier().ApplyChunk(
          page, begin, end, &result_, [this] { return slot_->waiters.load(std::memory_order_acquire) > 0; },
          kChangesBeforeYield, &reached);
      if (!status_.ok()) return;
      end = reached;
      if (page.window_start + end == total) {
        Result<int64_t> purged = slot_->client->PurgeExpiredTombstones();
        if (!purged.ok()) {
          status_ = purged.status();
          return;
        }
      }
    }
    begin = end;
    slot_->YieldToWaiters();
    const auto now = SteadyClock::now();
    const bool done = page.window_start + begin == total;
    if (now - last_report >= std::chrono::milliseconds(16) || done) {
      last_report = now;
      ApplyProgress report{result_.applied + result_.skipped, static_cast<int64_t>(total),
                           static_cast<int64_t>(page.bytes)};
      progress.Send(&report, 1);
    }
  } while (page.window_start + begin < total);
}

void ApplyWorker::OnProgress(const ApplyProgress* data, size_t count) {
  if (count == 0 || on_progress_.IsEmpty() || !slot_->client) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object report = Napi::Object::New(env);
  report.Set("applied", Napi::Number::New(env, static_cast<double>(data->applied)));
  report.Set("total", Napi::Number::New(env, static_cast<double>(data->total)));
  report.Set("bytesParsed", Napi::Number::New(env, static_cast<double>(data->bytes_parsed)));
  on_progress_.Call({report});
}

void ApplyWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (!status_.ok()) {
    addon_->Reject(env, deferred_, status_);
    return;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("applied", Napi::Number::New(env, static_cast<double>(result_.applied)));
  out.Set("skipped", Napi::Number::New(env, static_cast<double>(result_.skipped)));
  Napi::Array conflicts = Napi::Array::New(env, result_.conflicts.size());
  uint32_t index = 0;
  for (const AppliedConflict& conflict : result_.conflicts) {
    Napi::Object item = Napi::Object::New(env);
    item.Set("entityType", conflict.entity_type);
    item.Set("entityId", conflict.entity_id);
    item.Set("changeId", conflict.change_id);
    item.Set("version", Napi::Number::New(env, static_cast<double>(conflict.version)));
    item.Set("strategy", ConflictStrategyName(conflict.strategy));
    item.Set("winner", conflict.winner);
    if (conflict.conflict_id) {
      item.Set("conflictId", Napi::Number::New(env, static_cast<double>(*conflict.conflict_id)));
    }
    conflicts.Set(index++, item);
  }
  out.Set("conflicts", conflicts);
  out.Set("hasMore", Napi::Boolean::New(env, result_.has_more));
  out.Set("resynced", Napi::Boolean::New(env, result_.resynced));
  Napi::Object pushed = Napi::Object::New(env);
  pushed.Set("applied", Napi::Number::New(env, static_cast<double>(result_.pushed_applied)));
  pushed.Set("rejected", Napi::Number::New(env, static_cast<double>(result_.pushed_rejected)));
  Napi::Array failed = Napi::Array::New(env, result_.pushed_failed.size());
  for (uint32_t i = 0; i < result_.pushed_failed.size(); ++i) failed.Set(i, result_.pushed_failed[i]);
  pushed.Set("failed", failed);
  Napi::Array pushed_conflicts = Napi::Array::New(env, result_.pushed_conflicts.size());
  uint32_t pushed_index = 0;
  for (const PushVerdict& verdict : result_.pushed_conflicts) {
    Napi::Object item = Napi::Object::New(env);
    item.Set("changeId", verdict.change_id);
    item.Set("entityType", verdict.entity_type);
    item.Set("entityId", verdict.entity_id);
    item.Set("winner", verdict.winner);
    item.Set("resolution", verdict.resolution);
    item.Set("reason", verdict.reason);
    if (verdict.conflict_id) item.Set("conflictId", Napi::Number::New(env, static_cast<double>(*verdict.conflict_id)));
    item.Set("serverVersion", verdict.server_version
                                  ? Napi::Value(Napi::Number::New(env, static_cast<double>(*verdict.server_version)))
                                  : env.Null());
    pushed_conflicts.Set(pushed_index++, item);
  }
  pushed.Set("conflicts", pushed_conflicts);
  out.Set("pushed", pushed);
  if (result_.latest_server_version) {
    out.Set("latestServerVersion", Napi::Number::New(env, static_cast<double>(*result_.latest_server_version)));
  } else {
    out.Set("latestServerVersion", env.Null());
  }
  deferred_.Resolve(out);
}

void ApplyWorker::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

}  // namespace deltasync::binding
