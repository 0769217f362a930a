// 20: Database, Statement and Transaction (RAII over the SQLite C API),
// including nested savepoints and BUSY handling between two connections.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "core/sqlite.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::OpenDb;
using testing_util::QueryInt;
using testing_util::TempDir;

std::string QueryText(Database& db, const std::string& sql) {
  Result<std::unique_ptr<Statement>> stmt = db.Prepare(sql);
  EXPECT_TRUE(IsOk(stmt)) << sql;
  if (!stmt.ok()) return "";
  Result<bool> row = stmt.value()->Step();
  EXPECT_TRUE(IsOk(row));
  if (!row.ok() || !row.value()) return "";
  return std::string(stmt.value()->Text(0));
}

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = OpenDb(":memory:");
    ASSERT_NE(db_, nullptr);
    ASSERT_TRUE(IsOk(db_->Exec("CREATE TABLE t (x INTEGER, y TEXT)")));
  }
  int64_t Count() { return QueryInt(*db_, "SELECT count(*) FROM t"); }
  Status Insert(int x) { return db_->Exec("INSERT INTO t (x) VALUES (" + std::to_string(x) + ")"); }

  std::unique_ptr<Database> db_;
};

// ---- Database

TEST(Database, OpensAFileInWalModeWithTheChosenDurability) {
  TempDir dir;
  const std::string path = dir.File("wal.db");
  {
    auto db = OpenDb(path);
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(QueryText(*db, "PRAGMA journal_mode"), "wal");
    EXPECT_EQ(QueryInt(*db, "PRAGMA synchronous"), 1);  // NORMAL
    EXPECT_EQ(QueryInt(*db, "PRAGMA foreign_keys"), 1);
    EXPECT_EQ(QueryInt(*db, "PRAGMA cache_size"), -kServerCacheKib);
    EXPECT_EQ(db->path(), path);
  }
  DatabaseOptions full;
  full.durability = Durability::kFull;
  Result<std::unique_ptr<Database>> db = Database::Open(path, full);
  ASSERT_TRUE(IsOk(db));
  EXPECT_EQ(QueryInt(*db.value(), "PRAGMA synchronous"), 2);  // FULL
}

TEST(Database, OpensWithTheChosenPageCache) {
  DatabaseOptions options;
  options.cache_kib = 1234;
  Result<std::unique_ptr<Database>> db = Database::Open(":memory:", options);
  ASSERT_TRUE(IsOk(db));
  EXPECT_EQ(QueryInt(*db.value(), "PRAGMA cache_size"), -1234);
}

TEST(Database, MemoryDatabasesAreAllowed) {
  auto db = OpenDb(":memory:");
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(IsOk(db->Exec("CREATE TABLE a (x); INSERT INTO a VALUES (1); INSERT INTO a VALUES (2)")));
  EXPECT_EQ(QueryInt(*db, "SELECT sum(x) FROM a"), 3);
}

TEST(Database, MustExistGivesNotFoundForAMissingFile) {
  TempDir dir;
  DatabaseOptions options;
  options.must_exist = true;
  Result<std::unique_ptr<Database>> db = Database::Open(dir.File("missing.db"), options);
  EXPECT_TRUE(HasCode(db, StatusCode::kNotFound));
  EXPECT_NE(db.status().message().find("missing.db"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.File("missing.db")));
}

TEST(Database, ReadOnlyRefusesWrites) {
  TempDir dir;
  const std::string path = dir.File("ro.db");
  {
    auto db = OpenDb(path);
    ASSERT_TRUE(IsOk(db->Exec("CREATE TABLE a (x); INSERT INTO a VALUES (7)")));
  }
  DatabaseOptions options;
  options.read_only = true;
  Result<std::unique_ptr<Database>> db = Database::Open(path, options);
  ASSERT_TRUE(IsOk(db));
  EXPECT_EQ(QueryInt(*db.value(), "SELECT x FROM a"), 7);
  Status write = db.value()->Exec("INSERT INTO a VALUES (8)");
  EXPECT_FALSE(write.ok());
  EXPECT_EQ(QueryInt(*db.value(), "SELECT count(*) FROM a"), 1);
}

TEST(Database, AFileThatIsNotSqliteIsNotADatabase) {
  TempDir dir;
  const std::string path = dir.File("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 200; ++i) out << "this is not an SQLite database, just text. ";
  }
  Result<std::unique_ptr<Database>> db = Database::Open(path, DatabaseOptions{});
  if (db.ok()) {
    // SQLite opens lazily; the first real read must then report it.
    EXPECT_TRUE(HasCode(db.value()->Exec("SELECT count(*) FROM sqlite_schema"), StatusCode::kNotADatabase));
  } else {
    EXPECT_TRUE(HasCode(db, StatusCode::kNotADatabase));
  }
}

TEST_F(SqliteTest, ExecReportsSyntaxErrorsAsStorageWithTheMessage) {
  Status status = db_->Exec("CREATE TABLEX nope");
  EXPECT_TRUE(HasCode(status, StatusCode::kStorage));
  EXPECT_NE(status.message().find("syntax error"), std::string::npos) << status.message();
}

TEST_F(SqliteTest, ConstraintViolationsAreErrorsNotCrashes) {
  ASSERT_TRUE(IsOk(db_->Exec("CREATE TABLE u (k TEXT PRIMARY KEY)")));
  ASSERT_TRUE(IsOk(db_->Exec("INSERT INTO u VALUES ('a')")));
  Status status = db_->Exec("INSERT INTO u VALUES ('a')");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("UNIQUE"), std::string::npos) << status.message();
}

TEST_F(SqliteTest, PrepareFailsWithAStatus) {
  Result<std::unique_ptr<Statement>> stmt = db_->Prepare("SELECT * FROM no_such_table");
  EXPECT_FALSE(stmt.ok());
  EXPECT_NE(stmt.status().message().find("no_such_table"), std::string::npos);
}

// ---- Statement

TEST_F(SqliteTest, BindsAndReadsEveryType) {
  ASSERT_TRUE(IsOk(db_->Exec("CREATE TABLE v (i INTEGER, d REAL, s TEXT, n TEXT, oi INTEGER, os TEXT)")));
  auto insert = db_->Prepare("INSERT INTO v VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  ASSERT_TRUE(IsOk(insert));
  const std::string text("with\0nul", 8);
  const std::optional<std::string> some_text = "opt";
  insert.value()->BindInt(1, INT64_C(9007199254740993));
  insert.value()->BindDouble(2, 2.5);
  insert.value()->BindText(3, text);
  insert.value()->BindNull(4);
  insert.value()->BindOptionalInt(5, std::nullopt);
  insert.value()->BindOptionalText(6, some_text);
  ASSERT_TRUE(IsOk(insert.value()->Run()));
  EXPECT_EQ(db_->Changes(), 1);
  EXPECT_EQ(db_->LastInsertRowId(), 1);

  auto select = db_->Prepare("SELECT i, d, s, n, oi, os FROM v");
  ASSERT_TRUE(IsOk(select));
  Statement& row = *select.value();
  Result<bool> stepped = row.Step();
  ASSERT_TRUE(IsOk(stepped));
  ASSERT_TRUE(stepped.value());
  EXPECT_EQ(row.Int(0), INT64_C(9007199254740993));
  EXPECT_DOUBLE_EQ(row.Double(1), 2.5);
  EXPECT_EQ(row.Text(2), std::string_view(text));  // embedded NUL kept
  EXPECT_TRUE(row.IsNull(3));
  EXPECT_EQ(row.OptionalText(3), std::nullopt);
  EXPECT_EQ(row.OptionalInt(4), std::nullopt);
  EXPECT_EQ(row.OptionalText(5), some_text);
  EXPECT_EQ(row.OptionalInt(0), INT64_C(9007199254740993));
  EXPECT_EQ(row.Text(3), std::string_view());
  stepped = row.Step();
  ASSERT_TRUE(IsOk(stepped));
  EXPECT_FALSE(stepped.value());
}

TEST_F(SqliteTest, StatementsCanBeReusedAfterReset) {
  auto insert = db_->Prepare("INSERT INTO t (x) VALUES (?1)");
  ASSERT_TRUE(IsOk(insert));
  for (int i = 1; i <= 5; ++i) {
    insert.value()->BindInt(1, i);
    ASSERT_TRUE(IsOk(insert.value()->Run()));
  }
  EXPECT_EQ(QueryInt(*db_, "SELECT sum(x) FROM t"), 15);
}

TEST_F(SqliteTest, StepErrorsAreStatusesAndTheStatementStaysUsable) {
  ASSERT_TRUE(IsOk(db_->Exec("CREATE TABLE u (k INTEGER PRIMARY KEY)")));
  auto insert = db_->Prepare("INSERT INTO u VALUES (?1)");
  ASSERT_TRUE(IsOk(insert));
  insert.value()->BindInt(1, 1);
  ASSERT_TRUE(IsOk(insert.value()->Run()));
  insert.value()->BindInt(1, 1);
  EXPECT_FALSE(insert.value()->Run().ok());
  insert.value()->BindInt(1, 2);
  EXPECT_TRUE(IsOk(insert.value()->Run()));
  EXPECT_EQ(QueryInt(*db_, "SELECT count(*) FROM u"), 2);
}

TEST_F(SqliteTest, CachedReturnsTheSameStatementForTheSameConstant) {
  static constexpr const char* kSql = "SELECT count(*) FROM t";
  Result<Statement*> a = db_->Cached(kSql);
  Result<Statement*> b = db_->Cached(kSql);
  ASSERT_TRUE(IsOk(a));
  ASSERT_TRUE(IsOk(b));
  EXPECT_EQ(a.value(), b.value());
  static constexpr const char* kBad = "SELECT nope FROM nowhere";
  EXPECT_FALSE(db_->Cached(kBad).ok());
  EXPECT_FALSE(db_->Cached(kBad).ok());  // a failed prepare is not cached as a null statement
}

TEST_F(SqliteTest, ScopeResetsTheStatementAndItsBindings) {
  static constexpr const char* kSql = "SELECT ?1";
  Result<Statement*> stmt = db_->Cached(kSql);
  ASSERT_TRUE(IsOk(stmt));
  {
    Statement::Scope scope(*stmt.value());
    scope->BindInt(1, 5);
    Result<bool> row = scope->Step();
    ASSERT_TRUE(IsOk(row));
    ASSERT_TRUE(row.value());
    EXPECT_EQ(scope->Int(0), 5);
    // Left mid-result: the scope must reset it.
  }
  Statement::Scope scope(*stmt.value());
  Result<bool> row = scope->Step();
  ASSERT_TRUE(IsOk(row));
  ASSERT_TRUE(row.value());
  EXPECT_TRUE(scope->IsNull(0));  // bindings were cleared
}

// ---- Transaction

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  {
    Transaction tx(*db_);
    ASSERT_TRUE(IsOk(tx.status()));
    EXPECT_TRUE(db_->InTransaction());
    ASSERT_TRUE(IsOk(Insert(1)));
    EXPECT_EQ(Count(), 1);
  }
  EXPECT_FALSE(db_->InTransaction());
  EXPECT_EQ(Count(), 0);
  {
    Transaction tx(*db_);
    ASSERT_TRUE(IsOk(tx.status()));
    ASSERT_TRUE(IsOk(Insert(2)));
    ASSERT_TRUE(IsOk(tx.Commit()));
    EXPECT_FALSE(db_->InTransaction());
  }
  EXPECT_EQ(Count(), 1);
}

TEST_F(SqliteTest, CommitTwiceIsAnInternalError) {
  Transaction tx(*db_);
  ASSERT_TRUE(IsOk(tx.status()));
  ASSERT_TRUE(IsOk(tx.Commit()));
  EXPECT_TRUE(HasCode(tx.Commit(), StatusCode::kInternal));
}

TEST_F(SqliteTest, NestedSavepointRollsBackOnlyItsOwnWrites) {
  {
    Transaction outer(*db_);
    ASSERT_TRUE(IsOk(outer.status()));
    ASSERT_TRUE(IsOk(Insert(1)));
    {
      Transaction inner(*db_);
      ASSERT_TRUE(IsOk(inner.status()));
      ASSERT_TRUE(IsOk(Insert(2)));
      EXPECT_EQ(Count(), 2);
    }  // inner rolled back
    EXPECT_TRUE(db_->InTransaction());
    EXPECT_EQ(Count(), 1);
    ASSERT_TRUE(IsOk(Insert(3)));
    ASSERT_TRUE(IsOk(outer.Commit()));
  }
  EXPECT_EQ(QueryInt(*db_, "SELECT group_concat(x, '') FROM (SELECT x FROM t ORDER BY x)"), 13);
}

TEST_F(SqliteTest, CommittedSavepointIsUndoneByOuterRollback) {
  {
    Transaction outer(*db_);
    ASSERT_TRUE(IsOk(outer.status()));
    {
      Transaction inner(*db_);
      ASSERT_TRUE(IsOk(inner.status()));
      ASSERT_TRUE(IsOk(Insert(1)));
      ASSERT_TRUE(IsOk(inner.Commit()));
    }
    EXPECT_TRUE(db_->InTransaction());
    EXPECT_EQ(Count(), 1);
  }
  EXPECT_FALSE(db_->InTransaction());
  EXPECT_EQ(Count(), 0);
}

TEST_F(SqliteTest, ThreeLevelsAndSiblingSavepoints) {
  {
    Transaction outer(*db_);
    ASSERT_TRUE(IsOk(outer.status()));
    {
      Transaction a(*db_);
      ASSERT_TRUE(IsOk(Insert(1)));
      {
        Transaction deep(*db_);
        ASSERT_TRUE(IsOk(deep.status()));
        ASSERT_TRUE(IsOk(Insert(2)));
        ASSERT_TRUE(IsOk(deep.Commit()));
      }
      {
        Transaction deep(*db_);
        ASSERT_TRUE(IsOk(Insert(3)));
      }  // rolled back
      ASSERT_TRUE(IsOk(a.Commit()));
    }
    {
      Transaction b(*db_);  // a sibling reuses the same depth after a's release
      ASSERT_TRUE(IsOk(b.status()));
      ASSERT_TRUE(IsOk(Insert(4)));
      ASSERT_TRUE(IsOk(b.Commit()));
    }
    {
      Transaction c(*db_);
      ASSERT_TRUE(IsOk(Insert(5)));
    }  // rolled back
    ASSERT_TRUE(IsOk(outer.Commit()));
  }
  EXPECT_EQ(QueryInt(*db_, "SELECT group_concat(x, '') FROM (SELECT x FROM t ORDER BY x)"), 124);
}

TEST_F(SqliteTest, TransactionSurvivesAFailedStatementInside) {
  Transaction tx(*db_);
  ASSERT_TRUE(IsOk(tx.status()));
  ASSERT_TRUE(IsOk(Insert(1)));
  EXPECT_FALSE(db_->Exec("INSERT INTO missing VALUES (1)").ok());
  ASSERT_TRUE(IsOk(Insert(2)));
  ASSERT_TRUE(IsOk(tx.Commit()));
  EXPECT_EQ(Count(), 2);
}

// ---- Two connections on one file: BUSY

class BusyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("busy.db");
    auto db = OpenDb(path_);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(IsOk(db->Exec("CREATE TABLE t (x INTEGER)")));
  }
  TempDir dir_;
  std::string path_;
};

TEST_F(BusyTest, ASecondWriterWaitsForTheLockWithinBusyTimeout) {
  auto first = OpenDb(path_, 10000);
  auto second = OpenDb(path_, 10000);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);

  Transaction holder(*first);
  ASSERT_TRUE(IsOk(holder.status()));
  ASSERT_TRUE(IsOk(first->Exec("INSERT INTO t VALUES (1)")));

  std::atomic<bool> started{false};
  Status second_status = Status::Internal("not run");
  int64_t seen_by_second = -1;
  std::thread writer([&] {
    started.store(true);
    Transaction tx(*second);  // blocks in SQLite's busy handler until `holder` commits
    second_status = tx.status();
    if (!second_status.ok()) return;
    seen_by_second = QueryInt(*second, "SELECT count(*) FROM t");
    second_status = second->Exec("INSERT INTO t VALUES (2)");
    if (second_status.ok()) second_status = tx.Commit();
  });
  while (!started.load()) std::this_thread::yield();
  ASSERT_TRUE(IsOk(holder.Commit()));
  writer.join();

  EXPECT_TRUE(IsOk(second_status));
  EXPECT_EQ(seen_by_second, 1);  // the second writer began after the first committed
  EXPECT_EQ(QueryInt(*first, "SELECT count(*) FROM t"), 2);
}

TEST_F(BusyTest, ZeroBusyTimeoutGivesBusyNotACrash) {
  auto first = OpenDb(path_, 10000);
  auto second = OpenDb(path_, 0);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  {
    Transaction holder(*first);
    ASSERT_TRUE(IsOk(holder.status()));
    ASSERT_TRUE(IsOk(first->Exec("INSERT INTO t VALUES (1)")));

    Transaction blocked(*second);
    EXPECT_TRUE(HasCode(blocked.status(), StatusCode::kBusy));
    EXPECT_NE(blocked.status().message().find("busyTimeoutMs"), std::string::npos) << blocked.status().message();
    EXPECT_FALSE(second->InTransaction());
    // A plain write outside a transaction is refused the same way.
    EXPECT_TRUE(HasCode(second->Exec("INSERT INTO t VALUES (9)"), StatusCode::kBusy));
    // Readers are not blocked by a writer in WAL mode, and see only committed rows.
    EXPECT_EQ(QueryInt(*second, "SELECT count(*) FROM t"), 0);
    ASSERT_TRUE(IsOk(holder.Commit()));
  }
  // Once the lock is gone the same connection writes normally.
  Transaction tx(*second);
  ASSERT_TRUE(IsOk(tx.status()));
  ASSERT_TRUE(IsOk(second->Exec("INSERT INTO t VALUES (2)")));
  ASSERT_TRUE(IsOk(tx.Commit()));
  EXPECT_EQ(QueryInt(*first, "SELECT count(*) FROM t"), 2);
}

}  // namespace
}  // namespace deltasync
