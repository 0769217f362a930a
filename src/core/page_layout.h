// Where the changes of a pull page lie in its bytes, so that the page can be parsed a window of
// changes at a time instead of whole: memory then follows the window, not the page.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deltasync {

struct PageLayout {
  // The page's changes array, from its '[' to its ']' inclusive (for a bare array, the page).
  size_t changes_open = 0;
  size_t changes_close = 0;
  // [begin, end) of each element of that array, in order.
  std::vector<std::pair<size_t, size_t>> changes;
  // The most bytes of changes decoded as one window (a larger change is a window alone); they
  // are parsed in pieces of at most kParseBytes (pull_page.h).
  size_t window_bytes = 0;

  // The page with its changes array emptied: every other field, to decode on its own.
  std::string Envelope(std::string_view bytes) const;
};

// The fewest bytes a valid change takes: {"version":1,"changeId":"a","type":"DELETED",
// "entityType":"a","entityId":"a"} is 76. An element shorter than this cannot be one, so a
// layout holds at most one entry per kMinChangeBytes of the page.
constexpr size_t kMinChangeBytes = 64;

// The first change of the second half of the page's changes by bytes, from 1 to the count
// less one. REQUIRES: the layout holds at least two changes.
size_t MiddleChange(const PageLayout& layout);

// Finds the layout of a page that is a bare array or an object with one "newChanges" array
// (its key unescaped as JSON reads it), scanning strings and brackets without validating
// anything else. Every valid page has one. Returns nullopt when the bytes do not have that
// shape as far as the scan can tell (malformed JSON, no array, an element shorter than
// kMinChangeBytes): such a page is not valid, and reading it whole says why.
std::optional<PageLayout> ScanPageLayout(std::string_view bytes);

}  // namespace deltasync
