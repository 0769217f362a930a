// bench_apply_ceiling: the raw SQLite ceiling for applying a pulled page. The same
// documents that `client.applyRemote(page)` writes in bench/trials/apply.js
// (deltasync's schema, pragmas and upsert, src/core/apply.cc kUpsertRemote), with
// every value built before the clock starts: the page is already "parsed", and each
// UPDATED's merged document already computed. What stays in the timed loop is the
// SQLite work any implementation must do: for an UPDATED, the lookup of the stored
// document (its data and version are read), then the upsert; for a CREATED, the
// upsert; the cursor in meta; one transaction. Nothing a binding can do on this
// SQLite build is faster.
//
// Usage: bench_apply_ceiling --seed S --count N [--iterations K] [--dir DIR] [--sample-update J]
// A store is seeded (untimed) with e0..e{S-1}; change k of the page is a CREATED of
// e{S + k/2} for even k and an UPDATED of e{(k-1)/2} for odd k (bench/trials/common.js
// pageChange). Prints one JSON line, the median of K runs, each on a fresh database
// in DIR. --sample-update J prints the document e{J} holds after its UPDATED, to
// check it against updatedDocument in common.js.

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

constexpr const char* kUpsertRemote =
    "INSERT INTO documents (entity_type, entity_id, data, base, version, deleted, updated_at, last_synced_at, "
    "deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, CASE WHEN ?6 THEN ?7 END) "
    "ON CONFLICT (entity_type, entity_id) DO UPDATE SET data = excluded.data, base = excluded.base, "
    "version = excluded.version, deleted = excluded.deleted, updated_at = excluded.updated_at, "
    "last_synced_at = excluded.last_synced_at, "
    "deleted_at = CASE WHEN excluded.deleted THEN coalesce(documents.deleted_at, excluded.deleted_at) END "
    "WHERE documents.version IS NULL OR documents.version < excluded.version";
constexpr const char* kLoad =
    "SELECT data, base, version, deleted FROM documents WHERE entity_type = ?1 AND entity_id = ?2";
constexpr const char* kSetCursor =
    "INSERT INTO meta (key, value) VALUES ('server_version', ?1) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value";
constexpr char kEntityType[] = "logbook_entry";

constexpr const char* kTags[] = {"night", "ifr", "cross-country", "training", "solo"};
constexpr const char* kNotes[] = {
    "Smooth flight, light chop on descent, vectors for the ILS, landed long on 27.",
    "Practice approaches at the regional field; one go-around for traffic on final.",
    "Crosswind 12 knots gusting 18; two touch-and-goes, then a full stop taxi back.",
    "Night currency: three full-stop landings, beacon out on the north ramp again.",
};

// JSON.stringify(makeDocument(i)) of bench/trials/common.js.
std::string MakeDocument(int64_t i) {
  return "{\"title\":\"Flight " + std::to_string(i) + "\",\"duration\":" + std::to_string((i * 37) % 7200) +
         ",\"tags\":[\"" + kTags[i % 5] + "\",\"" + kTags[(i * 7 + 3) % 5] + "\"],\"notes\":\"" + kNotes[i % 4] +
         "\"}";
}

// JSON.stringify(updatedDocument(j)): makeDocument(j) with updateFields(j) = {duration, tags} set.
std::string UpdatedDocument(int64_t j) {
  return "{\"title\":\"Flight " + std::to_string(j) + "\",\"duration\":" + std::to_string((j * 53 + 11) % 7200) +
         ",\"tags\":[\"" + kTags[(j + 2) % 5] + "\"],\"notes\":\"" + kNotes[j % 4] + "\"}";
}

struct Row {
  bool update = false;
  std::string entity_id;
  std::string data;
  int64_t version = 0;
};

struct FinalizeStatement {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;

Status SqliteError(sqlite3* db, const std::string& what) { return Status::Storage(what + ": " + sqlite3_errmsg(db)); }

Result<StatementPtr> Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
    return SqliteError(db, "prepare");
  }
  return StatementPtr(raw);
}

// Upserts one pulled state; returns the number of rows it changed.
Result<int> Upsert(sqlite3* db, sqlite3_stmt* stmt, const Row& row, int64_t now_ms) {
  sqlite3_bind_text(stmt, 1, kEntityType, sizeof(kEntityType) - 1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 2, row.entity_id.data(), static_cast<int>(row.entity_id.size()), SQLITE_STATIC);
  sqlite3_bind_text(stmt, 3, row.data.data(), static_cast<int>(row.data.size()), SQLITE_STATIC);
  sqlite3_bind_null(stmt, 4);
  sqlite3_bind_int64(stmt, 5, row.version);
  sqlite3_bind_int64(stmt, 6, 0);
  sqlite3_bind_int64(stmt, 7, now_ms);
  if (sqlite3_step(stmt) != SQLITE_DONE) return SqliteError(db, "upsert");
  sqlite3_reset(stmt);
  return sqlite3_changes(db);
}

// Seeds the store (untimed), then applies `rows` in one transaction; returns the seconds
// from BEGIN to COMMIT.
Result<double> TimedApply(const std::string& path, const std::vector<Row>& seed, const std::vector<Row>& rows,
                          int64_t now_ms) {
  deltasync::DatabaseOptions options;
  options.cache_kib = deltasync::kClientCacheKib;  // the client's connections, as the peers' pragmas
  Result<std::unique_ptr<Database>> opened = Database::Open(path, options);
  if (!opened.ok()) return opened.status();
  Database& database = *opened.value();
  DS_RETURN_IF_ERROR(deltasync::Migrate(database, deltasync::ClientMigrations()));
  sqlite3* db = database.handle();
  Result<StatementPtr> upsert = Prepare(db, kUpsertRemote);
  if (!upsert.ok()) return upsert.status();
  Result<StatementPtr> load = Prepare(db, kLoad);
  if (!load.ok()) return load.status();
  Result<StatementPtr> cursor = Prepare(db, kSetCursor);
  if (!cursor.ok()) return cursor.status();

  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return SqliteError(db, "begin");
  for (const Row& row : seed) {
    Result<int> changed = Upsert(db, upsert.value().get(), row, now_ms);
    if (!changed.ok()) return changed.status();
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return SqliteError(db, "commit");

  const auto start = std::chrono::steady_clock::now();
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return SqliteError(db, "begin");
  int64_t applied = 0;
  size_t bytes_read = 0;
  for (const Row& row : rows) {
    if (row.update) {
      sqlite3_stmt* stmt = load.value().get();
      sqlite3_bind_text(stmt, 1, kEntityType, sizeof(kEntityType) - 1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 2, row.entity_id.data(), static_cast<int>(row.entity_id.size()), SQLITE_STATIC);
      if (sqlite3_step(stmt) != SQLITE_ROW) return SqliteError(db, "load " + row.entity_id);
      bytes_read += static_cast<size_t>(sqlite3_column_bytes(stmt, 0));
      if (sqlite3_column_int64(stmt, 2) >= row.version) return Status::Internal("unexpected version");
      sqlite3_reset(stmt);
    }
    Result<int> changed = Upsert(db, upsert.value().get(), row, now_ms);
    if (!changed.ok()) return changed.status();
    applied += changed.value();
  }
  const std::string version = std::to_string(rows.empty() ? 0 : rows.back().version);
  sqlite3_stmt* stmt = cursor.value().get();
  sqlite3_bind_text(stmt, 1, version.data(), static_cast<int>(version.size()), SQLITE_STATIC);
  if (sqlite3_step(stmt) != SQLITE_DONE) return SqliteError(db, "cursor");
  sqlite3_reset(stmt);
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return SqliteError(db, "commit");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (applied != static_cast<int64_t>(rows.size()) || (bytes_read == 0 && rows.size() > 1)) {
    return Status::Internal("applied " + std::to_string(applied) + " of " + std::to_string(rows.size()));
  }
  return seconds;
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

std::vector<Row> SeedRows(int64_t seed) {
  std::vector<Row> rows(static_cast<size_t>(seed));
  for (int64_t i = 0; i < seed; ++i) {
    rows[static_cast<size_t>(i)] = Row{false, "e" + std::to_string(i), MakeDocument(i), i + 1};
  }
  return rows;
}

std::vector<Row> PageRows(int64_t seed, int64_t count) {
  std::vector<Row> rows(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    Row& row = rows[static_cast<size_t>(k)];
    row.version = seed + k + 1;
    if (k % 2 == 0) {
      row.entity_id = "e" + std::to_string(seed + k / 2);
      row.data = MakeDocument(seed + k / 2);
    } else {
      row.update = true;
      row.entity_id = "e" + std::to_string((k - 1) / 2);
      row.data = UpdatedDocument((k - 1) / 2);
    }
  }
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t seed = 50000;
  int64_t count = 100000;
  int iterations = 3;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--seed") {
      seed = std::atoll(value);
    } else if (flag == "--count") {
      count = std::atoll(value);
    } else if (flag == "--iterations") {
      iterations = std::atoi(value);
    } else if (flag == "--dir") {
      dir = value;
    } else if (flag == "--sample-update") {
      std::printf("%s\n", UpdatedDocument(std::atoll(value)).c_str());
      return 0;
    } else {
      std::fprintf(stderr, "bench_apply_ceiling: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (seed < 0 || count <= 0 || iterations <= 0 || count / 2 > seed) {
    std::fprintf(stderr, "bench_apply_ceiling: need --count > 0, --iterations > 0 and --seed >= count / 2\n");
    return 2;
  }

  const int64_t now_ms = deltasync::SystemClock().NowMs();
  std::vector<double> per_iteration;
  int64_t db_bytes = 0;
  for (int iteration = -1; iteration < iterations; ++iteration) {  // -1: warm-up, not reported
    const int64_t n = iteration < 0 ? std::min<int64_t>(count, 2000) : count;
    const int64_t s = iteration < 0 ? std::min<int64_t>(seed, 1000) : seed;
    const std::vector<Row> seed_rows = SeedRows(s);
    const std::vector<Row> rows = PageRows(s, n);
    const std::string path =
        dir + "/apply-ceiling-" + std::to_string(getpid()) + "-" + std::to_string(iteration + 1) + ".db";
    Result<double> seconds = TimedApply(path, seed_rows, rows, now_ms);
    if (iteration >= 0) db_bytes = FileSize(path) + FileSize(path + "-wal");
    RemoveDb(path);
    if (!seconds.ok()) {
      std::fprintf(stderr, "bench_apply_ceiling: %s\n", seconds.status().message().c_str());
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
      "{\"changes\":%lld,\"seed\":%lld,\"iterations\":%d,\"changesPerSec\":%.1f,\"seconds\":%.6f,"
      "\"perIteration\":[%s],\"dbBytes\":%lld,\"sqliteVersion\":\"%s\",\"peakRssKb\":%ld}\n",
      static_cast<long long>(count), static_cast<long long>(seed), iterations, median,
      static_cast<double>(count) / median, list.c_str(), static_cast<long long>(db_bytes), sqlite3_libversion(),
      usage.ru_maxrss);
  return 0;
}
