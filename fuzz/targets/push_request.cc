// libFuzzer target: the push-request decoder (SyncServerCore::Sync, Push, CompatPush).
// Built by `npm run fuzz` (scripts/fuzz.js) with clang and -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz/entry_points.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const deltasync::Status status = deltasync::fuzz::PushRequestEntry(data, size);
  if (status.code() == deltasync::StatusCode::kInternal) {
    // An invariant did not hold: a finding like a crash, so libFuzzer saves the input.
    std::fprintf(stderr, "INTERNAL status from push_request: %s\n", status.ToString().c_str());
    std::abort();
  }
  return 0;
}
