// DocumentStore: the local, IndexedDB-equivalent document store. Every write
// stores the document and queues its change in the same SQLite transaction, so
// there is no moment at which one exists without the other.
//
// Each document row keeps the visible state (`data`: the server state with the
// local pending changes on top) and, while the entity has local changes that the
// server has not acknowledged, the server state they were made on (`base`).
//
// Thread safety: not thread-safe; one thread at a time, like its Database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/change.h"
#include "core/env.h"
#include "core/json.h"
#include "core/queue.h"
#include "core/sqlite.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

struct DocumentMeta {
  std::optional<int64_t> version;  // server version of the last pulled change, if any
  bool dirty = false;              // local changes not yet acknowledged by the server
  bool deleted = false;            // a tombstone
  std::optional<int64_t> last_synced_at;
  int64_t updated_at = 0;
};

struct StoredDocument {
  std::optional<std::string> data;  // canonical JSON; absent for a tombstone
  DocumentMeta meta;
};

// What one local write did, for the 'change' event.
struct WriteEvent {
  std::string entity_type;
  std::string entity_id;
  ChangeType type = ChangeType::kCreated;
  std::string change_id;
  EnqueueOutcome outcome = EnqueueOutcome::kQueued;
};

enum class CompareOp { kEq, kNe, kLt, kLte, kGt, kGte, kIn, kIsNull, kNotNull };

// A scalar from a where clause, typed as json_extract() returns it
// (JSON true/false compare as the integers 1/0).
struct BindValue {
  enum class Kind { kText, kInt, kReal } kind = Kind::kText;
  std::string text;
  int64_t integer = 0;
  double real = 0;
};

struct Condition {
  std::string field;  // a dotted path: title, meta.author
  CompareOp op = CompareOp::kEq;
  std::vector<BindValue> values;  // one, or several for kIn; none for kIsNull/kNotNull
};

struct OrderBy {
  std::string field;
  bool descending = false;
};

struct ListQuery {
  std::vector<Condition> where;
  std::vector<OrderBy> order_by;
  std::optional<int64_t> limit;
  int64_t offset = 0;
};

// Field paths usable in where/orderBy/createIndex: identifiers joined by dots, <= 128 bytes.
bool IsValidFieldPath(std::string_view path);

// Decodes {where, orderBy, limit, offset} JSON (as lib/ sends it) into a ListQuery.
Status DecodeListQuery(simdjson::ondemand::parser& parser, const std::string& json, ListQuery* out);

class DocumentStore {
 public:
  // REQUIRES: db has the client schema; all references outlive the store.
  // `max_document_bytes`: no write may leave a document larger (the server's limit too).
  DocumentStore(Database& db, Clock& clock, ChangeQueue& queue, size_t max_document_bytes);
  DocumentStore(const DocumentStore&) = delete;
  DocumentStore& operator=(const DocumentStore&) = delete;

  // Stores a full document (canonical JSON object) and queues CREATED, or UPDATED
  // with every field (fields the new document dropped are sent as null).
  Result<WriteEvent> Put(const std::string& entity_type, const std::string& entity_id, const std::string& doc);
  // Put inside the caller's transaction, without a savepoint of its own (an ingest chunk).
  // REQUIRES: a transaction is open, and the caller rolls it back when this fails.
  Result<WriteEvent> PutInTransaction(const std::string& entity_type, const std::string& entity_id,
                                      const std::string& doc);

  enum class PutOutcome { kInserted, kUpdated, kUnchanged };
  // PutInTransaction, unless the live document already equals `doc` (or, with keep_existing,
  // whenever there is a live document): what ingestion does with each record. With dry_run it
  // only says what it would do. REQUIRES (unless dry_run): as PutInTransaction.
  Result<PutOutcome> PutUnlessEqualInTransaction(const std::string& entity_type, const std::string& entity_id,
                                                 const std::string& doc, bool keep_existing, bool dry_run);
  // Sets the given fields on an existing document and queues UPDATED with only them.
  // NOT_FOUND when the document does not exist or is deleted.
  Result<WriteEvent> Patch(const std::string& entity_type, const std::string& entity_id, const std::string& fields);
  // Tombstones the document and queues DELETED. Returns nullopt when there was nothing to delete.
  Result<std::optional<WriteEvent>> Delete(const std::string& entity_type, const std::string& entity_id);
  // The document, or nullopt. Tombstones are returned only with include_deleted.
  Result<std::optional<StoredDocument>> Get(const std::string& entity_type, const std::string& entity_id,
                                            bool include_deleted);
  // A JSON array of the matching documents (tombstones excluded).
  Result<std::string> List(const std::string& entity_type, const ListQuery& query);
  // The SQLite query plan List would use, one line per step (for tests and diagnostics).
  Result<std::string> ExplainList(const std::string& entity_type, const ListQuery& query);
  // Creates (once) an index on a document field for one entity type; List uses it.
  Status CreateIndex(const std::string& entity_type, const std::string& field);
  // Deletes tombstones whose delete is synced and older than now - retention_ms.
  Result<int64_t> PurgeTombstones(int64_t retention_ms);

  // Before a change is queued directly (client.queue, not through this store) for an
  // entity this store holds and that has no unacknowledged change yet: keeps the
  // document's current state as its server base, so pulled changes still land on it.
  Status KeepBaseForDirectChange(const std::string& entity_type, const std::string& entity_id);
  // True when the store holds any document (so direct changes may need a base).
  Result<bool> HasDocuments();

  // True when the entity has changes the server has not acknowledged.
  Result<bool> IsDirty(const std::string& entity_type, const std::string& entity_id);

 private:
  struct Existing {
    bool found = false;
    std::optional<std::string> data;
    std::optional<std::string> base;
    std::optional<int64_t> version;
    bool deleted = false;
  };
  Result<Existing> Load(const std::string& entity_type, const std::string& entity_id);
  // PutInTransaction with the document already loaded.
  Result<WriteEvent> PutLoaded(const std::string& entity_type, const std::string& entity_id, const std::string& doc,
                               const Existing& existing);
  Status WriteLocal(const std::string& entity_type, const std::string& entity_id, const Existing& existing,
                    std::optional<std::string_view> data, bool deleted);
  Result<std::string> BuildListSql(const std::string& entity_type, const ListQuery& query, bool explain);
  Status BindConditions(Statement& stmt, const ListQuery& query);

  Database& db_;
  Clock& clock_;
  ChangeQueue& queue_;
  size_t max_document_bytes_;
  simdjson::ondemand::parser parser_;
};

}  // namespace deltasync
