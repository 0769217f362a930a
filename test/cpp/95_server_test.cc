// 95: the sync server core (SyncServerCore) on ':memory:' with a ManualClock:
// per-user gapless versions across many (and concurrent) pushes, idempotent
// replays, a reused changeId (CONFLICT, nothing applied), every conflict
// strategy, the three-way merge read from the log, delete vs update, manual
// conflicts and ResolveConflict, the compatible push/pull/changes encodings,
// ImportSnapshot, device status, limits and reopening a file.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/server.h"
#include "server_harness.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::TempDir;
using namespace server_testing;  // NOLINT: the harness is this file's vocabulary

// ---- opening, shapes

TEST(SyncServerCore, OpensOnMemoryAndAnswersEmpty) {
  ServerHarness h;
  ASSERT_NE(h.server, nullptr);
  Result<std::string> pulled = h.server->Pull("u", std::nullopt, 0, std::nullopt);
  ASSERT_TRUE(IsOk(pulled));
  EXPECT_EQ(pulled.value(), R"({"newChanges":[],"latestServerVersion":0,"headVersion":0,"hasMore":false})");
  Result<std::string> synced = h.server->Sync("u", R"({"deviceId":"d","lastKnownServerVersion":0,"changes":[]})");
  ASSERT_TRUE(IsOk(synced));
  EXPECT_EQ(synced.value(),
            R"({"applied":[],"conflicts":[],"errors":[],"newChanges":[],"latestServerVersion":0,"headVersion":0,"hasMore":false})");
  Result<std::string> conflicts = h.server->Conflicts("u");
  ASSERT_TRUE(IsOk(conflicts));
  EXPECT_EQ(conflicts.value(), "[]");
}

TEST(SyncServerCore, SyncAppliesAndReturnsTheWireShape) {
  ServerHarness h;
  const std::string response =
      h.Sync(Request("dev-a", {Created("n1", R"({"title":"a","n":[1,{"x":null}]})", "c1", kT0),
                               Updated("n1", R"({"title":"b","drop":null})", "c2", 1, kT0 + 5),
                               Deleted("n2", "c3", std::nullopt, kT0 + 6)}));
  // c3 deletes an entity the server never had: accepted as a tombstone.
  EXPECT_EQ(At(response, "/applied"), R"([{"changeId":"c1","version":1},{"changeId":"c2","version":2},)"
                                      R"({"changeId":"c3","version":3}])");
  EXPECT_EQ(At(response, "/newChanges/0"),
            R"({"version":1,"changeId":"c1","type":"CREATED","entityType":"note","entityId":"n1",)"
            R"("data":{"title":"a","n":[1,{"x":null}]},"timestamp":1600000000000,"deviceId":"dev-a"})");
  EXPECT_EQ(At(response, "/newChanges/1/data"), R"({"title":"b","drop":null})");
  EXPECT_EQ(At(response, "/newChanges/2/data"), "null");
  EXPECT_EQ(At(response, "/latestServerVersion"), "3");
  EXPECT_EQ(h.Doc("n1"), R"({"title":"b","n":[1,{"x":null}]})");
}

// ---- versions

TEST(SyncServerCore, VersionsAreGaplessPerUserAcrossManyPushes) {
  ServerHarness h = ServerHarness::With(ConflictStrategy::kServerWins);
  std::map<std::string, int64_t> expected;
  for (int round = 0; round < 40; ++round) {
    for (const std::string user : {"alice", "bob", "carol"}) {
      std::vector<C> changes;
      for (int i = 0; i < 25; ++i) {
        const std::string id = user + "-" + std::to_string(round) + "-" + std::to_string(i);
        changes.push_back(Created(id, R"({"i":)" + std::to_string(i) + "}", "c-" + id));
      }
      // Neither an error nor a lost conflict takes a version.
      changes.push_back(Updated("ghost", R"({"x":1})", "ghost-" + user + std::to_string(round), 1, kT0));
      if (round % 3 != 0) {  // from a device other than device-0, which created user-0-0
        changes.push_back(Updated(user + "-0-0", R"({"late":true})", "lost-" + user + std::to_string(round), 0, kT0));
      }
      const std::string response = h.Sync(Request("device-" + std::to_string(round % 3), changes, 0, 1), user);
      EXPECT_EQ(Count(response, "/errors"), 1);
      expected[user] += 25;
    }
    h.clock->Advance(1);
  }
  for (const auto& [user, count] : expected) {
    std::vector<std::string> log = h.Log(user, 333);
    ASSERT_EQ(static_cast<int64_t>(log.size()), count) << user;
    ExpectGapless(log);
    EXPECT_EQ(h.Latest(user), count);
  }
}

TEST(SyncServerCore, ConcurrentSyncsStayGaplessAndApplyEachChangeOnce) {
  ServerHarness h;
  static constexpr int kThreads = 4;
  static constexpr int kRequests = 20;
  static constexpr int kPerRequest = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&h, t] {
      for (int r = 0; r < kRequests; ++r) {
        std::vector<C> changes;
        for (int i = 0; i < kPerRequest; ++i) {
          // Every thread sends the same changes of request r: each must be applied once.
          const std::string id = std::to_string(r) + "-" + std::to_string(i);
          changes.push_back(Created("n" + id, R"({"r":)" + std::to_string(r) + "}", "c" + id));
        }
        Result<std::string> response = h.server->Sync("u", Request("dev" + std::to_string(t), changes, 0, 1));
        EXPECT_TRUE(IsOk(response));
        if (response.ok()) {
          EXPECT_EQ(Count(response.value(), "/applied"), kPerRequest);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<std::string> log = h.Log();
  ASSERT_EQ(log.size(), static_cast<size_t>(kRequests * kPerRequest));
  ExpectGapless(log);
}

// ---- idempotency

TEST(SyncServerCore, AReplayReturnsTheOriginalResultWithoutReapplying) {
  ServerHarness h = ServerHarness::With(ConflictStrategy::kServerWins);
  h.Push("A", {Created("n", R"({"v":1})", "a1"), Updated("n", R"({"v":2})", "a2", 1, kT0 + 1)});
  const std::string request = Request(
      "B", {Created("m", R"({"w":1})", "b1"), Updated("ghost", R"({"x":1})", "b2", 1, kT0),
            Updated("n", R"({"v":3})", "b3", 1, kT0 + 2), Deleted("m", "b4", std::nullopt, kT0 + 3)},
      0);
  const std::string first = h.Sync(request);
  h.clock->Advance(60000);
  const std::string second = h.Sync(request);
  EXPECT_EQ(second, first);
  EXPECT_EQ(At(first, "/applied"), R"([{"changeId":"b1","version":3},{"changeId":"b4","version":4}])");
  EXPECT_EQ(At(first, "/errors/0/code"), "\"NOT_FOUND\"");
  EXPECT_EQ(At(first, "/conflicts/0/changeId"), "\"b3\"");
  EXPECT_EQ(h.Latest(), 4);

  // The same change twice in one request: applied once, reported with one version.
  const std::string twice = h.Sync(Request("B", {Created("z", "{}", "dup"), Created("z", "{}", "dup")}));
  EXPECT_EQ(At(twice, "/applied"), R"([{"changeId":"dup","version":5},{"changeId":"dup","version":5}])");
  EXPECT_EQ(h.Latest(), 5);
}

TEST(SyncServerCore, AChangeIdReusedForADifferentChangeIsConflictAndNothingIsApplied) {
  ServerHarness h;
  h.Push("A", {Created("n", R"({"v":1})", "used")});
  const std::vector<C> variants = {
      Created("n", R"({"v":2})", "used"),                        // other data
      Created("other", R"({"v":1})", "used"),                    // other entity
      Updated("n", R"({"v":1})", "used", std::nullopt, kT0),     // other type
      C{"used", "CREATED", "n", R"({"v":1})", 7, kT0},           // other baseVersion
      C{"used", "CREATED", "n", R"({"v":1})", std::nullopt, kT0, "goal"},  // other entity type
  };
  for (const C& variant : variants) {
    Result<std::string> response =
        h.server->Sync("u", Request("fresh-device", {Created("fresh", "{}", "fresh-change"), variant}));
    EXPECT_TRUE(HasCode(response, StatusCode::kConflict)) << ChangeJson(variant);
    EXPECT_NE(response.status().message().find("changes[1].changeId"), std::string::npos)
        << response.status().message();
  }
  // The timestamp is not part of the identity: a retry with another timestamp is a replay.
  const std::string retry = h.Sync(Request("A", {Created("n", R"({"v":1})", "used", kT0 + 999)}));
  EXPECT_EQ(At(retry, "/applied"), R"([{"changeId":"used","version":1}])");
  EXPECT_EQ(h.Log().size(), 1u);
  EXPECT_TRUE(HasCode(h.server->DeviceStatus("u", "fresh-device"), StatusCode::kNotFound));
  // Per user: another user may use the same changeId for anything.
  const std::string other = h.Sync(Request("A", {Created("n", R"({"v":2})", "used")}), "other-user");
  EXPECT_EQ(At(other, "/applied"), R"([{"changeId":"used","version":1}])");
}

TEST(SyncServerCore, MalformedRequestsApplyNothing) {
  ServerHarness h;
  h.Push("A", {Created("n", R"({"v":1})", "c1")});
  const std::string valid = ChangeJson(Created("fresh", "{}", "fresh"));
  const std::vector<std::pair<std::string, StatusCode>> cases = {
      {"", StatusCode::kInvalidArgument},
      {"[]", StatusCode::kInvalidArgument},
      {R"({"deviceId":"d","changes":[)" + valid + ",", StatusCode::kInvalidArgument},
      {R"({"deviceId":"d","changes":[)" + valid + "]} x", StatusCode::kInvalidArgument},
      {std::string(R"({"deviceId":"d","changes":[)") + valid + ",{\"changeId\":\"\xff\"}]}", StatusCode::kInvalidArgument},  // not UTF-8
      {R"({"changes":[)" + valid + "]}", StatusCode::kInvalidArgument},
      {R"({"deviceId":"d","changes":[)" + valid + R"(,{"changeId":"x","type":"CREATED","entityType":"bad type","entityId":"e","data":{}}]})",
       StatusCode::kInvalidArgument},
      {R"({"deviceId":"d","changes":[)" + valid + R"(,{"changeId":"x","type":"CREATED","entityType":"n","entityId":")" +
           std::string(257, 'e') + R"(","data":{}}]})",
       StatusCode::kInvalidArgument},
      {R"({"deviceId":"d","lastKnownServerVersion":-1,"changes":[]})", StatusCode::kInvalidArgument},
      {R"({"deviceId":"d","limit":0,"changes":[]})", StatusCode::kInvalidArgument},
  };
  for (const auto& [request, code] : cases) {
    EXPECT_TRUE(HasCode(h.server->Sync("u", request), code)) << request;
  }
  std::string deep = "1";
  for (int i = 0; i < 65; ++i) deep = R"({"a":)" + deep + "}";
  EXPECT_TRUE(HasCode(h.server->Sync("u", R"({"deviceId":"d","changes":[)" + valid + R"(,{"changeId":"x","type":"CREATED","entityType":"n","entityId":"e","data":)" + deep + "}]}"),
                      StatusCode::kLimitExceeded));
  EXPECT_EQ(h.Latest(), 1);
  EXPECT_TRUE(HasCode(h.server->DeviceStatus("u", "d"), StatusCode::kNotFound));
}

TEST(SyncServerCore, LimitsOfOptions) {
  ServerOptions options;
  options.limits.max_changes_per_push = 3;
  options.limits.max_pull_limit = 10;
  options.limits.default_pull_limit = 2;
  options.limits.json.max_document_bytes = 32;
  ServerHarness h(options);
  std::vector<C> four;
  for (int i = 0; i < 4; ++i) four.push_back(Created("n" + std::to_string(i), "{}", "c" + std::to_string(i)));
  EXPECT_TRUE(HasCode(h.server->Sync("u", Request("d", four)), StatusCode::kLimitExceeded));
  EXPECT_TRUE(HasCode(h.server->Sync("u", Request("d", {Created("big", R"({"t":")" + std::string(40, 'x') + "\"}", "b")})),
                      StatusCode::kLimitExceeded));
  four.pop_back();
  const std::string response = h.Sync(Request("d", four));
  EXPECT_EQ(Count(response, "/newChanges"), 2) << "defaultPullLimit";
  EXPECT_EQ(At(response, "/hasMore"), "true");
  EXPECT_TRUE(HasCode(h.server->Pull("u", std::nullopt, 0, 11), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(h.server->Pull("u", std::nullopt, -1, std::nullopt), StatusCode::kInvalidArgument));
  EXPECT_TRUE(IsOk(h.server->Pull("u", std::nullopt, 0, 10)));
}

// ---- conflict strategies. Device A creates n1 {title t0, body b0} at kT0 (version 1) and sets
// title "A" at kT0+2000 (version 2); device B then sends a change based on version 1.

ServerHarness Seeded(ServerOptions options) {
  ServerHarness h(std::move(options));
  h.Push("A", {Created("n1", R"({"title":"t0","body":"b0"})", "a1", kT0),
               Updated("n1", R"({"title":"A"})", "a2", 1, kT0 + 2000)});
  return h;
}
ServerHarness Seeded(ConflictStrategy strategy, int64_t tolerance_ms = 1000) {
  ServerOptions options;
  options.conflicts = strategy;
  options.tolerance_ms = tolerance_ms;
  return Seeded(options);
}
constexpr const char* kServerDoc = R"({"title":"A","body":"b0"})";

TEST(SyncServerStrategies, ServerWinsKeepsTheServerCopy) {
  ServerHarness h = Seeded(ConflictStrategy::kServerWins);
  const std::string response = h.Push("B", {Updated("n1", R"({"title":"B"})", "b1", 1, kT0 + 9000)});
  EXPECT_EQ(At(response, "/applied"), "[]");
  EXPECT_EQ(At(response, "/conflicts/0"),
            R"({"changeId":"b1","entityType":"note","entityId":"n1","reason":"changed on the server after )"
            R"(baseVersion 1 by another device","resolution":"server_wins","winner":"server","serverVersion":2,)"
            R"("serverData":{"title":"A","body":"b0"}})");
  EXPECT_EQ(h.Doc("n1"), kServerDoc);
  EXPECT_EQ(h.Latest(), 2);
}

TEST(SyncServerStrategies, ClientWinsAppliesEvenAnOlderChange) {
  ServerHarness h = Seeded(ConflictStrategy::kClientWins);
  const std::string response = h.Push("B", {Updated("n1", R"({"title":"B"})", "b1", 1, kT0)});
  EXPECT_EQ(At(response, "/applied"), R"([{"changeId":"b1","version":3}])");
  EXPECT_EQ(At(response, "/conflicts/0/winner"), "\"client\"");
  EXPECT_EQ(At(response, "/conflicts/0/serverVersion"), "3");
  EXPECT_EQ(h.Doc("n1"), R"({"title":"B","body":"b0"})");
}

TEST(SyncServerStrategies, NewestWinsWithTheToleranceAsATieTheServerWins) {
  const std::vector<std::pair<int64_t, std::string>> cases = {
      {9000, "client"}, {1001, "client"}, {1000, "server"}, {0, "server"}, {-1500, "server"}};
  for (const auto& [offset, winner] : cases) {
    ServerHarness h = Seeded(ConflictStrategy::kNewestWins);
    const std::string response = h.Push("B", {Updated("n1", R"({"title":"B"})", "b1", 1, kT0 + 2000 + offset)});
    EXPECT_EQ(At(response, "/conflicts/0/resolution"), "\"newest_wins\"");
    EXPECT_EQ(At(response, "/conflicts/0/winner"), "\"" + winner + "\"") << offset;
    EXPECT_EQ(h.Doc("n1"), winner == "client" ? R"({"title":"B","body":"b0"})" : kServerDoc) << offset;
  }
  ServerHarness strict = Seeded(ConflictStrategy::kNewestWins, 0);
  EXPECT_EQ(At(strict.Push("B", {Updated("n1", R"({"title":"B"})", "b1", 1, kT0 + 2001)}), "/conflicts/0/winner"),
            "\"client\"");
}

TEST(SyncServerStrategies, WithoutBaseVersionOnlyAnAsNewOrNewerServerCopyConflicts) {
  ServerHarness h = Seeded(ConflictStrategy::kNewestWins);
  const std::string older = h.Push("B", {Updated("n1", R"({"title":"B"})", "b1", std::nullopt, kT0 + 2500)});
  EXPECT_EQ(At(older, "/conflicts/0/winner"), "\"server\"");
  EXPECT_NE(At(older, "/conflicts/0/reason").find("no baseVersion"), std::string::npos);
  const std::string newer = h.Push("B", {Updated("n1", R"({"title":"B"})", "b2", std::nullopt, kT0 + 3001)});
  EXPECT_EQ(At(newer, "/conflicts"), "[]");
  EXPECT_EQ(At(newer, "/applied"), R"([{"changeId":"b2","version":3}])");
}

TEST(SyncServerStrategies, MergeKeepsDisjointFieldsAndGivesOverlappingOnesToTheNewest) {
  {
    ServerHarness h = Seeded(ConflictStrategy::kMerge);
    const std::string response = h.Push("B", {Updated("n1", R"({"body":"B"})", "b1", 1, kT0)});
    EXPECT_EQ(At(response, "/conflicts/0/winner"), "\"merged\"");
    EXPECT_EQ(h.Doc("n1"), R"({"title":"A","body":"B"})");
  }
  {
    ServerHarness h = Seeded(ConflictStrategy::kMerge);
    const std::string response = h.Push("B", {Updated("n1", R"({"title":"B","tag":"x"})", "b1", 1, kT0 + 500)});
    EXPECT_EQ(At(response, "/conflicts/0/winner"), "\"merged\"");
    EXPECT_EQ(h.Doc("n1"), R"({"title":"A","body":"b0","tag":"x"})");
    std::vector<std::string> log = h.Log();
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(At(log[2], "/data"), R"({"tag":"x"})") << "only the fields that won are logged";
  }
  {
    ServerHarness h = Seeded(ConflictStrategy::kMerge);
    h.Push("B", {Updated("n1", R"({"title":"B","tag":"x"})", "b1", 1, kT0 + 9000)});
    EXPECT_EQ(h.Doc("n1"), R"({"title":"B","body":"b0","tag":"x"})");
  }
  {
    ServerHarness h = Seeded(ConflictStrategy::kMerge);
    const std::string response = h.Push("B", {Updated("n1", R"({"title":"B"})", "b1", 1, kT0 + 2000)});
    EXPECT_EQ(At(response, "/conflicts/0/winner"), "\"server\"") << "every field lost";
    EXPECT_EQ(At(response, "/applied"), "[]");
    EXPECT_EQ(h.Doc("n1"), kServerDoc);
  }
}

TEST(SyncServerStrategies, MergeReadsTheServerSideFieldsFromTheLog) {
  ServerHarness h = Seeded(ConflictStrategy::kMerge);
  h.Push("C", {Updated("n1", R"({"body":"C"})", "c1", 2, kT0 + 3000)});
  // B based on version 1 at +3500: title was changed at +2000 (older by more than the
  // tolerance: B wins it), body at +3000 (within it: the server keeps it).
  h.Push("B", {Updated("n1", R"({"title":"B","body":"B","tag":"B"})", "b1", 1, kT0 + 3500)});
  EXPECT_EQ(h.Doc("n1"), R"({"title":"B","body":"C","tag":"B"})");
  // B is now the last writer: its own later change, even based on an old version, does not conflict.
  const std::string own = h.Push("B", {Updated("n1", R"({"tag":"B2"})", "b2", 1, kT0 + 3600)});
  EXPECT_EQ(At(own, "/conflicts"), "[]");
  EXPECT_EQ(h.Doc("n1"), R"({"title":"B","body":"C","tag":"B2"})");
}

TEST(SyncServerStrategies, MergeWithoutBaseVersionTreatsEveryServerFieldAsChanged) {
  ServerHarness h = Seeded(ConflictStrategy::kMerge);
  const std::string response =
      h.Push("B", {Updated("n1", R"({"body":"B","extra":1})", "b1", std::nullopt, kT0 + 2500)});
  EXPECT_EQ(At(response, "/conflicts/0/winner"), "\"merged\"");
  EXPECT_EQ(h.Doc("n1"), R"({"title":"A","body":"b0","extra":1})");
}

TEST(SyncServerStrategies, PerTypeOverridesTheServerStrategy) {
  ServerOptions options;
  options.conflicts = ConflictStrategy::kServerWins;
  options.per_type["goal"] = ConflictStrategy::kClientWins;
  ServerHarness h(options);
  for (const std::string type : {"note", "goal"}) {
    C create = Created("x", R"({"v":"A0"})", type + "-a1");
    C update = Updated("x", R"({"v":"A1"})", type + "-a2", std::nullopt, kT0 + 1);
    create.entity_type = update.entity_type = type;
    h.Push("A", {create, update});
  }
  C note = Updated("x", R"({"v":"B"})", "note-b", 1, kT0 + 9000);
  C goal = Updated("x", R"({"v":"B"})", "goal-b", 3, kT0 - 9000);
  goal.entity_type = "goal";
  const std::string response = h.Push("B", {note, goal});
  EXPECT_EQ(At(response, "/conflicts/0/resolution"), "\"server_wins\"");
  EXPECT_EQ(At(response, "/conflicts/1/resolution"), "\"client_wins\"");
  EXPECT_EQ(h.Doc("x", "note"), R"({"v":"A1"})");
  EXPECT_EQ(h.Doc("x", "goal"), R"({"v":"B"})");
}

TEST(SyncServerStrategies, DeleteVersusUpdate) {
  auto deleted = [](ConflictStrategy strategy) {
    ServerHarness h = Seeded(strategy);
    h.Push("A", {Deleted("n1", "a3", 2, kT0 + 3000)});
    return h;
  };
  {
    ServerHarness h = deleted(ConflictStrategy::kNewestWins);
    const std::string response = h.Push("B", {Updated("n1", R"({"title":"B"})", "b1", 2, kT0 + 1000)});
    EXPECT_EQ(At(response, "/conflicts/0/reason"), "\"deleted on the server by another device\"");
    EXPECT_EQ(At(response, "/conflicts/0/winner"), "\"server\"");
    EXPECT_EQ(At(response, "/conflicts/0/serverData"), "null");
    EXPECT_EQ(h.Doc("n1"), "<deleted>");
  }
  for (ConflictStrategy strategy : {ConflictStrategy::kNewestWins, ConflictStrategy::kClientWins, ConflictStrategy::kMerge}) {
    ServerHarness h = deleted(strategy);
    const std::string response = h.Push("B", {Updated("n1", R"({"title":"B"})", "b1", 2, kT0 + 9000)});
    EXPECT_EQ(At(response, "/conflicts/0/winner"), "\"client\"") << ConflictStrategyName(strategy);
    EXPECT_EQ(h.Doc("n1"), R"({"title":"B","body":"b0"})") << "revived: last live state plus the update";
    // Logged whole, so that a device that dropped the tombstone rebuilds the document.
    std::vector<std::string> log = h.Log();
    ASSERT_EQ(log.size(), 4u);
    EXPECT_EQ(At(log[3], "/type"), "\"CREATED\"");
    EXPECT_EQ(At(log[3], "/data"), R"({"title":"B","body":"b0"})");
  }
  {
    // A delete based on an old version against a newer update.
    ServerHarness h = Seeded(ConflictStrategy::kNewestWins);
    EXPECT_EQ(At(h.Push("B", {Deleted("n1", "b1", 1, kT0 + 1000)}), "/conflicts/0/winner"), "\"server\"");
    EXPECT_EQ(h.Doc("n1"), kServerDoc);
    EXPECT_EQ(At(h.Push("B", {Deleted("n1", "b2", 1, kT0 + 9000)}), "/conflicts/0/winner"), "\"client\"");
    EXPECT_EQ(h.Doc("n1"), "<deleted>");
  }
}

// ---- manual conflicts and ResolveConflict

class ServerManualTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h_ = std::make_unique<ServerHarness>(Seeded(ConflictStrategy::kManual));
    const std::string response = h_->Push("B", {Updated("n1", R"({"title":"B","tag":"b"})", "b1", 1, kT0 + 9000)});
    ASSERT_EQ(At(response, "/conflicts/0/winner"), "\"manual\"");
    ASSERT_EQ(At(response, "/applied"), "[]");
    conflict_id_ = Int(response, "/conflicts/0/conflictId");
    ASSERT_GT(conflict_id_, 0);
  }
  Result<std::string> Resolve(const std::string& resolution, const std::string& user = "u") {
    return h_->server->ResolveConflict(user, conflict_id_, resolution);
  }
  std::unique_ptr<ServerHarness> h_;
  int64_t conflict_id_ = 0;
};

TEST_F(ServerManualTest, TheConflictStaysOpenAndIsListed) {
  Result<std::string> conflicts = h_->server->Conflicts("u");
  ASSERT_TRUE(IsOk(conflicts));
  EXPECT_EQ(conflicts.value(),
            "[{\"id\":" + std::to_string(conflict_id_) +
                R"(,"changeId":"b1","deviceId":"B","entityType":"note","entityId":"n1","type":"UPDATED",)"
                R"("clientData":{"title":"B","tag":"b"},"baseVersion":1,"clientTimestamp":1600000009000,)"
                R"("createdAt":1767225600000,"serverData":{"title":"A","body":"b0"},"serverVersion":2}])");
  EXPECT_EQ(h_->Doc("n1"), kServerDoc);
  Result<std::string> status = h_->server->DeviceStatus("u", "B");
  ASSERT_TRUE(IsOk(status));
  EXPECT_EQ(At(status.value(), "/openConflicts"), "1");
  // Other users see nothing and cannot settle it.
  EXPECT_EQ(h_->server->Conflicts("other").value(), "[]");
  EXPECT_TRUE(HasCode(Resolve(R"({"use":"client"})", "other"), StatusCode::kNotFound));
}

TEST_F(ServerManualTest, ResolveWithTheClientAppliesTheChange) {
  Result<std::string> resolved = Resolve(R"({"use":"client"})");
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value(), "{\"conflictId\":" + std::to_string(conflict_id_) +
                                  R"(,"resolution":"client","version":3,"entityType":"note","entityId":"n1",)"
                                  R"("serverVersion":3,"serverData":{"title":"B","body":"b0","tag":"b"}})");
  EXPECT_EQ(h_->Doc("n1"), R"({"title":"B","body":"b0","tag":"b"})");
  EXPECT_EQ(h_->server->Conflicts("u").value(), "[]");
  EXPECT_TRUE(HasCode(Resolve(R"({"use":"server"})"), StatusCode::kNotFound)) << "settled once";
  // A replay of the original change reports how it was settled.
  const std::string replay = h_->Push("B", {Updated("n1", R"({"title":"B","tag":"b"})", "b1", 1, kT0 + 9000)});
  EXPECT_EQ(At(replay, "/applied"), R"([{"changeId":"b1","version":3}])");
  EXPECT_EQ(h_->Latest(), 3);
}

TEST_F(ServerManualTest, ResolveWithTheServerKeepsItsCopy) {
  Result<std::string> resolved = Resolve(R"({"use":"remote"})");  // the client's word for the server
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(At(resolved.value(), "/resolution"), "\"server\"");
  EXPECT_EQ(At(resolved.value(), "/version"), "null");
  EXPECT_EQ(h_->Doc("n1"), kServerDoc);
  EXPECT_EQ(h_->Latest(), 2);
  const std::string replay = h_->Push("B", {Updated("n1", R"({"title":"B","tag":"b"})", "b1", 1, kT0 + 9000)});
  EXPECT_EQ(At(replay, "/conflicts/0/winner"), "\"server\"");
}

TEST_F(ServerManualTest, ResolveMergedReplacesTheDocument) {
  Result<std::string> resolved = Resolve(R"({"use":"merged","data":{"title":"M","note":"n"}})");
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(At(resolved.value(), "/version"), "3");
  EXPECT_EQ(h_->Doc("n1"), R"({"title":"M","note":"n"})");
  std::vector<std::string> log = h_->Log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(At(log[2], "/data"), R"({"title":"M","note":"n","body":null})") << "the dropped field travels as null";
}

TEST_F(ServerManualTest, BadResolutionsSettleNothing) {
  for (const std::string& bad : {std::string("[]"), std::string(R"({"use":"all"})"), std::string(R"({"use":"merged"})"),
                                 std::string(R"({"use":"merged","data":[1]})"), std::string(R"({"use":1})"),
                                 std::string(R"({"use":"client","x":1})"), std::string("{")}) {
    EXPECT_TRUE(HasCode(Resolve(bad), StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_TRUE(HasCode(h_->server->ResolveConflict("u", conflict_id_ + 1, R"({"use":"client"})"), StatusCode::kNotFound));
  EXPECT_EQ(h_->Doc("n1"), kServerDoc);
  EXPECT_NE(h_->server->Conflicts("u").value(), "[]");
}

TEST_F(ServerManualTest, CompatResolveTakesAStringOrAnObject) {
  Result<std::string> resolved = h_->server->CompatResolve(
      "u", "{\"conflictId\":" + std::to_string(conflict_id_) + R"(,"resolution":"merged","data":{"only":1}})");
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(At(resolved.value(), "/success"), "true");
  EXPECT_EQ(h_->Doc("n1"), R"({"only":1})");
  EXPECT_TRUE(HasCode(h_->server->CompatResolve("u", R"({"resolution":"client"})"), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(h_->server->CompatResolve("u", "{\"conflictId\":" + std::to_string(conflict_id_) +
                                                         R"(,"resolution":{"use":"client"}})"),
                      StatusCode::kNotFound));
}

// ---- compatible routes

TEST(SyncServerCompat, Seed004PushAndPullEncodings) {
  ServerHarness h;
  Result<std::string> pushed = h.server->CompatPush(
      "u",
      R"({"deviceId":"device_123","changes":{"customers":[{"customer_id":"CUST_001","name":"ABC Company",)"
      R"("updated_at":"2025-01-15T11:00:00Z","sync_status":"UNSYNCED"}]}})",
      CompatOptions{});
  ASSERT_TRUE(IsOk(pushed));
  EXPECT_EQ(pushed.value(),
            R"({"success":true,"applied":[{"entityType":"customers","entityId":"CUST_001","action":"CREATE",)"
            R"("uniqueId":"CUST_001","version":1}],"conflicts":[],"errors":[]})");
  std::vector<std::string> log = h.Log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(At(log[0], "/data"), R"({"customer_id":"CUST_001","name":"ABC Company","updated_at":"2025-01-15T11:00:00Z"})");
  EXPECT_EQ(At(log[0], "/timestamp"), "1736938800000");

  Result<std::string> pulled = h.server->CompatPull(
      "u", R"({"deviceId":"device_123","lastSyncTimestamp":"2025-01-01T00:00:00Z"})", CompatOptions{});
  ASSERT_TRUE(IsOk(pulled));
  EXPECT_EQ(At(pulled.value(), "/success"), "true");
  EXPECT_EQ(At(pulled.value(), "/deviceId"), "\"device_123\"");
  EXPECT_EQ(At(pulled.value(), "/conflicts"), "[]");
  EXPECT_EQ(At(pulled.value(), "/timestamp"), "\"2026-01-01T00:00:00.000Z\"");
  EXPECT_EQ(Count(pulled.value(), "/changes/customers"), 1);
  EXPECT_EQ(At(pulled.value(), "/changes/customers/0/customer_id"), "\"CUST_001\"");
  EXPECT_EQ(At(pulled.value(), "/changes/customers/0/name"), "\"ABC Company\"");
  EXPECT_EQ(At(pulled.value(), "/changes/customers/0/sync_status"), "<missing>");
  EXPECT_EQ(At(pulled.value(), "/changes/customers/0/id"), "<missing>") << "customer_id is its id";

  // The same push again (a retry): the same answer, no new version.
  Result<std::string> again = h.server->CompatPush(
      "u",
      R"({"changes":{"customers":[{"customer_id":"CUST_001","name":"ABC Company",)"
      R"("updated_at":"2025-01-15T11:00:00Z","sync_status":"UNSYNCED"}]},"deviceId":"device_123"})",
      CompatOptions{});
  ASSERT_TRUE(IsOk(again));
  EXPECT_EQ(again.value(), pushed.value());
  EXPECT_EQ(h.Latest(), 1);
}

TEST(SyncServerCompat, Seed004ConflictExampleNewestWinsServer) {
  ServerHarness h;
  const CompatOptions compat;
  ASSERT_TRUE(IsOk(h.server->CompatPush(
      "u", R"({"deviceId":"device_123","changes":{"customers":[{"customer_id":"CUST_001","name":"ABC Company","phone":"555-0000","updated_at":"2025-01-15T10:00:00Z"}]}})",
      compat)));
  ASSERT_TRUE(IsOk(h.server->CompatPush(
      "u", R"({"deviceId":"web","changes":{"customers":[{"customer_id":"CUST_001","name":"ABC Corporation","phone":"555-5678","updated_at":"2025-01-15T11:30:00Z"}]}})",
      compat)));
  Result<std::string> response = h.server->CompatPush(
      "u", R"({"deviceId":"device_123","changes":{"customers":[{"customer_id":"CUST_001","name":"ABC Company","phone":"555-1234","updated_at":"2025-01-15T11:00:00Z"}]}})",
      compat);
  ASSERT_TRUE(IsOk(response));
  EXPECT_EQ(At(response.value(), "/applied"), "[]");
  EXPECT_EQ(At(response.value(), "/conflicts/0/entityType"), "\"customers\"");
  EXPECT_EQ(At(response.value(), "/conflicts/0/entityId"), "\"CUST_001\"");
  EXPECT_EQ(At(response.value(), "/conflicts/0/resolution"), "\"newest_wins\"");
  EXPECT_EQ(At(response.value(), "/conflicts/0/winner"), "\"server\"");
  EXPECT_EQ(At(response.value(), "/conflicts/0/serverData"),
            R"({"customer_id":"CUST_001","name":"ABC Corporation","phone":"555-5678","updated_at":"2025-01-15T11:30:00Z"})");
}

TEST(SyncServerCompat, IdFieldsAndDeletedFlags) {
  ServerHarness h;
  CompatOptions compat;
  compat.id_fields["orders"] = "order_no";
  Result<std::string> response = h.server->CompatPush(
      "u",
      R"({"deviceId":"d","changes":{"orders":[{"order_no":"O-1","id":"no"}],"categories":[{"category_id":"c1"}],)"
      R"("customers":[{"id":7,"customer_id":"no"},{"customer_id":"C2","is_deleted":true}]}})",
      compat);
  ASSERT_TRUE(IsOk(response));
  EXPECT_EQ(At(response.value(), "/applied/0/entityId"), "\"O-1\"");
  EXPECT_EQ(At(response.value(), "/applied/1/entityId"), "\"c1\"");
  EXPECT_EQ(At(response.value(), "/applied/2/entityId"), "\"7\"");
  EXPECT_EQ(At(response.value(), "/applied/3/action"), "\"DELETE\"");
  // Without its configured field, a record falls back to `id`.
  Result<std::string> fallback = h.server->CompatPush("u", R"({"deviceId":"d","changes":{"orders":[{"id":"x"}]}})", compat);
  ASSERT_TRUE(IsOk(fallback));
  EXPECT_EQ(At(fallback.value(), "/applied/0/entityId"), "\"x\"");
  EXPECT_TRUE(HasCode(h.server->CompatPush("u", R"({"deviceId":"d","changes":{"notes":[{"title":"no id"}]}})", compat),
                      StatusCode::kInvalidArgument));
  EXPECT_EQ(h.Latest(), 5);
}

TEST(SyncServerCompat, PulledRecordsRoundTripAsPushed) {
  ServerHarness h;
  const CompatOptions compat;
  ASSERT_TRUE(IsOk(h.server->CompatPush(
      "u", R"({"deviceId":"d","changes":{"customers":[{"customer_id":"C1","name":"n","updated_at":"2025-01-15T11:00:00Z"}]}})",
      compat)));
  Result<std::string> pulled = h.server->CompatPull("u", R"({"deviceId":"d","lastSyncTimestamp":null})", compat);
  ASSERT_TRUE(IsOk(pulled));
  EXPECT_EQ(At(pulled.value(), "/changes/customers"),
            R"([{"customer_id":"C1","name":"n","updated_at":"2025-01-15T11:00:00Z"}])");
  ASSERT_TRUE(IsOk(h.server->CompatPush("u", R"({"deviceId":"d","changes":{"orders":[{"id":42}]}})", compat)));
  Result<std::string> again = h.server->CompatPull("u", R"({"deviceId":"d"})", compat);
  ASSERT_TRUE(IsOk(again));
  EXPECT_EQ(At(again.value(), "/changes/orders/0/id"), "42");
}

TEST(SyncServerCompat, ChangesSinceAndServerTimestampsThatAlwaysMove) {
  ServerHarness h;  // the clock never moves in this test
  const CompatOptions compat;
  ASSERT_TRUE(IsOk(h.server->CompatPush("u", R"({"deviceId":"d","changes":{"accounts":[{"id":"A1","name":"Acme"}]}})", compat)));
  Result<std::string> first = h.server->CompatChanges("u", std::string("2025-01-01T00:00:00Z"), compat);
  ASSERT_TRUE(IsOk(first));
  EXPECT_EQ(At(first.value(), "/since"), "\"2025-01-01T00:00:00Z\"");
  EXPECT_EQ(At(first.value(), "/updatedAt"), "\"2026-01-01T00:00:00.000Z\"");
  EXPECT_EQ(At(first.value(), "/entities/accounts/0/name"), "\"Acme\"");
  EXPECT_EQ(At(first.value(), "/hasMore"), "false");
  // A second write in the same millisecond still gets a later server time, so `since` never skips it.
  ASSERT_TRUE(IsOk(h.server->CompatPush("u", R"({"deviceId":"d","changes":{"accounts":[{"id":"A2","name":"Beta"}]}})", compat)));
  Result<std::string> next = h.server->CompatChanges("u", std::string("2026-01-01T00:00:00.000Z"), compat);
  ASSERT_TRUE(IsOk(next));
  EXPECT_EQ(Count(next.value(), "/entities/accounts"), 1);
  EXPECT_EQ(At(next.value(), "/entities/accounts/0/id"), "\"A2\"");
  EXPECT_EQ(At(next.value(), "/updatedAt"), "\"2026-01-01T00:00:00.001Z\"");
  Result<std::string> none = h.server->CompatChanges("u", std::string("2026-01-01T00:00:00.001Z"), compat);
  ASSERT_TRUE(IsOk(none));
  EXPECT_EQ(At(none.value(), "/entities"), R"({"accounts":[]})");
  Result<std::string> all = h.server->CompatChanges("u", std::nullopt, compat);
  ASSERT_TRUE(IsOk(all));
  EXPECT_EQ(At(all.value(), "/since"), "null");
  EXPECT_EQ(Count(all.value(), "/entities/accounts"), 2);
  EXPECT_TRUE(HasCode(h.server->CompatChanges("u", std::string("yesterday"), compat), StatusCode::kInvalidArgument));
}

TEST(SyncServerCompat, FullPushesThenPulls) {
  ServerHarness h;
  Result<std::string> full = h.server->CompatFull(
      "u",
      R"({"deviceId":"test_device_123","lastSyncTimestamp":"2025-01-01T00:00:00Z",)"
      R"("changes":{"customers":[{"customer_id":"C1","name":"n","updated_at":"2025-10-18T12:00:00Z"}]}})",
      CompatOptions{});
  ASSERT_TRUE(IsOk(full));
  EXPECT_EQ(At(full.value(), "/success"), "true");
  EXPECT_EQ(At(full.value(), "/applied/0/uniqueId"), "\"C1\"");
  EXPECT_EQ(At(full.value(), "/changes/customers/0/customer_id"), "\"C1\"");
  EXPECT_EQ(At(full.value(), "/deviceId"), "\"test_device_123\"");
  EXPECT_EQ(At(full.value(), "/timestamp"), "\"2026-01-01T00:00:00.000Z\"");
  // Bad input applies nothing.
  EXPECT_TRUE(HasCode(h.server->CompatFull("u", R"({"deviceId":"d","lastSyncTimestamp":"never","changes":{"customers":[{"customer_id":"C9"}]}})", CompatOptions{}),
                      StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(h.server->CompatPull("u", R"({"lastSyncTimestamp":null})", CompatOptions{}), StatusCode::kInvalidArgument));
  EXPECT_EQ(h.Latest(), 1);
}

// ---- snapshot import, status, persistence

TEST(SyncServerCore, ImportSnapshotIsIdempotent) {
  ServerHarness h;
  const std::string state =
      R"({"logbook_entry":[{"id":"e1","duration":30},{"id":"e2","duration":45,"updatedAt":"2025-01-02T10:00:00Z"}],)"
      R"("goal":[{"id":"g1","title":"Practice"}]})";
  Result<std::string> first = h.server->ImportSnapshot("u", state, CompatOptions{});
  ASSERT_TRUE(IsOk(first));
  EXPECT_EQ(first.value(), R"({"imported":3,"skipped":0,"latestServerVersion":3})");
  Result<std::string> again = h.server->ImportSnapshot("u", state, CompatOptions{});
  ASSERT_TRUE(IsOk(again));
  EXPECT_EQ(At(again.value(), "/latestServerVersion"), "3") << "no new version";
  std::vector<std::string> log = h.Log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(At(log[1], "/timestamp"), "1735812000000");
  EXPECT_EQ(At(log[0], "/changeId").rfind("\"snapshot-", 0), 0u);
  EXPECT_TRUE(HasCode(h.server->ImportSnapshot("u", R"({"goal":[{"title":"no id"}]})", CompatOptions{}),
                      StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(h.server->ImportSnapshot("u", "[]", CompatOptions{}), StatusCode::kInvalidArgument));
  EXPECT_EQ(h.Latest(), 3);
}

TEST(SyncServerCore, ImportSnapshotCountsAReplayAsSkipped) {
  ServerHarness h;
  const std::string state = R"({"goal":[{"id":"g1"},{"id":"g2"}]})";
  ASSERT_TRUE(IsOk(h.server->ImportSnapshot("u", state, CompatOptions{})));
  EXPECT_EQ(h.server->ImportSnapshot("u", state, CompatOptions{}).value(),
            R"({"imported":0,"skipped":2,"latestServerVersion":2})");
}

TEST(SyncServerCore, DeviceStatus) {
  ServerHarness h;
  EXPECT_TRUE(HasCode(h.server->DeviceStatus("u", "d"), StatusCode::kNotFound));
  h.Sync(Request("d", {Created("a", "{}", "c1"), Created("b", "{}", "c2")}));
  h.clock->Advance(5);
  h.Push("other", {Created("c", "{}", "c3")});
  Result<std::string> status = h.server->DeviceStatus("u", "d");
  ASSERT_TRUE(IsOk(status));
  EXPECT_EQ(status.value(),
            R"({"deviceId":"d","lastPushAt":1767225600000,"lastPullAt":1767225600000,"changesPushed":2,)"
            R"("conflictsReported":0,"lastSeenVersion":2,"openConflicts":0,"latestServerVersion":3})");
}

TEST(SyncServerCore, AReopenedFileContinuesItsVersionsAndKeepsResults) {
  TempDir dir;
  ServerOptions options;
  options.path = dir.File("server.db");
  const std::string request = Request("d", {Created("a", R"({"v":1})", "c1"), Created("b", R"({"v":1})", "c2")});
  std::string first;
  {
    ServerHarness h(options);
    first = h.Sync(request);
  }
  ServerHarness h(options);
  EXPECT_EQ(At(h.Sync(request), "/applied"), At(first, "/applied"));
  EXPECT_EQ(At(h.Push("d", {Created("c", "{}", "c3")}), "/applied"), R"([{"changeId":"c3","version":3}])");
  ExpectGapless(h.Log());
}

// ---- the commit listener (live updates)

TEST(SyncServerCore, TheCommitListenerHearsEachCommitThatAdvancesAUsersLogOnly) {
  ServerHarness h = ServerHarness::With(ConflictStrategy::kManual);
  std::vector<std::pair<std::string, int64_t>> heard;
  h.server->SetCommitListener([&](const std::string& user, int64_t head) { heard.emplace_back(user, head); });
  h.Push("d1", {Created("n1", R"({"a":1})", "c1"), Created("n2", R"({"a":2})", "c2")});
  h.Push("d1", {Created("n3", R"({"a":3})", "c3")}, "other");
  h.Push("d1", {Created("n1", R"({"a":1})", "c1")});  // a replay: nothing new
  h.Sync(Request("d2", {}));                             // a pull: nothing new
  h.Push("d2", {Updated("n1", R"({"a":9})", "c4", 0, kT0 + 5)});  // a manual conflict: not applied
  EXPECT_FALSE(IsOk(h.server->Sync("u", Request("d1", {Created("n1", R"({"b":1})", "c1")}))));  // CONFLICT
  Result<std::string> resolved = h.server->ResolveConflict("u", 1, R"({"use":"client"})");
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(heard, (std::vector<std::pair<std::string, int64_t>>{{"u", 2}, {"other", 1}, {"u", 3}}));
  h.server->SetCommitListener(nullptr);
  h.Push("d1", {Created("n9", R"({"a":1})", "c9")});
  EXPECT_EQ(heard.size(), 3u) << "removed";
}

}  // namespace
}  // namespace deltasync
