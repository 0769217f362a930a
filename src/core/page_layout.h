// Where the changes of a pull page lie in its bytes, so that the page can be parsed a window of
// changes at a time instead of whole: memory then follows the window, not the page.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

struct PageLayout {
  // The page's changes array, from its '[' to its ']' inclusive (for a bare array, the page).
  size_t changes_open = 0;
  size_t changes_close = 0;
  // [begin, end) of each element of that array, in order.
  std::vector<std::pair<size_t, size_t>> changes;

  // The page with its changes array emptied: every other field, to decode on its own.
  std::string Envelope(std::string_view bytes) const;
};

// Finds the layout of a page that is a bare array or an object with one "newChanges" array,
// scanning its strings and brackets without parsing or validating anything else. Returns
// nullopt when the bytes do not have that shape as far as the scan can tell (malformed JSON,
// no array, an escaped "newChanges" key): the caller then reads the page whole.
std::optional<PageLayout> ScanPageLayout(std::string_view bytes);

// The layout of a page that DecodePullPage accepted, read with simdjson from the whole padded
// page: for the pages ScanPageLayout leaves to the caller.
Status ParsePageLayout(simdjson::ondemand::parser& parser, const simdjson::padded_string& page, PageLayout* out);

}  // namespace deltasync
