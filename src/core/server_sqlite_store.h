// The server's store on one SQLite file: one session behind a mutex, so requests run one at a
// time, each in a BEGIN IMMEDIATE transaction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/schema.h"
#include "core/server_store.h"
#include "core/sqlite.h"

namespace deltasync {

// Creates or migrates the server's tables in the file at `path`.
Result<std::unique_ptr<ServerStore>> OpenSqliteServerStore(const std::string& path, const DatabaseOptions& options);

// The SQLite server schema, version by version.
const std::vector<Migration>& ServerMigrations();

}  // namespace deltasync
