// Injected time and randomness. The core reaches the wall clock and the entropy
// source only through these interfaces, so tests drive them deterministically.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

namespace deltasync {

// Thread safety: implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMs() = 0;
};

// Thread safety: implementations must be safe to call from any thread.
class Random {
 public:
  virtual ~Random() = default;
  // A uniformly distributed 64-bit value.
  virtual uint64_t Next() = 0;
  // A uniformly distributed double in [0, 1).
  double NextDouble() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  // A random RFC 4122 version 4 UUID in canonical lower-case form.
  std::string UuidV4();
  // An RFC 9562 version 7 UUID: 48 bits of `unix_ms`, then random bits. Ids made later
  // sort later, so indexes on them grow at the end instead of at random places.
  std::string UuidV7(int64_t unix_ms);
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() override;
};

// The system clock shifted by a fixed offset: a device whose clock is wrong (tests, simulations).
class OffsetClock final : public Clock {
 public:
  explicit OffsetClock(int64_t offset_ms) : offset_ms_(offset_ms) {}
  int64_t NowMs() override { return system_.NowMs() + offset_ms_; }

 private:
  SystemClock system_;
  int64_t offset_ms_;
};

// Fills `size` bytes from the operating system's entropy (getrandom, /dev/urandom, or
// std::random_device off Linux). Returns false when no source could fill them.
bool FillFromSystemEntropy(void* out, size_t size);

// Seeded once from FillFromSystemEntropy; each instance owns its generator.
class SystemRandom final : public Random {
 public:
  SystemRandom();
  uint64_t Next() override;

 private:
  std::mutex mutex_;
  std::mt19937_64 engine_;
};

// Deterministic generator for tests and simulations (SplitMix64).
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next() override;

 private:
  std::mutex mutex_;
  uint64_t state_;
};

// A clock that only moves when told to; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowMs() override;
  void Set(int64_t now_ms);
  void Advance(int64_t delta_ms);

 private:
  std::mutex mutex_;
  int64_t now_ms_;
};

}  // namespace deltasync
