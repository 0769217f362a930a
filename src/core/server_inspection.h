// The inspector's reads of the server's store (deltasync/inspector): users, a user's devices,
// the change log, an entity's history, open conflicts with their base, and activity per day.
// Read-only: nothing here writes, and each view is a few indexed queries except the
// server-wide activity view, which scans the log of its time window.
//
// The query (InspectQuery) is decoded by the host; the value rules (limits, ranges, the
// required user) are checked here, so every host gets the same answers and errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/server.h"
#include "core/server_operation.h"
#include "core/server_store.h"
#include "core/status.h"

namespace deltasync {

struct InspectQuery {
  enum class View { kUsers, kDevices, kChanges, kEntity, kConflicts, kActivity };
  View view = View::kUsers;
  std::optional<std::string> user_id;      // every view but kUsers; kActivity: optional
  std::optional<std::string> after;        // kUsers: user id; kDevices: device id (paging)
  std::optional<int64_t> after_id;         // kConflicts: conflict id (paging)
  std::optional<int64_t> before;           // kChanges: version (paging, newest first)
  std::optional<int64_t> limit;            // 1..kMaxInspectLimit, default kDefaultInspectLimit
  std::optional<int64_t> days;             // kActivity: 1..366, default 30
  std::optional<std::string> entity_type;  // kChanges filter; kEntity: required
  std::optional<std::string> entity_id;    // kChanges filter; kEntity: required
  std::optional<std::string> device_id;    // kChanges filter
  std::optional<std::string> change_type;  // kChanges filter: CREATED, UPDATED or DELETED
};

// Parses a view name ("users", "devices", "changes", "entity", "conflicts", "activity").
std::optional<InspectQuery::View> ParseInspectView(std::string_view name);

class SyncServerCore::Inspection {
 public:
  static constexpr int64_t kDefaultInspectLimit = 50;
  static constexpr int64_t kMaxInspectLimit = 500;
  static constexpr int64_t kDefaultDays = 30;
  static constexpr int64_t kMaxDays = 366;
  // How many devices lag the most are listed by kActivity.
  static constexpr int64_t kLaggingDevices = 20;

  // Reads through `op`'s session, and with `op`'s own reads where a view needs one of them.
  Inspection(SyncServerCore& server, Operation& op) : s_(server), op_(op), session_(op.session()) {}

  // The view's JSON; INVALID_ARGUMENT for a query whose values break the rules above.
  Result<std::string> Run(const InspectQuery& query);

 private:
  // {"users":[{userId, headVersion, deviceCount, lastActivityAt, openConflicts}], "next"}
  Status Users(const InspectQuery& query, int64_t limit, std::string* out);
  // {"userId", "headVersion", "openConflicts", "devices":[{deviceId, lastPushAt, lastPullAt,
  // lastSeenVersion, lag, changesPushed, conflictsReported, openConflicts}], "next"}
  Status Devices(const InspectQuery& query, int64_t limit, std::string* out);
  // {"changes":[{version, changeId, deviceId, type, entityType, entityId, data, baseVersion,
  // clientTimestamp, serverTimestamp, resolution}], "next"}: newest first; `next` is the
  // `before` of the older page.
  Status Changes(const InspectQuery& query, int64_t limit, std::string* out);
  // {"entityType", "entityId", "current": {version, deleted, data} | null, "versions": [the
  // log's change fields plus "state", the document after it], "olderOmitted"}: newest first.
  Status Entity(const InspectQuery& query, int64_t limit, std::string* out);
  // {"conflicts":[conflicts() items plus "baseData", the document at baseVersion], "next"}
  Status Conflicts(const InspectQuery& query, int64_t limit, std::string* out);
  // {"since", "changesPerDay":[{day, count}], "conflictsPerDay":[{day, count}],
  // "deviceLag":[{userId, deviceId, lag}]}; days are UTC, `day` its first millisecond.
  Status Activity(const InspectQuery& query, std::string* out);

  // Appends a JSON array of the query's rows, at most `limit` of them and, past the first, at
  // most the response budget. `more`: a further row exists (or the budget stopped the page).
  template <typename AppendRow>
  Status ListPage(SqlQuery& query, int64_t limit, std::string* items, bool* more,
                  AppendRow append_row);
  // {day, count} items of a per-day count query bound to (since, user).
  Status AppendPerDay(const char* sql, int64_t since, const std::optional<std::string>& user_id,
                      std::string* out);

  SyncServerCore& s_;
  Operation& op_;
  SqlSession& session_;
};

}  // namespace deltasync
