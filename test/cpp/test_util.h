// Shared helpers for the core test suite: unique temp directories, status
// matchers and small builders. Header-only so every numbered file can include it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/change.h"
#include "core/env.h"
#include "core/sqlite.h"
#include "core/status.h"

namespace deltasync {
namespace testing_util {

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

}  // namespace testing_util
}  // namespace deltasync
