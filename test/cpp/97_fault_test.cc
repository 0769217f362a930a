// 97: I/O fault injection. Each core write path (ChangeQueue::Enqueue/EnqueueMany,
// DocumentStore::Put, DeltaApplier::ApplyChunk, SyncServerCore::Sync/Push) runs on a
// file opened through FaultVfs (fault_vfs.h), once per N = 1, 2, ... with the Nth
// file call failing (once, or from then on), until an operation finishes without
// reaching N. Every trial must:
//   - return ok, or a non-ok Status coded STORAGE or BUSY (never crash, never another code);
//   - leave no transaction open;
//   - hold all (ok) or nothing (failed) of the operation: every table equals the
//     fault-free run's after it, or the untouched file's;
//   - pass PRAGMA integrity_check and foreign_key_check;
//   - stay usable: with faults off, a failed operation succeeds when retried and ends
//     where the fault-free run did, and a further write succeeds;
//   - read back the same, whole, after closing and reopening without the shim.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/apply.h"
#include "core/queue.h"
#include "core/schema.h"
#include "core/server.h"
#include "core/sqlite.h"
#include "core/store.h"
#include "fault_vfs.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::Created;
using testing_util::Deleted;
using testing_util::FaultVfs;
using testing_util::IsOk;
using testing_util::kFaultAll;
using testing_util::kFaultRead;
using testing_util::kFaultWriteSide;
using testing_util::kTestStartMs;
using testing_util::Page;
using testing_util::Remote;
using testing_util::ScopedDefaultVfs;
using testing_util::TempDir;
using testing_util::Updated;

namespace fs = std::filesystem;

// Upper bound on trials per sweep; a sweep normally ends well before, when the
// operation makes fewer than N calls of the armed kinds.
constexpr int64_t kMaxTrials = 2000;

// ---- deterministic randomness that can be replayed

// SplitMix64 whose sequence restarts on Restart(): an operation retried after a fault
// draws the same ids as the fault-free reference run did.
class ReplayRandom final : public Random {
 public:
  uint64_t Next() override {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  void Restart(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = seed;
  }

 private:
  std::mutex mutex_;
  uint64_t state_ = 1;
};

// ---- reading a file from outside (a second connection, default VFS)

std::unique_ptr<Database> OpenPlain(const std::string& path) {
  DatabaseOptions options;
  options.enable_wal = false;  // the file is WAL already; this connection must not change it
  options.must_exist = true;
  Result<std::unique_ptr<Database>> db = Database::Open(path, options);
  EXPECT_TRUE(IsOk(db)) << path;
  return db.ok() ? std::move(db).value() : nullptr;
}

std::vector<std::string> Rows(Database& db, const std::string& sql) {
  std::vector<std::string> rows;
  Result<std::unique_ptr<Statement>> stmt = db.Prepare(sql);
  EXPECT_TRUE(IsOk(stmt)) << sql;
  if (!stmt.ok()) return rows;
  const int columns = sqlite3_column_count(stmt.value()->handle());
  for (;;) {
    Result<bool> row = stmt.value()->Step();
    EXPECT_TRUE(IsOk(row)) << sql;
    if (!row.ok() || !row.value()) break;
    std::string text;
    for (int c = 0; c < columns; ++c) {
      text += stmt.value()->IsNull(c) ? "NULL" : "'" + std::string(stmt.value()->Text(c)) + "'";
      text += '|';
    }
    rows.push_back(std::move(text));
  }
  return rows;
}

// Every row of every table (the schema included), each table's rows sorted.
std::string Dump(const std::string& path) {
  std::unique_ptr<Database> db = OpenPlain(path);
  if (!db) return "<unreadable>";
  std::string out;
  for (const std::string& table : Rows(*db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")) {
    const std::string name = table.substr(1, table.size() - 3);  // strip the quotes and the '|'
    std::vector<std::string> rows = Rows(*db, "SELECT * FROM \"" + name + "\"");
    std::sort(rows.begin(), rows.end());
    out += "## " + name + "\n";
    for (const std::string& row : rows) out += row + "\n";
  }
  std::vector<std::string> schema = Rows(*db, "SELECT type, name, tbl_name, sql FROM sqlite_master");
  std::sort(schema.begin(), schema.end());
  out += "## sqlite_master\n";
  for (const std::string& row : schema) out += row + "\n";
  return out;
}

// "ok" when PRAGMA integrity_check passes and foreign_key_check finds nothing.
std::string Check(const std::string& path) {
  std::unique_ptr<Database> db = OpenPlain(path);
  if (!db) return "<unreadable>";
  std::vector<std::string> integrity = Rows(*db, "PRAGMA integrity_check");
  std::vector<std::string> foreign = Rows(*db, "PRAGMA foreign_key_check");
  std::string out;
  for (const std::string& row : integrity) out += row;
  for (const std::string& row : foreign) out += " fk:" + row;
  return out == "'ok'|" ? "ok" : out;
}

void RemoveDatabaseFiles(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix, ec);
}

// Copies a closed (fully checkpointed) database file.
void CopyDatabase(const std::string& from, const std::string& to) {
  RemoveDatabaseFiles(to);
  ASSERT_FALSE(fs::exists(from + "-wal")) << "the template must be closed before it is copied";
  fs::copy_file(from, to);
}

// ---- the sweeps

struct SweepMode {
  const char* name;
  unsigned ops;
  bool persistent;  // every armed call from the Nth on fails, not only the Nth
  Durability durability;
};

const SweepMode kModes[] = {
    {"the Nth write, sync or truncate fails (synchronous=FULL)", kFaultWriteSide, false, Durability::kFull},
    {"every write, sync and truncate from the Nth on fails (synchronous=FULL)", kFaultWriteSide, true,
     Durability::kFull},
    {"the Nth read fails", kFaultRead, false, Durability::kNormal},
    {"every read, write, sync and truncate from the Nth on fails", kFaultAll, true, Durability::kNormal},
};

// One object under test on one file. Open() goes through the shim; Operation() and
// FollowUp() restart their randomness, so that a run repeats another one exactly.
class Subject {
 public:
  virtual ~Subject() = default;
  // Builds the starting file at `path` (default VFS, no faults) and closes it.
  virtual void CreateTemplate(const std::string& path) = 0;
  virtual Status Open(const std::string& path, Durability durability) = 0;
  virtual void Close() = 0;
  virtual Status Operation() = 0;
  virtual Status FollowUp() = 0;
  // Whether the subject's connection was left inside a transaction (nullopt: cannot tell).
  virtual std::optional<bool> InTransaction() = 0;
};

struct SweepStats {
  int64_t trials = 0;
  int64_t failed = 0;     // trials whose operation returned an error
  int64_t tolerated = 0;  // trials whose operation succeeded although a call failed
};

void RunSweep(Subject& subject, const SweepMode& mode, const TempDir& dir, SweepStats* stats) {
  const std::string template_path = dir.File("template.db");
  const std::string path = dir.File("trial.db");
  FaultVfs& vfs = FaultVfs::Get();

  // The fault-free reference run.
  CopyDatabase(template_path, path);
  ASSERT_TRUE(IsOk(subject.Open(path, mode.durability)));
  const std::string before = Dump(path);
  ASSERT_TRUE(IsOk(subject.Operation()));
  const std::string after = Dump(path);
  ASSERT_TRUE(IsOk(subject.FollowUp()));
  const std::string after_follow_up = Dump(path);
  subject.Close();
  ASSERT_NE(before, after) << "the operation must change the file";
  ASSERT_EQ(Check(path), "ok");
  ASSERT_EQ(Dump(path), after_follow_up);

  for (int64_t n = 1;; ++n) {
    ASSERT_LE(n, kMaxTrials) << "the operation kept making file calls";
    SCOPED_TRACE(std::string(mode.name) + ", N = " + std::to_string(n));
    CopyDatabase(template_path, path);
    ASSERT_TRUE(IsOk(subject.Open(path, mode.durability)));
    vfs.Arm(n, mode.ops, mode.persistent);
    const Status status = subject.Operation();
    vfs.Disarm();
    if (vfs.failures() == 0) {
      // Fewer than N calls: every fault position has been tried.
      EXPECT_TRUE(IsOk(status));
      subject.Close();
      break;
    }
    ++stats->trials;
    if (status.ok()) {
      ++stats->tolerated;
      EXPECT_EQ(Dump(path), after) << "succeeded, but does not hold all of the operation";
    } else {
      ++stats->failed;
      EXPECT_TRUE(status.code() == StatusCode::kStorage || status.code() == StatusCode::kBusy)
          << status.ToString();
      EXPECT_NE(subject.InTransaction(), std::optional<bool>(true)) << "a transaction was left open";
      EXPECT_EQ(Dump(path), before) << "failed (" << status.ToString() << "), but changed the file";
      EXPECT_EQ(Check(path), "ok");
      const Status retried = subject.Operation();
      EXPECT_TRUE(IsOk(retried)) << "the retry after " << status.ToString();
      EXPECT_EQ(Dump(path), after) << "the retry did not end where the fault-free run did";
    }
    EXPECT_EQ(Check(path), "ok");
    EXPECT_TRUE(IsOk(subject.FollowUp()));
    EXPECT_EQ(Dump(path), after_follow_up);
    subject.Close();
    EXPECT_EQ(Check(path), "ok") << "after reopening";
    EXPECT_EQ(Dump(path), after_follow_up) << "after reopening";
    if (::testing::Test::HasFailure()) return;  // one failing position is enough to read
  }
}

void RunAllSweeps(Subject& subject) {
  TempDir dir;
  subject.CreateTemplate(dir.File("template.db"));
  if (::testing::Test::HasFatalFailure()) return;
  int64_t trials = 0;
  for (const SweepMode& mode : kModes) {
    SweepStats stats;
    RunSweep(subject, mode, dir, &stats);
    if (::testing::Test::HasFailure()) return;
    trials += stats.trials;
    testing_util::RecordFigures({{"faultTrials", trials}});
    // The sweep must have reached the operation's I/O, and some faults must have surfaced.
    EXPECT_GT(stats.trials, 0) << mode.name;
    EXPECT_GT(stats.failed, 0) << mode.name;
    std::printf("[ sweep    ] %s: %lld trials, %lld failed cleanly, %lld succeeded despite the fault\n", mode.name,
                static_cast<long long>(stats.trials), static_cast<long long>(stats.failed),
                static_cast<long long>(stats.tolerated));
  }
}

// ---- the client side: queue, store, applier on one connection

class ClientSubject : public Subject {
 public:
  using Action = std::function<Status(ClientSubject&)>;
  ClientSubject(Action operation, Action follow_up)
      : operation_(std::move(operation)), follow_up_(std::move(follow_up)) {}

  void CreateTemplate(const std::string& path) override {
    DatabaseOptions options;
    Result<std::unique_ptr<Database>> opened = Database::Open(path, options);
    ASSERT_TRUE(IsOk(opened));
    db_ = std::move(opened).value();
    ASSERT_TRUE(IsOk(Migrate(*db_, ClientMigrations())));
    MakeObjects();
    random_.Restart(7);
    // Pulled (synced) documents p1..p3 at versions 1..3, cursor 3.
    ApplyResult pulled;
    ASSERT_TRUE(IsOk(ApplyPage(Page({Remote(1, "CREATED", "p1", R"({"t":"p1","n":1})"),
                                     Remote(2, "CREATED", "p2", R"({"t":"p2","n":2})"),
                                     Remote(3, "CREATED", "p3", R"({"t":"p3","n":3})")},
                                    3),
                               &pulled)));
    // Local changes: a (created, then acknowledged), p3 (patched, in flight), q1 (created,
    // rejected once: pending but sent), then b (created), p2 (patched) and a (updated), pending.
    ASSERT_TRUE(IsOk(store_->Put("note", "a", R"({"t":"a","tags":["x","y"]})")));
    ASSERT_TRUE(IsOk(store_->Patch("note", "p3", R"({"n":33})")));
    ASSERT_TRUE(IsOk(queue_->Enqueue(Created("q1", R"({"q":1})", "cq1"))));
    Result<std::vector<Change>> taken = queue_->TakeBatch(100);
    ASSERT_TRUE(IsOk(taken));
    ASSERT_EQ(taken.value().size(), 3u);
    for (const Change& change : taken.value()) {
      if (change.entity_id == "a") {
        ASSERT_TRUE(IsOk(queue_->MarkSynced(change.change_id, std::nullopt)));
      } else if (change.entity_id == "q1") {
        ASSERT_TRUE(IsOk(queue_->MarkFailed(change.change_id, "rejected", 5)));
      }
    }
    ASSERT_TRUE(IsOk(store_->Put("note", "b", R"({"t":"b"})")));
    ASSERT_TRUE(IsOk(store_->Patch("note", "p2", R"({"n":22})")));
    ASSERT_TRUE(IsOk(store_->Put("note", "a", R"({"t":"a2","tags":["x"]})")));
    Close();
  }

  Status Open(const std::string& path, Durability durability) override {
    DatabaseOptions options;
    options.durability = durability;
    options.vfs = FaultVfs::Get().name();
    Result<std::unique_ptr<Database>> opened = Database::Open(path, options);
    if (!opened.ok()) return opened.status();
    db_ = std::move(opened).value();
    MakeObjects();
    return Status::Ok();
  }

  void Close() override {
    applier_.reset();
    store_.reset();
    queue_.reset();
    db_.reset();
  }

  Status Operation() override {
    random_.Restart(1001);
    return operation_(*this);
  }
  Status FollowUp() override {
    random_.Restart(2002);
    return follow_up_(*this);
  }
  std::optional<bool> InTransaction() override {
    return db_->InTransaction() || sqlite3_get_autocommit(db_->handle()) == 0;
  }

  Status ApplyPage(const std::string& json, ApplyResult* result) {
    simdjson::padded_string input(json);
    PullPage page;
    DS_RETURN_IF_ERROR(DecodePullPage(parser_, input, JsonLimits{}, &page));
    return applier_->ApplyChunk(page, 0, page.changes.size(), result);
  }

  ChangeQueue& queue() { return *queue_; }
  DocumentStore& store() { return *store_; }

 private:
  void MakeObjects() {
    queue_ = std::make_unique<ChangeQueue>(*db_, clock_, random_, QueueOptions{});
    store_ = std::make_unique<DocumentStore>(*db_, clock_, *queue_, JsonLimits{}.max_document_bytes);
    applier_ = std::make_unique<DeltaApplier>(*db_, clock_, *queue_, ConflictStrategy::kNewestWins);
  }

  Action operation_;
  Action follow_up_;
  ManualClock clock_{kTestStartMs};
  ReplayRandom random_;
  simdjson::ondemand::parser parser_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<ChangeQueue> queue_;
  std::unique_ptr<DocumentStore> store_;
  std::unique_ptr<DeltaApplier> applier_;
};

Status PutFollowUp(ClientSubject& s) { return s.store().Put("note", "later", R"({"t":"later"})").status(); }

TEST(FaultVfs, FailsTheNthArmedCallOnlyWhileArmed) {
  TempDir dir;
  const std::string path = dir.File("shim.db");
  DatabaseOptions options;
  options.vfs = FaultVfs::Get().name();
  options.durability = Durability::kFull;
  Result<std::unique_ptr<Database>> db = Database::Open(path, options);
  ASSERT_TRUE(IsOk(db));
  ASSERT_TRUE(IsOk(db.value()->Exec("CREATE TABLE t (x)")));
  FaultVfs& vfs = FaultVfs::Get();
  vfs.Arm(1, kFaultWriteSide, false);
  Status failed = db.value()->Exec("INSERT INTO t VALUES (1)");
  vfs.Disarm();
  EXPECT_EQ(vfs.failures(), 1);
  EXPECT_GE(vfs.operations(), 1);
  EXPECT_EQ(failed.code(), StatusCode::kStorage) << failed.ToString();
  EXPECT_TRUE(IsOk(db.value()->Exec("INSERT INTO t VALUES (2)")));
  EXPECT_EQ(testing_util::QueryInt(*db.value(), "SELECT sum(x) FROM t"), 2);
  // A connection on the default VFS never sees the shim.
  db.value().reset();
  Result<std::unique_ptr<Database>> plain = Database::Open(path, DatabaseOptions{});
  ASSERT_TRUE(IsOk(plain));
  vfs.Arm(1, kFaultAll, true);
  EXPECT_TRUE(IsOk(plain.value()->Exec("INSERT INTO t VALUES (3)")));
  vfs.Disarm();
  EXPECT_EQ(vfs.operations(), 0);
}

TEST(FaultInjection, EnqueueIsAllOrNothingUnderIoFaults) {
  // An UPDATED folded into the pending CREATED of `a`, with a changeId of its own.
  ClientSubject subject(
      [](ClientSubject& s) { return s.queue().Enqueue(Updated("a", R"({"t":"a3","n":1})", "op-1")).status(); },
      [](ClientSubject& s) { return s.queue().Enqueue(Created("f1", R"({"f":1})", "fu-1")).status(); });
  RunAllSweeps(subject);
}

TEST(FaultInjection, EnqueueManyIsAllOrNothingUnderIoFaults) {
  ClientSubject subject(
      [](ClientSubject& s) {
        std::vector<ChangeInput> inputs = {
            Created("m1", R"({"m":1})", "om-1"),
            Updated("m1", R"({"m":2,"k":"v"})", "om-2"),  // folds into om-1
            Deleted("b", "om-3"),                         // cancels b's pending CREATED
            Updated("q1", R"({"q":2})", "om-4"),          // q1 was sent once: queued, not folded
        };
        for (int i = 0; i < 40; ++i) {
          inputs.push_back(Created("bulk" + std::to_string(i), R"({"i":)" + std::to_string(i) + "}",
                                   "om-bulk-" + std::to_string(i)));
        }
        return s.queue().EnqueueMany(inputs).status();
      },
      [](ClientSubject& s) { return s.queue().Enqueue(Created("f1", R"({"f":1})", "fu-1")).status(); });
  RunAllSweeps(subject);
}

TEST(FaultInjection, DocumentStorePutIsAllOrNothingUnderIoFaults) {
  // p1 is a clean pulled document: the write keeps its server base and queues UPDATED.
  ClientSubject subject(
      [](ClientSubject& s) { return s.store().Put("note", "p1", R"({"t":"p1 local","extra":[1,2,3]})").status(); },
      PutFollowUp);
  RunAllSweeps(subject);
}

TEST(FaultInjection, DeltaApplierApplyChunkIsAllOrNothingUnderIoFaults) {
  const std::string page = Page(
      {
          Remote(4, "UPDATED", "p1", R"({"n":10})"),                   // clean: applied
          Remote(5, "UPDATED", "p2", R"({"t":"p2 remote"})", kTestStartMs + 60000),  // meets a local patch
          Remote(6, "DELETED", "b", std::nullopt, kTestStartMs + 60000),         // meets a local create
          Remote(7, "CREATED", "new", R"({"t":"new"})"),
          Remote(8, "UPDATED", "p3", R"({"n":30})", kTestStartMs - 60000),       // local in-flight change wins
      },
      8);
  ClientSubject subject(
      [page](ClientSubject& s) {
        ApplyResult result;
        return s.ApplyPage(page, &result);
      },
      PutFollowUp);
  RunAllSweeps(subject);
}

// ---- the server side

constexpr int64_t kServerNow = 1767225600000;

std::string ServerChange(const std::string& change_id, const std::string& type, const std::string& entity_id,
                         const std::optional<std::string>& data, std::optional<int64_t> base_version,
                         int64_t timestamp) {
  std::string out = R"({"changeId":")" + change_id + R"(","type":")" + type +
                    R"(","entityType":"note","entityId":")" + entity_id + "\"";
  if (data) out += ",\"data\":" + *data;
  if (base_version) out += ",\"baseVersion\":" + std::to_string(*base_version);
  return out + ",\"timestamp\":" + std::to_string(timestamp) + "}";
}

std::string ServerRequest(const std::string& device, const std::vector<std::string>& changes, int64_t last_known) {
  std::string out = R"({"deviceId":")" + device + R"(","lastKnownServerVersion":)" + std::to_string(last_known) +
                    R"(,"changes":[)";
  for (size_t i = 0; i < changes.size(); ++i) out += (i ? "," : "") + changes[i];
  return out + "]}";
}

class ServerSubject : public Subject {
 public:
  using Action = std::function<Result<std::string>(SyncServerCore&)>;
  ServerSubject(Action operation, Action follow_up)
      : operation_(std::move(operation)), follow_up_(std::move(follow_up)) {}

  void CreateTemplate(const std::string& path) override {
    ServerOptions options;
    options.path = path;
    Result<std::unique_ptr<SyncServerCore>> opened =
        SyncServerCore::Open(options, std::make_shared<ManualClock>(kServerNow));
    ASSERT_TRUE(IsOk(opened));
    const int64_t t0 = 1600000000000;
    std::vector<std::string> changes;
    for (int i = 1; i <= 4; ++i) {
      const std::string id = std::to_string(i);
      changes.push_back(ServerChange("seed-" + id, "CREATED", "n" + id, R"({"t":"n)" + id + R"(","v":1})",
                                     std::nullopt, t0));
    }
    ASSERT_TRUE(IsOk(opened.value()->Sync("u", ServerRequest("dev-1", changes, 0))));
  }

  Status Open(const std::string& path, Durability durability) override {
    ServerOptions options;
    options.path = path;
    options.durability = durability;
    // SyncServerCore::Open builds its own DatabaseOptions, so the shim is the default while it opens.
    ScopedDefaultVfs through_shim;
    Result<std::unique_ptr<SyncServerCore>> opened =
        SyncServerCore::Open(options, std::make_shared<ManualClock>(kServerNow));
    if (!opened.ok()) return opened.status();
    server_ = std::move(opened).value();
    return Status::Ok();
  }
  void Close() override { server_.reset(); }
  Status Operation() override { return operation_(*server_).status(); }
  Status FollowUp() override { return follow_up_(*server_).status(); }
  std::optional<bool> InTransaction() override { return std::nullopt; }

 private:
  Action operation_;
  Action follow_up_;
  std::unique_ptr<SyncServerCore> server_;
};

// From a second device: a clean update, a conflicting one, a delete, creates.
std::vector<std::string> SecondDeviceChanges(const std::string& prefix) {
  const int64_t t1 = 1600000100000;
  std::vector<std::string> changes = {
      ServerChange(prefix + "-1", "UPDATED", "n1", R"({"v":2})", 1, t1),
      ServerChange(prefix + "-2", "UPDATED", "n2", R"({"v":3})", 0, t1),  // stale base: a conflict
      ServerChange(prefix + "-3", "DELETED", "n3", std::nullopt, 3, t1),
  };
  for (int i = 0; i < 20; ++i) {
    changes.push_back(ServerChange(prefix + "-new-" + std::to_string(i), "CREATED", "x" + std::to_string(i),
                                   R"({"i":)" + std::to_string(i) + "}", std::nullopt, t1));
  }
  return changes;
}

Result<std::string> ServerFollowUp(SyncServerCore& server) {
  return server.Push("u", ServerRequest("dev-3", {ServerChange("later", "CREATED", "later", R"({"t":1})",
                                                               std::nullopt, 1600000200000)},
                                        0));
}

TEST(FaultInjection, ServerSyncIsAllOrNothingUnderIoFaults) {
  ServerSubject subject(
      [](SyncServerCore& server) { return server.Sync("u", ServerRequest("dev-2", SecondDeviceChanges("s"), 0)); },
      ServerFollowUp);
  RunAllSweeps(subject);
}

TEST(FaultInjection, ServerPushIsAllOrNothingUnderIoFaults) {
  ServerSubject subject(
      [](SyncServerCore& server) { return server.Push("u", ServerRequest("dev-2", SecondDeviceChanges("p"), 0)); },
      ServerFollowUp);
  RunAllSweeps(subject);
}

}  // namespace
}  // namespace deltasync
