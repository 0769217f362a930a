// 90: delta application: pull page decoding and validation, chunked application
// with the server cursor, local pending changes kept on top of pulled state,
// every conflict strategy, manual conflicts and their resolution, own-change
// echoes, and the rule that in-flight local changes are never touched.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/apply.h"
#include "core/page_layout.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::kTestStartMs;
using testing_util::Created;
using testing_util::Page;
using testing_util::QueryInt;
using testing_util::Remote;
using testing_util::StoreHarness;

// ---- DecodePullPage

Status Decode(const std::string& json, PullPage* page, JsonLimits limits = {}) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string input(json);
  return DecodePullPage(parser, input, limits, page);
}

Status DecodeError(const std::string& json, JsonLimits limits = {}) {
  PullPage page;
  return Decode(json, &page, limits);
}

TEST(DecodePullPage, ReadsASyncResponse) {
  const std::string json =
      R"({"applied":[{"changeId":"x","version":1}],"conflicts":[],"errors":[],"newChanges":[)"
      R"({"version":3,"changeId":"c3","type":"CREATED","entityType":"note","entityId":"n1",)"
      R"("data":{"title":"a","n":[1,{"x":null}]},"timestamp":1700000000123,"deviceId":"dev-b"},)"
      R"({"version":5,"changeId":"c5","type":"DELETED","entityType":"note","entityId":"n2","data":null,)"
      R"("timestamp":5,"deviceId":null,"extra":{"ignored":true}}],"latestServerVersion":9,"hasMore":true})";
  PullPage page;
  ASSERT_TRUE(IsOk(Decode(json, &page)));
  ASSERT_EQ(page.changes.size(), 2u);
  const RemoteChange& first = page.changes[0];
  EXPECT_EQ(first.version, 3);
  EXPECT_EQ(first.change_id, "c3");
  EXPECT_EQ(first.type, ChangeType::kCreated);
  EXPECT_EQ(first.entity_type, "note");
  EXPECT_EQ(first.entity_id, "n1");
  EXPECT_EQ(first.data, R"({"title":"a","n":[1,{"x":null}]})");
  EXPECT_EQ(first.timestamp, 1700000000123);
  EXPECT_EQ(first.device_id, "dev-b");
  const RemoteChange& second = page.changes[1];
  EXPECT_EQ(second.type, ChangeType::kDeleted);
  EXPECT_EQ(second.data, std::nullopt);
  EXPECT_EQ(second.device_id, std::nullopt);
  EXPECT_EQ(page.latest_server_version, 9);
  EXPECT_TRUE(page.has_more);
  EXPECT_EQ(page.bytes, json.size());
}

TEST(DecodePullPage, ReadsABareArrayAndEmptyPages) {
  PullPage page;
  ASSERT_TRUE(IsOk(Decode("[" + Remote(1, "UPDATED", "n1", R"({"a":1})") + "]", &page)));
  ASSERT_EQ(page.changes.size(), 1u);
  EXPECT_EQ(page.changes[0].type, ChangeType::kUpdated);
  EXPECT_EQ(page.changes[0].data, R"({"a":1})");
  EXPECT_EQ(page.latest_server_version, std::nullopt);
  EXPECT_FALSE(page.has_more);

  PullPage empty;
  ASSERT_TRUE(IsOk(Decode(R"({"newChanges":[],"latestServerVersion":0,"hasMore":false})", &empty)));
  EXPECT_TRUE(empty.changes.empty());
  EXPECT_EQ(empty.latest_server_version, 0);
  PullPage bare;
  ASSERT_TRUE(IsOk(Decode(" [ ] ", &bare)));
  EXPECT_TRUE(bare.changes.empty());
}

TEST(DecodePullPage, RejectsMalformedChangesNamingThem) {
  const std::string ok0 = Remote(1, "CREATED", "n1", R"({"a":1})");
  struct Case {
    std::string json;
    std::vector<std::string> message_parts;
  };
  const Case cases[] = {
      // Wrong types.
      {Page({ok0, R"({"version":"2","changeId":"c2","type":"CREATED","entityType":"note","entityId":"n","data":{}})"}),
       {"newChanges[1].version", "positive integer"}},
      {Page({R"({"version":0,"changeId":"c","type":"CREATED","entityType":"note","entityId":"n","data":{}})"}),
       {"newChanges[0].version"}},
      {Page({ok0, R"({"version":2,"changeId":7,"type":"CREATED","entityType":"note","entityId":"n","data":{}})"}),
       {"newChanges[1].changeId"}},
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"bad type","entityId":"n","data":{}})"}),
       {"newChanges[0].entityType", "(changeId c2)"}},
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note","entityId":5,"data":{}})"}),
       {"newChanges[0].entityId", "(changeId c2)"}},
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note","entityId":"n","data":[1]})"}),
       {"newChanges[0].data", "an object or null"}},
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note","entityId":"n","data":{},)"
             R"("timestamp":"yesterday"})"}),
       {"newChanges[0].timestamp"}},
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note","entityId":"n","data":{},)"
             R"("deviceId":3})"}),
       {"newChanges[0].deviceId"}},
      {Page({ok0, "42"}), {"newChanges[1]", "change object"}},
      // Unknown change type.
      {Page({ok0, R"({"version":2,"changeId":"c2","type":"MOVED","entityType":"note","entityId":"n","data":{}})"}),
       {"newChanges[1].type", "\"MOVED\"", "(changeId c2)"}},
      // Missing fields.
      {Page({R"({"changeId":"c2","type":"CREATED","entityType":"note","entityId":"n","data":{}})"}),
       {"newChanges[0].version", "undefined"}},
      {Page({ok0, R"({"version":2,"type":"CREATED","entityType":"note","entityId":"n","data":{}})"}),
       {"newChanges[1].changeId", "undefined"}},
      {Page({R"({"version":2,"changeId":"c2","entityType":"note","entityId":"n","data":{}})"}),
       {"newChanges[0].type", "undefined"}},
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityId":"n","data":{}})"}),
       {"newChanges[0].entityType", "undefined", "(changeId c2)"}},
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note","data":{}})"}),
       {"newChanges[0].entityId", "undefined"}},
      // Data is required unless the change is a delete.
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note","entityId":"n"})"}),
       {"newChanges[0].data", "(changeId c2)"}},
      {Page({R"({"version":2,"changeId":"c2","type":"UPDATED","entityType":"note","entityId":"n","data":null})"}),
       {"newChanges[0].data"}},
      // Duplicate keys and numbers JavaScript cannot hold.
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note","entityId":"n",)"
             R"("data":{"a":1,"a":2}})"}),
       {"newChanges[0].data"}},
      {Page({R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note","entityId":"n",)"
             R"("data":{"big":12345678901234567890123}})"}),
       {"newChanges[0].data"}},
      // Versions must increase.
      {Page({Remote(2, "CREATED", "a", "{}"), Remote(2, "CREATED", "b", "{}")}),
       {"newChanges[1].version", "increasing", "(changeId r2)"}},
      {Page({Remote(5, "CREATED", "a", "{}"), Remote(6, "CREATED", "b", "{}"), Remote(4, "CREATED", "c", "{}")}),
       {"newChanges[2].version", "4 follows 6"}},
      // The page itself.
      {R"({"newChanges":{}})", {"page.newChanges"}},
      {R"({"latestServerVersion":3})", {"page.newChanges", "undefined"}},
      {R"({"newChanges":[],"latestServerVersion":-1})", {"page.latestServerVersion"}},
      {R"({"newChanges":[],"latestServerVersion":"7"})", {"page.latestServerVersion"}},
      {R"({"newChanges":[],"hasMore":"yes"})", {"page.hasMore"}},
      {"42", {"pull page"}},
  };
  for (const Case& c : cases) {
    Status status = DecodeError(c.json);
    EXPECT_FALSE(status.ok()) << c.json;
    for (const std::string& part : c.message_parts) {
      EXPECT_NE(status.message().find(part), std::string::npos) << c.json << "\n -> " << status.message();
    }
  }
}

// Counting only: every change validated, none kept; the same errors as keeping them.
TEST(DecodePullPage, CountsWithoutKeepingChanges) {
  const std::string json =
      R"({"hasMore":false,"newChanges":[)" + Remote(1, "CREATED", "a", R"({"x":1})") + "," +
      Remote(2, "UPDATED", "a", R"({"x":2})") + "," + Remote(3, "DELETED", "a", "null") +
      R"(],"latestServerVersion":9,"headVersion":9})";
  simdjson::ondemand::parser parser;
  simdjson::padded_string input(json);
  PullPage page;
  ASSERT_TRUE(IsOk(DecodePullPage(parser, input, JsonLimits{}, &page, PageChanges::kCountOnly)));
  EXPECT_TRUE(page.changes.empty());
  EXPECT_EQ(page.ChangeCount(), 3u);
  EXPECT_EQ(page.latest_server_version, 9);
  EXPECT_EQ(page.head_version, 9);
  const std::string bad = "[" + Remote(1, "CREATED", "a", R"({"x":1})") + "," + Remote(2, "CREATED", "b", "[]") + "]";
  simdjson::padded_string bad_input(bad);
  PullPage counted;
  PullPage kept;
  const Status counting = DecodePullPage(parser, bad_input, JsonLimits{}, &counted, PageChanges::kCountOnly);
  const Status keeping = DecodePullPage(parser, bad_input, JsonLimits{}, &kept);
  EXPECT_FALSE(counting.ok());
  EXPECT_EQ(counting.ToString(), keeping.ToString());
}

// The reader gives the changes DecodePullPage keeps, a window at a time, whatever the fields
// around newChanges and however its key is written.
TEST(PageChangeReader, ReadsTheValidatedChangesInWindows) {
  std::vector<std::string> changes;
  for (int v = 1; v <= 5; ++v) changes.push_back(Remote(v, "CREATED", "n" + std::to_string(v), R"({"v":1})"));
  std::string list;
  for (const std::string& change : changes) list += (list.empty() ? "" : ",") + change;
  for (const std::string& json :
       {"[" + list + "]", R"({"applied":[],"latestServerVersion":5,"newChanges":[)" + list + R"(],"hasMore":false})",
        R"({"extra":{"newChanges":[]},"newChanges":[)" + list + "]}"}) {
    simdjson::ondemand::parser parser;
    simdjson::padded_string input(json);
    PullPage whole;
    ASSERT_TRUE(IsOk(DecodePullPage(parser, input, JsonLimits{}, &whole))) << json;
    PullPage page;
    PageLayout layout;
    ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, JsonLimits{}, &page, &layout)));
    ASSERT_EQ(page.ChangeCount(), 5u);
    PageChangeReader reader(parser, json, layout, JsonLimits{});
    std::vector<size_t> starts;
    std::vector<std::string> ids;
    for (int window = 0; window < 4; ++window) {
      ASSERT_TRUE(IsOk(reader.Next(2, &page)));
      starts.push_back(page.window_start);
      for (const RemoteChange& change : page.changes) ids.push_back(change.entity_id);
    }
    EXPECT_EQ(starts, (std::vector<size_t>{0, 2, 4, 5})) << json;
    EXPECT_EQ(ids, (std::vector<std::string>{"n1", "n2", "n3", "n4", "n5"})) << json;
    EXPECT_TRUE(page.changes.empty());
    EXPECT_EQ(whole.changes.size(), 5u);
    EXPECT_EQ(whole.changes[4].data, R"({"v":1})");
  }
}

// ---- ValidatePullPage and the layout it reads the page by

// A page of `count` changes with about `data_bytes` of data each: past the bytes of one
// validation window when large enough.
std::vector<std::string> ChangesOfSize(int count, size_t data_bytes) {
  std::vector<std::string> changes;
  const std::string filler(data_bytes, 'x');
  for (int v = 1; v <= count; ++v) {
    changes.push_back(Remote(v, "CREATED", "n" + std::to_string(v), R"({"f":")" + filler + R"("})"));
  }
  return changes;
}

// Every page, valid or not, gets from the windowed validation what it gets from the whole-page
// decoder: the same error, or the same fields and the same changes read back by the reader.
TEST(ValidatePullPage, AgreesWithDecodePullPageOnEveryPage) {
  const std::string c1 = Remote(1, "CREATED", "a", R"({"s":"a\"]},[{","t":"\\","u":"\\\"x","v":[{"w":"]"}]})");
  const std::string c2 = Remote(2, "UPDATED", "b\\\"]", R"({"x":[1,2,{"y":"}"}]})");
  const std::string c3 = Remote(3, "DELETED", "a", "null");
  std::vector<std::string> big = ChangesOfSize(3000, 500);  // about 2 MB: three validation windows
  std::vector<std::string> decreasing = big;
  decreasing[2500] = Remote(2499, "CREATED", "late", "{}");
  std::vector<std::string> malformed = big;
  malformed[2900] = R"({"version":2901,"changeId":"c","type":"CREATED","entityType":"note","entityId":"n","data":{"a":}})";
  std::vector<std::string> bad_utf8 = big;
  bad_utf8[2200] = Remote(2201, "CREATED", "n\xC3\x28", "{}");
  const std::vector<std::string> pages = {
      "[" + c1 + "," + c2 + "," + c3 + "]",
      Page({c1, c2, c3}, 9, true),
      " \n[ \t" + c1 + " ,\r\n " + c2 + " ] \n",
      "\xEF\xBB\xBF" + Page({c1}),
      R"({"applied":[{"changeId":"x","version":1}],"extra":{"newChanges":[1]},"newChanges":[)" + c1 + R"(],"headVersion":4})",
      R"({"new\u0043hanges":[)" + c1 + "]}",
      R"({"a\"b":{"c":"]"},"newChanges":[)" + c2 + "]}",
      Page(big, 3000),
      Page(decreasing),
      Page(malformed),
      Page(bad_utf8),
      R"({"newChanges":[)" + c1 + R"(],"newChanges":[]})",
      R"({"newChanges":{}})",
      "[" + c1 + ",]",
      "[" + c1 + ",," + c2 + "]",
      "[" + c1,
      "[" + c1 + "] x",
      "[" + c1 + "][]",
      "[1]",
      "[" + c1 + ",null]",
      R"({"hasMore":false})",
      "{}",
      "",
      "   ",
      R"({"newChanges":[],"hasMore":true})",
      Page({c1, c2}, 1),
      R"({"newChanges":[)" + c1 + R"(],"hasMore":"yes"})",
      R"({"newChanges":[)" + c1 + R"(],"latestServerVersion":5,"headVersion":4})",
      R"({"newChanges":[)" + c1 + R"(] "hasMore":false})",
      R"({"newChanges":[)" + c1 + R"(],})",
      R"({"newChanges":[)" + c1.substr(0, c1.size() - 1) + "]}",
      R"({"newChanges":[)" + c1 + R"(]})" + "\"",
  };
  for (const std::string& json : pages) {
    const std::string label = json.substr(0, 120);
    simdjson::ondemand::parser parser;
    simdjson::padded_string input(json);
    PullPage whole;
    const Status decoded = DecodePullPage(parser, input, JsonLimits{}, &whole);
    PullPage page;
    PageLayout layout;
    const Status validated = ValidatePullPage(parser, json, JsonLimits{}, &page, &layout);
    ASSERT_EQ(validated.ToString(), decoded.ToString()) << label;
    if (!decoded.ok()) continue;
    // A valid page is read in windows unless one of its keys is escaped.
    const bool escaped_key = json.rfind(R"({"new\u0043hanges")", 0) == 0 || json.rfind(R"({"a\"b")", 0) == 0;
    std::optional<PageLayout> scanned = ScanPageLayout(json);
    EXPECT_EQ(scanned.has_value(), !escaped_key) << label;
    PullPage windowed;
    if (scanned) {
      EXPECT_TRUE(IsOk(ValidatePullPageInWindows(parser, json, *scanned, JsonLimits{}, &windowed))) << label;
    }
    EXPECT_EQ(page.ChangeCount(), whole.changes.size()) << label;
    EXPECT_EQ(page.latest_server_version, whole.latest_server_version) << label;
    EXPECT_EQ(page.head_version, whole.head_version) << label;
    EXPECT_EQ(page.has_more, whole.has_more) << label;
    EXPECT_EQ(page.verdicts.size(), whole.verdicts.size()) << label;
    PageChangeReader reader(parser, json, layout, JsonLimits{});
    std::vector<RemoteChange> read;
    do {
      ASSERT_TRUE(IsOk(reader.Next(700, &page))) << label;
      for (RemoteChange& change : page.changes) read.push_back(std::move(change));
    } while (page.window_start + page.changes.size() < page.ChangeCount());
    ASSERT_EQ(read.size(), whole.changes.size()) << label;
    for (size_t i = 0; i < read.size(); ++i) {
      EXPECT_EQ(read[i].change_id, whole.changes[i].change_id) << label;
      EXPECT_EQ(read[i].entity_id, whole.changes[i].entity_id) << label;
      EXPECT_EQ(read[i].data, whole.changes[i].data) << label;
    }
  }
}

// The scan finds each change's bytes past strings full of quotes, brackets and backslashes, and
// agrees with the layout simdjson reads from the whole page.
TEST(ScanPageLayout, FindsEachChangeAsSimdjsonDoes) {
  const std::vector<std::string> changes = {
      Remote(1, "CREATED", "a", R"({"s":"a\"]},[{","t":"\\","u":"\\\\\"x\\\\","v":[{"w":"]"}]})"),
      Remote(2, "UPDATED", "b\\\"]", R"({"x":[1,2,{"y":"}"}],"z":-1.5e3,"t":true,"n":null})"),
      Remote(3, "DELETED", "a", "null")};
  const std::string json = "\xEF\xBB\xBF {\"k\":[\"]\",{\"a\":\"}\"}], \"newChanges\" : [ " + changes[0] + " ,\n" +
                           changes[1] + "," + changes[2] + "\t] , \"hasMore\":false }\n";
  std::optional<PageLayout> scanned = ScanPageLayout(json);
  ASSERT_TRUE(scanned.has_value());
  ASSERT_EQ(scanned->changes.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto [begin, end] = scanned->changes[i];
    EXPECT_EQ(json.substr(begin, end - begin), changes[i]);
  }
  EXPECT_EQ(scanned->Envelope(json), "\xEF\xBB\xBF {\"k\":[\"]\",{\"a\":\"}\"}], \"newChanges\" : [] , \"hasMore\":false }\n");
  simdjson::ondemand::parser parser;
  simdjson::padded_string input(json);
  PageLayout parsed;
  ASSERT_TRUE(IsOk(ParsePageLayout(parser, input, &parsed)));
  EXPECT_EQ(parsed.changes, scanned->changes);
  EXPECT_EQ(parsed.changes_open, scanned->changes_open);
  EXPECT_EQ(parsed.changes_close, scanned->changes_close);

  // What the scan leaves to the whole-page reader.
  for (const std::string& other : {std::string(R"({"new\u0043hanges":[]})"), std::string("[") + changes[0],
                                   std::string(R"({"newChanges":[],"newChanges":[]})"), std::string("{}"),
                                   std::string(R"({"a":"unterminated})"), std::string("[1 2]")}) {
    EXPECT_FALSE(ScanPageLayout(other).has_value()) << other;
  }
}

// Kept from validation, the changes are all there at once, and the reader has nothing more.
TEST(ValidatePullPage, KeepsTheChangesWhenAsked) {
  const std::string json = Page(ChangesOfSize(5, 10), 9);
  for (const std::string& page_json : {json, R"({"new\u0043hanges")" + json.substr(json.find(':'))}) {
    simdjson::ondemand::parser parser;
    PullPage page;
    PageLayout layout;
    ASSERT_TRUE(IsOk(ValidatePullPage(parser, page_json, JsonLimits{}, &page, &layout, PageChanges::kKeep)));
    ASSERT_EQ(page.changes.size(), 5u) << page_json;
    EXPECT_EQ(page.changes[4].entity_id, "n5");
    EXPECT_EQ(page.ChangeCount(), 5u);
    EXPECT_EQ(page.latest_server_version, 9);
    PageChangeReader reader(parser, page_json, layout, JsonLimits{});
    ASSERT_TRUE(IsOk(reader.Next(2, &page)));
    EXPECT_TRUE(page.changes.empty());
    EXPECT_EQ(page.window_start, 5u);
  }
}

// A window holds at most about a megabyte of changes, whatever count is asked for.
TEST(PageChangeReader, BoundsAWindowByItsBytes) {
  const std::string json = Page(ChangesOfSize(4, 600 * 1024));
  simdjson::ondemand::parser parser;
  PullPage page;
  PageLayout layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, JsonLimits{}, &page, &layout)));
  PageChangeReader reader(parser, json, layout, JsonLimits{});
  std::vector<size_t> sizes;
  do {
    ASSERT_TRUE(IsOk(reader.Next(1000, &page)));
    sizes.push_back(page.changes.size());
  } while (page.window_start + page.changes.size() < page.ChangeCount());
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 1, 1, 1}));
}

// Bytes changed after validation are found, and no change of that window is given out.
TEST(PageChangeReader, RefusesBytesThatChangedAfterValidation) {
  std::string json = Page(ChangesOfSize(6, 10));
  simdjson::ondemand::parser parser;
  PullPage page;
  PageLayout layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, JsonLimits{}, &page, &layout)));
  PageChangeReader reader(parser, json, layout, JsonLimits{});
  ASSERT_TRUE(IsOk(reader.Next(3, &page)));
  EXPECT_EQ(page.changes.size(), 3u);
  json[layout.changes[4].first + 1] = '[';  // the fifth change no longer parses
  Status changed = reader.Next(3, &page);
  EXPECT_TRUE(HasCode(changed, StatusCode::kInvalidArgument)) << changed.ToString();
  EXPECT_TRUE(page.changes.empty());
  json = Page(ChangesOfSize(6, 10));
  json.replace(json.find("\"version\":6"), 11, "\"version\":2");  // parses, but goes back in versions
  PageChangeReader again(parser, json, layout, JsonLimits{});
  PullPage fresh;
  ASSERT_TRUE(IsOk(again.Next(3, &fresh)));
  EXPECT_TRUE(HasCode(again.Next(3, &fresh), StatusCode::kInvalidArgument));
}

TEST(DecodePullPage, RejectsInvalidJsonAndInvalidUtf8) {
  for (const std::string& json : {std::string(R"({"newChanges":[)"), std::string("{\"newChanges\":[}"),
                                  std::string(""), std::string("nul"), std::string("{\"newChanges\":[\"abc]}")}) {
    Status status = DecodeError(json);
    EXPECT_TRUE(HasCode(status, StatusCode::kInvalidArgument)) << json;
  }
  // A syntax error inside a change is reported at that change.
  Status inside = DecodeError(Page({Remote(1, "CREATED", "a", "{}"),
                                    R"({"version":2,"changeId":"c2","type":"CREATED","entityType":"note",)"
                                    R"("entityId":"n","data":{"a":}})"}));
  EXPECT_TRUE(HasCode(inside, StatusCode::kInvalidArgument));
  EXPECT_NE(inside.message().find("newChanges[1]"), std::string::npos) << inside.message();

  // Invalid UTF-8 anywhere: the whole page is refused.
  const std::string bad_utf8 =
      Page({Remote(1, "CREATED", "a", "{\"t\":\"ok\"}"), Remote(2, "CREATED", "b", "{\"t\":\"\xC3\x28\"}")});
  Status utf8 = DecodeError(bad_utf8);
  EXPECT_TRUE(HasCode(utf8, StatusCode::kInvalidArgument)) << utf8.message();
  EXPECT_NE(utf8.message().find("UTF-8"), std::string::npos) << utf8.message();
  // ...and so is an escape that encodes a lone surrogate.
  Status surrogate = DecodeError(Page({Remote(1, "CREATED", "a", R"({"t":"\ud800"})")}));
  EXPECT_TRUE(HasCode(surrogate, StatusCode::kInvalidArgument));
  EXPECT_NE(surrogate.message().find("newChanges[0].data"), std::string::npos) << surrogate.message();
}

TEST(DecodePullPage, RejectsDataDeeperThanTheLimit) {
  JsonLimits limits;
  limits.max_depth = 4;
  // The limit applies to the document itself, wherever it sits in the page.
  const std::string shallow = Page({Remote(1, "CREATED", "n", R"({"a":{"b":[1]}})")});
  EXPECT_TRUE(IsOk(DecodeError(shallow, limits)));
  const std::string too_deep = R"({"a":{"b":{"c":{"d":{"e":{"f":{}}}}}}})";
  Status deep = DecodeError(Page({Remote(1, "CREATED", "n", "{}"), Remote(2, "CREATED", "n", too_deep)}), limits);
  EXPECT_FALSE(deep.ok());
  EXPECT_NE(deep.message().find("newChanges[1].data"), std::string::npos) << deep.message();
  EXPECT_NE(deep.message().find("(changeId r2)"), std::string::npos) << deep.message();

  // With the default limit (64), a hostile 10,000-deep document is an error, not a crash.
  std::string hostile = std::string(10000, '[') + std::string(10000, ']');
  Status default_limit = DecodeError(Page({Remote(1, "CREATED", "n", "{\"x\":" + hostile + "}")}));
  EXPECT_FALSE(default_limit.ok());
}

TEST(DecodePullPage, RejectsTrailingContent) {
  for (const std::string& json : {std::string(R"({"newChanges":[]} {})"), std::string("[] []"),
                                  std::string(R"({"newChanges":[]}x)")}) {
    Status status = DecodeError(json);
    EXPECT_TRUE(HasCode(status, StatusCode::kInvalidArgument)) << json;
  }
  Status status = DecodeError(R"({"newChanges":[]} {})");
  EXPECT_NE(status.message().find("Trailing content"), std::string::npos) << status.message();
  EXPECT_TRUE(IsOk(DecodeError("[]  \n\t")));  // whitespace is not content
}

// ---- ApplyChunk without local changes

class ApplyTest : public ::testing::Test {
 protected:
  StoreHarness h_;
};

TEST_F(ApplyTest, AppliesCreatedUpdatedAndDeleted) {
  ApplyResult result = h_.Pull(Page({Remote(1, "CREATED", "n1", R"({"a":1,"b":2})"),
                                     Remote(2, "UPDATED", "n1", R"({"b":3,"c":{"d":4}})"),
                                     Remote(3, "CREATED", "n2", R"({"x":1})"), Remote(4, "DELETED", "n2", std::nullopt),
                                     Remote(5, "UPDATED", "n3", R"({"only":"delta"})")},
                                    10));
  EXPECT_EQ(result.applied, 5);
  EXPECT_EQ(result.skipped, 0);
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_EQ(result.latest_server_version, 10);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":1,"b":3,"c":{"d":4}})");  // the delta merged onto the stored document
  EXPECT_EQ(h_.Visible("n2"), std::nullopt);
  EXPECT_EQ(h_.Visible("n3"), R"({"only":"delta"})");  // an update of an unknown entity creates it
  std::optional<StoredDocument> n1 = h_.WithMeta("n1");
  ASSERT_TRUE(n1);
  EXPECT_EQ(n1->meta.version, 2);
  EXPECT_FALSE(n1->meta.dirty);
  std::optional<StoredDocument> n2 = h_.WithMeta("n2");
  ASSERT_TRUE(n2);
  EXPECT_TRUE(n2->meta.deleted);
  EXPECT_EQ(n2->meta.version, 4);
  EXPECT_EQ(h_.Base("n1"), std::nullopt);
  EXPECT_TRUE(h_.Changes().empty());  // nothing pulled is queued for sending
  EXPECT_EQ(h_.Cursor(), 10);
}

TEST_F(ApplyTest, SkipsVersionsNotNewerThanTheDocuments) {
  h_.PullOne(Remote(5, "CREATED", "n1", R"({"a":5})"));
  ApplyResult result = h_.Pull(Page({Remote(3, "UPDATED", "n1", R"({"a":3})", kTestStartMs, "old-u"),
                                     Remote(4, "CREATED", "n1", R"({"a":4})", kTestStartMs, "old-c"),
                                     Remote(5, "DELETED", "n1", std::nullopt, kTestStartMs, "same-d")}));
  EXPECT_EQ(result.applied, 0);
  EXPECT_EQ(result.skipped, 3);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":5})");
  EXPECT_EQ(h_.WithMeta("n1")->meta.version, 5);

  result = h_.PullOne(Remote(6, "UPDATED", "n1", R"({"b":6})"));
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(h_.Visible("n1"), R"({"a":5,"b":6})");
}

TEST_F(ApplyTest, ApplyingTheSamePageTwiceSkipsEverything) {
  const std::string page = Page({Remote(1, "CREATED", "n1", R"({"a":1})"), Remote(2, "UPDATED", "n1", R"({"b":2})"),
                                 Remote(3, "CREATED", "n2", R"({"a":1})"), Remote(4, "DELETED", "n2", std::nullopt)},
                                4);
  ApplyResult first = h_.Pull(page);
  EXPECT_EQ(first.applied, 4);
  const std::string after_first = h_.Snapshot();
  h_.clock.Advance(1000);
  ApplyResult second = h_.Pull(page);
  EXPECT_EQ(second.applied, 0);
  EXPECT_EQ(second.skipped, 4);
  EXPECT_EQ(second.latest_server_version, 4);
  EXPECT_EQ(h_.Snapshot(), after_first);  // not even updated_at moved
}

TEST_F(ApplyTest, TheCursorFollowsEachChunkAndReachesLatestOnlyAtTheEnd) {
  simdjson::ondemand::parser parser;
  std::vector<std::string> changes;
  for (int v = 1; v <= 5; ++v) changes.push_back(Remote(v, "CREATED", "n" + std::to_string(v), "{}"));
  for (bool has_more : {false, true}) {
    StoreHarness h;
    simdjson::padded_string input(Page(changes, 20, has_more));
    PullPage page;
    ASSERT_TRUE(IsOk(DecodePullPage(parser, input, JsonLimits{}, &page)));
    ApplyResult result;
    EXPECT_EQ(h.Cursor(), 0);
    ASSERT_TRUE(IsOk(h.applier->ApplyChunk(page, 0, 2, &result)));
    EXPECT_EQ(h.Cursor(), 2);
    EXPECT_EQ(result.latest_server_version, 2);
    EXPECT_EQ(h.Visible("n3"), std::nullopt);
    ASSERT_TRUE(IsOk(h.applier->ApplyChunk(page, 2, 4, &result)));
    EXPECT_EQ(h.Cursor(), 4);
    ASSERT_TRUE(IsOk(h.applier->ApplyChunk(page, 4, 5, &result)));
    EXPECT_EQ(h.Cursor(), has_more ? 5 : 20) << has_more;
    EXPECT_EQ(result.latest_server_version, has_more ? 5 : 20);
    EXPECT_EQ(result.applied, 5);
  }
}

// A window's positions are the page's: the cursor follows each window and reaches
// latestServerVersion only at the page's end.
TEST_F(ApplyTest, AppliesAPageWindowByWindow) {
  std::vector<std::string> changes;
  for (int v = 1; v <= 5; ++v) changes.push_back(Remote(v, "CREATED", "n" + std::to_string(v), "{}"));
  simdjson::ondemand::parser parser;
  const std::string json = Page(changes, 20, false);
  PullPage page;
  PageLayout layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, JsonLimits{}, &page, &layout)));
  PageChangeReader reader(parser, json, layout, JsonLimits{});
  ApplyResult result;
  ASSERT_TRUE(IsOk(reader.Next(2, &page)));
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, 0, page.changes.size(), &result)));
  EXPECT_EQ(h_.Cursor(), 2);
  ASSERT_TRUE(IsOk(reader.Next(2, &page)));
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, 0, page.changes.size(), &result)));
  EXPECT_EQ(h_.Cursor(), 4);
  ASSERT_TRUE(IsOk(reader.Next(2, &page)));
  ASSERT_EQ(page.changes.size(), 1u);
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, 0, 1, &result)));
  EXPECT_EQ(h_.Cursor(), 20);
  EXPECT_EQ(result.applied, 5);
  EXPECT_EQ(h_.Visible("n5"), "{}");
}

TEST_F(ApplyTest, AChunkAskedToStopEarlyCommitsWhatItAppliedAndSaysWhereItEnded) {
  simdjson::ondemand::parser parser;
  std::vector<std::string> changes;
  for (int v = 1; v <= 10; ++v) changes.push_back(Remote(v, "CREATED", "n" + std::to_string(v), "{}"));
  simdjson::padded_string input(Page(changes, 20));
  PullPage page;
  ASSERT_TRUE(IsOk(DecodePullPage(parser, input, JsonLimits{}, &page)));
  ApplyResult result;
  int asked = 0;
  size_t reached = 0;
  // Asked only once 3 changes are in; says stop the second time it is asked.
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, 0, 10, &result, [&] { return ++asked == 2; }, 3, &reached)));
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(reached, 4u);
  EXPECT_EQ(h_.Cursor(), 4);
  EXPECT_EQ(result.applied, 4);
  EXPECT_NE(h_.Visible("n4"), std::nullopt);
  EXPECT_EQ(h_.Visible("n5"), std::nullopt);
  ASSERT_TRUE(IsOk(h_.applier->ApplyChunk(page, reached, 10, &result, [] { return false; }, 1, &reached)));
  EXPECT_EQ(reached, 10u);
  EXPECT_EQ(h_.Cursor(), 20) << "the page's end still moves the cursor to latestServerVersion";
  EXPECT_EQ(result.applied, 10);
}

TEST_F(ApplyTest, TheCursorNeverMovesBackAndAnEmptyPageCanAdvanceIt) {
  h_.Pull(Page({}, 7));
  EXPECT_EQ(h_.Cursor(), 7);
  ApplyResult result = h_.Pull(Page({Remote(3, "CREATED", "n1", "{}")}, 5));
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(result.latest_server_version, 7);
  EXPECT_EQ(h_.Cursor(), 7);
  h_.Pull(Page({Remote(8, "CREATED", "n3", "{}")}, 20, /*has_more=*/true));  // hasMore: up to its last change only
  EXPECT_EQ(h_.Cursor(), 8);
  ApplyResult refused;
  Status empty_with_more = h_.TryPull(Page({}, 30, /*has_more=*/true), &refused);  // would loop for ever
  EXPECT_EQ(empty_with_more.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(h_.Cursor(), 8);
  h_.Pull("[" + Remote(9, "CREATED", "n2", "{}") + "]");  // a bare array: up to its last change
  EXPECT_EQ(h_.Cursor(), 9);
}

TEST_F(ApplyTest, AFailingChunkChangesNothingAndKeepsTheCursor) {
  h_.Pull(Page({Remote(1, "CREATED", "n0", R"({"a":0})")}, 1));
  ASSERT_TRUE(IsOk(h_.db->Exec("CREATE TRIGGER boom BEFORE INSERT ON documents WHEN NEW.entity_id = 'bad' "
                               "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")));
  const std::string before = h_.Snapshot();
  ApplyResult result;
  Status status = h_.TryPull(Page({Remote(2, "UPDATED", "n0", R"({"a":2})"), Remote(3, "CREATED", "bad", "{}")}, 3),
                             &result);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("newChanges[1] (changeId r3)"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("injected failure"), std::string::npos) << status.message();
  EXPECT_EQ(h_.Snapshot(), before);
  EXPECT_EQ(h_.Cursor(), 1);
  EXPECT_FALSE(h_.db->InTransaction());
}

// ---- Local changes on top of pulled state, and conflicts

constexpr int64_t kLocalTime = kTestStartMs;  // the clock when the local edits are made

class ConflictTest : public ::testing::Test {
 protected:
  // A pulled document n1 = {"title":"a","body":"x"} at version 1, then a local edit.
  std::unique_ptr<StoreHarness> Setup(ConflictStrategy strategy, const std::string& local_patch) {
    auto h = std::make_unique<StoreHarness>(strategy);
    h->PullOne(Remote(1, "CREATED", "n1", R"({"title":"a","body":"x"})", kLocalTime - 10000));
    EXPECT_TRUE(IsOk(h->store->Patch("note", "n1", local_patch)));
    return h;
  }
  static std::vector<std::string> Data(const std::vector<Change>& changes) {
    std::vector<std::string> out;
    for (const Change& change : changes) {
      out.push_back(std::string(ChangeTypeName(change.type)) + " " + change.data.value_or("-") + " " +
                    ChangeStatusName(change.status));
    }
    return out;
  }
};

using Strings = std::vector<std::string>;

TEST_F(ConflictTest, LocalPendingChangesStayOnTopOfPulledState) {
  auto h = Setup(ConflictStrategy::kClientWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"body":"y"})", kLocalTime + 1000));
  EXPECT_EQ(result.applied, 1);
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"y"})");
  EXPECT_EQ(h->Base("n1"), R"({"title":"a","body":"y"})");  // the server state under the local edit
  std::optional<StoredDocument> doc = h->WithMeta("n1");
  EXPECT_EQ(doc->meta.version, 2);
  EXPECT_TRUE(doc->meta.dirty);
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "local");
  EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kClientWins);
  EXPECT_EQ(result.conflicts[0].change_id, "r2");
  EXPECT_EQ(result.conflicts[0].version, 2);
  EXPECT_EQ(result.conflicts[0].entity_id, "n1");

  // A later local edit still builds on the pulled state, and keeps the same base.
  ASSERT_TRUE(IsOk(h->store->Patch("note", "n1", R"({"n":1})")));
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"y","n":1})");
  EXPECT_EQ(h->Base("n1"), R"({"title":"a","body":"y"})");
}

TEST_F(ConflictTest, NewestWinsRemoteNewerDiscardsUnsentLocalChanges) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "remote");
  EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kNewestWins);
  EXPECT_EQ(result.conflicts[0].conflict_id, std::nullopt);
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h->Changes().empty());
  EXPECT_EQ(h->Base("n1"), std::nullopt);
  EXPECT_FALSE(h->WithMeta("n1")->meta.dirty);
  EXPECT_EQ(h->WithMeta("n1")->meta.version, 2);
}

TEST_F(ConflictTest, NewestWinsRemoteOlderKeepsTheLocalChange) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R","body":"y"})", kLocalTime - 1));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "local");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"y"})");
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  EXPECT_EQ(h->Base("n1"), R"({"title":"R","body":"y"})");
  EXPECT_TRUE(h->WithMeta("n1")->meta.dirty);
}

TEST_F(ConflictTest, NewestWinsATieGoesToTheRemote) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "remote");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h->Changes().empty());
}

TEST_F(ConflictTest, NewestWinsComparesWithTheNewestLocalEdit) {
  auto h = Setup(ConflictStrategy::kNewestWins, R"({"title":"L"})");
  h->clock.Advance(500);
  ASSERT_TRUE(IsOk(h->store->Patch("note", "n1", R"({"body":"L2"})")));  // coalesced, timestamp moves on
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 100));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "local");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"L2"})");
}

TEST_F(ConflictTest, ServerWinsEvenWhenOlder) {
  auto h = Setup(ConflictStrategy::kServerWins, R"({"title":"L","n":1})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime - 5000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "remote");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h->Changes().empty());
}

TEST_F(ConflictTest, ClientWinsEvenWhenNewer) {
  auto h = Setup(ConflictStrategy::kClientWins, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 5000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "local");
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"x"})");
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  EXPECT_EQ(h->Base("n1"), R"({"title":"R","body":"x"})");
}

TEST_F(ConflictTest, ClientWinsKeepsALocalDeleteOverARemoteUpdate) {
  auto h = std::make_unique<StoreHarness>(ConflictStrategy::kClientWins);
  h->PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
  ASSERT_TRUE(IsOk(h->store->Delete("note", "n1")));
  h->PullOne(Remote(2, "UPDATED", "n1", R"({"a":2})", kLocalTime + 1000));
  EXPECT_EQ(h->Visible("n1"), std::nullopt);
  EXPECT_EQ(Data(h->Changes()), (Strings{"DELETED - pending"}));
  EXPECT_EQ(h->Base("n1"), R"({"a":2})");
  EXPECT_EQ(h->WithMeta("n1")->meta.version, 2);
}

TEST_F(ConflictTest, MergeKeepsDisjointFieldsFromBothSides) {
  auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L"})");
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"body":"R"})", kLocalTime + 1000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].winner, "merged");
  EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kMerge);
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"R"})");
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  EXPECT_EQ(h->Base("n1"), R"({"title":"a","body":"R"})");
}

TEST_F(ConflictTest, MergeOverlappingFieldNewerRemoteWinsAndLeavesTheUnsentChange) {
  auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L","tag":"t"})");
  h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R","body":"R"})", kLocalTime + 1000));
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"R","tag":"t"})");
  // The losing field is no longer sent; the rest of the change is.
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"tag":"t"} pending)"}));
  EXPECT_TRUE(h->WithMeta("n1")->meta.dirty);
}

TEST_F(ConflictTest, MergeOverlappingFieldOlderRemoteLoses) {
  auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L","tag":"t"})");
  h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R","body":"R"})", kLocalTime - 1000));
  EXPECT_EQ(h->Visible("n1"), R"({"title":"L","body":"R","tag":"t"})");
  EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L","tag":"t"} pending)"}));
}

TEST_F(ConflictTest, MergeWhereEveryLocalFieldLosesDropsTheChange) {
  auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L"})");
  h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1000));
  EXPECT_EQ(h->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h->Changes().empty());
  EXPECT_FALSE(h->WithMeta("n1")->meta.dirty);
  EXPECT_EQ(h->Base("n1"), std::nullopt);
}

TEST_F(ConflictTest, MergeFallsBackToNewestWinsForDeletes) {
  {  // local delete, older remote update: the delete stands
    auto h = std::make_unique<StoreHarness>(ConflictStrategy::kMerge);
    h->PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
    ASSERT_TRUE(IsOk(h->store->Delete("note", "n1")));
    ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"a":2})", kLocalTime - 1));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "local");
    EXPECT_EQ(h->Visible("n1"), std::nullopt);
    EXPECT_EQ(Data(h->Changes()), (Strings{"DELETED - pending"}));
  }
  {  // local delete, newer remote update: the update wins and the delete is dropped
    auto h = std::make_unique<StoreHarness>(ConflictStrategy::kMerge);
    h->PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
    ASSERT_TRUE(IsOk(h->store->Delete("note", "n1")));
    ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"b":2})", kLocalTime + 1));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "remote");
    EXPECT_EQ(h->Visible("n1"), R"({"a":1,"b":2})");
    EXPECT_TRUE(h->Changes().empty());
  }
  {  // local update, newer remote delete
    auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L"})");
    ApplyResult result = h->PullOne(Remote(2, "DELETED", "n1", std::nullopt, kLocalTime + 1));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "remote");
    EXPECT_EQ(h->Visible("n1"), std::nullopt);
    EXPECT_TRUE(h->WithMeta("n1")->meta.deleted);
    EXPECT_TRUE(h->Changes().empty());
  }
  {  // local update, older remote delete: the local edit stays, on an entity the server deleted
    auto h = Setup(ConflictStrategy::kMerge, R"({"title":"L"})");
    ApplyResult result = h->PullOne(Remote(2, "DELETED", "n1", std::nullopt, kLocalTime - 1));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "local");
    EXPECT_EQ(Data(h->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
    EXPECT_EQ(h->Base("n1"), std::nullopt);
  }
}

// ---- Manual conflicts

class ManualTest : public ConflictTest {
 protected:
  void SetUp() override {
    h_ = Setup(ConflictStrategy::kManual, R"({"title":"L"})");
    ApplyResult result = h_->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1000));
    ASSERT_EQ(result.conflicts.size(), 1u);
    EXPECT_EQ(result.conflicts[0].winner, "manual");
    EXPECT_EQ(result.conflicts[0].strategy, ConflictStrategy::kManual);
    ASSERT_TRUE(result.conflicts[0].conflict_id);
    id_ = *result.conflicts[0].conflict_id;
  }
  std::string Conflicts() {
    Result<std::string> json = h_->applier->ConflictsJson();
    EXPECT_TRUE(IsOk(json));
    return json.ok() ? json.value() : "";
  }

  std::unique_ptr<StoreHarness> h_;
  int64_t id_ = 0;
};

TEST_F(ManualTest, AConflictIsKeptOpenWithTheLocalStateVisible) {
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"x"})");
  EXPECT_EQ(Data(h_->Changes()), (Strings{R"(UPDATED {"title":"L"} pending)"}));
  EXPECT_EQ(h_->Base("n1"), R"({"title":"R","body":"x"})");
  EXPECT_EQ(Conflicts(), "[{\"id\":" + std::to_string(id_) +
                             R"(,"entityType":"note","entityId":"n1","local":{"title":"L","body":"x"},)"
                             R"("remote":{"title":"R","body":"x"},"base":{"title":"a","body":"x"},)"
                             R"("remoteVersion":2,"remoteChangeId":"r2","remoteTimestamp":)" +
                             std::to_string(kLocalTime + 1000) + R"(,"createdAt":)" + std::to_string(kTestStartMs) +
                             R"(,"awaitingResolver":false,"resolverError":null}])");
}

TEST_F(ManualTest, ASecondRemoteChangeUpdatesTheSameOpenConflict) {
  ApplyResult result = h_->PullOne(Remote(3, "UPDATED", "n1", R"({"body":"y"})", kLocalTime + 2000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].conflict_id, id_);
  EXPECT_EQ(QueryInt(*h_->db, "SELECT count(*) FROM conflicts"), 1);
  const std::string json = Conflicts();
  // The base stays the state the local edit was made on.
  EXPECT_NE(json.find(R"("remote":{"title":"R","body":"y"},"base":{"title":"a","body":"x"},)"
                      R"("remoteVersion":3,"remoteChangeId":"r3")"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("local":{"title":"L","body":"y"})"), std::string::npos) << json;
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"y"})");
}

TEST_F(ManualTest, ResolveWithLocalQueuesTheLocalStateOnTheRemoteVersion) {
  h_->PullOne(Remote(3, "UPDATED", "n1", R"({"body":"y"})", kLocalTime + 2000));
  Result<ResolvedConflict> resolved = h_->applier->ResolveConflict(id_, ResolveUse::kLocal, std::nullopt);
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value().visible, R"({"title":"L","body":"y"})");
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"L","body":"y"})");
  std::vector<Change> changes = h_->Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kUpdated);
  EXPECT_EQ(changes[0].data, R"({"title":"L","body":"y"})");
  EXPECT_EQ(changes[0].base_version, 3);
  EXPECT_EQ(h_->Base("n1"), R"({"title":"R","body":"y"})");
  EXPECT_EQ(Conflicts(), "[]");
  EXPECT_EQ(QueryInt(*h_->db, "SELECT count(*) FROM conflicts WHERE status = 'resolved' AND resolution = 'local'"), 1);
  // Settled: resolving again, or an unknown id, is NOT_FOUND.
  EXPECT_TRUE(HasCode(h_->applier->ResolveConflict(id_, ResolveUse::kRemote, std::nullopt), StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(h_->applier->ResolveConflict(999, ResolveUse::kLocal, std::nullopt), StatusCode::kNotFound));
  EXPECT_FALSE(h_->db->InTransaction());
}

TEST_F(ManualTest, ResolveWithRemoteDropsTheLocalChanges) {
  Result<ResolvedConflict> resolved = h_->applier->ResolveConflict(id_, ResolveUse::kRemote, std::nullopt);
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value().visible, R"({"title":"R","body":"x"})");
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"R","body":"x"})");
  EXPECT_TRUE(h_->Changes().empty());
  EXPECT_FALSE(h_->WithMeta("n1")->meta.dirty);
  EXPECT_EQ(h_->Base("n1"), std::nullopt);
  EXPECT_EQ(Conflicts(), "[]");
}

TEST_F(ManualTest, ResolveWithMergedDataQueuesItAgainstTheRemote) {
  Result<ResolvedConflict> resolved =
      h_->applier->ResolveConflict(id_, ResolveUse::kMerged, std::string(R"({"title":"M","n":1})"));
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value().visible, R"({"title":"M","n":1})");
  EXPECT_EQ(h_->Visible("n1"), R"({"title":"M","n":1})");
  std::vector<Change> changes = h_->Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kUpdated);
  EXPECT_EQ(changes[0].data, R"({"title":"M","n":1,"body":null})");  // every field, null for the dropped one
  EXPECT_EQ(changes[0].base_version, 2);
  EXPECT_EQ(QueryInt(*h_->db, "SELECT count(*) FROM conflicts WHERE resolution = 'merged'"), 1);
}

TEST_F(ConflictTest, ManualLocalDeleteResolvedLocalQueuesADelete) {
  auto h = std::make_unique<StoreHarness>(ConflictStrategy::kManual);
  h->PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
  ASSERT_TRUE(IsOk(h->store->Delete("note", "n1")));
  ApplyResult result = h->PullOne(Remote(4, "UPDATED", "n1", R"({"a":2})", kLocalTime + 1));
  ASSERT_EQ(result.conflicts.size(), 1u);
  ASSERT_TRUE(result.conflicts[0].conflict_id);
  EXPECT_EQ(h->Visible("n1"), std::nullopt);
  Result<ResolvedConflict> resolved =
      h->applier->ResolveConflict(*result.conflicts[0].conflict_id, ResolveUse::kLocal, std::nullopt);
  ASSERT_TRUE(IsOk(resolved));
  EXPECT_EQ(resolved.value().visible, std::nullopt);
  std::vector<Change> changes = h->Changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kDeleted);
  EXPECT_EQ(changes[0].base_version, 4);
  EXPECT_TRUE(h->WithMeta("n1")->meta.deleted);
}

// ---- Own changes echoed back

TEST_F(ConflictTest, AnEchoOfAnInFlightChangeIsNotAConflict) {
  StoreHarness h(ConflictStrategy::kManual);  // the strictest strategy
  Result<WriteEvent> put = h.store->Put("note", "n1", R"({"a":1})");
  ASSERT_TRUE(IsOk(put));
  ASSERT_TRUE(IsOk(h.queue->TakeBatch(0)));
  ApplyResult result =
      h.PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime, put.value().change_id));
  EXPECT_EQ(result.applied, 1);
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_EQ(QueryInt(*h.db, "SELECT count(*) FROM conflicts"), 0);
  EXPECT_EQ(h.Visible("n1"), R"({"a":1})");
  EXPECT_EQ(h.WithMeta("n1")->meta.version, 1);
  ASSERT_TRUE(IsOk(h.queue->MarkSynced(put.value().change_id, 1)));
  EXPECT_FALSE(h.WithMeta("n1")->meta.dirty);
}

TEST_F(ConflictTest, AnEchoKeepsLaterLocalChangesOnTop) {
  for (ConflictStrategy strategy : {ConflictStrategy::kNewestWins, ConflictStrategy::kServerWins,
                                    ConflictStrategy::kMerge, ConflictStrategy::kManual}) {
    StoreHarness h(strategy);
    Result<WriteEvent> put = h.store->Put("note", "n1", R"({"a":1})");
    ASSERT_TRUE(IsOk(put));
    ASSERT_TRUE(IsOk(h.queue->TakeBatch(0)));
    h.clock.Advance(10);
    ASSERT_TRUE(IsOk(h.store->Patch("note", "n1", R"({"b":2})")));
    ApplyResult result = h.PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime + 5000, put.value().change_id));
    EXPECT_TRUE(result.conflicts.empty()) << ConflictStrategyName(strategy);
    EXPECT_EQ(h.Visible("n1"), R"({"a":1,"b":2})") << ConflictStrategyName(strategy);
    EXPECT_EQ(Data(h.Changes()), (Strings{R"(CREATED {"a":1} syncing)", R"(UPDATED {"b":2} pending)"}))
        << ConflictStrategyName(strategy);
    EXPECT_EQ(h.Base("n1"), R"({"a":1})");
  }
}

TEST_F(ConflictTest, AnEchoOfACoalescedChangeIdIsRecognised) {
  StoreHarness h(ConflictStrategy::kServerWins);
  h.PullOne(Remote(1, "CREATED", "n1", R"({"a":1})", kLocalTime - 10000));
  ASSERT_TRUE(IsOk(h.store->Patch("note", "n1", R"({"b":1})")));
  Result<WriteEvent> second = h.store->Patch("note", "n1", R"({"c":1})");
  ASSERT_TRUE(IsOk(second));
  ASSERT_EQ(second.value().outcome, EnqueueOutcome::kCoalesced);
  ApplyResult result =
      h.PullOne(Remote(2, "UPDATED", "n1", R"({"c":1})", kLocalTime + 1000, second.value().change_id));
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_EQ(h.Visible("n1"), R"({"a":1,"c":1,"b":1})");
  EXPECT_EQ(h.Changes().size(), 1u);
}

// ---- In-flight local changes are never discarded or rewritten

TEST_F(ConflictTest, InFlightChangesSurviveEveryStrategy) {
  const ConflictStrategy strategies[] = {ConflictStrategy::kNewestWins, ConflictStrategy::kServerWins,
                                         ConflictStrategy::kClientWins, ConflictStrategy::kMerge,
                                         ConflictStrategy::kManual};
  for (ConflictStrategy strategy : strategies) {
    SCOPED_TRACE(ConflictStrategyName(strategy));
    auto h = Setup(strategy, R"({"title":"S","tag":"s"})");
    Result<std::vector<Change>> sent = h->queue->TakeBatch(0);
    ASSERT_TRUE(IsOk(sent));
    ASSERT_EQ(sent.value().size(), 1u);
    const std::string sent_id = sent.value()[0].change_id;
    ASSERT_TRUE(IsOk(h->store->Patch("note", "n1", R"({"title":"P","body":"p"})")));  // appended, not coalesced
    ASSERT_EQ(h->Changes().size(), 2u);

    ApplyResult result =
        h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R","body":"R","tag":"r"})", kLocalTime + 1000));
    ASSERT_EQ(result.conflicts.size(), 1u);
    std::vector<Change> changes = h->Changes();
    ASSERT_FALSE(changes.empty());
    EXPECT_EQ(changes[0].change_id, sent_id);
    EXPECT_EQ(changes[0].status, ChangeStatus::kSyncing);
    EXPECT_EQ(changes[0].data, R"({"title":"S","tag":"s"})");
    EXPECT_TRUE(h->WithMeta("n1")->meta.dirty);

    switch (strategy) {
      case ConflictStrategy::kNewestWins:
      case ConflictStrategy::kServerWins:
      case ConflictStrategy::kMerge:
        // The unsent edit loses every field; the in-flight one is still replayed on top.
        EXPECT_EQ(changes.size(), 1u);
        EXPECT_EQ(h->Visible("n1"), R"({"title":"S","body":"R","tag":"s"})");
        break;
      case ConflictStrategy::kClientWins:
        EXPECT_EQ(changes.size(), 2u);
        EXPECT_EQ(h->Visible("n1"), R"({"title":"P","body":"p","tag":"s"})");
        break;
      case ConflictStrategy::kManual:
      case ConflictStrategy::kCustom: {
        EXPECT_EQ(changes.size(), 2u);
        ASSERT_TRUE(result.conflicts[0].conflict_id);
        Result<ResolvedConflict> resolved =
            h->applier->ResolveConflict(*result.conflicts[0].conflict_id, ResolveUse::kRemote, std::nullopt);
        ASSERT_TRUE(IsOk(resolved));
        changes = h->Changes();
        ASSERT_EQ(changes.size(), 1u);
        EXPECT_EQ(changes[0].change_id, sent_id);
        EXPECT_EQ(changes[0].status, ChangeStatus::kSyncing);
        EXPECT_EQ(changes[0].data, R"({"title":"S","tag":"s"})");
        EXPECT_EQ(h->Visible("n1"), R"({"title":"S","body":"R","tag":"s"})");
        EXPECT_TRUE(h->WithMeta("n1")->meta.dirty);
        break;
      }
    }
    EXPECT_EQ(h->Base("n1"), R"({"title":"R","body":"R","tag":"r"})");
    // The server acknowledges the in-flight change as usual.
    ASSERT_TRUE(IsOk(h->queue->MarkSynced(sent_id, 3)));
  }
}

TEST_F(ConflictTest, ManualResolveLocalKeepsTheInFlightChange) {
  auto h = Setup(ConflictStrategy::kManual, R"({"title":"S"})");
  ASSERT_TRUE(IsOk(h->queue->TakeBatch(0)));
  ApplyResult result = h->PullOne(Remote(2, "UPDATED", "n1", R"({"title":"R"})", kLocalTime + 1000));
  ASSERT_EQ(result.conflicts.size(), 1u);
  ASSERT_TRUE(result.conflicts[0].conflict_id);
  ASSERT_TRUE(IsOk(h->applier->ResolveConflict(*result.conflicts[0].conflict_id, ResolveUse::kLocal, std::nullopt)));
  EXPECT_EQ(Data(h->Changes()),
            (Strings{R"(UPDATED {"title":"S"} syncing)", R"(UPDATED {"title":"S","body":"x"} pending)"}));
  EXPECT_EQ(h->Changes()[1].base_version, 2);
}

// The work of one sync cycle on the client (a local write, taking it into a request, its
// acknowledgement, the purge of old synced changes, the engine's status counts, and the pull of
// the change back) as SQLite VM steps, on a queue that already holds `history` synced changes.
int64_t SyncCycleSteps(int64_t history) {
  StoreHarness h;
  std::vector<ChangeInput> inputs;
  for (int64_t i = 1; i <= history; ++i) inputs.push_back(Created("h" + std::to_string(i), R"({"i":1})", "h" + std::to_string(i)));
  EXPECT_TRUE(IsOk(h.queue->EnqueueMany(inputs)));
  Result<std::vector<Change>> taken = h.queue->TakeBatch(history);
  EXPECT_TRUE(IsOk(taken));
  for (const Change& change : taken.value()) EXPECT_TRUE(IsOk(h.queue->MarkSynced(change.change_id, change.id)));
  h.Pull(Page({}, history));

  const int64_t before = h.db->CachedVmSteps();
  EXPECT_TRUE(IsOk(h.store->Put("note", "fresh", R"({"t":1})")));
  Result<std::vector<Change>> batch = h.queue->TakeBatch(100);
  EXPECT_TRUE(IsOk(batch));
  EXPECT_EQ(batch.value().size(), 1u);
  const std::string own = batch.value().at(0).change_id;
  EXPECT_TRUE(IsOk(h.queue->MarkSynced(own, history + 1)));
  EXPECT_TRUE(IsOk(h.queue->PurgeSynced(24LL * 60 * 60 * 1000)));
  EXPECT_TRUE(IsOk(h.queue->Stats(/*count_synced=*/false)));
  h.PullOne(Remote(history + 1, "CREATED", "fresh", R"({"t":1})", kTestStartMs, own));
  return h.db->CachedVmSteps() - before;
}

TEST(SyncCycleCost, DoesNotGrowWithTheSyncedHistory) {
  const int64_t small = SyncCycleSteps(100);
  const int64_t large = SyncCycleSteps(20000);
  EXPECT_GT(small, 0);
  // Flat up to noise in index depth: a scan of the synced history would be 200 times larger.
  EXPECT_LE(large, small * 2) << "VM steps of one cycle: " << small << " with 100 synced changes, " << large
                              << " with 20,000";
}

}  // namespace
}  // namespace deltasync
