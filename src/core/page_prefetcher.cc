#include "core/page_prefetcher.h"

#include <utility>

namespace deltasync {

PagePrefetcher::PagePrefetcher(simdjson::ondemand::parser& parser, std::string_view bytes,
                               const PageLayout& layout, const JsonLimits& limits, size_t count)
    : reader_(parser, bytes, layout, limits), count_(count), thread_([this] { Run(); }) {}

PagePrefetcher::~PagePrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
}

void PagePrefetcher::Run() {
  // Between windows `decoding` holds no changes and starts where the last window ended, so the
  // reader goes on from there (with the last version it read). A window is decoded once the one
  // before it is taken: one window is applied while the next is decoded, and no more are held.
  PullPage decoding;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || !ready_; });
      if (stopping_) return;
    }
    Status status = StatusOfWork([&] { return reader_.Next(count_, &decoding); });
    if (!status.ok()) decoding.changes.clear();  // no change of a window that failed
    const bool last = !status.ok() || decoding.changes.empty();
    const size_t start = decoding.window_start;
    const size_t decoded = decoding.changes.size();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_changes_ = std::move(decoding.changes);
      ready_start_ = start;
      ready_status_ = std::move(status);
      ready_ = true;
    }
    changed_.notify_all();
    if (last) return;
    decoding.changes.clear();
    decoding.window_start = start + decoded;
  }
}

Status PagePrefetcher::Next(PullPage* page) {
  if (!thread_.started()) return reader_.Next(count_, page);
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return ready_; });
  page->changes = std::move(ready_changes_);
  ready_changes_.clear();
  const bool ended = !ready_status_.ok() || page->changes.empty();
  page->window_start = ready_start_;
  Status status = ready_status_;
  // The end (or an error) stays ready: a later call gets it again, as from PageChangeReader.
  if (!ended) ready_ = false;
  lock.unlock();
  changed_.notify_all();
  return status;
}

}  // namespace deltasync
