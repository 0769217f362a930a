#include "core/page_layout.h"

#include <algorithm>
#include <cstring>

#include "core/json.h"
#include "simdjson.h"

namespace deltasync {

namespace {

constexpr size_t kNone = std::string_view::npos;

size_t SkipWhitespace(std::string_view s, size_t i) {
  while (i < s.size() && IsJsonWhitespace(s[i])) ++i;
  return i;
}

// With s[i] the opening quote of a string: the index just past its closing quote, or kNone.
size_t StringEnd(std::string_view s, size_t i) {
  size_t from = i + 1;
  while (from < s.size()) {
    const void* found = std::memchr(s.data() + from, '"', s.size() - from);
    if (found == nullptr) return kNone;
    const size_t quote = static_cast<size_t>(static_cast<const char*>(found) - s.data());
    // The quote ends the string unless an odd run of backslashes escapes it. The run cannot
    // reach past `from`: s[from - 1] is a quote.
    size_t backslashes = 0;
    while (quote - backslashes > from && s[quote - backslashes - 1] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return quote + 1;
    from = quote + 1;
  }
  return kNone;
}

// With s[i] the first byte of a value: the index just past it, or kNone. Brackets are only
// counted, not matched: whatever this accepts is parsed afterwards.
size_t ValueEnd(std::string_view s, size_t i) {
  if (i >= s.size()) return kNone;
  if (s[i] == '"') return StringEnd(s, i);
  if (s[i] == '{' || s[i] == '[') {
    size_t depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        i = StringEnd(s, i);
        if (i == kNone) return kNone;
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
      ++i;
    }
    return kNone;
  }
  size_t end = i;  // a number, true, false or null
  while (end < s.size() && !IsJsonWhitespace(s[end]) && s[end] != ',' && s[end] != ']' && s[end] != '}') ++end;
  return end == i ? kNone : end;
}

// With s[open] == '[': records the array's elements and its closing bracket.
bool ScanChanges(std::string_view s, size_t open, PageLayout* layout) {
  layout->changes_open = open;
  size_t i = SkipWhitespace(s, open + 1);
  if (i < s.size() && s[i] == ']') {
    layout->changes_close = i;
    return true;
  }
  while (true) {
    const size_t end = ValueEnd(s, i);
    if (end == kNone || end - i < kMinChangeBytes) return false;
    layout->changes.emplace_back(i, end);
    i = SkipWhitespace(s, end);
    if (i >= s.size()) return false;
    if (s[i] == ']') {
      layout->changes_close = i;
      return true;
    }
    if (s[i] != ',') return false;
    i = SkipWhitespace(s, i + 1);
  }
}

// The text of a quoted key with escapes, as JSON reads it.
bool UnescapeKey(std::string_view quoted, std::string* out) {
  simdjson::ondemand::parser parser;
  const simdjson::padded_string input(quoted);
  simdjson::ondemand::document doc;
  std::string_view text;
  if (parser.iterate(input).get(doc) != simdjson::SUCCESS || doc.get_string().get(text) != simdjson::SUCCESS) {
    return false;
  }
  out->assign(text);
  return true;
}

size_t SkipByteOrderMark(std::string_view s) { return s.size() >= 3 && s.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0; }

}  // namespace

std::string PageLayout::Envelope(std::string_view bytes) const {
  std::string envelope;
  envelope.reserve(changes_open + 1 + bytes.size() - changes_close);
  envelope.append(bytes.substr(0, changes_open + 1));
  envelope.append(bytes.substr(changes_close));
  return envelope;
}

std::optional<PageLayout> ScanPageLayout(std::string_view s) {
  size_t i = SkipWhitespace(s, SkipByteOrderMark(s));
  if (i >= s.size()) return std::nullopt;
  PageLayout layout;
  size_t end = 0;
  if (s[i] == '[') {
    if (!ScanChanges(s, i, &layout)) return std::nullopt;
    end = layout.changes_close + 1;
  } else if (s[i] == '{') {
    bool found = false;
    i = SkipWhitespace(s, i + 1);
    while (true) {
      if (i >= s.size() || s[i] != '"') return std::nullopt;
      const size_t key_end = StringEnd(s, i);
      if (key_end == kNone) return std::nullopt;
      std::string unescaped;
      std::string_view key = s.substr(i + 1, key_end - i - 2);
      if (key.find('\\') != std::string_view::npos) {
        if (!UnescapeKey(s.substr(i, key_end - i), &unescaped)) return std::nullopt;
        key = unescaped;
      }
      i = SkipWhitespace(s, key_end);
      if (i >= s.size() || s[i] != ':') return std::nullopt;
      i = SkipWhitespace(s, i + 1);
      if (key == "newChanges") {
        if (found || i >= s.size() || s[i] != '[' || !ScanChanges(s, i, &layout)) return std::nullopt;
        found = true;
        i = layout.changes_close + 1;
      } else {
        i = ValueEnd(s, i);
        if (i == kNone) return std::nullopt;
      }
      i = SkipWhitespace(s, i);
      if (i < s.size() && s[i] == '}') break;
      if (i >= s.size() || s[i] != ',') return std::nullopt;
      i = SkipWhitespace(s, i + 1);
    }
    if (!found) return std::nullopt;
    end = i + 1;
  } else {
    return std::nullopt;
  }
  if (SkipWhitespace(s, end) != s.size()) return std::nullopt;
  return layout;
}

size_t MiddleChange(const PageLayout& layout) {
  const size_t begin = layout.changes.front().first;
  const size_t half = begin + (layout.changes.back().second - begin) / 2;
  const auto found = std::lower_bound(layout.changes.begin(), layout.changes.end(), half,
                                      [](const std::pair<size_t, size_t>& change, size_t at) { return change.first < at; });
  return std::clamp<size_t>(static_cast<size_t>(found - layout.changes.begin()), 1, layout.changes.size() - 1);
}

}  // namespace deltasync
