// The signing plugin through real vellumd (crypto + editor + signing) and
// real HTTP: every algorithm's exported signature checked by the openssl
// command line, a sequential three-signer request with an external signer
// and its evidence package (verified with jq + openssl as its README says),
// a decline, an expiry, modified-since-signing, a client-held key, tampering
// and bad input.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ec.h>
#include <openssl/rand.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "harness.hpp"
#include "keys.hpp"
#include "openssl_cli.hpp"
#include "pki.hpp"
#include "statement.hpp"
#include "tsa_client.hpp"
#include "util.hpp"

using namespace vt;
using nlohmann::json;
namespace sg = vellum::signing;
using signing_test::openssl;
using signing_test::verify_args;

namespace {

const std::string kAdminEmail = "ada.signingtest@example.com";
const std::string kAdminPw = "correct horse staple 42";
const std::string kUserPw = "signer passphrase 42!";
const std::string kDocText = "Contract v1: the parties agree. SIGNING-CONTENT-MARKER-77a1";

std::string new_root_key() {
  std::string k(32, '\0');
  REQUIRE(RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32) == 1);
  return sg::b64encode(k);
}

std::string config(const std::string& extra = "", const std::string& signing = "") {
  return extra +
         "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n"
         "[plugins.editor]\n"
         "[plugins.signing]\nsweep_interval_ms = 200\n" +
         signing;
}

std::map<std::string, std::string> with_root_key(std::map<std::string, std::string> env,
                                                 const std::string& key) {
  env["VELLUM_ROOT_KEY"] = key;
  return env;
}

std::map<std::string, std::string> auth(const std::string& t) {
  return {{"Authorization", "Bearer " + t}, {"Content-Type", "application/json"}};
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Api {
  std::string root_key = new_root_key();
  Site site;
  std::unique_ptr<Vellumd> v;
  std::unique_ptr<HttpClient> c;
  std::string admin, admin_id;
  std::map<std::string, std::string> tokens, ids;

  // extra: TOML before the plugin tables; signing: more [plugins.signing]
  // keys; env: more environment for vellumd.
  explicit Api(const std::string& extra = "", const std::string& signing = "",
               std::map<std::string, std::string> env = {})
      : site(config(extra, signing), kAdminEmail, kAdminPw, with_root_key(std::move(env), root_key), "Ada") {
    v = site.start();
    c = std::make_unique<HttpClient>(*v);
    admin = vt::login(*c, kAdminEmail, kAdminPw);
    admin_id = ok("GET", "/v1/me", admin)["user"]["id"];
    for (const std::string name : {"bob", "carol"}) {
      auto mk = c->request(
          "POST", "/v1/admin/users",
          json({{"email", name + "@example.com"}, {"display_name", name}, {"password", kUserPw}}).dump(),
          auth(admin));
      REQUIRE(mk.status == 201);
      ids[name] = json::parse(mk.body)["id"];
      tokens[name] = vt::login(*c, name + "@example.com", kUserPw);
    }
  }
  Response call(const std::string& method, const std::string& path, const std::string& tok,
                const std::string& body = "", std::map<std::string, std::string> extra = {}) {
    auto h =
        tok.empty() ? std::map<std::string, std::string>{{"Content-Type", "application/json"}} : auth(tok);
    for (auto& [k, val] : extra) h[k] = val;
    return c->request(method, path, body, h);
  }
  json ok(const std::string& method, const std::string& path, const std::string& tok,
          const json& body = nullptr, int status = 200, std::map<std::string, std::string> extra = {}) {
    auto r = call(method, path, tok, body.is_null() ? "" : body.dump(), extra);
    INFO(method << " " << path << " -> " << r.status << " " << r.body);
    REQUIRE(r.status == status);
    return json::parse(r.body);
  }
  json problem(const std::string& method, const std::string& path, const std::string& tok,
               const std::string& body, int status, std::map<std::string, std::string> extra = {}) {
    auto r = call(method, path, tok, body, extra);
    INFO(method << " " << path << " -> " << r.status << " " << r.body);
    CHECK(r.status == status);
    CHECK(r.header("Content-Type").find("application/problem+json") != std::string::npos);
    return r.body.empty() ? json::object() : json::parse(r.body);
  }
  // A text document owned by the admin; returns its id.
  std::string new_doc(const std::string& text = kDocText) {
    return ok("POST", "/v1/docs", admin, {{"type", "text"}, {"title", "Contract"}, {"content", text}},
              201)["id"];
  }
  std::string key(const std::string& tok, const std::string& alg) {
    return ok("POST", "/v1/signing/keys", tok, {{"algorithm", alg}, {"rsa_bits", 2048}}, 201)["key_id"];
  }
  std::string ca_pem() { return ok("GET", "/v1/signing/ca", "")["ca_certificate"]; }
};

// Writes a signature record's parts as files and runs the openssl checks a
// third party would; returns how many passed (all must).
void openssl_checks(const json& rec, const std::string& ca_pem, const TempDir& dir) {
  write_file(dir / "ca.pem", ca_pem);
  write_file(dir / "statement.json", rec["statement"].get<std::string>());
  write_file(dir / "signature.bin", sg::b64decode(rec["signature"].get<std::string>()));
  write_file(dir / "pub.pem", rec["public_key"].get<std::string>());
  write_file(dir / "cert.pem", rec["certificate"].get<std::string>());
  write_file(dir / "timestamp.tsr", sg::b64decode(rec["timestamp"].get<std::string>()));
  const std::string alg = rec["algorithm"];
  auto raw = openssl(verify_args(alg, dir / "pub.pem", dir / "statement.json", dir / "signature.bin"));
  INFO(alg << ": " << raw.out << raw.err);
  CHECK(raw.exit_code == 0);
  auto chain = openssl({"verify", "-CAfile", dir / "ca.pem", "-purpose", "smimesign", dir / "cert.pem"});
  CHECK(chain.exit_code == 0);
  auto ts = openssl({"ts", "-verify", "-in", dir / "timestamp.tsr", "-data", dir / "signature.bin", "-CAfile",
                     dir / "ca.pem"});
  INFO(ts.out << ts.err);
  CHECK(ts.exit_code == 0);
  if (rec.contains("cms")) {
    write_file(dir / "signature.p7s", sg::b64decode(rec["cms"].get<std::string>()));
    auto cms =
        openssl({"cms", "-verify", "-binary", "-inform", "DER", "-in", dir / "signature.p7s", "-content",
                 dir / "statement.json", "-CAfile", dir / "ca.pem", "-out", dir / "out.bin"});
    INFO(cms.out << cms.err);
    CHECK(cms.exit_code == 0);
  } else {
    CHECK(alg == "ed25519");  // only where OpenSSL 3.0 has no CMS support
  }
  // The key id is the SHA-256 of the DER public key.
  auto der = openssl({"pkey", "-pubin", "-in", dir / "pub.pem", "-outform", "DER", "-out", dir / "pub.der"});
  CHECK(der.exit_code == 0);
  CHECK(sg::sha256_hex(read_file(dir / "pub.der")) == rec["key_id"]);
}

// The audit check of the evidence README (step 6), exactly as written there.
std::string readme_audit_script(const std::string& readme) {
  const std::string from = "# ---- audit check (POSIX sh) ----", to = "# ---- end of audit check ----";
  const size_t a = readme.find(from), b = readme.find(to);
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  return readme.substr(a, b + to.size() - a) + "\n";
}

}  // namespace

TEST_CASE("Every algorithm's signature through vellumd verifies with the openssl command line") {
  Api api;
  const std::string doc = api.new_doc();
  const std::string ca = api.ca_pem();
  // One server for all four (a section would restart it for each).
  for (const std::string alg : {"ecdsa-p256-sha256", "ecdsa-secp256k1-sha256", "ed25519", "rsa-pss-sha256"}) {
    INFO(alg);
    {
      const std::string kid = api.key(api.admin, alg);
      json rec =
          api.ok("POST", "/v1/signing/signatures", api.admin, {{"document", doc}, {"key_id", kid}}, 201);
      CHECK(rec["status"] == "valid");
      CHECK(rec["content_sha256"] == sg::sha256_hex(kDocText));
      CHECK(rec["signer"] == "user:" + api.admin_id);
      CHECK(rec["version"] == 1);
      CHECK_FALSE(rec.contains("private_key"));
      TempDir dir;
      openssl_checks(rec, ca, dir);
      // The verification API agrees, and refuses another document's bytes.
      json v = api.ok("POST", "/v1/signing/verify", "",
                      {{"content", sg::b64encode(kDocText)}, {"signature", rec}});
      CHECK(v["valid"] == true);
      CHECK(v["signatures"][0]["signer"] == "user:" + api.admin_id);
      CHECK_FALSE(v["signatures"][0]["timestamp_time"].get<std::string>().empty());
      json w =
          api.ok("POST", "/v1/signing/verify", "", {{"content", sg::b64encode("other")}, {"signature", rec}});
      CHECK(w["valid"] == false);
    }
  }
  // Keys list shows public parts only; the private keys never left storage in the clear.
  json keys = api.ok("GET", "/v1/signing/keys", api.admin);
  CHECK(keys["items"].size() == 4);
  CHECK(keys.dump().find("PRIVATE KEY") == std::string::npos);
  const std::string db = api.site.db_bytes();
  CHECK(db.find("PRIVATE KEY") == std::string::npos);
  CHECK(db.find("SIGNING-CONTENT-MARKER") == std::string::npos);
}

TEST_CASE("Sequential three-signer request with an external signer yields a verifiable evidence package") {
  Api api;
  const std::string doc = api.new_doc();
  const std::string bob_key = api.key(api.tokens["bob"], "ecdsa-p256-sha256");
  const std::string carol_key = api.key(api.tokens["carol"], "rsa-pss-sha256");
  json req = api.ok("POST", "/v1/signing/requests", api.admin,
                    {{"document", doc},
                     {"signers", json::array({{{"user", api.ids["bob"]}},
                                              {{"email", "Erin@Outside.example"}},
                                              {{"user", api.ids["carol"]}}})},
                     {"order", "sequential"},
                     {"deadline_ms", now_ms() + 3600000},
                     {"message", "Please sign the contract"}},
                    201);
  const std::string id = req["id"];
  CHECK(req["state"] == "pending");
  CHECK(req["awaiting"] == json::array({"user:" + api.ids["bob"]}));
  REQUIRE(req["invitations"].size() == 1);
  const std::string link = req["invitations"][0]["token"];
  CHECK(link.size() >= 40);  // 256 bits, base64url
  // The token is not readable back: GET shows no token or hash.
  json again = api.ok("GET", "/v1/signing/requests/" + id, api.admin);
  CHECK(again.dump().find(link) == std::string::npos);
  CHECK_FALSE(again.dump().find("token_hash") != std::string::npos);

  // Carol may not sign before bob and the external signer.
  api.problem("POST", "/v1/signing/requests/" + id + "/sign", api.tokens["carol"],
              json({{"key_id", carol_key}}).dump(), 409);
  json after_bob =
      api.ok("POST", "/v1/signing/requests/" + id + "/sign", api.tokens["bob"], {{"key_id", bob_key}});
  CHECK(after_bob["state"] == "partial");
  CHECK(after_bob["awaiting"] == json::array({"email:erin@outside.example"}));

  // The external signer redeems the one-time link: sees the exact bytes, signs.
  std::map<std::string, std::string> hdr = {{"Vellum-Signing-Token", link}};
  json inv = api.ok("GET", "/v1/signing/invitation", "", nullptr, 200, hdr);
  CHECK(sg::b64decode(inv["content"].get<std::string>()) == kDocText);
  CHECK(inv["your_turn"] == true);
  json ext =
      api.ok("POST", "/v1/signing/invitation/sign", "", {{"algorithm", "ecdsa-secp256k1-sha256"}}, 200, hdr);
  CHECK(ext["signature"]["signer"] == "email:erin@outside.example");
  // Single use.
  api.problem("POST", "/v1/signing/invitation/sign", "", "{}", 404, hdr);
  api.problem("GET", "/v1/signing/invitation", "", "", 404, hdr);
  api.problem("GET", "/v1/signing/invitation", "", "", 404, {{"Vellum-Signing-Token", link + "x"}});

  // Evidence only once complete.
  api.problem("GET", "/v1/signing/requests/" + id + "/evidence", api.admin, "", 409);
  json done =
      api.ok("POST", "/v1/signing/requests/" + id + "/sign", api.tokens["carol"], {{"key_id", carol_key}});
  CHECK(done["state"] == "complete");

  auto ev = api.call("GET", "/v1/signing/requests/" + id + "/evidence", api.tokens["bob"]);
  REQUIRE(ev.status == 200);
  json pkg = json::parse(ev.body);
  CHECK(pkg["format"] == "vellum.evidence.v1");
  CHECK(pkg["document"]["content_sha256"] == sg::sha256_hex(kDocText));
  REQUIRE(pkg["signatures"].size() == 3);
  CHECK(pkg["request"]["state"] == "complete");
  // The audit excerpt: the request's creation and three signatures, and the
  // editor's record of the signed version (its creation: version 1).
  CHECK(pkg["audit"]["included"] == true);
  CHECK(pkg["audit"]["request_records"] == 4);
  CHECK(pkg["audit"]["version_records"] == 1);
  CHECK(pkg["audit"]["version_records_complete"] == true);

  // A third party follows the package's README with jq and openssl only.
  TempDir dir;
  write_file(dir / "E", ev.body);
  auto sh = [&](const std::string& cmd) {
    auto r = vt::run({"/bin/sh", "-c", "cd '" + dir.path() + "' && " + cmd});
    INFO(cmd << "\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    return r;
  };
  sh("jq -j .ca_certificate E > ca.pem");
  sh("jq -j .tsa_ca_certificates E > tsa-ca.pem");
  for (int n = 0; n < 3; ++n) {
    const std::string N = std::to_string(n);
    const std::string alg = pkg["signatures"][n]["algorithm"];
    sh("jq -j '.signatures[" + N + "].statement' E > statement.json");
    sh("jq -r '.signatures[" + N + "].signature' E | base64 -d > signature.bin");
    sh("jq -j '.signatures[" + N + "].public_key' E > pub.pem");
    sh("jq -j '.signatures[" + N + "].certificate' E > cert.pem");
    sh("jq -r '.signatures[" + N + "].timestamp' E | base64 -d > timestamp.tsr");
    sh(alg == "rsa-pss-sha256"
           ? "openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt "
             "rsa_mgf1_md:sha256 -verify pub.pem -signature signature.bin statement.json"
           : "openssl dgst -sha256 -verify pub.pem -signature signature.bin statement.json");
    sh("openssl verify -CAfile ca.pem -purpose smimesign cert.pem");
    sh("openssl ts -verify -in timestamp.tsr -data signature.bin -CAfile tsa-ca.pem");
    sh("jq -r '.signatures[" + N + "].cms' E | base64 -d > signature.p7s");
    sh("openssl cms -verify -binary -inform DER -in signature.p7s -content statement.json -CAfile ca.pem "
       "-out "
       "/dev/null");
    CHECK(sg::parse_statement(read_file(dir / "statement.json")).request == id);
  }
  CHECK(pkg["readme"].get<std::string>().find("openssl ts -verify") != std::string::npos);

  // Step 6 of the README, literally: its audit script, with the log's public
  // key from the operator (`vellumd audit public-key`), not from the package.
  const std::string script = readme_audit_script(pkg["readme"]);
  write_file(dir / "audit-check.sh", script);
  auto pub = vt::run({vellumd_path(), "audit", "public-key", "--data-dir", api.site.data_dir()});
  REQUIRE(pub.exit_code == 0);
  write_file(dir / "log.pub", pub.out);
  CHECK(pkg["audit"]["log_public_key"] == pub.out);
  auto audit_check = [&](const std::string& package) {
    write_file(dir / "E", package);
    return vt::run({"/bin/sh", "-c", "cd '" + dir.path() + "' && sh audit-check.sh"});
  };
  {
    auto good = audit_check(ev.body);
    INFO(good.out << good.err);
    CHECK(good.exit_code == 0);
    CHECK_THAT(good.out, Catch::Contains("audit: OK"));
  }
  auto refused_by_script = [&](const json& bad, const std::string& why) {
    auto r = audit_check(bad.dump(2));
    INFO(why << ": " << r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Catch::Contains("audit: FAILED"));
    return r.err;
  };
  auto find_record = [&](json& p, const std::string& action, const std::string& needle) -> json& {
    for (auto& x : p["audit"]["excerpts"])
      for (auto& r : x["records"]) {
        const std::string body = r["body"];
        if (body.find("\"action\":\"" + action + "\"") != std::string::npos &&
            body.find(needle) != std::string::npos)
          return r;
      }
    FAIL("no " << action << " record with " << needle);
    throw std::logic_error("unreachable");
  };
  const std::string erin_sig = pkg["signatures"][1]["id"];
  {  // a record's body changed: its leaf no longer folds to the signed root
    json bad = pkg;
    json& rec = find_record(bad, "signing.request.sign", erin_sig);
    std::string body = rec["body"];
    body.replace(body.find("\"success\""), 9, "\"failure\"");
    rec["body"] = body;
    CHECK_THAT(refused_by_script(bad, "body"), Catch::Contains("not in the signed log"));
  }
  {  // a hash of an audit path changed
    json bad = pkg;
    json& rec = find_record(bad, "signing.request.create", id);
    REQUIRE_FALSE(rec["inclusion_proof"].empty());
    std::string h = rec["inclusion_proof"][0];
    h[0] = h[0] == '0' ? '1' : '0';
    rec["inclusion_proof"][0] = h;
    CHECK_THAT(refused_by_script(bad, "proof"), Catch::Contains("not in the signed log"));
  }
  {  // the checkpoint's signed text changed (another root)
    json bad = pkg;
    std::string sd = bad["audit"]["excerpts"][0]["checkpoint"]["signed_data"];
    const size_t at = sd.find("root=") + 5;
    sd[at] = sd[at] == '0' ? '1' : '0';
    bad["audit"]["excerpts"][0]["checkpoint"]["signed_data"] = sd;
    CHECK_THAT(refused_by_script(bad, "checkpoint"), Catch::Contains("signature of checkpoint"));
  }
  {  // a signature's record left out: every proof holds, but (c) does not
    json bad = pkg;
    for (auto& x : bad["audit"]["excerpts"]) {
      json kept = json::array();
      for (auto& r : x["records"])
        if (r["body"].get<std::string>().find(erin_sig) == std::string::npos) kept.push_back(r);
      x["records"] = kept;
    }
    CHECK_THAT(refused_by_script(bad, "omitted"), Catch::Contains("do not say what the package says"));
  }
  {  // another log's key: nothing verifies
    sh("openssl genpkey -algorithm ed25519 | openssl pkey -pubout > log.pub");
    CHECK_THAT(refused_by_script(pkg, "key"), Catch::Contains("signature of checkpoint"));
    write_file(dir / "log.pub", pub.out);
  }

  // The verification API accepts the package with the document's bytes...
  json ok =
      api.ok("POST", "/v1/signing/verify", "", {{"content", sg::b64encode(kDocText)}, {"evidence", pkg}});
  CHECK(ok["valid"] == true);
  CHECK(ok["ca_matches"] == true);
  CHECK(ok["signatures"].size() == 3);
  CHECK(ok["audit"]["valid"] == true);
  CHECK(ok["audit"]["records"] == 5);
  CHECK(ok["audit"]["log_key_matches"] == true);
  {
    json bad = pkg;
    json& rec = bad["audit"]["excerpts"][0]["records"][0];
    rec["body"] = rec["body"].get<std::string>() + " ";
    json r = api.ok("POST", "/v1/signing/verify", "", {{"evidence", bad}});
    CHECK(r["audit"]["valid"] == false);
  }
  // ...and refuses tampered statements, signatures, hashes and tokens.
  auto refused = [&](json bad, const json& content) {
    json body = {{"evidence", bad}};
    if (!content.is_null()) body["content"] = content;
    json r = api.ok("POST", "/v1/signing/verify", "", body);
    CHECK(r["valid"] == false);
  };
  json t1 = pkg;
  std::string st = t1["signatures"][1]["statement"];
  st.replace(st.find("erin"), 4, "eve_");
  t1["signatures"][1]["statement"] = st;
  refused(t1, sg::b64encode(kDocText));
  json t2 = pkg;
  std::string sig = sg::b64decode(t2["signatures"][0]["signature"].get<std::string>());
  sig[sig.size() / 2] ^= 1;
  t2["signatures"][0]["signature"] = sg::b64encode(sig);
  refused(t2, sg::b64encode(kDocText));
  refused(pkg, sg::b64encode(kDocText + "!"));  // other bytes: hash mismatch
  json t4 = pkg;
  std::string tok = sg::b64decode(t4["signatures"][2]["timestamp"].get<std::string>());
  tok[tok.size() - 20] ^= 1;
  t4["signatures"][2]["timestamp"] = sg::b64encode(tok);
  refused(t4, nullptr);
  json t5 = pkg;
  t5["signatures"][0]["content_sha256"] = sg::sha256_hex("x");  // display member: the statement decides
  t5["document"]["content_sha256"] = sg::sha256_hex("x");
  refused(t5, nullptr);

  // Audit records for the request's lifecycle.
  json audit = api.ok("GET", "/v1/admin/audit?action=signing.request.sign", api.admin);
  CHECK(audit["records"].size() == 3);
  CHECK(audit.dump().find(link) == std::string::npos);
  CHECK(api.v->stop() == 0);  // under ASan: no leak in the evidence and audit paths
}

TEST_CASE("A decline ends a request and a cancellation is audited") {
  Api api;
  const std::string doc = api.new_doc();
  json req = api.ok("POST", "/v1/signing/requests", api.admin,
                    {{"document", doc},
                     {"signers", json::array({{{"user", api.ids["bob"]}}, {{"user", api.ids["carol"]}}})},
                     {"order", "parallel"},
                     {"deadline_ms", now_ms() + 3600000}},
                    201);
  const std::string id = req["id"];
  api.problem("POST", "/v1/signing/requests/" + id + "/decline", api.tokens["bob"], "{}",
              422);  // reason required
  json d = api.ok("POST", "/v1/signing/requests/" + id + "/decline", api.tokens["bob"],
                  {{"reason", "clause 4 is wrong"}});
  CHECK(d["state"] == "declined");
  CHECK(d["signers"][0]["reason"] == "clause 4 is wrong");
  const std::string ck = api.key(api.tokens["carol"], "ed25519");
  api.problem("POST", "/v1/signing/requests/" + id + "/sign", api.tokens["carol"],
              json({{"key_id", ck}}).dump(), 409);
  api.problem("GET", "/v1/signing/requests/" + id + "/evidence", api.admin, "", 409);

  // An external signer declines through the link, which is then used up.
  json req3 = api.ok("POST", "/v1/signing/requests", api.admin,
                     {{"document", doc},
                      {"signers", json::array({{{"email", "dora@outside.example"}}})},
                      {"deadline_ms", now_ms() + 3600000}},
                     201);
  std::map<std::string, std::string> hdr = {{"Vellum-Signing-Token", req3["invitations"][0]["token"]}};
  api.problem("POST", "/v1/signing/invitation/decline", "", "{}", 422, hdr);  // a reason is required
  json d3 = api.ok("POST", "/v1/signing/invitation/decline", "", {{"reason", "not my contract"}}, 200, hdr);
  CHECK(d3["state"] == "declined");
  CHECK(d3["signers"][0]["reason"] == "not my contract");
  api.problem("POST", "/v1/signing/invitation/sign", "", "{}", 404, hdr);

  // Cancellation: only the requester; audited.
  json req2 = api.ok("POST", "/v1/signing/requests", api.admin,
                     {{"document", doc},
                      {"signers", json::array({{{"user", api.ids["bob"]}}})},
                      {"deadline_ms", now_ms() + 3600000}},
                     201);
  const std::string id2 = req2["id"];
  api.problem("POST", "/v1/signing/requests/" + id2 + "/cancel", api.tokens["bob"], "{}", 403);
  json c = api.ok("POST", "/v1/signing/requests/" + id2 + "/cancel", api.admin, {{"reason", "superseded"}});
  CHECK(c["state"] == "cancelled");
  api.problem("POST", "/v1/signing/requests/" + id2 + "/cancel", api.admin, "{}", 409);
  json audit = api.ok("GET", "/v1/admin/audit?action=signing.request.cancel", api.admin);
  REQUIRE(audit["records"].size() == 1);
  CHECK(audit["records"][0]["actor"] == api.admin_id);
  // Carol is no signer of it and cannot even see it.
  api.problem("GET", "/v1/signing/requests/" + id2, api.tokens["carol"], "", 404);
}

TEST_CASE("A request past its deadline expires and refuses signatures") {
  // The host's test clock ([testing] clock_control) moves time forward: no
  // sleeping until a deadline, no clock of the plugin's own.
  Api api("[testing]\nclock_control = true\n");
  const std::string doc = api.new_doc();
  const std::string bk = api.key(api.tokens["bob"], "ecdsa-p256-sha256");
  json req = api.ok("POST", "/v1/signing/requests", api.admin,
                    {{"document", doc},
                     {"signers", json::array({{{"user", api.ids["bob"]}}, {{"email", "x@y.example"}}})},
                     {"deadline_ms", now_ms() + 10 * 60000}},
                    201);
  const std::string id = req["id"];
  const std::string link = req["invitations"][0]["token"];
  CHECK(api.ok("GET", "/v1/signing/requests/" + id, api.admin)["state"] == "pending");
  // Only an administrator moves the clock. 20 minutes: past the deadline,
  // within the sessions' idle limit (60 minutes).
  api.problem("POST", "/v1/admin/clock", api.tokens["bob"], json({{"advance_ms", 1}}).dump(), 403);
  api.ok("POST", "/v1/admin/clock", api.admin, {{"advance_ms", 20 * 60000}});
  // Expired at once (derived from the host clock), before the sweeper runs.
  CHECK(api.ok("GET", "/v1/signing/requests/" + id, api.admin)["state"] == "expired");
  api.problem("POST", "/v1/signing/requests/" + id + "/sign", api.tokens["bob"],
              json({{"key_id", bk}}).dump(), 409);
  api.problem("POST", "/v1/signing/invitation/sign", "", "{}", 409, {{"Vellum-Signing-Token", link}});
  // The sweeper (every 200 ms) announces the expiry once and audits it:
  // poll for it, no timing assertion.
  json audit;
  for (int i = 0; i < 300; ++i) {
    audit = api.ok("GET", "/v1/admin/audit?action=signing.request.expire", api.admin);
    if (!audit["records"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(audit["records"].size() == 1);
  CHECK(audit["records"][0]["resource"].get<std::string>().ends_with("/signing-request/" + id));
  // A new request cannot have a deadline in the (moved) past.
  api.problem("POST", "/v1/signing/requests", api.admin,
              json({{"document", doc},
                    {"signers", json::array({{{"user", api.ids["bob"]}}})},
                    {"deadline_ms", now_ms() + 15 * 60000}})
                  .dump(),
              422);
}

TEST_CASE("A signature shows document modified since signing once a later version exists") {
  Api api;
  const std::string doc = api.new_doc();
  const std::string kid = api.key(api.admin, "ed25519");
  json rec = api.ok("POST", "/v1/signing/signatures", api.admin, {{"document", doc}, {"key_id", kid}}, 201);
  CHECK(rec["status"] == "valid");
  api.ok("PUT", "/v1/docs/" + doc, api.admin, {{"base_version", 1}, {"content", "Contract v2"}});
  json now = api.ok("GET", "/v1/signing/signatures/" + rec["id"].get<std::string>(), api.admin);
  CHECK(now["status"] == "document modified since signing");
  CHECK(now["version"] == 1);
  json list = api.ok("GET", "/v1/signing/documents/" + doc + "/signatures", api.admin);
  REQUIRE(list["items"].size() == 1);
  CHECK(list["items"][0]["status"] == "document modified since signing");
  // Still valid for its version's bytes.
  json v =
      api.ok("POST", "/v1/signing/verify", "", {{"content", sg::b64encode(kDocText)}, {"signature", rec}});
  CHECK(v["valid"] == true);
  // Someone without read access sees nothing.
  api.problem("GET", "/v1/signing/signatures/" + rec["id"].get<std::string>(), api.tokens["bob"], "", 404);
  api.problem("GET", "/v1/signing/documents/" + doc + "/signatures", api.tokens["bob"], "", 404);
}

TEST_CASE("A client-held key signs end to end and the server only verifies") {
  Api api;
  const std::string doc = api.new_doc();
  for (auto alg : {sg::Algorithm::EcdsaP256, sg::Algorithm::Ed25519}) {
    INFO(sg::algorithm_name(alg));
    {
      // The key is made and kept by the client (this test process).
      sg::Pkey key = sg::generate_key(alg);
      const std::string kid = sg::key_id(key.get());
      EVP_PKEY_up_ref(key.get());
      sg::Signer client(alg, sg::Pkey(key.get()));
      // WebCrypto-style r‖s ECDSA signatures are accepted.
      auto webcrypto = [&](const std::string& m) {
        std::string der = client.sign(m);
        if (alg != sg::Algorithm::EcdsaP256) return der;
        const auto* p = reinterpret_cast<const unsigned char*>(der.data());
        ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
        std::string raw(64, '\0');
        BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
        ECDSA_SIG_free(s);
        return raw;
      };
      const std::string challenge = "vellum.signing.key-registration.v1:" + api.admin_id + ":" + kid;
      // A wrong proof is refused and registers nothing.
      api.problem("POST", "/v1/signing/keys", api.admin,
                  json({{"algorithm", sg::algorithm_name(alg)},
                        {"public_key", sg::pubkey_pem(key.get())},
                        {"proof", sg::b64encode(webcrypto("something else"))}})
                      .dump(),
                  422);
      json k = api.ok("POST", "/v1/signing/keys", api.admin,
                      {{"algorithm", sg::algorithm_name(alg)},
                       {"public_key", sg::pubkey_pem(key.get())},
                       {"proof", sg::b64encode(webcrypto(challenge))}},
                      201);
      CHECK(k["custody"] == "client");
      CHECK(k["key_id"] == kid);
      json st = api.ok("POST", "/v1/signing/statement", api.admin, {{"document", doc}, {"key_id", kid}});
      const std::string stmt = st["statement"];
      CHECK(sg::parse_statement(stmt).content_sha256 == sg::sha256_hex(kDocText));
      // Server-side signing is impossible without the private key; the client signs.
      api.problem("POST", "/v1/signing/signatures", api.admin,
                  json({{"document", doc},
                        {"key_id", kid},
                        {"signed_at", st["signed_at"]},
                        {"signature", sg::b64encode(webcrypto(stmt + " "))}})
                      .dump(),
                  422);
      json rec = api.ok("POST", "/v1/signing/signatures", api.admin,
                        {{"document", doc},
                         {"key_id", kid},
                         {"signed_at", st["signed_at"]},
                         {"signature", sg::b64encode(webcrypto(stmt))}},
                        201);
      CHECK(rec["key_custody"] == "client");
      CHECK(rec["statement"] == stmt);
      TempDir dir;
      openssl_checks(rec, api.ca_pem(), dir);
    }
  }
}

TEST_CASE("Bad signing input gets problem+json and changes nothing") {
  Api api;
  const std::string doc = api.new_doc();
  api.problem("POST", "/v1/signing/keys", api.admin, "{not json", 400);
  api.problem("POST", "/v1/signing/keys", api.admin, json({{"algorithm", "rsa-512"}}).dump(), 422);
  json small = api.problem("POST", "/v1/signing/keys", api.admin,
                           json({{"algorithm", "rsa-pss-sha256"}, {"rsa_bits", 1024}}).dump(), 422);
  CHECK(small["detail"].get<std::string>().find("below 2048 bits") != std::string::npos);
  CHECK(api.ok("GET", "/v1/signing/keys", api.admin)["items"].empty());
  const std::string kid = api.key(api.admin, "ecdsa-p256-sha256");
  api.problem("POST", "/v1/signing/signatures", api.admin,
              json({{"document", "nope"}, {"key_id", kid}}).dump(), 404);
  api.problem("POST", "/v1/signing/signatures", api.admin,
              json({{"document", doc}, {"key_id", kid}, {"version", 9}}).dump(), 404);
  api.problem("POST", "/v1/signing/signatures", api.admin,
              json({{"document", doc}, {"key_id", std::string(64, '0')}}).dump(), 404);
  api.problem("POST", "/v1/signing/signatures", api.admin,
              json({{"document", doc}, {"key_id", kid}, {"intent", "Bad Intent"}}).dump(), 422);
  // Bob may not sign the admin's document outside a request (no PDP grants it).
  const std::string bk = api.key(api.tokens["bob"], "ed25519");
  api.problem("POST", "/v1/signing/signatures", api.tokens["bob"],
              json({{"document", doc}, {"key_id", bk}}).dump(), 404);
  // Nor create a request on it.
  api.problem("POST", "/v1/signing/requests", api.tokens["bob"],
              json({{"document", doc},
                    {"signers", json::array({{{"user", api.ids["carol"]}}})},
                    {"deadline_ms", now_ms() + 60000}})
                  .dump(),
              404);
  api.problem("POST", "/v1/signing/requests", api.admin,
              json({{"document", doc}, {"signers", json::array()}, {"deadline_ms", now_ms() + 60000}}).dump(),
              422);
  api.problem(
      "POST", "/v1/signing/requests", api.admin,
      json({{"document", doc}, {"signers", json::array({{{"user", "x"}}})}, {"deadline_ms", 5}}).dump(), 422);
  CHECK(api.ok("GET", "/v1/signing/documents/" + doc + "/signatures", api.admin)["items"].empty());
  api.problem("POST", "/v1/signing/verify", "", json({{"nothing", 1}}).dump(), 422);
  json v = api.ok("POST", "/v1/signing/verify", "", {{"signature", {{"statement", "{}"}}}});
  CHECK(v["valid"] == false);
  api.problem("GET", "/v1/signing/requests/0123", api.admin, "", 404);
  api.problem("GET", "/v1/signing/invitation", "", "", 404);
  // Anonymous callers reach only the public routes.
  CHECK(api.call("POST", "/v1/signing/keys", "", "{}").status == 401);
}

TEST_CASE("check-config refuses bad signing keys and an operator-configured CA and TSA are used") {
  TempDir d;
  auto check = [&](const std::string& signing) {
    write_file(d / "vellum.toml",
               "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n[plugins.editor]\n"
               "[plugins.signing]\n" +
                   signing + "\n[plugins]\ndir = \"" + plugin_dir() + "\"\n");
    return vt::run({vellumd_path(), "check-config", "--config", d / "vellum.toml"}, std::chrono::seconds(60),
                   {{"VELLUM_ROOT_KEY", new_root_key()}});
  };
  CHECK(check("").exit_code == 0);
  auto unknown = check("colour = \"blue\"");
  CHECK(unknown.exit_code != 0);
  CHECK_THAT(unknown.err, Catch::Contains("unknown key 'colour'"));
  auto rsa = check("default_rsa_bits = 1024");
  CHECK(rsa.exit_code != 0);
  CHECK_THAT(rsa.err, Catch::Contains("default_rsa_bits"));
  auto tsa = check("tsa_url = \"https://tsa.example\"");
  CHECK(tsa.exit_code != 0);
  CHECK_THAT(tsa.err, Catch::Contains("needs 'tsa_ca_file'"));
  CHECK(check("tsa_url = \"https://tsa.example/tsr\"\ntsa_ca_file = \"/x.pem\"").exit_code == 0);
  auto scheme = check("tsa_url = \"ftp://tsa.example\"\ntsa_ca_file = \"/x.pem\"");
  CHECK(scheme.exit_code != 0);
  CHECK_THAT(scheme.err, Catch::Contains("http:// or https://"));
  auto clear =
      check("tsa_url = \"http://tsa.example\"\ntsa_ca_file = \"/x.pem\"\ntsa_auth_token = \"t0k3n\"");
  CHECK(clear.exit_code != 0);
  CHECK_THAT(clear.err, Catch::Contains("in the clear"));
  CHECK(clear.err.find("t0k3n") == std::string::npos);
  auto lone = check("tsa_ca_file = \"/x.pem\"");
  CHECK(lone.exit_code != 0);
  CHECK_THAT(lone.err, Catch::Contains("external TSA"));
  auto endpoint = check("tsa_endpoint = \"open\"");
  CHECK(endpoint.exit_code != 0);
  CHECK_THAT(endpoint.err, Catch::Contains("tsa_endpoint"));
  CHECK(check("tsa_endpoint = \"public\"\ntsa_rate_per_minute = 5").exit_code == 0);
  CHECK(check("ca_cert_file = \"/x.pem\"").exit_code != 0);  // needs its key

  // An operator's CA and TSA from files.
  const int64_t t = now_ms();
  sg::KeyAndCert ca = sg::make_ca("Operator signing CA", t);
  sg::KeyAndCert tsa_kc = sg::make_tsa(ca, "Operator TSA", t);
  write_file(d / "ca.pem", sg::cert_pem(ca.cert.get()));
  write_file(d / "ca.key", sg::privkey_pem(ca.key.get()));
  write_file(d / "tsa.pem", sg::cert_pem(tsa_kc.cert.get()));
  write_file(d / "tsa.key", sg::privkey_pem(tsa_kc.key.get()));
  const std::string files = "ca_cert_file = \"" + d / "ca.pem" + "\"\nca_key_file = \"" + d / "ca.key" +
                            "\"\ntsa_cert_file = \"" + d / "tsa.pem" + "\"\ntsa_key_file = \"" +
                            d / "tsa.key" + "\"\ntsa_policy_oid = \"1.3.6.1.4.1.99999.7\"\n";
  const std::string root = new_root_key();
  Site site(
      "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n[plugins.editor]\n[plugins.signing]\n" +
          files,
      kAdminEmail, kAdminPw, {{"VELLUM_ROOT_KEY", root}}, "Ada");
  auto v = site.start();
  HttpClient c(*v);
  json info = json::parse(c.get("/v1/signing/ca").body);
  CHECK(info["ca_certificate"] == sg::cert_pem(ca.cert.get()));
  CHECK(info["tsa_certificate"] == sg::cert_pem(tsa_kc.cert.get()));
  const std::string admin = vt::login(c, kAdminEmail, kAdminPw);
  auto doc = c.request("POST", "/v1/docs", json({{"type", "text"}, {"content", "x"}}).dump(), auth(admin));
  REQUIRE(doc.status == 201);
  auto key =
      c.request("POST", "/v1/signing/keys", json({{"algorithm", "ecdsa-p256-sha256"}}).dump(), auth(admin));
  REQUIRE(key.status == 201);
  auto sig = c.request(
      "POST", "/v1/signing/signatures",
      json({{"document", json::parse(doc.body)["id"]}, {"key_id", json::parse(key.body)["key_id"]}}).dump(),
      auth(admin));
  REQUIRE(sig.status == 201);
  TempDir out;
  json rec = json::parse(sig.body);
  openssl_checks(rec, sg::cert_pem(ca.cert.get()), out);
  auto text = openssl({"ts", "-reply", "-in", out / "timestamp.tsr", "-text"});
  CHECK(text.out.find("1.3.6.1.4.1.99999.7") != std::string::npos);
  // A TSA certificate without the timeStamping usage is refused at start.
  sg::Cert plain = sg::issue_signing_cert(ca, tsa_kc.key.get(), "not a tsa", "", t);
  write_file(d / "tsa.pem", sg::cert_pem(plain.get()));
  CHECK(v->stop() == 0);  // a clean shutdown (under ASan: no leak report)
  auto bad = site.start(false);
  CHECK(bad->wait_exit() != 0);
  CHECK_THAT(bad->log(), Catch::Contains("timeStamping"));
}

namespace {

// An HTTP server on a loopback port that stands in for an external RFC 3161
// TSA at the network level: it answers each POST as `mode` says, with a
// real TimeStampResp from OpenSSL's TS API where it answers properly.
class FakeTsaServer {
 public:
  enum class Mode { Proper, Garbage, OtherData, Untrusted, ServerError, Silent };
  std::atomic<Mode> mode{Mode::Proper};
  sg::KeyAndCert ca = sg::make_ca("Stand-in TSA CA", now_ms());
  sg::KeyAndCert other_ca = sg::make_ca("Untrusted CA", now_ms());
  sg::Tsa tsa{sg::make_tsa(ca, "Stand-in TSA", now_ms()), "1.3.6.1.4.1.99999.3161"};
  sg::Tsa untrusted{sg::make_tsa(other_ca, "Untrusted TSA", now_ms()), "1.3.6.1.4.1.99999.3161"};

  FakeTsaServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeTsaServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/tsa"; }
  int requests() const { return requests_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      answer(c);
      ::close(c);
    }
  }
  void answer(int c) {
    std::string in;
    char buf[4096];
    size_t need = std::string::npos;
    while (need == std::string::npos || in.size() < need) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
      const size_t end = in.find("\r\n\r\n");
      if (need == std::string::npos && end != std::string::npos) {
        std::string head = in.substr(0, end);
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char ch) { return std::tolower(ch); });
        const size_t cl = head.find("content-length:");
        need = end + 4 + (cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15)));
      }
    }
    ++requests_;
    const std::string query = in.substr(in.find("\r\n\r\n") + 4);
    std::string status = "200 OK", body;
    switch (mode.load()) {
      case Mode::Proper:
        body = tsa.respond(query, now_ms());
        break;
      case Mode::Garbage:
        body = "this is not DER";
        break;
      case Mode::OtherData:  // a real token, for another query
        body = tsa.stamp("something else", now_ms(), "12345678");
        break;
      case Mode::Untrusted:
        body = untrusted.respond(query, now_ms());
        break;
      case Mode::ServerError:
        status = "500 Internal Server Error";
        body = "down for maintenance";
        break;
      case Mode::Silent:  // never answers; the client's timeout ends it
        for (int i = 0; i < 100 && !stop_; ++i) {
          pollfd p{c, POLLIN, 0};
          if (::poll(&p, 1, 100) > 0 && ::read(c, buf, sizeof buf) <= 0) return;
        }
        return;
    }
    std::string out =
        "HTTP/1.0 " + status +
        "\r\nContent-Type: application/timestamp-reply\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    (void)!::write(c, out.data(), out.size());
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("One vellumd is another's RFC 3161 TSA, and any RFC 3161 client can use it") {
  // The TSA: tsa_endpoint = "authenticated" (the default), 5 stamps a minute per caller.
  Api a("", "tsa_rate_per_minute = 5\n");
  json info = a.ok("GET", "/v1/signing/ca", "");
  CHECK(info["tsa_endpoint"] == "/v1/signing/tsa");
  CHECK(info["tsa_url"].is_null());
  TempDir dir;
  auto sh = [&](const std::string& cmd) {
    return vt::run({"/bin/sh", "-c", "cd '" + dir.path() + "' && " + cmd});
  };
  write_file(dir / "a-ca.pem", info["ca_certificate"].get<std::string>());
  write_file(dir / "data.txt", "a document to time-stamp");
  const std::string tsa_url = "https://127.0.0.1:" + std::to_string(a.v->port()) + "/v1/signing/tsa";
  const std::string token = a.tokens["bob"];  // any account of A
  // Stock tools: openssl ts makes the query, curl posts it, openssl checks the reply.
  REQUIRE(sh("openssl ts -query -data data.txt -sha256 -cert -out q.tsq").exit_code == 0);
  auto curl = [&](const std::string& extra, const std::string& body_file) {
    return sh("curl -sS --cacert '" + a.v->ca_file() + "' " + extra + " --data-binary @" + body_file +
              " -o r.out -w '%{http_code} %{content_type}' " + tsa_url);
  };
  const std::string query_type = "-H 'Content-Type: application/timestamp-query'";
  auto r = curl(query_type + " -H 'Authorization: Bearer " + token + "'", "q.tsq");
  INFO(r.out << r.err);
  CHECK(r.out == "200 application/timestamp-reply");
  auto v1 = sh("openssl ts -verify -in r.out -queryfile q.tsq -CAfile a-ca.pem");
  INFO(v1.out << v1.err);
  CHECK(v1.exit_code == 0);
  CHECK(sh("openssl ts -verify -in r.out -data data.txt -CAfile a-ca.pem").exit_code == 0);
  // Authenticated by default; a body that is no TimeStampReq, another media
  // type, an oversized body: problem+json, no token.
  CHECK(curl(query_type, "q.tsq").out.substr(0, 3) == "401");
  const std::string bearer = " -H 'Authorization: Bearer " + token + "'";
  write_file(dir / "junk.bin", "not a TimeStampReq");
  CHECK(curl(query_type + bearer, "junk.bin").out == "400 application/problem+json");
  CHECK(curl("-H 'Content-Type: application/octet-stream'" + bearer, "q.tsq").out ==
        "415 application/problem+json");
  write_file(dir / "big.bin", std::string(9000, 'x'));
  CHECK(curl(query_type + bearer, "big.bin").out == "413 application/problem+json");
  // A well-formed query the TSA does not grant (SHA-1) gets an RFC 3161 rejection.
  REQUIRE(sh("openssl ts -query -data data.txt -sha1 -cert -out sha1.tsq").exit_code == 0);
  CHECK(curl(query_type + bearer, "sha1.tsq").out == "200 application/timestamp-reply");
  auto rej = sh("openssl ts -reply -in r.out -text");
  CHECK_THAT(rej.out, Catch::Contains("Status: Rejected"));

  // B stamps its signatures at A over HTTPS, trusting A's TLS certificate
  // and A's signing CA; the API token comes from the environment.
  const std::string b_signing =
      "tsa_url = \"" + tsa_url + "\"\ntsa_ca_file = \"" + dir / "a-ca.pem" + "\"\ntsa_tls_ca_file = \"" +
      a.v->ca_file() + "\"\ntsa_auth_token = { env = \"SIGNING_TSA_TOKEN\" }\ntsa_timeout_seconds = 5\n";
  Api b("", b_signing, {{"SIGNING_TSA_TOKEN", token}});
  json b_info = b.ok("GET", "/v1/signing/ca", "");
  CHECK(b_info["tsa_url"] == tsa_url);
  CHECK_THAT(b_info["tsa_ca_certificates"].get<std::string>(),
             Catch::Contains(info["ca_certificate"].get<std::string>()));
  const std::string doc = b.new_doc();
  const std::string kid = b.key(b.admin, "ecdsa-p256-sha256");
  json rec = b.ok("POST", "/v1/signing/signatures", b.admin, {{"document", doc}, {"key_id", kid}}, 201);
  write_file(dir / "signature.bin", sg::b64decode(rec["signature"].get<std::string>()));
  write_file(dir / "timestamp.tsr", sg::b64decode(rec["timestamp"].get<std::string>()));
  auto ts = sh("openssl ts -verify -in timestamp.tsr -data signature.bin -CAfile a-ca.pem");
  INFO(ts.out << ts.err);
  CHECK(ts.exit_code == 0);
  write_file(dir / "b-ca.pem", b.ca_pem());
  CHECK(sh("openssl ts -verify -in timestamp.tsr -data signature.bin -CAfile b-ca.pem").exit_code != 0);
  json checked =
      b.ok("POST", "/v1/signing/verify", "", {{"content", sg::b64encode(kDocText)}, {"signature", rec}});
  CHECK(checked["valid"] == true);
  CHECK_THAT(checked["signatures"][0]["timestamp_authority"].get<std::string>(),
             Catch::Contains("Vellum time-stamp authority"));
  // A (with its own CA only) does not accept B's signature certificate, but
  // the time-stamp check passes there: A issued the token.
  json at_a = a.ok("POST", "/v1/signing/verify", "", {{"signature", rec}});
  CHECK(at_a["signatures"][0]["checks"]["timestamp"] == true);
  CHECK(at_a["signatures"][0]["checks"]["certificate"] == false);

  // 5 stamps a minute per caller: Carol asks until she is refused (within
  // 10 asks unless each took 12 s, the time one stamp takes to come back),
  // with Retry-After; Bob (4 so far, the 5th is his) is not held up by her.
  const std::string carol = " -H 'Authorization: Bearer " + a.tokens["carol"] + "'";
  std::string status;
  for (int i = 0; i < 10 && status != "429"; ++i)
    status = sh("curl -sS -D headers.txt --cacert '" + a.v->ca_file() + "' " + query_type + carol +
                " --data-binary @q.tsq -o r.out -w '%{http_code}' " + tsa_url)
                 .out;
  CHECK(status == "429");
  CHECK_THAT(read_file(dir / "headers.txt"), Catch::Contains("Retry-After"));
  CHECK(curl(query_type + bearer, "q.tsq").out == "200 application/timestamp-reply");

  // The client itself, in this process, against A: TLS that does not trust
  // A's certificate, and a request without A's token, are told apart.
  auto client = [&](const std::string& tls_ca, const std::string& bearer_token) {
    sg::RemoteTsaOptions o;
    o.url = tsa_url;
    o.anchors.push_back(sg::cert_from_pem(info["ca_certificate"].get<std::string>()));
    o.tls_ca_file = tls_ca;
    o.bearer_token = bearer_token;
    o.timeout_seconds = 5;
    return std::make_unique<sg::RemoteTsa>(std::move(o));
  };
  try {
    client(dir / "a-ca.pem", a.admin)
        ->stamp("data", "12345678", now_ms());  // the signing CA is not A's TLS CA
    FAIL("an untrusted TLS certificate was accepted");
  } catch (const sg::TsaUnavailable& e) {
    CHECK_THAT(e.what(), Catch::Contains("TLS with the time-stamp authority"));
    CHECK_THAT(e.what(), Catch::Contains("certificate verify failed"));
  }
  try {
    client(a.v->ca_file(), "")->stamp("data", "12345678", now_ms());
    FAIL("a request without A's token was stamped");
  } catch (const sg::TsaBadReply& e) {
    CHECK_THAT(e.what(), Catch::Contains("401"));
  }
  CHECK_FALSE(client(a.v->ca_file(), a.admin)->stamp("data", "12345678", now_ms()).empty());

  // A down: B refuses to sign (503), stores nothing, and says why.
  CHECK(a.v->stop() == 0);
  auto down =
      b.call("POST", "/v1/signing/signatures", b.admin, json({{"document", doc}, {"key_id", kid}}).dump());
  INFO(down.body);
  CHECK(down.status == 503);
  CHECK(down.header("Content-Type").find("application/problem+json") != std::string::npos);
  CHECK_THAT(down.body, Catch::Contains("unreachable"));
  CHECK(b.ok("GET", "/v1/signing/documents/" + doc + "/signatures", b.admin)["items"].size() == 1);
  // The token never reaches B's log.
  CHECK(b.v->log().find(token) == std::string::npos);
  CHECK(b.v->stop() == 0);  // a clean shutdown (under ASan: no leak in the TSA client)
}

TEST_CASE("A bad or silent external TSA gets a clear error and no signature is stored") {
  FakeTsaServer tsa;
  TempDir dir;
  write_file(dir / "tsa-ca.pem", sg::cert_pem(tsa.ca.cert.get()));
  Api b("", "tsa_url = \"" + tsa.url() + "\"\ntsa_ca_file = \"" + dir / "tsa-ca.pem" +
                "\"\ntsa_timeout_seconds = 2\n");
  const std::string doc = b.new_doc();
  const std::string kid = b.key(b.admin, "ed25519");
  const std::string body = json({{"document", doc}, {"key_id", kid}}).dump();
  auto refused = [&](FakeTsaServer::Mode m, int status, const std::string& why) {
    tsa.mode = m;
    auto r = b.call("POST", "/v1/signing/signatures", b.admin, body);
    INFO(why << ": " << r.status << " " << r.body);
    CHECK(r.status == status);
    CHECK(r.header("Content-Type").find("application/problem+json") != std::string::npos);
    CHECK_THAT(r.body, Catch::Contains(why));
    CHECK_THAT(r.body, Catch::Contains("nothing was signed"));
  };
  refused(FakeTsaServer::Mode::Garbage, 502, "answered badly");
  refused(FakeTsaServer::Mode::ServerError, 502, "answered badly");
  refused(FakeTsaServer::Mode::OtherData, 502, "sent no valid token");
  refused(FakeTsaServer::Mode::Untrusted, 502, "sent no valid token");
  refused(FakeTsaServer::Mode::Silent, 503, "unreachable");
  CHECK(b.ok("GET", "/v1/signing/documents/" + doc + "/signatures", b.admin)["items"].empty());
  CHECK(tsa.requests() == 5);
  // The same TSA answering properly (over plain HTTP: the token is signed,
  // the nonce fresh) gives a signature whose token openssl accepts.
  tsa.mode = FakeTsaServer::Mode::Proper;
  json rec = b.ok("POST", "/v1/signing/signatures", b.admin, {{"document", doc}, {"key_id", kid}}, 201);
  write_file(dir / "signature.bin", sg::b64decode(rec["signature"].get<std::string>()));
  write_file(dir / "timestamp.tsr", sg::b64decode(rec["timestamp"].get<std::string>()));
  auto ts = openssl({"ts", "-verify", "-in", dir / "timestamp.tsr", "-data", dir / "signature.bin", "-CAfile",
                     dir / "tsa-ca.pem"});
  INFO(ts.out << ts.err);
  CHECK(ts.exit_code == 0);
  json checked = b.ok("POST", "/v1/signing/verify", "", {{"signature", rec}});
  CHECK(checked["valid"] == true);
  CHECK(b.v->stop() == 0);
}
