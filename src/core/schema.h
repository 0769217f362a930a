// Schema versioning. A deltasync database carries application_id = kApplicationId
// and user_version = the number of migrations applied. Opening runs the missing
// migrations, each in its own transaction, so a file created by an older release
// upgrades in place and a crash mid-upgrade leaves it at a consistent version.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/sqlite.h"

namespace deltasync {

// 'DSNC': marks client files written by deltasync so that other SQLite files are refused.
inline constexpr int32_t kApplicationId = 0x44534E43;
// 'DSNS': marks server files, so that a client never opens one (and the other way round).
inline constexpr int32_t kServerApplicationId = 0x44534E53;

// A change to one table's definition that every stored row already satisfies (a CHECK
// rewritten to an equivalent one). It is made by editing the definition SQLite keeps in
// sqlite_schema, the procedure SQLite documents for such changes
// (https://www.sqlite.org/lang_altertable.html#otheralter), so no row is copied. A definition
// that does not hold `from` fails the migration (NOT_A_DATABASE): deltasync did not write it.
struct TableDefinitionEdit {
  const char* table;
  const char* from;  // text as an earlier migration wrote it
  const char* to;
};

struct Migration {
  int version;      // user_version after this migration; 1, 2, 3... without gaps
  const char* sql;  // statements run inside the migration's transaction
  std::vector<TableDefinitionEdit> edits = {};  // made after `sql`, in the same transaction
};

// The client database's migrations, oldest first.
const std::vector<Migration>& ClientMigrations();

// Brings `db` to the last version in `migrations`.
// Fails with NOT_A_DATABASE when the file holds tables but is not a deltasync file,
// or was written by a newer release (user_version above the newest known migration).
// `application_id` tells whose file it is (kApplicationId or kServerApplicationId). With
// `must_be_initialized`, a file that holds no schema at all is refused instead of created.
Status Migrate(Database& db, const std::vector<Migration>& migrations, int32_t application_id = kApplicationId,
               bool must_be_initialized = false);

// Reads PRAGMA user_version.
Result<int> SchemaVersion(Database& db);

}  // namespace deltasync
