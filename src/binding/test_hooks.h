// Test hooks, read from the environment when a native object is made:
// DELTASYNC_TEST_HOOKS="name" or "name=<integer>", several separated by anything else.
// They let tests reach states that would otherwise be races (see their users); nothing
// sets them in normal use.
#pragma once

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace deltasync::binding {

// The hook's integer value ("name=<n>"), 0 for a bare "name", or nullopt when it is not set.
// A name matches whole: "crash-at-commit" does not match inside "server-crash-at-commit".
inline std::optional<int64_t> TestHook(const char* name) {
  const char* hooks = std::getenv("DELTASYNC_TEST_HOOKS");
  if (hooks == nullptr) return std::nullopt;
  const size_t length = std::strlen(name);
  auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_'; };
  for (const char* found = std::strstr(hooks, name); found != nullptr; found = std::strstr(found + 1, name)) {
    const char* after = found + length;
    if ((found != hooks && is_name_char(found[-1])) || is_name_char(*after)) continue;
    return *after == '=' ? std::strtoll(after + 1, nullptr, 10) : 0;
  }
  return std::nullopt;
}

}  // namespace deltasync::binding
