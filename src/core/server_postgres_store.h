// The server's store on PostgreSQL: a pool of libpq connections, so requests of different users
// run at once, in as many processes as share the database. Each request's transaction first
// locks its user's row in user_versions; that lock is what keeps one user's versions gapless
// and visible in order, and a changeId applied once, across processes.
//
// libpq is loaded when a store is opened (dlopen), so a server that never uses PostgreSQL needs
// nothing of it.
#pragma once

#include <memory>
#include <string>

#include "core/server_store.h"

namespace deltasync {

struct PostgresOptions {
  // A libpq connection string: a URL (postgresql://user:pass@host:5432/db?sslmode=require) or
  // key=value pairs. libpq's PG* environment variables and ~/.pgpass apply as for psql.
  std::string connection_string;
  // Where the server's tables live; created when missing. [A-Za-z_][A-Za-z0-9_]{0,62}.
  std::string schema = "deltasync";
  // Connections opened at most, each used by one request at a time.
  int pool_size = 8;
  // The libpq shared library to load; empty: the system's (libpq.so.5).
  std::string libpq_path;
};

// Connects, creates or migrates the tables (refusing a schema newer than this release knows),
// and returns the store. Fails with UNAVAILABLE when libpq cannot be loaded or the database
// cannot be reached.
Result<std::unique_ptr<ServerStore>> OpenPostgresServerStore(const PostgresOptions& options);

// The schema version this release writes.
inline constexpr int kPostgresSchemaVersion = 1;

}  // namespace deltasync
