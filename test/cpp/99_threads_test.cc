// 99: the client's threading model, as the binding uses it: one connection, shared by
// the JS thread (local writes through the store) and a worker thread (pulled pages
// applied chunk by chunk), each holding one std::recursive_mutex around every use
// (src/binding/apply_worker.cc). Run under ThreadSanitizer by `npm run test:tsan`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/apply.h"
#include "core/client.h"
#include "core/env.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::IsOk;
using testing_util::kTestStartMs;
using testing_util::Page;
using testing_util::QueryInt;
using testing_util::Remote;
using testing_util::TempDir;

TEST(ClientThreads, AWorkerAppliesChunksWhileTheMainThreadWritesThroughTheStore) {
  static constexpr int kRemote = 300;    // pulled changes, applied 10 per chunk by the worker
  static constexpr int kLocal = 150;     // local writes by the main thread
  static constexpr int kShared = 10;     // entities both write: conflicts, in either order
  TempDir dir;
  ClientOptions options;
  options.path = dir.File("threads.db");
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(kTestStartMs);
  Result<std::unique_ptr<Client>> opened = Client::Open(options, clock, std::make_shared<SeededRandom>(99));
  ASSERT_TRUE(IsOk(opened));
  std::unique_ptr<Client> client = std::move(opened).value();
  std::recursive_mutex mutex;  // the binding's ClientSlot::mutex

  std::vector<std::string> changes;
  for (int i = 1; i <= kRemote; ++i) {
    const std::string id = i <= kShared ? "shared" + std::to_string(i) : "remote" + std::to_string(i);
    changes.push_back(Remote(i, "CREATED", id, R"({"from":"server","i":)" + std::to_string(i) + "}"));
  }
  const std::string page_json = Page(changes, kRemote);

  Status worker_status;
  ApplyResult result;
  std::thread worker([&] {
    // Decoded off the lock with the worker's own parser, as ApplyWorker::Execute does.
    simdjson::ondemand::parser parser;
    simdjson::padded_string input(page_json);
    PullPage page;
    worker_status = DecodePullPage(parser, input, JsonLimits{}, &page);
    if (!worker_status.ok()) return;
    for (size_t begin = 0; begin < page.changes.size(); begin += 10) {
      std::lock_guard<std::recursive_mutex> lock(mutex);
      worker_status =
          client->applier().ApplyChunk(page, begin, std::min(page.changes.size(), begin + 10), &result);
      if (!worker_status.ok()) return;
    }
  });

  for (int i = 0; i < kLocal; ++i) {
    std::lock_guard<std::recursive_mutex> lock(mutex);
    const std::string id = i < kShared ? "shared" + std::to_string(i + 1) : "local" + std::to_string(i);
    Result<WriteEvent> written =
        client->store().Put("note", id, R"({"from":"local","i":)" + std::to_string(i) + "}");
    ASSERT_TRUE(IsOk(written)) << id;
    clock->Advance(1);
  }
  worker.join();

  ASSERT_TRUE(IsOk(worker_status));
  EXPECT_EQ(result.applied + result.skipped, kRemote);
  EXPECT_EQ(result.latest_server_version, kRemote);
  Result<int64_t> cursor = client->applier().Cursor();
  ASSERT_TRUE(IsOk(cursor));
  EXPECT_EQ(cursor.value(), kRemote);
  Database& db = client->database();
  // Every entity exists once: remote-only, local-only, and the shared ones resolved one way or the other.
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM documents WHERE deleted = 0"), kRemote + kLocal - kShared);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM documents WHERE entity_id LIKE 'remote%' AND base IS NULL AND version IS NOT NULL"),
            kRemote - kShared);
  EXPECT_EQ(QueryInt(db, "SELECT count(*) FROM changes WHERE entity_id LIKE 'local%'"), kLocal - kShared);
  EXPECT_EQ(testing_util::QueryText(db, "PRAGMA integrity_check"), std::optional<std::string>("ok"));
}

}  // namespace
}  // namespace deltasync
