// Scheduler: decides when a sync cycle runs. A pure state machine over an
// injected Clock and Random: the host asks NextWakeAt(), arms one timer for it,
// and on wake-up (or on any event) asks TryStartCycle(); it reports each cycle's
// end with OnCycleFinished(). Nothing here sleeps or starts threads.
//
// Rules:
// - Triggers: online, focus/visible, periodic (periodic_ms after the last cycle),
//   after a local write (local_change_delay_ms later; later writes do not push it back),
//   manual.
// - Automatic cycles start at least min_interval_ms apart; triggers inside that window
//   collapse into one cycle at its end.
// - One cycle at a time; a write (or any trigger) during a cycle schedules another.
// - Offline suppresses automatic cycles; a manual one still runs.
// - A transient failure backs off: full jitter, delay = random(0, min(max, base * 2^(n-1)))
//   after the n-th consecutive failure, and at least Retry-After when the server sent one.
//   Automatic triggers during a backoff wait for it. A success resets it.
// - An authentication failure stops automatic cycles until online is notified or a
//   manual sync runs.
// - A manual sync bypasses the interval and the backoff, and resets the backoff.
//
// Thread safety: not thread-safe; one thread at a time.
#pragma once

#include <cstdint>
#include <optional>

#include "core/env.h"

namespace deltasync {

struct RetryOptions {
  int64_t max_retries = 5;        // per-change rejections before a change is failed
  int64_t base_delay_ms = 1000;
  int64_t max_delay_ms = 300000;
  // A server's Retry-After is honoured up to this; a longer one (a date in year 9999, say)
  // must not stop automatic sync for good.
  int64_t max_retry_after_ms = 3600000;
};

struct SchedulerOptions {
  int64_t periodic_ms = 30000;        // 0: no periodic trigger
  int64_t min_interval_ms = 5000;
  int64_t local_change_delay_ms = 1000;
  RetryOptions retry;
};

enum class SchedulerEvent { kOnline, kOffline, kFocus, kBlur, kVisible, kHidden, kLocalChange };

enum class SchedulerState { kStopped, kIdle, kSyncing, kBackoff, kOffline };
const char* SchedulerStateName(SchedulerState state);  // "stopped", "idle", "syncing", "backoff", "offline"

enum class CycleOutcome {
  kSuccess,         // everything sent and pulled
  kTransient,       // network error, timeout, 408, 429, 5xx: back off
  kAuthFailed,      // 401/403: stop automatic cycles
  kAborted,         // stopped or closed mid-cycle: nothing to learn
};

// The full-jitter delay after `failures` consecutive failures, in [0, min(max, base * 2^(failures-1))).
int64_t FullJitterDelayMs(const RetryOptions& retry, int64_t failures, Random& random);

class Scheduler {
 public:
  Scheduler(Clock& clock, Random& random, SchedulerOptions options);

  void Start();
  void Stop();
  void Notify(SchedulerEvent event);
  // Asks for a manual cycle: resets the backoff and lifts an auth stop. TryStartCycle()
  // then starts it at once, or right after the running cycle. Returns false when a
  // cycle is running.
  bool RequestManual();

  // When the host should call TryStartCycle() next (ms since the epoch), if ever.
  std::optional<int64_t> NextWakeAt() const;
  // True when a cycle should start now; the scheduler is then in kSyncing until OnCycleFinished.
  bool TryStartCycle();
  // Reports the end of the running cycle. `retry_after_ms`: the server's Retry-After, if any.
  void OnCycleFinished(CycleOutcome outcome, std::optional<int64_t> retry_after_ms = std::nullopt);

  SchedulerState state() const;
  bool online() const { return online_; }
  bool auth_blocked() const { return auth_blocked_; }
  int64_t consecutive_failures() const { return failures_; }
  // When the next automatic (or queued manual) cycle is due, if one is.
  std::optional<int64_t> next_sync_at() const { return due_at_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  // Asks for an automatic cycle no earlier than `at` (clamped to the interval and backoff).
  void RequestAt(int64_t at);
  void SchedulePeriodic();

  Clock& clock_;
  Random& random_;
  SchedulerOptions options_;
  bool started_ = false;
  bool running_ = false;
  bool online_ = true;
  bool auth_blocked_ = false;
  bool manual_pending_ = false;      // a manual cycle waits for the running one
  bool rerun_after_cycle_ = false;   // a trigger arrived during the running cycle
  int64_t failures_ = 0;
  std::optional<int64_t> due_at_;
  std::optional<int64_t> backoff_until_;
  std::optional<int64_t> last_start_;
};

}  // namespace deltasync
