// 89: the pure decisions of delta application (no database): how a pulled change is settled
// against an entity's unacknowledged local changes, and the replay of local changes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/apply_decision.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::IsOk;

RemoteChange Pulled(ChangeType type, std::optional<std::string> data, int64_t timestamp) {
  RemoteChange change;
  change.version = 7;
  change.change_id = "remote-1";
  change.type = type;
  change.entity_type = "note";
  change.entity_id = "n1";
  change.data = std::move(data);
  change.timestamp = timestamp;
  return change;
}

LocalChange Local(int64_t id, ChangeType type, std::optional<std::string> data, int64_t timestamp,
                  ChangeStatus status = ChangeStatus::kPending) {
  return LocalChange{id, "local-" + std::to_string(id), type, std::move(data), timestamp, status};
}

class PlanConflictTest : public ::testing::Test {
 protected:
  ConflictPlan Plan(const RemoteChange& change, const std::vector<LocalChange>& locals, ConflictStrategy strategy,
                    bool server_has_state = true) {
    Result<ConflictPlan> plan = PlanConflict(parser_, change, locals, strategy, server_has_state);
    EXPECT_TRUE(IsOk(plan));
    return plan.ok() ? plan.value() : ConflictPlan{};
  }
  static std::vector<std::string> Ids(const std::vector<LocalChange>& changes) {
    std::vector<std::string> ids;
    for (const LocalChange& change : changes) ids.push_back(change.change_id);
    return ids;
  }
  simdjson::ondemand::parser parser_;
};

TEST_F(PlanConflictTest, NewestWinsTiesGoToTheRemoteAndInFlightChangesStay) {
  const std::vector<LocalChange> locals = {Local(1, ChangeType::kUpdated, R"({"a":1})", 100),
                                           Local(2, ChangeType::kUpdated, R"({"b":1})", 100, ChangeStatus::kSyncing)};
  const ConflictPlan remote = Plan(Pulled(ChangeType::kUpdated, R"({"a":2})", 100), locals, ConflictStrategy::kNewestWins);
  EXPECT_EQ(remote.winner, "remote");
  EXPECT_EQ(remote.discards, (std::vector<std::string>{"local-1"}));
  EXPECT_EQ(Ids(remote.remaining), (std::vector<std::string>{"local-2"}));
  EXPECT_FALSE(remote.rebase);
  EXPECT_FALSE(remote.replay_on_state_before);

  const ConflictPlan local = Plan(Pulled(ChangeType::kUpdated, R"({"a":2})", 99), locals, ConflictStrategy::kNewestWins);
  EXPECT_EQ(local.winner, "local");
  EXPECT_TRUE(local.discards.empty());
  EXPECT_EQ(Ids(local.remaining), (std::vector<std::string>{"local-1", "local-2"}));
  EXPECT_TRUE(local.rebase);
}

TEST_F(PlanConflictTest, ServerAndClientWinWhateverTheClocksSay) {
  const std::vector<LocalChange> locals = {Local(1, ChangeType::kUpdated, R"({"a":1})", 500)};
  EXPECT_EQ(Plan(Pulled(ChangeType::kUpdated, R"({"a":2})", 1), locals, ConflictStrategy::kServerWins).winner, "remote");
  const ConflictPlan client = Plan(Pulled(ChangeType::kUpdated, R"({"a":2})", 900), locals, ConflictStrategy::kClientWins);
  EXPECT_EQ(client.winner, "local");
  EXPECT_EQ(Ids(client.remaining), (std::vector<std::string>{"local-1"}));
}

// A pulled DELETED that the local side outlives: the local changes replay on the state before it.
TEST_F(PlanConflictTest, AKeptLocalChangeReplaysOnTheStateBeforeAPulledDelete) {
  const std::vector<LocalChange> locals = {Local(1, ChangeType::kUpdated, R"({"a":1})", 500)};
  const ConflictPlan plan = Plan(Pulled(ChangeType::kDeleted, std::nullopt, 100), locals, ConflictStrategy::kMerge, false);
  EXPECT_EQ(plan.strategy, ConflictStrategy::kNewestWins);  // a delete has no fields to merge
  EXPECT_EQ(plan.winner, "local");
  EXPECT_TRUE(plan.replay_on_state_before);
}

TEST_F(PlanConflictTest, MergeGivesOverlappingFieldsToANewerRemoteAndDropsEmptiedUpdates) {
  const std::vector<LocalChange> locals = {
      Local(1, ChangeType::kUpdated, R"({"title":"mine","done":true})", 100),
      Local(2, ChangeType::kUpdated, R"({"title":"again"})", 100),
      Local(3, ChangeType::kUpdated, R"({"title":"flying"})", 100, ChangeStatus::kSyncing),
  };
  const ConflictPlan plan = Plan(Pulled(ChangeType::kUpdated, R"({"title":"theirs"})", 200), locals, ConflictStrategy::kMerge);
  EXPECT_EQ(plan.winner, "merged");
  EXPECT_TRUE(plan.created_merges);
  EXPECT_TRUE(plan.rebase);
  ASSERT_EQ(plan.rewrites.size(), 1u);
  EXPECT_EQ(plan.rewrites[0].id, 1);
  EXPECT_EQ(plan.rewrites[0].data, R"({"done":true})");
  EXPECT_EQ(plan.discards, (std::vector<std::string>{"local-2"}));
  EXPECT_EQ(Ids(plan.remaining), (std::vector<std::string>{"local-1", "local-3"}));
  EXPECT_EQ(plan.remaining[1].data, R"({"title":"flying"})");  // in flight: never rewritten
}

TEST_F(PlanConflictTest, MergeKeepsNewerLocalFieldsAndTurnsAKeptCreatedIntoAnUpdated) {
  const std::vector<LocalChange> locals = {Local(1, ChangeType::kCreated, R"({"title":"mine","n":1})", 300)};
  const ConflictPlan newer = Plan(Pulled(ChangeType::kCreated, R"({"title":"theirs"})", 200), locals, ConflictStrategy::kMerge);
  ASSERT_EQ(newer.rewrites.size(), 1u);
  EXPECT_EQ(newer.rewrites[0].type, ChangeType::kUpdated);
  EXPECT_EQ(newer.rewrites[0].data, R"({"title":"mine","n":1})");
  const ConflictPlan older = Plan(Pulled(ChangeType::kCreated, R"({"title":"theirs"})", 400), locals, ConflictStrategy::kMerge);
  ASSERT_EQ(older.rewrites.size(), 1u);
  EXPECT_EQ(older.rewrites[0].type, ChangeType::kUpdated);
  EXPECT_EQ(older.rewrites[0].data, R"({"n":1})");
  EXPECT_TRUE(older.discards.empty());  // a CREATED is never dropped: it may be all the server has
}

TEST_F(PlanConflictTest, ManualAndCustomKeepTheConflictOpenWithoutRebasing) {
  const std::vector<LocalChange> locals = {Local(1, ChangeType::kUpdated, R"({"a":1})", 100)};
  for (ConflictStrategy strategy : {ConflictStrategy::kManual, ConflictStrategy::kCustom}) {
    const ConflictPlan plan = Plan(Pulled(ChangeType::kUpdated, R"({"a":2})", 200), locals, strategy);
    EXPECT_EQ(plan.winner, strategy == ConflictStrategy::kManual ? "manual" : "custom");
    EXPECT_TRUE(plan.open_conflict);
    EXPECT_FALSE(plan.rebase);
    EXPECT_TRUE(plan.rewrites.empty());
    EXPECT_TRUE(plan.discards.empty());
    EXPECT_EQ(Ids(plan.remaining), (std::vector<std::string>{"local-1"}));
  }
}

TEST(ReplayLocalChanges, AppliesCreatesUpdatesAndDeletesInOrder) {
  simdjson::ondemand::parser parser;
  const std::vector<LocalChange> changes = {
      Local(1, ChangeType::kUpdated, R"({"b":2})", 1),
      Local(2, ChangeType::kDeleted, std::nullopt, 2, ChangeStatus::kSyncing),
      Local(3, ChangeType::kCreated, R"({"c":3})", 3),
  };
  Result<EntityState> all = ReplayLocalChanges(parser, EntityState{R"({"a":1})"}, changes, false);
  ASSERT_TRUE(IsOk(all));
  EXPECT_EQ(all.value().data, R"({"c":3})");
  Result<EntityState> in_flight = ReplayLocalChanges(parser, EntityState{R"({"a":1})"}, changes, true);
  ASSERT_TRUE(IsOk(in_flight));
  EXPECT_EQ(in_flight.value().data, std::nullopt);
  Result<EntityState> merged =
      ReplayLocalChanges(parser, EntityState{R"({"a":1})"}, {Local(3, ChangeType::kCreated, R"({"c":3})", 3)}, false, true);
  ASSERT_TRUE(IsOk(merged));
  EXPECT_EQ(merged.value().data, R"({"a":1,"c":3})");
  // Fields set on a document that is not there do not make one.
  Result<EntityState> absent = ReplayLocalChanges(parser, EntityState{}, {Local(1, ChangeType::kUpdated, R"({"b":2})", 1)}, false);
  ASSERT_TRUE(IsOk(absent));
  EXPECT_EQ(absent.value().data, std::nullopt);
}

TEST(DirtyEntities, NamesExactlyTheListedEntities) {
  const DirtyEntities dirty = DirtyEntities::Of({{"note", "n2"}, {"ab", "c"}, {"note", "n2"}, {"a", "bc"}, {"task", "n1"}});
  EXPECT_TRUE(dirty.MayHaveLocalChanges("note", "n2"));
  EXPECT_TRUE(dirty.MayHaveLocalChanges("a", "bc"));
  EXPECT_TRUE(dirty.MayHaveLocalChanges("ab", "c"));
  EXPECT_TRUE(dirty.MayHaveLocalChanges("task", "n1"));
  EXPECT_FALSE(dirty.MayHaveLocalChanges("note", "n1"));  // another entity of a listed type
  EXPECT_FALSE(dirty.MayHaveLocalChanges("task", "n2"));  // a listed id of another type
  EXPECT_FALSE(dirty.MayHaveLocalChanges("abc", ""));
  EXPECT_FALSE(dirty.MayHaveLocalChanges("", "abc"));
  EXPECT_FALSE(dirty.MayHaveLocalChanges("zzz", "z"));  // past the last
  EXPECT_FALSE(dirty.MayHaveLocalChanges("", ""));      // before the first
}

TEST(DirtyEntities, NoneNamesNothingAndUnknownNamesEverything) {
  EXPECT_FALSE(DirtyEntities().MayHaveLocalChanges("note", "n1"));
  EXPECT_FALSE(DirtyEntities::Of({}).MayHaveLocalChanges("note", "n1"));
  EXPECT_TRUE(DirtyEntities::Unknown().MayHaveLocalChanges("note", "n1"));
  EXPECT_TRUE(DirtyEntities::Unknown().MayHaveLocalChanges("", ""));
}

}  // namespace
}  // namespace deltasync
