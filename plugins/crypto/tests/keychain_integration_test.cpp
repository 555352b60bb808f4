// Key chains, team keys, envelopes and the E2EE client through real vellumd:
// managed team keys opened by members and rotated on removal, scheduled
// rotation, the E2EE `vellum` client (library and binary), and the test the
// issue asks for: a user removed from a team cannot decrypt a document
// written after the removal.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <thread>

#include "client.hpp"
#include "crypto_site.hpp"
#include "envelope.hpp"
#include "keychain.hpp"

using namespace crypto_test;
using vellum::cli::ApiError;
using vellum::cli::Client;

namespace {

struct User {
  std::string id, token;
  vellum::cli::Pkey key;
  std::unique_ptr<Client> api;
};

struct Team {
  CryptoSite site;
  std::unique_ptr<Vellumd> v;
  std::unique_ptr<HttpClient> c;
  std::string admin_token;
  std::map<std::string, User> users;

  explicit Team(const std::string& extra = "") : site(extra) {
    v = site.start(site.root_key);
    c = std::make_unique<HttpClient>(*v);
    admin_token = login(*c, kAdminEmail, kAdminPw);
  }
  User& add(const std::string& name, const std::string& key_type = "x25519") {
    const std::string email = name + "@example.com", pw = "keychain test passphrase 42!";
    auto mk = c->request("POST", "/v1/admin/users",
                         json({{"email", email}, {"display_name", name}, {"password", pw}}).dump(),
                         bearer(admin_token));
    INFO(mk.body);
    REQUIRE(mk.status == 201);
    User u;
    u.id = json::parse(mk.body)["id"];
    u.token = Client::login(v->url(), v->ca_file(), email, pw);
    u.api = std::make_unique<Client>(v->url(), u.token, v->ca_file());
    u.key = vellum::cli::generate_key(key_type);
    u.api->publish_key(u.key.get());
    return users[name] = std::move(u);
  }
  int status_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const ApiError& e) {
      return e.status;
    }
    return 200;
  }
};

std::string open_wrap(const json& chain, uint32_t version, const User& u) {
  for (const auto& v : chain["versions"])
    if (v["version"] == version) {
      if (!v["wraps"].contains(u.id)) return "";
      return vellum::crypto::envelope_decrypt(
          v["wraps"][u.id].get<std::string>(),
          vellum::crypto::keychain_aad(chain["id"].get<std::string>(), version), u.key.get());
    }
  return "";
}

}  // namespace

TEST_CASE("managed team key through the API rotates on removal and breach",
          "[crypto][keychain][integration]") {
  Team t;
  auto& alice = t.add("alice");
  auto& bob = t.add("bob", "p256");
  auto& carol = t.add("carol", "rsa3072");
  auto c = alice.api->call("POST", "/v1/crypto/chains",
                           {{"id", "team-design"}, {"kind", "team"}, {"members", {bob.id, carol.id}}});
  CHECK(c["mode"] == "managed");
  CHECK(c["current_version"] == 1);
  CHECK(c.dump().find("secret") == std::string::npos);
  const std::string k1 = open_wrap(bob.api->chain("team-design"), 1, bob);
  CHECK(k1.size() == 32);
  CHECK(open_wrap(carol.api->chain("team-design"), 1, carol) == k1);
  // Members see only their own wraps; the owner sees all.
  CHECK(bob.api->chain("team-design")["versions"][0]["wraps"].size() == 1);
  CHECK(alice.api->chain("team-design")["versions"][0]["wraps"].size() == 3);

  // A document key under the team, created by a member.
  bob.api->call("POST", "/v1/crypto/chains",
                {{"id", "doc-spec"}, {"kind", "document"}, {"parent", "team-design"}});
  auto doc = carol.api->chain("doc-spec");
  CHECK(doc["versions"][0]["parent_wrap"].is_string());

  // Only the owner manages members.
  CHECK(t.status_of([&] { bob.api->call("DELETE", "/v1/crypto/chains/team-design/members/" + carol.id); }) ==
        403);
  alice.api->call("DELETE", "/v1/crypto/chains/team-design/members/" + carol.id);
  auto after = alice.api->chain("team-design");
  CHECK(after["current_version"] == 2);
  CHECK_FALSE(after["versions"][1]["wraps"].contains(carol.id));
  CHECK(open_wrap(after, 2, bob).size() == 32);
  CHECK(open_wrap(after, 2, bob) != k1);
  CHECK(alice.api->chain("doc-spec")["current_version"] == 2);
  // carol can no longer read the chains at all.
  CHECK(t.status_of([&] { carol.api->chain("team-design"); }) == 404);
  CHECK(t.status_of([&] { carol.api->chain("doc-spec"); }) == 404);

  auto br = alice.api->call("POST", "/v1/crypto/chains/team-design/breach", json::object());
  CHECK(br["current_version"] == 3);
  CHECK(br["versions"][2]["reason"] == "suspected breach");
  CHECK(alice.api->chain("doc-spec")["current_version"] == 3);

  auto audit =
      t.c->request("GET", "/v1/admin/audit?resource=crypto-chain/team-design", "", bearer(t.admin_token));
  CHECK_THAT(audit.body, Catch::Contains("crypto.chain.create"));
  CHECK_THAT(audit.body, Catch::Contains("crypto.chain.member.remove"));
  CHECK_THAT(audit.body, Catch::Contains("suspected breach"));
  auto daudit =
      t.c->request("GET", "/v1/admin/audit?resource=crypto-chain/doc-spec", "", bearer(t.admin_token));
  CHECK_THAT(daudit.body, Catch::Contains("crypto.chain.rotate"));
  // The team key never reaches the log or the database in the clear.
  CHECK(t.v->log().find(vellum::crypto::b64encode(k1)) == std::string::npos);
  CHECK(t.site.db_bytes().find(vellum::crypto::b64encode(k1)) == std::string::npos);
}

TEST_CASE("key chains rotate on schedule", "[crypto][keychain][integration]") {
  Team t("key_chain_rotate_after_s = 1\n");
  auto& alice = t.add("alice");
  alice.api->call("POST", "/v1/crypto/chains", {{"id", "t"}});
  // The sweep runs every second; wait (bounded) for it rather than asserting a time.
  json c;
  for (int i = 0; i < 300; ++i) {
    c = alice.api->chain("t");
    if (c["current_version"] >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(c["current_version"] >= 2);
  CHECK(c["versions"][1]["reason"] == "scheduled");
  CHECK(c["versions"][0]["retired_ms"] > 0);
}

TEST_CASE("a user removed from an e2ee team cannot decrypt a document written after the removal",
          "[crypto][keychain][e2ee][integration]") {
  Team t;
  auto& alice = t.add("alice");
  auto& bob = t.add("bob", "p256");
  auto& carol = t.add("carol");
  alice.api->team_create("team-e2e", {bob.id});
  alice.api->team_add("team-e2e", carol.id, alice.key.get());

  const std::string before = "E2EE-BEFORE-REMOVAL-4b1d";
  const std::string id1 = alice.api->encrypt_for_team(before, "doc-1", "team-e2e", alice.key.get());
  CHECK(bob.api->decrypt(id1, "doc-1", bob.key.get()) == before);
  CHECK(carol.api->decrypt(id1, "doc-1", carol.key.get()) == before);
  // Keep what bob may have cached: the team key version 1 he could open.
  const std::string bob_v1 = bob.api->team_key("team-e2e", 1, bob.key.get());

  // Removal: the server marks the rotation due and refuses new content under
  // version 1 until the client has uploaded version 2 for alice and carol.
  alice.api->call("DELETE", "/v1/crypto/chains/team-e2e/members/" + bob.id);
  CHECK(alice.api->chain("team-e2e")["rotation_due"] == "member removed");
  {
    vellum::crypto::ChainRecipient old{vellum::crypto::chain_kid("team-e2e", 1), {}};
    std::memcpy(old.key.data(), bob_v1.data(), 32);
    const std::string env = vellum::crypto::envelope_encrypt("x", "doc-2", {}, {old});
    CHECK(t.status_of([&] { alice.api->call("POST", "/v1/crypto/envelopes", {{"envelope", env}}); }) == 409);
  }
  // A new version wrapped for bob is refused: removed members get nothing new.
  {
    auto k = vellum::crypto::random_key();
    const std::string ks(reinterpret_cast<const char*>(k.data()), 32);
    const std::string wrap =
        vellum::crypto::envelope_encrypt(ks, vellum::crypto::keychain_aad("team-e2e", 2), {{bob.key.get()}});
    CHECK(t.status_of([&] {
      alice.api->call("POST", "/v1/crypto/chains/team-e2e/versions", {{"wraps", {{bob.id, wrap}}}});
    }) == 400);
  }
  CHECK(t.status_of([&] {
    alice.api->call("POST", "/v1/crypto/chains/team-e2e/versions", {{"wraps", json::object()}});
  }) == 400);
  CHECK(t.status_of([&] {
    alice.api->call("POST", "/v1/crypto/chains/team-e2e/versions",
                    {{"wraps", json::object()}, {"reason", std::string(201, 'r')}});
  }) == 400);
  CHECK(alice.api->chain("team-e2e")["current_version"] == 1);  // refusals changed nothing

  alice.api->team_rotate("team-e2e", "member removed");
  auto chain = alice.api->chain("team-e2e");  // the owner's view: every wrap
  CHECK(chain["current_version"] == 2);
  CHECK(chain["rotation_due"].is_null());
  CHECK_FALSE(chain["versions"][1]["wraps"].contains(bob.id));

  const std::string after = "E2EE-AFTER-REMOVAL-9c3e";
  const std::string id2 = alice.api->encrypt_for_team(after, "doc-2", "team-e2e", alice.key.get());
  CHECK(carol.api->decrypt(id2, "doc-2", carol.key.get()) == after);
  // bob: the server no longer hands him the envelope or the chain ...
  CHECK(t.status_of([&] { bob.api->decrypt(id2, "doc-2", bob.key.get()); }) == 404);
  CHECK(t.status_of([&] { bob.api->chain("team-e2e"); }) == 404);
  // ... and even with every stored byte (a leaked database, a malicious
  // server) his keys open nothing written after the removal.
  const std::string stored = alice.api->fetch_envelope(id2)["envelope"];
  vellum::crypto::ChainRecipient old{vellum::crypto::chain_kid("team-e2e", 1), {}};
  std::memcpy(old.key.data(), bob_v1.data(), 32);
  CHECK_THROWS_AS(vellum::crypto::envelope_decrypt(stored, "doc-2", old), vellum::crypto::EnvelopeError);
  old.kid = vellum::crypto::chain_kid("team-e2e", 2);  // his old key against the new entry
  CHECK_THROWS_AS(vellum::crypto::envelope_decrypt(stored, "doc-2", old), vellum::crypto::EnvelopeError);
  CHECK_THROWS_AS(vellum::crypto::envelope_decrypt(stored, "doc-2", bob.key.get()),
                  vellum::crypto::EnvelopeError);
  for (const auto& [uid, wrap] : chain["versions"][1]["wraps"].items())
    CHECK_THROWS_AS(vellum::crypto::envelope_decrypt(
                        wrap.get<std::string>(), vellum::crypto::keychain_aad("team-e2e", 2), bob.key.get()),
                    vellum::crypto::EnvelopeError);
  // Old documents stay readable by the remaining members (retired versions are kept).
  CHECK(carol.api->decrypt(id1, "doc-1", carol.key.get()) == before);
  // The server never saw a plaintext or a team key.
  const std::string db = t.site.db_bytes(), log = t.v->log();
  for (const std::string& secret : {before, after, vellum::crypto::b64encode(bob_v1)}) {
    CHECK(db.find(secret) == std::string::npos);
    CHECK(log.find(secret) == std::string::npos);
  }
}

TEST_CASE("the vellum CLI encrypts for users and decrypts as a recipient",
          "[crypto][e2ee][cli][integration]") {
  Team t;
  auto& bob = t.add("bob");
  TempDir d;
  const std::string cli = build_dir() + "/tools/vellum-cli/vellum";
  std::map<std::string, std::string> env = {{"VELLUM_URL", t.v->url()}, {"VELLUM_CA_FILE", t.v->ca_file()}};
  auto vellum = [&](std::vector<std::string> args, const std::string& token) {
    args.insert(args.begin(), cli);
    auto e = env;
    e["VELLUM_TOKEN"] = token;
    return run(args, std::chrono::seconds(60), e);
  };
  // dana uses only the CLI: login, keygen, publish.
  auto mk = t.c->request(
      "POST", "/v1/admin/users",
      json({{"email", "dana@example.com"}, {"display_name", "dana"}, {"password", "cli test passphrase 42!"}})
          .dump(),
      bearer(t.admin_token));
  INFO(mk.body);
  REQUIRE(mk.status == 201);
  auto lenv = env;
  lenv["VELLUM_PASSWORD"] = "cli test passphrase 42!";
  auto lr = run({cli, "login", "dana@example.com"}, std::chrono::seconds(60), lenv);
  REQUIRE(lr.exit_code == 0);
  const std::string dana = lr.out.substr(0, lr.out.find('\n'));
  auto kg = vellum({"keygen", d / "dana.pem", "p256"}, dana);
  REQUIRE(kg.exit_code == 0);
  CHECK_THAT(kg.out, Catch::Contains("BEGIN PUBLIC KEY"));
  CHECK(vellum({"keygen", d / "dana.pem"}, dana).exit_code == 1);  // never overwrites a key
  REQUIRE(vellum({"publish-key", d / "dana.pem"}, dana).exit_code == 0);
  auto who = vellum({"whoami"}, dana);
  const std::string dana_id = who.out.substr(0, who.out.find('\n'));

  const std::string secret = "CLI-PLAINTEXT-e2ee-77aa";
  write_file(d / "in.txt", secret);
  auto enc = vellum({"encrypt", d / "in.txt", "--to", bob.id + "," + dana_id, "--aad", "notes"}, dana);
  INFO(enc.err);
  REQUIRE(enc.exit_code == 0);
  const std::string id = enc.out.substr(0, enc.out.find('\n'));
  auto dec = vellum({"decrypt", id, "--key", d / "dana.pem", "--aad", "notes", "--out", d / "out.txt"}, dana);
  INFO(dec.err);
  REQUIRE(dec.exit_code == 0);
  CHECK(read_file(d / "out.txt") == secret);
  CHECK(bob.api->decrypt(id, "notes", bob.key.get()) == secret);
  // Wrong associated data fails with a message and no output.
  auto bad = vellum({"decrypt", id, "--key", d / "dana.pem", "--aad", "other"}, dana);
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.empty());
  CHECK_THAT(bad.err, Catch::Contains("failed authentication"));
  CHECK(vellum({"frobnicate"}, dana).exit_code == 2);
  CHECK(t.site.db_bytes().find(secret) == std::string::npos);
}

TEST_CASE("bad envelopes and chain requests get a clear 4xx and change nothing",
          "[crypto][keychain][integration]") {
  Team t;
  auto& alice = t.add("alice");
  auto& bob = t.add("bob");
  auto post = [&](const std::string& path, const std::string& body, const std::string& tok) {
    return t.c->request("POST", path, body,
                        {{"Authorization", "Bearer " + tok}, {"Content-Type", "application/json"}});
  };
  auto problem = [&](const Response& r, int status, const std::string& says) {
    INFO(r.body);
    CHECK(r.status == status);
    CHECK(r.header("Content-Type").find("application/problem+json") != std::string::npos);
    CHECK_THAT(r.body, Catch::Contains(says));
  };
  const std::string good = vellum::crypto::envelope_encrypt("ENVELOPE-SECRET-31f", "a", {{bob.key.get()}});
  auto with = [&](auto f) {
    auto j = json::parse(good);
    f(j);
    return json{{"envelope", j.dump()}}.dump();
  };
  problem(post("/v1/crypto/envelopes", "{not json", alice.token), 400, "JSON object");
  problem(post("/v1/crypto/envelopes", json{{"envelope", 5}}.dump(), alice.token), 400, "must be a string");
  problem(post("/v1/crypto/envelopes", with([](json& j) { j["vellum_envelope"] = 2; }), alice.token), 400,
          "not a version 1");
  problem(
      post("/v1/crypto/envelopes", with([](json& j) { j["content"]["ciphertext"] = "AAA="; }), alice.token),
      400, "truncated");
  problem(post("/v1/crypto/envelopes",
               with([](json& j) { j["recipients"][0]["kid"] = std::string(64, 'a'); }), alice.token),
          400, "unknown key id");
  problem(
      post("/v1/crypto/envelopes", with([](json& j) { j["recipients"][0]["alg"] = "RSA1_5"; }), alice.token),
      400, "unsupported");
  problem(post("/v1/crypto/envelopes", with([](json& j) { j["kem"] = "X25519MLKEM768"; }), alice.token), 400,
          "post-quantum");
  problem(post("/v1/crypto/envelopes", with([](json& j) {
                 j["recipients"][0] = {{"kid", "chain:nope:1"},
                                       {"alg", vellum::crypto::kChainWrapAlg},
                                       {"nonce", "AAAAAAAAAAAAAAAA"},
                                       {"wrapped_key", vellum::crypto::b64encode(std::string(48, 'x'))}};
               }),
               alice.token),
          400, "no such key chain");
  problem(post("/v1/crypto/envelopes", json{{"envelope", std::string(5u << 20, 'x')}}.dump(), alice.token),
          413, "larger");
  // A stored envelope is readable by its author and recipients only.
  auto ok = post("/v1/crypto/envelopes", json{{"envelope", good}}.dump(), alice.token);
  REQUIRE(ok.status == 201);
  const std::string id = json::parse(ok.body)["id"];
  auto& carol = t.add("carol");
  CHECK(t.status_of([&] { carol.api->fetch_envelope(id); }) == 404);
  CHECK(t.status_of([&] { carol.api->fetch_envelope("zz"); }) == 404);
  CHECK(bob.api->decrypt(id, "a", bob.key.get()) == "ENVELOPE-SECRET-31f");

  // Chains: bad ids, kinds, wraps; nothing is created.
  problem(post("/v1/crypto/chains", json{{"id", "bad id"}}.dump(), alice.token), 400, "chain id");
  problem(post("/v1/crypto/chains", json{{"id", "x"}, {"kind", "folder"}}.dump(), alice.token), 400, "kind");
  problem(post("/v1/crypto/chains", json{{"id", "x"}, {"members", "bob"}}.dump(), alice.token), 400, "array");
  problem(post("/v1/crypto/chains", json{{"id", "x"}, {"mode", "e2ee"}, {"wraps", {{alice.id, "{}"}}}}.dump(),
               alice.token),
          400, "not a valid envelope");
  problem(post("/v1/crypto/chains", json{{"id", "x"}, {"kind", "document"}, {"parent", "none"}}.dump(),
               alice.token),
          404, "no such key chain");
  CHECK(t.status_of([&] { alice.api->chain("x"); }) == 404);
  alice.api->call("POST", "/v1/crypto/chains", {{"id", "x"}});
  problem(post("/v1/crypto/chains", json{{"id", "x"}}.dump(), alice.token), 409, "exists");
  // Not a member: the chain does not exist for bob.
  problem(post("/v1/crypto/chains/x/rotate", "{}", bob.token), 404, "no such key chain");
  CHECK(alice.api->chain("x")["current_version"] == 1);
  CHECK(t.v->log().find("ENVELOPE-SECRET-31f") == std::string::npos);
}

TEST_CASE("another plugin drives team keys through the crypto service 1.1", "[crypto][keychain][service]") {
  CryptoSite site;
  Vellumd::Options o(config() + "\n[plugins.cryptouser]\n", true, {{"VELLUM_ROOT_KEY", site.root_key}});
  o.data_dir = site.site.data_dir();
  Vellumd v(o);
  HttpClient c(v);
  const std::string admin = login(c, kAdminEmail, kAdminPw);
  auto mk = c.request(
      "POST", "/v1/admin/users",
      json({{"email", "erin@example.com"}, {"display_name", "erin"}, {"password", "service test pass 42!"}})
          .dump(),
      bearer(admin));
  REQUIRE(mk.status == 201);
  const std::string erin_id = json::parse(mk.body)["id"];
  const std::string erin_token =
      Client::login(v.url(), v.ca_file(), "erin@example.com", "service test pass 42!");
  Client erin(v.url(), erin_token, v.ca_file());
  auto erin_key = vellum::cli::generate_key("x25519");
  erin.publish_key(erin_key.get());
  const std::string admin_id = json::parse(c.request("GET", "/v1/me", "", bearer(admin)).body)["user"]["id"];

  auto op = [&](const std::string& cmd) {
    auto r = c.request("POST", "/v1/test/cryptouser/chain", cmd);
    INFO(cmd << " -> " << r.body);
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  };
  CHECK(op("create-managed team-svc " + admin_id)["status"] == VELLUM_OK);
  CHECK(op("create-managed team-svc " + admin_id)["status"] == VELLUM_ERR_CONFLICT);
  auto added = op("add team-svc " + erin_id);
  CHECK(added["status"] == VELLUM_OK);
  CHECK(added["info"]["versions"][0]["wraps"].contains(erin_id));
  CHECK(added["info"].dump().find("secret") == std::string::npos);
  // erin, a member now, opens her wrap of the team key over HTTP.
  auto chain = erin.chain("team-svc");
  const std::string k1 =
      vellum::crypto::envelope_decrypt(chain["versions"][0]["wraps"][erin_id].get<std::string>(),
                                       vellum::crypto::keychain_aad("team-svc", 1), erin_key.get());
  CHECK(k1.size() == 32);
  CHECK(op("document doc-svc team-svc")["status"] == VELLUM_OK);
  auto removed = op("remove team-svc " + erin_id);
  CHECK(removed["status"] == VELLUM_OK);
  CHECK(removed["version"] == 2);
  CHECK_FALSE(removed["info"]["versions"][1]["wraps"].contains(erin_id));
  CHECK(op("info doc-svc")["info"]["current_version"] == 2);
  CHECK(op("remove team-svc " + erin_id)["status"] == VELLUM_ERR_NOT_FOUND);
  CHECK(op("remove team-svc " + admin_id)["status"] == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(op("add nope " + erin_id)["status"] == VELLUM_ERR_NOT_FOUND);
  auto rot = op("rotate team-svc");
  CHECK(rot["version"] == 3);
  CHECK(rot["info"]["versions"][2]["reason"] == "suspected breach");
  // e2ee through the service: no key yet, the rotation is due until a client uploads one.
  auto e = op("create-e2ee team-e2 " + admin_id);
  CHECK(e["status"] == VELLUM_OK);
  CHECK(e["info"]["current_version"] == 0);
  CHECK(e["info"]["rotation_due"] == "awaiting the first key version");
  CHECK(op("create-e2ee bad/id " + admin_id)["status"] == VELLUM_ERR_INVALID_ARGUMENT);
  auto audit = c.request("GET", "/v1/admin/audit?resource=crypto-chain/team-svc", "", bearer(admin));
  CHECK_THAT(audit.body, Catch::Contains("crypto.chain.member.add"));
  CHECK_THAT(audit.body, Catch::Contains("crypto.chain.member.remove"));
  CHECK_THAT(audit.body, Catch::Contains("crypto.chain.rotate"));
  CHECK(v.log().find(vellum::crypto::b64encode(k1)) == std::string::npos);
  CHECK(v.stop() == 0);
}
