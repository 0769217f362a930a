// The sync server core's test harness: a SyncServerCore on ':memory:' with a ManualClock,
// builders of v2 requests, and readers of JSON responses. Shared by the server tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/server.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace server_testing {

using testing_util::IsOk;

constexpr int64_t kNow = 1767225600000;  // the server clock: 2026-01-01T00:00:00.000Z
constexpr int64_t kT0 = 1600000000000;   // client timestamps

// ---- JSON helpers for reading responses

// The minified JSON at `pointer` (RFC 6901) in `json`, "<missing>" when absent.
inline std::string At(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json).get(root) != simdjson::SUCCESS) return "<malformed>";
  simdjson::dom::element value;
  if (root.at_pointer(pointer).get(value) != simdjson::SUCCESS) return "<missing>";
  return simdjson::minify(value);
}

// The number of elements of the array at `pointer`, or -1.
inline int64_t Count(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::array array;
  if (parser.parse(json).get(root) != simdjson::SUCCESS || root.at_pointer(pointer).get(array) != simdjson::SUCCESS) {
    return -1;
  }
  return static_cast<int64_t>(array.size());
}

inline int64_t Int(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  int64_t value = -1;
  if (parser.parse(json).get(root) != simdjson::SUCCESS || root.at_pointer(pointer).get(value) != simdjson::SUCCESS) {
    return -1;
  }
  return value;
}

// ---- request builders

struct C {
  std::string change_id;
  std::string type;  // CREATED, UPDATED, DELETED
  std::string entity_id;
  std::optional<std::string> data;
  std::optional<int64_t> base_version;
  std::optional<int64_t> timestamp;
  std::string entity_type = "note";
};

inline std::string ChangeJson(const C& c) {
  std::string out = "{\"changeId\":\"" + c.change_id + "\",\"type\":\"" + c.type + "\",\"entityType\":\"" +
                    c.entity_type + "\",\"entityId\":\"" + c.entity_id + "\"";
  if (c.data) out += ",\"data\":" + *c.data;
  if (c.base_version) out += ",\"baseVersion\":" + std::to_string(*c.base_version);
  if (c.timestamp) out += ",\"timestamp\":" + std::to_string(*c.timestamp);
  return out + "}";
}

inline std::string Request(const std::string& device, const std::vector<C>& changes, int64_t last_known = 0,
                    std::optional<int64_t> limit = std::nullopt) {
  std::string out = "{\"deviceId\":\"" + device + "\",\"lastKnownServerVersion\":" + std::to_string(last_known);
  if (limit) out += ",\"limit\":" + std::to_string(*limit);
  out += ",\"changes\":[";
  for (size_t i = 0; i < changes.size(); ++i) out += (i ? "," : "") + ChangeJson(changes[i]);
  return out + "]}";
}

inline C Created(const std::string& id, const std::string& data, const std::string& change_id, int64_t ts = kT0) {
  return C{change_id, "CREATED", id, data, std::nullopt, ts};
}
inline C Updated(const std::string& id, const std::string& data, const std::string& change_id, std::optional<int64_t> base,
          int64_t ts) {
  return C{change_id, "UPDATED", id, data, base, ts};
}
inline C Deleted(const std::string& id, const std::string& change_id, std::optional<int64_t> base, int64_t ts) {
  return C{change_id, "DELETED", id, std::nullopt, base, ts};
}

// ---- the harness

class ServerHarness {
 public:
  explicit ServerHarness(ServerOptions options = {}) {
    if (options.path.empty()) options.path = ":memory:";
    clock = std::make_shared<ManualClock>(kNow);
    Result<std::unique_ptr<SyncServerCore>> opened = SyncServerCore::Open(options, clock);
    EXPECT_TRUE(IsOk(opened));
    if (opened.ok()) server = std::move(opened).value();
  }
  static ServerHarness With(ConflictStrategy strategy, int64_t tolerance_ms = 1000) {
    ServerOptions options;
    options.conflicts = strategy;
    options.tolerance_ms = tolerance_ms;
    return ServerHarness(options);
  }

  // Sync that must succeed.
  std::string Sync(const std::string& request, const std::string& user = "u") {
    Result<std::string> response = server->Sync(user, request);
    EXPECT_TRUE(IsOk(response)) << request;
    return response.ok() ? response.value() : std::string("{}");
  }
  std::string Push(const std::string& device, const std::vector<C>& changes, const std::string& user = "u") {
    return Sync(Request(device, changes, /*last_known=*/1 << 30, /*limit=*/1), user);
  }

  // Every change of `user`, read in pages of `page`; checks hasMore on the way.
  std::vector<std::string> Log(const std::string& user = "u", int64_t page = 1000) {
    std::vector<std::string> changes;
    int64_t since = 0;
    for (int guard = 0; guard < 100000; ++guard) {
      Result<std::string> pulled = server->Pull(user, std::nullopt, since, page);
      EXPECT_TRUE(IsOk(pulled));
      if (!pulled.ok()) break;
      const int64_t n = Count(pulled.value(), "/newChanges");
      for (int64_t i = 0; i < n; ++i) changes.push_back(At(pulled.value(), "/newChanges/" + std::to_string(i)));
      if (n > 0) since = Int(pulled.value(), "/newChanges/" + std::to_string(n - 1) + "/version");
      if (At(pulled.value(), "/hasMore") != "true") break;
      EXPECT_EQ(n, page) << "a page with more after it is full";
    }
    return changes;
  }
  int64_t Latest(const std::string& user = "u") {
    Result<std::string> pulled = server->Pull(user, std::nullopt, 0, 1);
    EXPECT_TRUE(IsOk(pulled));
    return pulled.ok() ? Int(pulled.value(), "/headVersion") : -1;
  }

  // The current document of an entity (its fields, without the id and updated_at that
  // the compatible encoding adds), or "<absent>" / "<deleted>".
  std::string Doc(const std::string& entity_id, const std::string& entity_type = "note", const std::string& user = "u") {
    Result<std::string> changes = server->CompatChanges(user, std::nullopt, CompatOptions{});
    EXPECT_TRUE(IsOk(changes));
    if (!changes.ok()) return "<error>";
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    simdjson::dom::array records;
    if (parser.parse(changes.value()).get(root) != simdjson::SUCCESS ||
        root.at_pointer("/entities/" + entity_type).get(records) != simdjson::SUCCESS) {
      return "<absent>";
    }
    for (simdjson::dom::element record : records) {
      simdjson::dom::object object;
      if (record.get(object) != simdjson::SUCCESS) continue;
      std::string_view id;
      simdjson::dom::element id_value;
      if (object["id"].get(id_value) != simdjson::SUCCESS || id_value.get(id) != simdjson::SUCCESS || id != entity_id) {
        continue;
      }
      bool deleted = false;
      if (object["deleted"].get(deleted) == simdjson::SUCCESS && deleted) return "<deleted>";
      std::string out = "{";
      for (auto field : object) {
        if (field.key == "id" || field.key == "updated_at") continue;
        if (out.size() > 1) out += ",";
        out += "\"" + std::string(field.key) + "\":" + simdjson::minify(field.value);
      }
      return out + "}";
    }
    return "<absent>";
  }

  std::shared_ptr<ManualClock> clock;
  std::unique_ptr<SyncServerCore> server;
};

// Asserts that `log` holds versions 1..N in order and unique changeIds.
inline void ExpectGapless(const std::vector<std::string>& log) {
  std::set<std::string> ids;
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(Int(log[i], "/version"), static_cast<int64_t>(i + 1)) << log[i];
    ids.insert(At(log[i], "/changeId"));
  }
  EXPECT_EQ(ids.size(), log.size()) << "changeIds are unique";
}

}  // namespace server_testing
}  // namespace deltasync
