// Sheets, scenes, three-way merge on a stale save, and exports, through a
// real vellumd.
#include "editor_fixture.hpp"

using namespace edt;

namespace {

std::string id_of(const json& j) { return j["id"].get<std::string>(); }

json para(const std::string& text) {
  return {{"type", "paragraph"}, {"content", {{{"type", "text"}, {"text", text}}}}};
}
json doc_of(std::initializer_list<json> paras) {
  json d = {{"type", "doc"}, {"content", json::array()}};
  for (auto& p : paras) d["content"].push_back(p);
  return d;
}

}  // namespace

TEST_CASE("sheets and scenes are validated with pointers", "[editor][http][schema]") {
  Api a;
  json wb = {
      {"sheets", {{{"name", "Q1"}, {"rows", 5}, {"cols", 2}, {"cells", {{"B5", {{"f", "=A1+B6"}}}}}}}}};
  auto p = a.problem("POST", "/v1/docs", a.bob, json({{"type", "sheet"}, {"content", wb}}).dump(), 422);
  CHECK(p["pointer"] == "/content/sheets/0/cells/B5/f");
  wb["sheets"][0]["cells"]["B5"]["f"] = "=A1+B4";
  auto sheet = a.ok("POST", "/v1/docs", a.bob, {{"type", "sheet"}, {"content", wb}}, 201);
  CHECK(sheet["content_type"] == "application/json");

  json cyc = {{"root", "r"},
              {"nodes",
               {{"r", {{"type", "frame"}}},
                {"a", {{"type", "group"}, {"parent", "b"}, {"children", {"b"}}}},
                {"b", {{"type", "group"}, {"parent", "a"}, {"children", {"a"}}}}}}};
  auto c = a.problem("POST", "/v1/docs", a.bob, json({{"type", "scene"}, {"content", cyc}}).dump(), 422);
  CHECK(c["pointer"].get<std::string>().rfind("/content/nodes/", 0) == 0);
  CHECK(a.ok("GET", "/v1/docs", a.bob)["items"].size() == 1);  // the refused scene left nothing
  CHECK(a.v->stop() == 0);
}

TEST_CASE("a stale save merges when asked and reports overlaps", "[editor][http][merge]") {
  Api a;
  auto d = a.ok("POST", "/v1/docs", a.bob,
                {{"type", "richtext"}, {"content", doc_of({para("one"), para("two")})}}, 201);
  const std::string id = id_of(d);
  // Admin edits paragraph two; Bob, still on version 1, edits paragraph one.
  a.ok("PUT", "/v1/docs/" + id, a.admin,
       {{"base_version", 1}, {"content", doc_of({para("one"), para("TWO")})}});
  const json bobs = doc_of({para("ONE"), para("two")});
  a.problem("PUT", "/v1/docs/" + id, a.bob, json({{"base_version", 1}, {"content", bobs}}).dump(), 409);
  auto m = a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 1}, {"content", bobs}, {"merge", true}});
  CHECK(m["version"] == 3);
  CHECK(m["merged"]["base"] == 1);
  CHECK(m["merged"]["remote"] == 2);
  CHECK(a.ok("GET", "/v1/docs/" + id, a.bob)["content"] == doc_of({para("ONE"), para("TWO")}));

  // Both change the same text: 409 with the pointer and both values, nothing saved.
  a.ok("PUT", "/v1/docs/" + id, a.admin,
       {{"base_version", 3}, {"content", doc_of({para("admin"), para("TWO")})}});
  auto clash = a.problem(
      "PUT", "/v1/docs/" + id, a.bob,
      json({{"base_version", 3}, {"content", doc_of({para("bob"), para("TWO")})}, {"merge", true}}).dump(),
      409);
  REQUIRE(clash["conflicts"].size() == 1);
  CHECK(clash["conflicts"][0]["pointer"] == "/content/0/content/0/text");
  CHECK(clash["conflicts"][0]["local"] == "bob");
  CHECK(clash["conflicts"][0]["remote"] == "admin");
  CHECK(clash["current_version"] == 4);
  CHECK(a.ok("GET", "/v1/docs/" + id, a.bob)["version"] == 4);

  // Text documents do not merge.
  auto t = a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "x"}}, 201);
  a.ok("PUT", "/v1/docs/" + id_of(t), a.bob, {{"base_version", 1}, {"content", "y"}});
  a.problem("PUT", "/v1/docs/" + id_of(t), a.bob,
            json({{"base_version", 1}, {"content", "z"}, {"merge", true}}).dump(), 409);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("role precedence lets the owner's side win an overlap", "[editor][http][merge]") {
  Api a("merge_role_precedence = true\n");
  auto d = a.ok("POST", "/v1/docs", a.bob, {{"type", "richtext"}, {"content", doc_of({para("base")})}}, 201);
  const std::string id = id_of(d);
  a.ok("PUT", "/v1/docs/" + id, a.admin, {{"base_version", 1}, {"content", doc_of({para("admin")})}});
  auto m = a.ok("PUT", "/v1/docs/" + id, a.bob,
                {{"base_version", 1}, {"content", doc_of({para("owner")})}, {"merge", true}});
  CHECK(m["merged"]["resolved"] == 1);
  CHECK(a.ok("GET", "/v1/docs/" + id, a.bob)["content"] == doc_of({para("owner")}));
  CHECK(a.v->stop() == 0);
}

TEST_CASE("exports render each type and escape content", "[editor][http][export]") {
  Api a;
  auto rt =
      a.ok("POST", "/v1/docs", a.bob, {{"type", "richtext"}, {"content", doc_of({para("<b>hi</b>")})}}, 201);
  auto html = a.call("GET", "/v1/docs/" + id_of(rt) + "/export?format=html", a.bob);
  REQUIRE(html.status == 200);
  CHECK(html.body == "<p>&lt;b&gt;hi&lt;/b&gt;</p>\n");
  CHECK(html.header("Content-Type").find("text/html") == 0);
  CHECK(html.header("Content-Security-Policy").find("sandbox") == 0);
  CHECK(html.header("Content-Disposition") == "attachment; filename=\"" + id_of(rt) + ".html\"");
  auto md = a.call("GET", "/v1/docs/" + id_of(rt) + "/export?format=markdown", a.bob);
  CHECK(md.body == "&lt;b&gt;hi&lt;/b&gt;\n");
  auto js = a.call("GET", "/v1/docs/" + id_of(rt) + "/export?format=json&version=1", a.bob);
  CHECK(json::parse(js.body) == doc_of({para("<b>hi</b>")}));
  a.problem("GET", "/v1/docs/" + id_of(rt) + "/export?format=csv", a.bob, "", 422);
  a.problem("GET", "/v1/docs/" + id_of(rt) + "/export?format=html&version=7", a.bob, "", 404);

  json wb = {{"sheets",
              {{{"name", "Q1"},
                {"rows", 5},
                {"cols", 2},
                {"cells", {{"A1", {{"v", "=cmd"}}}, {"B2", {{"v", 2}}}}}}}}};
  auto sh = a.ok("POST", "/v1/docs", a.bob, {{"type", "sheet"}, {"content", wb}}, 201);
  auto csv = a.call("GET", "/v1/docs/" + id_of(sh) + "/export?format=csv&sheet=Q1", a.bob);
  CHECK(csv.body == "'=cmd,\r\n,2\r\n");
  a.problem("GET", "/v1/docs/" + id_of(sh) + "/export?format=csv&sheet=Q9", a.bob, "", 404);

  json sc = {{"root", "r"},
             {"nodes",
              {{"r", {{"type", "frame"}, {"props", {{"width", 10}, {"height", 10}}}, {"children", {"t"}}}},
               {"t", {{"type", "text"}, {"parent", "r"}, {"props", {{"text", "a<b"}}}}}}}};
  auto scene = a.ok("POST", "/v1/docs", a.bob, {{"type", "scene"}, {"content", sc}}, 201);
  auto svg = a.call("GET", "/v1/docs/" + id_of(scene) + "/export?format=svg", a.bob);
  CHECK(svg.header("Content-Type") == "image/svg+xml");
  CHECK(svg.body.find(">a&lt;b</text>") != std::string::npos);

  // Another user may not export, and the export is audited.
  const std::string pw = "xylophone meadow 97!";
  REQUIRE(a.call("POST", "/v1/admin/users", a.admin,
                 json({{"email", "carol@example.com"}, {"display_name", "Carol"}, {"password", pw}}).dump())
              .status == 201);
  a.problem("GET", "/v1/docs/" + id_of(rt) + "/export?format=html", a.login("carol@example.com", pw), "",
            404);
  auto audit = a.c->request("GET", "/v1/admin/audit?action=editor.document.export", "", auth(a.admin));
  CHECK_THAT(audit.body, Catch::Contains(id_of(rt)));
  CHECK(a.v->stop() == 0);
}
