// 15: the compiled-in SHA-256 (FIPS 180-4) against the NIST example vectors, on both engines.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/sha256.h"

namespace deltasync {
namespace {

constexpr Sha256::Engine kEngines[] = {Sha256::Engine::kFastest, Sha256::Engine::kPortable};

TEST(Sha256, NistExampleVectors) {
  for (Sha256::Engine engine : kEngines) {
    SCOPED_TRACE(engine == Sha256::Engine::kPortable ? "portable" : "fastest");
    EXPECT_EQ(Sha256::Hex("", engine), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(Sha256::Hex("abc", engine), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(Sha256::Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", engine),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(Sha256::Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                          engine),
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  }
}

TEST(Sha256, OneMillionAs) {
  for (Sha256::Engine engine : kEngines) {
    EXPECT_EQ(Sha256::Hex(std::string(1000000, 'a'), engine),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
}

// The SHA instructions, where the CPU has them, agree with the portable code on random inputs
// of every length up to several blocks and on a long one.
TEST(Sha256, ShaInstructionsMatchPortable) {
  if (!Sha256::HasShaInstructions()) GTEST_SKIP() << "this CPU has no SHA instructions";
  std::mt19937 random(15);
  std::string data(300000, '\0');
  for (char& byte : data) byte = static_cast<char>(random());
  for (size_t length = 0; length <= 600; ++length) {
    const std::string_view input(data.data(), length);
    ASSERT_EQ(Sha256::Hex(input), Sha256::Hex(input, Sha256::Engine::kPortable)) << "length " << length;
  }
  EXPECT_EQ(Sha256::Hex(data), Sha256::Hex(data, Sha256::Engine::kPortable));
}

// Every padding boundary (55, 56, 63, 64 and 65 bytes) and every way of splitting the input
// across Update calls gives the one-shot digest.
TEST(Sha256, IncrementalUpdatesMatchOneShot) {
  std::string data;
  for (int i = 0; i < 200; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  for (size_t length : {0u, 1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u, 200u}) {
    const std::string input = data.substr(0, length);
    const std::string expected = Sha256::Hex(input);
    for (size_t split = 0; split <= length; split += (length < 70 ? 1 : 13)) {
      Sha256 hash;
      hash.Update(std::string_view(input).substr(0, split));
      hash.Update(std::string_view(input).substr(split));
      const Sha256::Digest digest = hash.Finish();
      std::string hex;
      for (uint8_t byte : digest) {
        static constexpr char kHex[] = "0123456789abcdef";
        hex.push_back(kHex[byte >> 4]);
        hex.push_back(kHex[byte & 0xF]);
      }
      EXPECT_EQ(hex, expected) << "length " << length << " split " << split;
    }
  }
}

}  // namespace
}  // namespace deltasync
