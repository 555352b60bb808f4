// The rich-text validator names the first problem by JSON pointer.
#include <catch2/catch.hpp>

#include "validate.hpp"

using nlohmann::json;
using vellum::editor::nesting_exceeds;
using vellum::editor::validate_richtext;

namespace {
json para(json content) { return {{"type", "paragraph"}, {"content", std::move(content)}}; }
json text(const std::string& t) { return {{"type", "text"}, {"text", t}}; }
std::string pointer_of(const json& doc, uint32_t depth = 64) {
  auto p = validate_richtext(doc, depth);
  REQUIRE(p);
  return p->pointer;
}
}  // namespace

TEST_CASE("a well-formed tiptap document passes", "[editor][validate]") {
  json doc = {{"type", "doc"},
              {"content",
               {{{"type", "heading"}, {"attrs", {{"level", 1}}}, {"content", {text("Title")}}},
                para({text("plain "), {{"type", "text"}, {"text", "bold"}, {"marks", {{{"type", "bold"}}}}}}),
                {{"type", "horizontalRule"}}}}};
  CHECK_FALSE(validate_richtext(doc, 64));
  CHECK_FALSE(validate_richtext(json{{"type", "doc"}, {"content", json::array()}}, 64));
}

TEST_CASE("the pointer names the first problem", "[editor][validate]") {
  json doc = {{"type", "doc"}, {"content", {para({text("a"), text("b"), text("c"), {{"type", "text"}}})}}};
  CHECK(pointer_of(doc) == "/content/0/content/3");
  doc["content"][0]["content"][3] = {{"type", "paragraph"}, {"text", "x"}};
  CHECK(pointer_of(doc) == "/content/0/content/3/text");
  doc["content"][0]["content"][3] = {{"type", 7}};
  CHECK(pointer_of(doc) == "/content/0/content/3/type");
  doc["content"][0]["content"][3] = text("ok");
  doc["content"][0]["content"][1]["marks"] = {{{"type", "bold"}}, {{"kind", "italic"}}};
  CHECK(pointer_of(doc) == "/content/0/content/1/marks/1/type");
  doc["content"][0]["content"][1]["marks"] = json::array();
  doc["content"][0]["content"][2]["content"] = json::array();
  CHECK(pointer_of(doc) == "/content/0/content/2/content");
  doc["content"][0]["content"][2].erase("content");
  doc["content"][0]["bogus"] = 1;
  CHECK(pointer_of(doc) == "/content/0/bogus");
  doc["content"][0].erase("bogus");
  CHECK_FALSE(validate_richtext(doc, 64));
}

TEST_CASE("the top level must be a doc node", "[editor][validate]") {
  CHECK(pointer_of(json::array()) == "");
  CHECK(pointer_of(json{{"type", "paragraph"}, {"content", json::array()}}) == "/type");
  CHECK(pointer_of(json{{"type", "doc"}}) == "/content");
  CHECK(pointer_of(json{{"type", "doc"}, {"content", {"not a node"}}}) == "/content/0");
}

TEST_CASE("depth is bounded by max_depth", "[editor][validate]") {
  json inner = text("deep");
  for (int i = 0; i < 5; ++i) inner = {{"type", "blockquote"}, {"content", {inner}}};
  json doc = {{"type", "doc"}, {"content", {inner}}};  // doc=1, 5 quotes, text=7
  CHECK_FALSE(validate_richtext(doc, 7));
  auto p = validate_richtext(doc, 6);
  REQUIRE(p);
  CHECK(p->pointer == "/content/0/content/0/content/0/content/0/content/0/content/0");
  CHECK_THAT(p->message, Catch::Contains("max_depth"));
}

TEST_CASE("raw nesting is measured outside strings", "[editor][validate]") {
  CHECK_FALSE(nesting_exceeds(R"({"a":[[1]]})", 3));
  CHECK(nesting_exceeds(R"({"a":[[[1]]]})", 3));
  CHECK_FALSE(nesting_exceeds(R"({"a":"[[[[[[\"[[[["})", 3));
  CHECK(nesting_exceeds(std::string(100000, '['), 200));
}
