#include "core/conflict_store.h"

#include "core/json.h"
#include "core/sha256.h"

namespace deltasync {

namespace {

constexpr const char* kFindOpen = "SELECT id FROM conflicts WHERE entity_type = ?1 AND entity_id = ?2 AND status = 'open'";
constexpr const char* kInsert =
    "INSERT INTO conflicts (entity_type, entity_id, remote_data, remote_version, remote_change_id, "
    "remote_timestamp, created_at, base_data, remote_type, remote_change_data, remote_device_id, awaiting_resolver) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
// A later remote change: the base the local changes were made on stays.
constexpr const char* kUpdate =
    "UPDATE conflicts SET remote_data = ?2, remote_version = ?3, remote_change_id = ?4, "
    "remote_timestamp = ?5, remote_type = ?6, remote_change_data = ?7, remote_device_id = ?8, "
    "awaiting_resolver = ?9, resolver_error = NULL WHERE id = ?1";
constexpr const char* kLoad =
    "SELECT entity_type, entity_id, remote_data, remote_version, awaiting_resolver FROM conflicts "
    "WHERE id = ?1 AND status = 'open'";
constexpr const char* kMarkResolved =
    "UPDATE conflicts SET status = 'resolved', resolution = ?2, resolved_at = ?3, awaiting_resolver = 0 WHERE id = ?1";
constexpr const char* kLeaveForReview =
    "UPDATE conflicts SET awaiting_resolver = 0, resolver_error = ?2 WHERE id = ?1 AND status = 'open'";
constexpr const char* kVisibleDocument =
    "SELECT CASE WHEN deleted THEN NULL ELSE data END FROM documents WHERE entity_type = ?1 AND entity_id = ?2";
constexpr const char* kOpenConflicts =
    "SELECT id, entity_type, entity_id, NULL, remote_data, base_data, remote_version, remote_change_id, "
    "remote_timestamp, created_at, awaiting_resolver, resolver_error FROM conflicts WHERE status = 'open' ORDER BY id";
// The entity's newest local change the server has not acknowledged comes along.
constexpr const char* kAwaitingResolver =
    "SELECT c.id, c.entity_type, c.entity_id, NULL, c.remote_data, c.base_data, c.remote_version, "
    "c.remote_change_id, c.remote_type, c.remote_change_data, c.remote_timestamp, c.remote_device_id, "
    "l.change_id, l.type, l.data, l.timestamp "
    "FROM conflicts c INDEXED BY conflicts_awaiting_resolver "
    "LEFT JOIN changes l ON l.id = (SELECT max(id) FROM changes WHERE entity_type = c.entity_type "
    "AND entity_id = c.entity_id AND status != 'synced') "
    "WHERE c.status = 'open' AND c.awaiting_resolver = 1 ORDER BY c.id";

void AppendJsonOrNull(std::string* out, const Statement& row, int column) {
  out->append(row.IsNull(column) ? "null" : std::string(row.Text(column)));
}

void AppendStringOrNull(std::string* out, const Statement& row, int column) {
  if (row.IsNull(column)) {
    out->append("null");
  } else {
    AppendJsonString(out, row.Text(column));
  }
}

// {"id":..,"entityType":..,"entityId":..,"local":..,"remote":..,"base":.. from columns 0-2, 4
// and 5, and the local side.
void AppendConflictSides(std::string* out, const Statement& row, const std::optional<std::string>& local) {
  *out += "{\"id\":" + std::to_string(row.Int(0)) + ",\"entityType\":";
  AppendJsonString(out, row.Text(1));
  *out += ",\"entityId\":";
  AppendJsonString(out, row.Text(2));
  *out += ",\"local\":";
  out->append(local ? *local : "null");
  *out += ",\"remote\":";
  AppendJsonOrNull(out, row, 4);
  *out += ",\"base\":";
  AppendJsonOrNull(out, row, 5);
}

}  // namespace

std::string LocalStateToken(const std::optional<std::string>& visible) {
  return Sha256::Hex(visible ? *visible : std::string_view("null"));
}

Result<int64_t> ConflictStore::Open(const RemoteChange& change, const std::optional<std::string>& remote,
                                    const std::optional<std::string>& base, bool awaiting_resolver) {
  std::optional<int64_t> open_id;
  {
    Result<Statement*> stmt = db_.Cached(kFindOpen);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, change.entity_type);
    scope->BindText(2, change.entity_id);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (row.value()) open_id = scope->Int(0);
  }
  const std::optional<std::string> remote_delta = change.type == ChangeType::kDeleted ? std::nullopt : change.data;
  if (open_id) {
    Result<Statement*> stmt = db_.Cached(kUpdate);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindInt(1, *open_id);
    scope->BindOptionalText(2, remote);
    scope->BindInt(3, change.version);
    scope->BindText(4, change.change_id);
    scope->BindInt(5, change.timestamp);
    scope->BindText(6, ChangeTypeName(change.type));
    scope->BindOptionalText(7, remote_delta);
    scope->BindOptionalText(8, change.device_id);
    scope->BindInt(9, awaiting_resolver ? 1 : 0);
    DS_RETURN_IF_ERROR(scope->Run());
    return *open_id;
  }
  Result<Statement*> stmt = db_.Cached(kInsert);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, change.entity_type);
  scope->BindText(2, change.entity_id);
  scope->BindOptionalText(3, remote);
  scope->BindInt(4, change.version);
  scope->BindText(5, change.change_id);
  scope->BindInt(6, change.timestamp);
  scope->BindInt(7, clock_.NowMs());
  scope->BindOptionalText(8, base);
  scope->BindText(9, ChangeTypeName(change.type));
  scope->BindOptionalText(10, remote_delta);
  scope->BindOptionalText(11, change.device_id);
  scope->BindInt(12, awaiting_resolver ? 1 : 0);
  DS_RETURN_IF_ERROR(scope->Run());
  return db_.LastInsertRowId();
}

Result<std::optional<ConflictStore::OpenConflict>> ConflictStore::Load(int64_t conflict_id) {
  Result<Statement*> stmt = db_.Cached(kLoad);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, conflict_id);
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return std::optional<OpenConflict>();
  OpenConflict open;
  open.entity_type = std::string(scope->Text(0));
  open.entity_id = std::string(scope->Text(1));
  open.remote = scope->OptionalText(2);
  open.remote_version = scope->Int(3);
  open.awaiting_resolver = scope->Int(4) != 0;
  return std::optional<OpenConflict>(std::move(open));
}

Status ConflictStore::MarkResolved(int64_t conflict_id, const char* resolution) {
  Result<Statement*> stmt = db_.Cached(kMarkResolved);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, conflict_id);
  scope->BindText(2, resolution);
  scope->BindInt(3, clock_.NowMs());
  return scope->Run();
}

Status ConflictStore::LeaveForReview(int64_t conflict_id, const std::optional<std::string>& resolver_error) {
  Result<Statement*> stmt = db_.Cached(kLeaveForReview);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, conflict_id);
  scope->BindOptionalText(2, resolver_error);
  return scope->Run();
}

Result<std::string> ConflictStore::ListJson(const char* sql,
                                            const std::function<Status(std::string*, const Statement&)>& append) {
  Result<Statement*> stmt = db_.Cached(sql);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  const Statement& row = *stmt.value();
  std::string out = "[";
  for (;;) {
    Result<bool> more = scope->Step();
    if (!more.ok()) return more.status();
    if (!more.value()) break;
    if (out.size() > 1) out.push_back(',');
    DS_RETURN_IF_ERROR(append(&out, row));
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

Result<std::optional<std::string>> ConflictStore::LocalSide(const std::string& entity_type,
                                                           const std::string& entity_id) {
  Result<Statement*> stmt = db_.Cached(kVisibleDocument);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, entity_type);
  scope->BindText(2, entity_id);
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return std::optional<std::string>();
  return scope->OptionalText(0);
}

Result<std::string> ConflictStore::OpenJson() {
  return ListJson(kOpenConflicts, [this](std::string* out, const Statement& row) {
    Result<std::optional<std::string>> local = LocalSide(std::string(row.Text(1)), std::string(row.Text(2)));
    if (!local.ok()) return local.status();
    AppendConflictSides(out, row, local.value());
    *out += ",\"remoteVersion\":" + std::to_string(row.Int(6)) + ",\"remoteChangeId\":";
    AppendJsonString(out, row.Text(7));
    *out += ",\"remoteTimestamp\":" + std::to_string(row.Int(8)) + ",\"createdAt\":" + std::to_string(row.Int(9));
    *out += row.Int(10) != 0 ? ",\"awaitingResolver\":true" : ",\"awaitingResolver\":false";
    *out += ",\"resolverError\":";
    AppendStringOrNull(out, row, 11);
    return Status::Ok();
  });
}

Result<std::string> ConflictStore::AwaitingResolverJson() {
  return ListJson(kAwaitingResolver, [this](std::string* out, const Statement& row) {
    Result<std::optional<std::string>> local = LocalSide(std::string(row.Text(1)), std::string(row.Text(2)));
    if (!local.ok()) return local.status();
    AppendConflictSides(out, row, local.value());
    *out += ",\"remoteVersion\":" + std::to_string(row.Int(6)) + ",\"localToken\":\"";
    *out += LocalStateToken(local.value());
    *out += "\",\"localChange\":";
    if (row.IsNull(12)) {
      *out += "null";
    } else {
      *out += "{\"changeId\":";
      AppendJsonString(out, row.Text(12));
      *out += ",\"type\":";
      AppendJsonString(out, row.Text(13));
      *out += ",\"data\":";
      AppendJsonOrNull(out, row, 14);
      *out += ",\"timestamp\":" + std::to_string(row.Int(15)) + "}";
    }
    *out += ",\"remoteChange\":{\"changeId\":";
    AppendJsonString(out, row.Text(7));
    *out += ",\"version\":" + std::to_string(row.Int(6)) + ",\"type\":";
    AppendStringOrNull(out, row, 8);
    *out += ",\"data\":";
    AppendJsonOrNull(out, row, 9);
    *out += ",\"timestamp\":" + std::to_string(row.Int(10)) + ",\"deviceId\":";
    AppendStringOrNull(out, row, 11);
    *out += "}";  // remoteChange
    return Status::Ok();
  });
}

}  // namespace deltasync
