// The sharing plugin through real vellumd with crypto + editor + sharing:
// editor routes honour grants, denials and exclusions; explain; ABAC policies
// over the API; share links (password, lock after failures, guest sessions,
// role change applied at once, revocation, max uses); delegation limits;
// elevation needs fresh MFA; break-glass approval counting; bad input.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "harness.hpp"
#include "mmdb_writer.hpp"

using namespace vt;
using nlohmann::json;

namespace {

const std::string kAdminEmail = "ada.sharingtest@example.com";
const std::string kAdminPw = "correct horse staple 42";
const std::string kUserPw = "user passphrase 42!";

std::string new_root_key() {
  unsigned char k[32];
  REQUIRE(RAND_bytes(k, 32) == 1);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, k, 32);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string config(const std::string& sharing_extra = "") {
  return "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n"
         "[plugins.editor]\n"
         "[plugins.sharing]\nlink_max_failures = 3\nlink_delay_base_ms = 0\n" +
         sharing_extra +
         "break_glass_approvals = { default = 2 }\n"
         "[plugins.sharing_testmail]\n"
         "[testing]\nclock_control = true\n";
}

std::map<std::string, std::string> auth(const std::string& t) {
  return {{"Authorization", "Bearer " + t}, {"Content-Type", "application/json"}};
}

struct Api {
  std::string root_key = new_root_key();
  Site site;
  std::unique_ptr<Vellumd> v;
  std::unique_ptr<HttpClient> c;
  std::string admin;

  // sharing_extra: more [plugins.sharing] keys, one per line.
  explicit Api(const std::string& sharing_extra = "")
      : site{config(sharing_extra), kAdminEmail, kAdminPw, {{"VELLUM_ROOT_KEY", root_key}}, "Ada"} {
    v = site.start();
    c = std::make_unique<HttpClient>(*v);
    admin = vt::login(*c, kAdminEmail, kAdminPw);
  }
  // Creates a user; returns {id, token}.
  std::pair<std::string, std::string> user(const std::string& name, bool is_admin = false,
                                           const std::string& domain = "example.com") {
    json body = {{"email", name + "@" + domain}, {"display_name", name}, {"password", kUserPw}};
    if (is_admin) body["roles"] = {"admin"};
    auto mk = c->request("POST", "/v1/admin/users", body.dump(), auth(admin));
    INFO(mk.body);
    REQUIRE(mk.status == 201);
    return {json::parse(mk.body)["id"], vt::login(*c, name + "@" + domain, kUserPw)};
  }
  // Moves the host clock forward ([testing] clock_control).
  void advance(int64_t ms) { ok("POST", "/v1/admin/clock", admin, {{"advance_ms", ms}}); }
  Response call(const std::string& method, const std::string& path, const std::string& tok,
                const std::string& body = "") {
    return c->request(
        method, path, body,
        tok.empty() ? std::map<std::string, std::string>{{"Content-Type", "application/json"}} : auth(tok));
  }
  int status(const std::string& method, const std::string& path, const std::string& tok,
             const json& body = nullptr) {
    return call(method, path, tok, body.is_null() ? "" : body.dump()).status;
  }
  json ok(const std::string& method, const std::string& path, const std::string& tok,
          const json& body = nullptr, int want = 200) {
    auto r = call(method, path, tok, body.is_null() ? "" : body.dump());
    INFO(method << " " << path << " -> " << r.body);
    REQUIRE(r.status == want);
    return json::parse(r.body);
  }
  json problem(const std::string& method, const std::string& path, const std::string& tok,
               const std::string& body, int want) {
    auto r = call(method, path, tok, body);
    INFO(method << " " << path << " -> " << r.body);
    CHECK(r.status == want);
    CHECK(r.header("Content-Type").find("application/problem+json") != std::string::npos);
    return json::parse(r.body);
  }
  std::string doc(const std::string& tok) {
    return ok("POST", "/v1/docs", tok, {{"type", "text"}, {"title", "Plan"}, {"content", "v1"}}, 201)["id"];
  }
  json save(const std::string& id, const std::string& tok, int want) {
    auto cur = call("GET", "/v1/docs/" + id, admin);
    const uint64_t base = json::parse(cur.body)["version"];
    auto r = call("PUT", "/v1/docs/" + id, tok,
                  json({{"base_version", base}, {"content", "edit " + std::to_string(base)}}).dump());
    INFO(r.body);
    CHECK(r.status == want);
    return json::parse(r.body);
  }
};

json grant(const std::string& subject, const std::string& resource, const std::string& role) {
  return {{"subject", subject}, {"resource", resource}, {"role", role}};
}

}  // namespace

TEST_CASE("editor routes honour grants, denials and exclusions", "[integration]") {
  Api a;
  auto [bob_id, bob] = a.user("bob");
  const std::string id = a.doc(a.admin);
  const std::string res = "document/" + id;
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 404);

  json g = a.ok("POST", "/v1/sharing/grants", a.admin, grant("user:" + bob_id, res, "viewer"), 201);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);
  CHECK(a.status("GET", "/v1/docs/" + id + "/versions", bob) == 200);
  CHECK(a.status("GET", "/v1/docs/" + id + "/versions/1", bob) == 200);
  a.save(id, bob, 403);
  CHECK(a.status("DELETE", "/v1/docs/" + id, bob) == 403);
  // a viewer cannot share onwards
  a.problem("POST", "/v1/sharing/grants", bob, grant("user:" + bob_id, res, "editor").dump(), 403);

  json g2 = a.ok("POST", "/v1/sharing/grants", a.admin, grant("user:" + bob_id, res, "editor"), 201);
  a.save(id, bob, 200);
  CHECK(a.status("DELETE", "/v1/docs/" + id, bob) == 403);  // editors do not delete

  // an explicit denial of write on the document
  json d = a.ok(
      "POST", "/v1/sharing/grants", a.admin,
      {{"subject", "user:" + bob_id}, {"resource", res}, {"effect", "deny"}, {"actions", {"write"}}}, 201);
  a.save(id, bob, 403);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);
  a.ok("DELETE", "/v1/sharing/grants/" + d["id"].get<std::string>(), a.admin);
  a.save(id, bob, 200);

  // an exclusion hides the document entirely
  json x = a.ok("POST", "/v1/sharing/grants", a.admin,
                {{"subject", "user:" + bob_id}, {"resource", res}, {"effect", "exclude"}}, 201);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 404);
  json why = a.ok("GET", "/v1/sharing/explain?user=" + bob_id + "&action=read&resource=" + res, a.admin);
  CHECK(why["decision"] == "deny");
  CHECK(why["reason"] == "excluded");
  CHECK(why["exclusions"].size() == 1);
  // non-admins explain only themselves
  CHECK(a.status("GET", "/v1/sharing/explain?user=someone&action=read&resource=" + res, bob) == 403);
  a.ok("DELETE", "/v1/sharing/grants/" + x["id"].get<std::string>(), a.admin);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);
  why = a.ok("GET", "/v1/sharing/explain?action=write&resource=" + res, bob);
  CHECK(why["decision"] == "permit");
  CHECK(why["grants"].size() == 2);

  // the owner (not an administrator) shares their own document, within their rights
  auto [carol_id, carol] = a.user("carol");
  auto [dave_id, dave] = a.user("dave");
  const std::string cid = a.doc(carol);
  CHECK(a.status("GET", "/v1/docs/" + cid, dave) == 404);
  a.ok("POST", "/v1/sharing/grants", carol, grant("user:" + dave_id, "document/" + cid, "commenter"), 201);
  CHECK(a.status("GET", "/v1/docs/" + cid, dave) == 200);
  json list = a.ok("GET", "/v1/sharing/grants?resource=document/" + cid, carol);
  CHECK(list["items"].size() == 1);
  CHECK(a.status("GET", "/v1/sharing/grants?resource=document/" + cid, dave) == 403);
  // the administrator holds no implicit rights on carol's content
  CHECK(a.status("GET", "/v1/docs/" + cid, a.admin) == 404);
}

TEST_CASE("bulk sharing reports each entry", "[integration]") {
  Api a;
  auto [bob_id, bob] = a.user("bob");
  const std::string id = a.doc(a.admin);
  json r = a.ok("POST", "/v1/sharing/bulk", a.admin,
                {{"resource", "document/" + id},
                 {"role", "viewer"},
                 {"entries",
                  {{{"subject", "user:" + bob_id}},
                   {{"subject", "domain:example.org"}},
                   {{"subject", "nobody"}},
                   {{"subject", "group:design"}, {"role", "wizard"}}}}},
                207);
  REQUIRE(r["results"].size() == 4);
  CHECK(r["succeeded"] == 2);
  CHECK(r["results"][0]["status"] == 201);
  CHECK(r["results"][2]["status"] == 422);
  CHECK(r["results"][3]["pointer"] == "/role");
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);
}

TEST_CASE("bad input is refused with problem+json and changes nothing", "[integration]") {
  Api a;
  const std::string id = a.doc(a.admin);
  const std::string res = "document/" + id;
  a.problem("POST", "/v1/sharing/grants", a.admin, "{not json", 400);
  a.problem("POST", "/v1/sharing/grants", a.admin, grant("alice", res, "viewer").dump(), 422);
  a.problem("POST", "/v1/sharing/grants", a.admin, grant("user:x", "document/", "viewer").dump(), 422);
  a.problem("POST", "/v1/sharing/grants", a.admin, grant("user:x", res, "emperor").dump(), 422);
  a.problem("PUT", "/v1/sharing/policies/p1", a.admin, json({{"effect", "perhaps"}}).dump(), 422);
  a.problem("PUT", "/v1/sharing/settings", a.admin, json({{"combining", "majority"}}).dump(), 422);
  a.problem("GET", "/v1/sharing/explain?action=fly&resource=" + res, a.admin, "", 400);
  a.problem("POST", "/v1/sharing/links", a.admin,
            json({{"resource", res}, {"role", "viewer"}, {"expires_ms", 5}}).dump(), 422);
  a.problem("POST", "/v1/sharing/links/redeem", "", json({{"token", "vsl_nope_nope_nope_nope"}}).dump(), 404);
  CHECK(a.ok("GET", "/v1/sharing/grants?resource=" + res, a.admin)["items"].empty());
  CHECK(a.ok("GET", "/v1/sharing/policies", a.admin)["items"].empty());
  CHECK(a.ok("GET", "/v1/sharing/links?resource=" + res, a.admin)["items"].empty());
}

TEST_CASE("ABAC policies over the API: client IP and combining algorithm", "[integration]") {
  Api a;
  auto [bob_id, bob] = a.user("bob");
  const std::string id = a.doc(a.admin);
  const std::string res = "document/" + id;
  // Only administrators manage policies.
  a.problem("PUT", "/v1/sharing/policies/local", bob, json({{"effect", "deny"}}).dump(), 403);
  json deny_local = {{"effect", "deny"},
                     {"target", {{"actions", {"write"}}, {"resource", res}}},
                     {"environment", {{"ip_ranges", {"127.0.0.0/8", "::1/128"}}}}};
  a.ok("PUT", "/v1/sharing/policies/local", a.admin, deny_local, 201);
  a.save(id, a.admin, 403);  // even the owner, from loopback
  CHECK(a.status("GET", "/v1/docs/" + id, a.admin) == 200);
  deny_local["environment"]["ip_ranges"] = {"10.0.0.0/8"};
  a.ok("PUT", "/v1/sharing/policies/local", a.admin, deny_local, 200);
  a.save(id, a.admin, 200);

  // permit-overrides lets a policy open reading to bob's group without a grant
  a.ok("PUT", "/v1/sharing/users/" + bob_id, a.admin, {{"groups", {"auditors"}}});
  a.ok("PUT", "/v1/sharing/policies/auditors", a.admin,
       {{"effect", "permit"}, {"target", {{"actions", {"read"}}}}, {"subject", {{"groups", {"auditors"}}}}},
       201);
  a.ok("PUT", "/v1/sharing/policies/no-reads", a.admin,
       {{"effect", "deny"}, {"target", {{"actions", {"read"}}}}, {"subject", {{"groups", {"auditors"}}}}},
       201);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 404);  // deny-overrides
  a.ok("PUT", "/v1/sharing/settings", a.admin, {{"combining", "permit-overrides"}});
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);
  json why = a.ok("GET", "/v1/sharing/explain?action=read&resource=" + res, bob);
  CHECK(why["algorithm"] == "permit-overrides");
  CHECK(why["reason"] == "permitted by policy auditors");
  a.ok("DELETE", "/v1/sharing/policies/auditors", a.admin);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 404);

  // classification tags feed resource conditions
  a.ok("PUT", "/v1/sharing/classifications", a.admin, {{"resource", res}, {"tags", {"secret"}}});
  a.ok("PUT", "/v1/sharing/policies/secret", a.admin,
       {{"effect", "deny"},
        {"target", {{"actions", {"write"}}}},
        {"resource", {{"classification_any", {"secret"}}}}},
       201);
  a.ok("PUT", "/v1/sharing/settings", a.admin, {{"combining", "deny-overrides"}});
  a.save(id, a.admin, 403);
}

TEST_CASE("share links: password, lock, guest session, role change, revocation, max uses",
          "[integration][links]") {
  Api a;
  const std::string id = a.doc(a.admin);
  const std::string res = "document/" + id;
  json link = a.ok(
      "POST", "/v1/sharing/links", a.admin,
      {{"resource", res}, {"role", "viewer"}, {"password", "open sesame 1"}, {"watermark", "visible"}}, 201);
  const std::string token = link["token"];
  CHECK(token.size() >= 40);
  CHECK_FALSE(link.contains("password_hash"));
  CHECK_FALSE(link.contains("token_hash"));
  CHECK(link["has_password"] == true);

  a.problem("POST", "/v1/sharing/links/redeem", "", json({{"token", token}}).dump(), 401);
  a.problem("POST", "/v1/sharing/links/redeem", "",
            json({{"token", token}, {"password", "wrong one!"}}).dump(), 401);
  json got = a.ok("POST", "/v1/sharing/links/redeem", "", {{"token", token}, {"password", "open sesame 1"}});
  const std::string guest = got["token"];
  CHECK(got["role"] == "viewer");
  CHECK(a.status("GET", "/v1/docs/" + id, guest) == 200);
  a.save(id, guest, 403);
  CHECK(a.status("POST", "/v1/docs", guest, {{"type", "text"}, {"content", "x"}}) != 201);

  // the role change applies to the open guest session at once
  const std::string lid = link["id"];
  a.ok("PATCH", "/v1/sharing/links/" + lid, a.admin, {{"role", "editor"}});
  a.save(id, guest, 200);

  json uses = a.ok("GET", "/v1/sharing/links/" + lid + "/uses", a.admin);
  REQUIRE(uses["items"].size() == 1);
  CHECK(uses["items"][0]["ip_hash"].get<std::string>().size() == 32);
  CHECK(uses["items"][0].dump().find("127.0.0.1") == std::string::npos);

  // three failures in a row from this address lock the link for it, even with the password
  for (int i = 0; i < 3; ++i)
    a.problem("POST", "/v1/sharing/links/redeem", "",
              json({{"token", token}, {"password", "nope nope"}}).dump(), 401);
  a.problem("POST", "/v1/sharing/links/redeem", "",
            json({{"token", token}, {"password", "open sesame 1"}}).dump(), 423);

  // revocation ends the guest session
  json rv = a.ok("DELETE", "/v1/sharing/links/" + lid, a.admin);
  CHECK(rv["sessions_revoked"] == 1);
  CHECK(a.status("GET", "/v1/docs/" + id, guest) == 401);

  // max uses, no-download flags
  json once = a.ok("POST", "/v1/sharing/links", a.admin,
                   {{"resource", res}, {"role", "viewer"}, {"max_uses", 1}, {"no_download", true}}, 201);
  a.ok("POST", "/v1/sharing/links/redeem", "", {{"token", once["token"]}});
  a.problem("POST", "/v1/sharing/links/redeem", "", json({{"token", once["token"]}}).dump(), 410);

  // a link limited to an email domain: a one-time code through the mail hook
  json mail = a.ok("POST", "/v1/sharing/links", a.admin,
                   {{"resource", res}, {"role", "viewer"}, {"allowed_domains", {"example.net"}}}, 201);
  // (each refusal below counts towards the lock of 3: two of them here)
  a.problem("POST", "/v1/sharing/links/redeem", "",
            json({{"token", mail["token"]}, {"email", "eve@other.org"}}).dump(), 403);
  a.ok("POST", "/v1/sharing/links/redeem", "", {{"token", mail["token"]}, {"email", "Eve@Example.net"}}, 202);
  a.problem("POST", "/v1/sharing/links/redeem", "",
            json({{"token", mail["token"]}, {"email", "eve@example.net"}}).dump(),
            429);  // not another code within a minute
  json box = a.ok("GET", "/v1/test/mailbox", a.admin);
  REQUIRE(box["items"].size() == 1);
  CHECK(box["items"][0]["to"] == "eve@example.net");
  const std::string code = box["items"][0]["code"];
  CHECK(code.size() == 6);
  const std::string wrong = code == "000000" ? "000001" : "000000";
  a.problem("POST", "/v1/sharing/links/redeem", "",
            json({{"token", mail["token"]}, {"email", "eve@example.net"}, {"code", wrong}}).dump(), 401);
  json eve = a.ok("POST", "/v1/sharing/links/redeem", "",
                  {{"token", mail["token"]}, {"email", "eve@example.net"}, {"code", code}});
  CHECK(a.status("GET", "/v1/docs/" + id, eve["token"]) == 200);
  a.problem("POST", "/v1/sharing/links/redeem", "",
            json({{"token", mail["token"]}, {"email", "eve@example.net"}, {"code", code}}).dump(),
            401);  // one use
  CHECK(a.ok("GET", "/v1/sharing/links/" + mail["id"].get<std::string>() + "/uses",
             a.admin)["items"][0]["who"] == "guest eve@example.net");

  // a link limited to other client addresses
  json net =
      a.ok("POST", "/v1/sharing/links", a.admin,
           {{"resource", res}, {"role", "viewer"}, {"environment", {{"ip_ranges", {"10.0.0.0/8"}}}}}, 201);
  a.problem("POST", "/v1/sharing/links/redeem", "", json({{"token", net["token"]}}).dump(), 403);
}

uint32_t be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

TEST_CASE("a share link as a QR code decodes back to its URL", "[integration][links][qr]") {
  Api a("link_url = \"https://docs.example.com/s\"\n");
  auto [bob_id, bob] = a.user("bob");
  const std::string id = a.doc(a.admin);
  json link =
      a.ok("POST", "/v1/sharing/links", a.admin, {{"resource", "document/" + id}, {"role", "viewer"}}, 201);
  const std::string token = link["token"], lid = link["id"], url = link["url"];
  CHECK(url == "https://docs.example.com/s#" + token);
  const std::string path = "/v1/sharing/links/" + lid + "/qr.png";

  auto r = a.call("POST", path, a.admin, json({{"token", token}, {"scale", 4}}).dump());
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "image/png");
  CHECK(r.header("Cache-Control") == "no-store");
  // PNG signature, then IHDR: square, 1-bit grayscale, a multiple of the scale.
  REQUIRE(r.body.size() > 33);
  CHECK(r.body.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(r.body.substr(12, 4) == "IHDR");
  const uint32_t w = be32(r.body, 16), h = be32(r.body, 20);
  CHECK(w == h);
  CHECK(w % 4 == 0);
  CHECK(w / 4 >= 21 + 8);  // version 1 is 21 modules, plus the quiet zone
  CHECK(uint8_t(r.body[24]) == 1);
  CHECK(uint8_t(r.body[25]) == 0);

  // An independent decoder (pngjs + jsQR) reads the URL back.
  const std::string node_dir = VELLUM_TEST_NODE_DIR;
  INFO("run scripts/install-deps.sh (npm ci in tests/node) first");
  REQUIRE(std::filesystem::exists(node_dir + "/node_modules/jsqr"));
  vt::TempDir tmp;
  vt::write_file(tmp / "link.png", r.body);
  auto dec = vt::run({VELLUM_NODE, node_dir + "/sharing/qr-decode.mjs", tmp / "link.png"});
  INFO(dec.err);
  REQUIRE(dec.exit_code == 0);
  json got = json::parse(dec.out);
  CHECK(got["text"] == url);
  CHECK(got["width"] == w);

  // The token must be this link's; only those who may share the resource ask.
  a.problem("POST", path, a.admin, json({{"token", "vsl_" + std::string(43, 'A')}}).dump(), 403);
  a.problem("POST", path, a.admin, json({{"token", token}, {"scale", 0}}).dump(), 422);
  a.problem("POST", path, a.admin, json({{"token", token}, {"size", 3}}).dump(), 422);
  a.problem("POST", path, bob, json({{"token", token}}).dump(), 403);
  a.problem("POST", "/v1/sharing/links/nosuchlink/qr.png", a.admin, json({{"token", token}}).dump(), 404);
  a.ok("DELETE", "/v1/sharing/links/" + lid, a.admin);
  a.problem("POST", path, a.admin, json({{"token", token}}).dump(), 410);
}

TEST_CASE("delegation limits and elevation needs fresh MFA", "[integration][delegation]") {
  Api a;
  auto [bob_id, bob] = a.user("bob");
  auto [dave_id, dave] = a.user("dave");
  const std::string id = a.doc(a.admin);
  const std::string res = "document/" + id;
  a.ok("POST", "/v1/sharing/grants", a.admin, grant("user:" + bob_id, res, "viewer"), 201);
  const int64_t later = 4102444800000;  // 2100-01-01
  json miss = a.problem(
      "POST", "/v1/sharing/delegations", bob,
      json({{"to", dave_id}, {"resource", res}, {"actions", {"read", "write"}}, {"expires_ms", later}})
          .dump(),
      403);
  CHECK(miss["missing"] == json::array({"write"}));
  CHECK(a.status("GET", "/v1/docs/" + id, dave) == 404);
  json d = a.ok("POST", "/v1/sharing/delegations", bob,
                {{"to", dave_id}, {"resource", res}, {"actions", {"read"}}, {"expires_ms", later}}, 201);
  CHECK(a.status("GET", "/v1/docs/" + id, dave) == 200);
  a.save(id, dave, 403);
  a.ok("DELETE", "/v1/sharing/delegations/" + d["id"].get<std::string>(), bob);
  CHECK(a.status("GET", "/v1/docs/" + id, dave) == 404);

  a.problem("POST", "/v1/sharing/elevations", bob,
            json({{"resource", res},
                  {"role", "editor"},
                  {"justification", "quarterly numbers fix"},
                  {"approver", dave_id}})
                .dump(),
            401);
}

TEST_CASE("break-glass counts distinct administrator approvals", "[integration][breakglass]") {
  Api a;
  auto [bob_id, bob] = a.user("bob");
  auto [sec_id, sec] = a.user("sec", true);
  const std::string id = a.doc(a.admin);
  const std::string res = "document/" + id;
  a.ok("POST", "/v1/sharing/grants", a.admin,
       {{"subject", "user:" + bob_id}, {"resource", res}, {"effect", "exclude"}}, 201);
  json b = a.ok("POST", "/v1/sharing/break-glass", bob,
                {{"resource", res}, {"reason", "incident 4711 triage"}}, 201);
  const std::string bid = b["id"];
  CHECK(b["approvals_needed"] == 2);
  CHECK(a.status("POST", "/v1/sharing/break-glass/" + bid + "/approve", bob) == 403);
  json s1 = a.ok("POST", "/v1/sharing/break-glass/" + bid + "/approve", a.admin);
  CHECK(s1["status"] == "pending");
  CHECK(a.status("POST", "/v1/sharing/break-glass/" + bid + "/approve", a.admin) == 409);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 404);
  json s2 = a.ok("POST", "/v1/sharing/break-glass/" + bid + "/approve", sec);
  CHECK(s2["status"] == "active");
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);  // overrides the exclusion, for one hour
  a.problem("POST", "/v1/sharing/break-glass/" + bid + "/justification", bob,
            json({{"justification", "short"}}).dump(), 422);
  json j = a.ok("POST", "/v1/sharing/break-glass/" + bid + "/justification", bob,
                {{"justification", "Customer outage; needed the runbook in this document."}});
  CHECK(j["late"] == false);
  json all = a.ok("GET", "/v1/sharing/break-glass", a.admin);
  CHECK(all["items"][0]["flagged"] == false);
}

TEST_CASE("teams: invite by email, accept, roles, removal and transfer", "[integration][teams]") {
  Api a;
  auto [bob_id, bob] = a.user("bob");
  auto [carol_id, carol] = a.user("carol");
  json t = a.ok("POST", "/v1/sharing/teams", bob, {{"name", "Design"}}, 201);
  const std::string tid = t["id"];
  CHECK(t["members"][bob_id] == "owner");
  CHECK(a.status("GET", "/v1/sharing/teams/" + tid, carol) == 404);
  a.problem("POST", "/v1/sharing/teams/" + tid + "/invites", bob,
            json({{"email", "carol@example.com"}, {"role", "owner"}}).dump(), 422);
  json inv = a.ok("POST", "/v1/sharing/teams/" + tid + "/invites", bob,
                  {{"email", "carol@example.com"}, {"role", "viewer"}}, 201);
  CHECK_FALSE(inv.contains("token"));
  // the token went out through the mail hook only
  json box = a.ok("GET", "/v1/test/mailbox", a.admin);
  REQUIRE(box["items"].size() == 1);
  CHECK(box["items"][0]["to"] == "carol@example.com");
  const std::string token = box["items"][0]["token"];
  a.problem("POST", "/v1/sharing/teams/invites/accept", carol,
            json({{"token", "vsi_wrongwrongwrongwrong"}}).dump(), 404);
  json joined = a.ok("POST", "/v1/sharing/teams/invites/accept", carol, {{"token", token}});
  CHECK(joined["members"][carol_id] == "viewer");
  CHECK(a.status("POST", "/v1/sharing/teams/invites/accept", carol, {{"token", token}}) == 404);  // one use

  // the team key lives in the crypto plugin: both members are on its chain
  CHECK(t["key_chain"] == tid);
  json chain = a.ok("GET", "/v1/crypto/chains/" + tid, bob);
  CHECK(chain.dump().find(carol_id) != std::string::npos);
  const auto versions_before = chain.dump();

  // a grant to the team reaches its members, and leaves with them
  const std::string id = a.doc(a.admin);
  a.ok("POST", "/v1/sharing/grants", a.admin, grant("team:" + tid, "document/" + id, "viewer"), 201);
  CHECK(a.status("GET", "/v1/docs/" + id, carol) == 200);
  // viewers cannot manage the team
  CHECK(a.status("PATCH", "/v1/sharing/teams/" + tid + "/members/" + bob_id, carol, {{"role", "viewer"}}) ==
        403);
  a.ok("PATCH", "/v1/sharing/teams/" + tid + "/members/" + carol_id, bob, {{"role", "admin"}});
  a.problem("POST", "/v1/sharing/teams/" + tid + "/transfer", carol, json({{"user", carol_id}}).dump(), 403);
  json tr = a.ok("POST", "/v1/sharing/teams/" + tid + "/transfer", bob, {{"user", carol_id}});
  CHECK(tr["owner"] == carol_id);
  CHECK(tr["members"][bob_id] == "admin");
  a.problem("DELETE", "/v1/sharing/teams/" + tid + "/members/" + carol_id, bob, "", 409);  // the owner stays
  a.ok("DELETE", "/v1/sharing/teams/" + tid + "/members/" + bob_id, carol);
  CHECK(a.status("GET", "/v1/sharing/teams/" + tid, bob) == 404);
  // removing bob rotated the team key; bob is no longer on the chain
  json after = a.ok("GET", "/v1/crypto/chains/" + tid, carol);
  CHECK(after.dump() != versions_before);
  CHECK(after["members"].dump().find(bob_id) == std::string::npos);
  a.problem("POST", "/v1/sharing/teams/" + tid + "/transfer", carol, json({{"user", carol_id}}).dump(), 422);
}

TEST_CASE("workspace settings: required MFA, IP allowlist and default permissions",
          "[integration][workspaces]") {
  Api a;
  auto [bob_id, bob] = a.user("bob");
  auto [carol_id, carol] = a.user("carol");
  json w = a.ok("POST", "/v1/sharing/workspaces", bob, {{"name", "Studio"}}, 201);
  const std::string wid = w["id"];
  const std::string path = "/v1/sharing/workspaces/" + wid;
  CHECK(a.status("GET", path, bob) == 200);
  CHECK(a.status("GET", path, carol) == 403);
  a.problem("PUT", path + "/settings", bob, json({{"require_mfa", "yes"}}).dump(), 422);
  a.problem("PUT", path + "/settings", bob, json({{"ip_allowlist", {"10.0.0.0/40"}}}).dump(), 422);
  a.problem("PUT", path + "/settings", bob, json({{"default_role", "viewer"}}).dump(), 422);
  a.problem("PUT", path + "/settings", carol, json({{"require_mfa", false}}).dump(), 403);

  // default permissions: the team's members get the default role on the workspace
  json t = a.ok("POST", "/v1/sharing/teams", bob, {{"name", "Crew"}}, 201);
  a.ok("POST", "/v1/sharing/teams/" + t["id"].get<std::string>() + "/invites", bob,
       {{"email", "carol@example.com"}, {"role", "viewer"}}, 201);
  json box = a.ok("GET", "/v1/test/mailbox", a.admin);
  a.ok("POST", "/v1/sharing/teams/invites/accept", carol, {{"token", box["items"][0]["token"]}});
  a.ok("PUT", path + "/settings", bob,
       {{"default_team", t["id"]}, {"default_role", "viewer"}, {"features", {{"comments", true}}}});
  CHECK(a.status("GET", path, carol) == 200);

  // the allowlist and required MFA apply to everyone, the owner included
  a.ok("PUT", path + "/settings", bob, {{"ip_allowlist", {"127.0.0.0/8", "::1/128"}}});
  CHECK(a.status("GET", path, bob) == 200);
  CHECK(a.status("GET", path, carol) == 403);  // the settings replaced the default grant
  a.ok("PUT", path + "/settings", bob, {{"ip_allowlist", {"10.0.0.0/8"}}});
  CHECK(a.status("GET", path, bob) == 403);
  json why = a.ok("GET", "/v1/sharing/explain?action=read&resource=workspace/" + wid, bob);
  CHECK(why["reason"] == "the client address is outside the workspace's allowlist");
  a.ok("PUT", path + "/settings", a.admin, {{"require_mfa", true}});  // administrators can still manage it
  CHECK(a.status("GET", path, bob) == 403);
  why = a.ok("GET", "/v1/sharing/explain?action=read&resource=workspace/" + wid, bob);
  CHECK(why["reason"] == "the workspace requires MFA");
  a.ok("PUT", path + "/settings", a.admin, json::object());
  CHECK(a.status("GET", path, bob) == 200);

  // The session timeout counts from when the session was issued, on the
  // host clock: an older session is refused under the workspace, however
  // active, and signing in again helps.
  a.problem("PUT", path + "/settings", bob, json({{"session_timeout_s", 30}}).dump(), 422);
  a.ok("PUT", path + "/settings", bob, {{"session_timeout_s", 600}});
  CHECK(a.status("GET", path, bob) == 200);
  a.advance(590 * 1000);
  CHECK(a.status("GET", path, bob) == 200);
  a.advance(20 * 1000);
  CHECK(a.status("GET", path, bob) == 403);
  why = a.ok("GET", "/v1/sharing/explain?action=read&resource=workspace/" + wid, bob);
  CHECK(why["decision"] == "deny");
  CHECK(why["reason"] == "the session is older than the workspace's session timeout of 600 s; sign in again");
  // the host session itself is still valid outside the workspace
  CHECK(a.status("GET", "/v1/sharing/teams/" + t["id"].get<std::string>(), bob) == 200);
  const std::string fresh = vt::login(*a.c, "bob@example.com", kUserPw);
  CHECK(a.status("GET", path, fresh) == 200);
  a.ok("PUT", path + "/settings", fresh, json::object());
  CHECK(a.status("GET", path, bob) == 200);  // no timeout any more
}

TEST_CASE("allowed countries from a GeoIP database, failing closed without one", "[integration][geo]") {
  {  // No database configured: the setting is kept, and access is denied with the reason.
    Api a;
    auto [bob_id, bob] = a.user("bob");
    json w = a.ok("POST", "/v1/sharing/workspaces", bob, {{"name", "Studio"}}, 201);
    const std::string path = "/v1/sharing/workspaces/" + w["id"].get<std::string>();
    a.problem("PUT", path + "/settings", bob, json({{"allowed_countries", {"Germany"}}}).dump(), 422);
    json st = a.ok("PUT", path + "/settings", bob, {{"allowed_countries", {"de"}}});
    CHECK(st["settings"]["allowed_countries"] == json::array({"DE"}));
    CHECK(a.status("GET", path, bob) == 403);
    json why =
        a.ok("GET", "/v1/sharing/explain?action=read&resource=workspace/" + w["id"].get<std::string>(), bob);
    CHECK(why["reason"] ==
          "a country condition applies, but no GeoIP database is configured (geoip_database)");
  }
  // A MaxMind DB placing the loopback network (where the test client is) in Germany.
  vt::TempDir dir;
  vt::write_file(dir / "countries.mmdb", mmdb::countries({{"127.0.0.0/8", "DE"}, {"192.0.2.0/24", "FR"}}));
  Api a("geoip_database = \"" + dir / "countries.mmdb" + "\"\n");
  auto [bob_id, bob] = a.user("bob");
  json w = a.ok("POST", "/v1/sharing/workspaces", bob, {{"name", "Studio"}}, 201);
  const std::string wres = "workspace/" + w["id"].get<std::string>();
  const std::string path = "/v1/sharing/workspaces/" + w["id"].get<std::string>();
  a.ok("PUT", path + "/settings", bob, {{"allowed_countries", {"DE", "AT"}}});
  CHECK(a.status("GET", path, bob) == 200);
  a.ok("PUT", path + "/settings", a.admin, {{"allowed_countries", {"FR"}}});
  CHECK(a.status("GET", path, bob) == 403);
  json why = a.ok("GET", "/v1/sharing/explain?action=read&resource=" + wres, bob);
  CHECK(why["reason"] == "the client address is outside the workspace's allowed countries");
  a.ok("PUT", path + "/settings", a.admin, json::object());
  CHECK(a.status("GET", path, bob) == 200);

  // The same condition in a share link's environment.
  const std::string id = a.doc(a.admin);
  json fr = a.ok(
      "POST", "/v1/sharing/links", a.admin,
      {{"resource", "document/" + id}, {"role", "viewer"}, {"environment", {{"countries", {"FR"}}}}}, 201);
  json p = a.problem("POST", "/v1/sharing/links/redeem", "", json({{"token", fr["token"]}}).dump(), 403);
  CHECK(p["detail"] == "client country not listed");
  json de = a.ok(
      "POST", "/v1/sharing/links", a.admin,
      {{"resource", "document/" + id}, {"role", "viewer"}, {"environment", {{"countries", {"DE"}}}}}, 201);
  json guest = a.ok("POST", "/v1/sharing/links/redeem", "", {{"token", de["token"]}});
  CHECK(a.status("GET", "/v1/docs/" + id, guest["token"]) == 200);
}

TEST_CASE("a database that cannot be opened stops the start", "[integration][geo]") {
  vt::TempDir dir;
  vt::write_file(dir / "broken.mmdb", "not a MaxMind DB");
  vt::Vellumd::Options o(config("geoip_database = \"" + dir / "broken.mmdb" + "\"\n"), false,
                         {{"VELLUM_ROOT_KEY", new_root_key()}});
  vt::Vellumd v(o);
  CHECK(v.wait_exit() != 0);
  INFO(v.log());
  CHECK(v.log().find("geoip_database") != std::string::npos);
}

TEST_CASE("e-mail domains come from the account: grants, policies, links and invitations",
          "[integration][email]") {
  Api a;
  auto [bob_id, bob] = a.user("bob", false, "corp.example");
  auto [eve_id, eve] = a.user("eve", false, "other.example");
  const std::string id = a.doc(a.admin);
  const std::string res = "document/" + id;
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 404);
  // A grant to the whole domain reaches bob through his account e-mail alone.
  json g = a.ok("POST", "/v1/sharing/grants", a.admin, grant("domain:Corp.Example", res, "viewer"), 201);
  CHECK(g["subject"] == "domain:corp.example");
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);
  a.save(id, bob, 403);
  CHECK(a.status("GET", "/v1/docs/" + id, eve) == 404);
  json why = a.ok("GET", "/v1/sharing/explain?action=read&resource=" + res, bob);
  CHECK(why["decision"] == "permit");
  CHECK(why["subjects"].dump().find("domain:corp.example") != std::string::npos);
  // administrators explaining another user give the e-mail (plugins cannot look it up)
  why = a.ok("GET", "/v1/sharing/explain?action=read&resource=" + res + "&user=" + bob_id, a.admin);
  CHECK(why["decision"] == "deny");
  why =
      a.ok("GET",
           "/v1/sharing/explain?action=read&resource=" + res + "&user=" + bob_id + "&email=bob@corp.example",
           a.admin);
  CHECK(why["decision"] == "permit");
  // The e-mail is no longer an attribute an administrator sets.
  a.problem("PUT", "/v1/sharing/users/" + eve_id, a.admin, json({{"email", "eve@corp.example"}}).dump(), 422);
  CHECK(a.status("GET", "/v1/docs/" + id, eve) == 404);
  a.ok("DELETE", "/v1/sharing/grants/" + g["id"].get<std::string>(), a.admin);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 404);

  // A policy on the e-mail domain.
  a.ok("PUT", "/v1/sharing/policies/corp-read", a.admin,
       {{"effect", "permit"},
        {"target", {{"actions", {"read"}}, {"resource", res}}},
        {"subject", {{"email_domains", {"corp.example"}}}}},
       201);
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);
  CHECK(a.status("GET", "/v1/docs/" + id, eve) == 404);
  a.ok("DELETE", "/v1/sharing/policies/corp-read", a.admin);

  // A link for the domain: a signed-in user is checked by the account e-mail
  // (no code), and cannot claim another address.
  json link = a.ok("POST", "/v1/sharing/links", a.admin,
                   {{"resource", res}, {"role", "commenter"}, {"allowed_domains", {"corp.example"}}}, 201);
  a.problem("POST", "/v1/sharing/links/redeem", eve,
            json({{"token", link["token"]}, {"email", "eve@corp.example"}}).dump(), 403);
  a.problem("POST", "/v1/sharing/links/redeem", eve, json({{"token", link["token"]}}).dump(), 403);
  json got = a.ok("POST", "/v1/sharing/links/redeem", bob, {{"token", link["token"]}});
  CHECK(got["grant"]["subject"] == "user:" + bob_id);
  CHECK(got["grant"]["role"] == "commenter");
  CHECK(a.status("GET", "/v1/docs/" + id, bob) == 200);
  CHECK(a.ok("GET", "/v1/test/mailbox", a.admin)["items"].empty());  // no code was needed
  CHECK(a.ok("GET", "/v1/sharing/links/" + link["id"].get<std::string>() + "/uses",
             a.admin)["items"][0]["who"] == bob_id);

  // An invitation is for one address: another account cannot accept it.
  json t = a.ok("POST", "/v1/sharing/teams", eve, {{"name", "Crew"}}, 201);
  a.ok("POST", "/v1/sharing/teams/" + t["id"].get<std::string>() + "/invites", eve,
       {{"email", "Bob@Corp.Example"}, {"role", "viewer"}}, 201);
  json box = a.ok("GET", "/v1/test/mailbox", a.admin);
  REQUIRE(box["items"].size() == 1);
  const std::string token = box["items"][0]["token"];
  auto [mal_id, mal] = a.user("mallory", false, "corp.example");
  a.problem("POST", "/v1/sharing/teams/invites/accept", mal, json({{"token", token}}).dump(), 403);
  json joined = a.ok("POST", "/v1/sharing/teams/invites/accept", bob, {{"token", token}});
  CHECK(joined["members"][bob_id] == "viewer");
}
