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
// - Health check (health.interval_ms > 0): after health.unreachable_after consecutive cycles
//   that failed without reaching the server (kUnreachable), and while offline was notified,
//   the client is offline and probes the server instead of syncing: the first probe
//   interval_ms later, then with backoff (interval * 2^(n-1) after n failed probes, capped at
//   retry.max_delay_ms, the upper half jittered). A probe that reaches the server marks it
//   online and asks for a cycle at once.
// - Live stream (live.enabled): while started, online and not auth-blocked, the host keeps a
//   stream of the server's pokes open (TryOpenStream / OnStreamOpened / OnStreamClosed). A poke
//   asks for a cycle poke_debounce_ms later, whatever min_interval_ms says (a burst of pokes is
//   one cycle; the backoff still holds). While the stream is open there is no periodic cycle,
//   and an open stream counts as the server reached. A stream that fails reconnects after a
//   full-jitter delay (as a failed cycle backs off); after live.fallback_after consecutive
//   failures to connect the client falls back to periodic sync until online is notified again
//   or it restarts.
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

struct HealthOptions {
  int64_t interval_ms = 0;        // 0: no health check
  int64_t unreachable_after = 3;  // consecutive unreachable cycles before the client counts as offline
};

struct LiveOptions {
  bool enabled = false;
  int64_t poke_debounce_ms = 20;  // pokes this close together become one cycle
  int64_t fallback_after = 5;     // consecutive failed connections before periodic sync takes over
};

struct SchedulerOptions {
  int64_t periodic_ms = 30000;        // 0: no periodic trigger
  int64_t min_interval_ms = 5000;
  int64_t local_change_delay_ms = 1000;
  RetryOptions retry;
  HealthOptions health;
  LiveOptions live;
};

// kPoke: the server's log moved past what this client has (a live stream's event).
enum class SchedulerEvent { kOnline, kOffline, kFocus, kBlur, kVisible, kHidden, kLocalChange, kPoke };

enum class SchedulerState { kStopped, kIdle, kSyncing, kBackoff, kOffline };
const char* SchedulerStateName(SchedulerState state);  // "stopped", "idle", "syncing", "backoff", "offline"

// Why the client counts as offline.
enum class OfflineReason { kNone, kNotified, kUnreachable };
const char* OfflineReasonName(OfflineReason reason);  // nullptr, "notified", "unreachable"

enum class CycleOutcome {
  kSuccess,         // everything sent and pulled
  kTransient,       // the server answered 408, 429 or 5xx: back off
  kUnreachable,     // the server was not reached (network error, timeout): back off, and counts
                    // towards the health check's unreachable_after
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
  // True when a health probe should start now (never during a cycle or another probe).
  bool TryStartProbe();
  // Reports the end of the running probe: `reached` when the server answered at all.
  void OnProbeFinished(bool reached);

  // True when the host should open the live stream now; then it reports OnStreamOpened() or
  // OnStreamClosed(). Never while one is open or connecting.
  bool TryOpenStream();
  void OnStreamOpened();
  // The stream ended: `failed` when it could not connect or broke; false when the host closed it.
  // `retry_after_ms`: the server's Retry-After (too many streams), honoured up to max_retry_after_ms.
  void OnStreamClosed(bool failed, std::optional<int64_t> retry_after_ms = std::nullopt);
  // Whether a stream should be open now (the host closes an open one when this turns false).
  bool WantsStream() const;
  // The stream is open and wanted (a stream being closed after stop or offline no longer counts).
  bool live() const { return stream_open_ && WantsStream(); }
  bool live_fallback() const { return live_fallback_; }

  SchedulerState state() const;
  OfflineReason offline_reason() const;
  bool online() const { return online_ && !unreachable_; }
  // When the next health probe is due, while one is scheduled.
  std::optional<int64_t> next_probe_at() const { return probing_ ? std::nullopt : probe_due_at_; }
  bool auth_blocked() const { return auth_blocked_; }
  int64_t consecutive_failures() const { return failures_; }
  // When the next automatic (or queued manual) cycle is due, if one is.
  std::optional<int64_t> next_sync_at() const { return due_at_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  // Asks for an automatic cycle no earlier than `at` (clamped to the backoff, and unless
  // `any_interval`, to min_interval_ms after the last start).
  void RequestAt(int64_t at, bool any_interval = false);
  void SchedulePeriodic();
  // The full-jitter delay after `failures` consecutive failures, and at least the server's
  // Retry-After (capped at max_retry_after_ms) when it sent one.
  int64_t BackoffDelayMs(int64_t failures, std::optional<int64_t> retry_after_ms);
  bool HealthEnabled() const { return options_.health.interval_ms > 0; }
  // Schedules the next probe after `failed_probes_` failed ones (none: interval_ms from now).
  void ScheduleProbe();
  // The server answered (or online was notified): no probing, counts back to zero.
  void ForgetUnreachable();

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
  bool unreachable_ = false;         // the health check judged the server unreachable
  int64_t unreachable_cycles_ = 0;   // consecutive kUnreachable cycles
  bool probing_ = false;
  int64_t failed_probes_ = 0;
  std::optional<int64_t> probe_due_at_;
  std::optional<int64_t> due_at_;
  std::optional<int64_t> backoff_until_;
  std::optional<int64_t> last_start_;
  bool stream_open_ = false;
  bool stream_connecting_ = false;
  bool live_fallback_ = false;
  int64_t stream_failures_ = 0;
  std::optional<int64_t> stream_retry_at_;
};

}  // namespace deltasync
