#include "core/store.h"

#include <cmath>
#include <string>
#include <unordered_set>
#include <utility>

#include "core/change_codec.h"

namespace deltasync {

namespace {

constexpr const char* kLoadDocument =
    "SELECT data, base, version, deleted FROM documents WHERE entity_type = ?1 AND entity_id = ?2";
constexpr const char* kGetDocument =
    "SELECT data, version, deleted, last_synced_at, updated_at FROM documents WHERE entity_type = ?1 AND entity_id = ?2";
constexpr const char* kIsDirty =
    "SELECT 1 FROM changes WHERE entity_type = ?1 AND entity_id = ?2 AND status != 'synced' LIMIT 1";
constexpr const char* kUpsertLocal =
    "INSERT INTO documents (entity_type, entity_id, data, base, deleted, updated_at, deleted_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?5 THEN ?6 END) "
    "ON CONFLICT (entity_type, entity_id) DO UPDATE SET data = excluded.data, base = excluded.base, "
    "deleted = excluded.deleted, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at";
constexpr const char* kKeepBase =
    "UPDATE documents SET base = data WHERE entity_type = ?1 AND entity_id = ?2 AND deleted = 0 AND NOT EXISTS ("
    "SELECT 1 FROM changes AS c WHERE c.entity_type = ?1 AND c.entity_id = ?2 AND c.status != 'synced')";
constexpr const char* kHasDocuments = "SELECT EXISTS (SELECT 1 FROM documents)";
constexpr const char* kRecordIndex =
    "INSERT OR IGNORE INTO document_indexes (entity_type, field, name, created_at) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kPurgeTombstones =
    "DELETE FROM documents WHERE deleted = 1 AND deleted_at < ?1 AND NOT EXISTS ("
    "SELECT 1 FROM changes AS c WHERE c.entity_type = documents.entity_type AND c.entity_id = documents.entity_id "
    "AND c.status != 'synced')";

bool IsIdentifierStart(char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_'; }
bool IsIdentifierChar(char ch) { return IsIdentifierStart(ch) || (ch >= '0' && ch <= '9'); }

// The SQL expression for a validated field path. Safe to splice: the path is identifiers and dots.
std::string FieldExpression(const std::string& field) { return "json_extract(data, '$." + field + "')"; }

// Safe to splice: entity types match [A-Za-z0-9_.-]{1,64}.
std::string EntityTypeLiteral(const std::string& entity_type) { return "'" + entity_type + "'"; }

uint64_t Fnv1a64(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const char ch : text) {
    hash ^= static_cast<unsigned char>(ch);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string IndexName(const std::string& entity_type, const std::string& field) {
  std::string name = "dsidx_";
  for (const char ch : entity_type + "__" + field) name.push_back(IsIdentifierChar(ch) ? ch : '_');
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(Fnv1a64(entity_type + '\x1f' + field)));
  return name + "_" + std::string(hash, 8);
}

Status ExpectedQuery(std::string_view expected, std::string_view name, simdjson::ondemand::value value) {
  return ExpectedError(expected, name, DescribeReceived(value));
}

Status ReadScalar(simdjson::ondemand::value value, const std::string& name, BindValue* out) {
  simdjson::ondemand::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return ExpectedQuery("a string, number or boolean", name, value);
  switch (type) {
    case simdjson::ondemand::json_type::string: {
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) return ExpectedQuery("a valid string", name, value);
      out->kind = BindValue::Kind::kText;
      out->text.assign(text);
      return Status::Ok();
    }
    case simdjson::ondemand::json_type::number: {
      simdjson::ondemand::number number;
      if (value.get_number().get(number) != simdjson::SUCCESS) return ExpectedQuery("a finite number", name, value);
      if (number.is_int64()) {
        out->kind = BindValue::Kind::kInt;
        out->integer = number.get_int64();
      } else {
        out->kind = BindValue::Kind::kReal;
        out->real = number.as_double();
        if (!std::isfinite(out->real)) return ExpectedQuery("a finite number", name, value);
      }
      return Status::Ok();
    }
    case simdjson::ondemand::json_type::boolean: {
      bool flag = false;
      if (value.get_bool().get(flag) != simdjson::SUCCESS) return ExpectedQuery("a boolean", name, value);
      out->kind = BindValue::Kind::kInt;
      out->integer = flag ? 1 : 0;
      return Status::Ok();
    }
    default:
      return ExpectedQuery("a string, number or boolean", name, value);
  }
}

Status ReadOrderEntry(simdjson::ondemand::value value, const std::string& name, OrderBy* out) {
  simdjson::ondemand::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return ExpectedQuery("a field name", name, value);
  if (type == simdjson::ondemand::json_type::string) {
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS) return ExpectedQuery("a field name", name, value);
    out->descending = !text.empty() && text.front() == '-';
    if (out->descending) text.remove_prefix(1);
    if (!IsValidFieldPath(text)) {
      return ExpectedError("a field path (\"field\" or \"-field\" for descending)", name,
                           "\"" + std::string(text) + "\" of type string");
    }
    out->field.assign(text);
    return Status::Ok();
  }
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) return ExpectedQuery("an object", name, value);
    bool has_field = false;
    for (auto field_result : object) {
      simdjson::ondemand::field field;
      std::string_view key;
      if (std::move(field_result).get(field) != simdjson::SUCCESS || field.unescaped_key(false).get(key)) {
        return Status::InvalidArgument("Malformed " + name);
      }
      std::string_view text;
      if (key == "field") {
        if (field.value().get_string().get(text) != simdjson::SUCCESS || !IsValidFieldPath(text)) {
          return ExpectedError("a field path", name + ".field", "another value");
        }
        out->field.assign(text);
        has_field = true;
      } else if (key == "direction") {
        if (field.value().get_string().get(text) != simdjson::SUCCESS || (text != "asc" && text != "desc")) {
          return ExpectedError("\"asc\" or \"desc\"", name + ".direction", "another value");
        }
        out->descending = text == "desc";
      } else {
        return Status::InvalidArgument("Unknown key \"" + std::string(key) + "\" in " + name +
                                       " (expected field, direction)");
      }
    }
    if (!has_field) return ExpectedError("a field path", name + ".field", "undefined");
    return Status::Ok();
  }
  return ExpectedQuery("a field name or { field, direction }", name, value);
}

Status ReadWhere(simdjson::ondemand::object where, std::vector<Condition>* out) {
  for (auto field_result : where) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) != simdjson::SUCCESS || field.unescaped_key(false).get(key)) {
      return Status::InvalidArgument("Malformed where clause");
    }
    const std::string name = "where." + std::string(key);
    if (!IsValidFieldPath(key)) {
      return ExpectedError("field paths made of identifiers joined by dots", "the keys of where",
                           "\"" + std::string(key) + "\" of type string");
    }
    simdjson::ondemand::value value = field.value();
    simdjson::ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed " + name);
    if (type == simdjson::ondemand::json_type::null) {
      out->push_back(Condition{std::string(key), CompareOp::kIsNull, {}});
      continue;
    }
    if (type != simdjson::ondemand::json_type::object) {
      Condition condition{std::string(key), CompareOp::kEq, {BindValue{}}};
      DS_RETURN_IF_ERROR(ReadScalar(value, name, &condition.values[0]));
      out->push_back(std::move(condition));
      continue;
    }
    simdjson::ondemand::object ops;
    if (value.get_object().get(ops) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed " + name);
    for (auto op_result : ops) {
      simdjson::ondemand::field op_field;
      std::string_view op;
      if (std::move(op_result).get(op_field) != simdjson::SUCCESS || op_field.unescaped_key(false).get(op)) {
        return Status::InvalidArgument("Malformed " + name);
      }
      const std::string op_name = name + "." + std::string(op);
      Condition condition{std::string(key), CompareOp::kEq, {}};
      if (op == "$in") {
        condition.op = CompareOp::kIn;
        simdjson::ondemand::array items;
        if (op_field.value().get_array().get(items) != simdjson::SUCCESS) {
          return ExpectedError("an array of strings, numbers or booleans", op_name, "another value");
        }
        size_t index = 0;
        for (auto item_result : items) {
          simdjson::ondemand::value item;
          if (std::move(item_result).get(item) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed " + op_name);
          BindValue bind;
          DS_RETURN_IF_ERROR(ReadScalar(item, op_name + "[" + std::to_string(index++) + "]", &bind));
          condition.values.push_back(std::move(bind));
          if (condition.values.size() > 1000) {
            return Status::LimitExceeded("More than 1000 values in " + op_name);
          }
        }
        if (condition.values.empty()) return ExpectedError("a non-empty array", op_name, "an empty array");
        out->push_back(std::move(condition));
        continue;
      }
      simdjson::ondemand::value operand = op_field.value();
      bool is_null = false;
      if ((op == "$eq" || op == "$ne") && operand.is_null().get(is_null) == simdjson::SUCCESS && is_null) {
        condition.op = op == "$eq" ? CompareOp::kIsNull : CompareOp::kNotNull;
        out->push_back(std::move(condition));
        continue;
      }
      if (op == "$eq") {
        condition.op = CompareOp::kEq;
      } else if (op == "$ne") {
        condition.op = CompareOp::kNe;
      } else if (op == "$lt") {
        condition.op = CompareOp::kLt;
      } else if (op == "$lte") {
        condition.op = CompareOp::kLte;
      } else if (op == "$gt") {
        condition.op = CompareOp::kGt;
      } else if (op == "$gte") {
        condition.op = CompareOp::kGte;
      } else {
        return Status::InvalidArgument("Unknown operator \"" + std::string(op) + "\" in " + name +
                                       " (expected $eq, $ne, $lt, $lte, $gt, $gte, $in)");
      }
      condition.values.emplace_back();
      DS_RETURN_IF_ERROR(ReadScalar(operand, op_name, &condition.values[0]));
      out->push_back(std::move(condition));
    }
  }
  return Status::Ok();
}

}  // namespace

bool IsValidFieldPath(std::string_view path) {
  if (path.empty() || path.size() > 128) return false;
  bool at_start = true;
  for (const char ch : path) {
    if (at_start) {
      if (!IsIdentifierStart(ch)) return false;
      at_start = false;
    } else if (ch == '.') {
      at_start = true;
    } else if (!IsIdentifierChar(ch)) {
      return false;
    }
  }
  return !at_start;
}

Status DecodeListQuery(simdjson::ondemand::parser& parser, const std::string& json, ListQuery* out) {
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS || doc.get_object().get(object) != simdjson::SUCCESS) {
    return Status::InvalidArgument("Expected an object for options");
  }
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) != simdjson::SUCCESS || field.unescaped_key(false).get(key)) {
      return Status::InvalidArgument("Malformed options");
    }
    simdjson::ondemand::value value = field.value();
    if (key == "where") {
      simdjson::ondemand::object where;
      if (value.get_object().get(where) != simdjson::SUCCESS) {
        return ExpectedQuery("an object of field conditions", "options.where", value);
      }
      DS_RETURN_IF_ERROR(ReadWhere(where, &out->where));
    } else if (key == "orderBy") {
      simdjson::ondemand::json_type type;
      if (value.type().get(type) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed options.orderBy");
      if (type == simdjson::ondemand::json_type::array) {
        simdjson::ondemand::array items;
        if (value.get_array().get(items) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed options.orderBy");
        size_t index = 0;
        for (auto item_result : items) {
          simdjson::ondemand::value item;
          if (std::move(item_result).get(item) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed options.orderBy");
          OrderBy order;
          DS_RETURN_IF_ERROR(ReadOrderEntry(item, "options.orderBy[" + std::to_string(index++) + "]", &order));
          out->order_by.push_back(std::move(order));
        }
      } else {
        OrderBy order;
        DS_RETURN_IF_ERROR(ReadOrderEntry(value, "options.orderBy", &order));
        out->order_by.push_back(std::move(order));
      }
    } else if (key == "limit" || key == "offset") {
      int64_t number = 0;
      if (value.get_int64().get(number) != simdjson::SUCCESS || number < 0 || (key == "limit" && number == 0)) {
        return ExpectedQuery(key == "limit" ? "a positive integer" : "a non-negative integer", "options." + std::string(key),
                             value);
      }
      if (key == "limit") {
        out->limit = number;
      } else {
        out->offset = number;
      }
    } else {
      return Status::InvalidArgument("Unknown option \"" + std::string(key) +
                                     "\" in options (expected one of: where, orderBy, limit, offset)");
    }
  }
  return Status::Ok();
}

DocumentStore::DocumentStore(Database& db, Clock& clock, ChangeQueue& queue, size_t max_document_bytes)
    : db_(db), clock_(clock), queue_(queue), max_document_bytes_(max_document_bytes) {}

Status DocumentStore::KeepBaseForDirectChange(const std::string& entity_type, const std::string& entity_id) {
  Result<Statement*> stmt = db_.Cached(kKeepBase);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, entity_type);
  scope->BindText(2, entity_id);
  return scope->Run();
}

Result<bool> DocumentStore::HasDocuments() {
  Result<Statement*> stmt = db_.Cached(kHasDocuments);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  return scope->Int(0) != 0;
}

Result<bool> DocumentStore::IsDirty(const std::string& entity_type, const std::string& entity_id) {
  Result<Statement*> stmt = db_.Cached(kIsDirty);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, entity_type);
  scope->BindText(2, entity_id);
  return scope->Step();
}

Result<DocumentStore::Existing> DocumentStore::Load(const std::string& entity_type, const std::string& entity_id) {
  Result<Statement*> stmt = db_.Cached(kLoadDocument);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, entity_type);
  scope->BindText(2, entity_id);
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  Existing existing;
  if (!row.value()) return existing;
  existing.found = true;
  existing.data = scope->OptionalText(0);
  existing.base = scope->OptionalText(1);
  existing.version = scope->OptionalInt(2);
  existing.deleted = scope->Int(3) != 0;
  return existing;
}

Status DocumentStore::WriteLocal(const std::string& entity_type, const std::string& entity_id,
                                 const Existing& existing, std::optional<std::string_view> data, bool deleted) {
  // The server state the local changes are made on: kept while the entity is dirty,
  // taken from the current visible state when it becomes dirty now. Without a document row
  // there is neither, whether or not a change of the entity is queued.
  std::optional<std::string> base;
  if (existing.found) {
    Result<bool> dirty = IsDirty(entity_type, entity_id);
    if (!dirty.ok()) return dirty.status();
    if (dirty.value()) {
      base = existing.base;
    } else if (!existing.deleted) {
      base = existing.data;
    }
  }
  Result<Statement*> stmt = db_.Cached(kUpsertLocal);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindText(1, entity_type);
  scope->BindText(2, entity_id);
  if (data) {
    scope->BindText(3, *data);
  } else {
    scope->BindNull(3);
  }
  scope->BindOptionalText(4, base);
  scope->BindInt(5, deleted ? 1 : 0);
  scope->BindInt(6, clock_.NowMs());
  return scope->Run();
}

Result<WriteEvent> DocumentStore::Put(const std::string& entity_type, const std::string& entity_id,
                                      const std::string& doc) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  Result<WriteEvent> written = PutInTransaction(entity_type, entity_id, doc);
  if (!written.ok()) return written.status();
  DS_RETURN_IF_ERROR(tx.Commit());
  return written;
}

Result<WriteEvent> DocumentStore::PutInTransaction(const std::string& entity_type, const std::string& entity_id,
                                                   const std::string& doc) {
  Result<Existing> existing = Load(entity_type, entity_id);
  if (!existing.ok()) return existing.status();
  return PutLoaded(entity_type, entity_id, doc, existing.value());
}

Result<DocumentStore::PutOutcome> DocumentStore::PutUnlessEqualInTransaction(const std::string& entity_type,
                                                                             const std::string& entity_id,
                                                                             const std::string& doc, bool keep_existing,
                                                                             bool dry_run) {
  Result<Existing> existing = Load(entity_type, entity_id);
  if (!existing.ok()) return existing.status();
  const bool live = existing.value().found && !existing.value().deleted;
  if (live && (keep_existing || (existing.value().data && JsonValueEquals(*existing.value().data, doc)))) {
    return PutOutcome::kUnchanged;
  }
  if (!dry_run) {
    Result<WriteEvent> written = PutLoaded(entity_type, entity_id, doc, existing.value());
    if (!written.ok()) return written.status();
  }
  return live ? PutOutcome::kUpdated : PutOutcome::kInserted;
}

Result<WriteEvent> DocumentStore::PutLoaded(const std::string& entity_type, const std::string& entity_id,
                                            const std::string& doc, const Existing& existing) {
  ChangeInput change;
  change.entity_type = entity_type;
  change.entity_id = entity_id;
  change.base_version = existing.version;
  if (existing.found && !existing.deleted && existing.data) {
    change.type = ChangeType::kUpdated;
    // Every field of the new document, and null for each field it dropped.
    Result<std::string> delta = DeltaWithRemovals(parser_, doc, *existing.data);
    if (!delta.ok()) return delta.status();
    change.data = std::move(delta).value();
  } else {
    change.type = ChangeType::kCreated;
    change.data = doc;
  }
  std::optional<std::string> without_nulls;
  if (change.type == ChangeType::kUpdated) {
    // The queued UPDATED's nulls remove fields on the server: store the same document here.
    Result<std::string> merged = ShallowMergeObjects(parser_, "{}", doc);
    if (!merged.ok()) return merged.status();
    without_nulls = std::move(merged).value();
  }
  DS_RETURN_IF_ERROR(WriteLocal(entity_type, entity_id, existing, without_nulls ? *without_nulls : doc, false));
  Result<EnqueueResult> queued = queue_.EnqueueInTransaction(change);
  if (!queued.ok()) return queued.status();
  return WriteEvent{entity_type, entity_id, change.type, queued.value().change_id, queued.value().outcome};
}

Result<WriteEvent> DocumentStore::Patch(const std::string& entity_type, const std::string& entity_id,
                                        const std::string& fields) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  Result<Existing> existing = Load(entity_type, entity_id);
  if (!existing.ok()) return existing.status();
  if (!existing.value().found || existing.value().deleted || !existing.value().data) {
    return Status::NotFound("No document " + entity_type + "/" + entity_id + " to patch");
  }
  Result<std::string> merged = ShallowMergeObjects(parser_, *existing.value().data, fields);
  if (!merged.ok()) return merged.status();
  if (merged.value().size() > max_document_bytes_) {
    return Status::LimitExceeded("Patching " + entity_type + "/" + entity_id + " would make it " +
                                 std::to_string(merged.value().size()) + " bytes, over the limit of " +
                                 std::to_string(max_document_bytes_) + " bytes per document");
  }
  DS_RETURN_IF_ERROR(WriteLocal(entity_type, entity_id, existing.value(), merged.value(), false));
  ChangeInput change;
  change.type = ChangeType::kUpdated;
  change.entity_type = entity_type;
  change.entity_id = entity_id;
  change.base_version = existing.value().version;
  change.data = fields;
  Result<EnqueueResult> queued = queue_.EnqueueInTransaction(change);
  if (!queued.ok()) return queued.status();
  DS_RETURN_IF_ERROR(tx.Commit());
  return WriteEvent{entity_type, entity_id, change.type, queued.value().change_id, queued.value().outcome};
}

Result<std::optional<WriteEvent>> DocumentStore::Delete(const std::string& entity_type, const std::string& entity_id) {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  Result<Existing> existing = Load(entity_type, entity_id);
  if (!existing.ok()) return existing.status();
  if (!existing.value().found || existing.value().deleted) return std::optional<WriteEvent>();
  DS_RETURN_IF_ERROR(WriteLocal(entity_type, entity_id, existing.value(), std::nullopt, true));
  ChangeInput change;
  change.type = ChangeType::kDeleted;
  change.entity_type = entity_type;
  change.entity_id = entity_id;
  change.base_version = existing.value().version;
  Result<EnqueueResult> queued = queue_.EnqueueInTransaction(change);
  if (!queued.ok()) return queued.status();
  DS_RETURN_IF_ERROR(tx.Commit());
  return std::optional<WriteEvent>(
      WriteEvent{entity_type, entity_id, change.type, queued.value().change_id, queued.value().outcome});
}

Result<std::optional<StoredDocument>> DocumentStore::Get(const std::string& entity_type, const std::string& entity_id,
                                                         bool include_deleted) {
  StoredDocument doc;
  {
    Result<Statement*> stmt = db_.Cached(kGetDocument);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, entity_type);
    scope->BindText(2, entity_id);
    Result<bool> row = scope->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) return std::optional<StoredDocument>();
    doc.meta.deleted = scope->Int(2) != 0;
    if (doc.meta.deleted && !include_deleted) return std::optional<StoredDocument>();
    doc.data = scope->OptionalText(0);
    doc.meta.version = scope->OptionalInt(1);
    doc.meta.last_synced_at = scope->OptionalInt(3);
    doc.meta.updated_at = scope->Int(4);
  }
  if (include_deleted) {
    Result<bool> dirty = IsDirty(entity_type, entity_id);
    if (!dirty.ok()) return dirty.status();
    doc.meta.dirty = dirty.value();
  }
  return std::optional<StoredDocument>(std::move(doc));
}

Result<std::string> DocumentStore::BuildListSql(const std::string& entity_type, const ListQuery& query, bool explain) {
  std::string sql = explain ? "EXPLAIN QUERY PLAN " : "";
  sql += "SELECT data FROM documents WHERE entity_type = " + EntityTypeLiteral(entity_type) + " AND deleted = 0";
  for (const Condition& condition : query.where) {
    const std::string expr = FieldExpression(condition.field);
    switch (condition.op) {
      case CompareOp::kEq: sql += " AND " + expr + " = ?"; break;
      case CompareOp::kNe: sql += " AND " + expr + " IS NOT ?"; break;
      case CompareOp::kLt: sql += " AND " + expr + " < ?"; break;
      case CompareOp::kLte: sql += " AND " + expr + " <= ?"; break;
      case CompareOp::kGt: sql += " AND " + expr + " > ?"; break;
      case CompareOp::kGte: sql += " AND " + expr + " >= ?"; break;
      case CompareOp::kIsNull: sql += " AND " + expr + " IS NULL"; break;
      case CompareOp::kNotNull: sql += " AND " + expr + " IS NOT NULL"; break;
      case CompareOp::kIn: {
        sql += " AND " + expr + " IN (";
        for (size_t i = 0; i < condition.values.size(); ++i) sql += i == 0 ? "?" : ", ?";
        sql += ")";
        break;
      }
    }
  }
  sql += " ORDER BY ";
  for (const OrderBy& order : query.order_by) {
    sql += FieldExpression(order.field) + (order.descending ? " DESC, " : ", ");
  }
  sql += "id";
  if (query.limit || query.offset > 0) sql += " LIMIT ? OFFSET ?";
  return sql;
}

Status DocumentStore::BindConditions(Statement& stmt, const ListQuery& query) {
  int index = 1;
  for (const Condition& condition : query.where) {
    for (const BindValue& value : condition.values) {
      switch (value.kind) {
        case BindValue::Kind::kText: stmt.BindText(index, value.text); break;
        case BindValue::Kind::kInt: stmt.BindInt(index, value.integer); break;
        case BindValue::Kind::kReal: stmt.BindDouble(index, value.real); break;
      }
      ++index;
    }
  }
  if (query.limit || query.offset > 0) {
    stmt.BindInt(index++, query.limit.value_or(-1));
    stmt.BindInt(index, query.offset);
  }
  return Status::Ok();
}

Result<std::string> DocumentStore::List(const std::string& entity_type, const ListQuery& query) {
  Result<std::string> sql = BuildListSql(entity_type, query, false);
  if (!sql.ok()) return sql.status();
  Result<std::unique_ptr<Statement>> stmt = db_.Prepare(sql.value());
  if (!stmt.ok()) return stmt.status();
  DS_RETURN_IF_ERROR(BindConditions(*stmt.value(), query));
  std::string out = "[";
  for (;;) {
    Result<bool> row = stmt.value()->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    if (out.size() > 1) out.push_back(',');
    out.append(stmt.value()->Text(0));
  }
  out.push_back(']');
  return out;
}

Result<std::string> DocumentStore::ExplainList(const std::string& entity_type, const ListQuery& query) {
  Result<std::string> sql = BuildListSql(entity_type, query, true);
  if (!sql.ok()) return sql.status();
  Result<std::unique_ptr<Statement>> stmt = db_.Prepare(sql.value());
  if (!stmt.ok()) return stmt.status();
  DS_RETURN_IF_ERROR(BindConditions(*stmt.value(), query));
  std::string out;
  for (;;) {
    Result<bool> row = stmt.value()->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    if (!out.empty()) out.push_back('\n');
    out.append(stmt.value()->Text(3));
  }
  return out;
}

Status DocumentStore::CreateIndex(const std::string& entity_type, const std::string& field) {
  if (!IsValidEntityType(entity_type) || !IsValidFieldPath(field)) {
    return Status::InvalidArgument("Invalid entity type or field for an index");
  }
  const std::string name = IndexName(entity_type, field);
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  // Partial (only this type's live documents), and led by entity_type so that the planner
  // prefers it to the (entity_type, entity_id) key for list() on this field.
  DS_RETURN_IF_ERROR(db_.Exec("CREATE INDEX IF NOT EXISTS \"" + name + "\" ON documents (entity_type, " +
                              FieldExpression(field) + ") WHERE entity_type = " + EntityTypeLiteral(entity_type) +
                              " AND deleted = 0"));
  {
    Result<Statement*> stmt = db_.Cached(kRecordIndex);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, entity_type);
    scope->BindText(2, field);
    scope->BindText(3, name);
    scope->BindInt(4, clock_.NowMs());
    DS_RETURN_IF_ERROR(scope->Run());
  }
  return tx.Commit();
}

Result<int64_t> DocumentStore::PurgeTombstones(int64_t retention_ms) {
  Result<Statement*> stmt = db_.Cached(kPurgeTombstones);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  scope->BindInt(1, clock_.NowMs() - retention_ms);
  DS_RETURN_IF_ERROR(scope->Run());
  return static_cast<int64_t>(db_.Changes());
}

}  // namespace deltasync
