// Test hooks, read from the environment when a native object is made:
// DELTASYNC_TEST_HOOKS="name" or "name=<integer>", several separated by anything else.
// They let tests reach states that would otherwise be races (see their users); nothing
// sets them in normal use.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace deltasync::binding {

// The hook's integer value ("name=<n>"), 0 for a bare "name", or nullopt when it is not set.
inline std::optional<int64_t> TestHook(const char* name) {
  const char* hooks = std::getenv("DELTASYNC_TEST_HOOKS");
  const char* found = hooks != nullptr ? std::strstr(hooks, name) : nullptr;
  if (found == nullptr) return std::nullopt;
  const char* after = found + std::strlen(name);
  return *after == '=' ? std::strtoll(after + 1, nullptr, 10) : 0;
}

}  // namespace deltasync::binding
