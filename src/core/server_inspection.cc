#include "core/server_inspection.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <utility>
#include <vector>

#include "core/change.h"
#include "core/change_codec.h"
#include "core/json.h"
#include "core/server_codec.h"
#include "core/server_decisions.h"

namespace deltasync {

namespace {

// Written in the SQL both stores speak, like server_operation.cc's. `CAST(?N AS TEXT) IS NULL
// OR ...` makes a filter optional (the cast gives PostgreSQL the parameter's type).
constexpr const char* kUsers =
    "SELECT k.user_id, coalesce(u.version, 0), "
    "(SELECT count(*) FROM devices AS d WHERE d.user_id = k.user_id), "
    "(SELECT max(d.last_push_at) FROM devices AS d WHERE d.user_id = k.user_id), "
    "(SELECT max(d.last_pull_at) FROM devices AS d WHERE d.user_id = k.user_id), "
    "(SELECT count(*) FROM conflicts AS c WHERE c.user_id = k.user_id AND c.status = 'open') "
    "FROM (SELECT user_id FROM user_versions UNION SELECT user_id FROM devices) AS k "
    "LEFT JOIN user_versions AS u ON u.user_id = k.user_id "
    "WHERE k.user_id > ?1 ORDER BY k.user_id LIMIT ?2";
constexpr const char* kDevices =
    "SELECT d.device_id, d.last_push_at, d.last_pull_at, d.last_seen_version, d.changes_pushed, "
    "d.conflicts_reported, "
    "(SELECT count(*) FROM conflicts AS c WHERE c.user_id = d.user_id AND c.device_id = "
    "d.device_id "
    "AND c.status = 'open') "
    "FROM devices AS d WHERE d.user_id = ?1 AND d.device_id > ?2 ORDER BY d.device_id LIMIT ?3";
constexpr const char* kChanges =
    "SELECT version, change_id, device_id, change_type, entity_type, entity_id, change_data, "
    "base_version, client_timestamp, server_timestamp, resolution FROM entity_changes "
    "WHERE user_id = ?1 AND version < ?2 AND (CAST(?3 AS TEXT) IS NULL OR entity_type = ?3) "
    "AND (CAST(?4 AS TEXT) IS NULL OR entity_id = ?4) AND (CAST(?5 AS TEXT) IS NULL OR device_id = "
    "?5) "
    "AND (CAST(?6 AS TEXT) IS NULL OR change_type = ?6) ORDER BY version DESC LIMIT ?7";
// The same page of one entity's changes (both named): it reads entity_changes_by_entity.
constexpr const char* kEntityChanges =
    "SELECT version, change_id, device_id, change_type, entity_type, entity_id, change_data, "
    "base_version, client_timestamp, server_timestamp, resolution FROM entity_changes "
    "WHERE user_id = ?1 AND entity_type = ?3 AND entity_id = ?4 AND version < ?2 "
    "AND (CAST(?5 AS TEXT) IS NULL OR device_id = ?5) "
    "AND (CAST(?6 AS TEXT) IS NULL OR change_type = ?6) ORDER BY version DESC LIMIT ?7";
constexpr const char* kEntityLog =
    "SELECT version, change_id, device_id, change_type, entity_type, entity_id, change_data, "
    "base_version, client_timestamp, server_timestamp, resolution FROM entity_changes "
    "WHERE user_id = ?1 AND entity_type = ?2 AND entity_id = ?3 AND version <= ?4 ORDER BY version";
constexpr const char* kEntityNow =
    "SELECT version, deleted, data FROM entities WHERE user_id = ?1 AND entity_type = ?2 AND "
    "entity_id = ?3";
constexpr const char* kConflicts =
    "SELECT c.number, c.change_id, c.device_id, c.entity_type, c.entity_id, c.change_type, "
    "c.client_data, c.base_version, c.client_timestamp, c.created_at, e.data, e.deleted, e.version "
    "FROM conflicts AS c LEFT JOIN entities AS e ON e.user_id = c.user_id AND "
    "e.entity_type = c.entity_type AND e.entity_id = c.entity_id "
    "WHERE c.user_id = ?1 AND c.status = 'open' AND c.number > ?2 ORDER BY c.number LIMIT ?3";
constexpr const char* kChangesPerDay =
    "SELECT server_timestamp / 86400000, count(*) FROM entity_changes "
    "WHERE server_timestamp >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR user_id = ?2) GROUP BY 1 ORDER "
    "BY 1";
constexpr const char* kConflictsPerDay =
    "SELECT created_at / 86400000, count(*) FROM conflicts "
    "WHERE created_at >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR user_id = ?2) GROUP BY 1 ORDER BY 1";
constexpr const char* kDeviceLag =
    "SELECT d.user_id, d.device_id, coalesce(u.version, 0) - d.last_seen_version AS lag "
    "FROM devices AS d LEFT JOIN user_versions AS u ON u.user_id = d.user_id "
    "WHERE CAST(?1 AS TEXT) IS NULL OR d.user_id = ?1 ORDER BY lag DESC, d.user_id, d.device_id "
    "LIMIT ?2";

constexpr int64_t kDayMs = 86400000;

// One row of kChanges or kEntityLog as the inspector lists a change, without its closing brace.
JsonObjectWriter AppendLogRow(SqlQuery& row, std::string* out) {
  JsonObjectWriter change(out);
  change.Int("version", row.Int(0))
      .String("changeId", row.Text(1))
      .OptionalString("deviceId", row.OptionalView(2))
      .String("type", row.Text(3))
      .String("entityType", row.Text(4))
      .String("entityId", row.Text(5))
      .OptionalRaw("data", row.OptionalView(6))
      .OptionalInt("baseVersion", row.OptionalInt(7))
      .Int("clientTimestamp", row.Int(8))
      .Int("serverTimestamp", row.Int(9))
      .OptionalString("resolution", row.OptionalView(10));
  return change;
}

Status Required(const std::optional<std::string>& value, std::string_view name) {
  if (value && !value->empty()) return Status::Ok();
  return Status::InvalidArgument(std::string(name) + " is required by this view");
}

}  // namespace

std::optional<InspectQuery::View> ParseInspectView(std::string_view name) {
  using View = InspectQuery::View;
  if (name == "users") return View::kUsers;
  if (name == "devices") return View::kDevices;
  if (name == "changes") return View::kChanges;
  if (name == "entity") return View::kEntity;
  if (name == "conflicts") return View::kConflicts;
  if (name == "activity") return View::kActivity;
  return std::nullopt;
}

Result<std::string> SyncServerCore::Inspection::Run(const InspectQuery& query) {
  using View = InspectQuery::View;
  const int64_t limit = query.limit.value_or(kDefaultInspectLimit);
  if (limit < 1 || limit > kMaxInspectLimit) {
    return ExpectedError("an integer from 1 to " + std::to_string(kMaxInspectLimit), "limit",
                         std::to_string(limit) + " of type number");
  }
  if (query.view != View::kUsers && query.view != View::kActivity)
    DS_RETURN_IF_ERROR(Required(query.user_id, "userId"));
  if (query.change_type && !ParseChangeType(*query.change_type)) {
    return ExpectedError("CREATED, UPDATED or DELETED", "changeType",
                         "\"" + *query.change_type + "\"");
  }
  std::string out;
  switch (query.view) {
    case View::kUsers:
      DS_RETURN_IF_ERROR(Users(query, limit, &out));
      break;
    case View::kDevices:
      DS_RETURN_IF_ERROR(Devices(query, limit, &out));
      break;
    case View::kChanges:
      DS_RETURN_IF_ERROR(Changes(query, limit, &out));
      break;
    case View::kEntity:
      DS_RETURN_IF_ERROR(Required(query.entity_type, "entityType"));
      DS_RETURN_IF_ERROR(Required(query.entity_id, "entityId"));
      DS_RETURN_IF_ERROR(Entity(query, limit, &out));
      break;
    case View::kConflicts:
      DS_RETURN_IF_ERROR(Conflicts(query, limit, &out));
      break;
    case View::kActivity:
      DS_RETURN_IF_ERROR(Activity(query, &out));
      break;
  }
  return out;
}

template <typename AppendRow>
Status SyncServerCore::Inspection::ListPage(SqlQuery& query, int64_t limit, std::string* items,
                                            bool* more, AppendRow append_row) {
  *more = false;
  items->push_back('[');
  for (int64_t listed = 0;; ++listed) {
    if (listed > 0 && items->size() > s_.options_.limits.max_response_bytes) {
      *more = true;
      break;
    }
    Result<bool> row = query.Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    if (listed == limit) {
      *more = true;
      break;
    }
    if (listed > 0) items->push_back(',');
    DS_RETURN_IF_ERROR(append_row(query, items));
  }
  items->push_back(']');
  return Status::Ok();
}

Status SyncServerCore::Inspection::Users(const InspectQuery& query, int64_t limit,
                                         std::string* out) {
  Result<SqlQuery*> stmt = session_.Cached(kUsers);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  const std::string after = query.after.value_or("");  // bound text must outlive the steps
  scope->BindAll(after, limit + 1);
  std::string users;
  std::string last;
  bool more = false;
  DS_RETURN_IF_ERROR(
      ListPage(*stmt.value(), limit, &users, &more, [&](SqlQuery& row, std::string* items) {
        const std::optional<int64_t> pushed = row.OptionalInt(3);
        const std::optional<int64_t> pulled = row.OptionalInt(4);
        std::optional<int64_t> last_activity = pushed;
        if (pulled && (!last_activity || *pulled > *last_activity)) last_activity = pulled;
        last = std::string(row.Text(0));
        JsonObjectWriter(items)
            .String("userId", last)
            .Int("headVersion", row.Int(1))
            .Int("deviceCount", row.Int(2))
            .OptionalInt("lastActivityAt", last_activity)
            .Int("openConflicts", row.Int(5))
            .Close();
        return Status::Ok();
      }));
  JsonObjectWriter(out)
      .Raw("users", users)
      .OptionalString("next", more ? std::optional<std::string_view>(last) : std::nullopt)
      .Close();
  return Status::Ok();
}

Status SyncServerCore::Inspection::Devices(const InspectQuery& query, int64_t limit,
                                           std::string* out) {
  const std::string& user_id = *query.user_id;
  Result<std::pair<int64_t, int64_t>> version = op_.UserVersion(user_id);
  if (!version.ok()) return version.status();
  const int64_t head = version.value().first;
  Result<int64_t> open = op_.OpenConflictCount(user_id);
  if (!open.ok()) return open.status();
  Result<SqlQuery*> stmt = session_.Cached(kDevices);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  const std::string after = query.after.value_or("");  // bound text must outlive the steps
  scope->BindAll(user_id, after, limit + 1);
  std::string devices;
  std::string last;
  bool more = false;
  DS_RETURN_IF_ERROR(
      ListPage(*stmt.value(), limit, &devices, &more, [&](SqlQuery& row, std::string* items) {
        last = std::string(row.Text(0));
        JsonObjectWriter(items)
            .String("deviceId", last)
            .OptionalInt("lastPushAt", row.OptionalInt(1))
            .OptionalInt("lastPullAt", row.OptionalInt(2))
            .Int("lastSeenVersion", row.Int(3))
            .Int("lag", std::max<int64_t>(0, head - row.Int(3)))
            .Int("changesPushed", row.Int(4))
            .Int("conflictsReported", row.Int(5))
            .Int("openConflicts", row.Int(6))
            .Close();
        return Status::Ok();
      }));
  JsonObjectWriter(out)
      .String("userId", user_id)
      .Int("headVersion", head)
      .Int("openConflicts", open.value())
      .Raw("devices", devices)
      .OptionalString("next", more ? std::optional<std::string_view>(last) : std::nullopt)
      .Close();
  return Status::Ok();
}

Status SyncServerCore::Inspection::Changes(const InspectQuery& query, int64_t limit,
                                           std::string* out) {
  const bool one_entity = query.entity_type && query.entity_id;
  Result<SqlQuery*> stmt = session_.Cached(one_entity ? kEntityChanges : kChanges);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(*query.user_id, query.before.value_or(std::numeric_limits<int64_t>::max()),
                 query.entity_type, query.entity_id, query.device_id, query.change_type, limit + 1);
  std::string changes;
  int64_t last = 0;
  bool more = false;
  DS_RETURN_IF_ERROR(
      ListPage(*stmt.value(), limit, &changes, &more, [&](SqlQuery& row, std::string* items) {
        last = row.Int(0);
        AppendLogRow(row, items).Close();
        return Status::Ok();
      }));
  JsonObjectWriter(out)
      .Raw("changes", changes)
      .OptionalInt("next", more ? std::optional<int64_t>(last) : std::nullopt)
      .Close();
  return Status::Ok();
}

Status SyncServerCore::Inspection::Entity(const InspectQuery& query, int64_t limit,
                                          std::string* out) {
  const std::string& user_id = *query.user_id;
  std::string current = "null";
  {
    Result<SqlQuery*> stmt = session_.Cached(kEntityNow);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindAll(user_id, *query.entity_type, *query.entity_id);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (row.value()) {
      current.clear();
      const bool deleted = scope->Int(1) != 0;
      JsonObjectWriter(&current)
          .Int("version", scope->Int(0))
          .Bool("deleted", deleted)
          .OptionalRaw("data", deleted ? std::nullopt : scope->OptionalView(2))
          .Close();
    }
  }
  // Every version is folded, oldest first, to know each one's document; the newest `limit`
  // are listed, newest first.
  Result<SqlQuery*> stmt = session_.Cached(kEntityLog);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(user_id, *query.entity_type, *query.entity_id,
                 std::numeric_limits<int64_t>::max());
  // Only the newest `limit` versions within the response budget are kept while folding (the
  // newest always is), so memory is bounded by the page, not by the entity's history.
  HistoryFold fold;
  std::deque<std::string> kept;
  size_t kept_bytes = 0;
  int64_t total = 0;
  for (;;) {
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    const ChangeType type = ParseChangeType(scope->Text(3)).value_or(ChangeType::kUpdated);
    DS_RETURN_IF_ERROR(fold.Add(session_.scratch_parser(), type, scope->OptionalText(6)));
    std::string item;
    AppendLogRow(*stmt.value(), &item)
        .OptionalRaw("state",
                     fold.state() ? std::optional<std::string_view>(*fold.state()) : std::nullopt)
        .Close();
    ++total;
    kept_bytes += item.size();
    kept.push_back(std::move(item));
    while (kept.size() > 1 && (kept.size() > static_cast<size_t>(limit) ||
                               kept_bytes > s_.options_.limits.max_response_bytes)) {
      kept_bytes -= kept.front().size();
      kept.pop_front();
    }
  }
  std::string listed = "[";
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    if (it != kept.rbegin()) listed.push_back(',');
    listed += *it;
  }
  listed.push_back(']');
  JsonObjectWriter(out)
      .String("entityType", *query.entity_type)
      .String("entityId", *query.entity_id)
      .Raw("current", current)
      .Raw("versions", listed)
      .Int("olderOmitted", total - static_cast<int64_t>(kept.size()))
      .Close();
  return Status::Ok();
}

Status SyncServerCore::Inspection::Conflicts(const InspectQuery& query, int64_t limit,
                                             std::string* out) {
  const std::string& user_id = *query.user_id;
  // The page's rows are copied first: each one's base is read with another query.
  struct Row {
    int64_t id = 0;
    std::string change_id, entity_type, entity_id, type;
    std::optional<std::string> device_id, client_data, server_data;
    std::optional<int64_t> base_version, server_version;
    int64_t client_timestamp = 0, created_at = 0;
  };
  std::vector<Row> rows;
  bool more = false;
  {
    Result<SqlQuery*> stmt = session_.Cached(kConflicts);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindAll(user_id, query.after_id.value_or(0), limit + 1);
    for (;;) {
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) break;
      if (static_cast<int64_t>(rows.size()) == limit) {
        more = true;
        break;
      }
      Row copy;
      copy.id = scope->Int(0);
      copy.change_id = scope->Text(1);
      copy.device_id = scope->OptionalText(2);
      copy.entity_type = scope->Text(3);
      copy.entity_id = scope->Text(4);
      copy.type = scope->Text(5);
      copy.client_data = scope->OptionalText(6);
      copy.base_version = scope->OptionalInt(7);
      copy.client_timestamp = scope->Int(8);
      copy.created_at = scope->Int(9);
      copy.server_version = scope->OptionalInt(12);
      if (copy.server_version && scope->Int(11) == 0) copy.server_data = scope->OptionalText(10);
      rows.push_back(std::move(copy));
    }
  }
  std::string listed = "[";
  int64_t last = 0;
  for (const Row& row : rows) {
    if (last != 0 && listed.size() > s_.options_.limits.max_response_bytes) {
      more = true;
      break;
    }
    std::optional<std::string> base;
    if (row.base_version) {
      Result<std::optional<std::string>> state =
          op_.StateAt(user_id, row.entity_type, row.entity_id, *row.base_version);
      if (!state.ok()) return state.status();
      base = std::move(state).value();
    }
    OpenConflict conflict;
    conflict.id = row.id;
    conflict.change_id = row.change_id;
    conflict.device_id = row.device_id;
    conflict.entity_type = row.entity_type;
    conflict.entity_id = row.entity_id;
    conflict.type = row.type;
    conflict.client_data = row.client_data;
    conflict.base_version = row.base_version;
    conflict.client_timestamp = row.client_timestamp;
    conflict.created_at = row.created_at;
    conflict.server_data = row.server_data;
    conflict.server_version = row.server_version;
    conflict.with_base = true;
    conflict.base_data = base;
    if (last != 0) listed.push_back(',');
    AppendOpenConflict(conflict, &listed);
    last = row.id;
  }
  listed.push_back(']');
  JsonObjectWriter(out)
      .Raw("conflicts", listed)
      .OptionalInt("next", more ? std::optional<int64_t>(last) : std::nullopt)
      .Close();
  return Status::Ok();
}

Status SyncServerCore::Inspection::AppendPerDay(const char* sql, int64_t since,
                                                const std::optional<std::string>& user_id,
                                                std::string* out) {
  Result<SqlQuery*> stmt = session_.Cached(sql);
  if (!stmt.ok()) return stmt.status();
  SqlQuery::Scope scope(*stmt.value());
  scope->BindAll(since, user_id);
  out->push_back('[');
  for (bool first = true;; first = false) {
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    if (!first) out->push_back(',');
    JsonObjectWriter(out).Int("day", scope->Int(0) * kDayMs).Int("count", scope->Int(1)).Close();
  }
  out->push_back(']');
  return Status::Ok();
}

Status SyncServerCore::Inspection::Activity(const InspectQuery& query, std::string* out) {
  const int64_t days = query.days.value_or(kDefaultDays);
  if (days < 1 || days > kMaxDays) {
    return ExpectedError("an integer from 1 to " + std::to_string(kMaxDays), "days",
                         std::to_string(days) + " of type number");
  }
  const std::optional<std::string> user_id =
      query.user_id && !query.user_id->empty() ? query.user_id : std::nullopt;
  const int64_t today = s_.clock_->NowMs() / kDayMs * kDayMs;
  const int64_t since = today - (days - 1) * kDayMs;
  std::string changes;
  DS_RETURN_IF_ERROR(AppendPerDay(kChangesPerDay, since, user_id, &changes));
  std::string conflicts;
  DS_RETURN_IF_ERROR(AppendPerDay(kConflictsPerDay, since, user_id, &conflicts));
  std::string lag = "[";
  {
    Result<SqlQuery*> stmt = session_.Cached(kDeviceLag);
    if (!stmt.ok()) return stmt.status();
    SqlQuery::Scope scope(*stmt.value());
    scope->BindAll(user_id, kLaggingDevices);
    for (bool first = true;; first = false) {
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) break;
      if (!first) lag.push_back(',');
      JsonObjectWriter(&lag)
          .String("userId", scope->Text(0))
          .String("deviceId", scope->Text(1))
          .Int("lag", std::max<int64_t>(0, scope->Int(2)))
          .Close();
    }
  }
  lag.push_back(']');
  JsonObjectWriter(out)
      .Int("since", since)
      .Int("days", days)
      .Raw("changesPerDay", changes)
      .Raw("conflictsPerDay", conflicts)
      .Raw("deviceLag", lag)
      .Close();
  return Status::Ok();
}

}  // namespace deltasync
