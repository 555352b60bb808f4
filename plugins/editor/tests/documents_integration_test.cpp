// The document API (/v1/docs) through real vellumd with crypto + editor:
// CRUD, versions and optimistic concurrency, save-if-unchanged, permissions
// for another user, bad input, and no plaintext in the database file.
#include "editor_fixture.hpp"

using namespace edt;

TEST_CASE("documents CRUD through HTTP", "[editor][http]") {
  Api a;
  auto doc = a.ok("POST", "/v1/docs", a.bob,
                  {{"type", "richtext"}, {"title", "Plan"}, {"content", richtext("first draft")}}, 201);
  const std::string id = doc["id"];
  CHECK(doc["type"] == "richtext");
  CHECK(doc["owner"] == a.bob_id);
  CHECK(doc["version"] == 1);
  CHECK(doc["version_count"] == 1);
  CHECK(doc["content_hash"].get<std::string>().size() == 64);
  CHECK_FALSE(doc.contains("wrapped_key"));

  auto got = a.ok("GET", "/v1/docs/" + id, a.bob);
  CHECK(got["content"] == richtext("first draft"));
  CHECK(got["title"] == "Plan");

  auto text =
      a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"title", "Notes"}, {"content", "hello"}}, 201);
  CHECK(a.ok("GET", "/v1/docs/" + text["id"].get<std::string>(), a.bob)["content"] == "hello");

  // List with cursor pagination.
  a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "third"}}, 201);
  auto p1 = a.ok("GET", "/v1/docs?limit=2", a.bob);
  REQUIRE(p1["items"].size() == 2);
  REQUIRE(p1["next_cursor"].is_string());
  auto p2 = a.ok("GET", "/v1/docs?limit=2&cursor=" + p1["next_cursor"].get<std::string>(), a.bob);
  REQUIRE(p2["items"].size() == 1);
  CHECK(p2["next_cursor"].is_null());
  CHECK(p2["items"][0]["id"] != p1["items"][0]["id"]);
  CHECK(p2["items"][0]["id"] != p1["items"][1]["id"]);

  // Trash and restore.
  CHECK(a.ok("DELETE", "/v1/docs/" + id, a.bob)["trashed"] == true);
  CHECK(a.ok("GET", "/v1/docs", a.bob)["items"].size() == 2);
  CHECK(a.ok("GET", "/v1/docs?trashed=true", a.bob)["items"].size() == 1);
  a.problem("DELETE", "/v1/docs/" + id, a.bob, "", 409);
  a.problem("PUT", "/v1/docs/" + id, a.bob, json({{"base_version", 1}, {"content", richtext("x")}}).dump(),
            409);
  CHECK(a.ok("POST", "/v1/docs/" + id + "/restore", a.bob)["trashed"] == false);
  a.problem("POST", "/v1/docs/" + id + "/restore", a.bob, "", 409);
  CHECK(a.ok("GET", "/v1/docs", a.bob)["items"].size() == 3);

  auto audit = a.c->request("GET", "/v1/admin/audit?resource=document/" + id, "", auth(a.admin));
  CHECK_THAT(audit.body, Catch::Contains("editor.document.create"));
  CHECK_THAT(audit.body, Catch::Contains("editor.document.delete"));
  CHECK_THAT(audit.body, Catch::Contains("editor.document.restore"));
  CHECK(a.v->stop() == 0);
}

TEST_CASE("every save is a version and a stale base gets 409", "[editor][http]") {
  Api a;
  auto doc = a.ok("POST", "/v1/docs", a.bob, {{"type", "richtext"}, {"content", richtext("v1")}}, 201);
  const std::string id = doc["id"];
  auto s2 = a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 1}, {"content", richtext("v2")}});
  CHECK(s2["version"] == 2);
  CHECK(s2["changed"] == true);
  auto s3 = a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 2}, {"content", richtext("v3")}});
  CHECK(s3["version"] == 3);

  auto stale = a.problem("PUT", "/v1/docs/" + id, a.bob,
                         json({{"base_version", 2}, {"content", richtext("lost")}}).dump(), 409);
  CHECK(stale["current_version"] == 3);
  CHECK(a.ok("GET", "/v1/docs/" + id, a.bob)["content"] == richtext("v3"));

  auto vs = a.ok("GET", "/v1/docs/" + id + "/versions", a.bob)["items"];
  REQUIRE(vs.size() == 3);
  CHECK(vs[0]["n"] == 1);
  CHECK(vs[0]["parent"].is_null());
  CHECK(vs[2]["parent"] == 2);
  CHECK(vs[1]["author"] == a.bob_id);
  CHECK_FALSE(vs[1].contains("ciphertext"));
  CHECK(vs[0]["content_hash"] != vs[1]["content_hash"]);
  CHECK(a.ok("GET", "/v1/docs/" + id + "/versions/2", a.bob)["content"] == richtext("v2"));
  CHECK(a.ok("GET", "/v1/docs/" + id + "/versions/1", a.bob)["content"] == richtext("v1"));
  a.problem("GET", "/v1/docs/" + id + "/versions/4", a.bob, "", 404);
  a.problem("GET", "/v1/docs/" + id + "/versions/x", a.bob, "", 400);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("saving unchanged content creates no version", "[editor][http]") {
  Api a;
  auto doc = a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "same"}}, 201);
  const std::string id = doc["id"];
  auto s = a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 1}, {"content", "same"}});
  CHECK(s["changed"] == false);
  CHECK(s["version"] == 1);
  CHECK(s["content_hash"] == doc["content_hash"]);
  CHECK(a.ok("GET", "/v1/docs/" + id + "/versions", a.bob)["items"].size() == 1);
  CHECK(a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 1}, {"content", "different"}})["version"] ==
        2);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("another user is refused on every route", "[editor][http][authz]") {
  Api a;
  auto doc = a.ok("POST", "/v1/docs", a.admin, {{"type", "text"}, {"content", "admin only"}}, 201);
  const std::string id = doc["id"];
  const std::string save = json({{"base_version", 1}, {"content", "bob was here"}}).dump();
  for (auto [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "/v1/docs/" + id, ""},
           {"PUT", "/v1/docs/" + id, save},
           {"DELETE", "/v1/docs/" + id, ""},
           {"POST", "/v1/docs/" + id + "/restore", ""},
           {"GET", "/v1/docs/" + id + "/versions", ""},
           {"GET", "/v1/docs/" + id + "/versions/1", ""}}) {
    auto r = a.call(method, path, a.bob, body);
    INFO(method << " " << path << " -> " << r.body);
    CHECK((r.status == 403 || r.status == 404));
    CHECK(a.c->request(method, path, body).status == 401);
  }
  CHECK(a.ok("GET", "/v1/docs", a.bob)["items"].empty());
  // Nothing changed, and an administrator may open Bob's documents.
  auto still = a.ok("GET", "/v1/docs/" + id, a.admin);
  CHECK(still["version"] == 1);
  CHECK(still["trashed"] == false);
  auto bobs = a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "bob's"}}, 201);
  CHECK(a.ok("GET", "/v1/docs/" + bobs["id"].get<std::string>(), a.admin)["content"] == "bob's");
  CHECK(a.v->stop() == 0);
}

TEST_CASE("bad input gets clear 4xx answers", "[editor][http]") {
  Api a;
  a.problem("POST", "/v1/docs", a.bob, "{not json", 400);
  a.problem("POST", "/v1/docs", a.bob, "{\"type\":\"text\",\"content\":\"\xff\xfe\"}", 400);
  auto t =
      a.problem("POST", "/v1/docs", a.bob, json({{"type", "spreadsheet"}, {"content", "x"}}).dump(), 422);
  CHECK(t["pointer"] == "/type");
  json bad = richtext("ok");
  bad["content"][0]["content"].push_back({{"type", "text"}});
  auto p = a.problem("POST", "/v1/docs", a.bob, json({{"type", "richtext"}, {"content", bad}}).dump(), 422);
  CHECK(p["pointer"] == "/content/content/0/content/1");
  json deep = {{"type", "text"}, {"text", "deep"}};
  for (int i = 0; i < 40; ++i) deep = {{"type", "blockquote"}, {"content", {deep}}};
  a.problem("POST", "/v1/docs", a.bob,
            json({{"type", "richtext"}, {"content", {{"type", "doc"}, {"content", {deep}}}}}).dump(), 422);
  a.problem("POST", "/v1/docs", a.bob, json({{"type", "text"}, {"content", std::string(70000, 'x')}}).dump(),
            413);
  CHECK(a.ok("GET", "/v1/docs", a.bob)["items"].empty());  // no partial writes
  auto doc = a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "x"}}, 201);
  a.problem("PUT", "/v1/docs/" + doc["id"].get<std::string>(), a.bob, json({{"content", "y"}}).dump(), 422);
  a.problem("GET", "/v1/docs/not-an-id", a.bob, "", 404);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("document content is never stored in plaintext", "[editor][http][crypto]") {
  Api a;
  const std::string marker = "EDITOR-PLAINTEXT-MARKER-3f9a77";
  auto doc =
      a.ok("POST", "/v1/docs", a.bob, {{"type", "richtext"}, {"content", richtext(marker + " one")}}, 201);
  a.ok("PUT", "/v1/docs/" + doc["id"].get<std::string>(), a.bob,
       {{"base_version", 1}, {"content", richtext(marker + " two")}});
  a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", marker + " text"}}, 201);
  CHECK(a.v->log().find(marker) == std::string::npos);
  CHECK(a.v->stop() == 0);
  const std::string db = a.db_bytes();
  REQUIRE(db.size() > 0);
  CHECK(db.find(marker) == std::string::npos);
  CHECK(db.find(vellum::editor::b64encode(marker)) == std::string::npos);
}

TEST_CASE("vellumd refuses a bad editor config and an editor without crypto", "[editor][config]") {
  const std::string key = new_root_key();
  {
    Vellumd v(Vellumd::Options(
        "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n[plugins.editor]\nmax_dept = 8\n", false,
        {{"VELLUM_ROOT_KEY", key}}));
    CHECK(v.wait_exit() != 0);
    CHECK_THAT(v.log(), Catch::Contains("unknown config key 'max_dept'"));
  }
  {
    Vellumd v(Vellumd::Options("[plugins.editor]\n", false));
    CHECK(v.wait_exit() != 0);
    CHECK_THAT(v.log(), Catch::Contains("requires 'crypto'"));
  }
}
