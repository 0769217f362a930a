#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace deltasync {

// SHA-256 as specified by FIPS 180-4, compiled into the addon so that neither the build nor
// the running process needs a system crypto library (Electron ships BoringSSL, not OpenSSL).
// Used to tell ingested files apart; verified against the NIST example vectors and against
// Node's crypto in the test suites.
//
// Thread safety: an instance is used by one thread at a time; instances are independent.
class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  enum class Engine {
    kFastest,   // the CPU's SHA instructions (x86-64 SHA-NI) when it has them, else kPortable
    kPortable,  // plain C++ on every CPU
  };

  explicit Sha256(Engine engine = Engine::kFastest);

  // True when this CPU runs kFastest with SHA instructions.
  static bool HasShaInstructions();
  void Update(std::string_view data);
  // Returns the digest of everything given to Update. The instance is spent afterwards.
  Digest Finish();

  // Lowercase hex digest of `data` in one call.
  static std::string Hex(std::string_view data, Engine engine = Engine::kFastest);

 private:
  // Compresses `count` consecutive 64-byte blocks into state_.
  void Compress(const uint8_t* blocks, size_t count);

  bool accelerated_;
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace deltasync
