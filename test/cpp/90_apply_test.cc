// 90: delta application: chunked application of decoded pages
// with the server cursor, local pending changes kept on top of pulled state,
// every conflict strategy, manual conflicts and their resolution, own-change
// echoes, and the rule that in-flight local changes are never touched.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/apply.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::kTestStartMs;
using testing_util::Created;
using testing_util::Page;
using testing_util::QueryInt;
using testing_util::Remote;
using testing_util::StoreHarness;

// ---- ApplyChunk without local changes

class ApplyTest : public ::testing::Test {
 protected:
  StoreHarness h_;
};

TEST_F(ApplyTest, AppliesCreatedUpdatedAndDeleted) {
  ApplyResult result = h_.Pull(Page({Remote(1, "CREATED", "n1", R"({"a":1,"b":2})"),
                                     Remote(2, "UPDATED", "n1", R"({"b":3,"c":{"d":4}})"),
                                     Remote(3, "CREATED", "n2", R"({"x":1})"), Remote(4, "DELETED", "n2", std::nullopt),
                                     Remote(5, "UPDATED", "n3", R"({"only":"delta"})")},
                                    10));
  EXPECT_EQ(result.applied, 5);
  EXPECT_EQ(result.skipped, 0);
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_EQ(result.latest_server_version, 10);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":1,"b":3,"c":{"d":4}})");  // the delta merged onto the stored document
  EXPECT_EQ(h_.Visible("n2"), std::nullopt);
  EXPECT_EQ(h_.Visible("n3"), R"({"only":"delta"})");  // an update of an unknown entity creates it
  std::optional<StoredDocument> n1 = h_.WithMeta("n1");
  ASSERT_TRUE(n1);
  EXPECT_EQ(n1->meta.version, 2);
  EXPECT_FALSE(n1->meta.dirty);
  std::optional<StoredDocument> n2 = h_.WithMeta("n2");
  ASSERT_TRUE(n2);
  EXPECT_TRUE(n2->meta.deleted);
  EXPECT_EQ(n2->meta.version, 4);
  EXPECT_EQ(h_.Base("n1"), std::nullopt);
  EXPECT_TRUE(h_.Changes().empty());  // nothing pulled is queued for sending
  EXPECT_EQ(h_.Cursor(), 10);
}

TEST_F(ApplyTest, SkipsVersionsNotNewerThanTheDocuments) {
  h_.PullOne(Remote(5, "CREATED", "n1", R"({"a":5})"));
  ApplyResult result = h_.Pull(Page({Remote(3, "UPDATED", "n1", R"({"a":3})", kTestStartMs, "old-u"),
                                     Remote(4, "CREATED", "n1", R"({"a":4})", kTestStartMs, "old-c"),
                                     Remote(5, "DELETED", "n1", std::nullopt, kTestStartMs, "same-d")}));
  EXPECT_EQ(result.applied, 0);
  EXPECT_EQ(result.skipped, 3);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":5})");
  EXPECT_EQ(h_.WithMeta("n1")->meta.version, 5);

  result = h_.PullOne(Remote(6, "UPDATED", "n1", R"({"b":6})"));
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":5,"b":6})");
}

TEST_F(ApplyTest, ApplyingTheSamePageTwiceSkipsEverything) {
  const std::string page = Page({Remote(1, "CREATED", "n1", R"({"a":1})"), Remote(2, "UPDATED", "n1", R"({"b":2})"),
                                 Remote(3, "CREATED", "n2", R"({"a":1})"), Remote(4, "DELETED", "n2", std::nullopt)},
                                4);
  ApplyResult first = h_.Pull(page);
  EXPECT_EQ(first.applied, 4);
  const std::string after_first = h_.Snapshot();
  h_.clock.Advance(1000);
  ApplyResult second = h_.Pull(page);
  EXPECT_EQ(second.applied, 0);
  EXPECT_EQ(second.skipped, 4);
  EXPECT_EQ(second.latest_server_version, 4);
  EXPECT_EQ(h_.Snapshot(), after_first);  // not even updated_at moved
}

TEST_F(ApplyTest, TheCursorFollowsEachChunkAndReachesLatestOnlyAtTheEnd) {
  simdjson::ondemand::parser parser;
  std::vector<std::string> changes;
  for (int v = 1; v <= 5; ++v) changes.push_back(Remote(v, "CREATED", "n" + std::to_string(v), "{}"));
  for (bool has_more : {false, true}) {
    StoreHarness h;
    simdjson::padded_string input(Page(changes, 20, has_more));
    PullPage page;
    ASSERT_TRUE(IsOk(DecodePullPage(parser, input, JsonLimits{}, &page)));
    ApplyResult result;
    EXPECT_EQ(h.Cursor(), 0);
    ASSERT_TRUE(IsOk(h.applier->ApplyChunk(page, 0, 2, &result)));
    EXPECT_EQ(h.Cursor(), 2);
    EXPECT_EQ(result.latest_server_version, 2);
    EXPECT_EQ(h.Visible("n3"), std::nullopt);
    ASSERT_TRUE(IsOk(h.applier->ApplyChunk(page, 2, 4, &result)));
    EXPECT_EQ(h.Cursor(), 4);
    ASSERT_TRUE(IsOk(h.applier->ApplyChunk(page, 4, 5, &result)));
    EXPECT_EQ(h.Cursor(), has_more ? 5 : 20) << has_more;
    EXPECT_EQ(result.latest_server_version, has_more ? 5 : 20);
    EXPECT_EQ(result.applied, 5);
  }
}

// A window's positions are the page's: the cursor follows each window and reaches
// latestServerVersion only at the page's end.
TEST_F(ApplyTest, AppliesAPageWindowByWindow) {
  std::vector<std::string> changes;
  for (int v = 1; v <= 5; ++v) changes.push_back(Remote(v, "CREATED", "n" + std::to_string(v), "{}"));
  simdjson::ondemand::parser parser;
  const std::string json = Page(changes, 20, false);
  PullPage page;
  PageLayout layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, JsonLimits{}, &page, &layout)));
  PageChangeReader reader(parser, json, layout, JsonLimits{});
  ApplyResult result;
  ASSERT_TRUE(IsOk(reader.Next(2, &page)));
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, 0, page.changes.size(), &result)));
  EXPECT_EQ(h_.Cursor(), 2);
  ASSERT_TRUE(IsOk(reader.Next(2, &page)));
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, 0, page.changes.size(), &result)));
  EXPECT_EQ(h_.Cursor(), 4);
  ASSERT_TRUE(IsOk(reader.Next(2, &page)));
  ASSERT_EQ(page.changes.size(), 1u);
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, 0, 1, &result)));
  EXPECT_EQ(h_.Cursor(), 20);
  EXPECT_EQ(result.applied, 5);
  EXPECT_EQ(h_.Visible("n5"), "{}");
}

TEST_F(ApplyTest, AChunkAskedToStopEarlyCommitsWhatItAppliedAndSaysWhereItEnded) {
  simdjson::ondemand::parser parser;
  std::vector<std::string> changes;
  for (int v = 1; v <= 10; ++v) changes.push_back(Remote(v, "CREATED", "n" + std::to_string(v), "{}"));
  simdjson::padded_string input(Page(changes, 20));
  PullPage page;
  ASSERT_TRUE(IsOk(DecodePullPage(parser, input, JsonLimits{}, &page)));
  ApplyResult result;
  int asked = 0;
  size_t reached = 0;
  // Asked only once 3 changes are in; says stop the second time it is asked.
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, 0, 10, &result, [&] { return ++asked == 2; }, 3, &reached)));
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(reached, 4u);
  EXPECT_EQ(h_.Cursor(), 4);
  EXPECT_EQ(result.applied, 4);
  EXPECT_NE(h_.Visible("n4"), std::nullopt);
  EXPECT_EQ(h_.Visible("n5"), std::nullopt);
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, reached, 10, &result, [] { return false; }, 1, &reached)));
  EXPECT_EQ(reached, 10u);
  EXPECT_EQ(h_.Cursor(), 20) << "the page's end still moves the cursor to latestServerVersion";
  EXPECT_EQ(result.applied, 10);
}

TEST_F(ApplyTest, TheCursorNeverMovesBackAndAnEmptyPageCanAdvanceIt) {
  h_.Pull(Page({}, 7));
  EXPECT_EQ(h_.Cursor(), 7);
  ApplyResult result = h_.Pull(Page({Remote(3, "CREATED", "n1", "{}")}, 5));
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(result.latest_server_version, 7);
  EXPECT_EQ(h_.Cursor(), 7);
  h_.Pull(Page({Remote(8, "CREATED", "n3", "{}")}, 20, /*has_more=*/true));  // hasMore: up to its last change only
  EXPECT_EQ(h_.Cursor(), 8);
  ApplyResult refused;
  Status empty_with_more = h_.TryPull(Page({}, 30, /*has_more=*/true), &refused);  // would loop for ever
  EXPECT_EQ(empty_with_more.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(h_.Cursor(), 8);
  h_.Pull("[" + Remote(9, "CREATED", "n2", "{}") + "]");  // a bare array: up to its last change
  EXPECT_EQ(h_.Cursor(), 9);
}

TEST_F(ApplyTest, AFailingChunkChangesNothingAndKeepsTheCursor) {
  h_.Pull(Page({Remote(1, "CREATED", "n0", R"({"a":0})")}, 1));
  ASSERT_TRUE(IsOk(h_.db->Exec("CREATE TRIGGER boom BEFORE INSERT ON documents WHEN NEW.entity_id = 'bad' "
                               "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")));
  const std::string before = h_.Snapshot();
  ApplyResult result;
  Status status = h_.TryPull(Page({Remote(2, "UPDATED", "n0", R"({"a":2})"), Remote(3, "CREATED", "bad", "{}")}, 3),
                             &result);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("newChanges[1] (changeId r3)"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("injected failure"), std::string::npos) << status.message();
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_EQ(h_.Cursor(), 1);
  EXPECT_FALSE(h_.db->InTransaction());
}

// ---- Local changes on top of pulled state, and conflicts

constexpr int64_t kLocalTime = kTestStartMs;  // the clock when the local edits are made

class ConflictTest : public ::testing::Test {
 protected:
  // A pulled document n1 = {"title":"a","body":"x"} at version 1, then a local edit.
  std::unique_ptr<StoreHarness> Setup(ConflictStrategy strategy, const std::string& local_patch) {
    auto h = std::make_unique<StoreHarness>(strategy);
    h->PullOne(Remote(1, "CREATED", "n1", R"({"title":"a","body":"x"})", kLocalTime - 10000));
    EXPECT_TRUE(IsOk(h->store->Patch("note", "n1", local_patch)));
    return h;
  }
  static std::vector<std::string> Data(const std::vector<Change>& changes) {
    std::vector<std::string> out;
    for (const Change& change : changes) {
      out.push_back(std::string(ChangeTypeName(change.type)) + " " + change.data.value_or("-") + " " +
                    ChangeStatusName(change.status));
    }
    return out;
  }
};

using Strings = std::vector<std::string>;

TEST_F(ConflictTest, LocalPendingChangesStayOnTopOfPulledState) {
  auto h = Setup(ConflictStrategy::kClientWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"body":"y"})", kLocalTime + 1000));
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"y"})");
  EXPECT_EQ(h->Base("n1"), R"({"title":"a","body":"y"})");  // the server state under the local edit
  std::optional<StoredDocument> doc = h->WithMeta("n1");
  EXPECT_EQ(doc->meta.version, 2);
  EXPECT_TRUE(doc->meta.dirty);
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "local");
  EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kClientWins);
  EXPECT_EQ(result.conflicts[0].change_id, "r2");
  EXPECT_EQ(result.conflicts[0].version, 2);
  EXPECT_EQ(result.conflicts[0].entity_id, "n1");

  // A later local edit still builds on the pulled state, and keeps the same base.
  ASSERT_TRUE(IsOk(h->store->Patch("note", "n1", R"({"n":1})")));
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"y","n":1})");
  EXPECT_EQ(h->Base("n1"), R"({"title":"a","body":"y"})");
}

// A chunk asks only the entities the queue names for their local changes, or every entity when
// the queue holds too many rows to list (more than 256, and than the chunk has changes). Either
// way a local edit among many clean entities stays on top, and the clean ones are applied as
// pulled.
TEST_F(ConflictTest, LocalChangesStayOnTopWhetherTheQueueListsItsEntitiesOrNot) {
  for (int pending_elsewhere : {0, 300}) {
    SCOPED_TRACE(pending_elsewhere);
    auto h = std::make_unique<StoreHarness>(ConflictStrategy::kClientWins);
    h->PullOne(Remote(1, "CREATED", "n1", R"({"title":"a","body":"x"})", kLocalTime - 10000));
    for (int i = 0; i < pending_elsewhere; ++i) {
      ASSERT_TRUE(IsOk(h->store->Put("task", "t" + std::to_string(i), R"({"x":1})")));
    }
    ASSERT_TRUE(IsOk(h->store->Patch("note", "n1", R"({"title":"L"})")));  // the queue's last row
    std::vector<std::string> changes;
    int64_t version = 1;
    for (int i = 0; i < 50; ++i) {
      if (i == 25) changes.push_back(Remote(++version, "UPDATED", "n1", R"({"body":"y"})", kLocalTime + 1000));
      changes.push_back(Remote(++version, "CREATED", "c" + std::to_string(i), R"({"n":1})", kLocalTime + 1000));
    }
    ApplyResult result = h->Pull(Page(changes, version));
    EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"y"})");
    EXPECT_EQ(h->Base("n1"), R"({"title":"a","body":"y"})");
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].entity_id, "n1");
    EXPECT_EQ(h->Visible("c49"), R"({"n":1})");
    std::optional<StoredDocument> clean = h->WithMeta("c0");
    ASSERT_TRUE(clean.has_value());
    EXPECT_FALSE(clean->meta.dirty);
    EXPECT_EQ(h->Changes().size(), static_cast<size_t>(pending_elsewhere) + 1);
  }
}

TEST_F(ConflictTest, NewestWinsRemoteNewerDiscardsUnsentLocalChanges) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "remote");
  EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kNewestWins);
  EXPECT_EQ(result.conflicts[0].conflict_id, std::nullopt);
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h->Changes().empty());
  EXPECT_EQ(h->Base("n1"), std::nullopt);
  EXPECT_FALSE(h->WithMeta("n1")->meta.dirty);
  EXPECT_EQ(h->WithMeta("n1")->meta.version, 2);
}

TEST_F(ConflictTest, NewestWinsRemoteOlderKeepsTheLocalChange) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R","body":"y"})", kLocalTime - 1));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "local");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"y"})");
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  EXPECT_EQ(h->Base("n1"), R"({"title":"R","body":"y"})");
  EXPECT_TRUE(h->WithMeta("n1")->meta.dirty);
}

TEST_F(ConflictTest, NewestWinsATieGoesToTheRemote) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "remote");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h->Changes().empty());
}

TEST_F(ConflictTest, NewestWinsComparesWithTheNewestLocalEdit) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  h->clock.Advance(500);
  ASSERT_TRUE(IsOk(h->store->Patch("note", "n1", R"({"body":"L2"})")));  // coalesced, timestamp moves on
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 100));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "local");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"L2"})");
}

TEST_F(ConflictTest, ServerWinsEvenWhenOlder) {
  auto h = Setup(ConflictStrategy::kServerWins, R"({"title":"L","n":1})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime - 5000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "remote");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h->Changes().empty());
}

TEST_F(ConflictTest, ClientWinsEvenWhenNewer) {
  auto h = Setup(ConflictStrategy::kClientWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 5000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "local");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"x"})");
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  EXPECT_EQ(h->Base("n1"), R"({"title":"R","body":"x"})");
}

TEST_F(ConflictTest, ClientWinsKeepsALocalDeleteOverARemoteUpdate) {
  auto h = std::make_unique<StoreHarness>(ConflictStrategy::kClientWins);
  h->PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
  ASSERT_TRUE(IsOk(h->store->Delete("note", "n1")));
  h->PullOne(Remote(2, "UPDATED", "n1", R"({"a":2})", kLocalTime + 1000));
  EXPECT_EQ(h->Visible("n1"), std::nullopt);
  EXPECT_EQ(Data(h->Changes()), (Strings{"DELETED - pending"}));
  EXPECT_EQ(h->Base("n1"), R"({"a":2})");
  EXPECT_EQ(h->WithMeta("n1")->meta.version, 2);
}

TEST_F(ConflictTest, MergeKeepsDisjointFieldsFromBothSides) {
  auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"body":"R"})", kLocalTime + 1000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "merged");
  EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kMerge);
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"R"})");
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  EXPECT_EQ(h->Base("n1"), R"({"title":"a","body":"R"})");
}

TEST_F(ConflictTest, MergeOverlappingFieldNewerRemoteWinsAndLeavesTheUnsentChange) {
  auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L","tag":"t"})");
  h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R","body":"R"})", kLocalTime + 1000));
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"R","tag":"t"})");
  // The losing field is no longer sent; the rest of the change is.
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"tag":"t"} pending)"}));
  EXPECT_TRUE(h->WithMeta("n1")->meta.dirty);
}

TEST_F(ConflictTest, MergeOverlappingFieldOlderRemoteLoses) {
  auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L","tag":"t"})");
  h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R","body":"R"})", kLocalTime - 1000));
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"R","tag":"t"})");
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L","tag":"t"} pending)"}));
}

TEST_F(ConflictTest, MergeWhereEveryLocalFieldLosesDropsTheChange) {
  auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L"})");
  h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1000));
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h->Changes().empty());
  EXPECT_FALSE(h->WithMeta("n1")->meta.dirty);
  EXPECT_EQ(h->Base("n1"), std::nullopt);
}

TEST_F(ConflictTest, MergeFallsBackToNewestWinsForDeletes) {
  {  // local delete, older remote update: the delete stands
    auto h = std::make_unique<StoreHarness>(ConflictStrategy::kMerge);
    h->PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
    ASSERT_TRUE(IsOk(h->store->Delete("note", "n1")));
    ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"a":2})", kLocalTime - 1));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "local");
    EXPECT_EQ(h->Visible("n1"), std::nullopt);
    EXPECT_EQ(Data(h->Changes()), (Strings{"DELETED - pending"}));
  }
  {  // local delete, newer remote update: the update wins and the delete is dropped
    auto h = std::make_unique<StoreHarness>(ConflictStrategy::kMerge);
    h->PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
    ASSERT_TRUE(IsOk(h->store->Delete("note", "n1")));
    ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"b":2})", kLocalTime + 1));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "remote");
    EXPECT_EQ(h->Visible("n1"), R"({"a":1,"b":2})");
    EXPECT_TRUE(h->Changes().empty());
  }
  {  // local update, newer remote delete
    auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L"})");
    ApplyResult result = h->PullOne(Remote(2, "DELETED", "n1", std::nullopt, kLocalTime + 1));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "remote");
    EXPECT_EQ(h->Visible("n1"), std::nullopt);
    EXPECT_TRUE(h->WithMeta("n1")->meta.deleted);
    EXPECT_TRUE(h->Changes().empty());
  }
  {  // local update, older remote delete: the local edit stays, on an entity the server deleted
    auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L"})");
    ApplyResult result = h->PullOne(Remote(2, "DELETED", "n1", std::nullopt, kLocalTime - 1));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "local");
    EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
    EXPECT_EQ(h->Base("n1"), std::nullopt);
  }
}

// ---- Manual conflicts

class ManualTest : public ConflictTest {
 protected:
  void SetUp() override {
    h_ = Setup(ConflictStrategy::kManual, R"({"title":"L"})");
    ApplyResult result = h_->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1000));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "manual");
    EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kManual);
    ASSERT_TRUE(result.conflicts[0].conflict_id);
    id_ = *result.conflicts[0].conflict_id;
  }
  std::string Conflicts() {
    Result<std::string> json = h_->applier->ConflictsJson();
    EXPECT_TRUE(IsOk(json));
    return json.ok() ? json.value() : "";
  }

  std::unique_ptr<StoreHarness> h_;
  int64_t id_ = 0;
};

TEST_F(ManualTest, AConflictIsKeptOpenWithTheLocalStateVisible) {
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"x"})");
  EXPECT_EQ(Data(h_->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  EXPECT_EQ(h_->Base("n1"), R"({"title":"R","body":"x"})");
  EXPECT_EQ(Conflicts(), "[{\"id\":" + std::to_string(id_) +
                             R"(,"entityType":"note","entityId":"n1","local":{"title":"L","body":"x"},)"
                             R"("remote":{"title":"R","body":"x"},"base":{"title":"a","body":"x"},)"
                             R"("remoteVersion":2,"remoteChangeId":"r2","remoteTimestamp":)" +
                             std::to_string(kLocalTime + 1000) + R"(,"createdAt":)" + std::to_string(kTestStartMs) +
                             R"(,"awaitingResolver":false,"resolverError":null}])");
}

TEST_F(ManualTest, ASecondRemoteChangeUpdatesTheSameOpenConflict) {
  ApplyResult result = h_->PullOne(Remote(3, "UPDATED", "n1", R"({"body":"y"})", kLocalTime + 2000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].conflict_id, id_);
  EXPECT_EQ(QueryInt(*h_->db, "SELECT count(*) FROM conflicts"), 1);
  const std::string json = Conflicts();
  // The base stays the state the local edit was made on.
  EXPECT_NE(json.find(R"("remote":{"title":"R","body":"y"},"base":{"title":"a","body":"x"},)"
                      R"("remoteVersion":3,"remoteChangeId":"r3")"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("local":{"title":"L","body":"y"})"), std::string::npos) << json;
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"y"})");
}

TEST_F(ManualTest, ResolveWithLocalQueuesTheLocalStateOnTheRemoteVersion) {
  h_->PullOne(Remote(3, "UPDATED", "n1", R"({"body":"y"})", kLocalTime + 2000));
  Result<ResolvedConflict> resolved = h_->applier->ResolveConflict(id_, ResolveUse::kLocal, std::nullopt);
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value().visible, R"({"title":"L","body":"y"})");
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"y"})");
  std::vector<Change> changes = h_->Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kUpdated);
  EXPECT_EQ(changes[0].data, R"({"title":"L","body":"y"})");
  EXPECT_EQ(changes[0].base_version, 3);
  EXPECT_EQ(h_->Base("n1"), R"({"title":"R","body":"y"})");
  EXPECT_EQ(Conflicts(), "[]");
  EXPECT_EQ(QueryInt(*h_->db, "SELECT count(*) FROM conflicts WHERE status = 'resolved' AND resolution = 'local'"), 1);
  // Settled: resolving again, or an unknown id, is NOT_FOUND.
  EXPECT_TRUE(HasCode(h_->applier->ResolveConflict(id_, ResolveUse::kRemote, std::nullopt), StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(h_->applier->ResolveConflict(999, ResolveUse::kLocal, std::nullopt), StatusCode::kNotFound));
  EXPECT_FALSE(h_->db->InTransaction());
}

TEST_F(ManualTest, ResolveWithRemoteDropsTheLocalChanges) {
  Result<ResolvedConflict> resolved = h_->applier->ResolveConflict(id_, ResolveUse::kRemote, std::nullopt);
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value().visible, R"({"title":"R","body":"x"})");
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h_->Changes().empty());
  EXPECT_FALSE(h_->WithMeta("n1")->meta.dirty);
  EXPECT_EQ(h_->Base("n1"), std::nullopt);
  EXPECT_EQ(Conflicts(), "[]");
}

TEST_F(ManualTest, ResolveWithMergedDataQueuesItAgainstTheRemote) {
  Result<ResolvedConflict> resolved =
      h_->applier->ResolveConflict(id_, ResolveUse::kMerged, std::string(R"({"title":"M","n":1})"));
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value().visible, R"({"title":"M","n":1})");
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"M","n":1})");
  std::vector<Change> changes = h_->Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kUpdated);
  EXPECT_EQ(changes[0].data, R"({"title":"M","n":1,"body":null})");  // every field, null for the dropped one
  EXPECT_EQ(changes[0].base_version, 2);
  EXPECT_EQ(QueryInt(*h_->db, "SELECT count(*) FROM conflicts WHERE resolution = 'merged'"), 1);
}

TEST_F(ConflictTest, ManualLocalDeleteResolvedLocalQueuesADelete) {
  auto h = std::make_unique<StoreHarness>(ConflictStrategy::kManual);
  h->PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
  ASSERT_TRUE(IsOk(h->store->Delete("note", "n1")));
  ApplyResult result = h->PullOne(Remote(4, "UPDATED", "n1", R"({"a":2})", kLocalTime + 1));
  ASSERT_EQ(result.conflicts.size(), 1u);
  ASSERT_TRUE(result.conflicts[0].conflict_id);
  EXPECT_EQ(h->Visible("n1"), std::nullopt);
  Result<ResolvedConflict> resolved =
      h->applier->ResolveConflict(*result.conflicts[0].conflict_id, ResolveUse::kLocal, std::nullopt);
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value().visible, std::nullopt);
  std::vector<Change> changes = h->Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kDeleted);
  EXPECT_EQ(changes[0].base_version, 4);
  EXPECT_TRUE(h->WithMeta("n1")->meta.deleted);
}

// ---- Own changes echoed back

TEST_F(ConflictTest, AnEchoOfAnInFlightChangeIsNotAConflict) {
  StoreHarness h(ConflictStrategy::kManual);  // the strictest strategy
  Result<WriteEvent> put = h.store->Put("note", "n1", R"({"a":1})");
  ASSERT_TRUE(IsOk(put));
  ASSERT_TRUE(IsOk(h.queue->TakeBatch(0)));
  ApplyResult result =
      h.PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime, put.value().change_id));
  EXPECT_EQ(result.applied, 1);
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_EQ(QueryInt(*h.db, "SELECT count(*) FROM conflicts"), 0);
  EXPECT_EQ(h.Visible("n1"), R"({"a":1})");
  EXPECT_EQ(h.WithMeta("n1")->meta.version, 1);
  ASSERT_TRUE(IsOk(h.queue->MarkSynced(put.value().change_id, 1)));
  EXPECT_FALSE(h.WithMeta("n1")->meta.dirty);
}

TEST_F(ConflictTest, AnEchoKeepsLaterLocalChangesOnTop) {
  for (ConflictStrategy strategy : {ConflictStrategy::kNewestWins, ConflictStrategy::kServerWins,
                                    ConflictStrategy::kMerge, ConflictStrategy::kManual}) {
    StoreHarness h(strategy);
    Result<WriteEvent> put = h.store->Put("note", "n1", R"({"a":1})");
    ASSERT_TRUE(IsOk(put));
    ASSERT_TRUE(IsOk(h.queue->TakeBatch(0)));
    h.clock.Advance(10);
    ASSERT_TRUE(IsOk(h.store->Patch("note", "n1", R"({"b":2})")));
    ApplyResult result = h.PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime + 5000, put.value().change_id));
    EXPECT_TRUE(result.conflicts.empty()) << ConflictStrategyName(strategy);
    EXPECT_EQ(h.Visible("n1"), R"({"a":1,"b":2})") << ConflictStrategyName(strategy);
    EXPECT_EQ(Data(h.Changes()), (Strings{R"(CREATED {"a":1} syncing)", R"(UPDATED {"b":2} pending)"}))
        << ConflictStrategyName(strategy);
    EXPECT_EQ(h.Base("n1"), R"({"a":1})");
  }
}

TEST_F(ConflictTest, AnEchoOfACoalescedChangeIdIsRecognised) {
  StoreHarness h(ConflictStrategy::kServerWins);
  h.PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
  ASSERT_TRUE(IsOk(h.store->Patch("note", "n1", R"({"b":1})")));
  Result<WriteEvent> second = h.store->Patch("note", "n1", R"({"c":1})");
  ASSERT_TRUE(IsOk(second));
  ASSERT_EQ(second.value().outcome, EnqueueOutcome::kCoalesced);
  ApplyResult result =
      h.PullOne(Remote(2, "UPDATED", "n1", R"({"c":1})", kLocalTime + 1000, second.value().change_id));
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_EQ(h.Visible("n1"), R"({"a":1,"c":1,"b":1})");
  EXPECT_EQ(h.Changes().size(), 1u);
}

// ---- In-flight local changes are never discarded or rewritten

TEST_F(ConflictTest, InFlightChangesSurviveEveryStrategy) {
  const ConflictStrategy strategies[] = {ConflictStrategy::kNewestWins, ConflictStrategy::kServerWins,
                                         ConflictStrategy::kClientWins, ConflictStrategy::kMerge,
                                         ConflictStrategy::kManual};
  for (ConflictStrategy strategy : strategies) {
    SCOPED_TRACE(ConflictStrategyName(strategy));
    auto h = Setup(strategy, R"({"title":"S","tag":"s"})");
    Result<std::vector<Change>> sent = h->queue->TakeBatch(0);
    ASSERT_TRUE(IsOk(sent));
    ASSERT_EQ(sent.value().size(), 1u);
    const std::string sent_id = sent.value()[0].change_id;
    ASSERT_TRUE(IsOk(h->store->Patch("note", "n1", R"({"title":"P","body":"p"})")));  // appended, not coalesced
    ASSERT_EQ(h->Changes().size(), 2u);

    ApplyResult result =
        h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R","body":"R","tag":"r"})", kLocalTime + 1000));
    ASSERT_EQ(result.conflicts.size(), 1u);
    std::vector<Change> changes = h->Changes();
    ASSERT_FALSE(changes.empty());
    EXPECT_EQ(changes[0].change_id, sent_id);
    EXPECT_EQ(changes[0].status, ChangeStatus::kSyncing);
    EXPECT_EQ(changes[0].data, R"({"title":"S","tag":"s"})");
    EXPECT_TRUE(h->WithMeta("n1")->meta.dirty);

    switch (strategy) {
      case ConflictStrategy::kNewestWins:
      case ConflictStrategy::kServerWins:
      case ConflictStrategy::kMerge:
        // The unsent edit loses every field; the in-flight one is still replayed on top.
        EXPECT_EQ(changes.size(), 1u);
        EXPECT_EQ(h->Visible("n1"), R"({"title":"S","body":"R","tag":"s"})");
        break;
      case ConflictStrategy::kClientWins:
        EXPECT_EQ(changes.size(), 2u);
        EXPECT_EQ(h->Visible("n1"), R"({"title":"P","body":"p","tag":"s"})");
        break;
      case ConflictStrategy::kManual:
      case ConflictStrategy::kCustom: {
        EXPECT_EQ(changes.size(), 2u);
        ASSERT_TRUE(result.conflicts[0].conflict_id);
        Result<ResolvedConflict> resolved =
            h->applier->ResolveConflict(*result.conflicts[0].conflict_id, ResolveUse::kRemote, std::nullopt);
        ASSERT_TRUE(IsOk(resolved));
        changes = h->Changes();
        ASSERT_EQ(changes.size(), 1u);
        EXPECT_EQ(changes[0].change_id, sent_id);
        EXPECT_EQ(changes[0].status, ChangeStatus::kSyncing);
        EXPECT_EQ(changes[0].data, R"({"title":"S","tag":"s"})");
        EXPECT_EQ(h->Visible("n1"), R"({"title":"S","body":"R","tag":"s"})");
        EXPECT_TRUE(h->WithMeta("n1")->meta.dirty);
        break;
      }
    }
    EXPECT_EQ(h->Base("n1"), R"({"title":"R","body":"R","tag":"r"})");
    // The server acknowledges the in-flight change as usual.
    ASSERT_TRUE(IsOk(h->queue->MarkSynced(sent_id, 3)));
  }
}

// The server applied our edit at version 5, after another device's edit at version 3 that the
// client pulls only now: ours stays on top, whatever the strategy would say of a conflict.
TEST_F(ConflictTest, AnEditTheServerAcknowledgedLaterStaysOnTopOfAnEarlierPulledOne) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  Result<std::vector<Change>> sent = h->queue->TakeBatch(0);
  ASSERT_TRUE(IsOk(sent));
  ASSERT_EQ(sent.value().size(), 1u);
  ASSERT_TRUE(IsOk(h->queue->MarkSynced(sent.value()[0].change_id, 5)));
  ApplyResult result = h->PullOne(Remote(3, "UPDATED", "n1", R"({"title":"R","body":"y"})", kLocalTime + 5000));
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"y"})");
  EXPECT_EQ(h->Base("n1"), R"({"title":"R","body":"y"})");
}

TEST_F(ConflictTest, ManualResolveLocalKeepsTheInFlightChange) {
  auto h = Setup(ConflictStrategy::kManual, R"({"title":"S"})");
  ASSERT_TRUE(IsOk(h->queue->TakeBatch(0)));
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  ASSERT_TRUE(result.conflicts[0].conflict_id);
  ASSERT_TRUE(IsOk(h->applier->ResolveConflict(*result.conflicts[0].conflict_id, ResolveUse::kLocal, std::nullopt)));
  EXPECT_EQ(Data(h->Changes()),
            (Strings{R"(UPDATED {"title":"S"} syncing)", R"(UPDATED {"title":"S","body":"x"} pending)"}));
  EXPECT_EQ(h->Changes()[1].base_version, 2);
}

// The work of one sync cycle on the client (a local write, taking it into a request, its
// acknowledgement, the purge of old synced changes, the engine's status counts, and the pull of
// the change back) as SQLite VM steps, on a queue that already holds `history` synced changes.
int64_t SyncCycleSteps(int64_t history) {
  StoreHarness h;
  std::vector<ChangeInput> inputs;
  for (int64_t i = 1; i <= history; ++i) inputs.push_back(Created("h" + std::to_string(i), R"({"i":1})", "h" + std::to_string(i)));
  EXPECT_TRUE(IsOk(h.queue->EnqueueMany(inputs)));
  Result<std::vector<Change>> taken = h.queue->TakeBatch(history);
  EXPECT_TRUE(IsOk(taken));
  for (const Change& change : taken.value()) EXPECT_TRUE(IsOk(h.queue->MarkSynced(change.change_id, change.id)));
  h.Pull(Page({}, history));

  const int64_t before = h.db->CachedVmSteps();
  EXPECT_TRUE(IsOk(h.store->Put("note", "fresh", R"({"t":1})")));
  Result<std::vector<Change>> batch = h.queue->TakeBatch(100);
  EXPECT_TRUE(IsOk(batch));
  EXPECT_EQ(batch.value().size(), 1u);
  const std::string own = batch.value().at(0).change_id;
  EXPECT_TRUE(IsOk(h.queue->MarkSynced(own, history + 1)));
  EXPECT_TRUE(IsOk(h.queue->PurgeSynced(24LL * 60 * 60 * 1000)));
  EXPECT_TRUE(IsOk(h.queue->Stats(QueueStatsDetail::kUnsyncedTotals)));
  h.PullOne(Remote(history + 1, "CREATED", "fresh", R"({"t":1})", kTestStartMs, own));
  return h.db->CachedVmSteps() - before;
}

TEST(SyncCycleCost, DoesNotGrowWithTheSyncedHistory) {
  const int64_t small = SyncCycleSteps(100);
  const int64_t large = SyncCycleSteps(20000);
  EXPECT_GT(small, 0);
  // Flat up to noise in index depth: a scan of the synced history would be 200 times larger.
  EXPECT_LE(large, small * 2) << "VM steps of one cycle: " << small << " with 100 synced changes, " << large
                              << " with 20,000";
}

}  // namespace
}  // namespace deltasync
