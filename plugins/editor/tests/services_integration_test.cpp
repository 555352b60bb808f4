// The editor's service seams through a real vellumd and a test plugin
// (edprobe): the documents service, the entitlements quota hook, the export
// filter, and guests refused on collection routes.
#include "editor_fixture.hpp"

using namespace edt;

namespace {
std::string id_of(const json& j) { return j["id"].get<std::string>(); }
const char* kProbe = "[plugins.edprobe]\nstorage_limit = 2000\n";
}  // namespace

TEST_CASE("the documents service describes documents and reads exact versions", "[editor][http][service]") {
  Api a(kProbe);
  auto folder = a.ok("POST", "/v1/folders", a.bob, {{"name", "F"}}, 201);
  auto doc =
      a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "one"}, {"folder", id_of(folder)}}, 201);
  const std::string id = id_of(doc);
  a.ok("PUT", "/v1/docs/" + id, a.bob, {{"base_version", 1}, {"content", "two"}});
  a.ok("PUT", "/v1/docs/" + id + "/versions/1/name", a.bob, {{"name", "first"}});
  auto d = a.ok("GET", "/v1/edprobe/docs/" + id, a.bob);
  CHECK(d["resource"] == "folder/" + id_of(folder) + "/document/" + id);
  CHECK(d["current_version"] == 2);
  CHECK(d["owner"] == a.bob_id);
  CHECK(d["e2ee"] == false);
  auto v1 = a.ok("GET", "/v1/edprobe/docs/" + id + "/versions/1", a.bob);
  CHECK(v1["sha256"] == a.ok("GET", "/v1/docs/" + id + "/versions/1", a.bob)["content_hash"]);
  CHECK(v1["size"] == 3);
  CHECK(v1["meta"]["name"] == "first");
  CHECK(v1["meta"]["content_type"] == "text/plain; charset=utf-8");
  CHECK(v1["meta"]["parent"].is_null());
  a.problem("GET", "/v1/edprobe/docs/" + id + "/versions/3", a.bob, "", 404);
  a.problem("GET", "/v1/edprobe/docs/" + std::string(32, '0'), a.bob, "", 404);
  a.problem("GET", "/v1/edprobe/docs/nope", a.bob, "", 400);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("an entitlements provider can refuse storage", "[editor][http][service]") {
  Api a(kProbe);
  auto big = a.problem("POST", "/v1/docs", a.bob,
                       json({{"type", "text"}, {"content", std::string(2500, 'x')}}).dump(), 403);
  CHECK(big["entitlement"] == "editor.storage");
  CHECK(big["detail"] == "your plan does not allow this (editor.storage)");
  CHECK(a.ok("GET", "/v1/docs", a.bob)["items"].empty());
  auto doc = a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "small"}}, 201);
  a.problem("PUT", "/v1/docs/" + id_of(doc), a.bob,
            json({{"base_version", 1}, {"content", std::string(2500, 'y')}}).dump(), 403);
  CHECK(a.ok("GET", "/v1/docs/" + id_of(doc), a.bob)["version"] == 1);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("an export filter stamps or refuses exports", "[editor][http][service]") {
  Api a(kProbe);
  auto doc = a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "a<b"}}, 201);
  auto html = a.call("GET", "/v1/docs/" + id_of(doc) + "/export?format=html", a.bob);
  REQUIRE(html.status == 200);
  CHECK(html.body == "<pre>a&lt;b</pre>\n\n[watermark " + a.bob_id + " v1]");
  json wb = {{"sheets", {{{"name", "S"}, {"rows", 1}, {"cols", 1}, {"cells", {{"A1", {{"v", 1}}}}}}}}};
  auto sheet = a.ok("POST", "/v1/docs", a.bob, {{"type", "sheet"}, {"content", wb}}, 201);
  auto refused = a.problem("GET", "/v1/docs/" + id_of(sheet) + "/export?format=csv", a.bob, "", 403);
  CHECK(refused["detail"] == "the export was refused by the export filter");
  CHECK(a.v->stop() == 0);
}

TEST_CASE("guests are refused on routes that are not about one resource", "[editor][http][authz]") {
  Api a(kProbe);
  auto doc = a.ok("POST", "/v1/docs", a.bob, {{"type", "text"}, {"content", "bob's"}}, 201);
  const std::string guest = a.ok("POST", "/v1/edprobe/guest", a.bob)["token"];
  a.problem("POST", "/v1/docs", guest, json({{"type", "text"}, {"content", "g"}}).dump(), 403);
  a.problem("GET", "/v1/docs", guest, "", 403);
  a.problem("GET", "/v1/folders", guest, "", 403);
  a.problem("POST", "/v1/folders", guest, json({{"name", "g"}}).dump(), 403);
  // Without a PDP a guest owns nothing, so a document stays hidden.
  a.problem("GET", "/v1/docs/" + id_of(doc), guest, "", 404);
  CHECK(a.v->stop() == 0);
}
