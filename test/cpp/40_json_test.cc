// 40: JSON helpers: validated canonical copies (the hostile-input gate),
// shallow merges used by coalescing, string escaping and error renderings.
#include <gtest/gtest.h>

#include <string>

#include "core/json.h"
#include "simdjson.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::HasCode;
using testing_util::IsOk;

// Parses `json` and runs CopyValidatedJson over its root. Errors from the
// parser itself (simdjson validates UTF-8 up front) come back as INVALID_ARGUMENT.
Result<std::string> Copy(const std::string& json, JsonLimits limits = {}) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  if (auto error = parser.iterate(padded).get(doc)) {
    return Status::InvalidArgument(std::string("parse: ") + simdjson::error_message(error));
  }
  simdjson::ondemand::value value;
  if (auto error = doc.get_value().get(value)) {
    return Status::InvalidArgument(std::string("root: ") + simdjson::error_message(error));
  }
  std::string out;
  Status status = CopyValidatedJson(value, 0, limits, "doc", &out);
  if (!status.ok()) return status;
  return out;
}

std::string Nested(int levels, char open, char close, const std::string& inner = "") {
  std::string out;
  for (int i = 0; i < levels; ++i) out += open == '{' ? "{\"k\":" : std::string(1, open);
  if (open == '{') {
    out += inner.empty() ? "1" : inner;
  } else {
    out += inner;
  }
  for (int i = 0; i < levels; ++i) out.push_back(close);
  return out;
}

Result<std::string> Merge(std::string_view base, std::string_view patch) {
  simdjson::ondemand::parser parser;
  return ShallowMergeObjects(parser, base, patch, PatchNulls::kKeep);
}

// ---- CopyValidatedJson: canonical output

TEST(CopyValidatedJson, MinifiesAndKeepsTokensVerbatim) {
  Result<std::string> out = Copy(" {\n \"a\" : [ 1 , 2.50 , -0 , 1e2 , true , false , null ] ,\t\"b\" : { } ,"
                                 " \"c\" : [ ] , \"s\" : \"x y\\n\\u00e9\\\"\" } \n");
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(), R"({"a":[1,2.50,-0,1e2,true,false,null],"b":{},"c":[],"s":"x y\n\u00e9\""})");
}

TEST(CopyValidatedJson, KeepsKeyOrderAndUnicode) {
  Result<std::string> out = Copy(R"({"z":1,"a":2,"é":"日本","😀":"\ud83d\ude00"})");
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(), R"({"z":1,"a":2,"é":"日本","😀":"\ud83d\ude00"})");
}

TEST(CopyValidatedJson, OutputIsStableWhenCopiedAgain) {
  const std::string input = R"( { "list" : [ { "x" : 1 } , [ 2 , [ 3 ] ] ] , "t" : "\t" } )";
  Result<std::string> once = Copy(input);
  ASSERT_TRUE(IsOk(once));
  Result<std::string> twice = Copy(once.value());
  ASSERT_TRUE(IsOk(twice));
  EXPECT_EQ(once.value(), twice.value());
  EXPECT_EQ(once.value(), R"({"list":[{"x":1},[2,[3]]],"t":"\t"})");
}

TEST(CopyValidatedJson, AppendsToExistingOutputAndRestoresItOnError) {
  simdjson::ondemand::parser parser;
  std::string out = "prefix:";
  {
    simdjson::padded_string padded(std::string(R"({"a":1})"));
    simdjson::ondemand::document doc;
    ASSERT_EQ(parser.iterate(padded).get(doc), simdjson::SUCCESS);
    simdjson::ondemand::value value;
    ASSERT_EQ(doc.get_value().get(value), simdjson::SUCCESS);
    ASSERT_TRUE(IsOk(CopyValidatedJson(value, 0, JsonLimits{}, "doc", &out)));
  }
  EXPECT_EQ(out, R"(prefix:{"a":1})");
  {
    simdjson::padded_string padded(std::string(R"({"b":[1,2,{"c":1e400}]})"));
    simdjson::ondemand::document doc;
    ASSERT_EQ(parser.iterate(padded).get(doc), simdjson::SUCCESS);
    simdjson::ondemand::value value;
    ASSERT_EQ(doc.get_value().get(value), simdjson::SUCCESS);
    EXPECT_FALSE(CopyValidatedJson(value, 0, JsonLimits{}, "doc", &out).ok());
  }
  EXPECT_EQ(out, R"(prefix:{"a":1})");
}

// ---- CopyValidatedJson: depth

TEST(CopyValidatedJson, DepthUpToTheLimitIsAccepted) {
  JsonLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(IsOk(Copy("[[[]]]", limits)));
  EXPECT_TRUE(IsOk(Copy(R"({"a":{"b":{"c":1}}})", limits)));
  EXPECT_TRUE(IsOk(Copy(R"([{"a":[1,2]}])", limits)));
}

TEST(CopyValidatedJson, DepthOverTheLimitIsRejected) {
  JsonLimits limits;
  limits.max_depth = 3;
  Result<std::string> arrays = Copy("[[[[]]]]", limits);
  EXPECT_TRUE(HasCode(arrays, StatusCode::kLimitExceeded));
  EXPECT_NE(arrays.status().message().find("deeper than the limit of 3"), std::string::npos)
      << arrays.status().message();
  EXPECT_NE(arrays.status().message().find("doc[0][0][0]"), std::string::npos) << arrays.status().message();
  Result<std::string> objects = Copy(R"({"a":{"b":{"c":{"d":1}}}})", limits);
  EXPECT_TRUE(HasCode(objects, StatusCode::kLimitExceeded));
  EXPECT_NE(objects.status().message().find("doc.a.b.c"), std::string::npos) << objects.status().message();
}

TEST(CopyValidatedJson, DefaultDepthLimitIs64) {
  EXPECT_TRUE(IsOk(Copy(Nested(64, '[', ']'))));
  EXPECT_TRUE(HasCode(Copy(Nested(65, '[', ']')), StatusCode::kLimitExceeded));
  EXPECT_TRUE(IsOk(Copy(Nested(64, '{', '}'))));
  EXPECT_TRUE(HasCode(Copy(Nested(65, '{', '}')), StatusCode::kLimitExceeded));
}

TEST(CopyValidatedJson, VeryDeepInputIsAnErrorNotAStackOverflow) {
  Result<std::string> out = Copy(Nested(100000, '[', ']'));
  EXPECT_FALSE(out.ok());
}

TEST(CopyValidatedJson, ScalarsDoNotCountAsDepth) {
  JsonLimits limits;
  limits.max_depth = 1;
  EXPECT_TRUE(IsOk(Copy(R"({"a":1,"b":"s","c":null})", limits)));
  EXPECT_TRUE(HasCode(Copy(R"({"a":[]})", limits), StatusCode::kLimitExceeded));
}

// ---- CopyValidatedJson: duplicate keys

TEST(CopyValidatedJson, RejectsDuplicateKeys) {
  Result<std::string> out = Copy(R"({"a":1,"b":2,"a":3})");
  EXPECT_TRUE(HasCode(out, StatusCode::kInvalidArgument));
  EXPECT_NE(out.status().message().find("Duplicate key \"a\""), std::string::npos) << out.status().message();
}

TEST(CopyValidatedJson, RejectsDuplicateKeysInNestedObjectsWithTheirPath) {
  Result<std::string> out = Copy(R"({"x":[{"ok":1},{"b":1,"b":1}]})");
  EXPECT_TRUE(HasCode(out, StatusCode::kInvalidArgument));
  EXPECT_NE(out.status().message().find("doc.x[1]"), std::string::npos) << out.status().message();
}

TEST(CopyValidatedJson, RejectsDuplicatesThatDifferOnlyInEscaping) {
  EXPECT_TRUE(HasCode(Copy(R"({"a":1,"\u0061":2})"), StatusCode::kInvalidArgument));
}

TEST(CopyValidatedJson, RejectsDuplicateKeysInLargeObjects) {
  std::string json = "{";
  for (int i = 0; i < 40; ++i) json += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  Result<std::string> unique = Copy(json + "\"last\":0}");
  EXPECT_TRUE(IsOk(unique));
  EXPECT_TRUE(HasCode(Copy(json + "\"k3\":0}"), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(Copy(json + "\"k39\":0}"), StatusCode::kInvalidArgument));
}

TEST(CopyValidatedJson, SameKeyInSiblingObjectsIsFine) {
  EXPECT_TRUE(IsOk(Copy(R"({"a":{"a":1},"b":{"a":2},"c":[{"a":1},{"a":2}]})")));
}

// ---- CopyValidatedJson: numbers JavaScript cannot hold exactly

TEST(CopyValidatedJson, RejectsNumbersOutOfDoubleRange) {
  for (const char* json : {"[1e400]", "[-1e400]", R"({"n":1E+999})"}) {
    Result<std::string> out = Copy(json);
    EXPECT_TRUE(HasCode(out, StatusCode::kInvalidArgument)) << json;
    EXPECT_NE(out.status().message().find("cannot be held exactly by a JavaScript number"), std::string::npos)
        << out.status().message();
  }
}

TEST(CopyValidatedJson, RejectsNonZeroNumbersThatUnderflowToZero) {
  for (const char* json : {"[1e-400]", "[-1E-999]", R"({"n":0.0001e-330})"}) {
    Result<std::string> out = Copy(json);
    EXPECT_TRUE(HasCode(out, StatusCode::kInvalidArgument)) << json;
  }
  // Zero however written is zero.
  Result<std::string> zeros = Copy("[0e-400,-0.0,0.000e5,0E+0]");
  ASSERT_TRUE(IsOk(zeros));
  EXPECT_EQ(zeros.value(), "[0e-400,-0.0,0.000e5,0E+0]");
}

TEST(CopyValidatedJson, RejectsIntegersADoubleWouldRound) {
  for (const char* json : {R"({"n":9007199254740993})", "[-9007199254740993]", "[9223372036854775807]",
                           "[18446744073709551615]", "[18446744073709551617]", "[123456789012345678901234567890]"}) {
    Result<std::string> out = Copy(json);
    EXPECT_TRUE(HasCode(out, StatusCode::kInvalidArgument)) << json;
  }
  Result<std::string> out = Copy(R"({"n":9007199254740993})");
  EXPECT_NE(out.status().message().find("9007199254740993"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("doc.n"), std::string::npos) << out.status().message();
}

TEST(CopyValidatedJson, AcceptsNumbersJavaScriptHoldsExactly) {
  Result<std::string> out = Copy(
      "[9007199254740992,-9007199254740992,0,-1,1.5,0.1,1e308,-1e308,1152921504606846976,5e-324,"
      "9223372036854775808]");
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(),
            "[9007199254740992,-9007199254740992,0,-1,1.5,0.1,1e308,-1e308,1152921504606846976,5e-324,"
            "9223372036854775808]");
}

// ---- CopyValidatedJson: strings

TEST(CopyValidatedJson, RejectsLoneSurrogates) {
  for (const char* json : {R"(["\ud800"])", R"({"s":"\udc00"})", R"(["a\ud800b"])", R"(["\ud800\u0041"])"}) {
    Result<std::string> out = Copy(json);
    EXPECT_TRUE(HasCode(out, StatusCode::kInvalidArgument)) << json;
  }
  Result<std::string> out = Copy(R"({"s":"\ud800"})");
  EXPECT_NE(out.status().message().find("lone surrogate"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("doc.s"), std::string::npos) << out.status().message();
}

TEST(CopyValidatedJson, RejectsLoneSurrogatesInKeys) {
  EXPECT_FALSE(Copy(R"({"\ud800":1})").ok());
}

TEST(CopyValidatedJson, RejectsBadEscapes) {
  EXPECT_FALSE(Copy(R"(["\x41"])").ok());
  EXPECT_FALSE(Copy(R"(["\u12"])").ok());
}

TEST(CopyValidatedJson, RejectsInvalidUtf8) {
  const std::string cases[] = {
      std::string("[\"\xff\"]"),               // never valid
      std::string("[\"\xc3\"]"),               // truncated sequence
      std::string("[\"\xc0\xaf\"]"),           // overlong encoding
      std::string("[\"\xed\xa0\x80\"]"),       // a UTF-16 surrogate encoded in UTF-8
      std::string("{\"k\xfe\":1}"),            // in a key
  };
  for (const std::string& json : cases) {
    EXPECT_TRUE(HasCode(Copy(json), StatusCode::kInvalidArgument)) << json;
  }
}

TEST(CopyValidatedJson, RejectsRawControlCharactersInStrings) {
  EXPECT_FALSE(Copy(std::string("[\"a\nb\"]")).ok());
  EXPECT_FALSE(Copy(std::string("[\"a\x01\"]")).ok());
}

// ---- CopyValidatedJson: malformed input and size

TEST(CopyValidatedJson, RejectsMalformedJson) {
  for (const char* json : {R"({"a":})", "[1,2", "[1,]", R"({"a" 1})", "[tru]", "[nul]", "[01]", "[+1]", "[.5]"}) {
    EXPECT_FALSE(Copy(json).ok()) << json;
  }
}

TEST(CopyValidatedJson, DocumentSizeLimit) {
  JsonLimits limits;
  limits.max_document_bytes = 16;
  EXPECT_TRUE(IsOk(Copy(R"({"a":"0123456"})", limits)));  // 15 bytes
  Result<std::string> out = Copy(R"({"a":"0123456789abcdef"})", limits);
  EXPECT_TRUE(HasCode(out, StatusCode::kLimitExceeded));
  EXPECT_NE(out.status().message().find("16 bytes"), std::string::npos) << out.status().message();
  EXPECT_TRUE(HasCode(Copy("[1,2,3,4,5,6,7,8,9,10]", limits), StatusCode::kLimitExceeded));
}

// ---- ShallowMergeObjects

TEST(ShallowMergeObjects, PatchWins) {
  Result<std::string> out = Merge(R"({"a":1,"b":2})", R"({"b":3,"c":4})");
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(), R"({"a":1,"b":3,"c":4})");
}

TEST(ShallowMergeObjects, KeepsBaseOrderAndAppendsNewFields) {
  Result<std::string> out = Merge(R"({"z":1,"a":2,"m":3})", R"({"n":4,"z":9,"b":5})");
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(), R"({"z":9,"a":2,"m":3,"n":4,"b":5})");
}

TEST(ShallowMergeObjects, NestedObjectsAndArraysAreReplacedNotMerged) {
  Result<std::string> out =
      Merge(R"({"o":{"x":1,"y":2},"l":[1,2,3],"k":true})", R"({"o":{"y":3},"l":[]})");
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(), R"({"o":{"y":3},"l":[],"k":true})");
}

TEST(ShallowMergeObjects, NullIsKeptWhenCombiningDeltas) {
  Result<std::string> out = Merge(R"({"a":1,"b":2})", R"({"a":null})");
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(), R"({"a":null,"b":2})");
}

TEST(ShallowMergeObjects, NullRemovesTheFieldWhenApplyingADelta) {
  simdjson::ondemand::parser parser;
  Result<std::string> out =
      ShallowMergeObjects(parser, R"({"a":1,"b":2,"c":3})", R"({"a":null,"c":4,"d":null})", PatchNulls::kRemove);
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(), R"({"b":2,"c":4})");
  Result<std::string> all_removed = ShallowMergeObjects(parser, R"({"a":1})", R"({"a":null})", PatchNulls::kRemove);
  ASSERT_TRUE(IsOk(all_removed));
  EXPECT_EQ(all_removed.value(), "{}");
}

TEST(ShallowMergeObjects, EscapedKeysAreComparedUnescaped) {
  Result<std::string> quoted = Merge(R"({"a\"b":1,"c":2})", R"({"a\"b":5})");
  ASSERT_TRUE(IsOk(quoted));
  EXPECT_EQ(quoted.value(), R"({"a\"b":5,"c":2})");

  // The same key spelled two ways is one field: its position from base, its spelling and value from patch.
  Result<std::string> spelled = Merge(R"({"a":1,"b":2})", R"({"\u0061":3})");
  ASSERT_TRUE(IsOk(spelled));
  EXPECT_EQ(spelled.value(), R"({"\u0061":3,"b":2})");

  Result<std::string> unicode = Merge(R"({"\u00e9":1})", R"({"é":2,"\n":3})");
  ASSERT_TRUE(IsOk(unicode));
  EXPECT_EQ(unicode.value(), R"({"é":2,"\n":3})");
}

TEST(ShallowMergeObjects, EmptySides) {
  EXPECT_EQ(Merge("{}", "{}").value(), "{}");
  EXPECT_EQ(Merge("{}", R"({"a":1})").value(), R"({"a":1})");
  EXPECT_EQ(Merge(R"({"a":1})", "{}").value(), R"({"a":1})");
}

TEST(ShallowMergeObjects, ValuesAreCopiedVerbatim) {
  Result<std::string> out = Merge(R"({"s":"x\"y","n":1.50})", R"({"d":{"deep":[1,{"e":"\u00e9"}]}})");
  ASSERT_TRUE(IsOk(out));
  EXPECT_EQ(out.value(), R"({"s":"x\"y","n":1.50,"d":{"deep":[1,{"e":"\u00e9"}]}})");
}

TEST(ShallowMergeObjects, ReusesOneParserManyTimes) {
  simdjson::ondemand::parser parser;
  std::string doc = "{}";
  for (int i = 0; i < 50; ++i) {
    Result<std::string> merged =
        ShallowMergeObjects(parser, doc, "{\"k" + std::to_string(i % 10) + "\":" + std::to_string(i) + "}");
    ASSERT_TRUE(IsOk(merged));
    doc = merged.value();
  }
  EXPECT_EQ(doc, R"({"k0":40,"k1":41,"k2":42,"k3":43,"k4":44,"k5":45,"k6":46,"k7":47,"k8":48,"k9":49})");
}

TEST(ShallowMergeObjects, NonObjectsAreInternalErrors) {
  EXPECT_TRUE(HasCode(Merge("[1]", R"({"a":1})"), StatusCode::kInternal));
  EXPECT_TRUE(HasCode(Merge(R"({"a":1})", "42"), StatusCode::kInternal));
  EXPECT_TRUE(HasCode(Merge("{", R"({"a":1})"), StatusCode::kInternal));
}

// ---- AppendJsonString, TrimJsonWhitespace, JsonTypeName, DescribeReceived

TEST(AppendJsonString, EscapesWhatJsonRequires) {
  std::string out = "x";
  AppendJsonString(&out, "q\"b\\n\nr\rt\tb\bf\f\x01\x1f\x7f é");
  EXPECT_EQ(out, "x\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\x7f é\"");
  std::string nul;
  AppendJsonString(&nul, std::string("a\0b", 3));
  EXPECT_EQ(nul, "\"a\\u0000b\"");
  std::string empty;
  AppendJsonString(&empty, "");
  EXPECT_EQ(empty, "\"\"");
}

TEST(AppendJsonString, RoundTripsThroughTheParser) {
  const std::string original("line1\nline2 \"quoted\" \\ back \x02 tab\t 日本");
  std::string json = "[";
  AppendJsonString(&json, original);
  json += "]";
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  ASSERT_EQ(parser.iterate(padded).get(doc), simdjson::SUCCESS);
  simdjson::ondemand::array array;
  ASSERT_EQ(doc.get_array().get(array), simdjson::SUCCESS);
  std::string_view parsed;
  ASSERT_EQ((*array.begin()).get_string().get(parsed), simdjson::SUCCESS);
  EXPECT_EQ(parsed, original);
}

TEST(TrimJsonWhitespace, TrimsOnlyTheEnd) {
  EXPECT_EQ(TrimJsonWhitespace(" a \t\r\n"), " a");
  EXPECT_EQ(TrimJsonWhitespace(""), "");
  EXPECT_EQ(TrimJsonWhitespace(" \n"), "");
  EXPECT_EQ(TrimJsonWhitespace("x"), "x");
}

TEST(JsonTypeName, NamesLikeJavaScript) {
  using simdjson::ondemand::json_type;
  EXPECT_STREQ(JsonTypeName(json_type::object), "object");
  EXPECT_STREQ(JsonTypeName(json_type::array), "array");
  EXPECT_STREQ(JsonTypeName(json_type::string), "string");
  EXPECT_STREQ(JsonTypeName(json_type::number), "number");
  EXPECT_STREQ(JsonTypeName(json_type::boolean), "boolean");
  EXPECT_STREQ(JsonTypeName(json_type::null), "null");
}

std::string Describe(const std::string& json_value) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded("{\"v\":" + json_value + "}");
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  simdjson::ondemand::value value;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(object) || object.find_field("v").get(value)) {
    return "parse failed";
  }
  return DescribeReceived(value);
}

TEST(DescribeReceived, RendersValuesForErrorMessages) {
  EXPECT_EQ(Describe("42"), "42 of type number");
  EXPECT_EQ(Describe("-1.5e3"), "-1.5e3 of type number");
  EXPECT_EQ(Describe("\"abc\""), "\"abc\" of type string");
  EXPECT_EQ(Describe("true"), "true of type boolean");
  EXPECT_EQ(Describe("false"), "false of type boolean");
  EXPECT_EQ(Describe("null"), "null");
  EXPECT_EQ(Describe("{\"a\":1}"), "an object");
  EXPECT_EQ(Describe("[1,2]"), "an array");
}

TEST(DescribeReceived, CutsLongValues) {
  const std::string text = Describe("\"" + std::string(100, 'x') + "\"");
  EXPECT_EQ(text, "\"" + std::string(36, 'x') + "... of type string");
}

TEST(JsonObjectWriter, WritesMembersInOrderWithNullForAbsentValues) {
  std::string out = "[";
  JsonObjectWriter(&out)
      .String("s", "a\"b\n")
      .Int("i", -7)
      .OptionalInt("none", std::nullopt)
      .OptionalString("name", std::optional<std::string_view>("x"))
      .OptionalString("missing", std::nullopt)
      .Bool("yes", true)
      .Raw("doc", R"({"k":[1]})")
      .OptionalRaw("empty", std::nullopt)
      .Close();
  out.push_back(']');
  EXPECT_EQ(out, R"([{"s":"a\"b\n","i":-7,"none":null,"name":"x","missing":null,"yes":true,"doc":{"k":[1]},"empty":null}])");
  std::string empty;
  JsonObjectWriter(&empty).Close();
  EXPECT_EQ(empty, "{}");
}

}  // namespace
}  // namespace deltasync
