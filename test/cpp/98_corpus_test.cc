// 98: the fuzzing corpus as regression cases, without clang. Every file under
// fuzz/corpus/<target>/ (the seed corpus) and fuzz/crashes/<target>/ (inputs the fuzzer
// found to crash, kept after the fix) goes through the same entry point as the libFuzzer
// target (fuzz/entry_points.h); the check is only that it returns a Status instead of
// crashing (the sanitizer builds, `npm run test:sanitize`, also catch memory errors).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "core/status.h"
#include "fuzz/entry_points.h"

#ifndef DELTASYNC_FUZZ_DIR
#error "DELTASYNC_FUZZ_DIR (the repository's fuzz/ directory) must be defined by the build"
#endif

namespace deltasync {
namespace {

namespace fs = std::filesystem;

// The regular files of `dir`, sorted; none when it does not exist.
std::vector<fs::path> FilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().filename().string().front() != '.') files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Replays every file of fuzz/<kind>/<target>/; returns how many there were.
size_t Replay(const fuzz::Target& target, const char* kind) {
  const fs::path dir = fs::path(DELTASYNC_FUZZ_DIR) / kind / target.name;
  const std::vector<fs::path> files = FilesIn(dir);
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    const std::string input = ReadAll(file);
    const Status status = target.entry(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    // Reaching here is half the check: the fuzz targets abort on INTERNAL (a bug), and so does
    // the replay. Any other code is a clear refusal of bad input. The code is printed so that a
    // change in behaviour shows in the log.
    EXPECT_NE(status.code(), StatusCode::kInternal) << status.ToString();
    std::printf("[ replay   ] %s/%s/%s: %s\n", kind, target.name, file.filename().string().c_str(),
                status.ok() ? "OK" : CodeName(status.code()));
  }
  return files.size();
}

class CorpusReplay : public ::testing::TestWithParam<const char*> {};

TEST_P(CorpusReplay, EverySeedAndSavedCrashReturnsAStatus) {
  const fuzz::Target* target = fuzz::FindTarget(GetParam());
  ASSERT_NE(target, nullptr);
  // The seed corpus is part of the repository: an empty one means the path is wrong.
  EXPECT_GE(Replay(*target, "corpus"), 10u) << "seed corpus missing under " << DELTASYNC_FUZZ_DIR;
  Replay(*target, "crashes");
}

INSTANTIATE_TEST_SUITE_P(Fuzz, CorpusReplay, ::testing::Values("push_request", "pull_page", "ingest_jsonl"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

TEST(FuzzCorpus, EveryTargetHasACorpusDirectory) {
  for (const fuzz::Target& target : fuzz::Targets()) {
    EXPECT_TRUE(fs::is_directory(fs::path(DELTASYNC_FUZZ_DIR) / "corpus" / target.name)) << target.name;
  }
}

}  // namespace
}  // namespace deltasync
