// 96: the sync scheduler (core/scheduler.h) and the full-jitter backoff formula.
// Everything runs on a ManualClock and a SeededRandom: nothing sleeps, every
// number is reproducible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "core/env.h"
#include "core/scheduler.h"

namespace deltasync {
namespace {

constexpr int64_t kT0 = 1700000000000;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// A Random that always returns the same value: 0 gives the lowest delay, ~0 the highest.
class FixedRandom final : public Random {
 public:
  explicit FixedRandom(uint64_t value) : value_(value) {}
  uint64_t Next() override { return value_; }

 private:
  uint64_t value_;
};

// The highest value NextDouble() can return maps a ceiling c (< 2^53) to exactly c - 1.
FixedRandom TopRandom() { return FixedRandom(~uint64_t{0}); }

RetryOptions Retry(int64_t base, int64_t max) {
  RetryOptions retry;
  retry.base_delay_ms = base;
  retry.max_delay_ms = max;
  return retry;
}

// ---- FullJitterDelayMs

TEST(FullJitterDelayMs, NoFailureMeansNoDelay) {
  SeededRandom random(1);
  const RetryOptions retry = Retry(1000, 300000);
  EXPECT_EQ(FullJitterDelayMs(retry, 0, random), 0);
  EXPECT_EQ(FullJitterDelayMs(retry, -1, random), 0);
  EXPECT_EQ(FullJitterDelayMs(retry, std::numeric_limits<int64_t>::min(), random), 0);
}

TEST(FullJitterDelayMs, TheCeilingIsBaseTimesTwoToTheFailuresMinusOne) {
  const RetryOptions retry = Retry(1000, 300000);
  FixedRandom top = TopRandom();
  FixedRandom bottom(0);
  // Upper end: exactly ceiling - 1; lower end: exactly 0.
  const int64_t ceilings[] = {1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000};
  for (int64_t n = 1; n <= 11; ++n) {
    EXPECT_EQ(FullJitterDelayMs(retry, n, top), ceilings[n - 1] - 1) << "failures " << n;
    EXPECT_EQ(FullJitterDelayMs(retry, n, bottom), 0) << "failures " << n;
  }
}

TEST(FullJitterDelayMs, SeededDrawsStayInsideZeroToCeilingAndReachItsTop) {
  const RetryOptions retry = Retry(250, 20000);
  SeededRandom random(42);
  for (int64_t n = 1; n <= 12; ++n) {
    const int64_t ceiling = std::min<int64_t>(20000, int64_t{250} << (n - 1));
    int64_t lowest = kInt64Max;
    int64_t highest = -1;
    for (int i = 0; i < 2000; ++i) {
      const int64_t delay = FullJitterDelayMs(retry, n, random);
      ASSERT_GE(delay, 0) << "failures " << n;
      ASSERT_LT(delay, ceiling) << "failures " << n;
      lowest = std::min(lowest, delay);
      highest = std::max(highest, delay);
    }
    // 2000 uniform draws: the extremes are within 1% of the ends (P(miss) ~ 0.99^2000).
    EXPECT_LE(lowest, ceiling / 100 + 1) << "failures " << n;
    EXPECT_GE(highest, ceiling - ceiling / 100 - 1) << "failures " << n;
  }
}

TEST(FullJitterDelayMs, TheCapHoldsForAnyNumberOfFailures) {
  const RetryOptions retry = Retry(1000, 300000);
  FixedRandom top = TopRandom();
  for (int64_t n : {20, 63, 64, 65, 100, 1000, 1000000}) {
    EXPECT_EQ(FullJitterDelayMs(retry, n, top), 299999) << "failures " << n;
  }
  // Huge failure counts end at once: the doubling stops at the cap.
  EXPECT_EQ(FullJitterDelayMs(retry, kInt64Max, top), 299999);
}

TEST(FullJitterDelayMs, ABaseAboveTheMaxIsCappedAtOnce) {
  FixedRandom top = TopRandom();
  EXPECT_EQ(FullJitterDelayMs(Retry(5000, 3000), 1, top), 2999);
  EXPECT_EQ(FullJitterDelayMs(Retry(5000, 3000), 7, top), 2999);
}

TEST(FullJitterDelayMs, ZeroOrNegativeBaseOrMaxMeansNoDelay) {
  FixedRandom top = TopRandom();
  EXPECT_EQ(FullJitterDelayMs(Retry(0, 300000), 1, top), 0);
  EXPECT_EQ(FullJitterDelayMs(Retry(0, 300000), 40, top), 0);
  EXPECT_EQ(FullJitterDelayMs(Retry(1000, 0), 3, top), 0);
  EXPECT_EQ(FullJitterDelayMs(Retry(-1000, 300000), 3, top), 0);
  EXPECT_EQ(FullJitterDelayMs(Retry(1000, -5), 3, top), 0);
}

TEST(FullJitterDelayMs, ACeilingOfOneAlwaysGivesZero) {
  SeededRandom random(7);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(FullJitterDelayMs(Retry(1, 1), 5, random), 0);
}

TEST(FullJitterDelayMs, LargeMaxDoesNotOverflowWhileDoubling) {
  // base * 2^(n-1) passes INT64_MAX long before the cap when max is INT64_MAX: the
  // ceiling must saturate at the cap, not wrap around (signed overflow is undefined).
  FixedRandom top = TopRandom();
  const int64_t delay64 = FullJitterDelayMs(Retry(1, kInt64Max), 64, top);
  const int64_t delay200 = FullJitterDelayMs(Retry(1, kInt64Max), 200, top);
  const int64_t delay_half = FullJitterDelayMs(Retry(kInt64Max / 2 + 1, kInt64Max), 2, top);
  EXPECT_GT(delay64, kInt64Max / 2);
  EXPECT_GT(delay200, kInt64Max / 2);
  EXPECT_GT(delay_half, kInt64Max / 2);
}

TEST(FullJitterDelayMs, TenThousandSeededDrawsAreSpreadUniformly) {
  // Many clients failing together must spread their retries: the delays after the
  // same failure are uniform over [0, cap). 10 buckets of 1,000 expected draws each.
  const RetryOptions retry = Retry(1000, 8000);
  SeededRandom random(20240601);
  constexpr int kDraws = 10000;
  constexpr int kBuckets = 10;
  const int64_t cap = 8000;  // failures >= 4
  std::vector<int> counts(kBuckets, 0);
  for (int i = 0; i < kDraws; ++i) {
    const int64_t delay = FullJitterDelayMs(retry, 6, random);
    ASSERT_GE(delay, 0);
    ASSERT_LT(delay, cap);
    ++counts[static_cast<size_t>(delay * kBuckets / cap)];
  }
  const double expected = static_cast<double>(kDraws) / kBuckets;
  double chi_square = 0;
  for (int count : counts) {
    EXPECT_GT(count, 800);
    EXPECT_LT(count, 1200);
    chi_square += (count - expected) * (count - expected) / expected;
  }
  // 9 degrees of freedom: p = 0.001 at 27.9; generous.
  EXPECT_LT(chi_square, 40.0) << "bucket counts are not uniform";
}

TEST(FullJitterDelayMs, ClientsWithTheirOwnSeedsSpreadTheirFirstRetry) {
  // 1,000 clients, each with its own generator, fail at the same instant.
  const RetryOptions retry = Retry(1000, 300000);
  std::vector<int> counts(10, 0);
  std::vector<int64_t> delays;
  for (uint64_t client = 1; client <= 1000; ++client) {
    SeededRandom random(client * 7919);
    const int64_t delay = FullJitterDelayMs(retry, 1, random);
    ASSERT_GE(delay, 0);
    ASSERT_LT(delay, 1000);
    delays.push_back(delay);
    ++counts[static_cast<size_t>(delay / 100)];
  }
  for (int count : counts) {
    EXPECT_GT(count, 50);
    EXPECT_LT(count, 150);
  }
  std::sort(delays.begin(), delays.end());
  EXPECT_GT(std::unique(delays.begin(), delays.end()) - delays.begin(), 500) << "retries collide";
}

// ---- Scheduler

SchedulerOptions Options(int64_t periodic = 30000, int64_t min_interval = 5000, int64_t local_delay = 1000,
                         int64_t base = 1000, int64_t max = 300000) {
  SchedulerOptions options;
  options.periodic_ms = periodic;
  options.min_interval_ms = min_interval;
  options.local_change_delay_ms = local_delay;
  options.retry.base_delay_ms = base;
  options.retry.max_delay_ms = max;
  return options;
}

class SchedulerTest : public ::testing::Test {
 protected:
  explicit SchedulerTest(SchedulerOptions options = Options()) : clock_(kT0), random_(99), scheduler_(clock_, random_, options) {}

  int64_t Now() { return clock_.NowMs(); }
  void AdvanceTo(int64_t at) { clock_.Set(at); }

  // Runs the first cycle of a started scheduler to success at kT0 (+ duration).
  void StartAndRunFirstCycle(int64_t duration = 0) {
    scheduler_.Start();
    ASSERT_TRUE(scheduler_.TryStartCycle());
    clock_.Advance(duration);
    scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  }

  // True when the host, asking now, would start a cycle.
  bool Due() {
    std::optional<int64_t> wake = scheduler_.NextWakeAt();
    return wake && *wake <= Now();
  }

  ManualClock clock_;
  SeededRandom random_;
  Scheduler scheduler_;
};

TEST(SchedulerStateName, NamesEveryState) {
  EXPECT_STREQ(SchedulerStateName(SchedulerState::kStopped), "stopped");
  EXPECT_STREQ(SchedulerStateName(SchedulerState::kIdle), "idle");
  EXPECT_STREQ(SchedulerStateName(SchedulerState::kSyncing), "syncing");
  EXPECT_STREQ(SchedulerStateName(SchedulerState::kBackoff), "backoff");
  EXPECT_STREQ(SchedulerStateName(SchedulerState::kOffline), "offline");
}

TEST_F(SchedulerTest, ANewSchedulerIsStoppedAndIgnoresAutomaticTriggers) {
  EXPECT_EQ(scheduler_.state(), SchedulerState::kStopped);
  EXPECT_TRUE(scheduler_.online());
  EXPECT_FALSE(scheduler_.auth_blocked());
  EXPECT_EQ(scheduler_.consecutive_failures(), 0);
  for (SchedulerEvent event : {SchedulerEvent::kOnline, SchedulerEvent::kFocus, SchedulerEvent::kVisible,
                               SchedulerEvent::kLocalChange}) {
    scheduler_.Notify(event);
  }
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  EXPECT_EQ(scheduler_.next_sync_at(), std::nullopt);
  AdvanceTo(kT0 + 3600000);
  EXPECT_FALSE(scheduler_.TryStartCycle());
  EXPECT_EQ(scheduler_.state(), SchedulerState::kStopped);
}

TEST_F(SchedulerTest, StartRunsAFirstCycleAtOnce) {
  scheduler_.Start();
  EXPECT_EQ(scheduler_.state(), SchedulerState::kIdle);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0);
  EXPECT_EQ(scheduler_.next_sync_at(), kT0);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  EXPECT_EQ(scheduler_.state(), SchedulerState::kSyncing);
  EXPECT_EQ(scheduler_.next_sync_at(), std::nullopt);
  scheduler_.Start();  // idempotent: no second cycle queued
  clock_.Advance(10);
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kIdle);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 10 + 30000);  // periodic only
}

TEST_F(SchedulerTest, OneCycleAtATime) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  EXPECT_FALSE(scheduler_.TryStartCycle());
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt) << "no timer while a cycle runs";
  // Neither triggers nor a manual request start a second one while it runs.
  scheduler_.Notify(SchedulerEvent::kFocus);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  EXPECT_FALSE(scheduler_.RequestManual());
  AdvanceTo(kT0 + 3600000);
  EXPECT_FALSE(scheduler_.TryStartCycle());
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kSyncing);
}

TEST_F(SchedulerTest, PeriodicCyclesFollowTheEndOfTheLastCycle) {
  StartAndRunFirstCycle(250);
  int64_t end = kT0 + 250;
  for (int round = 0; round < 5; ++round) {
    ASSERT_EQ(scheduler_.NextWakeAt(), end + 30000) << "round " << round;
    AdvanceTo(end + 29999);
    EXPECT_FALSE(scheduler_.TryStartCycle());
    AdvanceTo(end + 30000);
    ASSERT_TRUE(scheduler_.TryStartCycle());
    clock_.Advance(100);
    scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
    end = Now();
  }
}

TEST(SchedulerPeriodic, ZeroDisablesThePeriodicTrigger) {
  ManualClock clock(kT0);
  SeededRandom random(1);
  Scheduler scheduler(clock, random, Options(/*periodic=*/0));
  scheduler.Start();
  ASSERT_TRUE(scheduler.TryStartCycle());
  scheduler.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler.NextWakeAt(), std::nullopt);
  EXPECT_EQ(scheduler.state(), SchedulerState::kIdle);
  clock.Advance(24 * 3600000);
  EXPECT_FALSE(scheduler.TryStartCycle());
  // Other triggers still work.
  scheduler.Notify(SchedulerEvent::kFocus);
  EXPECT_EQ(scheduler.NextWakeAt(), clock.NowMs());
}

TEST_F(SchedulerTest, OnlineFocusAndVisibleTriggerACycleBlurAndHiddenDoNot) {
  StartAndRunFirstCycle();
  for (SchedulerEvent event : {SchedulerEvent::kOnline, SchedulerEvent::kFocus, SchedulerEvent::kVisible}) {
    AdvanceTo(Now() + 6000);  // past the minimum interval, before the periodic trigger
    const int64_t periodic = *scheduler_.NextWakeAt();
    ASSERT_GT(periodic, Now());
    scheduler_.Notify(SchedulerEvent::kBlur);
    scheduler_.Notify(SchedulerEvent::kHidden);
    EXPECT_EQ(scheduler_.NextWakeAt(), periodic) << "blur and hidden trigger nothing";
    scheduler_.Notify(event);
    EXPECT_EQ(scheduler_.NextWakeAt(), Now()) << "event " << static_cast<int>(event);
    ASSERT_TRUE(scheduler_.TryStartCycle());
    scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  }
}

TEST_F(SchedulerTest, ALocalWriteTriggersACycleAfterTheDelayAndLaterWritesDoNotPushItBack) {
  StartAndRunFirstCycle();
  AdvanceTo(kT0 + 10000);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 11000);
  AdvanceTo(kT0 + 10400);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  AdvanceTo(kT0 + 10900);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 11000) << "writes coalesce into the first write's cycle";
  EXPECT_FALSE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 11000);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 11000 + 30000) << "one cycle carried all three writes";
}

TEST_F(SchedulerTest, AutomaticCyclesAreAtLeastTheMinimumIntervalApartAndTriggersCollapse) {
  StartAndRunFirstCycle(10);  // started at kT0
  AdvanceTo(kT0 + 100);
  scheduler_.Notify(SchedulerEvent::kFocus);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5000) << "the window's end";
  AdvanceTo(kT0 + 200);
  scheduler_.Notify(SchedulerEvent::kOnline);
  AdvanceTo(kT0 + 300);
  scheduler_.Notify(SchedulerEvent::kLocalChange);  // would be kT0 + 1300
  AdvanceTo(kT0 + 4500);
  scheduler_.Notify(SchedulerEvent::kVisible);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5000);
  EXPECT_FALSE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 4999);
  EXPECT_FALSE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 5000);
  ASSERT_TRUE(scheduler_.TryStartCycle()) << "one cycle at the end of the window";
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_FALSE(Due()) << "the four triggers collapsed into that one cycle";
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5000 + 30000);
}

TEST_F(SchedulerTest, TheIntervalCountsFromTheStartOfTheLastCycle) {
  StartAndRunFirstCycle(7000);  // a long cycle: kT0 .. kT0 + 7000
  scheduler_.Notify(SchedulerEvent::kFocus);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 7000) << "already more than 5000 ms since it started";
  EXPECT_TRUE(scheduler_.TryStartCycle());
}

TEST_F(SchedulerTest, ATriggerDuringACycleSchedulesAnother) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 50);
  scheduler_.Notify(SchedulerEvent::kLocalChange);  // a write while the cycle runs
  AdvanceTo(kT0 + 100);
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5000) << "another cycle, as soon as the interval allows";
  AdvanceTo(kT0 + 5000);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 5100);
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5100 + 30000) << "and only one";
}

TEST_F(SchedulerTest, WithoutATriggerDuringACycleTheNextOneIsPeriodic) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 100);
  scheduler_.Notify(SchedulerEvent::kBlur);
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 100 + 30000);
}

TEST_F(SchedulerTest, OfflineSuppressesAutomaticCyclesUntilOnline) {
  StartAndRunFirstCycle();
  scheduler_.Notify(SchedulerEvent::kOffline);
  EXPECT_FALSE(scheduler_.online());
  EXPECT_EQ(scheduler_.state(), SchedulerState::kOffline);
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  AdvanceTo(kT0 + 10000);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  scheduler_.Notify(SchedulerEvent::kFocus);
  scheduler_.Notify(SchedulerEvent::kVisible);
  for (int64_t at : {kT0 + 11000, kT0 + 30000, kT0 + 600000}) {
    AdvanceTo(at);
    EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
    EXPECT_FALSE(scheduler_.TryStartCycle()) << "no automatic attempt offline (periodic included)";
  }
  scheduler_.Notify(SchedulerEvent::kOnline);
  EXPECT_TRUE(scheduler_.online());
  EXPECT_EQ(scheduler_.state(), SchedulerState::kIdle);
  ASSERT_TRUE(scheduler_.NextWakeAt().has_value());
  EXPECT_LE(*scheduler_.NextWakeAt(), kT0 + 600000) << "due at once";
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 600000 + 30000) << "the offline triggers collapsed into one cycle";
}

TEST_F(SchedulerTest, GoingOfflineDuringACycleHoldsTheNextOne) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.Notify(SchedulerEvent::kOffline);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  AdvanceTo(kT0 + 100);
  scheduler_.OnCycleFinished(CycleOutcome::kTransient);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kOffline);
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  AdvanceTo(kT0 + 3600000);
  EXPECT_FALSE(scheduler_.TryStartCycle());
}

TEST_F(SchedulerTest, AManualSyncBypassesTheInterval) {
  StartAndRunFirstCycle();
  AdvanceTo(kT0 + 10);
  scheduler_.Notify(SchedulerEvent::kFocus);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5000);
  EXPECT_TRUE(scheduler_.RequestManual());
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 10);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 20);
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  // Automatic cycles still keep their distance from the manual one.
  scheduler_.Notify(SchedulerEvent::kFocus);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 10 + 5000);
}

TEST_F(SchedulerTest, AManualSyncRunsOfflineAndWhenStopped) {
  scheduler_.Notify(SchedulerEvent::kOffline);
  EXPECT_TRUE(scheduler_.RequestManual());
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0);
  ASSERT_TRUE(scheduler_.TryStartCycle()) << "manual runs though stopped and offline";
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt) << "stopped: no periodic cycle follows";
  EXPECT_EQ(scheduler_.state(), SchedulerState::kStopped);
}

TEST_F(SchedulerTest, AManualSyncDuringACycleRunsRightAfterIt) {
  StartAndRunFirstCycle();
  AdvanceTo(kT0 + 6000);
  scheduler_.Notify(SchedulerEvent::kFocus);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  EXPECT_FALSE(scheduler_.RequestManual()) << "false: a cycle is running";
  AdvanceTo(kT0 + 6100);
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 6100) << "bypassing the interval";
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 6100 + 30000);
}

// Backoff tests use no minimum interval so that the backoff alone decides.
class BackoffTest : public SchedulerTest {
 protected:
  BackoffTest() : SchedulerTest(Options(30000, 0, 1000, 1000, 300000)) {}

  // Fails the running cycle transiently at the current time.
  void Fail(std::optional<int64_t> retry_after = std::nullopt) {
    scheduler_.OnCycleFinished(CycleOutcome::kTransient, retry_after);
  }
};

TEST_F(BackoffTest, ATransientFailureBacksOffWithFullJitter) {
  SeededRandom twin(99);  // the same sequence as the scheduler's generator
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 40);
  Fail();
  const int64_t delay = FullJitterDelayMs(scheduler_.options().retry, 1, twin);
  ASSERT_GE(delay, 0);
  ASSERT_LT(delay, 1000);
  EXPECT_EQ(scheduler_.consecutive_failures(), 1);
  EXPECT_EQ(scheduler_.next_sync_at(), kT0 + 40 + delay);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 40 + delay);
  if (delay > 0) {
    EXPECT_EQ(scheduler_.state(), SchedulerState::kBackoff);
    AdvanceTo(kT0 + 40 + delay - 1);
    EXPECT_FALSE(scheduler_.TryStartCycle());
  }
  AdvanceTo(kT0 + 40 + delay);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kIdle) << "the backoff is over";
  ASSERT_TRUE(scheduler_.TryStartCycle());
}

TEST_F(BackoffTest, ConsecutiveFailuresDoubleTheCeilingUpToTheMax) {
  // The scheduler's own generator is seeded; use the twin to predict each delay.
  SeededRandom twin(99);
  scheduler_.Start();
  for (int64_t n = 1; n <= 14; ++n) {
    ASSERT_TRUE(scheduler_.TryStartCycle()) << "failure " << n;
    Fail();
    const int64_t ceiling = std::min<int64_t>(300000, int64_t{1000} << (n - 1));
    const int64_t delay = FullJitterDelayMs(scheduler_.options().retry, n, twin);
    ASSERT_GE(delay, 0);
    ASSERT_LT(delay, ceiling);
    ASSERT_EQ(scheduler_.consecutive_failures(), n);
    ASSERT_EQ(scheduler_.NextWakeAt(), Now() + delay) << "failure " << n;
    AdvanceTo(Now() + delay);
  }
}

TEST_F(BackoffTest, AutomaticTriggersDuringABackoffWaitForIt) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  Fail(/*retry_after=*/60000);
  ASSERT_EQ(scheduler_.NextWakeAt(), kT0 + 60000);
  AdvanceTo(kT0 + 1000);
  scheduler_.Notify(SchedulerEvent::kFocus);
  scheduler_.Notify(SchedulerEvent::kVisible);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  scheduler_.Notify(SchedulerEvent::kOnline);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 60000);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kBackoff);
  AdvanceTo(kT0 + 59999);
  EXPECT_FALSE(scheduler_.TryStartCycle());
  AdvanceTo(kT0 + 60000);
  EXPECT_TRUE(scheduler_.TryStartCycle());
}

TEST_F(BackoffTest, RetryAfterIsHonouredAndTheLongerDelayWins) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  Fail(/*retry_after=*/1000);  // jitter after one failure is < 1000: Retry-After wins
  EXPECT_EQ(scheduler_.next_sync_at(), kT0 + 1000);
  AdvanceTo(kT0 + 1000);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  // Retry-After beyond the max delay is still honoured.
  Fail(/*retry_after=*/900000);
  EXPECT_EQ(scheduler_.next_sync_at(), kT0 + 1000 + 900000);
}

TEST(SchedulerBackoff, JitterLongerThanRetryAfterWins) {
  ManualClock clock(kT0);
  FixedRandom top = TopRandom();
  Scheduler scheduler(clock, top, Options(30000, 0, 1000, 1000, 300000));
  scheduler.Start();
  ASSERT_TRUE(scheduler.TryStartCycle());
  scheduler.OnCycleFinished(CycleOutcome::kTransient, 1);
  EXPECT_EQ(scheduler.next_sync_at(), kT0 + 999);
  clock.Set(kT0 + 999);
  ASSERT_TRUE(scheduler.TryStartCycle());
  scheduler.OnCycleFinished(CycleOutcome::kTransient, 0);
  EXPECT_EQ(scheduler.next_sync_at(), kT0 + 999 + 1999);
}

TEST(SchedulerBackoff, TheIntervalStillHoldsAfterAShortBackoff) {
  ManualClock clock(kT0);
  FixedRandom bottom(0);  // zero jitter
  Scheduler scheduler(clock, bottom, Options(30000, 5000, 1000, 1000, 300000));
  scheduler.Start();
  ASSERT_TRUE(scheduler.TryStartCycle());
  clock.Set(kT0 + 10);
  scheduler.OnCycleFinished(CycleOutcome::kTransient);
  EXPECT_EQ(scheduler.NextWakeAt(), kT0 + 5000) << "automatic retries are cycles too";
}

TEST_F(BackoffTest, ASuccessResetsTheBackoff) {
  scheduler_.Start();
  for (int n = 0; n < 4; ++n) {
    ASSERT_TRUE(scheduler_.TryStartCycle());
    Fail();
    AdvanceTo(*scheduler_.NextWakeAt());
  }
  ASSERT_EQ(scheduler_.consecutive_failures(), 4);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.consecutive_failures(), 0);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kIdle);
  EXPECT_EQ(scheduler_.NextWakeAt(), Now() + 30000);
  scheduler_.Notify(SchedulerEvent::kFocus);
  EXPECT_EQ(scheduler_.NextWakeAt(), Now()) << "no backoff left";
}

TEST_F(BackoffTest, AManualSyncBypassesAndResetsTheBackoff) {
  SeededRandom twin(99);
  scheduler_.Start();
  for (int n = 1; n <= 6; ++n) {
    ASSERT_TRUE(scheduler_.TryStartCycle());
    Fail();
    (void)FullJitterDelayMs(scheduler_.options().retry, n, twin);
    if (n < 6) AdvanceTo(*scheduler_.NextWakeAt());
  }
  ASSERT_EQ(scheduler_.consecutive_failures(), 6);
  AdvanceTo(Now() + 1);
  ASSERT_TRUE(scheduler_.RequestManual());
  EXPECT_EQ(scheduler_.consecutive_failures(), 0);
  EXPECT_NE(scheduler_.state(), SchedulerState::kBackoff);
  EXPECT_EQ(scheduler_.NextWakeAt(), Now());
  ASSERT_TRUE(scheduler_.TryStartCycle());
  const int64_t start = Now();
  Fail();
  // Counting starts over: the first failure's ceiling (base) applies again.
  const int64_t delay = FullJitterDelayMs(scheduler_.options().retry, 1, twin);
  EXPECT_EQ(scheduler_.consecutive_failures(), 1);
  EXPECT_EQ(scheduler_.NextWakeAt(), start + delay);
  EXPECT_LT(*scheduler_.NextWakeAt() - start, 1000);
}

TEST_F(SchedulerTest, AnAuthFailureStopsAutomaticCyclesUntilOnline) {
  StartAndRunFirstCycle();
  AdvanceTo(kT0 + 6000);
  scheduler_.Notify(SchedulerEvent::kFocus);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kAuthFailed);
  EXPECT_TRUE(scheduler_.auth_blocked());
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  EXPECT_EQ(scheduler_.next_sync_at(), std::nullopt);
  scheduler_.Notify(SchedulerEvent::kFocus);
  scheduler_.Notify(SchedulerEvent::kVisible);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  for (int64_t at : {kT0 + 12000, kT0 + 40000, kT0 + 3600000}) {
    AdvanceTo(at);
    EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
    EXPECT_FALSE(scheduler_.TryStartCycle()) << "no automatic cycle, periodic included";
  }
  scheduler_.Notify(SchedulerEvent::kOnline);
  EXPECT_FALSE(scheduler_.auth_blocked());
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 3600000);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 3600000 + 30000) << "periodic cycles are back";
}

TEST_F(SchedulerTest, AnAuthStopIsLiftedByAManualSync) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kAuthFailed);
  ASSERT_TRUE(scheduler_.auth_blocked());
  AdvanceTo(kT0 + 100);
  EXPECT_TRUE(scheduler_.RequestManual());
  EXPECT_FALSE(scheduler_.auth_blocked());
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5100) << "automatic triggers work again";
}

TEST_F(SchedulerTest, AnAuthFailureAfterBackoffIsClearedWithTheBackoffByOnline) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kTransient, 120000);
  AdvanceTo(kT0 + 120000);
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kAuthFailed);
  ASSERT_EQ(scheduler_.consecutive_failures(), 1);
  scheduler_.Notify(SchedulerEvent::kOnline);
  EXPECT_EQ(scheduler_.consecutive_failures(), 0) << "online after an auth stop starts the count over";
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 120000 + 5000) << "the interval still holds";
}

TEST_F(SchedulerTest, StopEndsAutomaticCyclesAndStartResumesThem) {
  StartAndRunFirstCycle();
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  scheduler_.Stop();
  EXPECT_EQ(scheduler_.state(), SchedulerState::kStopped);
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  EXPECT_EQ(scheduler_.next_sync_at(), std::nullopt);
  scheduler_.Notify(SchedulerEvent::kFocus);
  AdvanceTo(kT0 + 3600000);
  EXPECT_FALSE(scheduler_.TryStartCycle());
  scheduler_.Start();
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 3600000);
  EXPECT_TRUE(scheduler_.TryStartCycle());
}

TEST_F(SchedulerTest, StopDuringACycleThenAbortedSchedulesNothingAndCountsNoFailure) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  scheduler_.Stop();
  EXPECT_EQ(scheduler_.state(), SchedulerState::kSyncing) << "until the host reports the abort";
  scheduler_.OnCycleFinished(CycleOutcome::kAborted);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kStopped);
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  EXPECT_EQ(scheduler_.consecutive_failures(), 0);
}

TEST_F(SchedulerTest, AStopDropsAQueuedManualSync) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  EXPECT_FALSE(scheduler_.RequestManual());
  scheduler_.Stop();
  scheduler_.OnCycleFinished(CycleOutcome::kAborted);
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  EXPECT_FALSE(scheduler_.TryStartCycle());
}

TEST_F(SchedulerTest, AnAbortedCycleWhileStartedKeepsATriggerThatArrivedDuringIt) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.Notify(SchedulerEvent::kFocus);
  AdvanceTo(kT0 + 10);
  scheduler_.OnCycleFinished(CycleOutcome::kAborted);
  EXPECT_EQ(scheduler_.NextWakeAt(), kT0 + 5000);
  EXPECT_EQ(scheduler_.consecutive_failures(), 0);
}

// A long simulation with random triggers, cycle durations and outcomes: the rules
// hold at every step, and no trigger is ever lost.
TEST(SchedulerSimulation, RandomTriggersKeepEveryRule) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    ManualClock clock(kT0);
    SeededRandom scheduler_random(seed);
    SeededRandom world(seed * 1000003);
    SchedulerOptions options = Options(/*periodic=*/0, /*min_interval=*/500, /*local_delay=*/200, /*base=*/100,
                                       /*max=*/2000);
    Scheduler scheduler(clock, scheduler_random, options);
    scheduler.Start();
    bool running = false;
    bool online = true;
    int64_t cycle_ends_at = 0;
    int64_t last_trigger = kT0;  // Start() is a trigger
    int64_t last_start = 0;
    int64_t cycles = 0;
    const int64_t end = kT0 + 600000;
    while (clock.NowMs() < end) {
      clock.Advance(1 + static_cast<int64_t>(world.Next() % 120));
      const int64_t now = clock.NowMs();
      if (running && now >= cycle_ends_at) {
        const uint64_t roll = world.Next() % 10;
        const CycleOutcome outcome = roll < 7 ? CycleOutcome::kSuccess : CycleOutcome::kTransient;
        scheduler.OnCycleFinished(outcome);
        running = false;
      }
      switch (world.Next() % 12) {
        case 0: scheduler.Notify(SchedulerEvent::kFocus); last_trigger = now; break;
        case 1: scheduler.Notify(SchedulerEvent::kLocalChange); last_trigger = now; break;
        case 2: scheduler.Notify(SchedulerEvent::kVisible); last_trigger = now; break;
        case 3:
          if (world.Next() % 4 == 0) {
            online = !online;
            scheduler.Notify(online ? SchedulerEvent::kOnline : SchedulerEvent::kOffline);
            if (online) last_trigger = now;
          }
          break;
        case 4:
          if (world.Next() % 8 == 0) {
            const bool immediate = scheduler.RequestManual();
            ASSERT_EQ(immediate, !running) << "seed " << seed;
            last_trigger = now;
          }
          break;
        default: break;
      }
      // The host: start whatever is due.
      std::optional<int64_t> wake = scheduler.NextWakeAt();
      if (running) {
        ASSERT_EQ(wake, std::nullopt) << "seed " << seed;
      }
      if (wake && *wake <= now) {
        ASSERT_TRUE(scheduler.TryStartCycle()) << "seed " << seed << " at " << now - kT0;
        ASSERT_FALSE(scheduler.TryStartCycle()) << "one cycle at a time";
        running = true;
        ++cycles;
        last_start = now;
        cycle_ends_at = now + static_cast<int64_t>(world.Next() % 400);
      }
    }
    // Drain: finish the running cycle, go online, and run everything due until idle.
    if (running) {
      scheduler.OnCycleFinished(CycleOutcome::kSuccess);
      running = false;
    }
    if (!online) {
      scheduler.Notify(SchedulerEvent::kOnline);
      last_trigger = clock.NowMs();
    }
    for (int i = 0; i < 100; ++i) {
      std::optional<int64_t> wake = scheduler.NextWakeAt();
      if (!wake) break;
      clock.Set(std::max(clock.NowMs(), *wake));
      ASSERT_TRUE(scheduler.TryStartCycle());
      last_start = clock.NowMs();
      scheduler.OnCycleFinished(CycleOutcome::kSuccess);
    }
    EXPECT_EQ(scheduler.NextWakeAt(), std::nullopt) << "idle at the end, seed " << seed;
    EXPECT_GE(last_start, last_trigger) << "the last trigger got its cycle, seed " << seed;
    EXPECT_GT(cycles, 50) << "seed " << seed;
  }
}

// The same simulation without manual syncs: automatic cycles keep the minimum
// interval between their starts, never start offline and never inside a backoff.
TEST(SchedulerSimulation, AutomaticCyclesKeepTheIntervalAndTheBackoff) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    ManualClock clock(kT0);
    SeededRandom scheduler_random(seed);
    SeededRandom world(seed * 7777);
    const int64_t min_interval = 700;
    Scheduler scheduler(clock, scheduler_random, Options(2500, min_interval, 300, 200, 5000));
    scheduler.Start();
    bool running = false;
    bool online = true;
    int64_t cycle_ends_at = 0;
    std::optional<int64_t> previous_start;
    std::optional<int64_t> backoff_until;
    int64_t starts = 0;
    while (clock.NowMs() < kT0 + 900000) {
      clock.Advance(1 + static_cast<int64_t>(world.Next() % 90));
      const int64_t now = clock.NowMs();
      if (running && now >= cycle_ends_at) {
        const bool ok = world.Next() % 3 != 0;
        scheduler.OnCycleFinished(ok ? CycleOutcome::kSuccess : CycleOutcome::kTransient);
        running = false;
        backoff_until.reset();
        if (!ok && scheduler.next_sync_at()) backoff_until = *scheduler.next_sync_at();
        if (!ok) {
          ASSERT_GE(scheduler.consecutive_failures(), 1);
        } else {
          ASSERT_EQ(scheduler.consecutive_failures(), 0);
        }
      }
      switch (world.Next() % 10) {
        case 0: scheduler.Notify(SchedulerEvent::kFocus); break;
        case 1: scheduler.Notify(SchedulerEvent::kLocalChange); break;
        case 2:
          if (world.Next() % 5 == 0) {
            online = !online;
            scheduler.Notify(online ? SchedulerEvent::kOnline : SchedulerEvent::kOffline);
            if (online) backoff_until.reset();  // coming back online ends a backoff
          }
          break;
        default: break;
      }
      if (scheduler.TryStartCycle()) {
        ASSERT_FALSE(running);
        ASSERT_TRUE(online) << "an automatic cycle started offline, seed " << seed;
        if (previous_start) {
          ASSERT_GE(now - *previous_start, min_interval) << "seed " << seed << " at " << now - kT0;
        }
        if (backoff_until) {
          ASSERT_GE(now, *backoff_until) << "started inside a backoff, seed " << seed;
        }
        previous_start = now;
        running = true;
        ++starts;
        cycle_ends_at = now + static_cast<int64_t>(world.Next() % 300);
      }
    }
    EXPECT_GT(starts, 100) << "seed " << seed;
  }
}

// ---- the health check

SchedulerOptions HealthOptions(int64_t interval = 1000, int64_t unreachable_after = 3) {
  SchedulerOptions options = Options(/*periodic=*/0, /*min_interval=*/0, /*local_delay=*/0, /*base=*/100, /*max=*/16000);
  options.health.interval_ms = interval;
  options.health.unreachable_after = unreachable_after;
  return options;
}

class HealthCheckTest : public SchedulerTest {
 protected:
  HealthCheckTest() : SchedulerTest(HealthOptions()) {}

  // Runs cycles that do not reach the server until none is due (the client went offline).
  int FailUntilUnreachable() {
    int cycles = 0;
    for (int i = 0; i < 20 && scheduler_.online(); ++i) {
      std::optional<int64_t> wake = scheduler_.NextWakeAt();
      if (!wake) break;
      AdvanceTo(std::max(Now(), *wake));
      if (!scheduler_.TryStartCycle()) continue;
      scheduler_.OnCycleFinished(CycleOutcome::kUnreachable);
      ++cycles;
    }
    return cycles;
  }
};

TEST_F(HealthCheckTest, UnreachableCyclesMakeTheClientOfflineAndItProbesInstead) {
  scheduler_.Start();
  EXPECT_EQ(FailUntilUnreachable(), 3);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kOffline);
  EXPECT_EQ(scheduler_.offline_reason(), OfflineReason::kUnreachable);
  ASSERT_TRUE(scheduler_.next_probe_at().has_value());
  EXPECT_EQ(*scheduler_.next_probe_at(), Now() + 1000);
  EXPECT_EQ(scheduler_.NextWakeAt(), scheduler_.next_probe_at());
  scheduler_.Notify(SchedulerEvent::kLocalChange);
  AdvanceTo(Now() + 999);
  EXPECT_FALSE(scheduler_.TryStartCycle()) << "no automatic cycle while unreachable";
  EXPECT_FALSE(scheduler_.TryStartProbe()) << "not due yet";
  AdvanceTo(Now() + 1);
  ASSERT_TRUE(scheduler_.TryStartProbe());
  EXPECT_FALSE(scheduler_.TryStartProbe()) << "one probe at a time";
  EXPECT_FALSE(scheduler_.TryStartCycle()) << "no cycle during a probe";
  EXPECT_EQ(scheduler_.NextWakeAt(), std::nullopt);
  scheduler_.OnProbeFinished(true);
  EXPECT_TRUE(scheduler_.online());
  EXPECT_EQ(scheduler_.offline_reason(), OfflineReason::kNone);
  EXPECT_TRUE(Due()) << "a probe that reached the server asks for a cycle at once";
  EXPECT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_EQ(scheduler_.next_probe_at(), std::nullopt);
}

TEST_F(HealthCheckTest, FailedProbesBackOffWithTheUpperHalfJittered) {
  scheduler_.Start();
  FailUntilUnreachable();
  std::vector<int64_t> gaps;
  for (int probe = 0; probe < 8; ++probe) {
    const int64_t at = *scheduler_.next_probe_at();
    gaps.push_back(at - Now());
    AdvanceTo(at);
    ASSERT_TRUE(scheduler_.TryStartProbe());
    scheduler_.OnProbeFinished(false);
    EXPECT_EQ(scheduler_.state(), SchedulerState::kOffline);
  }
  EXPECT_EQ(gaps[0], 1000);
  // After n failed probes: in [c/2, c] with c = min(16000, 1000 * 2^n).
  for (size_t n = 1; n < gaps.size(); ++n) {
    const int64_t ceiling = std::min<int64_t>(16000, int64_t{1000} << n);
    EXPECT_GE(gaps[n], ceiling / 2) << "after " << n << " failed probes";
    EXPECT_LE(gaps[n], ceiling) << "after " << n << " failed probes";
  }
}

TEST_F(HealthCheckTest, AnAnsweringServerResetsTheCount) {
  scheduler_.Start();
  for (CycleOutcome outcome : {CycleOutcome::kUnreachable, CycleOutcome::kUnreachable, CycleOutcome::kTransient,
                               CycleOutcome::kUnreachable, CycleOutcome::kUnreachable}) {
    AdvanceTo(std::max(Now(), *scheduler_.NextWakeAt()));
    ASSERT_TRUE(scheduler_.TryStartCycle());
    scheduler_.OnCycleFinished(outcome);
  }
  EXPECT_TRUE(scheduler_.online()) << "a 5xx means the server is there: the count starts again";
  EXPECT_EQ(scheduler_.state(), SchedulerState::kBackoff);
}

TEST_F(HealthCheckTest, NotifiedOfflineProbesTooAndOnlineEndsProbing) {
  scheduler_.Start();
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  scheduler_.Notify(SchedulerEvent::kOffline);
  EXPECT_EQ(scheduler_.offline_reason(), OfflineReason::kNotified);
  EXPECT_EQ(scheduler_.next_probe_at(), Now() + 1000);
  AdvanceTo(Now() + 1000);
  ASSERT_TRUE(scheduler_.TryStartProbe());
  scheduler_.OnProbeFinished(true);
  EXPECT_EQ(scheduler_.state(), SchedulerState::kIdle) << "the server answered: online, whatever the OS said";
  scheduler_.Notify(SchedulerEvent::kOffline);
  scheduler_.Notify(SchedulerEvent::kOnline);
  EXPECT_EQ(scheduler_.next_probe_at(), std::nullopt);
  scheduler_.Stop();
  scheduler_.Notify(SchedulerEvent::kOffline);
  EXPECT_EQ(scheduler_.next_probe_at(), std::nullopt) << "a stopped client does not probe";
}

TEST_F(HealthCheckTest, AManualCycleThatGetsThroughEndsProbing) {
  scheduler_.Start();
  FailUntilUnreachable();
  ASSERT_TRUE(scheduler_.RequestManual());
  ASSERT_TRUE(scheduler_.TryStartCycle());
  scheduler_.OnCycleFinished(CycleOutcome::kSuccess);
  EXPECT_TRUE(scheduler_.online());
  EXPECT_EQ(scheduler_.next_probe_at(), std::nullopt);
}

TEST(HealthCheck, DisabledKeepsRetryingWithBackoff) {
  ManualClock clock(kT0);
  SeededRandom random(3);
  SchedulerOptions options = HealthOptions(/*interval=*/0);
  Scheduler scheduler(clock, random, options);
  scheduler.Start();
  for (int i = 0; i < 10; ++i) {
    clock.Set(std::max(clock.NowMs(), *scheduler.NextWakeAt()));
    ASSERT_TRUE(scheduler.TryStartCycle());
    scheduler.OnCycleFinished(CycleOutcome::kUnreachable);
  }
  EXPECT_TRUE(scheduler.online());
  EXPECT_EQ(scheduler.next_probe_at(), std::nullopt);
  EXPECT_FALSE(scheduler.TryStartProbe());
}

TEST(OfflineReasonName, NamesEveryReason) {
  EXPECT_EQ(OfflineReasonName(OfflineReason::kNone), nullptr);
  EXPECT_STREQ(OfflineReasonName(OfflineReason::kNotified), "notified");
  EXPECT_STREQ(OfflineReasonName(OfflineReason::kUnreachable), "unreachable");
}

}  // namespace
}  // namespace deltasync
