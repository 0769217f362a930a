// 60: ChangeQueue: coalescing (DESIGN.md section 5), batch taking and the
// engine's transitions, failure isolation, retention, discard, legacy import.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/client.h"
#include "core/queue.h"
#include "core/schema.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::Created;
using testing_util::Deleted;
using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::MakeChange;
using testing_util::OpenDb;
using testing_util::QueryInt;
using testing_util::TempDir;
using testing_util::Updated;

constexpr int64_t kStart = 1700000000000;

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override { Reset(true); }

  void Reset(bool coalesce, std::optional<std::string> tenant = std::nullopt,
             std::optional<std::string> user = std::nullopt) {
    queue_.reset();
    db_ = OpenDb(":memory:");
    ASSERT_NE(db_, nullptr);
    ASSERT_TRUE(IsOk(Migrate(*db_, ClientMigrations())));
    QueueOptions options;
    options.coalesce = coalesce;
    options.tenant_id = std::move(tenant);
    options.user_id = std::move(user);
    queue_ = std::make_unique<ChangeQueue>(*db_, clock_, random_, options);
  }

  EnqueueResult Enqueue(const ChangeInput& input) {
    Result<EnqueueResult> result = queue_->Enqueue(input);
    EXPECT_TRUE(IsOk(result));
    return result.ok() ? result.value() : EnqueueResult{};
  }

  std::vector<Change> All() {
    Result<std::vector<Change>> all = queue_->All();
    EXPECT_TRUE(IsOk(all));
    return all.ok() ? all.value() : std::vector<Change>{};
  }

  std::vector<Change> Take(int64_t limit) {
    Result<std::vector<Change>> batch = queue_->TakeBatch(limit);
    EXPECT_TRUE(IsOk(batch));
    return batch.ok() ? batch.value() : std::vector<Change>{};
  }

  static std::vector<std::string> Ids(const std::vector<Change>& changes) {
    std::vector<std::string> ids;
    for (const Change& change : changes) ids.push_back(change.change_id);
    return ids;
  }

  std::optional<Change> Find(const std::string& change_id) {
    for (const Change& change : All()) {
      if (change.change_id == change_id) return change;
    }
    return std::nullopt;
  }

  ManualClock clock_{kStart};
  SeededRandom random_{1234};
  std::unique_ptr<Database> db_;
  std::unique_ptr<ChangeQueue> queue_;
};

// ---- Enqueue basics

TEST_F(QueueTest, EnqueueStoresEveryField) {
  ChangeInput input = Created("n1", R"({"title":"a"})", "c1");
  input.base_version = 4;
  input.timestamp = 1234;
  input.tenant_id = "t";
  input.user_id = "u";
  EnqueueResult result = Enqueue(input);
  EXPECT_EQ(result.outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(result.change_id, "c1");
  EXPECT_EQ(result.into, "");

  std::vector<Change> all = All();
  ASSERT_EQ(all.size(), 1u);
  const Change& change = all[0];
  EXPECT_EQ(change.change_id, "c1");
  EXPECT_EQ(change.entity_type, "note");
  EXPECT_EQ(change.entity_id, "n1");
  EXPECT_EQ(change.type, ChangeType::kCreated);
  EXPECT_EQ(change.data, R"({"title":"a"})");
  EXPECT_EQ(change.base_version, 4);
  EXPECT_EQ(change.timestamp, 1234);
  EXPECT_EQ(change.created_at, kStart);
  EXPECT_EQ(change.updated_at, kStart);
  EXPECT_EQ(change.synced_at, std::nullopt);
  EXPECT_EQ(change.status, ChangeStatus::kPending);
  EXPECT_EQ(change.retry_count, 0);
  EXPECT_EQ(change.tenant_id, "t");
  EXPECT_EQ(change.user_id, "u");
  EXPECT_EQ(change.server_version, std::nullopt);
}

TEST_F(QueueTest, GeneratesChangeIdsAndTimestampsFromTheInjectedEnvironment) {
  SeededRandom expected(1234);
  EnqueueResult a = Enqueue(Created("n1", "{}"));
  EnqueueResult b = Enqueue(Created("n2", "{}"));
  // Time-ordered v7 ids: the clock's milliseconds first, then the injected randomness.
  EXPECT_EQ(a.change_id, expected.UuidV7(kStart));
  EXPECT_EQ(b.change_id, expected.UuidV7(kStart));
  EXPECT_EQ(a.change_id.substr(14, 1), "7");
  SeededRandom later(1);
  EXPECT_LT(a.change_id, later.UuidV7(kStart + 1));  // a later millisecond sorts after
  EXPECT_EQ(All()[0].timestamp, kStart);
}

TEST_F(QueueTest, StampsTenantAndUserFromOptionsUnlessTheChangeHasThem) {
  Reset(true, "tenant-a", "user-a");
  Enqueue(Created("n1", "{}", "c1"));
  ChangeInput own = Created("n2", "{}", "c2");
  own.tenant_id = "tenant-b";
  own.user_id = "user-b";
  Enqueue(own);
  EXPECT_EQ(Find("c1")->tenant_id, "tenant-a");
  EXPECT_EQ(Find("c1")->user_id, "user-a");
  EXPECT_EQ(Find("c2")->tenant_id, "tenant-b");
  EXPECT_EQ(Find("c2")->user_id, "user-b");
}

TEST_F(QueueTest, AReusedChangeIdIsAConflict) {
  Enqueue(Created("n1", "{}", "c1"));
  Result<EnqueueResult> again = queue_->Enqueue(Created("n2", "{}", "c1"));
  EXPECT_TRUE(HasCode(again, StatusCode::kConflict));
  EXPECT_NE(again.status().message().find("\"c1\""), std::string::npos);
  EXPECT_EQ(All().size(), 1u);
}

TEST(EnqueueOutcomeName, Names) {
  EXPECT_STREQ(EnqueueOutcomeName(EnqueueOutcome::kQueued), "queued");
  EXPECT_STREQ(EnqueueOutcomeName(EnqueueOutcome::kCoalesced), "coalesced");
  EXPECT_STREQ(EnqueueOutcomeName(EnqueueOutcome::kCancelled), "cancelled");
  EXPECT_STREQ(EnqueueOutcomeName(EnqueueOutcome::kDuplicate), "duplicate");
}

// ---- Coalescing: the table of DESIGN.md section 5

TEST_F(QueueTest, CreatedThenUpdatedIsCreatedWithMergedFields) {
  ChangeInput create = Created("n1", R"({"title":"a","body":"x"})", "c1");
  create.timestamp = 100;
  Enqueue(create);
  clock_.Advance(50);
  ChangeInput update = Updated("n1", R"({"body":"y","tags":[1]})", "c2");
  update.timestamp = 200;
  EnqueueResult result = Enqueue(update);
  EXPECT_EQ(result.outcome, EnqueueOutcome::kCoalesced);
  EXPECT_EQ(result.change_id, "c2");
  EXPECT_EQ(result.into, "c1");

  std::vector<Change> all = All();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].change_id, "c1");
  EXPECT_EQ(all[0].type, ChangeType::kCreated);
  EXPECT_EQ(all[0].data, R"({"title":"a","body":"y","tags":[1]})");
  EXPECT_EQ(all[0].timestamp, 200);  // the newest edit's time
  EXPECT_EQ(all[0].created_at, kStart);
  EXPECT_EQ(all[0].updated_at, kStart + 50);
  EXPECT_EQ(all[0].status, ChangeStatus::kPending);
}

TEST_F(QueueTest, UpdatedThenUpdatedIsUpdatedWithMergedFields) {
  Enqueue(Updated("n1", R"({"a":1,"b":{"x":1}})", "c1"));
  EnqueueResult second = Enqueue(Updated("n1", R"({"b":{"y":2},"c":3})", "c2"));
  EnqueueResult third = Enqueue(Updated("n1", R"({"a":9})", "c3"));
  EXPECT_EQ(second.outcome, EnqueueOutcome::kCoalesced);
  EXPECT_EQ(third.outcome, EnqueueOutcome::kCoalesced);
  EXPECT_EQ(third.into, "c1");
  std::vector<Change> all = All();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].type, ChangeType::kUpdated);
  EXPECT_EQ(all[0].data, R"({"a":9,"b":{"y":2},"c":3})");
}

TEST_F(QueueTest, UpdatedThenDeletedIsDeleted) {
  Enqueue(Updated("n1", R"({"a":1})", "c1"));
  EnqueueResult result = Enqueue(Deleted("n1", "c2"));
  EXPECT_EQ(result.outcome, EnqueueOutcome::kCoalesced);
  EXPECT_EQ(result.into, "c1");
  std::vector<Change> all = All();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].change_id, "c1");
  EXPECT_EQ(all[0].type, ChangeType::kDeleted);
  EXPECT_EQ(all[0].data, std::nullopt);
}

TEST_F(QueueTest, CreatedThenDeletedLeavesNothingAndRemembersBothIds) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  Enqueue(Created("other", R"({"b":1})", "keep"));
  EnqueueResult result = Enqueue(Deleted("n1", "c2"));
  EXPECT_EQ(result.outcome, EnqueueOutcome::kCancelled);
  EXPECT_EQ(result.change_id, "c2");
  EXPECT_EQ(Ids(All()), std::vector<std::string>{"keep"});

  // Both changeIds are known: re-enqueueing either is a CONFLICT...
  EXPECT_TRUE(HasCode(queue_->Enqueue(Created("n1", R"({"a":1})", "c1")), StatusCode::kConflict));
  EXPECT_TRUE(HasCode(queue_->Enqueue(Deleted("n1", "c2")), StatusCode::kConflict));
  // ...and re-importing them is skipped, so a replayed legacy dump cannot resurrect the entity.
  Result<ImportResult> imported =
      queue_->ImportLegacy({Created("n1", R"({"a":1})", "c1"), Deleted("n1", "c2")}, 0);
  ASSERT_TRUE(IsOk(imported));
  EXPECT_EQ(imported.value().imported, 0);
  EXPECT_EQ(imported.value().skipped, 2);
  EXPECT_EQ(Ids(All()), std::vector<std::string>{"keep"});
  EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM change_aliases WHERE merged_into IS NULL"), 2);
}

TEST_F(QueueTest, CreatedUpdatedThenDeletedLeavesNothing) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  Enqueue(Updated("n1", R"({"a":2})", "c2"));
  EnqueueResult result = Enqueue(Deleted("n1", "c3"));
  EXPECT_EQ(result.outcome, EnqueueOutcome::kCancelled);
  EXPECT_TRUE(All().empty());
  for (const char* id : {"c1", "c2", "c3"}) {
    EXPECT_TRUE(HasCode(queue_->Enqueue(Deleted("n1", std::string(id))), StatusCode::kConflict)) << id;
  }
}

TEST_F(QueueTest, ACoalescedChangeIdIsRememberedAsAnAlias) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  Enqueue(Updated("n1", R"({"a":2})", "c2"));
  EXPECT_TRUE(HasCode(queue_->Enqueue(Updated("n9", R"({"a":3})", "c2")), StatusCode::kConflict));
  EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM change_aliases WHERE change_id = 'c2' AND merged_into = 'c1'"), 1);
  Result<ImportResult> imported = queue_->ImportLegacy({Updated("n1", R"({"a":2})", "c2")}, 0);
  ASSERT_TRUE(IsOk(imported));
  EXPECT_EQ(imported.value().skipped, 1);
  EXPECT_EQ(All().size(), 1u);
}

TEST_F(QueueTest, OtherCombinationsAppend) {
  struct Case {
    ChangeType first, second;
  };
  const Case cases[] = {
      {ChangeType::kCreated, ChangeType::kCreated}, {ChangeType::kUpdated, ChangeType::kCreated},
      {ChangeType::kDeleted, ChangeType::kCreated}, {ChangeType::kDeleted, ChangeType::kUpdated},
      {ChangeType::kDeleted, ChangeType::kDeleted},
  };
  int n = 0;
  for (const Case& c : cases) {
    const std::string entity = "e" + std::to_string(n++);
    auto make = [&](ChangeType type, const std::string& data) {
      return MakeChange(type, entity, type == ChangeType::kDeleted ? std::nullopt : std::optional<std::string>(data));
    };
    EXPECT_EQ(Enqueue(make(c.first, R"({"v":1})")).outcome, EnqueueOutcome::kQueued);
    EXPECT_EQ(Enqueue(make(c.second, R"({"v":2})")).outcome, EnqueueOutcome::kQueued)
        << ChangeTypeName(c.first) << "+" << ChangeTypeName(c.second);
    Result<std::vector<Change>> pending = queue_->Pending(0, std::nullopt);
    ASSERT_TRUE(IsOk(pending));
    int64_t for_entity = 0;
    for (const Change& change : pending.value()) for_entity += change.entity_id == entity;
    EXPECT_EQ(for_entity, 2) << ChangeTypeName(c.first) << "+" << ChangeTypeName(c.second);
  }
}

TEST_F(QueueTest, DeletedThenCreatedThenUpdatedCoalescesOnlyTheNewest) {
  Enqueue(Deleted("n1", "d"));
  Enqueue(Created("n1", R"({"a":1})", "c"));
  EXPECT_EQ(Enqueue(Updated("n1", R"({"b":2})", "u")).outcome, EnqueueOutcome::kCoalesced);
  std::vector<Change> all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].type, ChangeType::kDeleted);
  EXPECT_EQ(all[1].type, ChangeType::kCreated);
  EXPECT_EQ(all[1].data, R"({"a":1,"b":2})");
  // And a DELETED now cancels the re-creation but keeps the earlier delete.
  EXPECT_EQ(Enqueue(Deleted("n1", "d2")).outcome, EnqueueOutcome::kCancelled);
  EXPECT_EQ(Ids(All()), std::vector<std::string>{"d"});
}

TEST_F(QueueTest, ACreatedIsQueuedAsItIsAfterAnyPendingChangeOfItsEntity) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  EXPECT_EQ(Enqueue(Created("n1", R"({"a":2})", "c2")).outcome, EnqueueOutcome::kQueued);
  Enqueue(Updated("n2", R"({"b":1})", "u1"));
  EXPECT_EQ(Enqueue(Created("n2", R"({"b":2})", "c3")).outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(Ids(All()), (std::vector<std::string>{"c1", "c2", "u1", "c3"}));
  EXPECT_EQ(Find("c1")->data, R"({"a":1})");
  EXPECT_EQ(Find("c2")->data, R"({"a":2})");
  // The newest CREATED is the one a later UPDATED folds into.
  EXPECT_EQ(Enqueue(Updated("n1", R"({"z":3})", "u2")).outcome, EnqueueOutcome::kCoalesced);
  EXPECT_EQ(Find("c1")->data, R"({"a":1})");
  EXPECT_EQ(Find("c2")->data, R"({"a":2,"z":3})");
}

TEST_F(QueueTest, CoalescingIsPerEntity) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  Enqueue(MakeChange(ChangeType::kUpdated, "n1", R"({"a":2})", "other-type", "task"));
  Enqueue(Updated("n2", R"({"a":3})", "c3"));
  EXPECT_EQ(All().size(), 3u);
  EXPECT_EQ(Find("c1")->data, R"({"a":1})");
}

TEST_F(QueueTest, CoalesceFalseNeverMerges) {
  Reset(false);
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  EXPECT_EQ(Enqueue(Updated("n1", R"({"a":2})", "c2")).outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(Enqueue(Updated("n1", R"({"b":3})", "c3")).outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(Enqueue(Deleted("n1", "c4")).outcome, EnqueueOutcome::kQueued);
  Enqueue(Created("n2", R"({"a":1})", "c5"));
  EXPECT_EQ(Enqueue(Deleted("n2", "c6")).outcome, EnqueueOutcome::kQueued);
  std::vector<Change> all = All();
  EXPECT_EQ(Ids(all), (std::vector<std::string>{"c1", "c2", "c3", "c4", "c5", "c6"}));
  EXPECT_EQ(all[0].data, R"({"a":1})");
  EXPECT_EQ(all[1].data, R"({"a":2})");
  EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM change_aliases"), 0);
}

TEST_F(QueueTest, AnInFlightChangeIsNeverRewritten) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  ASSERT_EQ(Ids(Take(10)), std::vector<std::string>{"c1"});

  EXPECT_EQ(Enqueue(Updated("n1", R"({"a":2})", "c2")).outcome, EnqueueOutcome::kQueued);
  // The next change coalesces into the new pending one, not into the one in flight.
  EXPECT_EQ(Enqueue(Updated("n1", R"({"b":3})", "c3")).outcome, EnqueueOutcome::kCoalesced);
  std::vector<Change> all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].change_id, "c1");
  EXPECT_EQ(all[0].status, ChangeStatus::kSyncing);
  EXPECT_EQ(all[0].type, ChangeType::kCreated);
  EXPECT_EQ(all[0].data, R"({"a":1})");
  EXPECT_EQ(all[1].change_id, "c2");
  EXPECT_EQ(all[1].data, R"({"a":2,"b":3})");

  // A DELETED after an in-flight CREATED must be sent: the server may already have it.
  Enqueue(Created("n2", R"({"a":1})", "d1"));
  ASSERT_EQ(Ids(Take(0)), std::vector<std::string>{"d1"});
  EXPECT_EQ(Enqueue(Deleted("n2", "d2")).outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(Find("d1")->type, ChangeType::kCreated);
  EXPECT_EQ(Find("d2")->type, ChangeType::kDeleted);
}

TEST_F(QueueTest, AFailedChangeIsNotRewritten) {
  Enqueue(Updated("n1", R"({"a":1})", "c1"));
  ASSERT_EQ(Take(10).size(), 1u);
  Result<ChangeStatus> status = queue_->MarkFailed("c1", "rejected", 1);
  ASSERT_TRUE(IsOk(status));
  ASSERT_EQ(status.value(), ChangeStatus::kFailed);

  EXPECT_EQ(Enqueue(Updated("n1", R"({"a":2})", "c2")).outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(Find("c1")->data, R"({"a":1})");
  EXPECT_EQ(Find("c1")->status, ChangeStatus::kFailed);
  EXPECT_EQ(Find("c2")->data, R"({"a":2})");
}

TEST_F(QueueTest, ASyncedChangeIsNotRewritten) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  ASSERT_EQ(Take(10).size(), 1u);
  ASSERT_TRUE(IsOk(queue_->MarkSynced("c1", 5)));
  EXPECT_EQ(Enqueue(Updated("n1", R"({"a":2})", "c2")).outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(Enqueue(Deleted("n1", "c3")).outcome, EnqueueOutcome::kCoalesced);  // UPDATED+DELETED
  std::vector<Change> all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].status, ChangeStatus::kSynced);
  EXPECT_EQ(all[0].type, ChangeType::kCreated);
  EXPECT_EQ(all[1].type, ChangeType::kDeleted);
}

TEST_F(QueueTest, CoalescedDataWithoutAPatchKeepsTheStoredFields) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  EXPECT_EQ(Enqueue(MakeChange(ChangeType::kUpdated, "n1", std::nullopt, "c2")).outcome, EnqueueOutcome::kCoalesced);
  EXPECT_EQ(Find("c1")->data, R"({"a":1})");
}

TEST_F(QueueTest, CoalescingKeepsTheNewerTimestamp) {
  ChangeInput first = Updated("n1", R"({"a":1})", "c1");
  first.timestamp = 500;
  Enqueue(first);
  ChangeInput older = Updated("n1", R"({"a":2})", "c2");
  older.timestamp = 400;  // a clock that went backwards must not move the change back in time
  Enqueue(older);
  EXPECT_EQ(Find("c1")->timestamp, 500);
  EXPECT_EQ(Find("c1")->data, R"({"a":2})");
}

// ---- Enqueue atomicity

TEST_F(QueueTest, EnqueueJoinsTheCallersTransaction) {
  {
    Transaction tx(*db_);
    ASSERT_TRUE(IsOk(tx.status()));
    Enqueue(Created("n1", R"({"a":1})", "c1"));
    Enqueue(Deleted("n1", "c2"));  // cancels, writing aliases
    Enqueue(Created("n2", R"({"a":1})", "c3"));
  }  // rolled back
  EXPECT_TRUE(All().empty());
  EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM change_aliases"), 0);
  // The rolled-back ids are free again.
  EXPECT_EQ(Enqueue(Created("n1", R"({"a":1})", "c1")).outcome, EnqueueOutcome::kQueued);
}

TEST_F(QueueTest, AFailedEnqueueInsideTheCallersTransactionUndoesOnlyItself) {
  {
    Transaction tx(*db_);
    ASSERT_TRUE(IsOk(tx.status()));
    Enqueue(Created("n1", R"({"a":1})", "c1"));
    EXPECT_TRUE(HasCode(queue_->Enqueue(Created("n2", "{}", "c1")), StatusCode::kConflict));
    EXPECT_TRUE(HasCode(queue_->EnqueueMany({Updated("n1", R"({"b":2})", "c2"), Created("n3", "{}", "c1")}),
                        StatusCode::kConflict));
    EXPECT_TRUE(db_->InTransaction());
    ASSERT_TRUE(IsOk(tx.Commit()));
  }
  std::vector<Change> all = All();
  ASSERT_EQ(Ids(all), std::vector<std::string>{"c1"});
  EXPECT_EQ(all[0].data, R"({"a":1})");  // the rolled-back batch's coalesce was undone too
  EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM change_aliases"), 0);
}

TEST_F(QueueTest, EnqueueManyIsAllOrNothing) {
  Enqueue(Created("n0", "{}", "existing"));
  Result<std::vector<EnqueueResult>> result = queue_->EnqueueMany(
      {Created("n1", "{}", "a"), Updated("n1", R"({"x":1})", "b"), Created("n2", "{}", "existing")});
  EXPECT_TRUE(HasCode(result, StatusCode::kConflict));
  EXPECT_EQ(result.status().message().rfind("changes[2]: ", 0), 0u) << result.status().message();
  EXPECT_EQ(Ids(All()), std::vector<std::string>{"existing"});
  EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM change_aliases"), 0);

  Result<std::vector<EnqueueResult>> dup =
      queue_->EnqueueMany({Created("n1", "{}", "a"), Created("n2", "{}", "a")});
  EXPECT_TRUE(HasCode(dup, StatusCode::kConflict));
  EXPECT_EQ(All().size(), 1u);
}

TEST_F(QueueTest, EnqueueManyKeepsOrderAndCoalescesWithinTheBatch) {
  Result<std::vector<EnqueueResult>> result = queue_->EnqueueMany({
      Created("n1", R"({"a":1})", "a"),
      Created("n2", R"({"a":1})", "b"),
      Updated("n1", R"({"b":2})", "c"),
      Deleted("n2", "d"),
      Updated("n3", R"({"z":0})", "e"),
  });
  ASSERT_TRUE(IsOk(result));
  ASSERT_EQ(result.value().size(), 5u);
  EXPECT_EQ(result.value()[0].outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(result.value()[2].outcome, EnqueueOutcome::kCoalesced);
  EXPECT_EQ(result.value()[2].into, "a");
  EXPECT_EQ(result.value()[3].outcome, EnqueueOutcome::kCancelled);
  EXPECT_EQ(Ids(All()), (std::vector<std::string>{"a", "e"}));
  EXPECT_EQ(Find("a")->data, R"({"a":1,"b":2})");
}

// ---- Batch taking

TEST_F(QueueTest, TakeBatchTakesOldestFirstWithinTheLimit) {
  for (int i = 0; i < 5; ++i) {
    Enqueue(Created("n" + std::to_string(i), "{}", "c" + std::to_string(i)));
    clock_.Advance(1);
  }
  clock_.Advance(100);
  std::vector<Change> first = Take(2);
  EXPECT_EQ(Ids(first), (std::vector<std::string>{"c0", "c1"}));
  for (const Change& change : first) {
    EXPECT_EQ(change.status, ChangeStatus::kSyncing);
    EXPECT_EQ(change.updated_at, clock_.NowMs());
  }
  EXPECT_EQ(Ids(Take(2)), (std::vector<std::string>{"c2", "c3"}));
  EXPECT_EQ(Ids(Take(2)), (std::vector<std::string>{"c4"}));
  EXPECT_TRUE(Take(2).empty());
  Result<QueueStats> stats = queue_->Stats();
  ASSERT_TRUE(IsOk(stats));
  EXPECT_EQ(stats.value().syncing, 5);
  EXPECT_EQ(stats.value().pending, 0);
}

TEST_F(QueueTest, TakeBatchWithoutALimitTakesEverythingEligible) {
  for (int i = 0; i < 4; ++i) Enqueue(Created("n" + std::to_string(i), "{}"));
  EXPECT_EQ(Take(0).size(), 4u);
  for (int i = 0; i < 3; ++i) Enqueue(Created("m" + std::to_string(i), "{}"));
  EXPECT_EQ(Take(-1).size(), 3u);
}

TEST_F(QueueTest, TakeBatchKeepsPerEntityOrder) {
  Reset(false);
  Enqueue(Created("x", R"({"v":1})", "x1"));
  Enqueue(Created("y", R"({"v":1})", "y1"));
  Enqueue(Updated("x", R"({"v":2})", "x2"));
  Enqueue(Updated("x", R"({"v":3})", "x3"));
  // One change per entity per batch, oldest first: x2 goes out only once x1 is acknowledged.
  EXPECT_EQ(Ids(Take(10)), (std::vector<std::string>{"x1", "y1"}));
  EXPECT_TRUE(Take(10).empty());
  ASSERT_TRUE(IsOk(queue_->MarkSynced("x1", 1)));
  EXPECT_EQ(Ids(Take(10)), (std::vector<std::string>{"x2"}));
  ASSERT_TRUE(IsOk(queue_->MarkSynced("x2", 2)));
  EXPECT_EQ(Ids(Take(10)), (std::vector<std::string>{"x3"}));
}

TEST_F(QueueTest, NothingIsTakenBehindAnInFlightChangeOfTheSameEntity) {
  Reset(false);
  Enqueue(Created("x", "{}", "x1"));
  ASSERT_EQ(Ids(Take(1)), std::vector<std::string>{"x1"});
  Enqueue(Updated("x", R"({"v":2})", "x2"));
  Enqueue(Created("y", "{}", "y1"));
  EXPECT_EQ(Ids(Take(10)), std::vector<std::string>{"y1"});  // x2 waits behind x1
  EXPECT_TRUE(Take(10).empty());
  ASSERT_TRUE(IsOk(queue_->MarkSynced("x1", 1)));
  EXPECT_EQ(Ids(Take(10)), std::vector<std::string>{"x2"});
}

TEST_F(QueueTest, AFailedChangeBlocksOnlyItsOwnEntity) {
  Reset(false);
  Enqueue(Created("x", "{}", "x1"));
  Enqueue(Created("y", "{}", "y1"));
  ASSERT_EQ(Take(10).size(), 2u);
  Result<ChangeStatus> failed = queue_->MarkFailed("x1", "HTTP 422", 1);
  ASSERT_TRUE(IsOk(failed));
  EXPECT_EQ(failed.value(), ChangeStatus::kFailed);
  ASSERT_TRUE(IsOk(queue_->MarkSynced("y1", 1)));

  Enqueue(Updated("x", R"({"v":2})", "x2"));
  Enqueue(Updated("y", R"({"v":2})", "y2"));
  Enqueue(Created("z", "{}", "z1"));
  EXPECT_EQ(Ids(Take(10)), (std::vector<std::string>{"y2", "z1"}));  // x2 waits behind the failed x1
  EXPECT_TRUE(Take(10).empty());

  // retryFailed() unblocks it, in order.
  Result<int64_t> retried = queue_->RetryFailed();
  ASSERT_TRUE(IsOk(retried));
  EXPECT_EQ(retried.value(), 1);
  EXPECT_EQ(Ids(Take(10)), (std::vector<std::string>{"x1"}));
  ASSERT_TRUE(IsOk(queue_->MarkSynced("x1", 3)));
  EXPECT_EQ(Ids(Take(10)), (std::vector<std::string>{"x2"}));
}

TEST_F(QueueTest, DiscardingTheFailedChangeUnblocksItsEntity) {
  Reset(false);
  Enqueue(Created("x", "{}", "x1"));
  ASSERT_EQ(Take(10).size(), 1u);
  ASSERT_TRUE(IsOk(queue_->MarkFailed("x1", "bad", 0)));
  Enqueue(Updated("x", R"({"v":2})", "x2"));
  EXPECT_TRUE(Take(10).empty());
  ASSERT_TRUE(IsOk(queue_->Discard("x1")));
  EXPECT_EQ(Ids(Take(10)), std::vector<std::string>{"x2"});
}

// ---- MarkSynced / MarkFailed / ReleaseInFlight

TEST_F(QueueTest, MarkSyncedRecordsVersionTimeAndLastSync) {
  Enqueue(Created("n1", "{}", "c1"));
  Enqueue(Created("n2", "{}", "c2"));
  Take(10);
  clock_.Advance(1000);
  ASSERT_TRUE(IsOk(queue_->MarkSynced("c1", 42)));
  ASSERT_TRUE(IsOk(queue_->MarkSynced("c2", std::nullopt)));
  std::optional<Change> c1 = Find("c1");
  EXPECT_EQ(c1->status, ChangeStatus::kSynced);
  EXPECT_EQ(c1->server_version, 42);
  EXPECT_EQ(c1->synced_at, kStart + 1000);
  EXPECT_EQ(c1->updated_at, kStart + 1000);
  EXPECT_EQ(Find("c2")->server_version, std::nullopt);
  Result<QueueStats> stats = queue_->Stats();
  ASSERT_TRUE(IsOk(stats));
  EXPECT_EQ(stats.value().synced, 2);
  EXPECT_EQ(stats.value().last_sync_time, kStart + 1000);
}

TEST_F(QueueTest, MarkSyncedNeedsAChangeInFlight) {
  Enqueue(Created("n1", "{}", "c1"));
  EXPECT_TRUE(HasCode(queue_->MarkSynced("c1", 1), StatusCode::kNotFound));  // still pending
  EXPECT_TRUE(HasCode(queue_->MarkSynced("nope", 1), StatusCode::kNotFound));
  Take(1);
  ASSERT_TRUE(IsOk(queue_->MarkSynced("c1", 1)));
  EXPECT_TRUE(HasCode(queue_->MarkSynced("c1", 2), StatusCode::kNotFound));  // already synced
  EXPECT_EQ(Find("c1")->server_version, 1);
  Result<QueueStats> stats = queue_->Stats();
  EXPECT_EQ(stats.value().last_sync_time, kStart);
}

TEST_F(QueueTest, MarkFailedCountsRetriesAndFailsAtMaxRetries) {
  Enqueue(Created("n1", "{}", "c1"));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_EQ(Take(10).size(), 1u) << attempt;
    clock_.Advance(10);
    Result<ChangeStatus> status = queue_->MarkFailed("c1", "error " + std::to_string(attempt), 3);
    ASSERT_TRUE(IsOk(status));
    std::optional<Change> change = Find("c1");
    EXPECT_EQ(change->retry_count, attempt);
    EXPECT_EQ(change->last_error, "error " + std::to_string(attempt));
    EXPECT_EQ(change->updated_at, clock_.NowMs());
    if (attempt < 3) {
      EXPECT_EQ(status.value(), ChangeStatus::kPending);
      EXPECT_EQ(change->status, ChangeStatus::kPending);
    } else {
      EXPECT_EQ(status.value(), ChangeStatus::kFailed);
      EXPECT_EQ(change->status, ChangeStatus::kFailed);
    }
  }
  EXPECT_TRUE(Take(10).empty());
  Result<std::vector<Change>> failed = queue_->Failed();
  ASSERT_TRUE(IsOk(failed));
  EXPECT_EQ(Ids(failed.value()), std::vector<std::string>{"c1"});
}

TEST_F(QueueTest, MarkFailedNeedsAChangeInFlight) {
  Enqueue(Created("n1", "{}", "c1"));
  EXPECT_TRUE(HasCode(queue_->MarkFailed("c1", "x", 3), StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(queue_->MarkFailed("missing", "x", 3), StatusCode::kNotFound));
  EXPECT_EQ(Find("c1")->retry_count, 0);
}

TEST_F(QueueTest, ReleaseInFlightDoesNotCountRetries) {
  Enqueue(Created("n1", "{}", "c1"));
  Enqueue(Created("n2", "{}", "c2"));
  Enqueue(Created("n3", "{}", "c3"));
  for (int round = 0; round < 5; ++round) {
    ASSERT_EQ(Take(2).size(), 2u);
    Result<int64_t> released = queue_->ReleaseInFlight();
    ASSERT_TRUE(IsOk(released));
    EXPECT_EQ(released.value(), 2);
  }
  for (const Change& change : All()) {
    EXPECT_EQ(change.status, ChangeStatus::kPending);
    EXPECT_EQ(change.retry_count, 0);
  }
  Result<int64_t> none = queue_->ReleaseInFlight();
  ASSERT_TRUE(IsOk(none));
  EXPECT_EQ(none.value(), 0);
}

TEST_F(QueueTest, RecoverInFlightReturnsSyncingRowsToPending) {
  Enqueue(Created("n1", "{}", "c1"));
  Enqueue(Created("n2", "{}", "c2"));
  Take(1);
  Result<int64_t> recovered = queue_->RecoverInFlight();
  ASSERT_TRUE(IsOk(recovered));
  EXPECT_EQ(recovered.value(), 1);
  EXPECT_EQ(Find("c1")->status, ChangeStatus::kPending);
  EXPECT_EQ(Ids(Take(10)), (std::vector<std::string>{"c1", "c2"}));
}

// ---- Retention, retry, discard

TEST_F(QueueTest, PurgeSyncedHonoursRetention) {
  Enqueue(Created("n1", "{}", "old"));
  Enqueue(Created("n2", "{}", "new"));
  Enqueue(Created("n3", "{}", "pending"));
  Enqueue(Created("n4", "{}", "failed"));
  Take(2);  // old, new
  clock_.Set(1000000);
  ASSERT_TRUE(IsOk(queue_->MarkSynced("old", 1)));
  clock_.Set(2000000);
  ASSERT_TRUE(IsOk(queue_->MarkSynced("new", 2)));
  Take(10);
  ASSERT_TRUE(IsOk(queue_->MarkFailed("failed", "x", 1)));
  ASSERT_TRUE(IsOk(queue_->ReleaseInFlight()));  // "pending" back to pending

  clock_.Set(5000000);
  Result<int64_t> none = queue_->PurgeSynced(4000000);  // cutoff 1000000: strictly older only
  ASSERT_TRUE(IsOk(none));
  EXPECT_EQ(none.value(), 0);
  Result<int64_t> purged = queue_->PurgeSynced(3500000);  // cutoff 1500000
  ASSERT_TRUE(IsOk(purged));
  EXPECT_EQ(purged.value(), 1);
  EXPECT_EQ(Ids(All()), (std::vector<std::string>{"new", "pending", "failed"}));
  clock_.Advance(1);
  Result<int64_t> rest = queue_->PurgeSynced(0);
  ASSERT_TRUE(IsOk(rest));
  EXPECT_EQ(rest.value(), 1);
  EXPECT_EQ(Ids(All()), (std::vector<std::string>{"pending", "failed"}));  // never pending or failed
}

TEST_F(QueueTest, PurgeSyncedTakesTheOldestFirstAndAtMostMaxRows) {
  const std::vector<std::string> ids = {"s1", "s2", "s3", "s4", "s5"};
  for (const std::string& id : ids) Enqueue(Created("n-" + id, "{}", id));
  Take(10);
  // Acknowledged in an order that is not the queue's: s3 first.
  int64_t version = 0;
  for (const char* id : {"s3", "s1", "s5", "s2", "s4"}) {
    clock_.Set(1000000 + 1000 * ++version);
    ASSERT_TRUE(IsOk(queue_->MarkSynced(id, version)));
  }
  clock_.Set(9000000);
  Result<int64_t> first = queue_->PurgeSynced(0, 2);
  ASSERT_TRUE(IsOk(first));
  EXPECT_EQ(first.value(), 2);
  EXPECT_EQ(Ids(All()), (std::vector<std::string>{"s2", "s4", "s5"}));
  Result<int64_t> zero = queue_->PurgeSynced(0, 0);
  ASSERT_TRUE(IsOk(zero));
  EXPECT_EQ(zero.value(), 0);
  Result<int64_t> rest = queue_->PurgeSynced(0, 10);
  ASSERT_TRUE(IsOk(rest));
  EXPECT_EQ(rest.value(), 3);
  EXPECT_TRUE(All().empty());
}

TEST_F(QueueTest, RetryFailedResetsRetryCount) {
  Enqueue(Created("n1", "{}", "c1"));
  Enqueue(Created("n2", "{}", "c2"));
  Take(10);
  ASSERT_TRUE(IsOk(queue_->MarkFailed("c1", "boom", 1)));
  ASSERT_TRUE(IsOk(queue_->MarkFailed("c2", "soft", 5)));  // pending again, retry 1
  EXPECT_EQ(Find("c1")->status, ChangeStatus::kFailed);
  clock_.Advance(77);
  Result<int64_t> retried = queue_->RetryFailed();
  ASSERT_TRUE(IsOk(retried));
  EXPECT_EQ(retried.value(), 1);
  std::optional<Change> c1 = Find("c1");
  EXPECT_EQ(c1->status, ChangeStatus::kPending);
  EXPECT_EQ(c1->retry_count, 0);
  EXPECT_EQ(c1->updated_at, kStart + 77);
  EXPECT_EQ(Find("c2")->retry_count, 1);  // only failed rows are reset
  Result<int64_t> again = queue_->RetryFailed();
  ASSERT_TRUE(IsOk(again));
  EXPECT_EQ(again.value(), 0);
}

TEST_F(QueueTest, DiscardRemovesPendingFailedAndSyncedChanges) {
  Enqueue(Created("n1", "{}", "p"));
  Enqueue(Created("n2", "{}", "f"));
  Enqueue(Created("n3", "{}", "s"));
  Take(0);
  ASSERT_TRUE(IsOk(queue_->MarkFailed("f", "x", 1)));
  ASSERT_TRUE(IsOk(queue_->MarkSynced("s", 1)));
  ASSERT_TRUE(IsOk(queue_->ReleaseInFlight()));
  ASSERT_TRUE(IsOk(queue_->Discard("p")));
  ASSERT_TRUE(IsOk(queue_->Discard("f")));
  ASSERT_TRUE(IsOk(queue_->Discard("s")));
  EXPECT_TRUE(All().empty());
  EXPECT_TRUE(HasCode(queue_->Discard("p"), StatusCode::kNotFound));
  // A discarded changeId stays known, so a replay cannot bring it back.
  EXPECT_TRUE(HasCode(queue_->Enqueue(Created("n1", "{}", "p")), StatusCode::kConflict));
}

TEST_F(QueueTest, DiscardErrors) {
  Enqueue(Created("n1", "{}", "c1"));
  Take(1);
  Status in_flight = queue_->Discard("c1");
  EXPECT_TRUE(HasCode(in_flight, StatusCode::kConflict));
  EXPECT_NE(in_flight.message().find("in flight"), std::string::npos);
  EXPECT_EQ(Find("c1")->status, ChangeStatus::kSyncing);
  Status missing = queue_->Discard("nope");
  EXPECT_TRUE(HasCode(missing, StatusCode::kNotFound));
  EXPECT_NE(missing.message().find("\"nope\""), std::string::npos);
  EXPECT_FALSE(db_->InTransaction());
}

// ---- Reads

TEST_F(QueueTest, PendingFiltersByTypeAndLimit) {
  Enqueue(MakeChange(ChangeType::kCreated, "1", "{}", "a", "note"));
  Enqueue(MakeChange(ChangeType::kCreated, "1", "{}", "b", "task"));
  Enqueue(MakeChange(ChangeType::kCreated, "2", "{}", "c", "note"));
  Enqueue(MakeChange(ChangeType::kCreated, "3", "{}", "d", "note"));
  auto pending = [&](int64_t limit, std::optional<std::string> type) {
    Result<std::vector<Change>> result = queue_->Pending(limit, type);
    EXPECT_TRUE(IsOk(result));
    return Ids(result.value());
  };
  EXPECT_EQ(pending(0, std::nullopt), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(pending(2, std::nullopt), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(pending(0, "note"), (std::vector<std::string>{"a", "c", "d"}));
  EXPECT_EQ(pending(2, "note"), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(pending(0, "none"), std::vector<std::string>{});
  Take(1);
  EXPECT_EQ(pending(0, std::nullopt), (std::vector<std::string>{"b", "c", "d"}));
}

TEST_F(QueueTest, StatsCountsByStatusAndEntityType) {
  Result<QueueStats> empty = queue_->Stats();
  ASSERT_TRUE(IsOk(empty));
  EXPECT_EQ(empty.value().pending, 0);
  EXPECT_EQ(empty.value().oldest_pending_at, std::nullopt);
  EXPECT_EQ(empty.value().last_sync_time, std::nullopt);
  EXPECT_TRUE(empty.value().by_entity_type.empty());

  Enqueue(MakeChange(ChangeType::kCreated, "1", "{}", "a", "note"));
  clock_.Advance(10);
  Enqueue(MakeChange(ChangeType::kCreated, "2", "{}", "b", "note"));
  Enqueue(MakeChange(ChangeType::kCreated, "1", "{}", "c", "task"));
  Enqueue(MakeChange(ChangeType::kCreated, "2", "{}", "d", "task"));
  Take(1);                                          // a syncing
  Take(1);                                          // b syncing
  ASSERT_TRUE(IsOk(queue_->MarkSynced("a", 1)));    // a synced
  ASSERT_TRUE(IsOk(queue_->MarkFailed("b", "x", 1)));  // b failed
  Result<QueueStats> stats = queue_->Stats();
  ASSERT_TRUE(IsOk(stats));
  EXPECT_EQ(stats.value().pending, 2);
  EXPECT_EQ(stats.value().syncing, 0);
  EXPECT_EQ(stats.value().failed, 1);
  EXPECT_EQ(stats.value().synced, 1);
  EXPECT_EQ(stats.value().oldest_pending_at, kStart + 10);
  EXPECT_EQ(stats.value().last_sync_time, kStart + 10);
  ASSERT_EQ(stats.value().by_entity_type.size(), 2u);
  EXPECT_EQ(stats.value().by_entity_type.at("note").failed, 1);
  EXPECT_EQ(stats.value().by_entity_type.at("note").pending, 0);
  EXPECT_EQ(stats.value().by_entity_type.at("task").pending, 2);
  Take(1);
  stats = queue_->Stats();
  EXPECT_EQ(stats.value().syncing, 1);
  EXPECT_EQ(stats.value().by_entity_type.at("task").syncing, 1);

  Result<QueueStats> totals = queue_->Stats(QueueStatsDetail::kUnsyncedTotals);
  ASSERT_TRUE(IsOk(totals));
  EXPECT_EQ(totals.value().pending, 1);
  EXPECT_EQ(totals.value().syncing, 1);
  EXPECT_EQ(totals.value().failed, 1);
  EXPECT_EQ(totals.value().last_sync_time, kStart + 10);
  EXPECT_EQ(totals.value().synced, 0);
  EXPECT_EQ(totals.value().oldest_pending_at, std::nullopt);
  EXPECT_TRUE(totals.value().by_entity_type.empty());
}

// ---- Legacy import

TEST_F(QueueTest, ImportLegacyIsIdempotentAndCarriesRetryState) {
  ChangeInput a = Created("n1", R"({"a":1})", "a");
  a.retry_count = 2;
  a.last_error = "boom";
  a.timestamp = 10;
  ChangeInput b = Updated("n2", R"({"b":1})", "b");
  Result<ImportResult> first = queue_->ImportLegacy({a, b}, 3);
  ASSERT_TRUE(IsOk(first));
  EXPECT_EQ(first.value().imported, 2);
  EXPECT_EQ(first.value().skipped, 3);  // counted by the decoder (synced rows)
  std::optional<Change> stored = Find("a");
  EXPECT_EQ(stored->retry_count, 2);
  EXPECT_EQ(stored->last_error, "boom");
  EXPECT_EQ(stored->timestamp, 10);
  EXPECT_EQ(stored->status, ChangeStatus::kPending);

  Result<ImportResult> second = queue_->ImportLegacy({a, b}, 0);
  ASSERT_TRUE(IsOk(second));
  EXPECT_EQ(second.value().imported, 0);
  EXPECT_EQ(second.value().skipped, 2);
  EXPECT_EQ(All().size(), 2u);
}

TEST_F(QueueTest, ImportLegacyCoalescesLikeEnqueueAndReplaysCleanly) {
  const std::vector<ChangeInput> dump = {Created("n1", R"({"a":1})", "a"), Updated("n1", R"({"b":2})", "b"),
                                         Created("n2", R"({"a":1})", "c"), Deleted("n2", "d")};
  Result<ImportResult> first = queue_->ImportLegacy(dump, 0);
  ASSERT_TRUE(IsOk(first));
  EXPECT_EQ(first.value().imported, 4);
  EXPECT_EQ(Ids(All()), std::vector<std::string>{"a"});
  EXPECT_EQ(Find("a")->data, R"({"a":1,"b":2})");
  Result<ImportResult> replay = queue_->ImportLegacy(dump, 0);
  ASSERT_TRUE(IsOk(replay));
  EXPECT_EQ(replay.value().imported, 0);
  EXPECT_EQ(replay.value().skipped, 4);
  EXPECT_EQ(Ids(All()), std::vector<std::string>{"a"});
}


// ---- The attempts rule: a change that was ever taken for sending is never rewritten,
// even once it is pending again (the server may already hold its changeId).

class AttemptsTest : public QueueTest {
 protected:
  int64_t Attempts(const std::string& change_id) {
    return QueryInt(*db_, "SELECT attempts FROM changes WHERE change_id = '" + change_id + "'");
  }
  // After `sent` went out and came back to pending: a new UPDATED for its entity is
  // appended, a DELETED for another such entity does not cancel its CREATED.
  void ExpectAppended(const std::string& sent_update, const std::string& sent_delete) {
    std::optional<Change> update_target = Find(sent_update);
    std::optional<Change> delete_target = Find(sent_delete);
    ASSERT_TRUE(update_target && delete_target);
    EXPECT_EQ(update_target->status, ChangeStatus::kPending);
    EXPECT_EQ(delete_target->status, ChangeStatus::kPending);
    EXPECT_GE(Attempts(sent_update), 1);
    EXPECT_GE(Attempts(sent_delete), 1);
    const std::string before_update = update_target->data.value_or("");
    EnqueueResult update = Enqueue(Updated(update_target->entity_id, R"({"later":1})", sent_update + "-u"));
    EXPECT_EQ(update.outcome, EnqueueOutcome::kQueued);
    EnqueueResult remove = Enqueue(Deleted(delete_target->entity_id, sent_delete + "-d"));
    EXPECT_EQ(remove.outcome, EnqueueOutcome::kQueued);
    EXPECT_EQ(Find(sent_update)->data, before_update);  // never rewritten
    EXPECT_EQ(Find(sent_update)->type, update_target->type);
    ASSERT_TRUE(Find(sent_delete));  // never cancelled
    EXPECT_EQ(Find(sent_update + "-u")->data, R"({"later":1})");
    ASSERT_TRUE(Find(sent_delete + "-d"));
    // The appended changes are fresh: they still coalesce with what follows them.
    EXPECT_EQ(Enqueue(Updated(update_target->entity_id, R"({"more":2})")).outcome, EnqueueOutcome::kCoalesced);
    EXPECT_EQ(Find(sent_update + "-u")->data, R"({"later":1,"more":2})");
  }
};

TEST_F(AttemptsTest, AFreshPendingChangeHasNoAttemptsAndCoalesces) {
  Enqueue(Created("n1", R"({"a":1})", "c1"));
  EXPECT_EQ(Attempts("c1"), 0);
  EXPECT_EQ(Enqueue(Updated("n1", R"({"b":2})", "c2")).outcome, EnqueueOutcome::kCoalesced);
}

TEST_F(AttemptsTest, TakeBatchCountsAttempts) {
  Enqueue(Created("n1", "{}", "c1"));
  Take(10);
  EXPECT_EQ(Attempts("c1"), 1);
  ASSERT_TRUE(IsOk(queue_->ReleaseInFlight()));
  Take(10);
  EXPECT_EQ(Attempts("c1"), 2);
  EXPECT_EQ(Find("c1")->retry_count, 0);  // attempts are not retries
}

TEST_F(AttemptsTest, AfterReleaseInFlight) {
  Enqueue(Created("n1", R"({"a":1})", "u"));
  Enqueue(Created("n2", R"({"a":1})", "d"));
  ASSERT_EQ(Take(10).size(), 2u);
  ASSERT_TRUE(IsOk(queue_->ReleaseInFlight()));
  ExpectAppended("u", "d");
}

TEST_F(AttemptsTest, AfterMarkFailedBelowMaxRetries) {
  Enqueue(Updated("n1", R"({"a":1})", "u"));
  Enqueue(Created("n2", R"({"a":1})", "d"));
  ASSERT_EQ(Take(10).size(), 2u);
  for (const char* id : {"u", "d"}) {
    Result<ChangeStatus> status = queue_->MarkFailed(id, "HTTP 422", 5);
    ASSERT_TRUE(IsOk(status));
    EXPECT_EQ(status.value(), ChangeStatus::kPending);
  }
  ExpectAppended("u", "d");
}

TEST_F(AttemptsTest, AfterRetryFailed) {
  Enqueue(Updated("n1", R"({"a":1})", "u"));
  Enqueue(Created("n2", R"({"a":1})", "d"));
  Take(10);
  ASSERT_TRUE(IsOk(queue_->MarkFailed("u", "x", 1)));
  ASSERT_TRUE(IsOk(queue_->MarkFailed("d", "x", 1)));
  ASSERT_TRUE(IsOk(queue_->RetryFailed()));
  EXPECT_EQ(Find("u")->retry_count, 0);
  ExpectAppended("u", "d");
}

TEST_F(AttemptsTest, AfterImportLegacyWithRetries) {
  ChangeInput u = Updated("n1", R"({"a":1})", "u");
  u.retry_count = 2;
  ChangeInput d = Created("n2", R"({"a":1})", "d");
  d.retry_count = 1;
  ChangeInput fresh = Created("n3", R"({"a":1})", "fresh");
  ASSERT_TRUE(IsOk(queue_->ImportLegacy({u, d, fresh}, 0)));
  EXPECT_EQ(Attempts("fresh"), 0);
  ExpectAppended("u", "d");
  // A legacy record that was never tried coalesces as usual.
  EXPECT_EQ(Enqueue(Updated("n3", R"({"b":2})")).outcome, EnqueueOutcome::kCoalesced);
}

TEST_F(AttemptsTest, RewriteUnsentRefusesASentChange) {
  Enqueue(Updated("n1", R"({"a":1})", "sent"));
  Enqueue(Updated("n2", R"({"a":1})", "unsent"));
  Take(1);
  ASSERT_TRUE(IsOk(queue_->ReleaseInFlight()));
  EXPECT_TRUE(HasCode(queue_->RewriteUnsent(Find("sent")->id, ChangeType::kUpdated, R"({"b":2})"),
                      StatusCode::kConflict));
  EXPECT_EQ(Find("sent")->data, R"({"a":1})");
  ASSERT_TRUE(IsOk(queue_->RewriteUnsent(Find("unsent")->id, ChangeType::kCreated, R"({"b":2})")));
  EXPECT_EQ(Find("unsent")->data, R"({"b":2})");
  EXPECT_EQ(Find("unsent")->type, ChangeType::kCreated);
}

TEST(AttemptsAcrossACrash, ChangesRecoveredAtOpenAreNotCoalesced) {
  TempDir dir;
  ClientOptions options;
  options.path = dir.File("crash.db");
  auto clock = std::make_shared<ManualClock>(kStart);
  {
    Result<std::unique_ptr<Client>> client = Client::Open(options, clock, std::make_shared<SeededRandom>(1));
    ASSERT_TRUE(IsOk(client));
    ChangeQueue& queue = client.value()->queue();
    ASSERT_TRUE(IsOk(queue.Enqueue(Created("n1", R"({"a":1})", "u"))));
    ASSERT_TRUE(IsOk(queue.Enqueue(Created("n2", R"({"a":1})", "d"))));
    ASSERT_TRUE(IsOk(queue.TakeBatch(0)));
    // The process dies with both changes in flight.
  }
  Result<std::unique_ptr<Client>> reopened = Client::Open(options, clock, std::make_shared<SeededRandom>(2));
  ASSERT_TRUE(IsOk(reopened));
  Client& client = *reopened.value();
  EXPECT_EQ(client.recovered_at_open(), 2);
  ChangeQueue& queue = client.queue();
  Result<EnqueueResult> update = queue.Enqueue(Updated("n1", R"({"b":2})", "u2"));
  ASSERT_TRUE(IsOk(update));
  EXPECT_EQ(update.value().outcome, EnqueueOutcome::kQueued);
  Result<EnqueueResult> remove = queue.Enqueue(Deleted("n2", "d2"));
  ASSERT_TRUE(IsOk(remove));
  EXPECT_EQ(remove.value().outcome, EnqueueOutcome::kQueued);
  Result<std::vector<Change>> all = queue.All();
  ASSERT_TRUE(IsOk(all));
  ASSERT_EQ(all.value().size(), 4u);
  EXPECT_EQ(all.value()[0].data, R"({"a":1})");
  EXPECT_EQ(all.value()[0].status, ChangeStatus::kPending);
}

}  // namespace
}  // namespace deltasync
