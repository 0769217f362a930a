#include "fuzz/entry_points.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/apply.h"
#include "core/change.h"
#include "core/env.h"
#include "core/ingest.h"
#include "core/json.h"
#include "core/page_prefetcher.h"
#include "core/pull_page.h"
#include "core/queue.h"
#include "core/schema.h"
#include "core/server.h"
#include "core/sqlite.h"
#include "core/store.h"
#include "simdjson.h"

namespace deltasync {
namespace fuzz {

namespace {

namespace fs = std::filesystem;

constexpr int64_t kServerNow = 1767225600000;  // 2026-01-01T00:00:00Z
constexpr int64_t kClientNow = 1700000000000;

// Stored state that inputs can meet: the seed corpus refers to these ids.
constexpr const char* kServerSeed =
    R"({"deviceId":"dev-seed","lastKnownServerVersion":0,"changes":[)"
    R"({"changeId":"seed-1","type":"CREATED","entityType":"note","entityId":"n1","data":{"t":"one","n":1},"timestamp":1600000000000},)"
    R"({"changeId":"seed-2","type":"CREATED","entityType":"note","entityId":"n2","data":{"t":"two","tags":["a"]},"timestamp":1600000000000},)"
    R"({"changeId":"seed-3","type":"CREATED","entityType":"customers","entityId":"CUST_001","data":{"customer_id":"CUST_001","name":"ABC","updated_at":"2025-01-15T10:00:00Z"},"timestamp":1600000000000}]})";

constexpr const char* kClientSeedPage =
    R"({"newChanges":[)"
    R"({"version":1,"changeId":"r1","type":"CREATED","entityType":"note","entityId":"p1","data":{"t":"p1","n":1},"timestamp":1700000000000,"deviceId":"other"},)"
    R"({"version":2,"changeId":"r2","type":"CREATED","entityType":"note","entityId":"p2","data":{"t":"p2","n":2},"timestamp":1700000000000,"deviceId":"other"}],)"
    R"("latestServerVersion":2,"hasMore":false})";

// A successful result must be valid JSON; anything else is an invariant that did not hold.
Status CheckJson(const Result<std::string>& result, const char* what) {
  if (!result.ok()) return Status::Ok();
  simdjson::dom::parser parser;
  const simdjson::error_code error = parser.parse(result.value()).error();
  if (error != simdjson::SUCCESS) {
    return Status::Internal(std::string(what) + " returned invalid JSON (" + simdjson::error_message(error) +
                            "): " + result.value().substr(0, 200));
  }
  return Status::Ok();
}

Status SeedFailed(const Status& status) { return Status::Internal("seeding the fuzz state failed: " + status.ToString()); }

// FNV-1a: a stable choice from the input, the same in every build.
uint64_t Hash(const uint8_t* data, size_t size) {
  uint64_t hash = 14695981039346656037ULL;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 1099511628211ULL;
  return hash;
}

// A client database in memory with its queue, store and applier.
struct ClientState {
  ManualClock clock{kClientNow};
  SeededRandom random{17};
  std::unique_ptr<Database> db;
  std::unique_ptr<ChangeQueue> queue;
  std::unique_ptr<DocumentStore> store;
  std::unique_ptr<DeltaApplier> applier;

  Status Open(ConflictStrategy strategy) {
    Result<std::unique_ptr<Database>> opened = Database::Open(":memory:", DatabaseOptions{});
    if (!opened.ok()) return opened.status();
    db = std::move(opened).value();
    DS_RETURN_IF_ERROR(Migrate(*db, ClientMigrations()));
    queue = std::make_unique<ChangeQueue>(*db, clock, random, QueueOptions{});
    store = std::make_unique<DocumentStore>(*db, clock, *queue, JsonLimits{}.max_document_bytes);
    applier = std::make_unique<DeltaApplier>(*db, clock, *queue, strategy);
    return Status::Ok();
  }
};

ChangeInput LocalChange(ChangeType type, const std::string& entity_id, std::optional<std::string> data,
                        const std::string& change_id) {
  ChangeInput input;
  input.type = type;
  input.entity_type = "note";
  input.entity_id = entity_id;
  input.data = std::move(data);
  input.change_id = change_id;
  return input;
}

// Pulled documents p1, p2; local changes: local-1 (n1 created) and local-2 (p1 updated)
// in flight, then pending local-3 (n2 created), a patch of p2 and local-4 (n1 updated).
Status SeedClient(ClientState& client, simdjson::ondemand::parser& parser) {
  simdjson::padded_string seed_page(std::string_view{kClientSeedPage});
  PullPage page;
  DS_RETURN_IF_ERROR(DecodePullPage(parser, seed_page, JsonLimits{}, &page));
  ApplyResult ignored;
  DS_RETURN_IF_ERROR(client.applier->ApplyChunk(page, 0, page.changes.size(), &ignored));
  DS_RETURN_IF_ERROR(
      client.queue->Enqueue(LocalChange(ChangeType::kCreated, "n1", R"({"t":"local","n":1})", "local-1")).status());
  DS_RETURN_IF_ERROR(client.queue->Enqueue(LocalChange(ChangeType::kUpdated, "p1", R"({"n":11})", "local-2")).status());
  DS_RETURN_IF_ERROR(client.queue->TakeBatch(10).status());
  DS_RETURN_IF_ERROR(client.queue->Enqueue(LocalChange(ChangeType::kCreated, "n2", R"({"t":"n2"})", "local-3")).status());
  DS_RETURN_IF_ERROR(client.store->Patch("note", "p2", R"({"n":22,"x":[1,2]})").status());
  DS_RETURN_IF_ERROR(client.queue->Enqueue(LocalChange(ChangeType::kUpdated, "n1", R"({"n":2})", "local-4")).status());
  return Status::Ok();
}

// Removes a directory tree when it goes out of scope.
class TempTree {
 public:
  TempTree() {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string pattern = (base / "deltasync-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempTree() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

Status PushRequestEntry(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  ServerOptions options;
  options.path = ":memory:";
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(kServerNow);
  Result<std::unique_ptr<SyncServerCore>> opened = SyncServerCore::Open(options, clock);
  if (!opened.ok()) return SeedFailed(opened.status());
  SyncServerCore& server = *opened.value();
  Result<std::string> seeded = server.Sync("u", kServerSeed);
  if (!seeded.ok()) return SeedFailed(seeded.status());

  clock->Advance(1000);
  Result<std::string> synced = server.Sync("u", body);
  DS_RETURN_IF_ERROR(CheckJson(synced, "Sync"));
  // The same body again through Push: a replay of every changeId that was applied.
  clock->Advance(1000);
  Result<std::string> pushed = server.Push("u", body);
  DS_RETURN_IF_ERROR(CheckJson(pushed, "Push"));
  // And as an older design's push ({deviceId, changes: {entityType: [records]}}).
  clock->Advance(1000);
  Result<std::string> compat = server.CompatPush("u", body, CompatOptions{});
  DS_RETURN_IF_ERROR(CheckJson(compat, "CompatPush"));
  // And as a legacy state for POST /v2/migrate ({entityType: [records]}, bare or as {state}).
  clock->Advance(1000);
  Result<std::string> migrated = server.CompatMigrate("u", body, CompatOptions{});
  DS_RETURN_IF_ERROR(CheckJson(migrated, "CompatMigrate"));
  for (const Status* status : {&synced.status(), &pushed.status(), &compat.status(), &migrated.status()}) {
    if (status->code() == StatusCode::kInternal) return *status;
  }
  // Whatever was accepted reads back through the older designs' pull (its records re-encoded,
  // each updated_at clamped or kept), and through the v2 pull.
  Result<std::string> compat_pull = server.CompatPull("u", R"({"deviceId":"fuzz","lastSyncTimestamp":null})", CompatOptions{});
  DS_RETURN_IF_ERROR(CheckJson(compat_pull, "CompatPull"));
  if (!compat_pull.ok()) return compat_pull.status();
  // A body is meant for one of the three shapes: ok when any accepted it.
  if (synced.ok() || compat.ok() || migrated.ok()) return Status::Ok();
  return body.find("\"changes\":{") != std::string::npos ? compat.status() : synced.status();
}

Status ReadPageAsTheApplyDoes(std::string_view bytes, size_t window_bytes, size_t window_changes,
                              const std::function<Status(const PullPage&)>& on_page,
                              const std::function<Status(const PullPage&)>& on_window) {
  simdjson::ondemand::parser parser;
  const simdjson::padded_string input(bytes);
  PullPage whole;
  const Status decoded = DecodePullPage(parser, input, JsonLimits{}, &whole);
  PullPage page;
  PageLayout layout;
  const Status validated =
      ValidatePullPage(parser, bytes, JsonLimits{}, &page, &layout, PageChanges::kCountOnly, window_bytes);
  if (validated.ToString() != decoded.ToString()) {
    return Status::Internal("ValidatePullPage (" + validated.ToString() + ") disagrees with DecodePullPage (" +
                            decoded.ToString() + ")");
  }
  DS_RETURN_IF_ERROR(decoded);
  if (page.ChangeCount() != whole.changes.size() || page.verdicts.size() != whole.verdicts.size() ||
      page.latest_server_version != whole.latest_server_version || page.head_version != whole.head_version ||
      page.has_more != whole.has_more || page.resync != whole.resync || page.resync_from != whole.resync_from) {
    return Status::Internal("ValidatePullPage read another page than DecodePullPage");
  }
  DS_RETURN_IF_ERROR(on_page(page));
  // As the apply of a large page: decoded a window ahead on a thread of its own.
  PagePrefetcher prefetcher(parser, bytes, layout, JsonLimits{}, window_changes);
  do {
    const Status next = prefetcher.Next(&page);
    if (!next.ok()) return Status::Internal("PagePrefetcher failed on the bytes it was given: " + next.ToString());
    for (size_t i = 0; i < page.changes.size(); ++i) {
      const RemoteChange& read = page.changes[i];
      const RemoteChange& expected = whole.changes[page.window_start + i];
      if (read.change_id != expected.change_id || read.version != expected.version ||
          read.entity_id != expected.entity_id || read.data != expected.data) {
        return Status::Internal("PagePrefetcher read another change than DecodePullPage at newChanges[" +
                                std::to_string(page.window_start + i) + "]");
      }
    }
    DS_RETURN_IF_ERROR(on_window(page));
  } while (page.window_start + page.changes.size() < page.ChangeCount());
  return Status::Ok();
}

Status PullPageEntry(const uint8_t* data, size_t size) {
  static constexpr ConflictStrategy kStrategies[] = {ConflictStrategy::kNewestWins, ConflictStrategy::kServerWins,
                                                     ConflictStrategy::kClientWins, ConflictStrategy::kMerge,
                                                     ConflictStrategy::kManual};
  ClientState client;
  Status opened = client.Open(kStrategies[Hash(data, size) % 5]);
  if (!opened.ok()) return SeedFailed(opened);
  simdjson::ondemand::parser parser;
  Status seeded = SeedClient(client, parser);
  if (!seeded.ok()) return SeedFailed(seeded);

  // Windows of 64 bytes, so that even a small input crosses window boundaries.
  ApplyResult result;
  DS_RETURN_IF_ERROR(ReadPageAsTheApplyDoes(
      std::string_view(reinterpret_cast<const char*>(data), size), /*window_bytes=*/64, /*window_changes=*/2,
      [&](const PullPage& page) {
        return page.verdicts.empty() ? Status::Ok() : client.applier->ApplyVerdicts(page, 3, &result);
      },
      [&](const PullPage& window) { return client.applier->ApplyChunk(window, 0, window.changes.size(), &result); }));
  // What was applied must read back as JSON.
  DS_RETURN_IF_ERROR(CheckJson(client.store->List("note", ListQuery{}), "DocumentStore::List"));
  DS_RETURN_IF_ERROR(CheckJson(client.applier->ConflictsJson(), "DeltaApplier::ConflictsJson"));
  return Status::Ok();
}

Status IngestJsonlEntry(const uint8_t* data, size_t size) {
  TempTree tree;
  if (tree.path().empty()) return Status::Internal("could not create a temporary directory");
  {
    std::ofstream file(tree.path() / "input.jsonl", std::ios::binary);
    file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!file) return Status::Internal("could not write the input file");
  }
  ClientState client;
  Status opened = client.Open(ConflictStrategy::kNewestWins);
  if (!opened.ok()) return SeedFailed(opened);
  Ingester ingester(*client.db, client.clock, *client.store, JsonLimits{});
  std::recursive_mutex mutex;
  const Ingester::Lock lock = [&mutex] { return std::unique_lock<std::recursive_mutex>(mutex); };
  IngestOptions options;
  options.chunk_records = 3;
  Result<IngestReport> report = ingester.Run(tree.path().string(), options, lock, {});
  if (!report.ok()) return report.status();
  DS_RETURN_IF_ERROR(CheckJson(IngestReportJson(report.value()), "IngestReportJson"));
  DS_RETURN_IF_ERROR(CheckJson(ingester.StatusJson(), "Ingester::StatusJson"));
  // A second run finds the file unchanged.
  options.skip_existing = false;
  Result<IngestReport> again = ingester.Run(tree.path().string(), options, lock, {});
  if (!again.ok()) return again.status();
  if (again.value().files_unchanged != 1) {
    return Status::Internal("a second run did not find the file unchanged: " + IngestReportJson(again.value()));
  }
  return CheckJson(client.store->List("record", ListQuery{}), "DocumentStore::List");
}

const std::vector<Target>& Targets() {
  static const std::vector<Target> targets = {
      {"push_request", PushRequestEntry},
      {"pull_page", PullPageEntry},
      {"ingest_jsonl", IngestJsonlEntry},
  };
  return targets;
}

const Target* FindTarget(std::string_view name) {
  for (const Target& target : Targets()) {
    if (name == target.name) return &target;
  }
  return nullptr;
}

}  // namespace fuzz
}  // namespace deltasync
