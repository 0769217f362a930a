// 30: schema versioning: application_id, user_version, in-place upgrades and
// refusal of files that are not ours or are from a newer release.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/client.h"
#include "core/schema.h"
#include "core/server_sqlite_store.h"
#include "core/sqlite.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::OpenDb;
using testing_util::QueryInt;
using testing_util::QueryText;
using testing_util::TempDir;

constexpr const char* kItemsV1 =
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    "CREATE INDEX items_by_name ON items (name);";
constexpr const char* kItemsV2 =
    "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'none';"
    "CREATE TABLE tags (item_id INTEGER NOT NULL REFERENCES items (id), tag TEXT NOT NULL);";
// Fails halfway: the first statement succeeds, the second names a missing table.
constexpr const char* kBrokenV3 =
    "CREATE TABLE half_done (x INTEGER);"
    "INSERT INTO no_such_table VALUES (1);";
constexpr const char* kFixedV3 = "CREATE TABLE half_done (x INTEGER);";

const std::vector<Migration> kOneStep = {{1, kItemsV1}};
const std::vector<Migration> kTwoSteps = {{1, kItemsV1}, {2, kItemsV2}};
const std::vector<Migration> kBrokenThird = {{1, kItemsV1}, {2, kItemsV2}, {3, kBrokenV3}};
const std::vector<Migration> kFixedThird = {{1, kItemsV1}, {2, kItemsV2}, {3, kFixedV3}};

constexpr const char* kMarksV1 =
    "CREATE TABLE marks (id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('a', 'b', 'c')));"
    "INSERT INTO marks (kind) VALUES ('a'), ('b'), ('c');";
constexpr const char* kMarksIn = "CHECK (kind IN ('a', 'b', 'c'))";
constexpr const char* kMarksOr = "CHECK (kind = 'a' OR kind = 'b' OR kind = 'c')";

bool TableExists(Database& db, const std::string& name) {
  return QueryInt(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '" + name + "'") == 1;
}

std::string Definition(Database& db, const std::string& table) {
  return QueryText(db, "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = '" + table + "'").value_or("");
}

// How many temporary B-trees the statement opens each time it runs (SQLite's OpenEphemeral).
int TemporaryBtrees(Database& db, const std::string& sql) {
  Result<std::unique_ptr<Statement>> explain = db.Prepare("EXPLAIN " + sql);
  EXPECT_TRUE(IsOk(explain));
  if (!explain.ok()) return -1;
  int count = 0;
  for (;;) {
    Result<bool> row = explain.value()->Step();
    EXPECT_TRUE(IsOk(row));
    if (!row.ok() || !row.value()) return count;
    if (explain.value()->Text(1) == "OpenEphemeral") ++count;
  }
}

constexpr const char* kInsertQueuedChange =
    "INSERT INTO changes (change_id, entity_type, entity_id, type, timestamp, created_at, updated_at, status) "
    "VALUES (?1, 'note', 'n', ?2, 1, 1, 1, ?3)";
constexpr const char* kUpdateQueuedStatus = "UPDATE changes SET status = ?2 WHERE change_id = ?1";
constexpr const char* kInsertServerChange =
    "INSERT INTO entity_changes (user_id, version, change_id, change_type, entity_type, entity_id, "
    "client_timestamp, server_timestamp) VALUES (?1, ?2, ?3, ?4, 'note', 'n', 1, 1)";
constexpr const char* kInsertServerResult =
    "INSERT INTO change_results (user_id, change_id, fingerprint, outcome, entity_type, entity_id, action) "
    "VALUES (?1, ?2, 'f', ?3, 'note', 'n', 'CREATE')";

int Version(Database& db) {
  Result<int> version = SchemaVersion(db);
  EXPECT_TRUE(IsOk(version));
  return version.ok() ? version.value() : -1;
}

TEST(Schema, AFreshDatabaseStartsAtVersionZero) {
  auto db = OpenDb(":memory:");
  EXPECT_EQ(Version(*db), 0);
}

TEST(Schema, ClientMigrationsAreNumberedWithoutGaps) {
  const std::vector<Migration>& migrations = ClientMigrations();
  ASSERT_FALSE(migrations.empty());
  for (size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int>(i) + 1);
    EXPECT_NE(migrations[i].sql, nullptr);
  }
}

TEST(Schema, ClientMigrationsCreateTheQueueTablesAndMarkTheFile) {
  auto db = OpenDb(":memory:");
  ASSERT_TRUE(IsOk(Migrate(*db, ClientMigrations())));
  EXPECT_EQ(Version(*db), ClientMigrations().back().version);
  EXPECT_EQ(QueryInt(*db, "PRAGMA application_id"), kApplicationId);
  EXPECT_TRUE(TableExists(*db, "meta"));
  EXPECT_TRUE(TableExists(*db, "changes"));
  EXPECT_TRUE(TableExists(*db, "change_aliases"));
  // Running it again is a no-op.
  ASSERT_TRUE(IsOk(Migrate(*db, ClientMigrations())));
  EXPECT_EQ(Version(*db), ClientMigrations().back().version);
  EXPECT_FALSE(db->InTransaction());
}

TEST(Schema, ChangesTableChecksTypeAndStatus) {
  auto db = OpenDb(":memory:");
  ASSERT_TRUE(IsOk(Migrate(*db, ClientMigrations())));
  const std::string insert =
      "INSERT INTO changes (change_id, entity_type, entity_id, type, timestamp, created_at, updated_at, status) "
      "VALUES ";
  EXPECT_TRUE(IsOk(db->Exec(insert + "('a', 'note', 'n', 'CREATED', 1, 1, 1, 'pending')")));
  EXPECT_FALSE(db->Exec(insert + "('b', 'note', 'n', 'MOVED', 1, 1, 1, 'pending')").ok());
  EXPECT_FALSE(db->Exec(insert + "('c', 'note', 'n', 'CREATED', 1, 1, 1, 'lost')").ok());
  EXPECT_FALSE(db->Exec(insert + "('a', 'note', 'n', 'CREATED', 1, 1, 1, 'pending')").ok());  // unique change_id
}

TEST(Schema, ATableDefinitionEditRewritesTheCheckInPlaceForEveryConnection) {
  TempDir dir;
  const std::string path = dir.File("edit.db");
  auto db = OpenDb(path);
  ASSERT_TRUE(IsOk(Migrate(*db, {{1, kMarksV1}})));
  auto other = OpenDb(path);  // has read the old definition
  EXPECT_EQ(QueryInt(*other, "SELECT count(*) FROM marks"), 3);
  EXPECT_EQ(TemporaryBtrees(*other, "INSERT INTO marks (kind) VALUES (?1)"), 1);

  ASSERT_TRUE(IsOk(Migrate(*db, {{1, kMarksV1}, {2, "", {{"marks", kMarksIn, kMarksOr}}}})));
  EXPECT_EQ(Version(*db), 2);
  EXPECT_NE(Definition(*db, "marks").find(kMarksOr), std::string::npos);
  EXPECT_EQ(Definition(*db, "marks").find(kMarksIn), std::string::npos);
  EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM marks"), 3);
  // The other connection reads the new definition with its next transaction.
  for (Database* connection : {db.get(), other.get()}) {
    EXPECT_TRUE(IsOk(connection->Exec("INSERT INTO marks (kind) VALUES ('b')")));
    EXPECT_FALSE(connection->Exec("INSERT INTO marks (kind) VALUES ('d')").ok());
    EXPECT_FALSE(connection->Exec("UPDATE marks SET kind = 'A' WHERE id = 1").ok());
    EXPECT_EQ(TemporaryBtrees(*connection, "INSERT INTO marks (kind) VALUES (?1)"), 0);
  }
  // The connection cannot write sqlite_schema any more.
  EXPECT_FALSE(db->Exec("UPDATE sqlite_schema SET sql = sql WHERE name = 'marks'").ok());
}

TEST(Schema, ATableDefinitionEditWhoseTextIsAbsentFailsAndLeavesTheFileAtThePreviousVersion) {
  auto db = OpenDb(":memory:");
  ASSERT_TRUE(IsOk(Migrate(*db, {{1, kMarksV1}})));
  const std::string before = Definition(*db, "marks");
  Status absent = Migrate(*db, {{1, kMarksV1}, {2, "", {{"marks", "CHECK (kind IN ('x'))", kMarksOr}}}});
  EXPECT_TRUE(HasCode(absent, StatusCode::kNotADatabase));
  EXPECT_NE(absent.message().find("table 'marks'"), std::string::npos) << absent.message();
  Status no_table = Migrate(*db, {{1, kMarksV1}, {2, "", {{"no_such_table", kMarksIn, kMarksOr}}}});
  EXPECT_TRUE(HasCode(no_table, StatusCode::kNotADatabase));
  EXPECT_EQ(Version(*db), 1);
  EXPECT_EQ(Definition(*db, "marks"), before);
  EXPECT_FALSE(db->Exec("UPDATE sqlite_schema SET sql = sql WHERE name = 'marks'").ok());
}

// Edits made inside a caller's transaction that then rolls back leave this connection with the
// file's definitions, even when another connection changes the schema before it runs again.
TEST(Schema, ATableDefinitionEditRolledBackWithTheCallersTransactionLeavesNoStaleSchema) {
  TempDir dir;
  const std::string path = dir.File("rolled-back-edit.db");
  auto db = OpenDb(path);
  ASSERT_TRUE(IsOk(Migrate(*db, {{1, kMarksV1}})));
  {
    Transaction outer(*db);
    ASSERT_TRUE(IsOk(outer.status()));
    ASSERT_TRUE(IsOk(Migrate(*db, {{1, kMarksV1}, {2, "", {{"marks", kMarksIn, kMarksOr}}}})));
    EXPECT_EQ(Version(*db), 2);
  }
  auto other = OpenDb(path);
  ASSERT_TRUE(IsOk(other->Exec("CREATE INDEX marks_by_kind ON marks (kind)")));
  ASSERT_TRUE(IsOk(db->Exec("INSERT INTO marks (kind) VALUES ('a'), ('c')")));
  EXPECT_EQ(Version(*db), 1);
  EXPECT_NE(Definition(*db, "marks").find(kMarksIn), std::string::npos);
  EXPECT_EQ(QueryText(*db, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(QueryInt(*other, "SELECT count(*) FROM marks INDEXED BY marks_by_kind WHERE kind = 'a'"), 2);
}

TEST(Schema, ATableDefinitionEditThatDoesNotParseFailsAndLeavesTheFileAtThePreviousVersion) {
  TempDir dir;
  const std::string path = dir.File("broken-edit.db");
  auto db = OpenDb(path);
  ASSERT_TRUE(IsOk(Migrate(*db, {{1, kMarksV1}})));
  const std::string before = Definition(*db, "marks");
  Status broken = Migrate(*db, {{1, kMarksV1}, {2, "", {{"marks", kMarksIn, "CHECK (kind IN"}}}});
  EXPECT_FALSE(broken.ok());
  EXPECT_NE(broken.message().find("schema version 2"), std::string::npos) << broken.message();
  EXPECT_EQ(Version(*db), 1);
  EXPECT_EQ(Definition(*db, "marks"), before);
  EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM marks"), 3);
  EXPECT_FALSE(db->Exec("INSERT INTO marks (kind) VALUES ('d')").ok());
  auto reopened = OpenDb(path);
  EXPECT_EQ(Definition(*reopened, "marks"), before);
  EXPECT_TRUE(IsOk(reopened->Exec("INSERT INTO marks (kind) VALUES ('c')")));
}

// An IN list of three or more values is checked through a temporary B-tree built for every
// row written; the hot inserts and updates of both schemas must not pay for one.
TEST(Schema, QueueWritesBuildNoTemporaryBtreeInAFreshOrAnUpgradedFile) {
  auto fresh = OpenDb(":memory:");
  ASSERT_TRUE(IsOk(Migrate(*fresh, ClientMigrations())));
  auto upgraded = OpenDb(":memory:");
  std::vector<Migration> previous = ClientMigrations();
  previous.pop_back();
  ASSERT_TRUE(IsOk(Migrate(*upgraded, previous)));
  EXPECT_EQ(TemporaryBtrees(*upgraded, kInsertQueuedChange), 2);  // what version 7 removes
  ASSERT_TRUE(IsOk(upgraded->Exec("INSERT INTO changes (change_id, entity_type, entity_id, type, timestamp, "
                                  "created_at, updated_at, status) VALUES ('kept', 'note', 'n', 'UPDATED', 1, 1, 1, "
                                  "'syncing')")));
  ASSERT_TRUE(IsOk(Migrate(*upgraded, ClientMigrations())));
  EXPECT_EQ(QueryInt(*upgraded, "SELECT count(*) FROM changes WHERE change_id = 'kept' AND status = 'syncing'"), 1);
  for (Database* db : {fresh.get(), upgraded.get()}) {
    EXPECT_EQ(TemporaryBtrees(*db, kInsertQueuedChange), 0);
    EXPECT_EQ(TemporaryBtrees(*db, kUpdateQueuedStatus), 0);
  }
}

TEST(Schema, ServerLogWritesBuildNoTemporaryBtreeInAFreshOrAnUpgradedFile) {
  auto fresh = OpenDb(":memory:");
  ASSERT_TRUE(IsOk(Migrate(*fresh, ServerMigrations(), kServerApplicationId)));
  auto upgraded = OpenDb(":memory:");
  std::vector<Migration> previous = ServerMigrations();
  previous.pop_back();
  ASSERT_TRUE(IsOk(Migrate(*upgraded, previous, kServerApplicationId)));
  EXPECT_EQ(TemporaryBtrees(*upgraded, kInsertServerChange), 1);  // what version 3 removes
  ASSERT_TRUE(IsOk(upgraded->Exec("INSERT INTO entity_changes (user_id, version, change_id, change_type, "
                                  "entity_type, entity_id, client_timestamp, server_timestamp) VALUES ('u', 1, 'c', "
                                  "'DELETED', 'note', 'n', 1, 1)")));
  ASSERT_TRUE(IsOk(Migrate(*upgraded, ServerMigrations(), kServerApplicationId)));
  EXPECT_EQ(QueryInt(*upgraded, "SELECT count(*) FROM entity_changes WHERE change_type = 'DELETED'"), 1);
  for (Database* db : {fresh.get(), upgraded.get()}) {
    EXPECT_EQ(TemporaryBtrees(*db, kInsertServerChange), 0);
    EXPECT_EQ(TemporaryBtrees(*db, kInsertServerResult), 0);
    EXPECT_FALSE(db->Exec("INSERT INTO entity_changes (user_id, version, change_id, change_type, entity_type, "
                          "entity_id, client_timestamp, server_timestamp) VALUES ('u', 9, 'x', 'MOVED', 'note', "
                          "'n', 1, 1)")
                     .ok());
    EXPECT_FALSE(db->Exec("INSERT INTO change_results (user_id, change_id, fingerprint, outcome, entity_type, "
                          "entity_id, action) VALUES ('u', 'x', 'f', 'lost', 'note', 'n', 'CREATE')")
                     .ok());
  }
}

TEST(Schema, TwoStepMigrationUpgradesAVersionOneFileAndKeepsItsRows) {
  TempDir dir;
  const std::string path = dir.File("upgrade.db");
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(IsOk(Migrate(*db, kOneStep)));
    EXPECT_EQ(Version(*db), 1);
    ASSERT_TRUE(IsOk(db->Exec("INSERT INTO items (name) VALUES ('alpha'), ('beta'), ('gamma')")));
  }
  {
    auto db = OpenDb(path);
    EXPECT_EQ(Version(*db), 1);
    ASSERT_TRUE(IsOk(Migrate(*db, kTwoSteps)));
    EXPECT_EQ(Version(*db), 2);
    EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM items"), 3);
    EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM items WHERE note = 'none'"), 3);
    EXPECT_EQ(QueryInt(*db, "SELECT id FROM items WHERE name = 'beta'"), 2);
    EXPECT_TRUE(TableExists(*db, "tags"));
    ASSERT_TRUE(IsOk(db->Exec("INSERT INTO tags VALUES (1, 'x')")));
  }
  auto db = OpenDb(path);  // the upgrade is durable
  EXPECT_EQ(Version(*db), 2);
  EXPECT_EQ(QueryInt(*db, "PRAGMA application_id"), kApplicationId);
  EXPECT_TRUE(IsOk(Migrate(*db, kTwoSteps)));
  EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM tags"), 1);
}

TEST(Schema, AFreshFileRunsEveryStep) {
  auto db = OpenDb(":memory:");
  ASSERT_TRUE(IsOk(Migrate(*db, kTwoSteps)));
  EXPECT_EQ(Version(*db), 2);
  EXPECT_TRUE(TableExists(*db, "items"));
  EXPECT_TRUE(TableExists(*db, "tags"));
}

TEST(Schema, AFileFromANewerReleaseIsRefusedAndLeftAlone) {
  TempDir dir;
  const std::string path = dir.File("newer.db");
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(IsOk(Migrate(*db, kTwoSteps)));
    ASSERT_TRUE(IsOk(db->Exec("PRAGMA user_version=3")));
  }
  auto db = OpenDb(path);
  Status status = Migrate(*db, kTwoSteps);
  EXPECT_TRUE(HasCode(status, StatusCode::kNotADatabase));
  EXPECT_NE(status.message().find("newer"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("upgrade deltasync"), std::string::npos) << status.message();
  EXPECT_EQ(Version(*db), 3);
  EXPECT_FALSE(db->InTransaction());
}

TEST(Schema, AFileFromANewerClientReleaseIsRefused) {
  TempDir dir;
  const std::string path = dir.File("newer-client.db");
  const int newest = ClientMigrations().back().version;
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(IsOk(Migrate(*db, ClientMigrations())));
    ASSERT_TRUE(IsOk(db->Exec("PRAGMA user_version=" + std::to_string(newest + 1))));
  }
  auto db = OpenDb(path);
  EXPECT_TRUE(HasCode(Migrate(*db, ClientMigrations()), StatusCode::kNotADatabase));
  EXPECT_EQ(Version(*db), newest + 1);
}

TEST(Schema, AnSqliteFileOfAnotherApplicationIsRefusedAndLeftAlone) {
  TempDir dir;
  const std::string path = dir.File("other.db");
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(IsOk(db->Exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT);"
                              "INSERT INTO accounts (owner) VALUES ('someone')")));
  }
  auto db = OpenDb(path);
  Status status = Migrate(*db, ClientMigrations());
  EXPECT_TRUE(HasCode(status, StatusCode::kNotADatabase));
  EXPECT_NE(status.message().find("not a deltasync database"), std::string::npos) << status.message();
  EXPECT_EQ(QueryInt(*db, "PRAGMA application_id"), 0);
  EXPECT_EQ(Version(*db), 0);
  EXPECT_FALSE(TableExists(*db, "changes"));
  EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM accounts"), 1);
}

TEST(Schema, AnEmptyFileWithAForeignApplicationIdIsRefused) {
  auto db = OpenDb(":memory:");
  ASSERT_TRUE(IsOk(db->Exec("PRAGMA application_id=1234")));
  EXPECT_TRUE(HasCode(Migrate(*db, ClientMigrations()), StatusCode::kNotADatabase));
  EXPECT_FALSE(TableExists(*db, "changes"));
}

TEST(Schema, AFailingMigrationLeavesTheFileAtThePreviousVersion) {
  TempDir dir;
  const std::string path = dir.File("crash.db");
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(IsOk(Migrate(*db, kOneStep)));
    ASSERT_TRUE(IsOk(db->Exec("INSERT INTO items (name) VALUES ('kept')")));
  }
  {
    auto db = OpenDb(path);
    Status status = Migrate(*db, kBrokenThird);
    EXPECT_FALSE(status.ok());
    EXPECT_NE(status.message().find("Migration to schema version 3 failed"), std::string::npos) << status.message();
    EXPECT_NE(status.message().find("no_such_table"), std::string::npos) << status.message();
    // Step 2 committed on its own; step 3 left nothing behind.
    EXPECT_EQ(Version(*db), 2);
    EXPECT_TRUE(TableExists(*db, "tags"));
    EXPECT_FALSE(TableExists(*db, "half_done"));
    EXPECT_FALSE(db->InTransaction());
  }
  {
    auto db = OpenDb(path);  // what a restart after the crash sees
    EXPECT_EQ(Version(*db), 2);
    EXPECT_FALSE(TableExists(*db, "half_done"));
    EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM items"), 1);
    // A fixed release finishes the upgrade from there.
    ASSERT_TRUE(IsOk(Migrate(*db, kFixedThird)));
    EXPECT_EQ(Version(*db), 3);
    EXPECT_TRUE(TableExists(*db, "half_done"));
    EXPECT_EQ(QueryInt(*db, "SELECT name = 'kept' FROM items"), 1);
  }
}

TEST(Schema, AFirstMigrationThatFailsLeavesAnEmptyDeltasyncFileThatCanBeMigratedLater) {
  TempDir dir;
  const std::string path = dir.File("first.db");
  {
    auto db = OpenDb(path);
    const std::vector<Migration> broken = {{1, kBrokenV3}};
    EXPECT_FALSE(Migrate(*db, broken).ok());
    EXPECT_EQ(Version(*db), 0);
    EXPECT_FALSE(TableExists(*db, "half_done"));
  }
  auto db = OpenDb(path);
  ASSERT_TRUE(IsOk(Migrate(*db, kTwoSteps)));
  EXPECT_EQ(Version(*db), 2);
}

TEST(Schema, MigrateRunsInsideAnOpenTransactionAsSavepoints) {
  // Migrate uses Transaction, so it nests; the whole upgrade then commits or
  // rolls back with the caller's transaction.
  auto db = OpenDb(":memory:");
  {
    Transaction outer(*db);
    ASSERT_TRUE(IsOk(outer.status()));
    ASSERT_TRUE(IsOk(Migrate(*db, kTwoSteps)));
    EXPECT_EQ(Version(*db), 2);
  }
  EXPECT_EQ(Version(*db), 0);
  EXPECT_FALSE(TableExists(*db, "items"));
}


TEST(Schema, AVersionOneClientFileUpgradesOnOpenKeepsItsRowsAndMarksSentRowsAsAttempted) {
  TempDir dir;
  const std::string path = dir.File("v1-client.db");
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(IsOk(Migrate(*db, {ClientMigrations().front()})));
    EXPECT_EQ(Version(*db), 1);
    ASSERT_TRUE(IsOk(db->Exec(
        "INSERT INTO meta (key, value) VALUES ('device_id', 'dev-v1');"
        "INSERT INTO changes (change_id, entity_type, entity_id, type, data, timestamp, created_at, updated_at, "
        "status, retry_count, synced_at, server_version) VALUES "
        "('fresh', 'note', 'n1', 'CREATED', '{\"a\":1}', 1, 1, 1, 'pending', 0, NULL, NULL),"
        "('retried', 'note', 'n2', 'UPDATED', '{\"a\":1}', 2, 2, 2, 'pending', 2, NULL, NULL),"
        "('in-flight', 'note', 'n3', 'CREATED', '{\"a\":1}', 3, 3, 3, 'syncing', 0, NULL, NULL),"
        "('failed', 'note', 'n4', 'UPDATED', '{\"a\":1}', 4, 4, 4, 'failed', 5, NULL, NULL),"
        "('synced', 'note', 'n5', 'CREATED', '{\"a\":1}', 5, 5, 5, 'synced', 0, 6, 17);"
        "INSERT INTO change_aliases (change_id, merged_into) VALUES ('folded', 'fresh');")));
  }
  ClientOptions options;
  options.path = path;
  auto clock = std::make_shared<ManualClock>(1700000000000);
  Result<std::unique_ptr<Client>> opened = Client::Open(options, clock, std::make_shared<SeededRandom>(3));
  ASSERT_TRUE(IsOk(opened));
  Client& client = *opened.value();
  Database& db = client.database();
  EXPECT_EQ(Version(db), ClientMigrations().back().version);  // every later migration ran too
  EXPECT_EQ(client.device_id(), "dev-v1");
  EXPECT_TRUE(TableExists(db, "documents"));
  EXPECT_TRUE(TableExists(db, "conflicts"));
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM changes"), 5);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM change_aliases"), 1);
  EXPECT_EQ(QueryInt(db, "SELECT server_version FROM changes WHERE change_id = 'synced'"), 17);
  auto attempts = [&](const std::string& id) {
    return QueryInt(db, "SELECT attempts FROM changes WHERE change_id = '" + id + "'");
  };
  EXPECT_EQ(attempts("fresh"), 0);
  EXPECT_EQ(attempts("retried"), 1);
  EXPECT_EQ(attempts("in-flight"), 1);
  EXPECT_EQ(attempts("failed"), 1);
  EXPECT_EQ(attempts("synced"), 1);
  EXPECT_EQ(client.recovered_at_open(), 1);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM changes WHERE change_id = 'in-flight' AND status = 'pending'"), 1);

  // Only the change that never went out may still be coalesced.
  auto update = [&](const std::string& entity_id) {
    ChangeInput input;
    input.type = ChangeType::kUpdated;
    input.entity_type = "note";
    input.entity_id = entity_id;
    input.data = R"({"b":2})";
    Result<EnqueueResult> result = client.queue().Enqueue(input);
    EXPECT_TRUE(IsOk(result));
    return result.ok() ? result.value().outcome : EnqueueOutcome::kDuplicate;
  };
  EXPECT_EQ(update("n1"), EnqueueOutcome::kCoalesced);
  EXPECT_EQ(update("n2"), EnqueueOutcome::kQueued);
  EXPECT_EQ(update("n3"), EnqueueOutcome::kQueued);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM changes"), 7);
  // A replay of the folded changeId is still recognised.
  Result<bool> known = client.queue().IsKnownChangeId("folded");
  ASSERT_TRUE(IsOk(known));
  EXPECT_TRUE(known.value());
}

}  // namespace
}  // namespace deltasync
