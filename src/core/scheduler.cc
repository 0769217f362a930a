#include "core/scheduler.h"

#include <algorithm>

namespace deltasync {

const char* SchedulerStateName(SchedulerState state) {
  switch (state) {
    case SchedulerState::kStopped: return "stopped";
    case SchedulerState::kIdle: return "idle";
    case SchedulerState::kSyncing: return "syncing";
    case SchedulerState::kBackoff: return "backoff";
    case SchedulerState::kOffline: return "offline";
  }
  return "idle";
}

const char* OfflineReasonName(OfflineReason reason) {
  switch (reason) {
    case OfflineReason::kNone: return nullptr;
    case OfflineReason::kNotified: return "notified";
    case OfflineReason::kUnreachable: return "unreachable";
  }
  return nullptr;
}

namespace {

// base * 2^doublings, capped at `cap` without overflowing.
int64_t DoubledCappedMs(int64_t base, int64_t cap, int64_t doublings) {
  int64_t ceiling = std::max<int64_t>(base, 0);
  for (int64_t i = 0; i < doublings && ceiling < cap; ++i) ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
  return std::min(ceiling, cap);
}

}  // namespace

int64_t FullJitterDelayMs(const RetryOptions& retry, int64_t failures, Random& random) {
  if (failures <= 0) return 0;
  const int64_t ceiling = DoubledCappedMs(retry.base_delay_ms, retry.max_delay_ms, failures - 1);
  if (ceiling <= 0) return 0;
  // A ceiling near INT64_MAX rounds up to 2^63 as a double; a product that reached it would not
  // convert back to int64 (undefined behaviour), so the top is the ceiling itself.
  const double scaled = random.NextDouble() * static_cast<double>(ceiling);
  if (!(scaled < static_cast<double>(ceiling))) return ceiling;
  return static_cast<int64_t>(scaled);
}

Scheduler::Scheduler(Clock& clock, Random& random, SchedulerOptions options)
    : clock_(clock), random_(random), options_(options) {}

void Scheduler::Start() {
  if (started_) return;
  started_ = true;
  live_fallback_ = false;
  stream_failures_ = 0;
  stream_retry_at_.reset();
  RequestAt(clock_.NowMs());  // a first cycle as soon as allowed
  if (!online()) ScheduleProbe();
}

void Scheduler::Stop() {
  started_ = false;
  due_at_.reset();
  manual_pending_ = false;
  rerun_after_cycle_ = false;
  probe_due_at_.reset();
  stream_retry_at_.reset();
}

void Scheduler::RequestAt(int64_t at, bool any_interval) {
  if (!started_ || auth_blocked_) return;
  if (running_) {
    rerun_after_cycle_ = true;
    return;
  }
  if (last_start_ && !any_interval) at = std::max(at, *last_start_ + options_.min_interval_ms);
  if (backoff_until_) at = std::max(at, *backoff_until_);
  // Collapse: an earlier pending request stands (it is already past the interval).
  if (!due_at_ || at < *due_at_) due_at_ = at;
}

int64_t Scheduler::BackoffDelayMs(int64_t failures, std::optional<int64_t> retry_after_ms) {
  const int64_t delay = FullJitterDelayMs(options_.retry, failures, random_);
  if (!retry_after_ms) return delay;
  return std::max(delay, std::min(*retry_after_ms, options_.retry.max_retry_after_ms));
}

void Scheduler::ScheduleProbe() {
  if (!started_ || !HealthEnabled()) return;
  const int64_t interval = options_.health.interval_ms;
  int64_t delay = interval;
  if (failed_probes_ > 0) {
    const int64_t ceiling = DoubledCappedMs(interval, std::max(options_.retry.max_delay_ms, interval), failed_probes_);
    // The upper half jittered: probes of many devices after one outage spread out, and never
    // come sooner than half the backoff.
    const int64_t half = ceiling / 2;
    delay = half + static_cast<int64_t>(random_.NextDouble() * static_cast<double>(ceiling - half));
  }
  probe_due_at_ = clock_.NowMs() + delay;
}

void Scheduler::SchedulePeriodic() {
  // An open live stream tells of every change: nothing to poll for.
  if (options_.periodic_ms > 0 && !stream_open_) RequestAt(clock_.NowMs() + options_.periodic_ms);
}

void Scheduler::Notify(SchedulerEvent event) {
  const int64_t now = clock_.NowMs();
  switch (event) {
    case SchedulerEvent::kOnline: {
      const bool was_offline = !online();
      online_ = true;
      ForgetUnreachable();
      if (auth_blocked_) {
        auth_blocked_ = false;
        failures_ = 0;
      }
      // The network came back: try now rather than wait out a backoff or a Retry-After. The
      // failure count stays, so a further failure backs off further. An "online" while
      // already online changes nothing, so an app repeating it cannot hammer a server.
      if (was_offline) {
        backoff_until_.reset();
        live_fallback_ = false;  // a new network: the stream may get through now
        stream_failures_ = 0;
        stream_retry_at_.reset();
      }
      RequestAt(now);
      break;
    }
    case SchedulerEvent::kOffline:
      online_ = false;
      if (!probe_due_at_ && !probing_) ScheduleProbe();
      break;
    case SchedulerEvent::kFocus:
    case SchedulerEvent::kVisible:
      RequestAt(now);
      break;
    case SchedulerEvent::kLocalChange:
      RequestAt(now + options_.local_change_delay_ms);
      break;
    case SchedulerEvent::kPoke:
      if (online()) RequestAt(now + options_.live.poke_debounce_ms, /*any_interval=*/true);
      break;
    case SchedulerEvent::kBlur:
    case SchedulerEvent::kHidden:
      break;
  }
}

bool Scheduler::RequestManual() {
  failures_ = 0;
  backoff_until_.reset();
  auth_blocked_ = false;
  manual_pending_ = true;
  return !running_;
}

std::optional<int64_t> Scheduler::NextWakeAt() const {
  if (running_ || probing_) return std::nullopt;
  if (manual_pending_) return clock_.NowMs();
  if (!started_) return std::nullopt;
  if (!online()) return probe_due_at_;
  if (auth_blocked_) return std::nullopt;
  if (WantsStream() && !stream_open_ && !stream_connecting_ && stream_retry_at_ &&
      (!due_at_ || *stream_retry_at_ < *due_at_)) {
    return stream_retry_at_;
  }
  return due_at_;
}

bool Scheduler::WantsStream() const {
  return options_.live.enabled && started_ && online() && !auth_blocked_ && !live_fallback_;
}

bool Scheduler::TryOpenStream() {
  if (!WantsStream() || stream_open_ || stream_connecting_) return false;
  if (stream_retry_at_ && *stream_retry_at_ > clock_.NowMs()) return false;
  stream_connecting_ = true;
  stream_retry_at_.reset();
  return true;
}

void Scheduler::OnStreamOpened() {
  stream_connecting_ = false;
  stream_open_ = true;
  stream_failures_ = 0;
  if (unreachable_) {  // the server answered: it is reachable again
    ForgetUnreachable();
    backoff_until_.reset();
    RequestAt(clock_.NowMs());
  }
}

void Scheduler::OnStreamClosed(bool failed, std::optional<int64_t> retry_after_ms) {
  const bool was_open = stream_open_;
  stream_open_ = false;
  stream_connecting_ = false;
  if (!WantsStream()) return;  // stopped, offline or blocked: the host closed it on purpose
  SchedulePeriodic();          // until the stream is back, poll
  if (!failed && !was_open) return;
  // A stream that was open and broke retries from the first step; failed connections add up.
  stream_failures_ = was_open ? 1 : stream_failures_ + 1;
  if (stream_failures_ >= options_.live.fallback_after) {
    live_fallback_ = true;
    return;
  }
  stream_retry_at_ = clock_.NowMs() + BackoffDelayMs(stream_failures_, retry_after_ms);
}

bool Scheduler::TryStartCycle() {
  if (running_ || probing_) return false;
  const int64_t now = clock_.NowMs();
  const bool manual = manual_pending_;
  if (!manual) {
    if (!started_ || !online() || auth_blocked_ || !due_at_ || *due_at_ > now) return false;
  }
  manual_pending_ = false;
  running_ = true;
  rerun_after_cycle_ = false;
  due_at_.reset();
  last_start_ = now;
  return true;
}

void Scheduler::OnCycleFinished(CycleOutcome outcome, std::optional<int64_t> retry_after_ms) {
  running_ = false;
  const int64_t now = clock_.NowMs();
  const bool rerun = rerun_after_cycle_;
  rerun_after_cycle_ = false;
  switch (outcome) {
    case CycleOutcome::kSuccess:
      failures_ = 0;
      backoff_until_.reset();
      if (unreachable_) ForgetUnreachable();  // a manual cycle got through: the server is back
      unreachable_cycles_ = 0;
      SchedulePeriodic();
      if (rerun) RequestAt(now);
      break;
    case CycleOutcome::kTransient:
    case CycleOutcome::kUnreachable: {
      if (outcome == CycleOutcome::kUnreachable) {
        ++unreachable_cycles_;
        if (HealthEnabled() && !unreachable_ && unreachable_cycles_ >= options_.health.unreachable_after) {
          unreachable_ = true;
          failed_probes_ = 0;
          if (!probe_due_at_) ScheduleProbe();
        }
      } else {
        unreachable_cycles_ = 0;  // the server answered
      }
      ++failures_;
      backoff_until_ = now + BackoffDelayMs(failures_, retry_after_ms);
      due_at_.reset();
      RequestAt(now);  // clamped to the backoff
      break;
    }
    case CycleOutcome::kAuthFailed:
      auth_blocked_ = true;
      due_at_.reset();
      break;
    case CycleOutcome::kAborted:
      if (rerun) RequestAt(now);
      break;
  }
}

bool Scheduler::TryStartProbe() {
  if (running_ || probing_ || !started_ || !probe_due_at_ || *probe_due_at_ > clock_.NowMs()) return false;
  probing_ = true;
  probe_due_at_.reset();
  return true;
}

void Scheduler::OnProbeFinished(bool reached) {
  probing_ = false;
  if (!reached) {
    ++failed_probes_;
    if (!online()) ScheduleProbe();
    return;
  }
  online_ = true;
  ForgetUnreachable();
  backoff_until_.reset();
  RequestAt(clock_.NowMs());
}

void Scheduler::ForgetUnreachable() {
  unreachable_ = false;
  unreachable_cycles_ = 0;
  failed_probes_ = 0;
  probe_due_at_.reset();
}

OfflineReason Scheduler::offline_reason() const {
  if (!started_ || online()) return OfflineReason::kNone;
  return unreachable_ && online_ ? OfflineReason::kUnreachable : OfflineReason::kNotified;
}

SchedulerState Scheduler::state() const {
  if (running_) return SchedulerState::kSyncing;
  if (!started_) return SchedulerState::kStopped;
  if (!online()) return SchedulerState::kOffline;
  if (backoff_until_ && *backoff_until_ > clock_.NowMs()) return SchedulerState::kBackoff;
  return SchedulerState::kIdle;
}

}  // namespace deltasync
