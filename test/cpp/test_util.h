// Shared helpers for the core test suite: unique temp directories, status
// matchers and small builders. Header-only so every numbered file can include it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/apply.h"
#include "core/change.h"
#include "core/env.h"
#include "core/queue.h"
#include "core/schema.h"
#include "core/sqlite.h"
#include "core/status.h"
#include "core/store.h"
#include "simdjson.h"

namespace deltasync {
namespace testing_util {

// Records figures the README quotes (scripts/figures.js): writes figures/cpp-<test>.json in
// the working directory (build/ under ctest) holding `values`, named after the running test.
inline void RecordFigures(const std::map<std::string, int64_t>& values) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = test ? std::string(test->test_suite_name()) + "." + test->name() : "unknown";
  std::error_code ec;
  std::filesystem::create_directories("figures", ec);
  std::ofstream out("figures/cpp-" + name + ".json", std::ios::trunc);
  out << "{";
  bool first = true;
  for (const auto& [key, value] : values) {
    out << (first ? "" : ",") << "\"" << key << "\":" << value;
    first = false;
  }
  out << "}\n";
}

// A directory under the system temp dir, unique per process and per instance,
// removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    path_ = (ec ? std::filesystem::path("/tmp") : base) /
            ("deltasync-core-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_, ec);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // A path inside the directory (the file itself is not created).
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline ::testing::AssertionResult IsOk(const Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status.ToString();
}

template <typename T>
::testing::AssertionResult IsOk(const Result<T>& result) {
  return IsOk(result.status());
}

inline ::testing::AssertionResult HasCode(const Status& status, StatusCode code) {
  if (status.code() == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected " << CodeName(code) << " but got " << status.ToString();
}

template <typename T>
::testing::AssertionResult HasCode(const Result<T>& result, StatusCode code) {
  return HasCode(result.status(), code);
}

// Opens a connection with test-friendly defaults.
inline std::unique_ptr<Database> OpenDb(const std::string& path, int busy_timeout_ms = 10000) {
  DatabaseOptions options;
  options.busy_timeout_ms = busy_timeout_ms;
  Result<std::unique_ptr<Database>> db = Database::Open(path, options);
  EXPECT_TRUE(IsOk(db));
  if (!db.ok()) return nullptr;
  return std::move(db).value();
}

// Runs a query returning one integer (the first column of the first row).
inline int64_t QueryInt(Database& db, const std::string& sql) {
  Result<std::unique_ptr<Statement>> stmt = db.Prepare(sql);
  EXPECT_TRUE(IsOk(stmt)) << sql;
  if (!stmt.ok()) return -1;
  Result<bool> row = stmt.value()->Step();
  EXPECT_TRUE(IsOk(row)) << sql;
  if (!row.ok() || !row.value()) return -1;
  return stmt.value()->Int(0);
}

// Runs a query returning one text value (the first column of the first row);
// nullopt when there is no row or the value is NULL.
inline std::optional<std::string> QueryText(Database& db, const std::string& sql) {
  Result<std::unique_ptr<Statement>> stmt = db.Prepare(sql);
  EXPECT_TRUE(IsOk(stmt)) << sql;
  if (!stmt.ok()) return std::nullopt;
  Result<bool> row = stmt.value()->Step();
  EXPECT_TRUE(IsOk(row)) << sql;
  if (!row.ok() || !row.value()) return std::nullopt;
  return stmt.value()->OptionalText(0);
}

inline ChangeInput MakeChange(ChangeType type, const std::string& entity_id,
                              std::optional<std::string> data = std::nullopt,
                              std::optional<std::string> change_id = std::nullopt,
                              const std::string& entity_type = "note") {
  ChangeInput input;
  input.type = type;
  input.entity_type = entity_type;
  input.entity_id = entity_id;
  input.data = std::move(data);
  input.change_id = std::move(change_id);
  return input;
}

inline ChangeInput Created(const std::string& entity_id, const std::string& data,
                           std::optional<std::string> change_id = std::nullopt) {
  return MakeChange(ChangeType::kCreated, entity_id, data, std::move(change_id));
}
inline ChangeInput Updated(const std::string& entity_id, const std::string& data,
                           std::optional<std::string> change_id = std::nullopt) {
  return MakeChange(ChangeType::kUpdated, entity_id, data, std::move(change_id));
}
inline ChangeInput Deleted(const std::string& entity_id, std::optional<std::string> change_id = std::nullopt) {
  return MakeChange(ChangeType::kDeleted, entity_id, std::nullopt, std::move(change_id));
}

inline constexpr int64_t kTestStartMs = 1700000000000;

// One change of a pull page, as the server sends it. The changeId defaults to "r<version>".
inline std::string Remote(int64_t version, const std::string& type, const std::string& entity_id,
                          const std::optional<std::string>& data, int64_t timestamp = kTestStartMs,
                          std::string change_id = "", const std::string& entity_type = "note") {
  if (change_id.empty()) change_id = "r" + std::to_string(version);
  std::string out = "{\"version\":" + std::to_string(version) + ",\"changeId\":\"" + change_id +
                    "\",\"type\":\"" + type + "\",\"entityType\":\"" + entity_type + "\",\"entityId\":\"" +
                    entity_id + "\"";
  if (data) out += ",\"data\":" + *data;
  out += ",\"timestamp\":" + std::to_string(timestamp) + ",\"deviceId\":\"server-side\"}";
  return out;
}

// A pull page {newChanges, latestServerVersion?, hasMore}.
inline std::string Page(const std::vector<std::string>& changes, std::optional<int64_t> latest = std::nullopt,
                        bool has_more = false) {
  std::string out = "{\"newChanges\":[";
  for (size_t i = 0; i < changes.size(); ++i) out += (i ? "," : "") + changes[i];
  out += "]";
  if (latest) out += ",\"latestServerVersion\":" + std::to_string(*latest);
  out += std::string(",\"hasMore\":") + (has_more ? "true" : "false") + "}";
  return out;
}

// A client database in memory with its queue, document store and applier, driven
// by a manual clock and a seeded random.
class StoreHarness {
 public:
  explicit StoreHarness(ConflictStrategy strategy = ConflictStrategy::kNewestWins, bool coalesce = true,
                        std::map<std::string, ConflictStrategy> per_type = {}) {
    db = OpenDb(":memory:");
    EXPECT_NE(db, nullptr);
    EXPECT_TRUE(IsOk(Migrate(*db, ClientMigrations())));
    QueueOptions options;
    options.coalesce = coalesce;
    queue = std::make_unique<ChangeQueue>(*db, clock, random, options);
    store = std::make_unique<DocumentStore>(*db, clock, *queue, JsonLimits{}.max_document_bytes);
    applier = std::make_unique<DeltaApplier>(*db, clock, *queue, strategy, std::move(per_type));
  }

  // Decodes `page_json` and applies it: whole (chunk 0), or as the apply worker does, validated
  // first and then decoded and applied `chunk` changes at a time (PageChangeReader).
  Status TryPull(const std::string& page_json, ApplyResult* result, size_t chunk = 0) {
    PullPage page;
    if (chunk == 0) {
      DS_RETURN_IF_ERROR(DecodePullPage(parser, simdjson::padded_string(page_json), JsonLimits{}, &page));
      return applier->ApplyChunk(page, 0, page.changes.size(), result);
    }
    PageLayout layout;
    DS_RETURN_IF_ERROR(ValidatePullPage(parser, page_json, JsonLimits{}, &page, &layout));
    PageChangeReader reader(parser, page_json, layout, JsonLimits{});
    do {
      DS_RETURN_IF_ERROR(reader.Next(chunk, &page));
      DS_RETURN_IF_ERROR(applier->ApplyChunk(page, 0, page.changes.size(), result));
    } while (page.window_start + page.changes.size() < page.ChangeCount());
    return Status::Ok();
  }
  ApplyResult Pull(const std::string& page_json, size_t chunk = 0) {
    ApplyResult result;
    EXPECT_TRUE(IsOk(TryPull(page_json, &result, chunk))) << page_json;
    return result;
  }
  ApplyResult PullOne(const std::string& remote_change) { return Pull(Page({remote_change})); }

  // The visible document (nullopt when absent or deleted).
  std::optional<std::string> Visible(const std::string& entity_id, const std::string& entity_type = "note") {
    Result<std::optional<StoredDocument>> doc = store->Get(entity_type, entity_id, false);
    EXPECT_TRUE(IsOk(doc));
    if (!doc.ok() || !doc.value()) return std::nullopt;
    return doc.value()->data;
  }
  // The document with its metadata, tombstones included.
  std::optional<StoredDocument> WithMeta(const std::string& entity_id, const std::string& entity_type = "note") {
    Result<std::optional<StoredDocument>> doc = store->Get(entity_type, entity_id, true);
    EXPECT_TRUE(IsOk(doc));
    return doc.ok() ? doc.value() : std::nullopt;
  }
  // The server state stored under local changes (the `base` column).
  std::optional<std::string> Base(const std::string& entity_id, const std::string& entity_type = "note") {
    return QueryText(*db, "SELECT base FROM documents WHERE entity_type = '" + entity_type + "' AND entity_id = '" +
                              entity_id + "'");
  }
  std::vector<Change> Changes() {
    Result<std::vector<Change>> all = queue->All();
    EXPECT_TRUE(IsOk(all));
    return all.ok() ? all.value() : std::vector<Change>{};
  }
  int64_t Cursor() {
    Result<int64_t> cursor = applier->Cursor();
    EXPECT_TRUE(IsOk(cursor));
    return cursor.ok() ? cursor.value() : -1;
  }
  // Every row of documents and changes, for before/after comparisons.
  std::string Snapshot() {
    return QueryText(*db,
                     "SELECT coalesce((SELECT group_concat(entity_type || '/' || entity_id || '=' || "
                     "coalesce(data, '-') || '|' || coalesce(base, '-') || '|' || coalesce(version, '-') || '|' || "
                     "deleted || '|' || updated_at, ';') FROM documents), '') || ' # ' || "
                     "coalesce((SELECT group_concat(change_id || ':' || type || ':' || coalesce(data, '-') || ':' || "
                     "status || ':' || attempts, ';') FROM changes), '') || ' # ' || "
                     "coalesce((SELECT group_concat(change_id, ';') FROM change_aliases), '')")
        .value_or("?");
  }

  // Declared in construction order: everything below uses what is above it.
  ManualClock clock{kTestStartMs};
  SeededRandom random{4321};
  simdjson::ondemand::parser parser;
  std::unique_ptr<Database> db;
  std::unique_ptr<ChangeQueue> queue;
  std::unique_ptr<DocumentStore> store;
  std::unique_ptr<DeltaApplier> applier;
};

}  // namespace testing_util
}  // namespace deltasync
