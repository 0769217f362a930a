// The statically linked libstdc++ carries std::random_device, which refers to arc4random,
// a glibc 2.36 symbol. deltasync never calls std::random_device (core/env.cc seeds from
// getrandom), but the reference alone would keep the prebuilt addon from loading on glibc
// 2.34/2.35 (Ubuntu 22.04, RHEL 9). This local definition satisfies it inside the addon;
// the version script keeps it out of the exported symbols.
#include <cstdint>
#include <cstdlib>

#if defined(__linux__) && defined(__GLIBC__)
#include "core/env.h"

extern "C" uint32_t arc4random(void) {
  uint32_t value = 0;
  if (!deltasync::FillFromSystemEntropy(&value, sizeof(value))) std::abort();  // never unrandom
  return value;
}
#endif
