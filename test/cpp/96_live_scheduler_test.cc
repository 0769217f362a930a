// 96: the scheduler's live stream (core/scheduler.h, "Live stream"): when the host opens the
// stream, how a poke becomes one cycle whatever the interval, no polling while the stream is
// open, reconnecting with full-jitter backoff, and falling back to periodic sync. On a
// ManualClock and a SeededRandom: nothing sleeps.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>

#include "core/env.h"
#include "core/scheduler.h"

namespace deltasync {
namespace {

constexpr int64_t kT0 = 1700000000000;

SchedulerOptions LiveOptions() {
  SchedulerOptions options;
  options.periodic_ms = 30000;
  options.min_interval_ms = 5000;
  options.local_change_delay_ms = 1000;
  options.retry.base_delay_ms = 1000;
  options.retry.max_delay_ms = 60000;
  options.live.enabled = true;
  options.live.poke_debounce_ms = 20;
  options.live.fallback_after = 3;
  return options;
}

class LiveSchedulerTest : public ::testing::Test {
 protected:
  explicit LiveSchedulerTest(SchedulerOptions options = LiveOptions())
      : clock_(kT0), random_(7), scheduler_(clock_, random_, options) {}

  int64_t Now() { return clock_.NowMs(); }

  // Starts, runs the first cycle, and opens the stream.
  void StartLive() {
    scheduler_.Start();
    ASSERT_TRUE(scheduler_.TryStartCycle());
    scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
    ASSERT_TRUE(scheduler_.TryOpenStream());
    scheduler_.OnStreamOpened();
    ASSERT_TRUE(scheduler_.live());
  }

  ManualClock clock_;
  SeededRandom random_;
  Scheduler scheduler_;
};

TEST_F(LiveSchedulerTest, TheStreamOpensOnlyWhileStartedOnlineAndEnabled) {
  EXPECT_FALSE(scheduler_.TryOpenStream()) << "not started";
  scheduler_.Start();
  EXPECT_TRUE(scheduler_.WantsStream());
  EXPECT_TRUE(scheduler_.TryOpenStream());
  EXPECT_FALSE(scheduler_.TryOpenStream()) << "one connection at a time";
  scheduler_.OnStreamOpened();
  scheduler_.Notify(SchedulerEvent::kOffline);
  EXPECT_FALSE(scheduler_.WantsStream()) << "the host closes it when offline";
  scheduler_.OnStreamClosed(false);
  EXPECT_FALSE(scheduler_.TryOpenStream());
  scheduler_.Notify(SchedulerEvent::kOnline);
  EXPECT_TRUE(scheduler_.TryOpenStream());
  scheduler_.OnStreamOpened();
  scheduler_.Stop();
  EXPECT_FALSE(scheduler_.WantsStream());

  Scheduler disabled(clock_, random_, SchedulerOptions());
  disabled.Start();
  EXPECT_FALSE(disabled.TryOpenStream()) << "live is off by default in the core";
}

TEST_F(LiveSchedulerTest, APokeIsOneCycleAfterTheDebounceEvenInsideTheMinimumInterval) {
  StartLive();  // a cycle started at kT0: the minimum interval runs until kT0 + 5000
  clock_.Advance(100);
  scheduler_.Notify(SchedulerEvent::kPoke);
  clock_.Advance(5);
  scheduler_.Notify(SchedulerEvent::kPoke);
  scheduler_.Notify(SchedulerEvent::kPoke);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 120) << "the first poke's debounce, not the interval";
  clock_.Advance(14);
  EXPECT_FALSE(scheduler_.TryStartCycle());
  clock_.Advance(1);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.Notify(SchedulerEvent::kPoke);  // during the cycle: one more after it
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5120) << "a trigger during the cycle waits for the interval";
  EXPECT_FALSE(scheduler_.TryStartCycle());
}

TEST_F(LiveSchedulerTest, APokeWaitsOutABackoff) {
  StartLive();
  scheduler_.Notify(SchedulerEvent::kPoke);
  clock_.Advance(20);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kTransient, 10000);
  scheduler_.Notify(SchedulerEvent::kPoke);
  EXPECT_EQ(scheduler_.NextWakeAt(), Now() + 10000);
}

TEST_F(LiveSchedulerTest, NoPeriodicCycleWhileTheStreamIsOpenAndPollingAgainOnceItDrops) {
  StartLive();
  clock_.Advance(10);
  scheduler_.Notify(SchedulerEvent::kFocus);  // a cycle for another reason, at the interval
  clock_.Advance(5000);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt) << "idle and live: nothing to poll for";
  scheduler_.OnStreamClosed(true);
  std::optional<int64_t> wake = scheduler_.NextWakeAt();
  ASSERT_TRUE(wake);
  EXPECT_LT(*wake, Now() + 1000) << "the reconnect comes first, within the first backoff step";
  ASSERT_TRUE(scheduler_.next_sync_at());
  EXPECT_EQ(*scheduler_.next_sync_at(), Now() + 30000) << "and polling resumes meanwhile";
}

TEST_F(LiveSchedulerTest, FailedConnectionsBackOffWithFullJitterThenFallBackToPeriodicSync) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  int64_t previous_ceiling = 0;
  for (int failure = 1; failure < 3; ++failure) {
    ASSERT_TRUE(scheduler_.TryOpenStream()) << failure;
    scheduler_.OnStreamClosed(true);
    const int64_t ceiling = int64_t{1000} << (failure - 1);
    std::optional<int64_t> wake = scheduler_.NextWakeAt();
    ASSERT_TRUE(wake);
    EXPECT_GE(*wake, Now());
    EXPECT_LT(*wake, Now() + ceiling) << "full jitter below base * 2^(n-1)";
    EXPECT_GT(ceiling, previous_ceiling);
    previous_ceiling = ceiling;
    EXPECT_FALSE(scheduler_.TryOpenStream() && *wake > Now()) << "not before the delay";
    clock_.Set(*wake);
  }
  ASSERT_TRUE(scheduler_.TryOpenStream());
  scheduler_.OnStreamClosed(true);  // the third failure
  EXPECT_TRUE(scheduler_.live_fallback());
  EXPECT_FALSE(scheduler_.WantsStream());
  ASSERT_TRUE(scheduler_.next_sync_at());
  EXPECT_LE(*scheduler_.next_sync_at(), Now() + 30000) << "periodic sync took over";
  clock_.Advance(60000);
  EXPECT_FALSE(scheduler_.TryOpenStream());

  scheduler_.Notify(SchedulerEvent::kOffline);
  scheduler_.Notify(SchedulerEvent::kOnline);
  EXPECT_FALSE(scheduler_.live_fallback()) << "a new network: try the stream again";
  EXPECT_TRUE(scheduler_.TryOpenStream());
}

TEST_F(LiveSchedulerTest, TooManyStreamsWaitsOutTheServersRetryAfter) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryOpenStream());
  scheduler_.OnStreamClosed(true, 5000);
  clock_.Advance(4999);
  EXPECT_FALSE(scheduler_.TryOpenStream());
  clock_.Advance(1);
  EXPECT_TRUE(scheduler_.TryOpenStream());
}

TEST_F(LiveSchedulerTest, AStreamThatWasOpenRetriesFromTheFirstStep) {
  StartLive();
  scheduler_.OnStreamClosed(true);
  std::optional<int64_t> wake = scheduler_.NextWakeAt();
  ASSERT_TRUE(wake);
  EXPECT_LT(*wake, Now() + 1000);
  clock_.Set(*wake);
  ASSERT_TRUE(scheduler_.TryOpenStream());
  scheduler_.OnStreamOpened();
  EXPECT_FALSE(scheduler_.live_fallback());
}

TEST_F(LiveSchedulerTest, AnOpenStreamCountsAsTheServerReached) {
  SchedulerOptions options = LiveOptions();
  options.health.interval_ms = 5000;
  options.health.unreachable_after = 1;
  Scheduler scheduler(clock_, random_, options);
  scheduler.Start();
  ASSERT_TRUE(scheduler.TryOpenStream());  // connecting while the first cycle runs
  ASSERT_TRUE(scheduler.TryStartCycle());
  scheduler.OnCycleFinished(CycleOutcome::kUnreachable);
  ASSERT_EQ(scheduler.offline_reason(), OfflineReason::kUnreachable);
  scheduler.OnStreamOpened();  // the connection got through after all
  EXPECT_TRUE(scheduler.online());
  EXPECT_EQ(scheduler.offline_reason(), OfflineReason::kNone);
  EXPECT_EQ(scheduler.NextWakeAt(), kT0 + 5000) << "a cycle as soon as the interval allows, not after the backoff";
}

}  // namespace
}  // namespace deltasync
