// The client's open conflicts: pulled changes that met local ones and that a person (strategy
// "manual") or the app's own resolver (strategy "custom") settles later. A conflict keeps both
// sides, the common base and the remote change, so that whoever settles it sees what happened.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/change.h"
#include "core/env.h"
#include "core/sqlite.h"
#include "core/status.h"

namespace deltasync {

// Names one state of an entity's local side (its visible document): a resolver's verdict holds
// only while the local side is still what the resolver saw.
std::string LocalStateToken(const std::optional<std::string>& visible);

class ConflictStore {
 public:
  // REQUIRES: db and clock outlive the store.
  ConflictStore(Database& db, Clock& clock) : db_(db), clock_(clock) {}

  // Records that `change` (making the server's state `remote`) met local changes made on `base`,
  // the server's state before it. The local side is not stored: it is the visible document
  // (LocalSide). An entity has one open conflict: a later remote change updates it and keeps
  // its original base. Returns the conflict's id.
  Result<int64_t> Open(const RemoteChange& change, const std::optional<std::string>& remote,
                       const std::optional<std::string>& base, bool awaiting_resolver);

  struct OpenConflict {
    std::string entity_type;
    std::string entity_id;
    std::optional<std::string> remote;
    int64_t remote_version = 0;
    bool awaiting_resolver = false;
  };
  // The local side of an entity's conflict: its visible document now (later local writes
  // included), nullopt when absent or deleted. What a resolver is shown and what its verdict
  // is checked against (LocalStateToken).
  Result<std::optional<std::string>> LocalSide(const std::string& entity_type, const std::string& entity_id);
  // The open conflict with this id, or nullopt.
  Result<std::optional<OpenConflict>> Load(int64_t conflict_id);
  Status MarkResolved(int64_t conflict_id, const char* resolution);
  // Leaves the conflict open for a person, with why the resolver did not settle it (if it failed).
  Status LeaveForReview(int64_t conflict_id, const std::optional<std::string>& resolver_error);

  // Open conflicts, oldest first: [{id, entityType, entityId, local, remote, base, remoteVersion,
  // remoteChangeId, remoteTimestamp, createdAt, awaitingResolver, resolverError}], `local` being
  // LocalSide.
  Result<std::string> OpenJson();
  // What the app's resolver is given for each open conflict still awaiting it, oldest first:
  // [{id, entityType, entityId, local, remote, base, remoteVersion, localToken, localChange:
  // {changeId, type, data, timestamp} | null, remoteChange: {changeId, version, type, data,
  // timestamp, deviceId}}]. `local` is the entity's visible document now (later local writes
  // included), and localToken its LocalStateToken.
  Result<std::string> AwaitingResolverJson();

 private:
  // A JSON array of the rows of `sql`: each conflict's sides (columns 0-5, see
  // AppendConflictSides), then what `append_rest` adds, then '}'.
  Result<std::string> ListJson(const char* sql, const std::function<Status(std::string*, const Statement&)>& append_rest);

  Database& db_;
  Clock& clock_;
};

}  // namespace deltasync
