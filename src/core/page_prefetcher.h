// Decodes the windows of a validated page ahead of the apply, on a thread of its own, so that
// decoding one window overlaps with writing the one before it. It yields exactly what
// PageChangeReader::Next would, in the same order, with the same errors; it holds at most
// one decoded window besides the one its caller is applying. When no thread can be started,
// Next() decodes each window itself.
//
// Thread safety: Next() is called from one thread at a time (the applying one).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/change.h"
#include "core/joining_thread.h"
#include "core/json.h"
#include "core/page_layout.h"
#include "core/pull_page.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

class PagePrefetcher {
 public:
  // Starts decoding windows of at most `count` changes from the page's first change, with
  // `parser` on the prefetcher's thread.
  // REQUIRES: `parser`, `bytes` and `layout` (from ValidatePullPage with PageChanges::kCountOnly)
  // outlive this object, and nothing else uses `parser` meanwhile.
  PagePrefetcher(simdjson::ondemand::parser& parser, std::string_view bytes, const PageLayout& layout,
                 const JsonLimits& limits, size_t count);
  ~PagePrefetcher();  // stops the thread, waiting for at most the window it is decoding
  PagePrefetcher(const PagePrefetcher&) = delete;
  PagePrefetcher& operator=(const PagePrefetcher&) = delete;

  // As PageChangeReader::Next(count, page): moves page->changes to the next window and sets
  // page->window_start; no changes once the page is done.
  Status Next(PullPage* page);

 private:
  void Run();

  PageChangeReader reader_;
  const size_t count_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool ready_ = false;     // guarded by mutex_: a window (or the end, or an error) waits in ready_*
  bool stopping_ = false;  // guarded by mutex_
  std::vector<RemoteChange> ready_changes_;  // guarded by mutex_
  size_t ready_start_ = 0;                   // guarded by mutex_
  Status ready_status_;                      // guarded by mutex_
  JoiningThread thread_;  // last: started once the rest is set up, joined first
};

}  // namespace deltasync
