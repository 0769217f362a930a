// 92: the server's SQLite store and its group commit. Requests that queue for the one
// connection share a transaction: one COMMIT for all of them, each request's release returning
// only once that commit is made, a request that rolls back taking only its own writes, readers
// joining the group, and a failed commit or a transaction SQLite rolled back failing the request
// that was running and asking every other request of the group to run again.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/server.h"
#include "core/server_sqlite_store.h"
#include "core/sqlite.h"
#include "fault_vfs.h"
#include "server_harness.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::TempDir;

constexpr const char* kInsertUser = "INSERT INTO user_versions (user_id, version) VALUES (?1, 1)";
constexpr const char* kRollBackEverything = "ROLLBACK";

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("server.db");
    Open(DatabaseOptions{});
  }
  void Open(const DatabaseOptions& options) {
    store_.reset();
    Result<std::unique_ptr<ServerStore>> opened = OpenSqliteServerStore(path_, options);
    ASSERT_TRUE(IsOk(opened));
    store_ = std::move(opened).value();
  }

  // The users committed so far, as another connection reads them.
  std::string CommittedUsers() const {
    Result<std::unique_ptr<Database>> reader = Database::Open(path_, DatabaseOptions{});
    EXPECT_TRUE(IsOk(reader));
    if (!reader.ok()) return "?";
    Result<Statement*> query =
        reader.value()->Cached("SELECT coalesce(group_concat(user_id, ','), '') FROM (SELECT user_id FROM user_versions ORDER BY 1)");
    EXPECT_TRUE(IsOk(query));
    if (!query.ok()) return "?";
    Result<bool> row = query.value()->Step();
    std::string users = row.ok() && row.value() ? std::string(query.value()->Text(0)) : "?";
    query.value()->Reset();
    return users;
  }

  // Blocks until `count` requests wait for the connection. The deadline only turns a request
  // that never queues (a regression, or a thread that failed before queueing) into a failure
  // instead of a hang; the wait it guards takes microseconds.
  void AwaitWaiting(uint64_t count) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (SqliteGroupCommitStats(*store_).waiting < count) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no " << count << " requests ever queued";
      std::this_thread::yield();
    }
  }

  // A request of `user` that wrote its row (and, with `commit`, committed it to the group) and
  // still holds the connection, so that requests acquiring it next queue behind it.
  Result<SessionLease> OpenGroupWith(const std::string& user, bool commit = true) {
    Result<SessionLease> lease = store_->Acquire();
    if (!lease.ok()) return lease;
    SqlSession& session = lease.value().session();
    Status status = session.Begin(user);
    if (status.ok()) status = session.Run(kInsertUser, user);
    if (status.ok() && commit) status = session.Commit();
    if (!status.ok()) return status;
    return lease;
  }

  // A request that writes `user` and commits, on its own thread; `released` gets its release's status.
  std::thread Writer(const std::string& user, Status* released) {
    return std::thread([this, user, released] {
      Result<SessionLease> lease = OpenGroupWith(user);
      ASSERT_TRUE(IsOk(lease));
      *released = lease.value().Release();
    });
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<ServerStore> store_;
};

TEST_F(GroupCommitTest, RequestsThatQueueShareOneCommitAndEachReleaseWaitsForIt) {
  Result<SessionLease> first = OpenGroupWith("a");
  ASSERT_TRUE(IsOk(first));
  EXPECT_EQ(CommittedUsers(), "");  // committed to the group, not yet to the file

  Status second_released, third_released;
  std::thread second = Writer("b", &second_released);
  AwaitWaiting(1);
  std::thread third = Writer("c", &third_released);
  AwaitWaiting(2);

  // The first request hands the open transaction on, and returns once the last one committed it.
  EXPECT_TRUE(IsOk(first.value().Release()));
  EXPECT_EQ(CommittedUsers(), "a,b,c");
  second.join();
  third.join();
  EXPECT_TRUE(IsOk(second_released));
  EXPECT_TRUE(IsOk(third_released));
  const GroupCommitStats stats = SqliteGroupCommitStats(*store_);
  EXPECT_EQ(stats.requests, 3u);
  EXPECT_EQ(stats.commits, 1u);
}

TEST_F(GroupCommitTest, ARequestAloneCommitsAtOnce) {
  Status released;
  Writer("a", &released).join();
  EXPECT_TRUE(IsOk(released));
  EXPECT_EQ(CommittedUsers(), "a");
  Writer("b", &released).join();
  EXPECT_EQ(CommittedUsers(), "a,b");
  EXPECT_EQ(SqliteGroupCommitStats(*store_).commits, 2u);
}

TEST_F(GroupCommitTest, AJoinedRequestThatRollsBackTakesOnlyItsOwnWrites) {
  Result<SessionLease> first = OpenGroupWith("a");
  ASSERT_TRUE(IsOk(first));

  Status refused_released, third_released;
  std::thread refused([&] {
    Result<SessionLease> lease = store_->Acquire();
    ASSERT_TRUE(IsOk(lease));
    ASSERT_TRUE(IsOk(lease.value().session().Begin("b")));
    ASSERT_TRUE(IsOk(lease.value().session().Run(kInsertUser, "b")));
    lease.value().session().Rollback();
    refused_released = lease.value().Release();
  });
  AwaitWaiting(1);
  std::thread third = Writer("c", &third_released);
  AwaitWaiting(2);

  EXPECT_TRUE(IsOk(first.value().Release()));
  refused.join();
  third.join();
  EXPECT_TRUE(IsOk(refused_released));
  EXPECT_TRUE(IsOk(third_released));
  EXPECT_EQ(CommittedUsers(), "a,c");
  const GroupCommitStats stats = SqliteGroupCommitStats(*store_);
  EXPECT_EQ(stats.requests, 2u);
  EXPECT_EQ(stats.commits, 1u);
}

TEST_F(GroupCommitTest, TheRequestThatOpenedAGroupRollsBackOnlyItself) {
  Result<SessionLease> first = OpenGroupWith("a", /*commit=*/false);
  ASSERT_TRUE(IsOk(first));
  Status second_released;
  std::thread second = Writer("b", &second_released);
  AwaitWaiting(1);
  first.value().session().Rollback();
  EXPECT_TRUE(IsOk(first.value().Release()));
  second.join();
  EXPECT_TRUE(IsOk(second_released));
  EXPECT_EQ(CommittedUsers(), "b");
  EXPECT_EQ(SqliteGroupCommitStats(*store_).requests, 1u);
}

TEST_F(GroupCommitTest, AReaderJoinsTheOpenGroupAndAnswersAfterItsCommit) {
  Result<SessionLease> first = OpenGroupWith("a");
  ASSERT_TRUE(IsOk(first));
  int64_t seen = -1;
  Status reader_released;
  std::thread reader([&] {
    Result<SessionLease> lease = store_->Acquire();
    ASSERT_TRUE(IsOk(lease));
    Result<SqlQuery*> count = lease.value().session().Cached("SELECT count(*) FROM user_versions");
    ASSERT_TRUE(IsOk(count));
    SqlQuery::Scope scope(*count.value());
    Result<bool> row = scope->Step();
    ASSERT_TRUE(IsOk(row));
    seen = scope->Int(0);
    scope->Reset();
    reader_released = lease.value().Release();
  });
  AwaitWaiting(1);
  EXPECT_TRUE(IsOk(first.value().Release()));
  reader.join();
  EXPECT_EQ(seen, 1);  // the group's write, read before it was committed
  EXPECT_TRUE(IsOk(reader_released));
  EXPECT_EQ(CommittedUsers(), "a");
  EXPECT_EQ(SqliteGroupCommitStats(*store_).commits, 1u);
}

TEST_F(GroupCommitTest, AGroupSqliteRolledBackFailsItsRequestAndRunsTheOthersAgain) {
  Result<SessionLease> first = OpenGroupWith("a");
  ASSERT_TRUE(IsOk(first));

  Status failing_commit, failing_released;
  std::thread failing([&] {
    Result<SessionLease> lease = store_->Acquire();
    ASSERT_TRUE(IsOk(lease));
    SqlSession& session = lease.value().session();
    ASSERT_TRUE(IsOk(session.Begin("b")));
    ASSERT_TRUE(IsOk(session.Run(kInsertUser, "b")));
    // What an I/O error or a full disk can do: SQLite ends the whole transaction, so this
    // request's savepoint is gone and its commit fails.
    ASSERT_TRUE(IsOk(session.Run(kRollBackEverything)));
    failing_commit = session.Commit();
    session.Rollback();
    failing_released = lease.value().Release();
  });
  AwaitWaiting(1);
  // The first request's write went with the group: it must run again, never hear OK.
  EXPECT_TRUE(HasCode(first.value().Release(), StatusCode::kUnavailable));
  failing.join();
  EXPECT_FALSE(failing_commit.ok());
  EXPECT_TRUE(HasCode(failing_released, StatusCode::kStorage));
  EXPECT_EQ(CommittedUsers(), "");

  // The connection serves the next request as usual.
  Status next_released;
  Writer("c", &next_released).join();
  EXPECT_TRUE(IsOk(next_released));
  EXPECT_EQ(CommittedUsers(), "c");
}

TEST_F(GroupCommitTest, AFailedCommitFailsTheCommitterAndRunsTheOthersAgain) {
  testing_util::FaultVfs& vfs = testing_util::FaultVfs::Get();  // registers it
  DatabaseOptions options;
  options.vfs = testing_util::FaultVfs::kName;
  Open(options);
  Result<SessionLease> first = OpenGroupWith("a");
  ASSERT_TRUE(IsOk(first));
  Status committer_released;
  std::thread committer = Writer("b", &committer_released);
  AwaitWaiting(1);
  vfs.Arm(1, testing_util::kFaultWrite, /*persistent=*/true);  // the group's log frames
  Status first_released = first.value().Release();
  committer.join();
  vfs.Disarm();
  EXPECT_TRUE(HasCode(first_released, StatusCode::kUnavailable));
  EXPECT_TRUE(HasCode(committer_released, StatusCode::kStorage));
  EXPECT_EQ(CommittedUsers(), "");
  Status next_released;
  Writer("c", &next_released).join();
  EXPECT_TRUE(IsOk(next_released));
  EXPECT_EQ(CommittedUsers(), "c");
}

// Through the server: requests of many users, some refused (a changeId reused with another
// body rolls its request back), all sharing commits; every accepted change is in the file
// after it reopens, and each user's log stays gapless.
TEST(SyncServerGroupCommit, ConcurrentUsersKeepEveryAcceptedChangeAcrossAReopen) {
  using namespace server_testing;  // NOLINT: the harness is this test's vocabulary
  TempDir dir;
  ServerOptions options;
  options.path = dir.File("server.db");
  static constexpr int kThreads = 8;
  static constexpr int kRequests = 15;
  static constexpr int kPerRequest = 5;
  std::atomic<int> heard{0};
  {
    ServerHarness h(options);
    h.server->SetCommitListener([&heard](const std::string&, int64_t) { ++heard; });
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&h, t] {
        const std::string user = "user-" + std::to_string(t % 4);
        for (int r = 0; r < kRequests; ++r) {
          std::vector<C> changes;
          for (int i = 0; i < kPerRequest; ++i) {
            const std::string id = std::to_string(t) + "-" + std::to_string(r) + "-" + std::to_string(i);
            changes.push_back(Created("n" + id, R"({"r":)" + std::to_string(r) + "}", "c" + id));
          }
          Result<std::string> response = h.server->Sync(user, Request("dev" + std::to_string(t), changes, 0, 1));
          ASSERT_TRUE(IsOk(response));
          EXPECT_EQ(Count(response.value(), "/applied"), kPerRequest);
          // The first change again, with another body: refused, and nothing of it applied.
          const std::string reused = "c" + std::to_string(t) + "-" + std::to_string(r) + "-0";
          Result<std::string> refused =
              h.server->Sync(user, Request("dev" + std::to_string(t), {Created("other", R"({"x":1})", reused)}, 0, 1));
          EXPECT_TRUE(HasCode(refused, StatusCode::kConflict));
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  EXPECT_EQ(heard.load(), kThreads * kRequests);  // each applied request, and no refused one
  ServerHarness reopened(options);
  for (int u = 0; u < 4; ++u) {
    const std::string user = "user-" + std::to_string(u);
    std::vector<std::string> log = reopened.Log(user, 1000);
    EXPECT_EQ(log.size(), static_cast<size_t>(2 * kRequests * kPerRequest)) << user;
    ExpectGapless(log);
  }
}

}  // namespace
}  // namespace deltasync
