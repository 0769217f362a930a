// 80: DocumentStore: put/patch/delete and the changes they queue, get with
// metadata, list queries and indexes, tombstone purging, and the rule that a
// write and its queued change are never separated, even when the write fails
// half way.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/store.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::kTestStartMs;
using testing_util::Page;
using testing_util::QueryInt;
using testing_util::Remote;
using testing_util::StoreHarness;

class StoreTest : public ::testing::Test {
 protected:
  DocumentStore& store() { return *h_.store; }

  WriteEvent Put(const std::string& id, const std::string& doc, const std::string& type = "note") {
    Result<WriteEvent> event = store().Put(type, id, doc);
    EXPECT_TRUE(IsOk(event)) << id;
    return event.ok() ? event.value() : WriteEvent{};
  }
  WriteEvent Patch(const std::string& id, const std::string& fields) {
    Result<WriteEvent> event = store().Patch("note", id, fields);
    EXPECT_TRUE(IsOk(event)) << id;
    return event.ok() ? event.value() : WriteEvent{};
  }
  std::optional<WriteEvent> Delete(const std::string& id, const std::string& type = "note") {
    Result<std::optional<WriteEvent>> event = store().Delete(type, id);
    EXPECT_TRUE(IsOk(event)) << id;
    return event.ok() ? event.value() : std::nullopt;
  }
  // Marks every queued change as acknowledged by the server.
  void SyncAll() {
    Result<std::vector<Change>> batch = h_.queue->TakeBatch(0);
    ASSERT_TRUE(IsOk(batch));
    for (const Change& change : batch.value()) ASSERT_TRUE(IsOk(h_.queue->MarkSynced(change.change_id, 1)));
  }

  StoreHarness h_;
};

// ---- Put

TEST_F(StoreTest, PutOnANewEntityQueuesCreated) {
  WriteEvent event = Put("n1", R"({"title":"a","n":1})");
  EXPECT_EQ(event.type, ChangeType::kCreated);
  EXPECT_EQ(event.outcome, EnqueueOutcome::kQueued);
  EXPECT_EQ(event.entity_type, "note");
  EXPECT_EQ(event.entity_id, "n1");
  std::vector<Change> changes = h_.Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].change_id, event.change_id);
  EXPECT_EQ(changes[0].type, ChangeType::kCreated);
  EXPECT_EQ(changes[0].entity_type, "note");
  EXPECT_EQ(changes[0].entity_id, "n1");
  EXPECT_EQ(changes[0].data, R"({"title":"a","n":1})");
  EXPECT_EQ(changes[0].base_version, std::nullopt);
  EXPECT_EQ(changes[0].timestamp, kTestStartMs);
  EXPECT_EQ(h_.Visible("n1"), R"({"title":"a","n":1})");
  EXPECT_EQ(h_.Base("n1"), std::nullopt);  // nothing on the server yet
  EXPECT_FALSE(h_.db->InTransaction());
}

TEST_F(StoreTest, PutOnAnExistingEntityQueuesUpdatedWithEveryFieldAndNullForDroppedOnes) {
  h_.PullOne(Remote(5, "CREATED", "n1", R"({"title":"a","body":"x","tags":[1]})"));
  ASSERT_TRUE(h_.Changes().empty());  // pulled changes are not queued
  WriteEvent event = Put("n1", R"({"title":"b","extra":true})");
  EXPECT_EQ(event.type, ChangeType::kUpdated);
  EXPECT_EQ(event.outcome, EnqueueOutcome::kQueued);
  std::vector<Change> changes = h_.Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kUpdated);
  EXPECT_EQ(changes[0].data, R"({"title":"b","extra":true,"body":null,"tags":null})");
  EXPECT_EQ(changes[0].base_version, 5);
  EXPECT_EQ(h_.Visible("n1"), R"({"title":"b","extra":true})");
  EXPECT_EQ(h_.Base("n1"), R"({"title":"a","body":"x","tags":[1]})");  // the server state under it
}

TEST_F(StoreTest, PutOverAnUnsentCreatedCoalescesIntoIt) {
  WriteEvent first = Put("n1", R"({"a":1})");
  WriteEvent second = Put("n1", R"({"a":2,"b":3})");
  EXPECT_EQ(second.outcome, EnqueueOutcome::kCoalesced);
  std::vector<Change> changes = h_.Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].change_id, first.change_id);
  EXPECT_EQ(changes[0].type, ChangeType::kCreated);
  EXPECT_EQ(changes[0].data, R"({"a":2,"b":3})");
  EXPECT_EQ(h_.Visible("n1"), R"({"a":2,"b":3})");
}

TEST_F(StoreTest, PutAfterADeleteCreatesAgain) {
  h_.PullOne(Remote(2, "CREATED", "n1", R"({"a":1})"));
  Delete("n1");
  WriteEvent event = Put("n1", R"({"a":9})");
  EXPECT_EQ(event.type, ChangeType::kCreated);
  std::vector<Change> changes = h_.Changes();
  ASSERT_EQ(changes.size(), 2u);  // DELETED then CREATED: never coalesced
  EXPECT_EQ(changes[0].type, ChangeType::kDeleted);
  EXPECT_EQ(changes[1].type, ChangeType::kCreated);
  EXPECT_EQ(changes[1].data, R"({"a":9})");
  EXPECT_EQ(changes[1].base_version, 2);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":9})");
}

// ---- Patch

TEST_F(StoreTest, PatchMergesAndQueuesOnlyTheGivenFields) {
  h_.PullOne(Remote(2, "CREATED", "n1", R"({"title":"a","body":"x"})"));
  WriteEvent event = Patch("n1", R"({"body":"y","n":1})");
  EXPECT_EQ(event.type, ChangeType::kUpdated);
  EXPECT_EQ(h_.Visible("n1"), R"({"title":"a","body":"y","n":1})");
  std::vector<Change> changes = h_.Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kUpdated);
  EXPECT_EQ(changes[0].data, R"({"body":"y","n":1})");
  EXPECT_EQ(changes[0].base_version, 2);

  WriteEvent again = Patch("n1", R"({"body":"z"})");
  EXPECT_EQ(again.outcome, EnqueueOutcome::kCoalesced);
  changes = h_.Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].data, R"({"body":"z","n":1})");
  EXPECT_EQ(h_.Visible("n1"), R"({"title":"a","body":"z","n":1})");
  EXPECT_EQ(h_.Base("n1"), R"({"title":"a","body":"x"})");
}

TEST_F(StoreTest, PatchOfAMissingOrDeletedDocumentIsNotFound) {
  Result<WriteEvent> missing = store().Patch("note", "nope", R"({"a":1})");
  EXPECT_TRUE(HasCode(missing, StatusCode::kNotFound));
  EXPECT_NE(missing.status().message().find("note/nope"), std::string::npos) << missing.status().message();
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM documents"), 0);
  EXPECT_TRUE(h_.Changes().empty());

  h_.PullOne(Remote(1, "CREATED", "n1", R"({"a":1})"));
  ASSERT_TRUE(Delete("n1"));
  const std::string before = h_.Snapshot();
  EXPECT_TRUE(HasCode(store().Patch("note", "n1", R"({"a":2})"), StatusCode::kNotFound));
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_FALSE(h_.db->InTransaction());
}

// ---- Delete

TEST_F(StoreTest, DeleteTombstonesAndQueuesDeleted) {
  h_.PullOne(Remote(3, "CREATED", "n1", R"({"a":1})"));
  h_.clock.Advance(10);
  std::optional<WriteEvent> event = Delete("n1");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->type, ChangeType::kDeleted);
  std::vector<Change> changes = h_.Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kDeleted);
  EXPECT_EQ(changes[0].data, std::nullopt);
  EXPECT_EQ(changes[0].base_version, 3);

  EXPECT_EQ(h_.Visible("n1"), std::nullopt);
  std::optional<StoredDocument> tombstone = h_.WithMeta("n1");
  ASSERT_TRUE(tombstone);
  EXPECT_EQ(tombstone->data, std::nullopt);
  EXPECT_TRUE(tombstone->meta.deleted);
  EXPECT_TRUE(tombstone->meta.dirty);
  EXPECT_EQ(tombstone->meta.version, 3);
  EXPECT_EQ(tombstone->meta.updated_at, kTestStartMs + 10);
  EXPECT_EQ(QueryInt(*h_.db, "SELECT deleted_at FROM documents WHERE entity_id = 'n1'"), kTestStartMs + 10);

  // Nothing left to delete: no event, nothing queued.
  EXPECT_EQ(Delete("n1"), std::nullopt);
  EXPECT_EQ(Delete("never-existed"), std::nullopt);
  EXPECT_EQ(h_.Changes().size(), 1u);
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM documents"), 1);
}

TEST_F(StoreTest, DeletingAnUnsentCreationCancelsItButKeepsTheTombstone) {
  Put("n1", R"({"a":1})");
  std::optional<WriteEvent> event = Delete("n1");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->outcome, EnqueueOutcome::kCancelled);
  EXPECT_TRUE(h_.Changes().empty());
  std::optional<StoredDocument> tombstone = h_.WithMeta("n1");
  ASSERT_TRUE(tombstone);
  EXPECT_TRUE(tombstone->meta.deleted);
  EXPECT_FALSE(tombstone->meta.dirty);
}

// ---- Get and metadata

TEST_F(StoreTest, GetReportsVersionDirtyAndTimes) {
  EXPECT_EQ(h_.Visible("n1"), std::nullopt);
  EXPECT_EQ(h_.WithMeta("n1"), std::nullopt);

  h_.PullOne(Remote(4, "CREATED", "n1", R"({"a":1})"));
  std::optional<StoredDocument> pulled = h_.WithMeta("n1");
  ASSERT_TRUE(pulled);
  EXPECT_EQ(pulled->data, R"({"a":1})");
  EXPECT_EQ(pulled->meta.version, 4);
  EXPECT_FALSE(pulled->meta.dirty);
  EXPECT_FALSE(pulled->meta.deleted);
  EXPECT_EQ(pulled->meta.last_synced_at, kTestStartMs);
  EXPECT_EQ(pulled->meta.updated_at, kTestStartMs);

  h_.clock.Advance(100);
  Patch("n1", R"({"b":2})");
  std::optional<StoredDocument> edited = h_.WithMeta("n1");
  ASSERT_TRUE(edited);
  EXPECT_EQ(edited->data, R"({"a":1,"b":2})");
  EXPECT_EQ(edited->meta.version, 4);
  EXPECT_TRUE(edited->meta.dirty);
  EXPECT_EQ(edited->meta.last_synced_at, kTestStartMs);
  EXPECT_EQ(edited->meta.updated_at, kTestStartMs + 100);
  Result<bool> dirty = store().IsDirty("note", "n1");
  ASSERT_TRUE(IsOk(dirty));
  EXPECT_TRUE(dirty.value());

  SyncAll();  // in flight, then acknowledged
  std::optional<StoredDocument> acknowledged = h_.WithMeta("n1");
  ASSERT_TRUE(acknowledged);
  EXPECT_FALSE(acknowledged->meta.dirty);

  // Without metadata, get() is just the visible document.
  Result<std::optional<StoredDocument>> plain = store().Get("note", "n1", false);
  ASSERT_TRUE(IsOk(plain));
  ASSERT_TRUE(plain.value());
  EXPECT_EQ(plain.value()->data, R"({"a":1,"b":2})");
  EXPECT_FALSE(plain.value()->meta.deleted);
  // Entity types are separate namespaces.
  EXPECT_EQ(h_.Visible("n1", "task"), std::nullopt);
}

TEST_F(StoreTest, QueuedChangesCarryThePulledVersionAsBaseVersion) {
  StoreHarness h(ConflictStrategy::kNewestWins, /*coalesce=*/false);
  h.PullOne(Remote(7, "CREATED", "n1", R"({"a":1})"));
  ASSERT_TRUE(IsOk(h.store->Patch("note", "n1", R"({"a":2})")));
  ASSERT_TRUE(IsOk(h.store->Put("note", "n1", R"({"a":3})")));
  ASSERT_TRUE(IsOk(h.store->Delete("note", "n1")));
  std::vector<Change> changes = h.Changes();
  ASSERT_EQ(changes.size(), 3u);
  for (const Change& change : changes) EXPECT_EQ(change.base_version, 7) << ChangeTypeName(change.type);
  EXPECT_EQ(h.Base("n1"), R"({"a":1})");  // kept while dirty, whatever the local edits did
}

// ---- List

class ListTest : public StoreTest {
 protected:
  void SetUp() override {
    Put("a", R"({"k":"a","n":1,"s":"x","flag":true,"meta":{"author":"ann"}})");
    Put("b", R"({"k":"b","n":2,"s":"y","flag":false,"meta":{"author":"bob"}})");
    Put("c", R"({"k":"c","n":3,"s":"x","opt":null})");
    Put("d", R"({"k":"d","n":2.5,"s":"z"})");
    Put("e", R"({"k":"e","s":"y"})");
    Put("gone", R"({"k":"gone","n":1,"s":"x"})");
    Delete("gone");
    Put("t", R"({"k":"t","n":1,"s":"x"})", "task");
  }

  ListQuery Query(const std::string& json) {
    ListQuery query;
    Status status = DecodeListQuery(parser_, json, &query);
    EXPECT_TRUE(IsOk(status)) << json;
    return query;
  }

  // The "k" of every listed document, in order.
  std::vector<std::string> List(const std::string& query_json, const std::string& type = "note") {
    Result<std::string> listed = store().List(type, Query(query_json));
    EXPECT_TRUE(IsOk(listed)) << query_json;
    std::vector<std::string> keys;
    if (!listed.ok()) return keys;
    simdjson::padded_string padded(listed.value());
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document doc;
    simdjson::ondemand::array items;
    EXPECT_EQ(parser.iterate(padded).get(doc), simdjson::SUCCESS);
    EXPECT_EQ(doc.get_array().get(items), simdjson::SUCCESS) << listed.value();
    for (auto item : items) {
      std::string_view key;
      EXPECT_EQ(item.find_field_unordered("k").get_string().get(key), simdjson::SUCCESS) << listed.value();
      keys.emplace_back(key);
    }
    return keys;
  }

  Status DecodeError(const std::string& json) {
    ListQuery query;
    return DecodeListQuery(parser_, json, &query);
  }

  simdjson::ondemand::parser parser_;
};

using Keys = std::vector<std::string>;

TEST_F(ListTest, ListsLiveDocumentsOfOneTypeInInsertionOrder) {
  EXPECT_EQ(List("{}"), (Keys{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(List("{}", "task"), (Keys{"t"}));
  EXPECT_EQ(List("{}", "none"), Keys{});
  Result<std::string> raw = store().List("task", Query("{}"));
  ASSERT_TRUE(IsOk(raw));
  EXPECT_EQ(raw.value(), R"([{"k":"t","n":1,"s":"x"}])");
}

TEST_F(ListTest, EqualityAndComparisonOperators) {
  EXPECT_EQ(List(R"({"where":{"s":"x"}})"), (Keys{"a", "c"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$eq":2}}})"), (Keys{"b"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$ne":2}}})"), (Keys{"a", "c", "d", "e"}));  // a missing field is "not 2"
  EXPECT_EQ(List(R"({"where":{"n":{"$lt":2}}})"), (Keys{"a"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$lte":2}}})"), (Keys{"a", "b"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$gt":2}}})"), (Keys{"c", "d"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$gte":2.5}}})"), (Keys{"c", "d"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$gt":1,"$lt":3}}})"), (Keys{"b", "d"}));
  EXPECT_EQ(List(R"({"where":{"s":{"$gt":"x"}}})"), (Keys{"b", "d", "e"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$in":[1,3]}}})"), (Keys{"a", "c"}));
  EXPECT_EQ(List(R"({"where":{"s":{"$in":["y","z"]}}})"), (Keys{"b", "d", "e"}));
  EXPECT_EQ(List(R"({"where":{"s":"x","n":{"$gt":1}}})"), (Keys{"c"}));
  EXPECT_EQ(List(R"({"where":{"flag":true}})"), (Keys{"a"}));
  EXPECT_EQ(List(R"({"where":{"flag":false}})"), (Keys{"b"}));
  EXPECT_EQ(List(R"({"where":{"meta.author":"bob"}})"), (Keys{"b"}));
  EXPECT_EQ(List(R"({"where":{"s":"nothing"}})"), Keys{});
}

TEST_F(ListTest, NullMatchesMissingAndNullFields) {
  EXPECT_EQ(List(R"({"where":{"n":null}})"), (Keys{"e"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$eq":null}}})"), (Keys{"e"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$ne":null}}})"), (Keys{"a", "b", "c", "d"}));
  EXPECT_EQ(List(R"({"where":{"opt":null}})"), (Keys{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(List(R"({"where":{"meta.author":null}})"), (Keys{"c", "d", "e"}));
}

TEST_F(ListTest, OrderByAscendingDescendingAndSeveralFields) {
  EXPECT_EQ(List(R"({"orderBy":"n"})"), (Keys{"e", "a", "b", "d", "c"}));  // a missing field sorts first
  EXPECT_EQ(List(R"({"orderBy":"-n"})"), (Keys{"c", "d", "b", "a", "e"}));
  EXPECT_EQ(List(R"({"orderBy":{"field":"n","direction":"desc"}})"), (Keys{"c", "d", "b", "a", "e"}));
  EXPECT_EQ(List(R"({"orderBy":["s",{"field":"n","direction":"desc"}]})"), (Keys{"c", "a", "b", "e", "d"}));
  EXPECT_EQ(List(R"({"orderBy":["-s","n"]})"), (Keys{"d", "e", "b", "a", "c"}));
  // Ties keep insertion order.
  EXPECT_EQ(List(R"({"orderBy":[{"field":"s","direction":"asc"}]})"), (Keys{"a", "c", "b", "e", "d"}));
}

TEST_F(ListTest, LimitAndOffset) {
  EXPECT_EQ(List(R"({"limit":2})"), (Keys{"a", "b"}));
  EXPECT_EQ(List(R"({"orderBy":"n","limit":2,"offset":1})"), (Keys{"a", "b"}));
  EXPECT_EQ(List(R"({"offset":3})"), (Keys{"d", "e"}));
  EXPECT_EQ(List(R"({"offset":9})"), Keys{});
  EXPECT_EQ(List(R"({"where":{"s":"y"},"orderBy":"-k","limit":1})"), (Keys{"e"}));
}

TEST_F(ListTest, DecodeListQueryReadsEveryPart) {
  ListQuery query = Query(R"({"where":{"a.b":{"$in":[1,"x",true,2.5]},"c":null},"orderBy":["-x",{"field":"y"}],)"
                          R"("limit":5,"offset":2})");
  ASSERT_EQ(query.where.size(), 2u);
  EXPECT_EQ(query.where[0].field, "a.b");
  EXPECT_EQ(query.where[0].op, CompareOp::kIn);
  ASSERT_EQ(query.where[0].values.size(), 4u);
  EXPECT_EQ(query.where[0].values[0].kind, BindValue::Kind::kInt);
  EXPECT_EQ(query.where[0].values[1].kind, BindValue::Kind::kText);
  EXPECT_EQ(query.where[0].values[1].text, "x");
  EXPECT_EQ(query.where[0].values[2].integer, 1);  // true compares as 1, like json_extract
  EXPECT_EQ(query.where[0].values[3].kind, BindValue::Kind::kReal);
  EXPECT_EQ(query.where[1].op, CompareOp::kIsNull);
  ASSERT_EQ(query.order_by.size(), 2u);
  EXPECT_EQ(query.order_by[0].field, "x");
  EXPECT_TRUE(query.order_by[0].descending);
  EXPECT_FALSE(query.order_by[1].descending);
  EXPECT_EQ(query.limit, 5);
  EXPECT_EQ(query.offset, 2);
}

TEST_F(ListTest, DecodeListQueryErrors) {
  struct Case {
    const char* json;
    const char* message_part;
  };
  const Case cases[] = {
      {R"({"where":{"1bad":1}})", "\"1bad\""},
      {R"({"where":{"a..b":1}})", "\"a..b\""},
      {R"({"where":{"a-b":1}})", "the keys of where"},
      {R"({"where":{"n":{"$regex":"x"}}})", "Unknown operator \"$regex\" in where.n"},
      {R"({"where":{"n":{"$in":[]}}})", "non-empty array for where.n.$in"},
      {R"({"where":{"n":{"$in":3}}})", "where.n.$in"},
      {R"({"where":{"n":{"$in":[[1]]}}})", "where.n.$in[0]"},
      {R"({"where":{"n":[1]}})", "where.n"},
      {R"({"where":{"n":{"$gt":null}}})", "where.n.$gt"},
      {R"({"where":3})", "options.where"},
      {R"({"sort":"n"})", "Unknown option \"sort\""},
      {R"({"orderBy":"-"})", "options.orderBy"},
      {R"({"orderBy":["n",7]})", "options.orderBy[1]"},
      {R"({"orderBy":{"field":"n","direction":"up"}})", "options.orderBy.direction"},
      {R"({"orderBy":{"direction":"asc"}})", "options.orderBy.field"},
      {R"({"orderBy":{"field":"n","dir":"asc"}})", "Unknown key \"dir\""},
      {R"({"limit":0})", "options.limit"},
      {R"({"limit":1.5})", "options.limit"},
      {R"({"offset":-1})", "options.offset"},
      {R"([])", "options"},
  };
  for (const Case& c : cases) {
    Status status = DecodeError(c.json);
    EXPECT_TRUE(HasCode(status, StatusCode::kInvalidArgument)) << c.json;
    EXPECT_NE(status.message().find(c.message_part), std::string::npos) << c.json << " -> " << status.message();
  }
}

TEST(FieldPath, Validation) {
  for (const char* good : {"a", "a.b", "_x1.y_2", "A.B.C"}) EXPECT_TRUE(IsValidFieldPath(good)) << good;
  for (const char* bad : {"", ".a", "a.", "a..b", "1a", "a.1b", "a-b", "a b", "a[0]", "a'b"}) {
    EXPECT_FALSE(IsValidFieldPath(bad)) << bad;
  }
  EXPECT_TRUE(IsValidFieldPath(std::string(128, 'a')));
  EXPECT_FALSE(IsValidFieldPath(std::string(129, 'a')));
}

// ---- Indexes

TEST_F(ListTest, CreateIndexIsUsedForEqualityAndRangeQueriesOnItsField) {
  const ListQuery equality = Query(R"({"where":{"n":2}})");
  const ListQuery range = Query(R"({"where":{"n":{"$gt":1,"$lte":3}}})");
  Result<std::string> before = store().ExplainList("note", equality);
  ASSERT_TRUE(IsOk(before));
  EXPECT_EQ(before.value().find("dsidx_"), std::string::npos) << before.value();

  ASSERT_TRUE(IsOk(store().CreateIndex("note", "n")));
  ASSERT_TRUE(IsOk(store().CreateIndex("note", "n")));  // idempotent
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM document_indexes WHERE entity_type = 'note' AND field = 'n'"), 1);
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name LIKE 'dsidx_%'"), 1);

  for (const ListQuery* query : {&equality, &range}) {
    Result<std::string> plan = store().ExplainList("note", *query);
    ASSERT_TRUE(IsOk(plan));
    EXPECT_NE(plan.value().find("USING INDEX dsidx_"), std::string::npos) << plan.value();
  }
  // Results are the same with the index.
  EXPECT_EQ(List(R"({"where":{"n":2}})"), (Keys{"b"}));
  EXPECT_EQ(List(R"({"where":{"n":{"$gt":1,"$lte":3}}})"), (Keys{"b", "c", "d"}));
  // The index is partial: another entity type does not use it.
  Result<std::string> other = store().ExplainList("task", equality);
  ASSERT_TRUE(IsOk(other));
  EXPECT_EQ(other.value().find("dsidx_"), std::string::npos) << other.value();
}

TEST_F(ListTest, CreateIndexOnANestedFieldAndInvalidArguments) {
  ASSERT_TRUE(IsOk(store().CreateIndex("note", "meta.author")));
  Result<std::string> plan = store().ExplainList("note", Query(R"({"where":{"meta.author":"bob"}})"));
  ASSERT_TRUE(IsOk(plan));
  EXPECT_NE(plan.value().find("USING INDEX dsidx_"), std::string::npos) << plan.value();
  EXPECT_EQ(List(R"({"where":{"meta.author":"bob"}})"), (Keys{"b"}));

  EXPECT_TRUE(HasCode(store().CreateIndex("note", "a'); DROP TABLE documents; --"), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(store().CreateIndex("bad type", "n"), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(store().CreateIndex("note", ""), StatusCode::kInvalidArgument));
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM document_indexes"), 1);
}

// ---- Tombstone purging

TEST_F(StoreTest, PurgeTombstonesOnlyPurgesSyncedTombstonesOlderThanTheRetention) {
  h_.Pull(Page({Remote(1, "CREATED", "local-del", R"({"a":1})"), Remote(2, "CREATED", "live", R"({"a":1})")}));
  Delete("local-del");  // at T0, DELETED pending
  h_.clock.Advance(1000);
  Result<int64_t> purged = store().PurgeTombstones(500);
  ASSERT_TRUE(IsOk(purged));
  EXPECT_EQ(purged.value(), 0);  // its delete has not reached the server

  // A failed delete is not synced either.
  Result<std::vector<Change>> batch = h_.queue->TakeBatch(0);
  ASSERT_TRUE(IsOk(batch));
  ASSERT_TRUE(IsOk(h_.queue->MarkFailed(batch.value()[0].change_id, "nope", 1)));
  EXPECT_EQ(store().PurgeTombstones(0).value(), 0);
  ASSERT_TRUE(IsOk(h_.queue->RetryFailed()));
  SyncAll();

  // A delete synced now, at T0 + 1000.
  Put("recent", R"({"a":1})");
  Delete("recent");  // cancels the unsent CREATED: nothing to sync
  // A pulled delete at T0 + 1000.
  h_.PullOne(Remote(3, "DELETED", "remote-del", std::nullopt));

  purged = store().PurgeTombstones(500);  // cutoff T0 + 500: only the first tombstone is older
  ASSERT_TRUE(IsOk(purged));
  EXPECT_EQ(purged.value(), 1);
  EXPECT_EQ(h_.WithMeta("local-del"), std::nullopt);
  ASSERT_TRUE(h_.WithMeta("recent"));
  ASSERT_TRUE(h_.WithMeta("remote-del"));

  EXPECT_EQ(store().PurgeTombstones(0).value(), 0);  // strictly older than the cutoff
  h_.clock.Advance(1);
  EXPECT_EQ(store().PurgeTombstones(0).value(), 2);
  EXPECT_EQ(h_.WithMeta("recent"), std::nullopt);
  EXPECT_EQ(h_.WithMeta("remote-del"), std::nullopt);
  EXPECT_EQ(h_.Visible("live"), R"({"a":1})");  // live documents are never purged
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM documents"), 1);
}

// ---- Atomicity: a write and its queued change are never separated

class AtomicityTest : public StoreTest {
 protected:
  void Trigger(const std::string& name, const std::string& when) {
    ASSERT_TRUE(IsOk(h_.db->Exec("CREATE TRIGGER " + name + " " + when +
                                 " BEGIN SELECT RAISE(ABORT, 'injected failure'); END")));
  }
  void ExpectInjected(const Status& status, const char* what) {
    EXPECT_FALSE(status.ok()) << what;
    EXPECT_NE(status.message().find("injected failure"), std::string::npos) << what << ": " << status.message();
    EXPECT_FALSE(h_.db->InTransaction()) << what;
  }
};

TEST_F(AtomicityTest, AFailedChangeInsertLeavesNoDocument) {
  Trigger("fail_insert", "BEFORE INSERT ON changes");
  const std::string before = h_.Snapshot();
  ExpectInjected(store().Put("note", "n1", R"({"a":1})").status(), "put");
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM documents"), 0);
  EXPECT_TRUE(h_.Changes().empty());
}

TEST_F(AtomicityTest, AFailedChangeInsertLeavesAnExistingDocumentUnchanged) {
  h_.PullOne(Remote(4, "CREATED", "n1", R"({"a":1,"b":2})"));
  Trigger("fail_insert", "BEFORE INSERT ON changes");
  const std::string before = h_.Snapshot();
  h_.clock.Advance(10);
  ExpectInjected(store().Put("note", "n1", R"({"a":2})").status(), "put");
  EXPECT_EQ(h_.Snapshot(), before);
  ExpectInjected(store().Patch("note", "n1", R"({"b":3})").status(), "patch");
  EXPECT_EQ(h_.Snapshot(), before);
  ExpectInjected(store().Delete("note", "n1").status(), "delete");
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":1,"b":2})");
  EXPECT_EQ(h_.Base("n1"), std::nullopt);
  EXPECT_TRUE(h_.Changes().empty());
}

TEST_F(AtomicityTest, AFailedCoalesceLeavesTheDocumentAndTheChangeUnchanged) {
  Put("n1", R"({"a":1})");
  Trigger("fail_update", "BEFORE UPDATE ON changes");
  const std::string before = h_.Snapshot();
  h_.clock.Advance(10);
  ExpectInjected(store().Patch("note", "n1", R"({"b":2})").status(), "patch");
  EXPECT_EQ(h_.Snapshot(), before);
  ExpectInjected(store().Put("note", "n1", R"({"c":3})").status(), "put");
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":1})");
}

TEST_F(AtomicityTest, AFailedCancellationLeavesTheDocumentAlive) {
  Put("n1", R"({"a":1})");
  Trigger("fail_delete", "BEFORE DELETE ON changes");
  const std::string before = h_.Snapshot();
  ExpectInjected(store().Delete("note", "n1").status(), "delete");
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":1})");
}

TEST_F(AtomicityTest, AFailureAfterTheChangeWasWrittenUndoesBoth) {
  // The alias is the last thing a coalescing write records.
  Put("n1", R"({"a":1})");
  Trigger("fail_alias", "BEFORE INSERT ON change_aliases");
  const std::string before = h_.Snapshot();
  ExpectInjected(store().Patch("note", "n1", R"({"b":2})").status(), "patch");
  EXPECT_EQ(h_.Snapshot(), before);
  ExpectInjected(store().Delete("note", "n1").status(), "delete");
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_EQ(h_.Changes().size(), 1u);
}

TEST_F(AtomicityTest, AFailedDocumentWriteQueuesNoChange) {
  h_.PullOne(Remote(1, "CREATED", "n1", R"({"a":1})"));
  Trigger("fail_doc_insert", "BEFORE INSERT ON documents");
  Trigger("fail_doc_update", "BEFORE UPDATE ON documents");
  const std::string before = h_.Snapshot();
  ExpectInjected(store().Put("note", "n2", R"({"a":1})").status(), "put new");
  ExpectInjected(store().Put("note", "n1", R"({"a":2})").status(), "put existing");
  ExpectInjected(store().Patch("note", "n1", R"({"a":3})").status(), "patch");
  ExpectInjected(store().Delete("note", "n1").status(), "delete");
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_TRUE(h_.Changes().empty());
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM change_aliases"), 0);
}

TEST_F(AtomicityTest, WritesInsideAnOuterTransactionRollBackWithIt) {
  const std::string before = h_.Snapshot();
  {
    Transaction outer(*h_.db);
    ASSERT_TRUE(IsOk(outer.status()));
    Put("n1", R"({"a":1})");
    Put("n2", R"({"a":2})");
    Patch("n1", R"({"b":1})");
    EXPECT_EQ(h_.Changes().size(), 2u);
    EXPECT_EQ(h_.Visible("n1"), R"({"a":1,"b":1})");
  }  // not committed
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_EQ(h_.Visible("n1"), std::nullopt);
  EXPECT_FALSE(h_.db->InTransaction());
}

TEST_F(AtomicityTest, AFailedWriteInsideAnOuterTransactionUndoesOnlyItself) {
  Trigger("fail_n2", "BEFORE INSERT ON changes WHEN NEW.entity_id = 'n2'");
  {
    Transaction outer(*h_.db);
    ASSERT_TRUE(IsOk(outer.status()));
    Put("n1", R"({"a":1})");
    Result<WriteEvent> failed = store().Put("note", "n2", R"({"a":2})");
    EXPECT_FALSE(failed.ok());
    EXPECT_TRUE(h_.db->InTransaction());  // the outer transaction survives
    Put("n3", R"({"a":3})");
    ASSERT_TRUE(IsOk(outer.Commit()));
  }
  EXPECT_EQ(h_.Visible("n1"), R"({"a":1})");
  EXPECT_EQ(h_.Visible("n2"), std::nullopt);
  EXPECT_EQ(h_.Visible("n3"), R"({"a":3})");
  std::vector<Change> changes = h_.Changes();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].entity_id, "n1");
  EXPECT_EQ(changes[1].entity_id, "n3");
  EXPECT_EQ(QueryInt(*h_.db, "SELECT count(*) FROM documents WHERE entity_id = 'n2'"), 0);
}

}  // namespace
}  // namespace deltasync
