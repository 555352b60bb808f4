// Identity through real vellumd processes: bootstrap, login, tokens, MFA,
// authorization defaults and an IDOR sweep over every host route.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <regex>

#include "harness.hpp"
#include "identity.hpp"

using namespace vt;
using nlohmann::json;

namespace {
const std::string kAdminPw = "correct horse staple 42";
const std::string kUserPw = "user passphrase 42!";

// A server with an administrator created by `vellumd admin create`.
struct Deployment {
  Site site;
  std::unique_ptr<Vellumd> v;
  explicit Deployment(const std::string& extra = "") : site(extra, "admin@example.com", kAdminPw) {
    v = site.start();
  }
  json login(HttpClient& c, const std::string& email, const std::string& pw, const std::string& code = "") {
    return json::parse(login_response(c, email, pw, code).body);
  }
};

}  // namespace

TEST_CASE("admin bootstrap, login, me, logout", "[identity]") {
  Deployment d;
  HttpClient c(*d.v);
  auto tok = d.login(c, "admin@example.com", kAdminPw)["token"].get<std::string>();
  auto me = c.request("GET", "/v1/me", "", bearer(tok));
  CHECK(me.status == 200);
  CHECK(json::parse(me.body)["user"]["roles"][0] == "admin");
  CHECK(me.header("Cache-Control") == "no-store");
  auto anon = c.get("/v1/me");
  CHECK(anon.status == 401);
  CHECK(anon.header("WWW-Authenticate") == "Bearer");
  CHECK(c.request("POST", "/v1/auth/logout", "", bearer(tok)).status == 204);
  CHECK(c.request("GET", "/v1/me", "", bearer(tok)).status == 401);
  // argv never carries the password: the CLI refuses without a source.
  auto r =
      run({vellumd_path(), "admin", "create", "--email", "x@example.com", "--data-dir", d.site.data_dir()});
  CHECK(r.exit_code != 0);
  CHECK(d.v->stop() == 0);
}

TEST_CASE("unknown user and wrong password get identical answers", "[identity]") {
  Deployment d;
  HttpClient c(*d.v);
  auto attempt = [&](const std::string& email) {
    auto r = c.request("POST", "/v1/auth/login",
                       json({{"email", email}, {"password", "not the password"}}).dump());
    auto j = json::parse(r.body);
    j.erase("request_id");
    return std::make_pair(r.status, j.dump());
  };
  auto unknown = attempt("ghost@example.com");
  INFO(unknown.second);
  auto wrong = attempt("admin@example.com");
  CHECK(unknown.first == 401);
  CHECK(unknown == wrong);
  CHECK(c.request("POST", "/v1/auth/login", "not json").status == 400);
  CHECK(d.v->stop() == 0);
}

TEST_CASE("API token scopes are enforced and tokens need a session to create", "[identity]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto session = d.login(c, "admin@example.com", kAdminPw)["token"].get<std::string>();
  auto mk = [&](const char* scope) {
    auto r = c.request("POST", "/v1/auth/tokens", json({{"name", scope}, {"scope", scope}}).dump(),
                       bearer(session));
    REQUIRE(r.status == 201);
    return json::parse(r.body)["token"].get<std::string>();
  };
  std::string ro = mk("read"), full = mk("full");
  CHECK(c.request("GET", "/v1/test/private", "", bearer(ro)).status == 200);
  CHECK(c.request("PUT", "/v1/test/kv/x", "v", bearer(ro)).status == 403);                     // read-only
  CHECK(c.request("POST", "/v1/auth/tokens", R"({"name":"x"})", bearer(full)).status == 403);  // session only
  auto list = json::parse(c.request("GET", "/v1/auth/tokens", "", bearer(session)).body)["tokens"];
  CHECK(list.size() == 2);
  CHECK(list.dump().find("vla_") == std::string::npos);  // shown once, never listed
  std::string id = list[0]["id"];
  CHECK(c.request("DELETE", "/v1/auth/tokens/" + id, "", bearer(session)).status == 204);
  CHECK(c.request("DELETE", "/v1/auth/tokens/" + id, "", bearer(session)).status == 404);
  auto who = json::parse(c.request("GET", "/v1/test/whoami", "", bearer(session)).body);
  CHECK(who["authenticated"] == true);
  CHECK(d.v->stop() == 0);
}

TEST_CASE("MFA enrolment and login with TOTP through HTTP", "[identity][mfa]") {
  Deployment d;
  HttpClient c(*d.v);
  auto tok = d.login(c, "admin@example.com", kAdminPw)["token"].get<std::string>();
  auto e = json::parse(c.request("POST", "/v1/auth/mfa/enroll", "", bearer(tok)).body);
  std::string b32 = e["secret"];
  std::string bytes;
  uint32_t buf = 0;
  int bits = 0;
  for (char ch : b32) {
    buf = (buf << 5) | static_cast<uint32_t>(ch >= 'A' ? ch - 'A' : ch - '2' + 26);
    if ((bits += 5) >= 8) bytes.push_back(static_cast<char>((buf >> (bits -= 8)) & 0xff));
  }
  auto code = [&](int64_t offset) {
    return vellum::host::Identity::totp(bytes, vellum::host::system_clock_ms() / 30000 + offset);
  };
  auto conf = c.request("POST", "/v1/auth/mfa/confirm", json({{"code", code(0)}}).dump(), bearer(tok));
  REQUIRE(conf.status == 200);
  auto recovery = json::parse(conf.body)["recovery_codes"];
  CHECK(recovery.size() == 10);
  auto r = c.request("POST", "/v1/auth/login",
                     json({{"email", "admin@example.com"}, {"password", kAdminPw}}).dump());
  CHECK(r.status == 401);
  CHECK(json::parse(r.body)["code"] == "mfa_required");
  auto with_recovery = d.login(c, "admin@example.com", kAdminPw, recovery[0]);
  CHECK(with_recovery["session"]["mfa_at_ms"].get<int64_t>() > 0);
  CHECK(d.v->stop() == 0);
  // Secrets never reach the log.
  auto log = d.v->log();
  CHECK(log.find(b32) == std::string::npos);
  CHECK(log.find(kAdminPw) == std::string::npos);
  CHECK(log.find(tok) == std::string::npos);
  CHECK(log.find(recovery[1].get<std::string>()) == std::string::npos);
}

TEST_CASE("authorization defaults and an IDOR sweep over every host route", "[identity][idor]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto admin = d.login(c, "admin@example.com", kAdminPw)["token"].get<std::string>();
  for (auto* email : {"alice@example.com", "bob@example.com"}) {
    auto r = c.request("POST", "/v1/admin/users", json({{"email", email}, {"password", kUserPw}}).dump(),
                       bearer(admin));
    REQUIRE(r.status == 201);
  }
  auto alice = d.login(c, "alice@example.com", kUserPw);
  auto bob = d.login(c, "bob@example.com", kUserPw);
  std::string alice_tok = alice["token"], bob_tok = bob["token"];
  std::string alice_session = alice["session"]["id"], alice_user = alice["user"]["id"];
  auto alice_api =
      json::parse(c.request("POST", "/v1/auth/tokens", R"({"name":"a"})", bearer(alice_tok)).body);
  std::string alice_token_id = alice_api["session"]["id"];

  // Bob, an ordinary user, tries every host route with Alice's identifiers.
  auto doc = json::parse(c.get("/v1/openapi.json").body);
  int tried = 0;
  for (auto& [path, ops] : doc["paths"].items()) {
    if (path.rfind("/v1/test", 0) == 0 || path == "/v1/auth/login" || path == "/v1/auth/logout") continue;
    for (auto& [method, op] : ops.items()) {
      for (const std::string& id : {alice_session, alice_user, alice_token_id}) {
        std::string target = std::regex_replace(path, std::regex("\\{[a-z_]+\\}"), id);
        std::string m = method;
        for (auto& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        auto r = c.request(m, target, "{}", bearer(bob_tok));
        ++tried;
        INFO(m << " " << target << " -> " << r.status << " " << r.body);
        CHECK(r.body.find("alice@example.com") == std::string::npos);
        if (path.rfind("/v1/admin", 0) == 0) CHECK(r.status == 403);
      }
    }
  }
  CHECK(tried > 20);
  // Alice is untouched: her session, her token and her account still work.
  CHECK(c.request("GET", "/v1/me", "", bearer(alice_tok)).status == 200);
  CHECK(c.request("GET", "/v1/test/private", "", bearer(alice_api["token"])).status == 200);
  CHECK(d.v->stop() == 0);
}

TEST_CASE("WebSocket upgrades authenticate with a query token or the bearer subprotocol", "[identity][ws]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto login = d.login(c, "admin@example.com", kAdminPw);
  std::string tok = login["token"], uid = login["user"]["id"];
  CHECK(ws_upgrade_status(*d.v, "/v1/test/ws-private") == 401);
  CHECK(ws_upgrade_status(*d.v, "/v1/test/ws-private?access_token=vls_forged") == 401);
  {
    WsClient ws(*d.v, "/v1/test/ws-private?access_token=" + tok);
    CHECK(ws.read() == "hello " + uid);
  }
  {
    WsClient ws(*d.v, "/v1/test/ws-private", "vellum.bearer, " + tok);
    CHECK(ws.read() == "hello " + uid);
    CHECK(ws.accepted_protocol() == "vellum.bearer");  // the token itself is never echoed
  }
  CHECK(d.v->stop() == 0);
  CHECK(d.v->log().find(tok) == std::string::npos);
}

TEST_CASE("token expiry input is validated", "[identity]") {
  Deployment d;
  HttpClient c(*d.v);
  auto tok = d.login(c, "admin@example.com", kAdminPw)["token"].get<std::string>();
  for (auto bad : {"0", "367", "\"30\"", "1.5", "213503982336"}) {
    auto r = c.request("POST", "/v1/auth/tokens",
                       std::string(R"({"name":"x","expires_in_days":)") + bad + "}", bearer(tok));
    CHECK(r.status == 422);
  }
  CHECK(d.v->stop() == 0);
}

TEST_CASE("admin lock revokes sessions and blocks login", "[identity]") {
  Deployment d;
  HttpClient c(*d.v);
  auto admin = d.login(c, "admin@example.com", kAdminPw)["token"].get<std::string>();
  auto u = json::parse(c.request("POST", "/v1/admin/users",
                                 json({{"email", "carol@example.com"}, {"password", kUserPw}}).dump(),
                                 bearer(admin))
                           .body);
  auto carol = d.login(c, "carol@example.com", kUserPw)["token"].get<std::string>();
  std::string id = u["id"];
  CHECK(c.request("POST", "/v1/admin/users/" + id + "/lock", "", bearer(admin)).status == 200);
  CHECK(c.request("GET", "/v1/me", "", bearer(carol)).status == 401);
  CHECK(c.request("POST", "/v1/auth/login",
                  json({{"email", "carol@example.com"}, {"password", kUserPw}}).dump())
            .status == 401);
  CHECK(c.request("POST", "/v1/admin/users/" + id + "/unlock", "", bearer(admin)).status == 200);
  d.login(c, "carol@example.com", kUserPw);
  auto users = json::parse(c.request("GET", "/v1/admin/users?limit=1", "", bearer(admin)).body);
  CHECK(users["users"].size() == 1);
  CHECK_FALSE(users["next_cursor"].is_null());
  CHECK(d.v->stop() == 0);
}

TEST_CASE("a WebSocket closes with 4401 when its session is logged out", "[identity][ws]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  std::string tok = d.login(c, "admin@example.com", kAdminPw)["token"];
  std::string other = d.login(c, "admin@example.com", kAdminPw)["token"];
  WsClient ws(*d.v, "/v1/test/ws-private?access_token=" + tok);
  WsClient stays(*d.v, "/v1/test/ws-private?access_token=" + other);
  REQUIRE(ws.read().has_value());
  REQUIRE(stays.read().has_value());
  REQUIRE(c.request("POST", "/v1/auth/logout", "", bearer(tok)).status == 204);
  CHECK(ws.read() == std::nullopt);
  CHECK(ws.close_code() == 4401);
  CHECK(ws.close_reason() == "session ended");
  // Another session of the same user keeps its socket.
  stays.send("recheck read document/x");
  CHECK(stays.read() == "allow");  // an administrator, without a PDP
  CHECK(d.v->stop() == 0);
}

TEST_CASE("in-band WebSocket authentication binds the socket to one session (ABI 1.4)", "[identity][ws]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto login = d.login(c, "admin@example.com", kAdminPw);
  std::string tok = login["token"], uid = login["user"]["id"];
  std::string other = d.login(c, "admin@example.com", kAdminPw)["token"];
  const std::string forged = "vls_" + std::string(40, 'x');
  WsClient ws(*d.v, "/v1/test/ws");  // a public endpoint: no token at the upgrade
  REQUIRE(ws.read() == "welcome");
  ws.send("auth:" + forged);
  CHECK(ws.read() == "unauthenticated");
  ws.send("auth:" + tok);
  CHECK(ws.read() == "authenticated " + uid + " read write admin ip");
  ws.send("auth:" + tok);  // the same session again: fine
  CHECK(ws.read() == "authenticated " + uid + " read write admin ip");
  ws.send("auth:" + other);  // one socket, one session
  CHECK(ws.read() == "conflict");
  // A second socket bound to the other session stays open when the first session ends.
  WsClient stays(*d.v, "/v1/test/ws");
  REQUIRE(stays.read() == "welcome");
  stays.send("auth:" + other);
  REQUIRE(stays.read().has_value());
  REQUIRE(c.request("POST", "/v1/auth/logout", "", bearer(tok)).status == 204);
  CHECK(ws.read() == std::nullopt);
  CHECK(ws.close_code() == 4401);
  stays.send("still here");
  CHECK(stays.read() == "still here");
  // An ended session no longer authenticates.
  WsClient late(*d.v, "/v1/test/ws");
  REQUIRE(late.read() == "welcome");
  late.send("auth:" + tok);
  CHECK(late.read() == "unauthenticated");
  CHECK(d.v->stop() == 0);
  for (const auto& secret : {tok, other, forged}) CHECK(d.v->log().find(secret) == std::string::npos);
}

TEST_CASE("a kept principal is re-checked against its live session", "[identity][ws]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto admin = d.login(c, "admin@example.com", kAdminPw)["token"].get<std::string>();
  REQUIRE(c.request("POST", "/v1/admin/users",
                    json({{"email", "carol@example.com"}, {"password", kUserPw}}).dump(), bearer(admin))
              .status == 201);
  auto carol = d.login(c, "carol@example.com", kUserPw);
  std::string tok = carol["token"], uid = carol["user"]["id"];
  WsClient ws(*d.v, "/v1/test/ws-private?access_token=" + tok);
  REQUIRE(ws.read() == "hello " + uid);
  // Without a PDP: owners and administrators only.
  ws.send("recheck read document/d1");
  CHECK(ws.read() == "deny");
  ws.send("recheck read document/d1 " + uid);
  CHECK(ws.read() == "allow");
  // An administrator locks the account: the session is revoked and the socket closes.
  REQUIRE(c.request("POST", "/v1/admin/users/" + uid + "/disable", "", bearer(admin)).status == 200);
  CHECK(ws.read() == std::nullopt);
  CHECK(ws.close_code() == 4401);
  CHECK(d.v->stop() == 0);
}

TEST_CASE("guest sessions: issued by a plugin and kept off account routes and revoked", "[identity][guest]") {
  Deployment d("[plugins.testkit]\n");
  HttpClient c(*d.v);
  auto admin = d.login(c, "admin@example.com", kAdminPw)["token"].get<std::string>();
  CHECK(c.request("POST", "/v1/test/guest/bad%2Fsubject", "", bearer(admin)).status == 400);
  auto r = c.request("POST", "/v1/test/guest/link-42", "", bearer(admin));
  REQUIRE(r.status == 200);
  std::string guest = json::parse(r.body)["token"];
  CHECK(guest.rfind("vlg_", 0) == 0);
  auto me = c.request("GET", "/v1/me", "", bearer(guest));
  REQUIRE(me.status == 200);
  CHECK(json::parse(me.body)["user"]["id"] == "guest:testkit:link-42");
  CHECK(c.request("GET", "/v1/auth/sessions", "", bearer(guest)).status == 403);
  CHECK(c.request("POST", "/v1/auth/tokens", R"({"name":"x"})", bearer(guest)).status == 403);
  CHECK(c.request("GET", "/v1/admin/users", "", bearer(guest)).status == 403);
  {
    WsClient ws(*d.v, "/v1/test/ws-private?access_token=" + guest);
    CHECK(ws.read() == "hello guest:testkit:link-42");
    ws.send("recheck read document/d1");
    CHECK(ws.read() == "deny");  // no PDP: a guest owns nothing
    auto rv = c.request("DELETE", "/v1/test/guest/link-42", "", bearer(admin));
    REQUIRE(rv.status == 200);
    CHECK(json::parse(rv.body)["revoked"] == 1);
    CHECK(ws.read() == std::nullopt);
    CHECK(ws.close_code() == 4401);
  }
  CHECK(c.request("GET", "/v1/me", "", bearer(guest)).status == 401);
  CHECK(d.v->stop() == 0);
  CHECK(d.v->log().find(guest) == std::string::npos);
}
