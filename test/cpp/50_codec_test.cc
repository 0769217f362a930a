// 50: decoding change records (wire and legacy shapes), encoding queue rows
// back to JSON, ISO 8601 parsing.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "core/change_codec.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;

constexpr const char* kEntityTypeExpected = "a string matching [A-Za-z0-9_.-]{1,64}";

class CodecTest : public ::testing::Test {
 protected:
  Status One(const std::string& json, ChangeInput* out = nullptr) {
    ChangeInput scratch;
    return decoder_.DecodeOne(json, "change", out ? out : &scratch);
  }
  Status Wire(const std::string& json, std::vector<ChangeInput>* out = nullptr) {
    std::vector<ChangeInput> scratch;
    return decoder_.DecodeArray(json, DecodeMode::kWire, "changes", out ? out : &scratch, nullptr);
  }
  Status Legacy(const std::string& json, std::vector<ChangeInput>* out, size_t* skipped) {
    return decoder_.DecodeArray(json, DecodeMode::kLegacy, "records", out, skipped);
  }

  ChangeDecoder decoder_;
};

// A message of the one shared shape, naming `path`.
::testing::AssertionResult IsExpectedError(const Status& status, const std::string& path) {
  if (status.code() != StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "not INVALID_ARGUMENT: " << status.ToString();
  }
  const std::regex shape("^Expected .+ for " + std::regex_replace(path, std::regex(R"([\[\].])"), R"(\$&)") +
                         " but received .+$");
  if (!std::regex_match(status.message(), shape)) {
    return ::testing::AssertionFailure() << "message does not name " << path << ": " << status.message();
  }
  return ::testing::AssertionSuccess();
}

const char* const kValidWire =
    R"({"changeId":"c-1","type":"CREATED","entityType":"logbook_entry","entityId":"e1",)"
    R"("data":{ "b" : 1, "a" : [ true , null ] },"baseVersion":12,"timestamp":1731000000000,)"
    R"("tenantId":"t1","userId":"u1"})";

// ---- Wire mode

TEST_F(CodecTest, DecodesTheWireShape) {
  ChangeInput change;
  ASSERT_TRUE(IsOk(One(kValidWire, &change)));
  EXPECT_EQ(change.change_id, "c-1");
  EXPECT_EQ(change.type, ChangeType::kCreated);
  EXPECT_EQ(change.entity_type, "logbook_entry");
  EXPECT_EQ(change.entity_id, "e1");
  EXPECT_EQ(change.data, R"({"b":1,"a":[true,null]})");  // canonical, order kept
  EXPECT_EQ(change.base_version, 12);
  EXPECT_EQ(change.timestamp, INT64_C(1731000000000));
  EXPECT_EQ(change.tenant_id, "t1");
  EXPECT_EQ(change.user_id, "u1");
  EXPECT_EQ(change.retry_count, 0);
  EXPECT_EQ(change.last_error, std::nullopt);
}

TEST_F(CodecTest, OptionalWireFieldsMayBeAbsentOrNull) {
  ChangeInput change;
  ASSERT_TRUE(IsOk(One(R"({"type":"UPDATED","entityType":"t","entityId":"1","data":{"x":1},)"
                       R"("baseVersion":null,"tenantId":null,"userId":null})",
                       &change)));
  EXPECT_EQ(change.change_id, std::nullopt);
  EXPECT_EQ(change.type, ChangeType::kUpdated);
  EXPECT_EQ(change.base_version, std::nullopt);
  EXPECT_EQ(change.timestamp, std::nullopt);
  EXPECT_EQ(change.tenant_id, std::nullopt);
  EXPECT_EQ(change.user_id, std::nullopt);
}

TEST_F(CodecTest, DeletedNeedsNoData) {
  ChangeInput change;
  ASSERT_TRUE(IsOk(One(R"({"type":"DELETED","entityType":"t","entityId":"1"})", &change)));
  EXPECT_EQ(change.type, ChangeType::kDeleted);
  EXPECT_EQ(change.data, std::nullopt);
  ASSERT_TRUE(IsOk(One(R"({"type":"DELETED","entityType":"t","entityId":"1","data":null})", &change)));
}

TEST_F(CodecTest, CreatedAndUpdatedNeedData) {
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"CREATED","entityType":"t","entityId":"1"})"), "change.data"));
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"UPDATED","entityType":"t","entityId":"1","data":null})"),
                              "change.data"));
}

TEST_F(CodecTest, ArrayErrorsNameTheElementAndField) {
  const std::string json =
      R"([{"type":"CREATED","entityType":"a","entityId":"1","data":{}},)"
      R"( {"type":"UPDATED","entityType":"b","entityId":"2","data":{"x":1}},)"
      R"( {"type":"DELETED","entityType":42,"entityId":"3"}])";
  Status status = Wire(json);
  EXPECT_TRUE(IsExpectedError(status, "changes[2].entityType"));
  EXPECT_EQ(status.message(), std::string("Expected ") + kEntityTypeExpected +
                                  " for changes[2].entityType but received 42 of type number");
}

TEST_F(CodecTest, EntityTypeMustMatchThePattern) {
  Status status = One(R"({"type":"DELETED","entityType":"bad type!","entityId":"1"})");
  EXPECT_TRUE(IsExpectedError(status, "change.entityType"));
  EXPECT_NE(status.message().find("but received \"bad type!\" of type string"), std::string::npos)
      << status.message();
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"DELETED","entityType":"","entityId":"1"})"), "change.entityType"));
  const std::string long_type(65, 'a');
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"DELETED","entityType":")" + long_type + R"(","entityId":"1"})"),
                              "change.entityType"));
  const std::string max_type(64, 'a');
  EXPECT_TRUE(IsOk(One(R"({"type":"DELETED","entityType":")" + max_type + R"(","entityId":"1"})")));
  EXPECT_TRUE(IsOk(One(R"({"type":"DELETED","entityType":"A.b-c_9","entityId":"1"})")));
}

TEST(IsValidEntityType, Pattern) {
  EXPECT_TRUE(IsValidEntityType("logbook_entry"));
  EXPECT_TRUE(IsValidEntityType("A.b-c_9"));
  EXPECT_TRUE(IsValidEntityType(std::string(64, 'z')));
  EXPECT_FALSE(IsValidEntityType(""));
  EXPECT_FALSE(IsValidEntityType(std::string(65, 'z')));
  EXPECT_FALSE(IsValidEntityType("a b"));
  EXPECT_FALSE(IsValidEntityType("a/b"));
  EXPECT_FALSE(IsValidEntityType("é"));
  EXPECT_FALSE(IsValidEntityType(std::string("a\0b", 3)));
}

TEST_F(CodecTest, EntityIdIsANonEmptyStringOfAtMost256Bytes) {
  auto with_id = [](const std::string& id_json) {
    return R"({"type":"DELETED","entityType":"t","entityId":)" + id_json + "}";
  };
  EXPECT_TRUE(IsOk(One(with_id("\"" + std::string(256, 'x') + "\""))));
  EXPECT_TRUE(IsExpectedError(One(with_id("\"" + std::string(257, 'x') + "\"")), "change.entityId"));
  EXPECT_TRUE(IsExpectedError(One(with_id("\"\"")), "change.entityId"));
  EXPECT_TRUE(IsExpectedError(One(with_id("7")), "change.entityId"));  // numbers only in legacy mode
  EXPECT_TRUE(IsExpectedError(One(with_id("null")), "change.entityId"));
  EXPECT_TRUE(IsExpectedError(One(with_id("{}")), "change.entityId"));
}

TEST_F(CodecTest, TypeMustBeOneOfTheThreeNames) {
  Status status = One(R"({"type":"created","entityType":"t","entityId":"1","data":{}})");
  EXPECT_TRUE(IsExpectedError(status, "change.type"));
  EXPECT_NE(status.message().find("\"created\" of type string"), std::string::npos) << status.message();
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"create","entityType":"t","entityId":"1","data":{}})"),
                              "change.type"));
  EXPECT_TRUE(IsExpectedError(One(R"({"type":1,"entityType":"t","entityId":"1","data":{}})"), "change.type"));
}

TEST_F(CodecTest, MissingRequiredFieldsAreUndefined) {
  Status status = One(R"({"entityType":"t","entityId":"1","data":{}})");
  EXPECT_TRUE(IsExpectedError(status, "change.type"));
  EXPECT_NE(status.message().find("but received undefined"), std::string::npos);
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"DELETED","entityId":"1"})"), "change.entityType"));
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"DELETED","entityType":"t"})"), "change.entityId"));
  EXPECT_TRUE(IsExpectedError(Wire(R"([{"type":"DELETED","entityType":"t","entityId":"1"},{}])"),
                              "changes[1].type"));
}

TEST_F(CodecTest, UnknownFieldsAreRejectedInWireMode) {
  Status status = One(R"({"type":"DELETED","entityType":"t","entityId":"1","retryCount":2})");
  EXPECT_TRUE(HasCode(status, StatusCode::kInvalidArgument));
  EXPECT_NE(status.message().find("Unknown field \"retryCount\" in change"), std::string::npos) << status.message();
  Status in_array = Wire(R"([{"type":"DELETED","entityType":"t","entityId":"1"},)"
                         R"({"type":"DELETED","entityType":"t","entityId":"1","entity_type":"x"}])");
  EXPECT_NE(in_array.message().find("Unknown field \"entity_type\" in changes[1]"), std::string::npos)
      << in_array.message();
  // snake_case and legacy spellings are legacy-only.
  EXPECT_FALSE(One(R"({"action":"create","entityType":"t","entityId":"1","data":{}})").ok());
  EXPECT_FALSE(One(R"({"type":"CREATED","entityType":"t","entityId":"1","payload_json":"{}"})").ok());
}

TEST_F(CodecTest, DataMustBeAnObject) {
  Status status = One(R"({"type":"CREATED","entityType":"t","entityId":"1","data":[1]})");
  EXPECT_TRUE(IsExpectedError(status, "change.data"));
  EXPECT_NE(status.message().find("but received an array"), std::string::npos) << status.message();
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"CREATED","entityType":"t","entityId":"1","data":"{}"})"),
                              "change.data"));
  EXPECT_TRUE(IsExpectedError(One(R"({"type":"CREATED","entityType":"t","entityId":"1","data":3})"),
                              "change.data"));
}

TEST_F(CodecTest, DataIsValidatedWithItsPath) {
  Status big = One(R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"n":[0,1e400]}})");
  EXPECT_TRUE(HasCode(big, StatusCode::kInvalidArgument));
  EXPECT_NE(big.message().find("change.data.n[1]"), std::string::npos) << big.message();
  Status dup = Wire(R"([{"type":"CREATED","entityType":"t","entityId":"1","data":{"a":1,"a":2}}])");
  EXPECT_NE(dup.message().find("changes[0].data"), std::string::npos) << dup.message();
  EXPECT_FALSE(One(R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"s":"\ud800"}})").ok());
  EXPECT_FALSE(One(R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"n":9007199254740993}})").ok());
  EXPECT_TRUE(IsOk(One(R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"n":9007199254740992}})")));
}

TEST(ChangeDecoderLimits, DepthAndSizeLimitsApplyToData) {
  JsonLimits limits;
  limits.max_depth = 2;
  limits.max_document_bytes = 32;
  ChangeDecoder decoder(limits);
  ChangeInput change;
  EXPECT_TRUE(IsOk(decoder.DecodeOne(R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"a":{"b":1}}})",
                                     "change", &change)));
  EXPECT_TRUE(HasCode(decoder.DecodeOne(
                          R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"a":{"b":[1]}}})",
                          "change", &change),
                      StatusCode::kLimitExceeded));
  ChangeInput large;
  EXPECT_TRUE(HasCode(decoder.DecodeOne(R"({"type":"CREATED","entityType":"t","entityId":"1","data":{"a":")" +
                                            std::string(40, 'x') + "\"}}",
                                        "change", &large),
                      StatusCode::kLimitExceeded));
}

TEST_F(CodecTest, BaseVersionAndTimestampRanges) {
  const std::string head = R"({"type":"DELETED","entityType":"t","entityId":"1",)";
  EXPECT_TRUE(IsExpectedError(One(head + R"("baseVersion":-1})"), "change.baseVersion"));
  EXPECT_TRUE(IsExpectedError(One(head + R"("baseVersion":1.5})"), "change.baseVersion"));
  EXPECT_TRUE(IsExpectedError(One(head + R"("baseVersion":"3"})"), "change.baseVersion"));
  EXPECT_TRUE(IsOk(One(head + R"("baseVersion":0})")));
  EXPECT_TRUE(IsExpectedError(One(head + R"("timestamp":-1})"), "change.timestamp"));
  EXPECT_TRUE(IsExpectedError(One(head + R"("timestamp":1.5})"), "change.timestamp"));
  EXPECT_TRUE(IsExpectedError(One(head + R"("timestamp":"2024-11-07T12:00:00Z"})"), "change.timestamp"));
  EXPECT_TRUE(IsExpectedError(One(head + R"("timestamp":1e300})"), "change.timestamp"));
  ChangeInput change;
  ASSERT_TRUE(IsOk(One(head + R"("timestamp":0})", &change)));
  EXPECT_EQ(change.timestamp, 0);
}

TEST_F(CodecTest, TenantAndUserAreStringsOrNull) {
  const std::string head = R"({"type":"DELETED","entityType":"t","entityId":"1",)";
  EXPECT_TRUE(IsExpectedError(One(head + R"("tenantId":5})"), "change.tenantId"));
  EXPECT_TRUE(IsExpectedError(One(head + R"("userId":""})"), "change.userId"));
}

TEST_F(CodecTest, MalformedAndWrongShapes) {
  EXPECT_TRUE(HasCode(One("{"), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(One(""), StatusCode::kInvalidArgument));
  EXPECT_TRUE(IsExpectedError(One("[]"), "change"));
  EXPECT_TRUE(HasCode(One(R"({"type":"DELETED","entityType":"t","entityId":"1"} [])"), StatusCode::kInvalidArgument));
  Status not_array = Wire(R"({"changes":[]})");
  EXPECT_TRUE(IsExpectedError(not_array, "changes"));
  Status element = Wire(R"([{"type":"DELETED","entityType":"t","entityId":"1"}, 5])");
  EXPECT_TRUE(IsExpectedError(element, "changes[1]"));
  EXPECT_NE(element.message().find("5 of type number"), std::string::npos) << element.message();
  EXPECT_TRUE(HasCode(Wire("[1,"), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(Wire(std::string("[{\"type\":\"DELETED\",\"entityType\":\"t\",\"entityId\":\"\xff\"}]")),
                      StatusCode::kInvalidArgument));
}

TEST_F(CodecTest, EmptyArrayDecodesToNothing) {
  std::vector<ChangeInput> out;
  ASSERT_TRUE(IsOk(Wire("[]", &out)));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(IsOk(Wire(" [ ] ", &out)));
  EXPECT_TRUE(out.empty());
}

TEST_F(CodecTest, OneDecoderDecodesManyDocuments) {
  for (int i = 0; i < 20; ++i) {
    std::vector<ChangeInput> out;
    const std::string id = "e" + std::to_string(i);
    ASSERT_TRUE(IsOk(Wire(R"([{"type":"UPDATED","entityType":"t","entityId":")" + id +
                              R"(","data":{"i":)" + std::to_string(i) + "}}]",
                          &out)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].entity_id, id);
    EXPECT_EQ(out[0].data, "{\"i\":" + std::to_string(i) + "}");
    if (i % 3 == 0) {
      EXPECT_FALSE(One("{oops").ok());  // an error in between does not poison the decoder
    }
  }
}

// ---- Legacy mode

TEST_F(CodecTest, LegacyAcceptsSnakeCaseOutboxRows) {
  const std::string rows = R"([
    {"id":1,"entity_type":"note","entity_id":"n1","action":"create","payload_json":"{\"title\":\"a\",\"n\":1}",
     "created_at":"2024-11-07T12:00:00Z","status":"pending","retry_count":2,"error_message":"boom","extra":1},
    {"id":2,"entity_type":"note","entity_id":"n2","action":"update","payload_json":"{\"x\":1}",
     "created_at":"2024-11-07T12:00:00.250+01:00","status":"synced","retry_count":0,"error_message":null},
    {"id":3,"entity_type":"note","entity_id":42,"action":"delete","payload_json":"{}",
     "created_at":1731000000000,"status":"failed","retry_count":5,"error_message":"gone"},
    {"change_id":"cid-4","id":4,"entity_type":"task","entity_id":"t1","action":"UPDATE",
     "payload_json":"{ \"done\" : true }","created_at":"2024-11-07"}
  ])";
  std::vector<ChangeInput> out;
  size_t skipped = 0;
  ASSERT_TRUE(IsOk(Legacy(rows, &out, &skipped)));
  EXPECT_EQ(skipped, 1u);  // status synced
  ASSERT_EQ(out.size(), 3u);

  EXPECT_EQ(out[0].change_id, "1");
  EXPECT_EQ(out[0].type, ChangeType::kCreated);
  EXPECT_EQ(out[0].entity_type, "note");
  EXPECT_EQ(out[0].entity_id, "n1");
  EXPECT_EQ(out[0].data, R"({"title":"a","n":1})");
  EXPECT_EQ(out[0].timestamp, INT64_C(1730980800000));
  EXPECT_EQ(out[0].retry_count, 2);
  EXPECT_EQ(out[0].last_error, "boom");

  EXPECT_EQ(out[1].change_id, "3");
  EXPECT_EQ(out[1].type, ChangeType::kDeleted);
  EXPECT_EQ(out[1].entity_id, "42");
  EXPECT_EQ(out[1].timestamp, INT64_C(1731000000000));
  EXPECT_EQ(out[1].retry_count, 5);
  EXPECT_EQ(out[1].last_error, "gone");

  EXPECT_EQ(out[2].change_id, "cid-4");  // change_id wins over id
  EXPECT_EQ(out[2].type, ChangeType::kUpdated);
  EXPECT_EQ(out[2].entity_type, "task");
  EXPECT_EQ(out[2].data, R"({"done":true})");
  EXPECT_EQ(out[2].timestamp, INT64_C(1730937600000));
  EXPECT_EQ(out[2].retry_count, 0);
}

TEST_F(CodecTest, LegacyDeleteRowsMayHaveANullPayload) {
  std::vector<ChangeInput> out;
  size_t skipped = 0;
  ASSERT_TRUE(IsOk(Legacy(R"([{"id":"d1","entity_type":"note","entity_id":"n1","action":"delete",)"
                          R"("payload_json":null,"created_at":"2024-11-07T12:00:00Z"}])",
                          &out, &skipped)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, ChangeType::kDeleted);
  EXPECT_EQ(out[0].data, std::nullopt);
}

TEST_F(CodecTest, LegacyAcceptsSyncV2Records) {
  const std::string records = R"([
    {"changeId":"c-1","type":"UPDATED","entityType":"task","entityId":"t1","data":{"done":true},
     "timestamp":1731000000000,"retryCount":3,"lastError":"HTTP 409"},
    {"changeId":"c-2","type":"CREATED","entityType":"task","entityId":"t2","data":{"title":"x"},
     "timestamp":1731000000001,"retryCount":0,"status":"synced"},
    {"changeId":"c-3","type":"DELETED","entityType":"task","entityId":"t3","data":null,"timestamp":5}
  ])";
  std::vector<ChangeInput> out;
  size_t skipped = 0;
  ASSERT_TRUE(IsOk(Legacy(records, &out, &skipped)));
  EXPECT_EQ(skipped, 1u);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].change_id, "c-1");
  EXPECT_EQ(out[0].type, ChangeType::kUpdated);
  EXPECT_EQ(out[0].entity_type, "task");
  EXPECT_EQ(out[0].entity_id, "t1");
  EXPECT_EQ(out[0].data, R"({"done":true})");
  EXPECT_EQ(out[0].timestamp, INT64_C(1731000000000));
  EXPECT_EQ(out[0].retry_count, 3);
  EXPECT_EQ(out[0].last_error, "HTTP 409");
  EXPECT_EQ(out[1].change_id, "c-3");
  EXPECT_EQ(out[1].type, ChangeType::kDeleted);
  EXPECT_EQ(out[1].timestamp, 5);
}

TEST_F(CodecTest, LegacyActionSpellings) {
  const std::pair<const char*, ChangeType> cases[] = {
      {"create", ChangeType::kCreated}, {"CREATE", ChangeType::kCreated}, {"insert", ChangeType::kCreated},
      {"created", ChangeType::kCreated}, {"update", ChangeType::kUpdated}, {"Upsert", ChangeType::kUpdated},
      {"UPDATED", ChangeType::kUpdated}, {"delete", ChangeType::kDeleted}, {"remove", ChangeType::kDeleted},
      {"DELETED", ChangeType::kDeleted},
  };
  for (const auto& [action, type] : cases) {
    std::vector<ChangeInput> out;
    size_t skipped = 0;
    ASSERT_TRUE(IsOk(Legacy(std::string(R"([{"id":1,"entity_type":"n","entity_id":"1","action":")") + action +
                                R"(","payload":{"a":1}}])",
                            &out, &skipped)))
        << action;
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].type, type) << action;
  }
  std::vector<ChangeInput> out;
  size_t skipped = 0;
  Status bad = Legacy(R"([{"id":1,"entity_type":"n","entity_id":"1","action":"move","payload":{}}])", &out, &skipped);
  EXPECT_TRUE(IsExpectedError(bad, "records[0].action"));
}

TEST_F(CodecTest, LegacyExplicitTimestampWinsOverCreatedAtInAnyOrder) {
  std::vector<ChangeInput> out;
  size_t skipped = 0;
  ASSERT_TRUE(IsOk(Legacy(R"([{"id":1,"entity_type":"n","entity_id":"1","action":"delete","timestamp":7,)"
                          R"("created_at":"2024-11-07T12:00:00Z"},)"
                          R"({"id":2,"entity_type":"n","entity_id":"1","action":"delete",)"
                          R"("createdAt":"2024-11-07T12:00:00Z","timestamp":8}])",
                          &out, &skipped)));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].timestamp, 7);
  EXPECT_EQ(out[1].timestamp, 8);
}

TEST_F(CodecTest, LegacyNeedsAnIdForIdempotence) {
  std::vector<ChangeInput> out;
  size_t skipped = 0;
  Status status = Legacy(R"([{"entity_type":"n","entity_id":"1","action":"delete"}])", &out, &skipped);
  EXPECT_TRUE(IsExpectedError(status, "records[0].changeId"));
}

TEST_F(CodecTest, LegacyStillValidatesWhatItReads) {
  std::vector<ChangeInput> out;
  size_t skipped = 0;
  EXPECT_TRUE(IsExpectedError(
      Legacy(R"([{"id":1,"entity_type":"bad type","entity_id":"1","action":"delete"}])", &out, &skipped),
      "records[0].entity_type"));
  EXPECT_TRUE(IsExpectedError(Legacy(R"([{"id":1,"entity_type":"n","entity_id":"1","action":"create",)"
                                     R"("payload_json":"[1,2]"}])",
                                     &out, &skipped),
                              "records[0].payload_json"));
  EXPECT_TRUE(IsExpectedError(Legacy(R"([{"id":1,"entity_type":"n","entity_id":"1","action":"create",)"
                                     R"("payload_json":"{not json"}])",
                                     &out, &skipped),
                              "records[0].payload_json"));
  EXPECT_FALSE(Legacy(R"([{"id":1,"entity_type":"n","entity_id":"1","action":"create",)"
                      R"("payload_json":"{\"a\":1,\"a\":2}"}])",
                      &out, &skipped)
                   .ok());
  EXPECT_TRUE(IsExpectedError(Legacy(R"([{"id":1,"entity_type":"n","entity_id":"1","action":"delete",)"
                                     R"("created_at":"yesterday"}])",
                                     &out, &skipped),
                              "records[0].created_at"));
  EXPECT_TRUE(IsExpectedError(Legacy(R"([{"id":1,"entity_type":"n","entity_id":"1","action":"delete",)"
                                     R"("retry_count":-1}])",
                                     &out, &skipped),
                              "records[0].retry_count"));
  EXPECT_TRUE(IsExpectedError(
      Legacy(R"([{"id":1,"entity_type":"n","entity_id":"1","action":"create"}])", &out, &skipped),
      "records[0].data"));
}

// ---- Encoding

TEST(ChangeJson, EncodesEveryFieldInCamelCase) {
  Change change;
  change.id = 7;
  change.change_id = "c\"1";
  change.tenant_id = "t";
  change.entity_type = "note";
  change.entity_id = "n\n1";
  change.type = ChangeType::kUpdated;
  change.data = R"({"a":1})";
  change.base_version = 3;
  change.timestamp = 1000;
  change.created_at = 1001;
  change.updated_at = 1002;
  change.status = ChangeStatus::kFailed;
  change.retry_count = 2;
  change.last_error = "bad";
  std::string out = "prefix";
  AppendChangeJson(change, &out);
  EXPECT_EQ(out,
            R"(prefix{"id":7,"changeId":"c\"1","type":"UPDATED","entityType":"note","entityId":"n\n1",)"
            R"("data":{"a":1},"baseVersion":3,"timestamp":1000,"tenantId":"t","userId":null,"status":"failed",)"
            R"("retryCount":2,"lastError":"bad","createdAt":1001,"updatedAt":1002,"syncedAt":null,)"
            R"("serverVersion":null})");
}

TEST(ChangeJson, ArraysAreValidJson) {
  EXPECT_EQ(ChangesToJson({}), "[]");
  Change a, b;
  a.change_id = "a";
  a.entity_type = "t";
  a.entity_id = "1";
  a.type = ChangeType::kDeleted;
  a.synced_at = 5;
  a.server_version = 9;
  a.status = ChangeStatus::kSynced;
  b = a;
  b.change_id = "b";
  const std::string json = ChangesToJson({a, b});
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  ASSERT_EQ(parser.iterate(padded).get(doc), simdjson::SUCCESS);
  size_t count = 0;
  simdjson::ondemand::array array;
  ASSERT_EQ(doc.get_array().get(array), simdjson::SUCCESS);
  for (auto element : array) {
    simdjson::ondemand::object object;
    ASSERT_EQ(element.get_object().get(object), simdjson::SUCCESS);
    int64_t server_version = 0;
    ASSERT_EQ(object["serverVersion"].get_int64().get(server_version), simdjson::SUCCESS);
    EXPECT_EQ(server_version, 9);
    ++count;
  }
  EXPECT_EQ(count, 2u);
  EXPECT_NE(json.find(R"("data":null)"), std::string::npos);
  EXPECT_NE(json.find(R"("syncedAt":5)"), std::string::npos);
}

TEST(ChangeJson, EncodedRecordsDecodeInLegacyMode) {
  // export() output fed back to importLegacy(): the unknown export-only fields are ignored.
  Change change;
  change.id = 1;
  change.change_id = "c-1";
  change.entity_type = "note";
  change.entity_id = "n1";
  change.type = ChangeType::kCreated;
  change.data = R"({"x":[1,2]})";
  change.timestamp = 1234;
  change.retry_count = 1;
  change.status = ChangeStatus::kPending;
  ChangeDecoder decoder;
  std::vector<ChangeInput> out;
  size_t skipped = 0;
  ASSERT_TRUE(IsOk(decoder.DecodeArray(ChangesToJson({change}), DecodeMode::kLegacy, "records", &out, &skipped)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].change_id, "c-1");
  EXPECT_EQ(out[0].data, change.data);
  EXPECT_EQ(out[0].timestamp, 1234);
  EXPECT_EQ(out[0].retry_count, 1);
}

TEST(ExpectedError, HasTheSharedShape) {
  Status status = ExpectedError("positive integer", "limit", "-1 of type number");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "Expected positive integer for limit but received -1 of type number");
}

// ---- ParseIso8601Ms

TEST(ParseIso8601Ms, AcceptedForms) {
  const int64_t noon = INT64_C(1730980800000);  // 2024-11-07T12:00:00Z
  EXPECT_EQ(ParseIso8601Ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseIso8601Ms("1970-01-01"), 0);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T12:00:00Z"), noon);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T12:00:00z"), noon);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T12:00:00"), noon);  // no zone: UTC
  EXPECT_EQ(ParseIso8601Ms("2024-11-07 12:00:00Z"), noon);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T12:00Z"), noon);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T12:00:00.123Z"), noon + 123);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T12:00:00.1Z"), noon + 100);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T12:00:00.12Z"), noon + 120);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T12:00:00.123456Z"), noon + 123);  // beyond ms: truncated
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T14:00:00+02:00"), noon);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T14:00:00.500+0200"), noon + 500);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07T07:30:00-04:30"), noon);
  EXPECT_EQ(ParseIso8601Ms("2024-11-07"), INT64_C(1730937600000));
  EXPECT_EQ(ParseIso8601Ms("2000-02-29T23:59:59Z"), INT64_C(951868799000));
  EXPECT_EQ(ParseIso8601Ms("1969-12-31T23:59:59Z"), -1000);
  EXPECT_EQ(ParseIso8601Ms("2024-01-01T00:00:00+14:00"), INT64_C(1704067200000) - 14 * 3600 * 1000);
}

TEST(ParseIso8601Ms, RejectedForms) {
  for (const char* text :
       {"", "2024", "2024-11", "2024-1-07", "24-11-07", "2024/11/07", "2024-13-01", "2024-00-10", "2024-11-00",
        "2024-11-32", "2024-11-07T", "2024-11-07T12", "2024-11-07T24:00:00Z", "2024-11-07T12:60:00Z",
        "2024-11-07T12:00:61Z", "2024-11-07T12:00:00.Z", "2024-11-07T12:00:00X", "2024-11-07T12:00:00Z junk",
        "2024-11-07T12:00:00+2", "2024-11-07x", "nonsense", "2024-11-07T1:00:00Z", "1731000000000"}) {
    EXPECT_EQ(ParseIso8601Ms(text), std::nullopt) << text;
  }
}

}  // namespace
}  // namespace deltasync
