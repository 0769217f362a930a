// 94: the server's decisions (server_decisions.h) with no database: fingerprints, clock
// hygiene, conflict detection, each of the five strategies (the three-way merge, the host's
// custom verdicts), what a write stores and the size limit on it, the history fold, and how a
// manual resolution becomes a change. The same rules serve the SQLite and PostgreSQL stores.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "core/server_compat_codec.h"
#include "core/server_decisions.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;

constexpr int64_t kT = 1'700'000'000'000;
constexpr int64_t kTolerance = 1000;

ChangeInput Change(ChangeType type, std::optional<std::string> data, std::optional<int64_t> base, int64_t timestamp,
                   const std::string& change_id = "c1") {
  ChangeInput change;
  change.change_id = change_id;
  change.entity_type = "note";
  change.entity_id = "n1";
  change.type = type;
  change.data = std::move(data);
  change.base_version = base;
  change.timestamp = timestamp;
  return change;
}

EntityRow Entity(std::optional<std::string> data, int64_t version, const std::string& device, int64_t timestamp,
                 bool deleted = false) {
  EntityRow entity;
  entity.found = true;
  entity.data = std::move(data);
  entity.version = version;
  entity.device_id = device;
  entity.client_timestamp = timestamp;
  entity.deleted = deleted;
  return entity;
}

ServerChange Logged(ChangeType type, std::optional<std::string> data, int64_t timestamp) {
  ServerChange change;
  change.type = type;
  change.data = std::move(data);
  change.client_timestamp = timestamp;
  return change;
}

class Decisions : public ::testing::Test {
 protected:
  // Detects and decides as the server does, for a change from device "phone".
  ConflictDecision Decide(ConflictStrategy strategy, ChangeInput* change, const EntityRow& entity,
                          const std::vector<ServerChange>& server_changes, const ResolverState& resolver = {}) {
    const ConflictCheck check = DetectConflict(*change, entity, "phone", server_changes, kTolerance);
    EXPECT_TRUE(check.conflict);
    Result<ConflictDecision> decided =
        DecideConflict(parser_, strategy, change, entity, server_changes, check, resolver, kTolerance);
    EXPECT_TRUE(IsOk(decided));
    return decided.ok() ? decided.value() : ConflictDecision{};
  }

  simdjson::ondemand::parser parser_;
};

// ---- idempotency and clocks

TEST(Fingerprint, IsStableAndSeparatesItsParts) {
  EXPECT_EQ(Fingerprint({"a", "bc"}), Fingerprint({"a", "bc"}));
  EXPECT_NE(Fingerprint({"a", "bc"}), Fingerprint({"ab", "c"}));  // length-prefixed
  EXPECT_NE(Fingerprint({"a"}), Fingerprint({"a", ""}));
  EXPECT_EQ(Fingerprint({"x"}).size(), 32u);
}

TEST(Fingerprint, OfAChangeCoversWhatItDoesNotWhenItWasSent) {
  const ChangeInput change = Change(ChangeType::kUpdated, R"({"a":1})", 3, kT);
  ChangeInput later = change;
  later.timestamp = kT + 50;  // a retry sent later is the same change
  EXPECT_EQ(ChangeFingerprint(change), ChangeFingerprint(later));
  ChangeInput other_data = change;
  other_data.data = R"({"a":2})";
  ChangeInput other_base = change;
  other_base.base_version = 4;
  ChangeInput other_type = change;
  other_type.type = ChangeType::kCreated;
  ChangeInput other_entity = change;
  other_entity.entity_id = "n2";
  for (const ChangeInput& other : {other_data, other_base, other_type, other_entity}) {
    EXPECT_NE(ChangeFingerprint(change), ChangeFingerprint(other));
  }
}

TEST(AdmittedTimestamp, ClampsOnlyTimesBeyondTheAllowedSkew) {
  EXPECT_EQ(AdmittedTimestamp(kT + 500, kT, 1000), kT + 500);
  EXPECT_EQ(AdmittedTimestamp(kT + 1000, kT, 1000), kT + 1000);
  EXPECT_EQ(AdmittedTimestamp(kT + 1001, kT, 1000), kT);
  EXPECT_EQ(AdmittedTimestamp(kT - 99'999, kT, 1000), kT - 99'999);  // the past is left alone
}

// ---- detection

TEST(DetectConflict, NoneOnANewEntityOrOnTheSameDevicesOwnChanges) {
  const ChangeInput change = Change(ChangeType::kUpdated, R"({"a":1})", 1, kT);
  EXPECT_FALSE(DetectConflict(change, EntityRow{}, "phone", {}, kTolerance).conflict);
  const EntityRow own = Entity(R"({"a":0})", 5, "phone", kT + 9000);
  EXPECT_FALSE(NeedsServerChanges(change, own, "phone"));
  EXPECT_FALSE(DetectConflict(change, own, "phone", {}, kTolerance).conflict);
}

TEST(DetectConflict, WithABaseVersionAskForTheLogAndConflictOnAnotherDevicesChange) {
  const ChangeInput change = Change(ChangeType::kUpdated, R"({"a":1})", 2, kT);
  const EntityRow entity = Entity(R"({"a":0})", 4, "laptop", kT - 5000);
  EXPECT_TRUE(NeedsServerChanges(change, entity, "phone"));
  const ConflictCheck none = DetectConflict(change, entity, "phone", {}, kTolerance);
  EXPECT_FALSE(none.conflict);  // versions after the base were all the phone's own
  const ConflictCheck check =
      DetectConflict(change, entity, "phone", {Logged(ChangeType::kUpdated, R"({"a":0})", kT - 5000)}, kTolerance);
  EXPECT_TRUE(check.conflict);
  EXPECT_FALSE(check.server_whole_entity);
  EXPECT_EQ(check.reason, "changed on the server after baseVersion 2 by another device");
  const ChangeInput current = Change(ChangeType::kUpdated, R"({"a":1})", 4, kT);
  EXPECT_FALSE(NeedsServerChanges(current, entity, "phone"));
  EXPECT_FALSE(DetectConflict(current, entity, "phone", {}, kTolerance).conflict);
}

TEST(DetectConflict, ACreateOrDeleteSinceTheBaseIsAWholeEntityChange) {
  const ChangeInput change = Change(ChangeType::kUpdated, R"({"a":1})", 1, kT);
  const EntityRow entity = Entity(R"({"a":0})", 3, "laptop", kT);
  const ConflictCheck check = DetectConflict(
      change, entity, "phone",
      {Logged(ChangeType::kUpdated, R"({"b":1})", kT), Logged(ChangeType::kCreated, R"({"a":0})", kT)}, kTolerance);
  EXPECT_TRUE(check.server_whole_entity);
}

TEST(DetectConflict, WithoutABaseVersionTheServersCopyWinsTiesWithinTheTolerance) {
  const EntityRow entity = Entity(R"({"a":0})", 3, "laptop", kT);
  EXPECT_TRUE(DetectConflict(Change(ChangeType::kUpdated, R"({"a":1})", std::nullopt, kT + kTolerance), entity,
                             "phone", {}, kTolerance)
                  .conflict);
  EXPECT_FALSE(DetectConflict(Change(ChangeType::kUpdated, R"({"a":1})", std::nullopt, kT + kTolerance + 1),
                              entity, "phone", {}, kTolerance)
                   .conflict);
}

TEST(DetectConflict, SaysWhenTheEntityWasDeletedOnTheServer) {
  const EntityRow deleted = Entity(R"({"a":0})", 3, "laptop", kT, /*deleted=*/true);
  const ConflictCheck update =
      DetectConflict(Change(ChangeType::kUpdated, R"({"a":1})", std::nullopt, kT), deleted, "phone", {}, kTolerance);
  EXPECT_EQ(update.reason, "deleted on the server by another device");
  const ConflictCheck remove =
      DetectConflict(Change(ChangeType::kDeleted, std::nullopt, std::nullopt, kT), deleted, "phone", {}, kTolerance);
  EXPECT_NE(remove.reason, "deleted on the server by another device");
}

// ---- the five strategies

TEST_F(Decisions, ServerWinsAndClientWins) {
  const EntityRow entity = Entity(R"({"a":0})", 3, "laptop", kT);
  const std::vector<ServerChange> since = {Logged(ChangeType::kUpdated, R"({"a":0})", kT)};
  ChangeInput change = Change(ChangeType::kUpdated, R"({"a":1})", 1, kT + 5000);
  const ConflictDecision server = Decide(ConflictStrategy::kServerWins, &change, entity, since);
  EXPECT_FALSE(server.apply);
  EXPECT_EQ(server.winner, "server");  // though the change is newer
  const ConflictDecision client = Decide(ConflictStrategy::kClientWins, &change, entity, since);
  EXPECT_TRUE(client.apply);
  EXPECT_EQ(client.winner, "client");
  EXPECT_EQ(change.data, R"({"a":1})");
}

TEST_F(Decisions, NewestWinsComparesTimesBeyondTheTolerance) {
  const EntityRow entity = Entity(R"({"a":0})", 3, "laptop", kT);
  const std::vector<ServerChange> since = {Logged(ChangeType::kUpdated, R"({"a":0})", kT)};
  ChangeInput newer = Change(ChangeType::kUpdated, R"({"a":1})", 1, kT + kTolerance + 1);
  EXPECT_EQ(Decide(ConflictStrategy::kNewestWins, &newer, entity, since).winner, "client");
  ChangeInput tie = Change(ChangeType::kUpdated, R"({"a":1})", 1, kT + kTolerance);
  const ConflictDecision decision = Decide(ConflictStrategy::kNewestWins, &tie, entity, since);
  EXPECT_EQ(decision.winner, "server");
  EXPECT_FALSE(decision.apply);
}

TEST_F(Decisions, MergeKeepsTheClientsFieldsTheServerDidNotTouchSinceTheBase) {
  const EntityRow entity = Entity(R"({"title":"s","body":"b","tags":[]})", 4, "laptop", kT + 9000);
  // The server changed title (later than the client) and tags (earlier than the client).
  const std::vector<ServerChange> since = {Logged(ChangeType::kUpdated, R"({"title":"s"})", kT + 9000),
                                           Logged(ChangeType::kUpdated, R"({"tags":[]})", kT - 9000)};
  ChangeInput change = Change(ChangeType::kUpdated, R"({"title":"c","tags":["x"],"body":"c"})", 2, kT);
  const ConflictDecision decision = Decide(ConflictStrategy::kMerge, &change, entity, since);
  EXPECT_TRUE(decision.apply);
  EXPECT_EQ(decision.winner, "merged");
  EXPECT_EQ(change.data, R"({"tags":["x"],"body":"c"})");  // title lost to the server's newer edit
}

TEST_F(Decisions, MergeWithEveryFieldLostIsAServerWin) {
  const EntityRow entity = Entity(R"({"title":"s"})", 4, "laptop", kT + 9000);
  ChangeInput change = Change(ChangeType::kUpdated, R"({"title":"c"})", 2, kT);
  const ConflictDecision decision =
      Decide(ConflictStrategy::kMerge, &change, entity, {Logged(ChangeType::kUpdated, R"({"title":"s"})", kT + 9000)});
  EXPECT_FALSE(decision.apply);
  EXPECT_EQ(decision.winner, "server");
}

TEST_F(Decisions, MergeWithoutABaseComparesWithEveryServerField) {
  const EntityRow entity = Entity(R"({"title":"s"})", 4, "laptop", kT);
  ChangeInput change = Change(ChangeType::kUpdated, R"({"title":"c","body":"c"})", std::nullopt, kT);
  const ConflictDecision decision = Decide(ConflictStrategy::kMerge, &change, entity, {});
  EXPECT_EQ(decision.winner, "merged");
  EXPECT_EQ(change.data, R"({"body":"c"})");
}

TEST_F(Decisions, MergeFallsBackToNewestWinsAgainstACreateOrADelete) {
  const EntityRow entity = Entity(R"({"title":"s"})", 4, "laptop", kT);
  ChangeInput change = Change(ChangeType::kUpdated, R"({"body":"c"})", 2, kT + 5000);
  const ConflictDecision decision =
      Decide(ConflictStrategy::kMerge, &change, entity, {Logged(ChangeType::kCreated, R"({"title":"s"})", kT)});
  EXPECT_EQ(decision.winner, "client");  // newest wins: no "merged" against a whole-entity change
  const EntityRow deleted = Entity(R"({"title":"s"})", 4, "laptop", kT + 9000, /*deleted=*/true);
  ChangeInput old = Change(ChangeType::kUpdated, R"({"body":"c"})", std::nullopt, kT);
  EXPECT_EQ(Decide(ConflictStrategy::kMerge, &old, deleted, {}).winner, "server");
}

TEST_F(Decisions, ManualKeepsTheConflictOpen) {
  const EntityRow entity = Entity(R"({"a":0})", 3, "laptop", kT);
  ChangeInput change = Change(ChangeType::kUpdated, R"({"a":1})", std::nullopt, kT);
  const ConflictDecision decision = Decide(ConflictStrategy::kManual, &change, entity, {});
  EXPECT_FALSE(decision.apply);
  EXPECT_EQ(decision.winner, "manual");
}

TEST_F(Decisions, CustomWithoutAResolverIsManualAndSaysWhy) {
  const EntityRow entity = Entity(R"({"a":0})", 3, "laptop", kT);
  ChangeInput change = Change(ChangeType::kUpdated, R"({"a":1})", std::nullopt, kT);
  const ConflictDecision decision = Decide(ConflictStrategy::kCustom, &change, entity, {});
  EXPECT_EQ(decision.winner, "manual");
  EXPECT_EQ(decision.reason_note, "; no resolver was given the conflict");
}

TEST_F(Decisions, CustomAsksTheResolverThenFollowsItsVerdictForThisVersionOnly) {
  const EntityRow entity = Entity(R"({"a":0,"b":0})", 3, "laptop", kT);
  ResolverExchange exchange;
  ChangeInput ask = Change(ChangeType::kUpdated, R"({"a":1})", std::nullopt, kT);
  EXPECT_TRUE(Decide(ConflictStrategy::kCustom, &ask, entity, {}, ResolverState{&exchange}).ask_resolver);

  CustomVerdict merged;
  merged.use = CustomVerdict::Use::kMerged;
  merged.server_version = 3;
  merged.data = R"({"a":1,"c":2})";
  exchange.verdicts["c1"] = merged;
  exchange.final_round = true;
  ChangeInput change = Change(ChangeType::kUpdated, R"({"a":1})", std::nullopt, kT);
  const ConflictDecision decision = Decide(ConflictStrategy::kCustom, &change, entity, {}, ResolverState{&exchange});
  EXPECT_TRUE(decision.apply);
  EXPECT_EQ(decision.winner, "merged");
  EXPECT_EQ(change.type, ChangeType::kUpdated);
  EXPECT_EQ(change.data, R"({"a":1,"c":2,"b":null})");  // the fields that differ, removed ones as null

  exchange.verdicts["c1"].server_version = 2;  // given for a version the entity has moved past
  ChangeInput stale = Change(ChangeType::kUpdated, R"({"a":1})", std::nullopt, kT);
  const ConflictDecision late = Decide(ConflictStrategy::kCustom, &stale, entity, {}, ResolverState{&exchange});
  EXPECT_EQ(late.winner, "manual");
  EXPECT_EQ(late.reason_note, "; the entity kept changing while the resolver decided");
}

TEST(ValidateVerdicts, MergedDataOutsideTheLimitsLeavesTheConflictToAPerson) {
  simdjson::ondemand::parser parser;
  ResolverExchange exchange;
  CustomVerdict good;
  good.use = CustomVerdict::Use::kMerged;
  good.data = R"({ "a" : 1 })";
  CustomVerdict not_object = good;
  not_object.data = "[1]";
  CustomVerdict missing = good;
  missing.data.reset();
  CustomVerdict too_deep = good;
  too_deep.data = R"({"a":{"b":{"c":1}}})";
  exchange.verdicts = {{"good", good}, {"array", not_object}, {"none", missing}, {"deep", too_deep}};
  JsonLimits limits;
  limits.max_depth = 2;
  ValidateVerdicts(parser, limits, &exchange);
  EXPECT_EQ(exchange.verdicts["good"].use, CustomVerdict::Use::kMerged);
  EXPECT_EQ(exchange.verdicts["good"].data, R"({"a":1})");  // canonical
  for (const char* refused : {"array", "none", "deep"}) {
    EXPECT_EQ(exchange.verdicts[refused].use, CustomVerdict::Use::kManual) << refused;
    EXPECT_FALSE(exchange.verdicts[refused].data.has_value()) << refused;
    EXPECT_EQ(exchange.verdicts[refused].note.rfind("the resolver's merged data was refused: ", 0), 0u) << refused;
  }
}

// ---- what a write stores

TEST(PlanWrite, UpdatedSetsFieldsAndDeletedKeepsTheLastStateForARevival) {
  simdjson::ondemand::parser parser;
  const EntityRow entity = Entity(R"({"a":1,"b":1})", 2, "laptop", kT);
  Result<EntityWrite> update =
      PlanWrite(parser, Change(ChangeType::kUpdated, R"({"b":2})", 2, kT), R"({"b":2})", entity, JsonLimits{});
  ASSERT_TRUE(IsOk(update));
  EXPECT_EQ(update.value().document, R"({"a":1,"b":2})");
  EXPECT_EQ(update.value().logged_type, ChangeType::kUpdated);
  EXPECT_EQ(update.value().logged_data, R"({"b":2})");
  Result<EntityWrite> remove =
      PlanWrite(parser, Change(ChangeType::kDeleted, std::nullopt, 2, kT), std::nullopt, entity, JsonLimits{});
  ASSERT_TRUE(IsOk(remove));
  EXPECT_TRUE(remove.value().deleted);
  EXPECT_EQ(remove.value().document, R"({"a":1,"b":1})");
  EXPECT_FALSE(remove.value().logged_data.has_value());
}

TEST(PlanWrite, AnUpdateThatRevivesADeletedEntityIsLoggedAsTheWholeDocument) {
  simdjson::ondemand::parser parser;
  const EntityRow deleted = Entity(R"({"a":1})", 3, "laptop", kT, /*deleted=*/true);
  Result<EntityWrite> revive =
      PlanWrite(parser, Change(ChangeType::kUpdated, R"({"b":2})", 2, kT), R"({"b":2})", deleted, JsonLimits{});
  ASSERT_TRUE(IsOk(revive));
  EXPECT_FALSE(revive.value().deleted);
  EXPECT_EQ(revive.value().logged_type, ChangeType::kCreated);
  EXPECT_EQ(revive.value().logged_data, R"({"a":1,"b":2})");
}

TEST(PlanWrite, RefusesADocumentTheMergeWouldMakeTooLarge) {
  simdjson::ondemand::parser parser;
  JsonLimits limits;
  limits.max_document_bytes = 16;
  const EntityRow entity = Entity(R"({"a":"0123"})", 2, "laptop", kT);
  Result<EntityWrite> grown =
      PlanWrite(parser, Change(ChangeType::kUpdated, R"({"b":"4567"})", 2, kT), R"({"b":"4567"})", entity, limits);
  EXPECT_TRUE(HasCode(grown, StatusCode::kLimitExceeded));
  EXPECT_NE(grown.status().message().find("note/n1 23 bytes, over the limit of 16"), std::string::npos);
  // A delete stores nothing new, whatever the last state's size.
  limits.max_document_bytes = 4;
  EXPECT_TRUE(IsOk(PlanWrite(parser, Change(ChangeType::kDeleted, std::nullopt, 2, kT), std::nullopt, entity, limits)));
}

TEST(HistoryFold, RebuildsAStateFromItsLog) {
  simdjson::ondemand::parser parser;
  HistoryFold fold;
  ASSERT_TRUE(IsOk(fold.Add(parser, ChangeType::kCreated, R"({"a":1})")));
  ASSERT_TRUE(IsOk(fold.Add(parser, ChangeType::kUpdated, R"({"b":2})")));
  EXPECT_EQ(fold.state(), R"({"a":1,"b":2})");
  ASSERT_TRUE(IsOk(fold.Add(parser, ChangeType::kDeleted, std::nullopt)));
  EXPECT_FALSE(fold.state().has_value());
  ASSERT_TRUE(IsOk(fold.Add(parser, ChangeType::kUpdated, R"({"c":3})")));  // an update after a delete starts over
  EXPECT_EQ(fold.state(), R"({"c":3})");
}

TEST(PlanResolution, MergedReplacesTheServersFieldsAndTheClientsRevivesADeletedEntity) {
  simdjson::ondemand::parser parser;
  const EntityRow live = Entity(R"({"a":1,"b":1})", 3, "laptop", kT);
  ChangeInput merged = Change(ChangeType::kUpdated, R"({"a":2})", 1, kT);
  ASSERT_TRUE(IsOk(PlanResolution(parser, "merged", std::string(R"({"a":3})"), live, &merged)));
  EXPECT_EQ(merged.type, ChangeType::kUpdated);
  EXPECT_EQ(merged.data, R"({"a":3,"b":null})");

  const EntityRow deleted = Entity(R"({"a":1})", 3, "laptop", kT, /*deleted=*/true);
  ChangeInput client = Change(ChangeType::kUpdated, R"({"b":2})", 1, kT);
  ASSERT_TRUE(IsOk(PlanResolution(parser, "client", std::nullopt, deleted, &client)));
  EXPECT_EQ(client.type, ChangeType::kCreated);
  EXPECT_EQ(client.data, R"({"a":1,"b":2})");
}

// ---- EncodeCompatRecord: the time fields of a record sent to the older designs' clients

constexpr int64_t kReceived = 1760788800000;  // 2025-10-18T12:00:00Z
constexpr int64_t kSkew = 60000;

std::string Encode(const std::string& data, int64_t committed, int64_t admitted) {
  simdjson::ondemand::parser scratch;
  Result<std::string> record = EncodeCompatRecord(scratch, CompatOptions{}, "customers", "c1", std::string_view(data),
                                                  /*deleted=*/false, CompatRecordTimes{committed, admitted, kSkew});
  EXPECT_TRUE(IsOk(record));
  return record.ok() ? record.value() : "";
}

TEST(EncodeCompatRecord, AClampedTimeIsSentAsReceivedUnderItsOwnFieldAndType) {
  EXPECT_EQ(Encode(R"({"id":"c1","updated_at":"9999-12-31T00:00:00Z","n":1})", kReceived + 5, kReceived),
            R"({"id":"c1","updated_at":"2025-10-18T12:00:00.000Z","n":1})");
  EXPECT_EQ(Encode(R"({"id":"c1","updatedAt":253402214400000})", kReceived + 5, kReceived),
            R"({"id":"c1","updatedAt":1760788800000})");
}

TEST(EncodeCompatRecord, AnAdmittedTimeStaysAsPushedHoweverFarTheCommitCounterRan) {
  // After a bulk import the commit counter (1 ms per write) can run minutes ahead of the clock:
  // a time the server admitted is still sent as pushed.
  EXPECT_EQ(Encode(R"({"id":"c1","updated_at":"2025-10-18T12:00:30Z"})", kReceived + 600000, kReceived + 30000),
            R"({"id":"c1","updated_at":"2025-10-18T12:00:30Z"})");
}

TEST(EncodeCompatRecord, ARecordWithoutATimeGetsTheCommitTime) {
  EXPECT_EQ(Encode(R"({"id":"c1","n":1})", kReceived, kReceived - 1000),
            R"({"id":"c1","updated_at":"2025-10-18T12:00:00.000Z","n":1})");
}

}  // namespace
}  // namespace deltasync
