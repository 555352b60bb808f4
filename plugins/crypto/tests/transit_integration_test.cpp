// The transit API (/v1/crypto/...) through real vellumd: an administrator and
// a normal user, key ownership, bad input answered with clear 4xx, audit, and
// nothing secret in the log.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <vellum/abi.h>

#include "crypto_site.hpp"

using namespace crypto_test;
using vellum::crypto::b64decode;
using vellum::crypto::b64encode;

namespace {
const std::string kUserPw = "bob passphrase 42!";

struct Api {
  CryptoSite site;
  std::unique_ptr<Vellumd> v;
  std::unique_ptr<HttpClient> c;
  std::string admin, bob, bob_id;
  Api() {
    v = site.start(site.root_key);
    c = std::make_unique<HttpClient>(*v);
    admin = login(*c, kAdminEmail, kAdminPw);
    auto mk = c->request(
        "POST", "/v1/admin/users",
        json({{"email", "bob@example.com"}, {"display_name", "Bob"}, {"password", kUserPw}}).dump(),
        bearer(admin));
    REQUIRE(mk.status == 201);
    bob_id = json::parse(mk.body)["id"];
    bob = login(*c, "bob@example.com", kUserPw);
  }
  Response post(const std::string& path, const json& body, const std::string& tok) {
    return c->request("POST", path, body.dump(),
                      {{"Authorization", "Bearer " + tok}, {"Content-Type", "application/json"}});
  }
  json ok(const std::string& path, const json& body, const std::string& tok, int status = 200) {
    auto r = post(path, body, tok);
    INFO(path << " -> " << r.body);
    REQUIRE(r.status == status);
    return json::parse(r.body);
  }
  void problem(const std::string& path, const json& body, const std::string& tok, int status,
               const std::string& says) {
    auto r = post(path, body, tok);
    INFO(path << " -> " << r.body);
    CHECK(r.status == status);
    CHECK(r.header("Content-Type").find("application/problem+json") != std::string::npos);
    CHECK_THAT(r.body, Catch::Contains(says));
  }
};
}  // namespace

TEST_CASE("transit API encrypt decrypt rotate rewrap and min versions", "[crypto][transit]") {
  Api a;
  auto k = a.ok("/v1/crypto/keys", {{"name", "bob-docs"}, {"type", "aes256-gcm"}}, a.bob, 201);
  CHECK(k["latest_version"] == 1);
  const std::string secret = "TRANSIT-PLAINTEXT-7c1e";
  auto ct = a.ok("/v1/crypto/encrypt/bob-docs",
                 {{"plaintext", b64encode(secret)}, {"context", b64encode("doc-9")}}, a.bob)["ciphertext"]
                .get<std::string>();
  CHECK(ct.rfind("vellum:v1:bob-docs:1:", 0) == 0);
  auto pt = a.ok("/v1/crypto/decrypt/bob-docs", {{"ciphertext", ct}, {"context", b64encode("doc-9")}}, a.bob);
  CHECK(b64decode(pt["plaintext"].get<std::string>()) == std::optional<std::string>(secret));

  // Rotation, rewrap, minimum versions.
  CHECK(a.ok("/v1/crypto/keys/bob-docs/rotate", json::object(), a.bob)["latest_version"] == 2);
  auto re = a.ok("/v1/crypto/rewrap/bob-docs", {{"ciphertext", ct}, {"context", b64encode("doc-9")}}, a.bob);
  const std::string ct2 = re["ciphertext"];
  CHECK(ct2.rfind("vellum:v1:bob-docs:2:", 0) == 0);
  a.ok("/v1/crypto/keys/bob-docs/config", {{"min_decryption_version", 2}}, a.bob);
  a.problem("/v1/crypto/decrypt/bob-docs", {{"ciphertext", ct}, {"context", b64encode("doc-9")}}, a.bob, 400,
            "below min_decryption_version");
  pt = a.ok("/v1/crypto/decrypt/bob-docs", {{"ciphertext", ct2}, {"context", b64encode("doc-9")}}, a.bob);
  CHECK(b64decode(pt["plaintext"].get<std::string>()) == std::optional<std::string>(secret));
  a.problem("/v1/crypto/keys/bob-docs/config", {{"min_decryption_version", 5}}, a.bob, 400,
            "min_decryption_version");

  // Data keys: wrapped only, or with the plaintext.
  auto dk = a.ok("/v1/crypto/datakey/plaintext/bob-docs", {{"bits", 256}}, a.bob);
  auto raw = b64decode(dk["plaintext"].get<std::string>());
  REQUIRE(raw);
  CHECK(raw->size() == 32);
  auto unwrapped = a.ok("/v1/crypto/decrypt/bob-docs", {{"ciphertext", dk["ciphertext"]}}, a.bob);
  CHECK(b64decode(unwrapped["plaintext"].get<std::string>()) == raw);
  auto wrapped = a.ok("/v1/crypto/datakey/wrapped/bob-docs", json::object(), a.bob);
  CHECK_FALSE(wrapped.contains("plaintext"));

  // The metadata never contains key material.
  auto meta = a.c->request("GET", "/v1/crypto/keys/bob-docs", "", bearer(a.bob));
  CHECK(meta.status == 200);
  CHECK(json::parse(meta.body)["versions"].size() == 2);
  CHECK(meta.body.find("\"key\"") == std::string::npos);

  // Audit: key creation, rotation and config changes.
  auto audit = a.c->request("GET", "/v1/admin/audit?resource=crypto-key/bob-docs", "", bearer(a.admin));
  CHECK_THAT(audit.body, Catch::Contains("crypto.key.create"));
  CHECK_THAT(audit.body, Catch::Contains("crypto.key.rotate"));
  CHECK_THAT(audit.body, Catch::Contains("crypto.key.config"));

  CHECK(a.v->log().find(secret) == std::string::npos);
  CHECK(a.v->log().find(b64encode(secret)) == std::string::npos);
  CHECK(a.v->stop() == 0);
  CHECK(a.site.db_bytes().find("bob-docs\",\"type") == std::string::npos);  // key records are sealed too
}

TEST_CASE("transit API keys belong to their owner and administrators", "[crypto][transit]") {
  Api a;
  a.ok("/v1/crypto/keys", {{"name", "admin-key"}, {"type", "aes256-gcm"}}, a.admin, 201);
  auto ct =
      a.ok("/v1/crypto/encrypt/admin-key", {{"plaintext", b64encode("for admins")}}, a.admin)["ciphertext"];
  // Bob can neither use nor see the administrator's key.
  a.problem("/v1/crypto/encrypt/admin-key", {{"plaintext", b64encode("x")}}, a.bob, 404, "no such key");
  a.problem("/v1/crypto/decrypt/admin-key", {{"ciphertext", ct}}, a.bob, 404, "no such key");
  a.problem("/v1/crypto/keys/admin-key/rotate", json::object(), a.bob, 404, "no such key");
  CHECK(a.c->request("GET", "/v1/crypto/keys/admin-key", "", bearer(a.bob)).status == 404);
  CHECK(a.c->request("POST", "/v1/crypto/encrypt/admin-key", "{}").status == 401);
  // An administrator may use Bob's key.
  a.ok("/v1/crypto/keys", {{"name", "bobs"}, {"type", "aes256-gcm"}}, a.bob, 201);
  a.ok("/v1/crypto/encrypt/bobs", {{"plaintext", b64encode("x")}}, a.admin);
  // The name is taken.
  a.problem("/v1/crypto/keys", {{"name", "bobs"}, {"type", "aes256-gcm"}}, a.admin, 409, "exists");
  CHECK(a.v->stop() == 0);
}

TEST_CASE("transit API hmac sign and verify", "[crypto][transit]") {
  Api a;
  a.ok("/v1/crypto/keys", {{"name", "mac"}, {"type", "hmac"}}, a.bob, 201);
  auto mac = a.ok("/v1/crypto/hmac/mac", {{"input", b64encode("payload")}}, a.bob)["hmac"];
  CHECK(a.ok("/v1/crypto/verify/mac", {{"input", b64encode("payload")}, {"hmac", mac}}, a.bob)["valid"] ==
        true);
  CHECK(a.ok("/v1/crypto/verify/mac", {{"input", b64encode("payloaD")}, {"hmac", mac}}, a.bob)["valid"] ==
        false);
  for (const char* type : {"ed25519", "ecdsa-p256"}) {
    const std::string name = std::string("sig-") + type;
    auto k = a.ok("/v1/crypto/keys", {{"name", name}, {"type", type}}, a.bob, 201);
    CHECK_THAT(k["versions"][0]["public_key"].get<std::string>(), Catch::Contains("BEGIN PUBLIC KEY"));
    auto sig = a.ok("/v1/crypto/sign/" + name, {{"input", b64encode("contract v1")}}, a.bob)["signature"];
    CHECK(a.ok("/v1/crypto/verify/" + name, {{"input", b64encode("contract v1")}, {"signature", sig}},
               a.bob)["valid"] == true);
    CHECK(a.ok("/v1/crypto/verify/" + name, {{"input", b64encode("contract v2")}, {"signature", sig}},
               a.bob)["valid"] == false);
    a.problem("/v1/crypto/encrypt/" + name, {{"plaintext", b64encode("x")}}, a.bob, 400, "needs aes256-gcm");
  }
  a.problem("/v1/crypto/sign/mac", {{"input", b64encode("x")}}, a.bob, 400, "needs ed25519 or ecdsa-p256");
  CHECK(a.v->stop() == 0);
}

TEST_CASE("transit API bad input gets clear 4xx answers and changes nothing", "[crypto][transit]") {
  Api a;
  a.ok("/v1/crypto/keys", {{"name", "k"}, {"type", "aes256-gcm"}}, a.bob, 201);
  auto ct = a.ok("/v1/crypto/encrypt/k", {{"plaintext", b64encode("sensitive")}}, a.bob)["ciphertext"]
                .get<std::string>();
  a.problem("/v1/crypto/keys", {{"name", "x"}, {"type", "rsa-512"}}, a.bob, 400, "'type' must be one of");
  a.problem("/v1/crypto/keys", {{"name", "bad name!"}, {"type", "hmac"}}, a.bob, 400, "key names");
  a.problem("/v1/crypto/encrypt/k", {{"plaintext", "not base64!"}}, a.bob, 400, "not valid base64");
  a.problem("/v1/crypto/encrypt/k", json::object(), a.bob, 400, "'plaintext' is required");
  a.problem("/v1/crypto/encrypt/nope", {{"plaintext", b64encode("x")}}, a.bob, 404, "no such key");
  a.problem("/v1/crypto/decrypt/k", {{"ciphertext", ct.substr(0, ct.size() - 8)}}, a.bob, 400, "");
  std::string tampered = ct;
  tampered[tampered.size() - 6] = tampered[tampered.size() - 6] == 'A' ? 'B' : 'A';
  a.problem("/v1/crypto/decrypt/k", {{"ciphertext", tampered}}, a.bob, 400, "failed authentication");
  a.problem("/v1/crypto/decrypt/k", {{"ciphertext", "vellum:v1:other:1:AAAA"}}, a.bob, 400, "another key");
  a.problem("/v1/crypto/decrypt/k", {{"ciphertext", "hello"}}, a.bob, 400, "vellum:v1:");
  a.problem("/v1/crypto/datakey/both/k", json::object(), a.bob, 400, "plaintext or wrapped");
  a.problem("/v1/crypto/datakey/wrapped/k", {{"bits", 64}}, a.bob, 400, "bits");
  auto big =
      a.post("/v1/crypto/encrypt/k", {{"plaintext", b64encode(std::string((1 << 20) + 1, 'x'))}}, a.bob);
  CHECK(big.status == 413);
  CHECK(a.c->request("POST", "/v1/crypto/encrypt/k", "{not json", bearer(a.bob)).status == 400);
  // Nothing changed: still version 1, and the original ciphertext decrypts.
  auto meta = json::parse(a.c->request("GET", "/v1/crypto/keys/k", "", bearer(a.bob)).body);
  CHECK(meta["latest_version"] == 1);
  CHECK(a.post("/v1/crypto/decrypt/k", {{"ciphertext", ct}}, a.bob).status == 200);
  CHECK(a.v->log().find("sensitive") == std::string::npos);
  CHECK(a.v->stop() == 0);
}

TEST_CASE("another plugin uses the crypto service through the ABI", "[crypto][service]") {
  CryptoSite site;
  Vellumd::Options o(config() + "\n[plugins.cryptouser]\n", true, {{"VELLUM_ROOT_KEY", site.root_key}});
  o.data_dir = site.site.data_dir();
  Vellumd v(o);
  HttpClient c(v);
  const std::string marker = "SERVICE-PLAINTEXT-42aa";
  auto r = c.request("POST", "/v1/test/cryptouser/roundtrip", marker);
  INFO(r.body);
  REQUIRE(r.status == 200);
  auto j = json::parse(r.body);
  CHECK(j["text_roundtrip"] == true);
  CHECK(j["binary_roundtrip"] == true);
  CHECK(j["text_tampered_status"] == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(j["binary_tampered_status"] == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(j["text_rewrapped_prefix"] == "vellum:v1:cryptouser:1");
  CHECK(j["text_contains_plaintext"] == false);
  CHECK(j["binary_contains_plaintext"] == false);
  CHECK(j["datakey_ok"] == true);
  CHECK(j["latest_version"] == 1);
  CHECK(v.log().find(marker) == std::string::npos);
  CHECK(v.stop() == 0);
}

namespace {
std::string new_public_pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, k);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  EVP_PKEY_free(k);
  return s;
}
}  // namespace

TEST_CASE("public key directory: publish look up list and withdraw", "[crypto][pubkeys]") {
  Api a;
  const std::string rsa = new_public_pem(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  auto k = a.ok("/v1/crypto/pubkeys", {{"public_key", rsa}, {"use", "encryption"}}, a.bob, 201);
  const std::string id = k["key_id"];
  CHECK(id.size() == 64);
  CHECK(k["algorithm"] == "RSA-OAEP-256");
  CHECK(k["user_id"] == a.bob_id);
  a.problem("/v1/crypto/pubkeys", {{"public_key", rsa}, {"use", "encryption"}}, a.bob, 409,
            "already published");
  const std::string weak = new_public_pem(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
  a.problem("/v1/crypto/pubkeys", {{"public_key", weak}, {"use", "encryption"}}, a.bob, 400,
            "RSA-512 was factored in 1999");
  const std::string ed = new_public_pem(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  a.ok("/v1/crypto/pubkeys", {{"public_key", ed}, {"use", "signing"}}, a.bob, 201);
  // Public keys are readable by any authenticated user (to encrypt for them).
  auto got = a.c->request("GET", "/v1/crypto/pubkeys/" + id, "", bearer(a.admin));
  CHECK(got.status == 200);
  CHECK(json::parse(got.body)["public_key"] == k["public_key"]);
  CHECK(a.c->get("/v1/crypto/pubkeys/" + id).status == 401);
  auto list =
      json::parse(a.c->request("GET", "/v1/crypto/users/" + a.bob_id + "/pubkeys", "", bearer(a.admin)).body);
  CHECK(list["keys"].size() == 2);
  // Only the owner (or an administrator) withdraws it; others see 404.
  auto mk = a.c->request(
      "POST", "/v1/admin/users",
      json({{"email", "carol@example.com"}, {"display_name", "Carol"}, {"password", kUserPw}}).dump(),
      bearer(a.admin));
  REQUIRE(mk.status == 201);
  auto carol = login(*a.c, "carol@example.com", kUserPw);
  CHECK(a.c->request("DELETE", "/v1/crypto/pubkeys/" + id, "", bearer(carol)).status == 404);
  CHECK(a.c->request("DELETE", "/v1/crypto/pubkeys/" + id, "", bearer(a.bob)).status == 204);
  CHECK(a.c->request("GET", "/v1/crypto/pubkeys/" + id, "", bearer(a.bob)).status == 404);
  list =
      json::parse(a.c->request("GET", "/v1/crypto/users/" + a.bob_id + "/pubkeys", "", bearer(a.bob)).body);
  CHECK(list["keys"].size() == 1);
  auto audit = a.c->request("GET", "/v1/admin/audit?action=crypto.pubkey.publish", "", bearer(a.admin));
  CHECK_THAT(audit.body, Catch::Contains("crypto.pubkey.publish"));
  CHECK(a.v->stop() == 0);
}
