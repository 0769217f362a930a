// 70: Client::Open: schema upgrade on open, device id, crash recovery of
// in-flight changes, refusal of foreign or newer files, BUSY at open, export.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "core/client.h"
#include "core/schema.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::Created;
using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::OpenDb;
using testing_util::QueryInt;
using testing_util::TempDir;
using testing_util::Updated;

constexpr int64_t kStart = 1700000000000;

class ClientTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<Client>> Open(ClientOptions options, uint64_t seed = 7) {
    return Client::Open(options, clock_, std::make_shared<SeededRandom>(seed));
  }
  std::unique_ptr<Client> MustOpen(ClientOptions options, uint64_t seed = 7) {
    Result<std::unique_ptr<Client>> client = Open(std::move(options), seed);
    EXPECT_TRUE(IsOk(client));
    return client.ok() ? std::move(client).value() : nullptr;
  }
  ClientOptions FileOptions(const std::string& name = "client.db") {
    ClientOptions options;
    options.path = dir_.File(name);
    return options;
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(kStart);
};

// ---- Open and device id

TEST_F(ClientTest, OpensAMemoryDatabaseAtTheNewestSchema) {
  ClientOptions options;
  options.path = ":memory:";
  auto client = MustOpen(options);
  ASSERT_NE(client, nullptr);
  Result<int> version = SchemaVersion(client->database());
  ASSERT_TRUE(IsOk(version));
  EXPECT_EQ(version.value(), ClientMigrations().back().version);
  EXPECT_EQ(client->recovered_at_open(), 0);
  EXPECT_EQ(client->options().path, ":memory:");
}

TEST_F(ClientTest, DeviceIdIsGeneratedFromTheInjectedRandom) {
  ClientOptions options;
  options.path = ":memory:";
  auto client = MustOpen(options, 99);
  ASSERT_NE(client, nullptr);
  SeededRandom expected(99);
  EXPECT_EQ(client->device_id(), expected.UuidV4());
}

TEST_F(ClientTest, DeviceIdIsGeneratedOnceAndPersistedAcrossReopen) {
  std::string first_id;
  {
    auto client = MustOpen(FileOptions(), 1);
    ASSERT_NE(client, nullptr);
    first_id = client->device_id();
    EXPECT_EQ(first_id.size(), 36u);
  }
  auto again = MustOpen(FileOptions(), 2);  // a different seed would generate a different id
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->device_id(), first_id);
  EXPECT_EQ(QueryInt(again->database(), "SELECT count(*) FROM meta WHERE key = 'device_id'"), 1);
}

TEST_F(ClientTest, AnExplicitDeviceIdOverrides) {
  std::string generated;
  {
    auto client = MustOpen(FileOptions());
    ASSERT_NE(client, nullptr);
    generated = client->device_id();
  }
  {
    ClientOptions options = FileOptions();
    options.device_id = "device-explicit";
    auto client = MustOpen(options);
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(client->device_id(), "device-explicit");
  }
  auto later = MustOpen(FileOptions(), 3);
  ASSERT_NE(later, nullptr);
  EXPECT_EQ(later->device_id(), "device-explicit");  // the explicit id was stored
  EXPECT_NE(later->device_id(), generated);
}

TEST_F(ClientTest, OptionsReachTheQueue) {
  ClientOptions options;
  options.path = ":memory:";
  options.coalesce = false;
  options.tenant_id = "tenant";
  options.user_id = "user";
  auto client = MustOpen(options);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(IsOk(client->queue().Enqueue(Created("n1", R"({"a":1})", "c1"))));
  Result<EnqueueResult> second = client->queue().Enqueue(Updated("n1", R"({"a":2})", "c2"));
  ASSERT_TRUE(IsOk(second));
  EXPECT_EQ(second.value().outcome, EnqueueOutcome::kQueued);  // coalesce: false
  Result<std::vector<Change>> all = client->queue().All();
  ASSERT_TRUE(IsOk(all));
  ASSERT_EQ(all.value().size(), 2u);
  EXPECT_EQ(all.value()[0].tenant_id, "tenant");
  EXPECT_EQ(all.value()[0].user_id, "user");
  EXPECT_EQ(all.value()[0].created_at, kStart);
}

TEST_F(ClientTest, LimitsReachTheDecoder) {
  ClientOptions options;
  options.path = ":memory:";
  options.limits.max_depth = 2;
  auto client = MustOpen(options);
  ASSERT_NE(client, nullptr);
  ChangeInput change;
  EXPECT_TRUE(IsOk(client->decoder().DecodeOne(
      R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"a":{}}})", "change", &change)));
  EXPECT_TRUE(HasCode(client->decoder().DecodeOne(
                          R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"a":{"b":{}}}})", "change",
                          &change),
                      StatusCode::kLimitExceeded));
}

TEST_F(ClientTest, DurabilityFullSetsSynchronousFull) {
  ClientOptions options = FileOptions();
  options.durability = Durability::kFull;
  auto client = MustOpen(options);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(QueryInt(client->database(), "PRAGMA synchronous"), 2);
}

TEST_F(ClientTest, TheStoreKeepsTheClientsSmallPageCache) {
  auto client = MustOpen(FileOptions());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(QueryInt(client->database(), "PRAGMA cache_size"), -kClientCacheKib);
}

// ---- Crash recovery

TEST_F(ClientTest, ChangesLeftInFlightReturnToPendingAtOpen) {
  {
    auto client = MustOpen(FileOptions());
    ASSERT_NE(client, nullptr);
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(IsOk(client->queue().Enqueue(Created("n" + std::to_string(i), "{}", "c" + std::to_string(i)))));
    }
    Result<std::vector<Change>> batch = client->queue().TakeBatch(3);
    ASSERT_TRUE(IsOk(batch));
    ASSERT_EQ(batch.value().size(), 3u);
    ASSERT_TRUE(IsOk(client->queue().MarkSynced("c0", 1)));
    // The process "crashes" here: the client goes away with c1, c2 still syncing.
  }
  {
    auto client = MustOpen(FileOptions());
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(client->recovered_at_open(), 2);
    Result<QueueStats> stats = client->queue().Stats();
    ASSERT_TRUE(IsOk(stats));
    EXPECT_EQ(stats.value().syncing, 0);
    EXPECT_EQ(stats.value().pending, 3);
    EXPECT_EQ(stats.value().synced, 1);
    Result<std::vector<Change>> pending = client->queue().Pending(0, std::nullopt);
    ASSERT_TRUE(IsOk(pending));
    ASSERT_EQ(pending.value().size(), 3u);
    EXPECT_EQ(pending.value()[0].change_id, "c1");  // order kept
    EXPECT_EQ(pending.value()[0].retry_count, 0);   // a crash is not a retry
    // Resent under the same changeIds, so the server can deduplicate.
    Result<std::vector<Change>> batch = client->queue().TakeBatch(0);
    ASSERT_TRUE(IsOk(batch));
    ASSERT_EQ(batch.value().size(), 3u);
    EXPECT_EQ(batch.value()[0].change_id, "c1");
    EXPECT_EQ(batch.value()[1].change_id, "c2");
  }
  auto client = MustOpen(FileOptions());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->recovered_at_open(), 3);
  auto clean = MustOpen(FileOptions("other.db"));
  ASSERT_NE(clean, nullptr);
  EXPECT_EQ(clean->recovered_at_open(), 0);
}

TEST_F(ClientTest, RowsKeepTheirContentAcrossReopen) {
  {
    auto client = MustOpen(FileOptions());
    ASSERT_TRUE(IsOk(client->queue().Enqueue(Created("n1", R"({"title":"é\n"})", "c1"))));
  }
  auto client = MustOpen(FileOptions());
  Result<std::vector<Change>> all = client->queue().All();
  ASSERT_TRUE(IsOk(all));
  ASSERT_EQ(all.value().size(), 1u);
  EXPECT_EQ(all.value()[0].data, R"({"title":"é\n"})");
  // Known changeIds survive too.
  EXPECT_TRUE(HasCode(client->queue().Enqueue(Created("n1", "{}", "c1")), StatusCode::kConflict));
}

// ---- Files that are not ours

TEST_F(ClientTest, AFileFromANewerReleaseIsNotADatabase) {
  {
    auto client = MustOpen(FileOptions());
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(IsOk(client->database().Exec("PRAGMA user_version=" +
                                             std::to_string(ClientMigrations().back().version + 5))));
  }
  Result<std::unique_ptr<Client>> client = Open(FileOptions());
  EXPECT_TRUE(HasCode(client, StatusCode::kNotADatabase));
}

TEST_F(ClientTest, AnotherApplicationsSqliteFileIsNotADatabaseAndIsLeftAlone) {
  const std::string path = dir_.File("client.db");
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(IsOk(db->Exec("CREATE TABLE users (id INTEGER PRIMARY KEY); INSERT INTO users VALUES (1)")));
  }
  Result<std::unique_ptr<Client>> client = Open(FileOptions());
  EXPECT_TRUE(HasCode(client, StatusCode::kNotADatabase));
  auto db = OpenDb(path);
  EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM sqlite_schema WHERE name = 'changes'"), 0);
  EXPECT_EQ(QueryInt(*db, "SELECT count(*) FROM users"), 1);
  EXPECT_EQ(QueryInt(*db, "PRAGMA application_id"), 0);
}

TEST_F(ClientTest, AFileThatIsNotSqliteIsNotADatabase) {
  {
    std::ofstream out(dir_.File("client.db"), std::ios::binary);
    for (int i = 0; i < 100; ++i) out << "{\"not\":\"sqlite\"}\n";
  }
  Result<std::unique_ptr<Client>> client = Open(FileOptions());
  EXPECT_TRUE(HasCode(client, StatusCode::kNotADatabase));
}

TEST_F(ClientTest, ADirectoryPathIsAnErrorNotACrash) {
  ClientOptions options;
  options.path = dir_.path().string();
  Result<std::unique_ptr<Client>> client = Open(options);
  EXPECT_FALSE(client.ok());
}

// ---- BUSY at open

TEST_F(ClientTest, OpenWithALockedFileAndNoBusyTimeoutIsBusy) {
  {
    auto client = MustOpen(FileOptions());  // create the file and its schema
    ASSERT_NE(client, nullptr);
  }
  auto holder = OpenDb(dir_.File("client.db"));
  ASSERT_NE(holder, nullptr);
  {
    Transaction lock(*holder);
    ASSERT_TRUE(IsOk(lock.status()));
    ClientOptions options = FileOptions();
    options.busy_timeout_ms = 0;
    Result<std::unique_ptr<Client>> client = Open(options);
    EXPECT_TRUE(HasCode(client, StatusCode::kBusy));
  }
  ClientOptions options = FileOptions();
  options.busy_timeout_ms = 0;
  EXPECT_TRUE(IsOk(Open(options)));
}

TEST_F(ClientTest, EnqueueWhileAnotherConnectionWritesIsBusyAndLeavesNoTrace) {
  ClientOptions options = FileOptions();
  options.busy_timeout_ms = 0;
  auto client = MustOpen(options);
  ASSERT_NE(client, nullptr);
  auto holder = OpenDb(dir_.File("client.db"));
  {
    Transaction lock(*holder);
    ASSERT_TRUE(IsOk(lock.status()));
    EXPECT_TRUE(HasCode(client->queue().Enqueue(Created("n1", "{}", "c1")), StatusCode::kBusy));
    EXPECT_TRUE(HasCode(client->queue().TakeBatch(10), StatusCode::kBusy));
    EXPECT_FALSE(client->database().InTransaction());
  }
  // The failed attempt reserved nothing: the same changeId goes through now.
  ASSERT_TRUE(IsOk(client->queue().Enqueue(Created("n1", "{}", "c1"))));
  Result<QueueStats> stats = client->queue().Stats();
  ASSERT_TRUE(IsOk(stats));
  EXPECT_EQ(stats.value().pending, 1);
}

// ---- Export

TEST_F(ClientTest, ExportJsonDescribesTheQueue) {
  ClientOptions options;
  options.path = ":memory:";
  options.device_id = "dev-1";
  options.user_id = "user \"1\"";
  auto client = MustOpen(options);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(IsOk(client->queue().Enqueue(Created("n1", R"({"a":1})", "c1"))));
  ASSERT_TRUE(IsOk(client->queue().Enqueue(Created("n2", R"({"b":2})", "c2"))));
  clock_->Advance(5);
  Result<std::string> exported = client->ExportJson();
  ASSERT_TRUE(IsOk(exported));
  EXPECT_FALSE(client->database().InTransaction());

  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(exported.value());
  simdjson::ondemand::document doc;
  ASSERT_EQ(parser.iterate(padded).get(doc), simdjson::SUCCESS);
  simdjson::ondemand::object root;
  ASSERT_EQ(doc.get_object().get(root), simdjson::SUCCESS);
  std::string_view format, device, user;
  int64_t format_version = 0, exported_at = 0, schema = 0;
  ASSERT_EQ(root["format"].get_string().get(format), simdjson::SUCCESS);
  ASSERT_EQ(root["formatVersion"].get_int64().get(format_version), simdjson::SUCCESS);
  ASSERT_EQ(root["exportedAt"].get_int64().get(exported_at), simdjson::SUCCESS);
  ASSERT_EQ(root["deviceId"].get_string().get(device), simdjson::SUCCESS);
  ASSERT_EQ(root["userId"].get_string().get(user), simdjson::SUCCESS);
  bool tenant_null = false;
  ASSERT_EQ(root["tenantId"].is_null().get(tenant_null), simdjson::SUCCESS);
  ASSERT_EQ(root["schemaVersion"].get_int64().get(schema), simdjson::SUCCESS);
  EXPECT_EQ(format, "deltasync.queue-export");
  EXPECT_EQ(format_version, 1);
  EXPECT_EQ(exported_at, kStart + 5);
  EXPECT_EQ(device, "dev-1");
  EXPECT_EQ(user, "user \"1\"");
  EXPECT_TRUE(tenant_null);
  EXPECT_EQ(schema, ClientMigrations().back().version);
  simdjson::ondemand::object stats;
  ASSERT_EQ(root["stats"].get_object().get(stats), simdjson::SUCCESS);
  int64_t pending = 0;
  ASSERT_EQ(stats["pending"].get_int64().get(pending), simdjson::SUCCESS);
  EXPECT_EQ(pending, 2);
  simdjson::ondemand::array changes;
  ASSERT_EQ(root["changes"].get_array().get(changes), simdjson::SUCCESS);
  size_t count = 0;
  for (auto element : changes) {
    (void)element;
    ++count;
  }
  EXPECT_EQ(count, 2u);
}

TEST(StatsToJson, ExactShape) {
  QueueStats stats;
  EXPECT_EQ(StatsToJson(stats),
            R"({"pending":0,"syncing":0,"failed":0,"synced":0,"byEntityType":{},"oldestPendingAt":null,)"
            R"("lastSyncTime":null})");
  stats.pending = 3;
  stats.syncing = 1;
  stats.failed = 2;
  stats.synced = 4;
  stats.by_entity_type["note"] = {2, 1, 0};
  stats.by_entity_type["a\"b"] = {1, 0, 2};
  stats.oldest_pending_at = 10;
  stats.last_sync_time = 20;
  EXPECT_EQ(StatsToJson(stats),
            R"({"pending":3,"syncing":1,"failed":2,"synced":4,"byEntityType":{"a\"b":{"pending":1,"syncing":0,)"
            R"("failed":2},"note":{"pending":2,"syncing":1,"failed":0}},"oldestPendingAt":10,"lastSyncTime":20})");
}

}  // namespace
}  // namespace deltasync
