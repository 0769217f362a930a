#include "core/pull_page.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <utility>

#include "core/change_codec.h"
#include "core/joining_thread.h"

namespace deltasync {

namespace {

Status PageError([[maybe_unused]] const std::string& path, const std::string& change_id, Status status) {
  std::string message = status.message();
  if (!change_id.empty()) message += " (changeId " + change_id + ")";
  return Status::Error(status.code(), std::move(message));
}

// Reads a string of 1..256 bytes.
bool ReadShortString(simdjson::ondemand::value value, std::string* out) {
  std::string_view text;
  simdjson::ondemand::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS || type != simdjson::ondemand::json_type::string) return false;
  if (value.get_string().get(text) != simdjson::SUCCESS || text.empty() || text.size() > 256) return false;
  if (text.find('\0') != std::string_view::npos) return false;
  out->assign(text);
  return true;
}

// `buffer`: reused across the changes of a page, so that a document is built once and stored
// at its exact size (a string grown by appending holds up to twice its length).
Status DecodeRemoteChange(simdjson::ondemand::object object, const JsonLimits& limits, const std::string& name,
                          std::string* buffer, RemoteChange* out) {
  bool has_version = false, has_type = false, has_entity_type = false, has_entity_id = false;
  std::string scratch;
  KeySet keys;  // views into the parser's buffer, valid while it parses this change
  std::string_view key;
  // Built only for an error message: most changes never need it.
  auto path = [&]() { return name + "." + std::string(key); };
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    if (std::move(field_result).get(field) != simdjson::SUCCESS ||
        field.unescaped_key(false).get(key) != simdjson::SUCCESS) {
      return PageError(name, out->change_id, Status::InvalidArgument("Malformed JSON in " + name));
    }
    if (!keys.Insert(key)) {
      return PageError(path(), out->change_id, Status::InvalidArgument("Duplicate key \"" + std::string(key) + "\" in " + name));
    }
    simdjson::ondemand::value value = field.value();
    if (key == "version") {
      int64_t version = 0;
      if (value.get_int64().get(version) != simdjson::SUCCESS || version < 1 || version > kMaxSafeInteger) {
        return PageError(path(), out->change_id, ExpectedError("a positive integer", path(), DescribeReceived(value)));
      }
      out->version = version;
      has_version = true;
    } else if (key == "changeId") {
      if (!ReadShortString(value, &out->change_id)) {
        return ExpectedError("a non-empty string of at most 256 bytes", path(), DescribeReceived(value));
      }
    } else if (key == "type") {
      std::string text;
      std::optional<ChangeType> type;
      if (ReadShortString(value, &text)) type = ParseChangeType(text);
      if (!type) {
        return PageError(path(), out->change_id, ExpectedError("one of \"CREATED\", \"UPDATED\", \"DELETED\"", path(),
                                                             DescribeReceived(value)));
      }
      out->type = *type;
      has_type = true;
    } else if (key == "entityType") {
      if (!ReadShortString(value, &out->entity_type) || !IsValidEntityType(out->entity_type)) {
        return PageError(path(), out->change_id,
                         ExpectedError("a string matching [A-Za-z0-9_.-]{1,64}", path(), DescribeReceived(value)));
      }
      has_entity_type = true;
    } else if (key == "entityId") {
      if (!ReadShortString(value, &out->entity_id)) {
        return PageError(path(), out->change_id,
                         ExpectedError("a non-empty string of at most 256 bytes", path(), DescribeReceived(value)));
      }
      has_entity_id = true;
    } else if (key == "data") {
      simdjson::ondemand::json_type type;
      if (value.type().get(type) != simdjson::SUCCESS) {
        return PageError(path(), out->change_id, Status::InvalidArgument("Malformed JSON at " + path()));
      }
      if (type == simdjson::ondemand::json_type::null) {
        out->data.reset();
      } else if (type == simdjson::ondemand::json_type::object) {
        buffer->clear();
        Status copied = CopyValidatedField(value, 0, limits, name, key, buffer);
        if (!copied.ok()) return PageError(path(), out->change_id, copied);
        out->data.emplace(*buffer);
      } else {
        return PageError(path(), out->change_id, ExpectedError("an object or null", path(), DescribeReceived(value)));
      }
    } else if (key == "timestamp") {
      double number = 0;
      if (value.get_double().get(number) != simdjson::SUCCESS || !(number >= 0) || number > 8.64e15) {
        return PageError(path(), out->change_id,
                         ExpectedError("milliseconds since the epoch", path(), DescribeReceived(value)));
      }
      out->timestamp = static_cast<int64_t>(number);
    } else if (key == "deviceId") {
      bool is_null = false;
      if (value.is_null().get(is_null) == simdjson::SUCCESS && is_null) continue;
      std::string device;
      if (!ReadShortString(value, &device)) {
        return PageError(path(), out->change_id, ExpectedError("a string or null", path(), DescribeReceived(value)));
      }
      out->device_id = std::move(device);
    } else {
      // Fields this release does not use are still validated as JSON.
      scratch.clear();
      Status copied = CopyValidatedField(value, 1, limits, name, key, &scratch);
      if (!copied.ok()) return PageError(path(), out->change_id, copied);
    }
  }
  if (!has_version) return PageError(name, out->change_id, ExpectedError("a positive integer", name + ".version", "undefined"));
  if (out->change_id.empty()) return ExpectedError("a non-empty string", name + ".changeId", "undefined");
  if (!has_type) {
    return PageError(name, out->change_id,
                     ExpectedError("one of \"CREATED\", \"UPDATED\", \"DELETED\"", name + ".type", "undefined"));
  }
  if (!has_entity_type) {
    return PageError(name, out->change_id,
                     ExpectedError("a string matching [A-Za-z0-9_.-]{1,64}", name + ".entityType", "undefined"));
  }
  if (!has_entity_id) {
    return PageError(name, out->change_id, ExpectedError("a non-empty string", name + ".entityId", "undefined"));
  }
  if (out->type != ChangeType::kDeleted && !out->data) {
    return PageError(name, out->change_id, ExpectedError("an object", name + ".data", "nothing"));
  }
  return Status::Ok();
}

// The element at `name` of a changes array, decoded into *change.
Status DecodeChangeElement(simdjson::simdjson_result<simdjson::ondemand::value> element_result,
                           const JsonLimits& limits, const std::string& name, std::string* buffer,
                           RemoteChange* change) {
  simdjson::ondemand::value element;
  simdjson::ondemand::object object;
  if (std::move(element_result).get(element) != simdjson::SUCCESS) {
    return Status::InvalidArgument("Malformed JSON at " + name);
  }
  if (element.get_object().get(object) != simdjson::SUCCESS) {
    return ExpectedError("a change object", name, DescribeReceived(element));
  }
  return DecodeRemoteChange(object, limits, name, buffer, change);
}

// The name of the change at `index` of a page ("newChanges[17]") into *name, whose buffer is
// reused from change to change.
void SetChangeElementName(size_t index, std::string* name) {
  char digits[24];
  const int length = std::snprintf(digits, sizeof(digits), "%zu", index);
  name->assign("newChanges[");
  name->append(digits, static_cast<size_t>(length));
  name->push_back(']');
}

std::string ChangeElementName(size_t index) {
  std::string name;
  SetChangeElementName(index, &name);
  return name;
}

// Versions in a page increase strictly, change after change.
Status CheckVersionFollows(const std::string& element_name, const RemoteChange& change, int64_t last_version) {
  if (change.version > last_version) return Status::Ok();
  return Status::InvalidArgument("Expected versions in increasing order at " + element_name + ".version but " +
                                 std::to_string(change.version) + " follows " + std::to_string(last_version) +
                                 " (changeId " + change.change_id + ")");
}

// Decodes every change of the array, in increasing versions; with PageChanges::kCountOnly each
// is validated and dropped. *count and *last_version describe what was read.
Status DecodeChangesArray(simdjson::ondemand::array array, const JsonLimits& limits, PageChanges keep,
                          PullPage* out, size_t* count, int64_t* last_version) {
  size_t index = 0;
  std::string buffer;
  std::string element_name;
  for (auto element_result : array) {
    SetChangeElementName(index, &element_name);
    RemoteChange change;
    DS_RETURN_IF_ERROR(DecodeChangeElement(std::move(element_result), limits, element_name, &buffer, &change));
    if (index > 0) DS_RETURN_IF_ERROR(CheckVersionFollows(element_name, change, *last_version));
    *last_version = change.version;
    if (keep == PageChanges::kKeep) out->changes.push_back(std::move(change));
    ++index;
  }
  *count = index;
  return Status::Ok();
}

Status DecodeVerdicts(simdjson::ondemand::array items, PushVerdict::Kind kind, const JsonLimits& limits,
                      const std::string& name, std::vector<PushVerdict>* out) {
  size_t index = 0;
  for (auto item_result : items) {
    const std::string item_name = name + "[" + std::to_string(index++) + "]";
    simdjson::ondemand::value item;
    simdjson::ondemand::object object;
    if (std::move(item_result).get(item) != simdjson::SUCCESS || item.get_object().get(object) != simdjson::SUCCESS) {
      return ExpectedError("an object", item_name, "another value");
    }
    PushVerdict verdict;
    verdict.kind = kind;
    DS_RETURN_IF_ERROR(ForEachField(object, item_name, "Malformed JSON in " + item_name,
                                    [&](std::string_view key, simdjson::ondemand::value value) -> Status {
      const std::string path = item_name + "." + std::string(key);
      std::string text;
      int64_t number = 0;
      bool is_null = false;
      if (value.is_null().get(is_null) == simdjson::SUCCESS && is_null) return Status::Ok();
      if (key == "changeId") {
        if (!ReadShortString(value, &verdict.change_id)) {
          return ExpectedError("a non-empty string", path, DescribeReceived(value));
        }
      } else if (key == "version" || key == "serverVersion" || key == "conflictId") {
        if (value.get_int64().get(number) != simdjson::SUCCESS || number < 0 || number > kMaxSafeInteger) {
          return ExpectedError("an integer", path, DescribeReceived(value));
        }
        if (key == "version") verdict.version = number;
        if (key == "serverVersion") verdict.server_version = number;
        if (key == "conflictId") verdict.conflict_id = number;
      } else if (key == "serverDataOmitted") {
        if (value.get_bool().get(verdict.server_data_omitted) != simdjson::SUCCESS) {
          return ExpectedError("a boolean", path, DescribeReceived(value));
        }
      } else if (key == "serverData") {
        std::string copy;
        simdjson::ondemand::json_type type;
        if (value.type().get(type) != simdjson::SUCCESS || type != simdjson::ondemand::json_type::object) {
          return ExpectedError("an object or null", path, DescribeReceived(value));
        }
        DS_RETURN_IF_ERROR(CopyValidatedJson(value, 0, limits, path, &copy));
        verdict.server_data = std::move(copy);
      } else if (key == "winner" || key == "resolution" || key == "reason" || key == "entityType" ||
                 key == "entityId" || key == "code" || key == "message") {
        std::string_view view;
        if (value.get_string().get(view) != simdjson::SUCCESS) {
          return ExpectedError("a string", path, DescribeReceived(value));
        }
        std::string* slot = key == "winner"       ? &verdict.winner
                            : key == "resolution" ? &verdict.resolution
                            : key == "reason"     ? &verdict.reason
                            : key == "entityType" ? &verdict.entity_type
                            : key == "entityId"   ? &verdict.entity_id
                            : key == "code"       ? &verdict.error_code
                                                  : &verdict.error_message;
        slot->assign(view.substr(0, 4096));
      } else {
        std::string ignored;
        DS_RETURN_IF_ERROR(CopyValidatedJson(value, 1, limits, path, &ignored));
      }
      return Status::Ok();
    }));
    if (verdict.change_id.empty()) return ExpectedError("a non-empty string", item_name + ".changeId", "undefined");
    if (kind == PushVerdict::Kind::kApplied && !verdict.version) {
      return ExpectedError("an integer", item_name + ".version", "undefined");
    }
    out->push_back(std::move(verdict));
  }
  return Status::Ok();
}

// Every field of the page, its changes counted (and kept with PageChanges::kKeep); *count and
// *last describe the changes read.
Status DecodePageFields(simdjson::ondemand::parser& parser, const simdjson::padded_string& input,
                        const JsonLimits& limits, PullPage* out, PageChanges keep, size_t* count, int64_t* last) {
  simdjson::ondemand::document doc;
  if (auto error = parser.iterate(input).get(doc)) {
    return Status::InvalidArgument(std::string("Malformed JSON for page (") + simdjson::error_message(error) + ")");
  }
  simdjson::ondemand::json_type type;
  if (auto error = doc.type().get(type)) {
    return Status::InvalidArgument(std::string("Malformed JSON for page (") + simdjson::error_message(error) + ")");
  }
  if (type == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array array;
    if (doc.get_array().get(array) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed JSON for page");
    DS_RETURN_IF_ERROR(DecodeChangesArray(array, limits, keep, out, count, last));
  } else if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object object;
    if (doc.get_object().get(object) != simdjson::SUCCESS) return Status::InvalidArgument("Malformed JSON for page");
    bool has_changes = false;
    std::string scratch;
    DS_RETURN_IF_ERROR(ForEachField(object, "page", "Malformed JSON for page",
                                    [&](std::string_view key, simdjson::ondemand::value value) -> Status {
      if (key == "newChanges") {
        simdjson::ondemand::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS) {
          return ExpectedError("an array of changes", "page.newChanges", DescribeReceived(value));
        }
        DS_RETURN_IF_ERROR(DecodeChangesArray(array, limits, keep, out, count, last));
        has_changes = true;
      } else if (key == "latestServerVersion" || key == "headVersion" || key == "resyncFrom") {
        int64_t version = 0;
        if (value.get_int64().get(version) != simdjson::SUCCESS || version < 0 || version > kMaxSafeInteger) {
          return ExpectedError("a non-negative integer", "page." + std::string(key), DescribeReceived(value));
        }
        (key == "latestServerVersion" ? out->latest_server_version
         : key == "headVersion"       ? out->head_version
                                      : out->resync_from) = version;
      } else if (key == "applied" || key == "conflicts" || key == "errors") {
        simdjson::ondemand::array items;
        if (value.get_array().get(items) != simdjson::SUCCESS) {
          return ExpectedError("an array", "page." + std::string(key), DescribeReceived(value));
        }
        const PushVerdict::Kind kind = key == "applied"     ? PushVerdict::Kind::kApplied
                                       : key == "conflicts" ? PushVerdict::Kind::kConflict
                                                            : PushVerdict::Kind::kError;
        DS_RETURN_IF_ERROR(DecodeVerdicts(items, kind, limits, "page." + std::string(key), &out->verdicts));
      } else if (key == "hasMore" || key == "resync") {
        bool flag = false;
        if (value.get_bool().get(flag) != simdjson::SUCCESS) {
          return ExpectedError("a boolean", "page." + std::string(key), DescribeReceived(value));
        }
        (key == "hasMore" ? out->has_more : out->resync) = flag;
      } else {
        scratch.clear();
        DS_RETURN_IF_ERROR(CopyValidatedJson(value, 1, limits, "page." + std::string(key), &scratch));
      }
      return Status::Ok();
    }));
    if (!has_changes) return ExpectedError("an array of changes", "page.newChanges", "undefined");
  } else {
    return Status::InvalidArgument("Expected a pull page (an object with newChanges, or an array of changes)");
  }
  if (!doc.at_end()) return Status::InvalidArgument("Trailing content after the page");
  return Status::Ok();
}

// The versions must agree, or a hostile or broken server could move the cursor where no
// change will ever be pulled (past the head) or make the client ask for the same page forever.
Status CheckPageVersions(const PullPage& page, size_t count, int64_t last) {
  if (page.latest_server_version && *page.latest_server_version < last) {
    return Status::InvalidArgument("page.latestServerVersion (" + std::to_string(*page.latest_server_version) +
                                   ") is below the version of its last change (" + std::to_string(last) + ")");
  }
  if (page.head_version && page.latest_server_version && *page.latest_server_version > *page.head_version) {
    return Status::InvalidArgument("page.latestServerVersion (" + std::to_string(*page.latest_server_version) +
                                   ") is above page.headVersion (" + std::to_string(*page.head_version) + ")");
  }
  if (page.has_more && count == 0) {
    return Status::InvalidArgument("page.hasMore is true but the page has no changes");
  }
  return Status::Ok();
}

}  // namespace

Status DecodePullPage(simdjson::ondemand::parser& parser, const simdjson::padded_string& input,
                      const JsonLimits& limits, PullPage* out, PageChanges keep) {
  out->bytes = input.size();
  size_t count = 0;
  int64_t last = 0;
  DS_RETURN_IF_ERROR(DecodePageFields(parser, input, limits, out, keep, &count, &last));
  if (keep == PageChanges::kCountOnly) out->page_change_count = count;
  return CheckPageVersions(*out, count, last);
}

namespace {

// The end of a run of at most `count` changes from `first`, and at most `max_bytes` unless its
// first change alone is larger.
size_t RunEnd(const PageLayout& layout, size_t first, size_t count, size_t max_bytes) {
  const size_t limit = std::min(layout.changes.size(), first + count);
  size_t end = first + 1;
  while (end < limit && layout.changes[end].second - layout.changes[first].first <= max_bytes) ++end;
  return end;
}

// Decodes changes [first, end) of the page from their bytes, as the array `[first..end)` in a
// padded copy (`window`, reused), checking their versions increase from *last_version; each
// is appended to `out` unless it is null.
Status DecodeWindow(simdjson::ondemand::parser& parser, std::string_view bytes, const PageLayout& layout,
                    size_t first, size_t end, const JsonLimits& limits, std::string* window, std::string* buffer,
                    int64_t* last_version, std::vector<RemoteChange>* out) {
  const size_t from = layout.changes[first].first;
  const size_t to = layout.changes[end - 1].second;
  window->clear();
  window->reserve(to - from + 2 + simdjson::SIMDJSON_PADDING);
  window->push_back('[');
  window->append(bytes.substr(from, to - from));
  window->push_back(']');
  const Status malformed = Status::InvalidArgument("Malformed JSON at " + ChangeElementName(first));
  simdjson::ondemand::document doc;
  simdjson::ondemand::array array;
  if (parser.iterate(simdjson::padded_string_view(*window)).get(doc) != simdjson::SUCCESS ||
      doc.get_array().get(array) != simdjson::SUCCESS) {
    return malformed;
  }
  size_t index = first;
  std::string element_name;
  for (auto element_result : array) {
    if (index == end) return malformed;
    SetChangeElementName(index, &element_name);
    RemoteChange change;
    DS_RETURN_IF_ERROR(DecodeChangeElement(std::move(element_result), limits, element_name, buffer, &change));
    if (index > 0) DS_RETURN_IF_ERROR(CheckVersionFollows(element_name, change, *last_version));
    *last_version = change.version;
    if (out != nullptr) out->push_back(std::move(change));
    ++index;
  }
  if (index != end || !doc.at_end()) return malformed;
  return Status::Ok();
}

// Decodes changes [begin, end) of the page as DecodeWindow does, parsing at most kParseBytes
// (and at most the layout's window_bytes) of them at once. Gives up with an error between two
// such pieces once `give_up` is set.
Status DecodeChanges(simdjson::ondemand::parser& parser, std::string_view bytes, const PageLayout& layout,
                     size_t begin, size_t end, const JsonLimits& limits, std::string* window, std::string* buffer,
                     int64_t* last_version, std::vector<RemoteChange>* out,
                     const std::atomic<bool>* give_up = nullptr) {
  const size_t parse_bytes = std::min(layout.window_bytes, kParseBytes);
  for (size_t first = begin; first < end;) {
    if (give_up != nullptr && give_up->load(std::memory_order_relaxed)) {
      return Status::Internal("Stopped: another part of the page is not valid");
    }
    const size_t parsed_end = RunEnd(layout, first, end - first, parse_bytes);
    DS_RETURN_IF_ERROR(
        DecodeWindow(parser, bytes, layout, first, parsed_end, limits, window, buffer, last_version, out));
    first = parsed_end;
  }
  return Status::Ok();
}

// Validates changes [begin, end) of the page, their versions increasing from *last_version;
// each is appended to `out` unless it is null. Gives up once `give_up` is set.
Status ValidateChanges(simdjson::ondemand::parser& parser, std::string_view bytes, const PageLayout& layout,
                       const JsonLimits& limits, size_t begin, size_t end, int64_t* last_version,
                       std::vector<RemoteChange>* out, const std::atomic<bool>* give_up = nullptr) {
  std::string window;
  std::string buffer;
  return DecodeChanges(parser, bytes, layout, begin, end, limits, &window, &buffer, last_version, out, give_up);
}

// Changes of a page past this many bytes are validated in two halves at once.
constexpr size_t kSplitValidationBytes = size_t{1} << 20;

// Validates the changes of a page of at least two in two halves at once, the second on a
// thread of its own (or after the first, when no thread can be started). The second half
// starts at the last change of the first, so that its versions are checked to follow the
// first half's; that change is checked against 0, which any valid version (>= 1) follows.
// Either half stops early once the other has failed. *last_version: the page's last version.
Status ValidateChangesInHalves(simdjson::ondemand::parser& parser, std::string_view bytes, const PageLayout& layout,
                               const JsonLimits& limits, int64_t* last_version) {
  const size_t count = layout.changes.size();
  const size_t middle = MiddleChange(layout);
  std::atomic<bool> failed{false};
  Status second_half;
  int64_t second_last = 0;
  auto validate_second_half = [&] {
    second_half = StatusOfWork([&] {
      simdjson::ondemand::parser own;
      return ValidateChanges(own, bytes, layout, limits, middle - 1, count, &second_last, nullptr, &failed);
    });
    if (!second_half.ok()) failed.store(true, std::memory_order_relaxed);
  };
  Status first_half;
  {
    JoiningThread helper(validate_second_half);
    first_half = ValidateChanges(parser, bytes, layout, limits, 0, middle, last_version, nullptr, &failed);
    if (!first_half.ok()) failed.store(true, std::memory_order_relaxed);
    if (!helper.started()) validate_second_half();
  }
  DS_RETURN_IF_ERROR(first_half);
  DS_RETURN_IF_ERROR(second_half);
  *last_version = second_last;
  return Status::Ok();
}

// ValidatePullPage's reading of a page whose layout ScanPageLayout found: the page with its
// changes array emptied, then the changes a window at a time. Its errors may differ from
// DecodePullPage's (ValidatePullPage then reads the page whole for the error).
Status ValidatePullPageInWindows(simdjson::ondemand::parser& parser, std::string_view bytes, const PageLayout& layout,
                                 const JsonLimits& limits, PullPage* out, PageChanges keep) {
  const simdjson::padded_string envelope(layout.Envelope(bytes));
  size_t envelope_changes = 0;
  int64_t last = 0;
  DS_RETURN_IF_ERROR(
      DecodePageFields(parser, envelope, limits, out, PageChanges::kCountOnly, &envelope_changes, &last));
  // The scan found the only newChanges array, so the envelope holds none; were it to hold one,
  // its changes would be missed, so the page is then read whole instead.
  if (envelope_changes != 0) return Status::Internal("The page's layout missed changes");
  const size_t count = layout.changes.size();
  if (keep == PageChanges::kKeep || count < 2 ||
      layout.changes.back().second - layout.changes.front().first < kSplitValidationBytes) {
    DS_RETURN_IF_ERROR(ValidateChanges(parser, bytes, layout, limits, 0, count, &last,
                                       keep == PageChanges::kKeep ? &out->changes : nullptr));
  } else {
    DS_RETURN_IF_ERROR(ValidateChangesInHalves(parser, bytes, layout, limits, &last));
  }
  out->bytes = bytes.size();
  out->page_change_count = layout.changes.size();
  return CheckPageVersions(*out, layout.changes.size(), last);
}

}  // namespace

Status ValidatePullPage(simdjson::ondemand::parser& parser, std::string_view bytes, const JsonLimits& limits,
                        PullPage* out, PageLayout* layout, PageChanges keep, size_t window_bytes) {
  std::optional<PageLayout> scanned = ScanPageLayout(bytes);
  if (scanned) {
    scanned->window_bytes = window_bytes;
    if (ValidatePullPageInWindows(parser, bytes, *scanned, limits, out, keep).ok()) {
      *layout = std::move(*scanned);
      return Status::Ok();
    }
    scanned.reset();
  }
  // The page is not valid: reading it whole gives the error DecodePullPage gives.
  *out = PullPage{};
  const simdjson::padded_string whole(bytes);
  DS_RETURN_IF_ERROR(DecodePullPage(parser, whole, limits, out, keep));
  return Status::Internal("A valid page could not be read a window at a time");
}

PageChangeReader::PageChangeReader(simdjson::ondemand::parser& parser, std::string_view bytes,
                                   const PageLayout& layout, const JsonLimits& limits)
    : parser_(parser), bytes_(bytes), layout_(layout), limits_(limits) {}

Status PageChangeReader::Next(size_t count, PullPage* page) {
  const size_t first = page->window_start + page->changes.size();
  int64_t last_version = page->changes.empty() ? last_version_ : page->changes.back().version;
  page->changes.clear();
  page->window_start = first;
  if (first >= layout_.changes.size() || count == 0) return Status::Ok();
  const size_t end = RunEnd(layout_, first, count, layout_.window_bytes);
  Status decoded =
      DecodeChanges(parser_, bytes_, layout_, first, end, limits_, &window_, &buffer_, &last_version, &page->changes);
  if (!decoded.ok()) {
    page->changes.clear();
    return Status::InvalidArgument("The page's bytes changed after it was validated: " + decoded.message());
  }
  last_version_ = last_version;
  return Status::Ok();
}

}  // namespace deltasync
