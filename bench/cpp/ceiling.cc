// bench_ceiling: the raw SQLite ceiling for trial (b). The same rows that
// client.queue.enqueueMany writes (deltasync's schema, pragmas and INSERT),
// inserted with one prepared statement in one transaction, every value built
// before the clock starts: no parsing, no validation, no coalescing lookup, no
// JS. Nothing a binding can do on this SQLite build is faster.
//
// Usage: bench_ceiling --count N [--iterations K] [--dir DIR] [--sample I]
// Prints one JSON line: {"changes":..,"changesPerSec":..,"perIteration":[..],..}
// (the median of K runs, each on a fresh database in DIR). --sample I prints
// the data document of change I and exits, to check that it matches
// makeDocument in bench/trials/common.js.

#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/schema.h"
#include "core/sqlite.h"
#include "core/status.h"

namespace {

using deltasync::Database;
using deltasync::Result;
using deltasync::Status;

// The statement of src/core/queue.cc kInsertChange.
constexpr const char* kInsertChange =
    "INSERT INTO changes (change_id, tenant_id, user_id, entity_type, entity_id, type, data, base_version, "
    "timestamp, created_at, updated_at, status, retry_count, last_error) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, 'pending', ?11, ?12)";
constexpr char kEntityType[] = "logbook_entry";
// changeIds are UUID v7 of a clock that moves on by a millisecond every this many changes, about
// deltasync's pace in enqueueMany, so they reach the UNIQUE index in the order deltasync's do.
constexpr int64_t kChangesPerMs = 200;
constexpr char kType[] = "CREATED";

constexpr const char* kTags[] = {"night", "ifr", "cross-country", "training", "solo"};
constexpr const char* kNotes[] = {
    "Smooth flight, light chop on descent, vectors for the ILS, landed long on 27.",
    "Practice approaches at the regional field; one go-around for traffic on final.",
    "Crosswind 12 knots gusting 18; two touch-and-goes, then a full stop taxi back.",
    "Night currency: three full-stop landings, beacon out on the north ramp again.",
};

// JSON.stringify(makeDocument(i)) of bench/trials/common.js, byte for byte.
std::string MakeDocument(int64_t i) {
  return "{\"title\":\"Flight " + std::to_string(i) + "\",\"duration\":" + std::to_string((i * 37) % 7200) +
         ",\"tags\":[\"" + kTags[i % 5] + "\",\"" + kTags[(i * 7 + 3) % 5] + "\"],\"notes\":\"" + kNotes[i % 4] +
         "\"}";
}

struct Row {
  std::string change_id;
  std::string entity_id;
  std::string data;
};

struct FinalizeStatement {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

Status SqliteError(sqlite3* db, const std::string& what) {
  return Status::Storage(what + ": " + sqlite3_errmsg(db));
}

// Inserts `rows` into a fresh deltasync database at `path`; returns the seconds
// from BEGIN to COMMIT.
Result<double> TimedInsert(const std::string& path, const std::vector<Row>& rows, int64_t now_ms) {
  deltasync::DatabaseOptions options;
  options.cache_kib = deltasync::kClientCacheKib;  // the client's connections, as the peers' pragmas
  Result<std::unique_ptr<Database>> opened = Database::Open(path, options);
  if (!opened.ok()) return opened.status();
  Database& db = *opened.value();
  DS_RETURN_IF_ERROR(deltasync::Migrate(db, deltasync::ClientMigrations()));
  sqlite3* handle = db.handle();

  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v3(handle, kInsertChange, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
    return SqliteError(handle, "prepare");
  }
  std::unique_ptr<sqlite3_stmt, FinalizeStatement> stmt(raw);

  const auto start = std::chrono::steady_clock::now();
  if (sqlite3_exec(handle, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqliteError(handle, "begin");
  }
  for (const Row& row : rows) {
    sqlite3_bind_text(raw, 1, row.change_id.data(), static_cast<int>(row.change_id.size()), SQLITE_STATIC);
    sqlite3_bind_null(raw, 2);
    sqlite3_bind_null(raw, 3);
    sqlite3_bind_text(raw, 4, kEntityType, sizeof(kEntityType) - 1, SQLITE_STATIC);
    sqlite3_bind_text(raw, 5, row.entity_id.data(), static_cast<int>(row.entity_id.size()), SQLITE_STATIC);
    sqlite3_bind_text(raw, 6, kType, sizeof(kType) - 1, SQLITE_STATIC);
    sqlite3_bind_text(raw, 7, row.data.data(), static_cast<int>(row.data.size()), SQLITE_STATIC);
    sqlite3_bind_null(raw, 8);
    sqlite3_bind_int64(raw, 9, now_ms);
    sqlite3_bind_int64(raw, 10, now_ms);
    sqlite3_bind_int64(raw, 11, 0);
    sqlite3_bind_null(raw, 12);
    if (sqlite3_step(raw) != SQLITE_DONE) return SqliteError(handle, "insert");
    sqlite3_reset(raw);
  }
  if (sqlite3_exec(handle, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return SqliteError(handle, "commit");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int64_t FileSize(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 ? static_cast<int64_t>(info.st_size) : 0;
}

void RemoveDb(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) unlink((path + suffix).c_str());
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t count = 100000;
  int iterations = 3;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--count") {
      count = std::atoll(value);
    } else if (flag == "--iterations") {
      iterations = std::atoi(value);
    } else if (flag == "--dir") {
      dir = value;
    } else if (flag == "--sample") {
      std::printf("%s\n", MakeDocument(std::atoll(value)).c_str());
      return 0;
    } else {
      std::fprintf(stderr, "bench_ceiling: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (count <= 0 || iterations <= 0) {
    std::fprintf(stderr, "bench_ceiling: --count and --iterations must be positive\n");
    return 2;
  }

  deltasync::SeededRandom random(42);
  const int64_t now_ms = deltasync::SystemClock().NowMs();
  std::vector<double> per_iteration;
  int64_t db_bytes = 0;
  for (int iteration = -1; iteration < iterations; ++iteration) {  // -1: warm-up, not reported
    const int64_t n = iteration < 0 ? std::min<int64_t>(count, 1000) : count;
    std::vector<Row> rows(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      Row& row = rows[static_cast<size_t>(i)];
      row.change_id = random.UuidV7(now_ms + i / kChangesPerMs);  // as a queue's clock moves on
      row.entity_id = "e" + std::to_string(i);
      row.data = MakeDocument(i);
    }
    const std::string path =
        dir + "/ceiling-" + std::to_string(getpid()) + "-" + std::to_string(iteration + 1) + ".db";
    Result<double> seconds = TimedInsert(path, rows, now_ms);
    if (iteration >= 0) db_bytes = FileSize(path) + FileSize(path + "-wal");
    RemoveDb(path);
    if (!seconds.ok()) {
      std::fprintf(stderr, "bench_ceiling: %s\n", seconds.status().message().c_str());
      return 1;
    }
    if (iteration >= 0) per_iteration.push_back(static_cast<double>(n) / seconds.value());
  }

  const double median = Median(per_iteration);
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  std::string list;
  for (double value : per_iteration) {
    if (!list.empty()) list += ",";
    list += std::to_string(value);
  }
  std::printf(
      "{\"changes\":%lld,\"iterations\":%d,\"changesPerSec\":%.1f,\"seconds\":%.6f,\"perIteration\":[%s],"
      "\"dbBytes\":%lld,\"sqliteVersion\":\"%s\",\"peakRssKb\":%ld}\n",
      static_cast<long long>(count), iterations, median, static_cast<double>(count) / median, list.c_str(),
      static_cast<long long>(db_bytes), sqlite3_libversion(), usage.ru_maxrss);
  return 0;
}
