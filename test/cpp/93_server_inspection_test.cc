// 93: the inspector's views of the server core (SyncServerCore::Inspect) on ':memory:' with a
// ManualClock: paging (next cursors, limits), the change log's filters, an entity's history
// folded version by version, a conflict's base, activity per UTC day, and the value rules.
#include <gtest/gtest.h>

#include <string>

#include "core/server.h"
#include "core/server_inspection.h"
#include "server_harness.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using namespace server_testing;  // NOLINT: the harness is this file's vocabulary

constexpr int64_t kDay = 86400000;

std::string Inspect(ServerHarness& h, const InspectQuery& query) {
  Result<std::string> result = h.server->Inspect(query);
  EXPECT_TRUE(IsOk(result));
  return result.ok() ? result.value() : "{}";
}

InspectQuery Query(InspectQuery::View view, const std::string& user = "u") {
  InspectQuery query;
  query.view = view;
  if (view != InspectQuery::View::kUsers) query.user_id = user;
  return query;
}

// Two users; "u" has a task written three times by two devices and a manual conflict.
ServerHarness Seeded() {
  ServerHarness h = ServerHarness::With(ConflictStrategy::kManual);
  h.Push("laptop", {Created("t1", R"({"title":"a","done":false})", "c1")});
  h.Push("laptop", {Updated("t1", R"({"title":"b"})", "c2", 1, kT0 + 1)});
  h.Push("phone",
         {Updated("t1", R"({"done":true})", "c3", 1, kT0 + 2)});  // conflicts: base 1, head 2
  h.Push("phone", {Created("t2", R"({"title":"x"})", "c4")});
  h.clock->Advance(kDay);
  h.Push("tablet", {Created("n1", R"({"text":"y"})", "c5")}, "v");
  return h;
}

TEST(ServerInspection, UsersArePagedByIdWithTheirCounts) {
  ServerHarness h = Seeded();
  InspectQuery query = Query(InspectQuery::View::kUsers);
  query.limit = 1;
  const std::string first = Inspect(h, query);
  EXPECT_EQ(At(first, "/users/0/userId"), "\"u\"");
  EXPECT_EQ(Int(first, "/users/0/headVersion"), 3);
  EXPECT_EQ(Int(first, "/users/0/deviceCount"), 2);
  EXPECT_EQ(Int(first, "/users/0/openConflicts"), 1);
  EXPECT_EQ(At(first, "/next"), "\"u\"");
  query.after = "u";
  const std::string second = Inspect(h, query);
  EXPECT_EQ(At(second, "/users/0/userId"), "\"v\"");
  EXPECT_EQ(At(second, "/next"), "null");
}

TEST(ServerInspection, DevicesLagBehindTheHead) {
  ServerHarness h = Seeded();
  const std::string devices = Inspect(h, Query(InspectQuery::View::kDevices));
  EXPECT_EQ(Int(devices, "/headVersion"), 3);
  EXPECT_EQ(At(devices, "/devices/0/deviceId"), "\"laptop\"");
  EXPECT_EQ(Int(devices, "/devices/0/lag"), 3 - Int(devices, "/devices/0/lastSeenVersion"));
  EXPECT_EQ(Int(devices, "/devices/1/openConflicts"), 1);
  EXPECT_EQ(Int(devices, "/devices/1/conflictsReported"), 1);
}

TEST(ServerInspection, TheChangeLogIsNewestFirstPagedAndFiltered) {
  ServerHarness h = Seeded();
  InspectQuery query = Query(InspectQuery::View::kChanges);
  query.limit = 2;
  const std::string page = Inspect(h, query);
  EXPECT_EQ(Count(page, "/changes"), 2);
  EXPECT_EQ(Int(page, "/changes/0/version"), 3);
  EXPECT_EQ(Int(page, "/next"), 2);
  query.before = 2;
  const std::string older = Inspect(h, query);
  EXPECT_EQ(Count(older, "/changes"), 1);
  EXPECT_EQ(At(older, "/next"), "null");

  InspectQuery filtered = Query(InspectQuery::View::kChanges);
  filtered.device_id = "phone";
  EXPECT_EQ(At(Inspect(h, filtered), "/changes/0/entityId"), "\"t2\"");
  filtered.device_id.reset();
  filtered.change_type = "UPDATED";
  EXPECT_EQ(At(Inspect(h, filtered), "/changes/0/data"), R"({"title":"b"})");
  filtered.change_type.reset();
  filtered.entity_id = "t1";
  EXPECT_EQ(Count(Inspect(h, filtered), "/changes"), 2);
}

TEST(ServerInspection, AnEntityListsEachVersionWithTheDocumentAfterIt) {
  ServerHarness h = Seeded();
  InspectQuery query = Query(InspectQuery::View::kEntity);
  query.entity_type = "note";
  query.entity_id = "t1";
  const std::string entity = Inspect(h, query);
  EXPECT_EQ(At(entity, "/current/data"), R"({"title":"b","done":false})");
  EXPECT_EQ(Int(entity, "/versions/0/version"), 2);
  EXPECT_EQ(At(entity, "/versions/0/state"), R"({"title":"b","done":false})");
  EXPECT_EQ(At(entity, "/versions/1/state"), R"({"title":"a","done":false})");
  query.limit = 1;
  EXPECT_EQ(Int(Inspect(h, query), "/olderOmitted"), 1);
  query.entity_id.reset();
  EXPECT_TRUE(HasCode(h.server->Inspect(query), StatusCode::kInvalidArgument));
}

TEST(ServerInspection, ALongHistoryKeepsOnlyWhatItLists) {
  ServerOptions options;
  options.limits.max_response_bytes = 2000;
  ServerHarness h(options);
  const std::string padding(300, 'x');
  h.Push("d", {Created("e", R"({"n":0})", "c0")});
  for (int i = 1; i < 40; ++i) {
    h.Push("d", {Updated("e", R"({"n":)" + std::to_string(i) + R"(,"pad":")" + padding + R"("})",
                         "c" + std::to_string(i), i, kT0 + i)});
  }
  InspectQuery query = Query(InspectQuery::View::kEntity);
  query.entity_type = "note";
  query.entity_id = "e";
  query.limit = 500;
  const std::string entity = Inspect(h, query);
  const int64_t listed = Count(entity, "/versions");
  EXPECT_GT(listed, 0);
  EXPECT_LT(listed, 10) << "the byte budget bounds the page";
  EXPECT_EQ(Int(entity, "/versions/0/version"), 40);
  EXPECT_EQ(Int(entity, "/olderOmitted"), 40 - listed);
  EXPECT_LE(entity.size(), 2000u + 1000u);
}

TEST(ServerInspection, AConflictCarriesItsBase) {
  ServerHarness h = Seeded();
  const std::string conflicts = Inspect(h, Query(InspectQuery::View::kConflicts));
  EXPECT_EQ(Count(conflicts, "/conflicts"), 1);
  EXPECT_EQ(At(conflicts, "/conflicts/0/baseData"), R"({"title":"a","done":false})");
  EXPECT_EQ(At(conflicts, "/conflicts/0/serverData"), R"({"title":"b","done":false})");
  EXPECT_EQ(At(conflicts, "/conflicts/0/clientData"), R"({"done":true})");
}

TEST(ServerInspection, ActivityCountsPerUtcDay) {
  ServerHarness h = Seeded();
  InspectQuery query = Query(InspectQuery::View::kActivity, "");
  query.days = 2;
  const std::string activity = Inspect(h, query);
  const int64_t today = (kNow + kDay) / kDay * kDay;
  EXPECT_EQ(Int(activity, "/since"), today - kDay);
  EXPECT_EQ(Count(activity, "/changesPerDay"), 2);
  EXPECT_EQ(Int(activity, "/changesPerDay/0/count"), 3);  // the conflicting change is not logged
  EXPECT_EQ(Int(activity, "/changesPerDay/1/day"), today);
  EXPECT_EQ(Int(activity, "/conflictsPerDay/0/count"), 1);
  query.days = 1;
  query.user_id = "v";
  const std::string one = Inspect(h, query);
  EXPECT_EQ(Count(one, "/changesPerDay"), 1);
  EXPECT_EQ(At(one, "/deviceLag/0/deviceId"), "\"tablet\"");
}

TEST(ServerInspection, QueriesBreakingTheRulesAreInvalid) {
  ServerHarness h = Seeded();
  InspectQuery query = Query(InspectQuery::View::kUsers);
  query.limit = 0;
  EXPECT_TRUE(HasCode(h.server->Inspect(query), StatusCode::kInvalidArgument));
  query.limit = 501;
  EXPECT_TRUE(HasCode(h.server->Inspect(query), StatusCode::kInvalidArgument));
  InspectQuery no_user = Query(InspectQuery::View::kDevices);
  no_user.user_id.reset();
  EXPECT_TRUE(HasCode(h.server->Inspect(no_user), StatusCode::kInvalidArgument));
  InspectQuery bad_type = Query(InspectQuery::View::kChanges);
  bad_type.change_type = "PATCHED";
  EXPECT_TRUE(HasCode(h.server->Inspect(bad_type), StatusCode::kInvalidArgument));
  InspectQuery bad_days = Query(InspectQuery::View::kActivity);
  bad_days.days = 367;
  EXPECT_TRUE(HasCode(h.server->Inspect(bad_days), StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace deltasync
