// The fuzzing entry points: each feeds one untrusted input to one decoding path of the
// core, on fresh in-memory state, and returns the Status that came back. Shared by the
// libFuzzer targets (fuzz/targets/*.cc, built by `npm run fuzz` with clang) and by the
// corpus replay in core_tests (test/cpp/98_corpus_test.cc, built with the normal test
// build), so a reproducer saved by the fuzzer replays the same code without clang.
//
// An entry point never aborts on bad input: a bad input is a non-ok Status. A crash, a
// sanitizer report or a hang is the bug. INTERNAL means an invariant that the entry point
// checks did not hold (such as a successful response that is not valid JSON); the fuzz
// targets treat it as a finding too.
//
// Thread safety: each call builds its own state; calls may run on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "core/pull_page.h"
#include "core/status.h"

namespace deltasync {
namespace fuzz {

// (a) The push-request decoder: SyncServerCore::Sync with the input as the request body,
// then CompatPush with the same body, on a ':memory:' server holding a few entities.
Status PushRequestEntry(const uint8_t* data, size_t size);

// (b) The pull-page applier: the page read as the apply reads it (ReadPageAsTheApplyDoes,
// windows of 64 bytes and two changes), then ApplyVerdicts (when the page is a sync response)
// and ApplyChunk for each window, on a ':memory:' client holding pulled and local documents.
// The conflict strategy is picked from a hash of the input.
Status PullPageEntry(const uint8_t* data, size_t size);

// Reads the page as the apply of a large page does (ValidatePullPage with windows of
// `window_bytes`, then PagePrefetcher `window_changes` at a time, a window decoded ahead on a
// thread of its own), checking it against DecodePullPage: the same
// error, the same fields, the same changes. Calls `on_page` once the page is validated, then
// `on_window` for each window. INTERNAL when the two readings differ.
Status ReadPageAsTheApplyDoes(std::string_view bytes, size_t window_bytes, size_t window_changes,
                              const std::function<Status(const PullPage&)>& on_page,
                              const std::function<Status(const PullPage&)>& on_window);

// (c) The JSONL ingestion parser: the input becomes one .jsonl file in a fresh temporary
// directory, ingested by Ingester::Run into a ':memory:' client.
Status IngestJsonlEntry(const uint8_t* data, size_t size);

struct Target {
  const char* name;  // the directory name under fuzz/corpus and fuzz/crashes
  Status (*entry)(const uint8_t* data, size_t size);
};

// Every target: push_request, pull_page, ingest_jsonl.
const std::vector<Target>& Targets();

// The target named `name`, or nullptr.
const Target* FindTarget(std::string_view name);

}  // namespace fuzz
}  // namespace deltasync
