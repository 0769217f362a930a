// A pull page (the `newChanges` of DESIGN.md section 4, or a whole sync response) as the
// client receives it: validated completely, so that a malformed page changes nothing, then
// read again a window of changes at a time while it is applied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/change.h"
#include "core/json.h"
#include "core/page_layout.h"
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

// What a decoder keeps of the page's changes.
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

// The most bytes of changes decoded (and applied) as one window; a larger change is a window alone.
constexpr size_t kPageWindowBytes = size_t{1} << 18;

// The most bytes of changes parsed as one simdjson document (a larger change is parsed alone):
// a parser's buffers follow this, and a window is parsed in pieces of it.
constexpr size_t kParseBytes = size_t{1} << 17;

// Pages up to this size are worth keeping decoded from their validation, so that they are
// decoded once: their decoded changes take about twice their bytes.
constexpr size_t kDecodeOncePageBytes = size_t{1} << 20;

// Validates the page in `bytes` (which need no padding) as DecodePullPage does, with the same
// errors, but parses it a piece of its changes at a time (at most kParseBytes and
// `window_bytes`, or one larger change), so that memory follows the piece, not the page. With
// PageChanges::kKeep the decoded changes are kept as well. *layout tells PageChangeReader
// where the changes are. An invalid page is read whole for its error.
// With PageChanges::kCountOnly and over 1 MB of changes, the second half of the changes is
// validated at the same time on a thread of its own, with a parser of its own; `parser` is
// used on the calling thread only.
Status ValidatePullPage(simdjson::ondemand::parser& parser, std::string_view bytes, const JsonLimits& limits,
                        PullPage* out, PageLayout* layout, PageChanges keep = PageChanges::kCountOnly,
                        size_t window_bytes = kPageWindowBytes);

// The changes of a page that ValidatePullPage has validated, decoded again from its bytes a
// window at a time, so that an apply holds a window of decoded changes, not the whole page.
// REQUIRES: `parser`, `bytes` and `layout` outlive the reader, and nothing else uses `parser`
// meanwhile.
class PageChangeReader {
 public:
  PageChangeReader(simdjson::ondemand::parser& parser, std::string_view bytes, const PageLayout& layout,
                   const JsonLimits& limits);
  PageChangeReader(const PageChangeReader&) = delete;
  PageChangeReader& operator=(const PageChangeReader&) = delete;

  // Moves page->changes to the window that follows them (at most `count` changes, fewer when
  // they are large, none past the end) and sets page->window_start: the first window of a page
  // validated without its changes, nothing more after a page that kept them all.
  // INVALID_ARGUMENT means the bytes are no longer those ValidatePullPage validated;
  // page->changes is then empty.
  Status Next(size_t count, PullPage* page);

 private:
  simdjson::ondemand::parser& parser_;
  std::string_view bytes_;
  const PageLayout& layout_;
  JsonLimits limits_;
  int64_t last_version_ = 0;  // of the last change read, when the page no longer holds it
  std::string window_;  // the padded copy of the window's bytes
  std::string buffer_;
};

}  // namespace deltasync
