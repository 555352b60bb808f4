// Unit tests of key chains: managed team keys wrapped per member, document
// keys under a team, rotation on removal / breach / schedule (removed members
// get nothing new), e2ee chains whose wraps the server checks but cannot
// open, and the chain recipient of envelopes.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <map>
#include <memory>
#include <string>

#include "aead.hpp"
#include "envelope.hpp"
#include "keychain.hpp"

using namespace vellum::crypto;
using nlohmann::json;

namespace {
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string pem_of(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, k);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

// A directory of users with one encryption key each, and a clock.
struct World {
  std::map<std::string, Pkey> keys;  // user -> private key
  int64_t now = 1'000'000;
  MemoryChainStore store;
  KeyChains chains{store, [this] { return now; },
                   [this](const std::string& u) {
                     std::vector<std::string> v;
                     if (keys.count(u)) v.push_back(pem_of(keys[u].get()));
                     return v;
                   },
                   [this](const std::string& kid) -> std::optional<std::string> {
                     for (auto& [u, k] : keys)
                       if (key_id_of(k.get()) == kid) return u;
                     return std::nullopt;
                   },
                   86'400'000};
  World() {
    keys["alice"] = Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
    keys["bob"] = Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    keys["carol"] = Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  }
  // What a member recovers from the chain view: the key of `version`.
  std::optional<Key> open(const std::string& id, uint32_t version, const std::string& user) {
    auto v = chains.view(id, user, false);
    for (auto& e : v["versions"])
      if (e["version"] == version && e["wraps"].contains(user)) {
        auto raw = envelope_decrypt(e["wraps"][user].get<std::string>(), keychain_aad(id, version),
                                    keys[user].get());
        Key k;
        std::memcpy(k.data(), raw.data(), 32);
        return k;
      }
    return std::nullopt;
  }
  std::string wrap_for(const std::string& user, const Key& k, const std::string& id, uint32_t v) {
    return envelope_encrypt(std::string(reinterpret_cast<const char*>(k.data()), 32), keychain_aad(id, v),
                            {{keys[user].get()}});
  }
};

vellum_status status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const TransitError& e) {
    return e.status;
  }
  return VELLUM_OK;
}
}  // namespace

TEST_CASE("managed team key is wrapped per member and rotates on removal", "[crypto][keychain]") {
  World w;
  KeyChains::CreateSpec s;
  s.id = "team-1";
  s.owner = "alice";
  s.members = {"bob", "carol"};
  auto ch = w.chains.create(s);
  CHECK(ch.chain["current_version"] == 1);
  CHECK(ch.chain["members"] == json({"alice", "bob", "carol"}));
  auto ka = w.open("team-1", 1, "alice"), kb = w.open("team-1", 1, "bob"), kc = w.open("team-1", 1, "carol");
  REQUIRE(ka);
  REQUIRE(kb);
  REQUIRE(kc);
  CHECK(*ka == *kb);
  CHECK(*kb == *kc);
  CHECK(*ka == w.chains.managed_key("team-1"));
  // The view never carries key material.
  CHECK(w.chains.view("team-1", "alice", true).dump().find("secret") == std::string::npos);

  // A document key under the team: wrapped by the team key, readable by its members.
  KeyChains::CreateSpec d;
  d.id = "doc-1";
  d.kind = "document";
  d.owner = "alice";
  d.parent = "team-1";
  w.chains.create(d);
  auto dv = w.chains.view("doc-1", "bob", false);
  const std::string pw = dv["versions"][0]["parent_wrap"];
  auto dk = envelope_decrypt(pw, keychain_aad("doc-1", 1), ChainRecipient{chain_kid("team-1", 1), *kb});
  CHECK(std::memcmp(dk.data(), w.chains.managed_key("doc-1").data(), 32) == 0);
  CHECK(w.chains.readers("doc-1") == std::vector<std::string>{"alice", "bob", "carol"});

  // Removing bob: new team key for alice and carol only; the document key rotates too.
  auto rm = w.chains.remove_member("team-1", "bob");
  CHECK(rm.rotated == std::vector<std::pair<std::string, uint32_t>>{{"team-1", 2}, {"doc-1", 2}});
  CHECK(w.open("team-1", 2, "bob") == std::nullopt);
  auto ka2 = w.open("team-1", 2, "alice");
  REQUIRE(ka2);
  CHECK(*ka2 != *ka);
  CHECK(w.open("team-1", 2, "carol") == ka2);
  // bob's old team key does not open the new document key version.
  auto dv2 = w.chains.view("doc-1", "alice", true)["versions"][1];
  const std::string pw2 = dv2["parent_wrap"];
  CHECK_THROWS_AS(
      envelope_decrypt(pw2, keychain_aad("doc-1", 2), ChainRecipient{chain_kid("team-1", 1), *kb}),
      EnvelopeError);
  CHECK_NOTHROW(
      envelope_decrypt(pw2, keychain_aad("doc-1", 2), ChainRecipient{chain_kid("team-1", 2), *ka2}));
  // The old version is retired, not deleted (old content still needs it).
  auto tv = w.chains.view("team-1", "alice", true);
  CHECK(tv["versions"][0]["retired_ms"] == w.now);
  CHECK(tv["versions"][1]["reason"] == "member removed");
}

TEST_CASE("adding a member is one wrap of the current key", "[crypto][keychain]") {
  World w;
  KeyChains::CreateSpec s;
  s.id = "t";
  s.owner = "alice";
  w.chains.create(s);
  w.chains.add_member("t", "bob");
  CHECK(w.chains.view("t", "alice", true)["current_version"] == 1);
  CHECK(w.open("t", 1, "bob") == w.open("t", 1, "alice"));
  CHECK(status_of([&] { w.chains.add_member("t", "bob"); }) == VELLUM_ERR_CONFLICT);
  CHECK(status_of([&] { w.chains.remove_member("t", "alice"); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { w.chains.remove_member("t", "dave"); }) == VELLUM_ERR_NOT_FOUND);
  // A member without a published key is listed, not wrapped for.
  w.chains.add_member("t", "dave");
  CHECK(w.chains.view("t", "alice", true)["members_without_wrap"] == json({"dave"}));
}

TEST_CASE("breach and schedule rotate managed chains and mark e2ee chains due", "[crypto][keychain]") {
  World w;
  KeyChains::CreateSpec s;
  s.id = "m";
  s.owner = "alice";
  s.rotate_after_ms = 1000;
  w.chains.create(s);
  auto b = w.chains.rotate("m", "suspected breach");
  CHECK(b.chain["current_version"] == 2);
  CHECK(b.chain["versions"][1]["reason"] == "suspected breach");
  CHECK(w.chains.rotate_due().empty());
  w.now += 1000;
  auto due = w.chains.rotate_due();
  REQUIRE(due.size() == 1);
  CHECK(due[0].rotated[0] == std::pair<std::string, uint32_t>{"m", 3});

  KeyChains::CreateSpec e;
  e.id = "e";
  e.owner = "alice";
  e.mode = "e2ee";
  e.rotate_after_ms = 1000;
  Key k = random_key();
  e.wraps["alice"] = w.wrap_for("alice", k, "e", 1);
  w.chains.create(e);
  w.now += 1000;
  due = w.chains.rotate_due();
  REQUIRE(due.size() == 2);  // "m" again, and "e" marked
  auto ev = w.chains.view("e", "alice", true);
  CHECK(ev["rotation_due"] == "scheduled");
  CHECK(ev["current_version"] == 1);
  CHECK(status_of([&] { w.chains.managed_key("e"); }) == VELLUM_ERR_INVALID_ARGUMENT);
}

TEST_CASE("e2ee chain stores client wraps and refuses wraps for non-members", "[crypto][keychain]") {
  World w;
  Key team = random_key();
  KeyChains::CreateSpec s;
  s.id = "t";
  s.owner = "alice";
  s.mode = "e2ee";
  s.members = {"bob"};
  s.wraps["alice"] = w.wrap_for("alice", team, "t", 1);
  s.wraps["bob"] = w.wrap_for("bob", team, "t", 1);
  w.chains.create(s);
  // The stored record holds no key: the server cannot open the wraps.
  CHECK(w.store.rows.at("t").first.find("secret") == std::string::npos);
  CHECK(w.open("t", 1, "bob") == team);

  // A document under it: the client wraps the document key with the team key.
  Key dk = random_key();
  const std::string dks(reinterpret_cast<const char*>(dk.data()), 32);
  KeyChains::CreateSpec d;
  d.id = "d";
  d.kind = "document";
  d.mode = "e2ee";
  d.owner = "alice";
  d.parent = "t";
  d.parent_wrap = envelope_encrypt(dks, keychain_aad("d", 1), {}, {{chain_kid("t", 1), team}});
  w.chains.create(d);

  // bob removed: the server marks both due, refuses new document versions
  // under the old team key, and refuses a new team version wrapped for bob.
  auto rm = w.chains.remove_member("t", "bob");
  CHECK(rm.marked_due == std::vector<std::string>{"t", "d"});
  Key team2 = random_key();
  CHECK(status_of([&] {
          w.chains.add_version("d", {},
                               envelope_encrypt(dks, keychain_aad("d", 2), {}, {{chain_kid("t", 1), team}}),
                               "member removed");
        }) == VELLUM_ERR_CONFLICT);
  CHECK(status_of([&] {
          w.chains.add_version(
              "t", {{"alice", w.wrap_for("alice", team2, "t", 2)}, {"bob", w.wrap_for("bob", team2, "t", 2)}},
              "", "member removed");
        }) == VELLUM_ERR_INVALID_ARGUMENT);
  // A wrap addressed to another user's key, or to an unknown key, is refused.
  CHECK(status_of([&] {
          w.chains.add_version("t", {{"alice", w.wrap_for("carol", team2, "t", 2)}}, "", "x");
        }) == VELLUM_ERR_INVALID_ARGUMENT);
  Pkey stranger(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  CHECK(status_of([&] {
          w.chains.add_version(
              "t", {{"alice", envelope_encrypt("k", keychain_aad("t", 2), {{stranger.get()}})}}, "", "x");
        }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] {
          w.chains.add_version("t", {{"alice", "{not json"}}, "", "x");
        }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(w.chains.view("t", "alice", true)["current_version"] == 1);  // nothing changed

  w.chains.add_version("t", {{"alice", w.wrap_for("alice", team2, "t", 2)}}, "", "member removed");
  CHECK(w.chains.view("t", "alice", true)["rotation_due"].is_null());
  CHECK(w.open("t", 2, "bob") == std::nullopt);
  // Now the document key rotates under the new team key; a wrap by the old one is refused.
  Key dk2 = random_key();
  const std::string d2(reinterpret_cast<const char*>(dk2.data()), 32);
  CHECK(status_of([&] {
          w.chains.add_version("d", {},
                               envelope_encrypt(d2, keychain_aad("d", 2), {}, {{chain_kid("t", 1), team}}),
                               "member removed");
        }) == VELLUM_ERR_CONFLICT);
  w.chains.add_version("d", {}, envelope_encrypt(d2, keychain_aad("d", 2), {}, {{chain_kid("t", 2), team2}}),
                       "member removed");
  auto dv = w.chains.view("d", "alice", true);
  CHECK(dv["current_version"] == 2);
  CHECK(dv["rotation_due"].is_null());
}

TEST_CASE("bad chain input is refused and changes nothing", "[crypto][keychain]") {
  World w;
  KeyChains::CreateSpec s;
  s.owner = "alice";
  s.id = "bad id!";
  CHECK(status_of([&] { w.chains.create(s); }) == VELLUM_ERR_INVALID_ARGUMENT);
  s.id = "ok";
  s.kind = "folder-ish";
  CHECK(status_of([&] { w.chains.create(s); }) == VELLUM_ERR_INVALID_ARGUMENT);
  s.kind = "team";
  s.mode = "other";
  CHECK(status_of([&] { w.chains.create(s); }) == VELLUM_ERR_INVALID_ARGUMENT);
  s.mode = "managed";
  s.wraps["alice"] = "{}";
  CHECK(status_of([&] { w.chains.create(s); }) == VELLUM_ERR_INVALID_ARGUMENT);
  s.wraps.clear();
  s.parent = "missing";
  CHECK(status_of([&] { w.chains.create(s); }) == VELLUM_ERR_INVALID_ARGUMENT);
  s.kind = "document";
  CHECK(status_of([&] { w.chains.create(s); }) == VELLUM_ERR_NOT_FOUND);
  CHECK(w.store.rows.empty());
  s.parent.clear();
  s.kind = "team";
  w.chains.create(s);
  CHECK(status_of([&] { w.chains.create(s); }) == VELLUM_ERR_CONFLICT);
  CHECK(status_of([&] { w.chains.view("nope", "alice", true); }) == VELLUM_ERR_NOT_FOUND);
  CHECK(status_of([&] { w.chains.add_version("ok", {}, "", "x"); }) == VELLUM_ERR_INVALID_ARGUMENT);
}

TEST_CASE("envelope chain recipients round trip and fail closed", "[crypto][envelope][keychain]") {
  Key k = random_key(), other = random_key();
  Pkey x(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  auto env = envelope_encrypt("team document", "doc-7", {{x.get()}}, {{chain_kid("t", 3), k}});
  CHECK(envelope_decrypt(env, "doc-7", ChainRecipient{chain_kid("t", 3), k}) == "team document");
  CHECK(envelope_decrypt(env, "doc-7", x.get()) == "team document");
  CHECK_THROWS_AS(envelope_decrypt(env, "doc-7", ChainRecipient{chain_kid("t", 3), other}), EnvelopeError);
  CHECK_THROWS_AS(envelope_decrypt(env, "doc-7", ChainRecipient{chain_kid("t", 2), k}), EnvelopeError);
  CHECK_THROWS_AS(envelope_decrypt(env, "doc-8", ChainRecipient{chain_kid("t", 3), k}), EnvelopeError);
  auto entries = envelope_inspect(env);
  REQUIRE(entries.size() == 2);
  CHECK(entries[1].kid == "chain:t:3");
  CHECK(entries[1].alg == kChainWrapAlg);

  // Structure checks a server can make without keys.
  auto j = json::parse(env);
  auto broken = [&](auto f) {
    auto c = j;
    f(c);
    return c.dump();
  };
  CHECK_THROWS_WITH(envelope_inspect(broken([](json& c) { c["content"]["ciphertext"] = "AAAA"; })),
                    Catch::Contains("truncated"));
  CHECK_THROWS_WITH(envelope_inspect(broken([](json& c) { c["recipients"][1]["wrapped_key"] = "AAAA"; })),
                    Catch::Contains("wrong length"));
  CHECK_THROWS_WITH(envelope_inspect(broken([](json& c) { c["recipients"][1]["alg"] = "ROT13"; })),
                    Catch::Contains("unsupported"));
  CHECK_THROWS_WITH(
      envelope_inspect(broken([](json& c) { c["recipients"][1]["kid"] = c["recipients"][0]["kid"]; })),
      Catch::Contains("duplicate"));
  CHECK_THROWS_WITH(envelope_inspect(broken([](json& c) { c["recipients"] = json::array(); })),
                    Catch::Contains("at least one"));
  CHECK_THROWS_WITH(envelope_inspect(broken([](json& c) { c["kem"] = "ML-KEM-768"; })),
                    Catch::Contains("post-quantum"));
  CHECK_THROWS_WITH(envelope_inspect(broken([](json& c) { c["content"]["nonce"] = "!!"; })),
                    Catch::Contains("base64"));
  CHECK_THROWS_WITH(envelope_inspect("[1,2]"), Catch::Contains("not a version 1"));
  // A wrong-type key for an entry: an X25519 private key against the chain entry.
  CHECK_THROWS_AS(envelope_decrypt(broken([&](json& c) {
                                     c["recipients"][0]["kid"] = "chain:t:3";
                                     c["recipients"].erase(1);
                                   }),
                                   "doc-7", ChainRecipient{chain_kid("t", 3), k}),
                  EnvelopeError);
}
