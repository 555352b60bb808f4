// Host ABI 1.3 through real vellumd processes: principal e-mail and session
// age, authorize_ex with a PDP's obligations, audit excerpts, and the test
// clock.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace vt;
using nlohmann::json;

namespace {
const std::string kAdminPw = "correct horse staple 42";
const std::string kUserPw = "user passphrase 42!";

struct Deployment {
  Site site;
  std::unique_ptr<Vellumd> v;
  explicit Deployment(const std::string& extra) : site(extra, "admin@example.com", kAdminPw) {
    v = site.start();
  }
  std::string admin(HttpClient& c) { return login(c, "admin@example.com", kAdminPw); }
  // A user account; returns its token.
  std::string user(HttpClient& c, const std::string& email) {
    REQUIRE(c.request("POST", "/v1/admin/users", json({{"email", email}, {"password", kUserPw}}).dump(),
                      bearer(admin(c)))
                .status == 201);
    return login(c, email, kUserPw);
  }
};

json get_json(HttpClient& c, const std::string& path, const std::string& token) {
  auto r = c.request("GET", path, "", bearer(token));
  INFO(path << " -> " << r.status << " " << r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}
}  // namespace

TEST_CASE("the principal carries the account e-mail and the session's age", "[abi][abi13]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto tok = d.user(c, "Dora@Example.com");
  auto who = get_json(c, "/v1/test/whoami", tok);
  CHECK(who["email"] == "dora@example.com");
  int64_t created = who["session_created_at_ms"];
  CHECK(created > 1700000000000);
  auto me = get_json(c, "/v1/auth/sessions", tok);
  CHECK(me.dump().find(std::to_string(created)) != std::string::npos);
  CHECK(d.v->stop() == 0);
}

TEST_CASE("authorize_ex without a PDP explains the owner/administrator rule", "[abi][abi13]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto tok = d.user(c, "erin@example.com");
  auto uid = get_json(c, "/v1/me", tok)["user"]["id"].get<std::string>();
  auto deny = get_json(c, "/v1/test/decide?action=read&resource=document/d1", tok);
  CHECK(deny["permit"] == false);
  CHECK(deny["decision"]["decision"] == "deny");
  CHECK(deny["decision"]["obligations"] == json::array());
  auto own = get_json(c, "/v1/test/decide?action=read&resource=document/d1&owner=" + uid, tok);
  CHECK(own["permit"] == true);
  CHECK(own["decision"]["reason"] == "owner");
  auto adm = get_json(c, "/v1/test/decide?action=read&resource=document/d1", d.admin(c));
  CHECK(adm["decision"]["reason"] == "administrator");
  CHECK(d.v->stop() == 0);
}

TEST_CASE("authorize_ex passes a PDP's obligations and refuses a permit it cannot read", "[abi][abi13]") {
  Deployment d("[plugins.testkit]\n[plugins.obligor]\n");
  HttpClient c(*d.v);
  auto tok = d.user(c, "finn@example.com");
  auto read = get_json(c, "/v1/test/decide?action=read&resource=document/d1", tok);
  CHECK(read["permit"] == true);
  CHECK(read["decision"]["reason"] == "read is open to finn@example.com");  // the PDP saw the e-mail
  REQUIRE(read["decision"]["obligations"].size() == 2);
  CHECK(read["decision"]["obligations"][0] == json({{"type", "watermark"}, {"level", "visible"}}));
  auto write = get_json(c, "/v1/test/decide?action=write&resource=document/d1", tok);
  CHECK(write["permit"] == false);
  CHECK(write["decision"]["reason"] == "writes are closed");
  auto garbled = get_json(c, "/v1/test/decide?action=comment&resource=document/d1", tok);
  CHECK(garbled["permit"] == false);
  CHECK(garbled["decision"]["reason"] == "the policy decision point returned malformed obligations");

  // The same through a kept principal (a WebSocket), and after logout.
  WsClient ws(*d.v, "/v1/test/ws-private?access_token=" + tok);
  REQUIRE(ws.read().has_value());
  ws.send("recheck ex read document/d1");
  auto kept = json::parse(ws.read().value());
  CHECK(kept["decision"] == "permit");
  CHECK(kept["obligations"][1] == json({{"type", "log"}, {"level", "high"}}));
  REQUIRE(c.request("POST", "/v1/auth/logout", "", bearer(tok)).status == 204);
  CHECK(ws.read() == std::nullopt);  // closed with 4401
  CHECK(d.v->stop() == 0);
}

TEST_CASE("audit_excerpt gives a resource subtree's records with proofs under a signed checkpoint",
          "[abi][abi13][audit]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto tok = d.admin(c);
  for (std::string r : {"document/d1", "document/d10", "document/d1/version/3", "document/d2"})
    REQUIRE(c.request("POST", "/v1/test/audit?resource=" + r, "", bearer(tok)).status == 200);
  auto x = get_json(c, "/v1/test/audit-excerpt?resource=document/d1", tok);
  REQUIRE(x["records"].size() == 2);
  std::vector<std::string> resources;
  for (auto& r : x["records"]) {
    resources.push_back(json::parse(r["body"].get<std::string>())["resource"]);
    CHECK(r["seq"].get<uint64_t>() <= x["checkpoint"]["tree_size"].get<uint64_t>());
    CHECK_FALSE(r["inclusion_proof"].empty());
  }
  CHECK(resources == std::vector<std::string>{"document/d1", "document/d1/version/3"});
  // The checkpoint is signed by the key `vellumd audit public-key` prints.
  auto key = run({vellumd_path(), "audit", "public-key", "--data-dir", d.site.data_dir()});
  CHECK(key.exit_code == 0);
  CHECK(key.out == x["checkpoint"]["public_key_pem"].get<std::string>());
  CHECK(c.request("GET", "/v1/test/audit-excerpt?resource=", "", bearer(tok)).status == 400);
  CHECK(c.request("GET", "/v1/test/audit-excerpt?resource=x&limit=5000", "", bearer(tok)).status == 400);
  CHECK(d.v->stop() == 0);
}

TEST_CASE("the test clock exists only with [testing] clock_control and moves session expiry",
          "[abi][abi13][clock]") {
  {
    Deployment off("");
    HttpClient c(*off.v);
    CHECK(c.request("POST", "/v1/admin/clock", R"({"advance_ms":1000})", bearer(off.admin(c))).status == 404);
    CHECK(off.v->stop() == 0);
  }
  Deployment d("[testing]\nclock_control = true\n[identity]\nsession_absolute_minutes = 60\n");
  HttpClient c(*d.v);
  auto admin = d.admin(c);
  auto user = d.user(c, "gus@example.com");
  CHECK(c.request("POST", "/v1/admin/clock", R"({"advance_ms":1000})", bearer(user)).status == 403);
  CHECK(c.request("POST", "/v1/admin/clock", R"({"advance_ms":-1})", bearer(admin)).status == 400);
  CHECK(c.request("POST", "/v1/admin/clock", R"({"advance_ms":"1"})", bearer(admin)).status == 400);
  CHECK(c.request("GET", "/v1/me", "", bearer(user)).status == 200);
  auto moved = c.request("POST", "/v1/admin/clock", R"({"advance_ms":3660000})", bearer(admin));
  REQUIRE(moved.status == 200);
  CHECK(json::parse(moved.body)["offset_ms"] == 3660000);
  CHECK(c.request("GET", "/v1/me", "", bearer(user)).status == 401);  // past its 60 minutes
  CHECK(d.v->log().find("clock_control is on") != std::string::npos);
  CHECK(d.v->stop() == 0);
}
