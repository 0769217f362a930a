// 91: the app's own conflict resolver (strategy kCustom), both halves of the core.
// Client: a custom conflict is set aside during the apply with what the resolver is given, and
// SettleConflicts writes verdicts in one transaction, refusing stale ones. Server: a request
// meeting a custom conflict without a verdict applies nothing and lists the resolver contexts;
// with verdicts it applies them; stale verdicts are asked again; the last round makes them manual.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/apply.h"
#include "core/conflict_store.h"
#include "core/server.h"
#include "server_harness.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::IsOk;
using testing_util::kTestStartMs;
constexpr int64_t kLocalTime = kTestStartMs;  // the clock when the local edits are made
using testing_util::QueryInt;
using testing_util::Remote;
using testing_util::StoreHarness;

// ---- client

class ClientCustomTest : public ::testing::Test {
 protected:
  // n1 = {"title":"a","body":"x"} pulled at version 1, a local edit, then a remote edit (version 2).
  void SetUp() override {
    h_ = std::make_unique<StoreHarness>(ConflictStrategy::kNewestWins, true,
                                        std::map<std::string, ConflictStrategy>{{"note", ConflictStrategy::kCustom}});
    h_->PullOne(Remote(1, "CREATED", "n1", R"({"title":"a","body":"x"})", kLocalTime - 10000));
    ASSERT_TRUE(IsOk(h_->store->Patch("note", "n1", R"({"title":"L"})")));
    ApplyResult result = h_->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1000));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kCustom);
    EXPECT_EQ(result.conflicts[0].winner, "custom");
    ASSERT_TRUE(result.conflicts[0].conflict_id);
    id_ = *result.conflicts[0].conflict_id;
  }

  std::string Awaiting() {
    Result<std::string> json = h_->applier->AwaitingResolverJson();
    EXPECT_TRUE(IsOk(json));
    return json.ok() ? json.value() : "";
  }

  ConflictVerdict Verdict(std::optional<ResolveUse> use, int64_t remote_version = 2) {
    ConflictVerdict verdict;
    verdict.conflict_id = id_;
    verdict.remote_version = remote_version;
    verdict.local_token = LocalStateToken(h_->Visible("n1"));
    verdict.use = use;
    return verdict;
  }

  VerdictOutcome::Kind Settle(const ConflictVerdict& verdict) {
    Result<std::vector<VerdictOutcome>> settled = h_->applier->SettleConflicts({verdict});
    EXPECT_TRUE(IsOk(settled));
    EXPECT_FALSE(h_->db->InTransaction());
    return settled.ok() && settled.value().size() == 1 ? settled.value()[0].kind : VerdictOutcome::Kind::kStale;
  }

  std::unique_ptr<StoreHarness> h_;
  int64_t id_ = 0;
};

TEST_F(ClientCustomTest, TheConflictIsSetAsideWithWhatTheResolverIsGiven) {
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"x"})");  // nothing lost meanwhile
  const std::string awaiting = Awaiting();
  using server_testing::At;
  EXPECT_EQ(At(awaiting, "/0/id"), std::to_string(id_));
  EXPECT_EQ(At(awaiting, "/0/local"), R"({"title":"L","body":"x"})");
  EXPECT_EQ(At(awaiting, "/0/remote"), R"({"title":"R","body":"x"})");
  EXPECT_EQ(At(awaiting, "/0/base"), R"({"title":"a","body":"x"})");
  EXPECT_EQ(At(awaiting, "/0/remoteVersion"), "2");
  EXPECT_EQ(At(awaiting, "/0/localChange/type"), R"("UPDATED")");
  EXPECT_EQ(At(awaiting, "/0/localChange/data"), R"({"title":"L"})");
  EXPECT_EQ(At(awaiting, "/0/remoteChange"),
            R"({"changeId":"r2","version":2,"type":"UPDATED","data":{"title":"R"},"timestamp":)" +
                std::to_string(kLocalTime + 1000) + R"(,"deviceId":"server-side"})");
  EXPECT_EQ(At(awaiting, "/0/localToken"), "\"" + LocalStateToken(h_->Visible("n1")) + "\"");
}

TEST_F(ClientCustomTest, AVerdictIsWrittenOnceAndClosesTheConflict) {
  ConflictVerdict verdict = Verdict(ResolveUse::kMerged);
  verdict.data = R"({"title":"M","body":"x"})";
  EXPECT_EQ(Settle(verdict), VerdictOutcome::Kind::kResolved);
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"M","body":"x"})");
  EXPECT_EQ(Awaiting(), "[]");
  EXPECT_EQ(QueryInt(*h_->db, "SELECT count(*) FROM conflicts WHERE status = 'resolved' AND resolution = 'merged'"), 1);
  EXPECT_EQ(Settle(verdict), VerdictOutcome::Kind::kStale) << "a settled conflict takes no second verdict";
}

TEST_F(ClientCustomTest, AFailedResolverLeavesTheConflictForReviewWithTheError) {
  ConflictVerdict verdict = Verdict(std::nullopt);
  verdict.error = "The resolver threw: boom";
  EXPECT_EQ(Settle(verdict), VerdictOutcome::Kind::kLeftForReview);
  EXPECT_EQ(Awaiting(), "[]");
  Result<std::string> open = h_->applier->ConflictsJson();
  ASSERT_TRUE(IsOk(open));
  EXPECT_EQ(server_testing::At(open.value(), "/0/resolverError"), R"("The resolver threw: boom")");
  EXPECT_EQ(server_testing::At(open.value(), "/0/awaitingResolver"), "false");
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"x"})");
  EXPECT_EQ(h_->Changes().size(), 1u);
}

TEST_F(ClientCustomTest, AVerdictOnAnOlderRemoteOrAnOlderLocalSideIsStale) {
  ConflictVerdict old_remote = Verdict(ResolveUse::kLocal);
  h_->PullOne(Remote(3, "UPDATED", "n1", R"({"body":"y"})", kLocalTime + 2000));
  EXPECT_EQ(Settle(old_remote), VerdictOutcome::Kind::kStale);

  ConflictVerdict old_local = Verdict(ResolveUse::kRemote, 3);
  ASSERT_TRUE(IsOk(h_->store->Patch("note", "n1", R"({"late":true})")));
  EXPECT_EQ(Settle(old_local), VerdictOutcome::Kind::kStale);
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"y","late":true})") << "the late write is kept";
  EXPECT_NE(Awaiting(), "[]") << "still awaiting the resolver";

  EXPECT_EQ(Settle(Verdict(ResolveUse::kLocal, 3)), VerdictOutcome::Kind::kResolved);
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"y","late":true})");
}

TEST_F(ClientCustomTest, AConflictLeftForReviewTakesNoLateVerdict) {
  ConflictVerdict review = Verdict(std::nullopt);
  EXPECT_EQ(Settle(review), VerdictOutcome::Kind::kLeftForReview);
  EXPECT_EQ(Settle(Verdict(ResolveUse::kRemote)), VerdictOutcome::Kind::kStale)
      << "a second settle's verdict must not override the first's review";
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"x"})");
}

TEST_F(ClientCustomTest, AVerdictThatCannotBeAppliedIsLeftForReviewAndTheOthersGoOn) {
  h_->PullOne(Remote(3, "CREATED", "n2", R"({"title":"a"})", kLocalTime - 10000));
  ASSERT_TRUE(IsOk(h_->store->Patch("note", "n2", R"({"title":"L2"})")));
  ApplyResult second = h_->PullOne(Remote(4, "UPDATED", "n2", R"({"title":"R2"})", kLocalTime + 1000));
  ASSERT_EQ(second.conflicts.size(), 1u);
  ConflictVerdict too_large = Verdict(ResolveUse::kMerged);
  too_large.data = R"({"title":)";  // not a document (the binding refuses it first; the core must not trust that)
  ConflictVerdict fine;
  fine.conflict_id = *second.conflicts[0].conflict_id;
  fine.remote_version = 4;
  fine.local_token = LocalStateToken(h_->Visible("n2"));
  fine.use = ResolveUse::kRemote;
  Result<std::vector<VerdictOutcome>> settled = h_->applier->SettleConflicts({too_large, fine});
  ASSERT_TRUE(IsOk(settled));
  ASSERT_EQ(settled.value().size(), 2u);
  EXPECT_EQ(settled.value()[0].kind, VerdictOutcome::Kind::kLeftForReview);
  EXPECT_EQ(settled.value()[1].kind, VerdictOutcome::Kind::kResolved);
  Result<std::string> open = h_->applier->ConflictsJson();
  ASSERT_TRUE(IsOk(open));
  EXPECT_NE(server_testing::At(open.value(), "/0/resolverError").find("could not be applied"), std::string::npos);
  EXPECT_TRUE(h_->Visible("n1") == std::optional<std::string>(R"({"title":"L","body":"x"})"))
      << "nothing of the failed verdict stays";
  EXPECT_EQ(h_->Visible("n2"), R"({"title":"R2"})");
}

TEST_F(ClientCustomTest, OtherTypesKeepTheDefaultStrategy) {
  h_->PullOne(Remote(3, "CREATED", "t1", R"({"x":1})", kLocalTime - 10000, "", "task"));
  ASSERT_TRUE(IsOk(h_->store->Patch("task", "t1", R"({"x":2})")));
  ApplyResult result = h_->PullOne(Remote(4, "UPDATED", "t1", R"({"x":3})", kLocalTime + 1000, "", "task"));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kNewestWins);
  EXPECT_EQ(result.conflicts[0].winner, "remote");
}

// ---- server

using server_testing::At;
using server_testing::Count;
using server_testing::Created;
using server_testing::Request;
using server_testing::ServerHarness;
using server_testing::Updated;
using server_testing::kT0;

class ServerCustomTest : public ::testing::Test {
 protected:
  // d1 creates n1 (version 1), d2 edits it (version 2); d3's edit on version 1 conflicts.
  void SetUp() override {
    ServerOptions options;
    options.per_type["note"] = ConflictStrategy::kCustom;
    h_ = std::make_unique<ServerHarness>(options);
    h_->Push("d1", {Created("n1", R"({"title":"a","tags":["x"]})", "c1")});
    h_->Push("d2", {Updated("n1", R"({"tags":["x","2"]})", "c2", 1, kT0 + 10)});
  }

  Result<std::string> Run(const std::shared_ptr<ResolverExchange>& exchange) {
    RequestContext context;
    context.resolver = exchange;
    return h_->server->Sync("u", Request("d3", {Updated("n1", R"({"title":"three"})", "c3", 1, kT0 + 20)}), context);
  }

  static std::shared_ptr<ResolverExchange> With(CustomVerdict::Use use, int64_t server_version,
                                                std::optional<std::string> data = std::nullopt) {
    auto exchange = std::make_shared<ResolverExchange>();
    CustomVerdict verdict;
    verdict.use = use;
    verdict.server_version = server_version;
    verdict.data = std::move(data);
    exchange->verdicts["c3"] = verdict;
    return exchange;
  }

  std::unique_ptr<ServerHarness> h_;
};

TEST_F(ServerCustomTest, WithoutAVerdictNothingIsAppliedAndTheContextIsListed) {
  Result<std::string> asked = Run(std::make_shared<ResolverExchange>());
  ASSERT_TRUE(IsOk(asked));
  EXPECT_EQ(Count(asked.value(), "/resolverContexts"), 1);
  EXPECT_EQ(At(asked.value(), "/resolverContexts/0/server"), R"({"title":"a","tags":["x","2"]})");
  EXPECT_EQ(At(asked.value(), "/resolverContexts/0/client"), R"({"title":"three","tags":["x","2"]})");
  EXPECT_EQ(At(asked.value(), "/resolverContexts/0/base"), R"({"title":"a","tags":["x"]})");
  EXPECT_EQ(At(asked.value(), "/resolverContexts/0/serverVersion"), "2");
  EXPECT_EQ(At(asked.value(), "/resolverContexts/0/clientChange/deviceId"), R"("d3")");
  EXPECT_EQ(h_->Latest(), 2) << "nothing was applied";
  EXPECT_EQ(h_->Log().size(), 2u);
}

TEST_F(ServerCustomTest, AVerdictIsAppliedAndRecordedForReplays) {
  Result<std::string> merged = Run(With(CustomVerdict::Use::kMerged, 2, R"({"title":"m","tags":["x","2","3"]})"));
  ASSERT_TRUE(IsOk(merged));
  EXPECT_EQ(At(merged.value(), "/conflicts/0/winner"), R"("merged")");
  EXPECT_EQ(At(merged.value(), "/conflicts/0/resolution"), R"("custom")");
  EXPECT_EQ(h_->Doc("n1"), R"({"title":"m","tags":["x","2","3"]})");
  // A replay needs no verdict: it returns the recorded one.
  Result<std::string> replay = Run(std::make_shared<ResolverExchange>());
  ASSERT_TRUE(IsOk(replay));
  EXPECT_EQ(At(replay.value(), "/conflicts/0/winner"), R"("merged")");
  EXPECT_EQ(h_->Latest(), 3);
}

TEST_F(ServerCustomTest, ClientAndServerVerdicts) {
  Result<std::string> server_side = Run(With(CustomVerdict::Use::kServer, 2));
  ASSERT_TRUE(IsOk(server_side));
  EXPECT_EQ(At(server_side.value(), "/conflicts/0/winner"), R"("server")");
  EXPECT_EQ(h_->Doc("n1"), R"({"title":"a","tags":["x","2"]})");

  h_->Push("d2", {Updated("n1", R"({"n":1})", "c4", 2, kT0 + 30)});
  RequestContext context;
  context.resolver = With(CustomVerdict::Use::kClient, 3);
  context.resolver->verdicts["c5"] = context.resolver->verdicts["c3"];
  Result<std::string> client_side =
      h_->server->Sync("u", Request("d3", {Updated("n1", R"({"title":"five"})", "c5", 1, kT0 + 40)}), context);
  ASSERT_TRUE(IsOk(client_side));
  EXPECT_EQ(At(client_side.value(), "/conflicts/0/winner"), R"("client")");
  EXPECT_EQ(h_->Doc("n1"), R"({"title":"five","tags":["x","2"],"n":1})");
}

TEST_F(ServerCustomTest, AStaleVerdictIsAskedAgainAndTheLastRoundMakesItManual) {
  Result<std::string> stale = Run(With(CustomVerdict::Use::kClient, 1));
  ASSERT_TRUE(IsOk(stale));
  EXPECT_EQ(Count(stale.value(), "/resolverContexts"), 1) << "made on version 1, the entity is at 2";

  auto last = With(CustomVerdict::Use::kClient, 1);
  last->final_round = true;
  Result<std::string> manual = Run(last);
  ASSERT_TRUE(IsOk(manual));
  EXPECT_EQ(At(manual.value(), "/conflicts/0/winner"), R"("manual")");
  EXPECT_NE(At(manual.value(), "/conflicts/0/reason").find("kept changing"), std::string::npos);
  Result<std::string> open = h_->server->Conflicts("u");
  ASSERT_TRUE(IsOk(open));
  EXPECT_EQ(Count(open.value(), ""), 1);
}

TEST_F(ServerCustomTest, MergedDataThatIsNotADocumentBecomesManualWithTheReason) {
  for (const char* data : {"[1,2]", "{\"a\":", "42"}) {
    SCOPED_TRACE(data);
    SetUp();
    Result<std::string> refused = Run(With(CustomVerdict::Use::kMerged, 2, std::string(data)));
    ASSERT_TRUE(IsOk(refused));
    EXPECT_EQ(At(refused.value(), "/conflicts/0/winner"), R"("manual")");
    EXPECT_NE(At(refused.value(), "/conflicts/0/reason").find("merged data was refused"), std::string::npos);
    EXPECT_EQ(h_->Doc("n1"), R"({"title":"a","tags":["x","2"]})");
  }
}

TEST_F(ServerCustomTest, WithoutAnExchangeACustomConflictIsManual) {
  Result<std::string> response = Run(nullptr);
  ASSERT_TRUE(IsOk(response));
  EXPECT_EQ(At(response.value(), "/conflicts/0/winner"), R"("manual")");
  EXPECT_NE(At(response.value(), "/conflicts/0/reason").find("no resolver"), std::string::npos);
}

}  // namespace
}  // namespace deltasync
