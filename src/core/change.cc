#include "core/change.h"

namespace deltasync {

const char* ChangeTypeName(ChangeType type) {
  switch (type) {
    case ChangeType::kCreated: return "CREATED";
    case ChangeType::kUpdated: return "UPDATED";
    case ChangeType::kDeleted: return "DELETED";
  }
  return "CREATED";
}

const char* ChangeStatusName(ChangeStatus status) {
  switch (status) {
    case ChangeStatus::kPending: return "pending";
    case ChangeStatus::kSyncing: return "syncing";
    case ChangeStatus::kSynced: return "synced";
    case ChangeStatus::kFailed: return "failed";
  }
  return "pending";
}

std::optional<ChangeType> ParseChangeType(std::string_view name) {
  if (name == "CREATED") return ChangeType::kCreated;
  if (name == "UPDATED") return ChangeType::kUpdated;
  if (name == "DELETED") return ChangeType::kDeleted;
  return std::nullopt;
}

std::optional<ChangeStatus> ParseChangeStatus(std::string_view name) {
  if (name == "pending") return ChangeStatus::kPending;
  if (name == "syncing") return ChangeStatus::kSyncing;
  if (name == "synced") return ChangeStatus::kSynced;
  if (name == "failed") return ChangeStatus::kFailed;
  return std::nullopt;
}

}  // namespace deltasync
