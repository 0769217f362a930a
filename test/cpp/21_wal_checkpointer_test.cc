// 21: WalCheckpointer copies the log back into the database file on its own thread once the
// log passes its threshold, and the writer checkpoints itself only past the limit. The main
// file grows only through checkpoints (a WAL database's commits go to the log), so its size
// shows which checkpoints ran.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "core/wal_checkpointer.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::IsOk;
using testing_util::OpenDb;
using testing_util::TempDir;

// Commits `transactions` transactions of about 16 KiB each.
void Write(Database& db, int transactions) {
  for (int i = 0; i < transactions; ++i) {
    ASSERT_TRUE(IsOk(db.Exec("BEGIN; INSERT INTO blobs (data) SELECT randomblob(4000) FROM "
                             "(SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4); COMMIT")));
  }
}

uintmax_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

// A WAL database with an empty table of blobs, and a checkpointer watching it (Watch).
class WalCheckpointerTest : public ::testing::Test {
 protected:
  void Watch(int threshold_pages, int limit_pages) {
    writer_ = OpenDb(path_);
    ASSERT_NE(writer_, nullptr);
    ASSERT_TRUE(IsOk(writer_->Exec("CREATE TABLE blobs (data BLOB)")));
    Result<std::unique_ptr<WalCheckpointer>> started =
        WalCheckpointer::Start(*writer_, OpenDb(path_), threshold_pages, limit_pages);
    ASSERT_TRUE(IsOk(started));
    checkpointer_ = std::move(started).value();
  }

  TempDir dir_;
  const std::string path_ = dir_.File("db.sqlite");
  std::unique_ptr<Database> writer_;
  std::unique_ptr<WalCheckpointer> checkpointer_;  // stopped before the writer closes
};

// Blocks until the thread has completed `count` checkpoints (bounded only so that a broken
// checkpointer fails instead of hanging the suite).
void AwaitCompleted(const WalCheckpointer& checkpointer, uint64_t count) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (checkpointer.completed() < count && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_GE(checkpointer.completed(), count);
}

TEST_F(WalCheckpointerTest, CopiesTheLogBackOnItsOwnThreadPastTheThreshold) {
  ASSERT_NO_FATAL_FAILURE(Watch(/*threshold_pages=*/8, /*limit_pages=*/1000000));
  Database& writer = *writer_;
  WalCheckpointer& checkpointer = *checkpointer_;
  const uintmax_t before = FileSize(path_);
  Write(writer, 1);  // about 5 pages: below the threshold
  EXPECT_EQ(checkpointer.completed(), 0u);
  Write(writer, 4);
  AwaitCompleted(checkpointer, 1);
  EXPECT_GT(FileSize(path_), before);
}

// A log that cannot restart (a reader is on it) is checkpointed again only once another
// threshold of frames has been written, not after every commit past the threshold.
TEST_F(WalCheckpointerTest, CountsOnlyTheFramesNotCopiedYet) {
  ASSERT_NO_FATAL_FAILURE(Watch(/*threshold_pages=*/10, /*limit_pages=*/1000000));
  Database& writer = *writer_;
  WalCheckpointer& checkpointer = *checkpointer_;
  auto write_small = [&] { ASSERT_TRUE(IsOk(writer.Exec("INSERT INTO blobs (data) VALUES (x'00')"))); };
  Write(writer, 1);  // below the threshold
  ASSERT_EQ(checkpointer.requested(), 0u);
  // A reader on the log as it is now: no checkpoint copies past it, and the log cannot restart.
  std::unique_ptr<Database> reader = OpenDb(path_);
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(IsOk(reader->Exec("BEGIN; SELECT count(*) FROM blobs")));
  for (int i = 0; i < 20 && checkpointer.requested() == 0; ++i) write_small();
  ASSERT_EQ(checkpointer.requested(), 1u);
  AwaitCompleted(checkpointer, 1);  // copied up to the reader
  write_small();  // the log is past the threshold, but only a few of its frames are not copied
  EXPECT_EQ(checkpointer.requested(), 1u);
  for (int i = 0; i < 10 && checkpointer.requested() == 1; ++i) Write(writer, 1);
  EXPECT_EQ(checkpointer.requested(), 2u);  // another threshold of frames
  AwaitCompleted(checkpointer, 2);
  ASSERT_TRUE(IsOk(reader->Exec("COMMIT")));
}

// Once the log restarts (everything copied back, nobody reading it), the next checkpoint is
// asked for after a threshold of new frames, whatever the old log's length was.
TEST_F(WalCheckpointerTest, ARestartedLogCountsFromItsStart) {
  ASSERT_NO_FATAL_FAILURE(Watch(/*threshold_pages=*/20, /*limit_pages=*/1000000));
  Database& writer = *writer_;
  WalCheckpointer& checkpointer = *checkpointer_;
  for (int i = 0; i < 20 && checkpointer.requested() == 0; ++i) Write(writer, 1);
  ASSERT_EQ(checkpointer.requested(), 1u);
  AwaitCompleted(checkpointer, 1);  // all of it copied: the next commit restarts the log
  // About 5 frames a transaction: a threshold of new frames within 5 of them.
  int transactions = 0;
  while (transactions < 6 && checkpointer.requested() == 1) {
    Write(writer, 1);
    ++transactions;
  }
  EXPECT_EQ(checkpointer.requested(), 2u);
  EXPECT_LE(transactions, 5);
  AwaitCompleted(checkpointer, 2);
}

TEST_F(WalCheckpointerTest, TheWriterCheckpointsItselfPastTheLimit) {
  // The thread is never asked (the threshold is out of reach); the limit is 12 pages.
  ASSERT_NO_FATAL_FAILURE(Watch(/*threshold_pages=*/1000000, /*limit_pages=*/12));
  Database& writer = *writer_;
  WalCheckpointer& checkpointer = *checkpointer_;
  const uintmax_t before = FileSize(path_);
  Write(writer, 1);
  EXPECT_EQ(FileSize(path_), before);  // below the limit: nothing copied
  Write(writer, 3);                  // past it: copied within the commit
  EXPECT_GT(FileSize(path_), before);
  EXPECT_EQ(checkpointer.completed(), 0u);
}

}  // namespace
}  // namespace deltasync
