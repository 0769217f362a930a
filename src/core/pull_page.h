// A pull page (the `newChanges` of DESIGN.md section 4, or a whole sync response) as the
// client receives it: decoded and validated completely, so that a malformed page changes
// nothing, and read again a window of changes at a time while it is applied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/change.h"
#include "core/json.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

// The server's verdict on one pushed change (the applied / conflicts / errors of a sync response).
struct PushVerdict {
  enum class Kind { kApplied, kConflict, kError } kind = Kind::kApplied;
  std::string change_id;
  std::optional<int64_t> version;        // applied
  std::string winner;                    // conflict: client, server, merged, manual
  std::string resolution;                // conflict: the server's strategy
  std::string reason;
  std::optional<int64_t> conflict_id;
  std::string entity_type;
  std::string entity_id;
  std::optional<int64_t> server_version;
  std::optional<std::string> server_data;  // canonical JSON, absent when deleted
  bool server_data_omitted = false;        // sent with an earlier conflict of the entity, or over the budget
  std::string error_code;                  // error
  std::string error_message;
};

struct PullPage {
  std::vector<RemoteChange> changes;  // strictly increasing versions; all of them, or a window
  std::optional<int64_t> latest_server_version;  // the cursor this page brings the client to
  std::optional<int64_t> head_version;           // the server's newest version
  bool has_more = false;
  bool resync = false;  // the server's history is behind the client's cursor: the page starts from 0
  std::optional<int64_t> resync_from;  // with resync: the server's head before the request
  size_t bytes = 0;
  std::vector<PushVerdict> verdicts;  // when the page is a whole sync response
  // When `changes` holds a window of the page (see PageChangeReader): where the window starts,
  // and how many changes the whole page has.
  size_t window_start = 0;
  std::optional<size_t> page_change_count;

  size_t ChangeCount() const { return page_change_count.value_or(changes.size()); }
};

// What DecodePullPage keeps of the page's changes.
enum class PageChanges {
  kKeep,       // every change, in `changes`
  kCountOnly,  // each one validated, then dropped: `changes` stays empty, page_change_count counts them
};

// Decodes a page: either {"newChanges": [...], "latestServerVersion": n, "headVersion": n,
// "hasMore": b, "resync": b, ...} (other fields of a sync response are ignored) or a bare array of
// changes. A page whose versions contradict each other (latestServerVersion below its last
// change or above headVersion, hasMore with no change) is INVALID_ARGUMENT.
// Errors name the first offending change ("newChanges[17].entityType (changeId c-17)").
Status DecodePullPage(simdjson::ondemand::parser& parser, const simdjson::padded_string& input,
                      const JsonLimits& limits, PullPage* out, PageChanges keep = PageChanges::kKeep);

// The changes of a page that DecodePullPage has validated (with PageChanges::kCountOnly), decoded
// a window at a time, so that an apply holds a chunk of decoded changes, not the whole page.
// REQUIRES: `parser` and `input` outlive the reader, and nothing else uses `parser` meanwhile.
class PageChangeReader {
 public:
  PageChangeReader(simdjson::ondemand::parser& parser, const simdjson::padded_string& input, const JsonLimits& limits);
  PageChangeReader(const PageChangeReader&) = delete;
  PageChangeReader& operator=(const PageChangeReader&) = delete;

  // Moves page->changes to the next window of at most `count` changes (none past the end) and
  // sets page->window_start. `page` is the one DecodePullPage counted. Failing (INTERNAL)
  // means the bytes are not those DecodePullPage validated.
  Status Next(size_t count, PullPage* page);

 private:
  Status Open();

  simdjson::ondemand::parser& parser_;
  const simdjson::padded_string& input_;
  JsonLimits limits_;
  simdjson::ondemand::document doc_;
  simdjson::ondemand::array_iterator next_;
  simdjson::ondemand::array_iterator end_;
  bool open_ = false;
  size_t index_ = 0;  // of the next change in the page
  std::string buffer_;
};

}  // namespace deltasync
