// 88: pulled pages: DecodePullPage's reading and validation of a whole page, ValidatePullPage's
// window-at-a-time reading of the same pages (the same errors, the same changes), the layout
// it finds with ScanPageLayout, PageChangeReader's windows, and PagePrefetcher's (the same
// windows, decoded ahead on a thread).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "core/page_layout.h"
#include "core/page_prefetcher.h"
#include "core/pull_page.h"
#include "fuzz/entry_points.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;
using testing_util::Page;
using testing_util::Remote;

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
// decoder: the same error, or the same fields and the same changes read back by the reader
// (ReadPageAsTheApplyDoes compares them, as the fuzz target does).
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
  std::vector<std::string> early = big;
  early[100] = Remote(100, "CREATED", "early", "{}");
  std::vector<std::string> pages = {
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
      Page(early),
      Page(big, 2999),  // below the last change, which the second half of the validation reads
  };
  // A big page is validated in two halves at once: a version that does not follow its
  // predecessor is found where the halves meet, and around it.
  const std::optional<PageLayout> big_layout = ScanPageLayout(Page(big, 3000));
  ASSERT_TRUE(big_layout.has_value());
  const size_t middle = MiddleChange(*big_layout);
  EXPECT_GT(middle, 1400u);
  EXPECT_LT(middle, 1600u);
  for (size_t at = middle - 3; at <= middle + 3; ++at) {
    std::vector<std::string> repeated = big;
    repeated[at] = Remote(static_cast<int64_t>(at), "CREATED", "repeat", "{}");
    pages.push_back(Page(repeated));
  }
  for (const std::string& json : pages) {
    for (const size_t window_bytes : {kPageWindowBytes, size_t{200}}) {
      const std::string label = json.substr(0, 120) + " (windows of " + std::to_string(window_bytes) + " bytes)";
      simdjson::ondemand::parser parser;
      simdjson::padded_string input(json);
      PullPage whole;
      const Status decoded = DecodePullPage(parser, input, JsonLimits{}, &whole);
      size_t read = 0;
      const Status both = fuzz::ReadPageAsTheApplyDoes(
          json, window_bytes, 700, [](const PullPage&) { return Status::Ok(); },
          [&](const PullPage& window) {
            read += window.changes.size();
            return Status::Ok();
          });
      EXPECT_EQ(both.ToString(), decoded.ToString()) << label;
      if (decoded.ok()) {
        EXPECT_EQ(read, whole.changes.size()) << label;
      }
    }
  }
}

// The scan finds each change's bytes past strings full of quotes, brackets and backslashes, and
// reads keys as JSON does.
TEST(ScanPageLayout, FindsEachChangeAsJsonReadsIt) {
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
  // An escaped key is read as JSON reads it.
  const std::string escaped = R"({"new\u0043hanges":[)" + changes[2] + "]}";
  std::optional<PageLayout> unescaped = ScanPageLayout(escaped);
  ASSERT_TRUE(unescaped.has_value());
  EXPECT_EQ(unescaped->changes.size(), 1u);

  // What the scan refuses: not a page, or elements too short to be changes (which would make
  // the layout larger than the page).
  for (const std::string& other : {std::string(R"({"new\u0043hanges":[], "new\u0043hanges":[]})"),
                                   std::string("[") + changes[0], std::string("[{},{},{}]"),
                                   std::string("[1,2,3]"), std::string(R"({"new\uZZ43hanges":[]})"),
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

// A window holds at most kPageWindowBytes of changes (or one larger change), whatever count
// is asked for.
TEST(PageChangeReader, BoundsAWindowByItsBytes) {
  std::vector<std::string> changes = ChangesOfSize(5, 100 * 1024);
  changes.push_back(ChangesOfSize(6, 300 * 1024).back());
  const std::string json = Page(changes);
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
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 2, 1, 1}));
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

// Where a page's changes split in two halves by bytes: never the first change, never past the last.
TEST(MiddleChange, SplitsTheChangesByBytes) {
  PageLayout layout;
  layout.changes = {{10, 20}, {21, 31}};
  EXPECT_EQ(MiddleChange(layout), 1u);
  layout.changes = {{0, 1000}, {1001, 1010}, {1011, 1020}};
  EXPECT_EQ(MiddleChange(layout), 1u);
  layout.changes = {{0, 10}, {11, 20}, {21, 1000}};
  EXPECT_EQ(MiddleChange(layout), 2u);
  layout.changes = {{0, 10}, {11, 20}, {21, 30}, {31, 40}};
  EXPECT_EQ(MiddleChange(layout), 2u);
}

// Deeply nested documents pass the validation in halves and the decoding ahead, on threads of
// their own, as on the calling thread: 500 levels take about 0.5 MB of stack (more under
// ASan), past the default stack of a new thread on macOS (512 KB) or musl (128 KB).
TEST(ValidatePullPage, ReadsDeeplyNestedDocumentsOnItsThreads) {
  JsonLimits limits;
  limits.max_depth = 1000;
  std::string nested = "1";
  for (int depth = 0; depth < 500; ++depth) nested = R"({"a":)" + nested + "}";
  std::vector<std::string> changes = ChangesOfSize(3000, 500);  // about 2 MB
  changes[100] = Remote(101, "CREATED", "deep-first", nested);
  changes[2900] = Remote(2901, "CREATED", "deep-second", nested);
  const std::string json = Page(changes);
  simdjson::ondemand::parser parser;
  PullPage page;
  PageLayout layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, limits, &page, &layout)));
  PagePrefetcher prefetcher(parser, json, layout, limits, 1000);
  size_t read = 0;
  do {
    ASSERT_TRUE(IsOk(prefetcher.Next(&page)));
    read += page.changes.size();
  } while (page.window_start + page.changes.size() < page.ChangeCount());
  EXPECT_EQ(read, 3000u);
}

// ---- PagePrefetcher

// The prefetcher gives the windows the reader gives, in order, then the end again and again.
TEST(PagePrefetcher, GivesTheReadersWindowsInOrder) {
  const std::string json = Page(ChangesOfSize(50, 10), 50);
  simdjson::ondemand::parser parser;
  PullPage validated;
  PageLayout layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, JsonLimits{}, &validated, &layout)));
  PullPage expected = validated;
  PageChangeReader reader(parser, json, layout, JsonLimits{});
  simdjson::ondemand::parser own;
  PagePrefetcher prefetcher(own, json, layout, JsonLimits{}, 3);
  PullPage page = validated;
  for (int window = 0; window < 20; ++window) {
    ASSERT_TRUE(IsOk(reader.Next(3, &expected)));
    ASSERT_TRUE(IsOk(prefetcher.Next(&page)));
    EXPECT_EQ(page.window_start, expected.window_start) << window;
    ASSERT_EQ(page.changes.size(), expected.changes.size()) << window;
    for (size_t i = 0; i < page.changes.size(); ++i) {
      EXPECT_EQ(page.changes[i].entity_id, expected.changes[i].entity_id);
      EXPECT_EQ(page.changes[i].version, expected.changes[i].version);
      EXPECT_EQ(page.changes[i].data, expected.changes[i].data);
    }
  }
  EXPECT_TRUE(page.changes.empty());
  EXPECT_EQ(page.window_start, 50u);
}

// A window that no longer decodes is the prefetcher's error too, at the same place, and stays
// its answer.
TEST(PagePrefetcher, GivesTheReadersErrorWhereItOccurs) {
  std::string json = Page(ChangesOfSize(6, 10));
  simdjson::ondemand::parser parser;
  PullPage page;
  PageLayout layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, JsonLimits{}, &page, &layout)));
  json.replace(json.find("\"version\":6"), 11, "\"version\":2");  // goes back in versions
  PagePrefetcher prefetcher(parser, json, layout, JsonLimits{}, 3);
  ASSERT_TRUE(IsOk(prefetcher.Next(&page)));
  EXPECT_EQ(page.changes.size(), 3u);
  for (int call = 0; call < 2; ++call) {
    Status changed = prefetcher.Next(&page);
    EXPECT_TRUE(HasCode(changed, StatusCode::kInvalidArgument)) << changed.ToString();
    EXPECT_NE(changed.message().find("changed after it was validated"), std::string::npos) << changed.message();
    EXPECT_TRUE(page.changes.empty());
  }
}

// Destroyed with windows still to decode (the apply stopped early): the thread stops and nothing
// is left running.
TEST(PagePrefetcher, StopsWhenDestroyedEarly) {
  const std::string json = Page(ChangesOfSize(200, 10));
  simdjson::ondemand::parser parser;
  PullPage page;
  PageLayout layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, json, JsonLimits{}, &page, &layout)));
  { PagePrefetcher untouched(parser, json, layout, JsonLimits{}, 5); }
  {
    PagePrefetcher prefetcher(parser, json, layout, JsonLimits{}, 5);
    ASSERT_TRUE(IsOk(prefetcher.Next(&page)));
    EXPECT_EQ(page.changes.size(), 5u);
  }
  // Windows large enough that the thread is most likely decoding one when it is stopped.
  const std::string large = Page(ChangesOfSize(40, 100 * 1024));
  PullPage large_page;
  PageLayout large_layout;
  ASSERT_TRUE(IsOk(ValidatePullPage(parser, large, JsonLimits{}, &large_page, &large_layout)));
  for (int round = 0; round < 3; ++round) {
    PagePrefetcher stopped(parser, large, large_layout, JsonLimits{}, 1000);
    ASSERT_TRUE(IsOk(stopped.Next(&large_page)));
    EXPECT_EQ(large_page.changes.size(), 2u);
  }
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

}  // namespace
}  // namespace deltasync
