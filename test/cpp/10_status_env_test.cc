// 10: Status, Result, the injected Clock/Random, and the change enums.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>
#include <string>

#include "core/change.h"
#include "core/env.h"
#include "core/status.h"
#include "test_util.h"

namespace deltasync {
namespace {

TEST(Status, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kOk);
  EXPECT_EQ(status.ToString(), "OK");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  Status status = Status::NotFound("No change \"x\"");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "No change \"x\"");
  EXPECT_EQ(status.ToString(), "NOT_FOUND: No change \"x\"");
}

TEST(Status, FactoriesMapToCodes) {
  EXPECT_EQ(Status::InvalidArgument("m").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Status::Conflict("m").code(), StatusCode::kConflict);
  EXPECT_EQ(Status::Closed("m").code(), StatusCode::kClosed);
  EXPECT_EQ(Status::Storage("m").code(), StatusCode::kStorage);
  EXPECT_EQ(Status::LimitExceeded("m").code(), StatusCode::kLimitExceeded);
  EXPECT_EQ(Status::Internal("m").code(), StatusCode::kInternal);
  EXPECT_EQ(Status::Error(StatusCode::kBusy, "m").code(), StatusCode::kBusy);
}

TEST(Status, CodeNamesAreStable) {
  // These strings are the public SyncError.code values; changing one breaks users.
  EXPECT_STREQ(CodeName(StatusCode::kOk), "OK");
  EXPECT_STREQ(CodeName(StatusCode::kInvalidArgument), "INVALID_ARGUMENT");
  EXPECT_STREQ(CodeName(StatusCode::kNotFound), "NOT_FOUND");
  EXPECT_STREQ(CodeName(StatusCode::kConflict), "CONFLICT");
  EXPECT_STREQ(CodeName(StatusCode::kClosed), "CLOSED");
  EXPECT_STREQ(CodeName(StatusCode::kStorage), "STORAGE");
  EXPECT_STREQ(CodeName(StatusCode::kBusy), "BUSY");
  EXPECT_STREQ(CodeName(StatusCode::kLimitExceeded), "LIMIT_EXCEEDED");
  EXPECT_STREQ(CodeName(StatusCode::kNotADatabase), "NOT_A_DATABASE");
  EXPECT_STREQ(CodeName(StatusCode::kInternal), "INTERNAL");
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> value(42);
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value.value(), 42);

  Result<int> error(Status::Conflict("no"));
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), StatusCode::kConflict);

  Result<std::string> moved(std::string("text"));
  std::string out = std::move(moved).value();
  EXPECT_EQ(out, "text");
}

Status FailsAt(int step, int* reached) {
  for (int i = 0; i < 3; ++i) {
    *reached = i;
    DS_RETURN_IF_ERROR(i == step ? Status::Storage("step " + std::to_string(i)) : Status::Ok());
  }
  return Status::Ok();
}

TEST(Status, ReturnIfErrorStopsAtTheFirstError) {
  int reached = -1;
  Status status = FailsAt(1, &reached);
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(status.code(), StatusCode::kStorage);
  EXPECT_EQ(status.message(), "step 1");
  EXPECT_TRUE(FailsAt(5, &reached).ok());
  EXPECT_EQ(reached, 2);
}

TEST(ManualClock, OnlyMovesWhenTold) {
  ManualClock clock(1000);
  EXPECT_EQ(clock.NowMs(), 1000);
  EXPECT_EQ(clock.NowMs(), 1000);
  clock.Advance(250);
  EXPECT_EQ(clock.NowMs(), 1250);
  clock.Set(5);
  EXPECT_EQ(clock.NowMs(), 5);
  clock.Advance(-5);
  EXPECT_EQ(clock.NowMs(), 0);
}

TEST(SystemClock, ReturnsMillisecondsSinceTheEpoch) {
  SystemClock clock;
  // After 2020-01-01 and before 2200-01-01: milliseconds, not seconds or microseconds.
  EXPECT_GT(clock.NowMs(), 1577836800000LL);
  EXPECT_LT(clock.NowMs(), 7258118400000LL);
}

TEST(SeededRandom, SameSeedSameSequence) {
  SeededRandom a(42), b(42), c(43);
  bool any_difference = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    if (x != c.Next()) any_difference = true;
  }
  EXPECT_TRUE(any_difference);
}

TEST(SeededRandom, NextDoubleIsInUnitInterval) {
  SeededRandom random(7);
  double min = 1, max = 0;
  for (int i = 0; i < 10000; ++i) {
    const double d = random.NextDouble();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
    min = std::min(min, d);
    max = std::max(max, d);
  }
  // Spread over the interval, not stuck in a corner.
  EXPECT_LT(min, 0.01);
  EXPECT_GT(max, 0.99);
}

TEST(UuidV4, HasTheCanonicalVersion4Format) {
  const std::regex pattern("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  SeededRandom seeded(1);
  SystemRandom system;
  for (int i = 0; i < 200; ++i) {
    const std::string a = seeded.UuidV4();
    const std::string b = system.UuidV4();
    ASSERT_EQ(a.size(), 36u);
    ASSERT_TRUE(std::regex_match(a, pattern)) << a;
    ASSERT_TRUE(std::regex_match(b, pattern)) << b;
  }
}

TEST(UuidV4, DeterministicWithSeededRandomAndUnique) {
  SeededRandom a(99), b(99), c(100);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = a.UuidV4();
    EXPECT_EQ(id, b.UuidV4());
    EXPECT_NE(id, c.UuidV4());
    EXPECT_TRUE(seen.insert(id).second) << "duplicate " << id;
  }
}

TEST(UuidV4, VariesAcrossAllVariantNibbles) {
  // The variant nibble is one of 8, 9, a, b; over many draws all four appear.
  SeededRandom random(5);
  std::set<char> variants;
  for (int i = 0; i < 200; ++i) variants.insert(random.UuidV4()[19]);
  EXPECT_EQ(variants, (std::set<char>{'8', '9', 'a', 'b'}));
}

TEST(ChangeEnums, NamesRoundTrip) {
  for (ChangeType type : {ChangeType::kCreated, ChangeType::kUpdated, ChangeType::kDeleted}) {
    EXPECT_EQ(ParseChangeType(ChangeTypeName(type)), type);
  }
  for (ChangeStatus status :
       {ChangeStatus::kPending, ChangeStatus::kSyncing, ChangeStatus::kSynced, ChangeStatus::kFailed}) {
    EXPECT_EQ(ParseChangeStatus(ChangeStatusName(status)), status);
  }
  EXPECT_STREQ(ChangeTypeName(ChangeType::kCreated), "CREATED");
  EXPECT_STREQ(ChangeTypeName(ChangeType::kUpdated), "UPDATED");
  EXPECT_STREQ(ChangeTypeName(ChangeType::kDeleted), "DELETED");
  EXPECT_STREQ(ChangeStatusName(ChangeStatus::kPending), "pending");
  EXPECT_STREQ(ChangeStatusName(ChangeStatus::kSyncing), "syncing");
  EXPECT_STREQ(ChangeStatusName(ChangeStatus::kSynced), "synced");
  EXPECT_STREQ(ChangeStatusName(ChangeStatus::kFailed), "failed");
}

TEST(ChangeEnums, ParsingIsExact) {
  EXPECT_FALSE(ParseChangeType("created").has_value());
  EXPECT_FALSE(ParseChangeType("CREATE").has_value());
  EXPECT_FALSE(ParseChangeType("").has_value());
  EXPECT_FALSE(ParseChangeStatus("PENDING").has_value());
  EXPECT_FALSE(ParseChangeStatus("done").has_value());
}

TEST(TempDir, IsUniqueAndRemoved) {
  std::filesystem::path kept;
  {
    testing_util::TempDir a, b;
    EXPECT_NE(a.path(), b.path());
    EXPECT_TRUE(std::filesystem::is_directory(a.path()));
    kept = a.path();
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
}

}  // namespace
}  // namespace deltasync
