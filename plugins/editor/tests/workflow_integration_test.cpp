// Folders, rename/move, permanent deletion, version pagination, named
// versions and retention, restore, advisory locks and end-to-end documents,
// through a real vellumd.
#include "editor_fixture.hpp"

using namespace edt;

namespace {

std::string id_of(const json& j) { return j["id"].get<std::string>(); }

json text_doc(Api& a, const std::string& tok, const std::string& content,
              const json& extra = json::object()) {
  json body = {{"type", "text"}, {"content", content}};
  body.update(extra);
  return a.ok("POST", "/v1/docs", tok, body, 201);
}

}  // namespace

TEST_CASE("folders nest and give documents their resource path", "[editor][http][folders]") {
  Api a;
  auto top = a.ok("POST", "/v1/folders", a.bob, {{"name", "Clients"}, {"workspace", "acme"}}, 201);
  CHECK(top["resource"] == "workspace/acme/folder/" + id_of(top));
  auto sub = a.ok("POST", "/v1/folders", a.bob, {{"name", "2026"}, {"parent", id_of(top)}}, 201);
  CHECK(sub["resource"] == "workspace/acme/folder/" + id_of(top) + "/folder/" + id_of(sub));
  auto doc = text_doc(a, a.bob, "in a folder", {{"folder", id_of(sub)}});
  CHECK(doc["resource"] ==
        "workspace/acme/folder/" + id_of(top) + "/folder/" + id_of(sub) + "/document/" + id_of(doc));
  auto items = a.ok("GET", "/v1/folders/" + id_of(sub) + "/items", a.bob)["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["kind"] == "document");
  auto top_items = a.ok("GET", "/v1/folders/" + id_of(top) + "/items", a.bob)["items"];
  REQUIRE(top_items.size() == 1);
  CHECK(top_items[0]["kind"] == "folder");

  // A workspace belongs to top-level objects only; folders cannot loop.
  a.problem("POST", "/v1/docs", a.bob,
            json({{"type", "text"}, {"content", "x"}, {"folder", id_of(sub)}, {"workspace", "w"}}).dump(),
            422);
  auto loop =
      a.problem("PATCH", "/v1/folders/" + id_of(top), a.bob, json({{"parent", id_of(sub)}}).dump(), 422);
  CHECK(loop["pointer"] == "/parent");
  a.problem("PATCH", "/v1/folders/" + id_of(top), a.bob, json({{"parent", id_of(top)}}).dump(), 422);

  // Rename and move the document to the top level: it stays in the workspace.
  auto moved = a.ok("PATCH", "/v1/docs/" + id_of(doc), a.bob, {{"title", "Renamed"}, {"folder", nullptr}});
  CHECK(moved["title"] == "Renamed");
  CHECK(moved["folder"].is_null());
  CHECK(moved["resource"] == "workspace/acme/document/" + id_of(doc));
  CHECK(a.ok("GET", "/v1/folders/" + id_of(sub) + "/items", a.bob)["items"].empty());
  auto back = a.ok("PATCH", "/v1/docs/" + id_of(doc), a.bob, {{"folder", id_of(top)}});
  CHECK(back["resource"] == "workspace/acme/folder/" + id_of(top) + "/document/" + id_of(doc));

  // Trashing a folder puts what is inside out of reach for saves.
  a.ok("DELETE", "/v1/folders/" + id_of(top), a.bob);
  auto inside = a.ok("GET", "/v1/docs/" + id_of(doc), a.bob);
  CHECK(inside["in_trashed_folder"] == true);
  a.problem("PUT", "/v1/docs/" + id_of(doc), a.bob, json({{"base_version", 1}, {"content", "y"}}).dump(),
            409);
  a.problem("DELETE", "/v1/folders/" + id_of(top) + "?permanent=true", a.bob, "", 409);  // not empty
  a.ok("POST", "/v1/folders/" + id_of(top) + "/restore", a.bob);
  CHECK(a.ok("PUT", "/v1/docs/" + id_of(doc), a.bob, {{"base_version", 1}, {"content", "y"}})["version"] ==
        2);

  // Another user sees none of it and can change none of it.
  const std::string carol_pw = "xylophone meadow 97!";
  REQUIRE(
      a.call("POST", "/v1/admin/users", a.admin,
             json({{"email", "carol@example.com"}, {"display_name", "Carol"}, {"password", carol_pw}}).dump())
          .status == 201);
  const std::string carol = a.login("carol@example.com", carol_pw);
  for (auto [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "/v1/folders/" + id_of(top), ""},
           {"GET", "/v1/folders/" + id_of(top) + "/items", ""},
           {"PATCH", "/v1/folders/" + id_of(top), json({{"name", "mine"}}).dump()},
           {"DELETE", "/v1/folders/" + id_of(top), ""},
           {"POST", "/v1/folders/" + id_of(top) + "/restore", ""},
           {"PATCH", "/v1/docs/" + id_of(doc), json({{"title", "mine"}}).dump()},
           {"POST", "/v1/docs/" + id_of(doc) + "/lock", ""},
           {"GET", "/v1/docs/" + id_of(doc) + "/lock", ""},
           {"DELETE", "/v1/docs/" + id_of(doc) + "/lock?break=true", ""},
           {"PUT", "/v1/docs/" + id_of(doc) + "/versions/1/name", json({{"name", "x"}}).dump()},
           {"POST", "/v1/docs/" + id_of(doc) + "/versions/1/restore", ""},
           {"DELETE", "/v1/docs/" + id_of(doc) + "?permanent=true", ""},
           {"POST", "/v1/docs", json({{"type", "text"}, {"content", "x"}, {"folder", id_of(top)}}).dump()},
           {"POST", "/v1/folders", json({{"name", "x"}, {"parent", id_of(top)}}).dump()}}) {
    auto r = a.call(method, path, carol, body);
    INFO(method << " " << path << " -> " << r.body);
    CHECK(r.status == 404);
  }
  CHECK(a.ok("GET", "/v1/folders", carol)["items"].empty());
  CHECK(a.ok("GET", "/v1/folders/" + id_of(top), a.bob)["name"] == "Clients");
  CHECK(a.v->stop() == 0);
}

TEST_CASE("permanent deletion needs the trash and removes every version", "[editor][http]") {
  Api a;
  auto doc = text_doc(a, a.bob, "to be purged");
  const std::string id = id_of(doc);
  a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 1}, {"content", "second"}});
  a.problem("DELETE", "/v1/docs/" + id + "?permanent=true", a.bob, "", 409);
  a.ok("DELETE", "/v1/docs/" + id, a.bob);
  CHECK(a.call("DELETE", "/v1/docs/" + id + "?permanent=true", a.bob).status == 204);
  a.problem("GET", "/v1/docs/" + id, a.bob, "", 404);
  a.problem("GET", "/v1/docs/" + id + "/versions/1", a.bob, "", 404);
  CHECK(a.ok("GET", "/v1/docs?trashed=true", a.bob)["items"].empty());
  auto audit = a.c->request("GET", "/v1/admin/audit?action=editor.document.purge", "", auth(a.admin));
  CHECK_THAT(audit.body, Catch::Contains(id));

  auto folder = a.ok("POST", "/v1/folders", a.bob, {{"name", "empty"}}, 201);
  a.problem("DELETE", "/v1/folders/" + id_of(folder) + "?permanent=true", a.bob, "", 409);
  a.ok("DELETE", "/v1/folders/" + id_of(folder), a.bob);
  CHECK(a.call("DELETE", "/v1/folders/" + id_of(folder) + "?permanent=true", a.bob).status == 204);
  a.problem("GET", "/v1/folders/" + id_of(folder), a.bob, "", 404);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("versions page with a cursor and can be named and restored", "[editor][http][versions]") {
  Api a;
  auto doc = text_doc(a, a.bob, "v1");
  const std::string id = id_of(doc);
  for (int n = 2; n <= 5; ++n)
    a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", n - 1}, {"content", "v" + std::to_string(n)}});
  auto p1 = a.ok("GET", "/v1/docs/" + id + "/versions?limit=2", a.bob);
  REQUIRE(p1["items"].size() == 2);
  CHECK(p1["items"][1]["n"] == 2);
  REQUIRE(p1["next_cursor"] == "2");
  auto p2 = a.ok("GET", "/v1/docs/" + id + "/versions?limit=2&cursor=2", a.bob);
  CHECK(p2["items"][0]["n"] == 3);
  auto p3 = a.ok("GET", "/v1/docs/" + id + "/versions?limit=2&cursor=4", a.bob);
  REQUIRE(p3["items"].size() == 1);
  CHECK(p3["next_cursor"].is_null());
  a.problem("GET", "/v1/docs/" + id + "/versions?cursor=x", a.bob, "", 400);

  auto named = a.ok("PUT", "/v1/docs/" + id + "/versions/2/name", a.bob, {{"name", "approved v3"}});
  CHECK(named["name"] == "approved v3");
  a.problem("PUT", "/v1/docs/" + id + "/versions/2/name", a.bob, json({{"name", 3}}).dump(), 422);
  a.problem("PUT", "/v1/docs/" + id + "/versions/9/name", a.bob, json({{"name", "x"}}).dump(), 404);

  auto restored = a.ok("POST", "/v1/docs/" + id + "/versions/2/restore", a.bob);
  CHECK(restored["version"] == 6);
  CHECK(restored["restored_from"] == 2);
  auto cur = a.ok("GET", "/v1/docs/" + id, a.bob);
  CHECK(cur["content"] == "v2");
  auto v6 = a.ok("GET", "/v1/docs/" + id + "/versions/6", a.bob);
  CHECK(v6["restored_from"] == 2);
  CHECK(v6["parent"] == 5);
  CHECK(v6["content_hash"] == a.ok("GET", "/v1/docs/" + id + "/versions/2", a.bob)["content_hash"]);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("retention keeps the newest and every named version", "[editor][http][versions]") {
  Api a("[plugins.editor.retention]\nkeep_last = 2\n");
  auto doc = text_doc(a, a.bob, "v1");
  const std::string id = id_of(doc);
  a.ok("PUT", "/v1/docs/" + id + "/versions/1/name", a.bob, {{"name", "first"}});
  for (int n = 2; n <= 6; ++n)
    a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", n - 1}, {"content", "v" + std::to_string(n)}});
  auto vs = a.ok("GET", "/v1/docs/" + id + "/versions", a.bob)["items"];
  std::vector<int> ns;
  for (auto& v : vs) ns.push_back(v["n"]);
  CHECK(ns == std::vector<int>{1, 5, 6});
  CHECK(a.ok("GET", "/v1/docs/" + id + "/versions/1", a.bob)["content"] == "v1");
  a.problem("GET", "/v1/docs/" + id + "/versions/3", a.bob, "", 404);
  CHECK(a.ok("GET", "/v1/docs/" + id, a.bob)["version_count"] == 3);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("advisory locks between two users", "[editor][http][locks]") {
  Api a;
  auto doc = text_doc(a, a.bob, "locked text");
  const std::string id = id_of(doc);
  // Admin (who may write any document without a PDP) locks it first.
  auto l = a.ok("POST", "/v1/docs/" + id + "/lock", a.admin, {{"timeout_seconds", 600}}, 201);
  CHECK(l["expires_ms"].get<int64_t>() - l["acquired_ms"].get<int64_t>() == 600000);
  auto info = a.ok("GET", "/v1/docs/" + id + "/lock", a.bob);
  CHECK(info["locked"] == true);
  const std::string admin_id = info["holder"];
  CHECK(admin_id != a.bob_id);
  auto opened = a.ok("GET", "/v1/docs/" + id, a.bob);
  CHECK(opened["read_only"] == true);
  CHECK(opened["lock"]["holder"] == admin_id);

  // Bob cannot take it or save without force; a refused save changes nothing.
  a.problem("POST", "/v1/docs/" + id + "/lock", a.bob, "", 409);
  auto refused =
      a.problem("PUT", "/v1/docs/" + id, a.bob, json({{"base_version", 1}, {"content", "bob"}}).dump(), 423);
  CHECK(refused["lock"]["holder"] == admin_id);
  a.problem("DELETE", "/v1/docs/" + id + "/lock", a.bob, "", 409);

  // The holder saves; then Bob force-edits (last write wins, audited).
  CHECK(a.ok("PUT", "/v1/docs/" + id, a.admin, {{"base_version", 1}, {"content", "admin"}})["version"] == 2);
  auto forced =
      a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 1}, {"content", "bob"}, {"force", true}});
  CHECK(forced["version"] == 3);
  CHECK(a.ok("GET", "/v1/docs/" + id + "/versions/3", a.bob)["forced_over"] == 2);
  auto audit = a.c->request("GET", "/v1/admin/audit?action=editor.document.force_edit", "", auth(a.admin));
  CHECK_THAT(audit.body, Catch::Contains(id));

  // Bob owns the document, so he may break the lock (audited).
  CHECK(a.call("DELETE", "/v1/docs/" + id + "/lock?break=true", a.bob).status == 204);
  CHECK(a.ok("GET", "/v1/docs/" + id + "/lock", a.bob)["locked"] == false);
  auto broke = a.c->request("GET", "/v1/admin/audit?action=editor.lock.break", "", auth(a.admin));
  CHECK_THAT(broke.body, Catch::Contains(id));

  // Bob locks, saves and releases in one go.
  a.ok("POST", "/v1/docs/" + id + "/lock", a.bob, json::object(), 201);
  a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 3}, {"content", "done"}, {"release_lock", true}});
  CHECK(a.ok("GET", "/v1/docs/" + id + "/lock", a.bob)["locked"] == false);
  a.problem("POST", "/v1/docs/" + id + "/lock", a.bob, json({{"timeout_seconds", 0}}).dump(), 422);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("end-to-end documents store a checked envelope", "[editor][http][e2ee]") {
  Api a;
  const std::string b64_12 = vellum::editor::b64encode(std::string(12, 'n'));
  json env = {{"vellum_envelope", 1},
              {"content",
               {{"alg", "A256GCM"},
                {"nonce", b64_12},
                {"ciphertext", vellum::editor::b64encode(std::string(40, 'c'))}}},
              {"recipients",
               {{{"kid", std::string(64, 'a')},
                 {"alg", "X25519+HKDF-SHA256+A256GCM"},
                 {"epk", vellum::editor::b64encode(std::string(44, 'e'))},
                 {"nonce", b64_12},
                 {"wrapped_key", vellum::editor::b64encode(std::string(48, 'w'))}}}},
              {"kem", nullptr}};
  auto doc = a.ok("POST", "/v1/docs", a.bob, {{"type", "richtext"}, {"e2ee", true}, {"content", env}}, 201);
  CHECK(doc["e2ee"] == true);
  CHECK(doc["content_type"] == "application/vnd.vellum.envelope+json");
  CHECK(doc["unavailable"].size() == 4);
  CHECK(a.ok("GET", "/v1/docs/" + id_of(doc), a.bob)["content"] == env);

  json bad = env;
  bad["recipients"][0]["wrapped_key"] = vellum::editor::b64encode(std::string(47, 'w'));
  auto p = a.problem("PUT", "/v1/docs/" + id_of(doc), a.bob,
                     json({{"base_version", 1}, {"content", bad}}).dump(), 422);
  CHECK(p["pointer"] == "/content/recipients/0/wrapped_key");
  bad = env;
  bad["kem"] = "ml-kem";
  a.problem("POST", "/v1/docs", a.bob, json({{"type", "richtext"}, {"e2ee", true}, {"content", bad}}).dump(),
            422);
  a.problem("POST", "/v1/docs", a.bob,
            json({{"type", "richtext"}, {"e2ee", true}, {"content", "plain"}}).dump(), 422);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("folders nest at most 64 deep also when a subtree moves", "[editor][http][folders]") {
  Api a;
  std::vector<std::string> chain;
  for (int i = 0; i < 63; ++i) {
    json body = {{"name", "level " + std::to_string(i + 1)}};
    if (!chain.empty()) body["parent"] = chain.back();
    chain.push_back(id_of(a.ok("POST", "/v1/folders", a.bob, body, 201)));
  }
  auto x = a.ok("POST", "/v1/folders", a.bob, {{"name", "x"}}, 201);
  auto y = a.ok("POST", "/v1/folders", a.bob, {{"name", "y"}, {"parent", id_of(x)}}, 201);
  // 63 levels above plus x and y would make 65.
  auto deep = a.problem("PATCH", "/v1/folders/" + id_of(x), a.bob, json({{"parent", chain[62]}}).dump(), 422);
  CHECK(deep["pointer"] == "/parent");
  CHECK(a.ok("PATCH", "/v1/folders/" + id_of(x), a.bob, {{"parent", chain[61]}})["parent"] == chain[61]);
  // A 64th level is allowed, a 65th is not.
  a.ok("POST", "/v1/folders", a.bob, {{"name", "64"}, {"parent", chain[62]}}, 201);
  a.ok("POST", "/v1/folders", a.bob, {{"name", "64 too"}, {"parent", id_of(x)}}, 201);
  a.problem("POST", "/v1/folders", a.bob, json({{"name", "65"}, {"parent", id_of(y)}}).dump(), 422);
  CHECK(a.v->stop() == 0);
}
