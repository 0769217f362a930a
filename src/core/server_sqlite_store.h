// The server's store on one SQLite file: one connection lent to one request at a time, in the
// order they ask. Requests that queue for it share a write transaction, each in a savepoint of its
// own, committed together once nobody waits (group commit); each response waits for that commit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/schema.h"
#include "core/server_store.h"
#include "core/sqlite.h"

namespace deltasync {

// Creates or migrates the server's tables in the file at `path`.
Result<std::unique_ptr<ServerStore>> OpenSqliteServerStore(const std::string& path, const DatabaseOptions& options);

// What the store's group commits have done so far.
struct GroupCommitStats {
  uint64_t waiting = 0;   // requests waiting for the connection now
  uint64_t requests = 0;  // requests whose transactions committed
  uint64_t commits = 0;   // COMMITs that made them durable (at most `requests`)
};
// REQUIRES: `store` was opened by OpenSqliteServerStore.
GroupCommitStats SqliteGroupCommitStats(const ServerStore& store);

// The SQLite server schema, version by version.
const std::vector<Migration>& ServerMigrations();

}  // namespace deltasync
