// The change record: what the queue stores and the wire protocol carries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace deltasync {

enum class ChangeType { kCreated, kUpdated, kDeleted };
enum class ChangeStatus { kPending, kSyncing, kSynced, kFailed };

const char* ChangeTypeName(ChangeType type);      // "CREATED", "UPDATED", "DELETED"
const char* ChangeStatusName(ChangeStatus status);  // "pending", "syncing", "synced", "failed"
std::optional<ChangeType> ParseChangeType(std::string_view name);
std::optional<ChangeStatus> ParseChangeStatus(std::string_view name);

// A change as the caller hands it to the queue. Optional fields are filled in
// (changeId generated, timestamp from the clock, tenant and user from the client).
struct ChangeInput {
  std::optional<std::string> change_id;
  std::optional<std::string> tenant_id;
  std::optional<std::string> user_id;
  std::string entity_type;
  std::string entity_id;
  ChangeType type = ChangeType::kCreated;
  std::optional<std::string> data;  // canonical JSON object
  std::optional<int64_t> base_version;
  std::optional<int64_t> timestamp;
  // Carried over by importLegacy from an older client's queue.
  int64_t retry_count = 0;
  std::optional<std::string> last_error;
};

// A change as stored in the queue.
struct Change {
  int64_t id = 0;
  std::string change_id;
  std::optional<std::string> tenant_id;
  std::optional<std::string> user_id;
  std::string entity_type;
  std::string entity_id;
  ChangeType type = ChangeType::kCreated;
  std::optional<std::string> data;
  std::optional<int64_t> base_version;
  int64_t timestamp = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> synced_at;
  ChangeStatus status = ChangeStatus::kPending;
  int64_t retry_count = 0;
  std::optional<std::string> last_error;
  std::optional<int64_t> server_version;
};

// One change of a pull page, validated.
struct RemoteChange {
  int64_t version = 0;
  std::string change_id;
  ChangeType type = ChangeType::kCreated;
  std::string entity_type;
  std::string entity_id;
  std::optional<std::string> data;  // canonical JSON object
  int64_t timestamp = 0;
  std::optional<std::string> device_id;
};

}  // namespace deltasync
