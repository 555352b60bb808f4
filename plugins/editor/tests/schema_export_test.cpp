// Sheet and scene schemas (422 pointers), the envelope check and the
// exporters' escaping.
#include <catch2/catch.hpp>

#include "export.hpp"
#include "validate.hpp"

using nlohmann::json;
using namespace vellum::editor;

namespace {
json sheet(json cells) {
  return {{"sheets", {{{"name", "S1"}, {"rows", 10}, {"cols", 3}, {"cells", cells}}}}};
}
json scene(json nodes) { return {{"root", "r"}, {"nodes", nodes}}; }
}  // namespace

TEST_CASE("sheet references must lie inside the sheet", "[editor][schema]") {
  CHECK_FALSE(validate_sheet(sheet({{"A1", {{"v", 1}}}, {"C10", {{"f", "=SUM(A1:C10)"}}}})));
  auto out = validate_sheet(sheet({{"D1", {{"v", 1}}}}));
  REQUIRE(out);
  CHECK(out->pointer == "/sheets/0/cells/D1");
  auto f = validate_sheet(sheet({{"A1", {{"f", "=A11+LOG10(2)"}}}}));
  REQUIRE(f);
  CHECK(f->pointer == "/sheets/0/cells/A1/f");
  CHECK_FALSE(validate_sheet(sheet({{"A1", {{"f", "=LOG10(B2) & \"Z99\""}}}})));
  auto other = validate_sheet(sheet({{"A1", {{"f", "=Nope!A1"}}}}));
  REQUIRE(other);
  CHECK(other->pointer == "/sheets/0/cells/A1/f");
  CHECK(validate_sheet(sheet({{"a1", {{"v", 1}}}}))->pointer == "/sheets/0/cells/a1");
  CHECK(validate_sheet({{"sheets", json::array()}})->pointer == "/sheets");
}

TEST_CASE("scene graphs refuse cycles and disagreeing parents", "[editor][schema]") {
  json ok = scene({{"r", {{"type", "frame"}, {"children", {"a"}}}},
                   {"a", {{"type", "rect"}, {"parent", "r"}, {"props", {{"x", 1}, {"fill", "#fff"}}}}}});
  CHECK_FALSE(validate_scene(ok));
  json cyc = scene({{"r", {{"type", "frame"}}},
                    {"a", {{"type", "group"}, {"parent", "b"}, {"children", {"b"}}}},
                    {"b", {{"type", "group"}, {"parent", "a"}, {"children", {"a"}}}}});
  auto p = validate_scene(cyc);
  REQUIRE(p);
  CHECK(p->message.find("cycle") != std::string::npos);
  CHECK(p->pointer.rfind("/nodes/", 0) == 0);
  json lie =
      scene({{"r", {{"type", "frame"}, {"children", {"a"}}}}, {"a", {{"type", "rect"}, {"parent", "x"}}}});
  CHECK(validate_scene(lie)->pointer == "/nodes/a/parent");
  json badprop = ok;
  badprop["nodes"]["a"]["props"]["x"] = "1";
  CHECK(validate_scene(badprop)->pointer == "/nodes/a/props/x");
  json badid = scene(
      {{"r", {{"type", "frame"}, {"children", {"a/b"}}}}, {"a/b", {{"type", "rect"}, {"parent", "r"}}}});
  CHECK(validate_scene(badid)->pointer == "/nodes/a~1b");
}

TEST_CASE("rich text exports escape everything", "[editor][export]") {
  json doc = {
      {"type", "doc"},
      {"content",
       {{{"type", "heading"}, {"attrs", {{"level", 2}}}, {"content", {{{"type", "text"}, {"text", "<T&>"}}}}},
        {{"type", "paragraph"},
         {"content",
          {{{"type", "text"}, {"text", "bold*"}, {"marks", {{{"type", "bold"}}}}},
           {{"type", "text"},
            {"text", "x"},
            {"marks", {{{"type", "link"}, {"attrs", {{"href", "javascript:alert(1)"}}}}}}},
           {{"type", "text"},
            {"text", "ok"},
            {"marks", {{{"type", "link"}, {"attrs", {{"href", "https://e.x/?a=\"b\""}}}}}}}}}}}}};
  const std::string html = richtext_html(doc);
  CHECK(html.find("<h2>&lt;T&amp;&gt;</h2>") != std::string::npos);
  CHECK(html.find("<strong>bold*</strong>") != std::string::npos);
  CHECK(html.find("javascript") == std::string::npos);
  CHECK(html.find("href=\"https://e.x/?a=&quot;b&quot;\"") != std::string::npos);
  const std::string md = richtext_markdown(doc);
  CHECK(md.find("## &lt;T&amp;&gt;") != std::string::npos);
  CHECK(md.find("**bold\\***") != std::string::npos);
  CHECK(md.find("javascript") == std::string::npos);
}

TEST_CASE("CSV export guards against formula injection", "[editor][export]") {
  json wb = sheet({{"A1", {{"v", "=HYPERLINK(\"http://x\")"}}},
                   {"B1", {{"v", "a,b"}}},
                   {"C2", {{"v", 3.5}}},
                   {"A2", {{"v", "@SUM(1)"}}}});
  auto csv = sheet_csv(wb, "S1");
  REQUIRE(csv);
  CHECK(*csv == "\"'=HYPERLINK(\"\"http://x\"\")\",\"a,b\",\r\n'@SUM(1),,3.5\r\n");
  CHECK(sheet_csv(wb, "0") == csv);
  CHECK_FALSE(sheet_csv(wb, "S2"));
}

TEST_CASE("SVG export escapes attributes and text", "[editor][export]") {
  json sc =
      scene({{"r", {{"type", "frame"}, {"props", {{"width", 100}, {"height", 50}}}, {"children", {"t"}}}},
             {"t",
              {{"type", "text"},
               {"parent", "r"},
               {"props", {{"text", "</text><script>"}, {"fill", "red\" onload=\"x"}}}}}});
  REQUIRE_FALSE(validate_scene(sc));
  const std::string svg = scene_svg(sc);
  CHECK(svg.find("<script>") == std::string::npos);
  CHECK(svg.find("&lt;/text&gt;&lt;script&gt;") != std::string::npos);
  CHECK(svg.find("onload") == std::string::npos);
  CHECK(svg.find("width=\"100\"") != std::string::npos);
}
