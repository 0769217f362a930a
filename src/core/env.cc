#include "core/env.h"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>

#if defined(__linux__)
#include <sys/random.h>
#endif

namespace deltasync {

namespace {

std::string FormatUuid(uint64_t hi, uint64_t lo) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out.push_back('-');
    const uint64_t word = i < 16 ? hi : lo;
    const int shift = 60 - 4 * (i % 16);
    out.push_back(kHex[(word >> shift) & 0xF]);
  }
  return out;
}

}  // namespace

std::string Random::UuidV4() {
  uint64_t hi = Next();
  uint64_t lo = Next();
  hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10xx
  return FormatUuid(hi, lo);
}

std::string Random::UuidV7(int64_t unix_ms) {
  const uint64_t ms = static_cast<uint64_t>(unix_ms < 0 ? 0 : unix_ms) & 0xFFFFFFFFFFFFull;
  uint64_t hi = (ms << 16) | 0x7000ull | (Next() & 0x0FFFull);                     // version 7
  uint64_t lo = (Next() & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;         // variant 10xx
  return FormatUuid(hi, lo);
}

int64_t SystemClock::NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool FillFromSystemEntropy(void* out, size_t size) {
  auto* bytes = static_cast<char*>(out);
  size_t filled = 0;
#if defined(__linux__)
  // getrandom(2) directly: std::random_device in a statically linked libstdc++ would pin the
  // prebuilt addon to glibc >= 2.36 (arc4random).
  while (filled < size) {
    const ssize_t got = getrandom(bytes + filled, size - filled, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    filled += static_cast<size_t>(got);
  }
  if (filled < size) {
    if (std::FILE* urandom = std::fopen("/dev/urandom", "rb")) {
      filled += std::fread(bytes + filled, 1, size - filled, urandom);
      std::fclose(urandom);
    }
  }
#else
  std::random_device device;
  for (; filled < size; ++filled) bytes[filled] = static_cast<char>(device());
#endif
  return filled == size;
}

SystemRandom::SystemRandom() {
  std::array<uint32_t, 8> words{};
  if (!FillFromSystemEntropy(words.data(), sizeof(words))) {
    // No entropy source answered: the time still keeps instances apart.
    words[0] ^= static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    words[1] ^= static_cast<uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  std::seed_seq seed(words.begin(), words.end());
  engine_.seed(seed);
}

uint64_t SystemRandom::Next() {
  std::lock_guard<std::mutex> lock(mutex_);
  return engine_();
}

uint64_t SeededRandom::Next() {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int64_t ManualClock::NowMs() {
  std::lock_guard<std::mutex> lock(mutex_);
  return now_ms_;
}

void ManualClock::Set(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  now_ms_ = now_ms;
}

void ManualClock::Advance(int64_t delta_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  now_ms_ += delta_ms;
}

}  // namespace deltasync
