// 82: Ingester with its IngestReader one step ahead on a thread of its own: errors in file and
// line order across chunks and files, the manifest, progress, writes from another thread
// interleaving with the run, and a close() part way that stops it with the reader joined.
// Run under ThreadSanitizer by `npm run test:tsan`.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/ingest.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::QueryInt;
using testing_util::StoreHarness;
using testing_util::TempDir;

void WriteFile(const TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream out(dir.File(name), std::ios::binary);
  out << text;
}

// `count` lines of records {"id":"<prefix><n>"}, n from 1, with the lines in `bad` not JSON.
std::string Lines(const std::string& prefix, int count, const std::set<int>& bad) {
  std::string text;
  for (int n = 1; n <= count; ++n) {
    text += bad.count(n) ? "bad " + std::to_string(n) : R"({"id":")" + prefix + std::to_string(n) + R"("})";
    text += '\n';
  }
  return text;
}

class IngesterTest : public ::testing::Test {
 protected:
  Result<IngestReport> Run(const IngestOptions& options, const Ingester::Progress& progress = nullptr) {
    Ingester ingester(*h_.db, h_.clock, *h_.store, JsonLimits{});
    return ingester.Run(dir_.path().string(), options, [this] { return std::unique_lock<std::recursive_mutex>(mutex_); },
                        progress);
  }

  StoreHarness h_;
  TempDir dir_;
  std::recursive_mutex mutex_;
};

TEST_F(IngesterTest, ChunksAndFilesReadAheadReportErrorsInFileAndLineOrder) {
  WriteFile(dir_, "a.jsonl", Lines("a", 2500, {5, 1500, 2400}));
  WriteFile(dir_, "b.jsonl", "");
  WriteFile(dir_, "c.jsonl", Lines("c", 3, {2}));
  WriteFile(dir_, "d.jsonl", "\n  \n");
  std::vector<IngestProgress> progress;
  Result<IngestReport> report = Run(IngestOptions{}, [&](const IngestProgress& state) { progress.push_back(state); });
  ASSERT_TRUE(IsOk(report));
  EXPECT_EQ(report.value().files_new, 4);
  EXPECT_EQ(report.value().records_inserted, 2497 + 2);
  std::vector<std::string> errors;
  for (const IngestError& error : report.value().errors) errors.push_back(error.file + ":" + std::to_string(error.line));
  EXPECT_EQ(errors, (std::vector<std::string>{"a.jsonl:5", "a.jsonl:1500", "a.jsonl:2400", "c.jsonl:2"}));
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM documents"), 2499);
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM ingest_files"), 4) << "the empty and the blank file too";
  EXPECT_EQ(QueryInt(*h_.db, "SELECT records FROM ingest_files WHERE path = 'a.jsonl'"), 2497);
  ASSERT_FALSE(progress.empty());
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_GE(progress[i].files_done, progress[i - 1].files_done);
    EXPECT_GE(progress[i].records, progress[i - 1].records);
  }
  EXPECT_EQ(progress.back().files_done, 4);
  EXPECT_EQ(progress.back().records, 2499);

  Result<IngestReport> again = Run(IngestOptions{});
  ASSERT_TRUE(IsOk(again));
  EXPECT_EQ(again.value().files_unchanged, 4);
  EXPECT_EQ(again.value().records_inserted + again.value().records_unchanged, 0) << "nothing read again";
}

TEST_F(IngesterTest, WritesFromAnotherThreadInterleaveWithTheRun) {
  for (int file = 0; file < 6; ++file) WriteFile(dir_, "f" + std::to_string(file) + ".jsonl", Lines("f" + std::to_string(file) + "-", 1500, {}));
  std::atomic<bool> done{false};
  int app_writes = 0;
  std::thread app([&] {
    while (!done.load()) {
      std::lock_guard<std::recursive_mutex> held(mutex_);
      ASSERT_TRUE(IsOk(h_.store->Put("note", "app" + std::to_string(app_writes), R"({"v":1})")));
      ++app_writes;
    }
  });
  Result<IngestReport> report = Run(IngestOptions{});
  done = true;
  app.join();
  ASSERT_TRUE(IsOk(report));
  EXPECT_EQ(report.value().records_inserted, 9000);
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM documents"), 9000 + app_writes);
}

TEST_F(IngesterTest, AClosePartWayStopsTheRunAfterAWholeChunk) {
  for (int file = 0; file < 4; ++file) WriteFile(dir_, "f" + std::to_string(file) + ".jsonl", Lines("f" + std::to_string(file) + "-", 1500, {}));
  Ingester ingester(*h_.db, h_.clock, *h_.store, JsonLimits{});
  int locks = 0;
  // The client closes after the run's fourth lock: an unlocked lock says so.
  Result<IngestReport> report = ingester.Run(
      dir_.path().string(), IngestOptions{},
      [&] { return ++locks <= 4 ? std::unique_lock<std::recursive_mutex>(mutex_) : std::unique_lock<std::recursive_mutex>(); },
      nullptr);
  EXPECT_TRUE(HasCode(report, StatusCode::kClosed));
  // Locks: the start, the status, the manifest, then one per chunk: the first chunk of f0 only.
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM documents"), 1000);
}

TEST_F(IngesterTest, AClosePartWayEndsADryRunOfFilesThatNeedNoWrite) {
  for (int file = 0; file < 5; ++file) WriteFile(dir_, "f" + std::to_string(file) + ".jsonl", Lines("f" + std::to_string(file) + "-", 10, {}));
  ASSERT_TRUE(IsOk(Run(IngestOptions{})));
  // Touched, not changed: each is read and hashed again, and nothing is written in a dry run.
  for (int file = 0; file < 5; ++file) {
    const std::filesystem::path path = dir_.File("f" + std::to_string(file) + ".jsonl");
    std::filesystem::last_write_time(path, std::filesystem::last_write_time(path) + std::chrono::hours(1));
  }
  IngestOptions dry_run;
  dry_run.dry_run = true;
  Ingester ingester(*h_.db, h_.clock, *h_.store, JsonLimits{});
  int locks = 0;
  // Locks: the start, the manifest, then one per file read; the client closes after the second file.
  Result<IngestReport> report = ingester.Run(
      dir_.path().string(), dry_run,
      [&] { return ++locks <= 4 ? std::unique_lock<std::recursive_mutex>(mutex_) : std::unique_lock<std::recursive_mutex>(); },
      nullptr);
  EXPECT_TRUE(HasCode(report, StatusCode::kClosed));
  EXPECT_EQ(locks, 5);
}

}  // namespace
}  // namespace deltasync
