// The crypto plugin's storage barrier through real vellumd processes: nothing
// readable on disk, restart with the same and with a wrong root key, and key
// rotation with the background rewrap (automatic and through the API).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "crypto_site.hpp"
#include "keyring.hpp"

using namespace crypto_test;

namespace {
// Every stored row's key version, straight from the SQLite file (format 0x02
// = the root-sealed keyring row, reported as 0).
std::map<uint32_t, int> versions_on_disk(const std::string& db_path) {
  std::map<uint32_t, int> count;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT value FROM kv", -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string v(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                  static_cast<size_t>(sqlite3_column_bytes(st, 0)));
    REQUIRE(v.size() >= vellum::crypto::kOverhead);
    const auto fmt = static_cast<uint8_t>(v[0]);
    REQUIRE((fmt == vellum::crypto::kFormatValue || fmt == vellum::crypto::kFormatKeyring));
    ++count[fmt == vellum::crypto::kFormatKeyring ? 0 : vellum::crypto::Keyring::version_of(v)];
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return count;
}

json status(HttpClient& c, const std::string& tok) {
  auto r = c.request("GET", "/v1/crypto/status", "", bearer(tok));
  INFO(r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

// Polls the status until no rewrap is pending.
json wait_rewrapped(HttpClient& c, const std::string& tok, uint32_t min_version) {
  json s;
  for (int i = 0; i < 200; ++i) {
    s = status(c, tok);
    if (s["keyring_version"].get<uint32_t>() >= min_version && s["rewrap"]["pending"] == false) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("rewrap did not finish: " << s.dump());
  return s;
}
}  // namespace

TEST_CASE("with crypto on nothing readable reaches the database and the root key is checked", "[crypto]") {
  CryptoSite site;
  {
    auto v = site.start(site.root_key);
    HttpClient c(*v);
    auto put = c.request("PUT", "/v1/test/kv/doc1", kMarker);
    INFO(put.body);
    REQUIRE(put.status == 200);
    CHECK(c.get("/v1/test/kv/doc1").body == kMarker);
    CHECK(v->log().find("PLAINTEXT") == std::string::npos);
    CHECK_THAT(v->log(), Catch::Contains("storage barrier 'aes-256-gcm keyring (crypto plugin)' installed"));
    // The status is for administrators only.
    CHECK(c.get("/v1/crypto/status").status == 401);
    auto tok = login(c, kAdminEmail, kAdminPw);
    auto s = status(c, tok);
    CHECK(s["keyring_version"] == 1);
    CHECK(s["versions"][0]["encryptions"].get<uint64_t>() > 0);
    // Neither the marker nor the root key ever appear in the log.
    CHECK(v->log().find(kMarker) == std::string::npos);
    CHECK(v->log().find(site.root_key) == std::string::npos);
    CHECK(v->stop() == 0);
  }
  const std::string disk = site.db_bytes();
  REQUIRE(disk.size() > 0);
  CHECK(disk.find(kMarker) == std::string::npos);
  CHECK(disk.find(kAdminName) == std::string::npos);
  CHECK(disk.find("argon2id") == std::string::npos);  // password hashes are inside sealed values too
  // Values are sealed; keys are not, so nothing identifying is used as a key:
  // the identity email index is keyed by an HMAC of the address.
  CHECK(disk.find(kAdminEmail) == std::string::npos);

  {  // Same root key: everything reads back.
    auto v = site.start(site.root_key);
    HttpClient c(*v);
    CHECK(c.get("/v1/test/kv/doc1").body == kMarker);
    (void)login(c, kAdminEmail, kAdminPw);
    CHECK(v->stop() == 0);
  }
  {  // Another root key: startup fails with a clear message, nothing is overwritten.
    auto v = site.start(new_root_key(), false);
    CHECK(v->wait_exit() != 0);
    CHECK_THAT(v->log(), Catch::Contains("the root key does not open the keyring"));
  }
  {  // A malformed root key is refused before anything is opened.
    auto v = site.start("c2hvcnQ=", false);
    CHECK(v->wait_exit() != 0);
    CHECK_THAT(v->log(), Catch::Contains("root_key must decode to exactly 32 bytes, it decodes to 5"));
  }
  {  // And the right key still works afterwards.
    auto v = site.start(site.root_key);
    HttpClient c(*v);
    CHECK(c.get("/v1/test/kv/doc1").body == kMarker);
    CHECK(v->stop() == 0);
  }
}

TEST_CASE("automatic rotation by encryption count rewraps old values in the background",
          "[crypto][rotation]") {
  CryptoSite site("rotate_after_encryptions = 40\nrewrap_batch = 3\n");
  auto v = site.start(site.root_key);
  HttpClient c(*v);
  for (int i = 0; i < 5; ++i)
    REQUIRE(c.request("PUT", "/v1/test/kv/k" + std::to_string(i), "v1 value").status == 200);
  for (int i = 0; i < 50; ++i)
    REQUIRE(c.request("PUT", "/v1/test/kv/hot", "hot " + std::to_string(i)).status == 200);
  auto tok = login(c, kAdminEmail, kAdminPw);
  auto s = wait_rewrapped(c, tok, 2);
  INFO(s.dump());
  CHECK(s["rotations"].get<int>() >= 1);
  CHECK(s["rewrap"]["resealed_total"].get<uint64_t>() >= 8);
  CHECK(s["rewrap"]["passes"].get<int>() >= 1);
  CHECK(s["rewrap"]["values_at_old_versions"] == 0);
  CHECK(s["versions"].size() >= 2);
  // Values written before the rotation still read back.
  for (int i = 0; i < 5; ++i) CHECK(c.get("/v1/test/kv/k" + std::to_string(i)).body == "v1 value");
  CHECK(c.get("/v1/test/kv/hot").body == "hot 49");
  const auto current = s["keyring_version"].get<uint32_t>();
  auto metrics = c.get("/metrics").body;
  CHECK_THAT(metrics, Catch::Contains("vellum_plugin_crypto_keyring_version"));
  CHECK_THAT(metrics, Catch::Contains("vellum_plugin_crypto_rewrap_resealed_total"));
  // Let the status settle (no rotation may follow), then check the disk.
  s = wait_rewrapped(c, tok, current);
  REQUIRE(s["keyring_version"].get<uint32_t>() == current);
  CHECK(v->stop() == 0);
  auto on_disk = versions_on_disk(site.data_file("vellum.db"));
  INFO("current " << current);
  for (auto [ver, n] : on_disk) {
    INFO("version " << ver << ": " << n << " values");
    CHECK((ver == 0 || ver == current));
  }
  CHECK(on_disk[0] == 1);  // the keyring row
}

TEST_CASE("rotation through the API: administrators only and old values rewrapped", "[crypto][rotation]") {
  CryptoSite site;
  auto v = site.start(site.root_key);
  HttpClient c(*v);
  for (int i = 0; i < 12; ++i)
    REQUIRE(c.request("PUT", "/v1/test/kv/d" + std::to_string(i), "doc " + std::to_string(i)).status == 200);
  auto admin = login(c, kAdminEmail, kAdminPw);
  auto mk = c.request(
      "POST", "/v1/admin/users",
      json({{"email", "bob@example.com"}, {"display_name", "Bob"}, {"password", "bob passphrase 42!"}})
          .dump(),
      bearer(admin));
  INFO(mk.body);
  REQUIRE(mk.status == 201);
  auto bob = login(c, "bob@example.com", "bob passphrase 42!");
  CHECK(c.request("POST", "/v1/crypto/keyring/rotate", "", bearer(bob)).status == 403);
  CHECK(c.request("GET", "/v1/crypto/status", "", bearer(bob)).status == 403);
  CHECK(c.request("POST", "/v1/crypto/keyring/rotate").status == 401);
  auto r = c.request("POST", "/v1/crypto/keyring/rotate", "", bearer(admin));
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["keyring_version"] == 2);
  auto s = wait_rewrapped(c, admin, 2);
  CHECK(s["keyring_version"] == 2);
  CHECK(s["rewrap"]["resealed"].get<uint64_t>() >= 12);
  CHECK(s["rewrap"]["old_version_values_found"].get<uint64_t>() >= 12);
  CHECK(s["rewrap"]["values_at_old_versions"] == 0);
  for (int i = 0; i < 12; ++i)
    CHECK(c.get("/v1/test/kv/d" + std::to_string(i)).body == "doc " + std::to_string(i));
  // The rotation is in the audit log.
  auto audit = c.request("GET", "/v1/admin/audit?action=crypto.keyring.rotate", "", bearer(admin));
  CHECK(audit.status == 200);
  CHECK_THAT(audit.body, Catch::Contains("crypto.keyring.rotate"));
  CHECK(v->stop() == 0);
  auto on_disk = versions_on_disk(site.data_file("vellum.db"));
  CHECK(on_disk.count(1) == 0);
  CHECK(on_disk[2] >= 12);
  // After a restart the rotated keyring is still opened by the same root key.
  auto v2 = site.start(site.root_key);
  HttpClient c2(*v2);
  CHECK(c2.get("/v1/test/kv/d3").body == "doc 3");
  CHECK(v2->stop() == 0);
}

TEST_CASE("root key rotation re-seals the keyring under the new root key", "[crypto][rotation]") {
  CryptoSite site;
  const std::string next = new_root_key();
  auto with_config = [&](const std::string& crypto_extra, std::map<std::string, std::string> env, bool wait) {
    Vellumd::Options o(config(crypto_extra), wait, std::move(env));
    o.data_dir = site.site.data_dir();
    return std::make_unique<Vellumd>(o);
  };
  {
    auto v = site.start(site.root_key);
    HttpClient c(*v);
    REQUIRE(c.request("PUT", "/v1/test/kv/doc1", kMarker).status == 200);
    CHECK(v->stop() == 0);
  }
  const std::string rekey = "new_root_key = { env = \"VELLUM_NEW_ROOT_KEY\" }\n";
  {  // root_key = old, new_root_key = new: rotated at start, storage key rotated too.
    auto v = with_config(rekey, {{"VELLUM_ROOT_KEY", site.root_key}, {"VELLUM_NEW_ROOT_KEY", next}}, true);
    HttpClient c(*v);
    CHECK(c.get("/v1/test/kv/doc1").body == kMarker);
    CHECK_THAT(v->log(), Catch::Contains("root key rotated"));
    auto tok = login(c, kAdminEmail, kAdminPw);
    auto s = json::parse(c.request("GET", "/v1/crypto/status", "", bearer(tok)).body);
    CHECK(s["keyring_version"] == 2);
    auto audit = c.request("GET", "/v1/admin/audit?action=crypto.root.rotate", "", bearer(tok));
    CHECK_THAT(audit.body, Catch::Contains("crypto.root.rotate"));
    CHECK(v->log().find(next) == std::string::npos);
    CHECK(v->stop() == 0);
  }
  {  // The old root key alone no longer opens the data.
    auto v = site.start(site.root_key, false);
    CHECK(v->wait_exit() != 0);
    CHECK_THAT(v->log(), Catch::Contains("the root key does not open the keyring"));
  }
  {  // Config not yet updated (old root_key, new_root_key still set): starts, says what to do.
    auto v = with_config(rekey, {{"VELLUM_ROOT_KEY", site.root_key}, {"VELLUM_NEW_ROOT_KEY", next}}, true);
    HttpClient c(*v);
    CHECK(c.get("/v1/test/kv/doc1").body == kMarker);
    CHECK_THAT(v->log(), Catch::Contains("already sealed with new_root_key"));
    CHECK(v->stop() == 0);
  }
  {  // The new key as root_key: everything reads back.
    auto v = site.start(next);
    HttpClient c(*v);
    CHECK(c.get("/v1/test/kv/doc1").body == kMarker);
    CHECK(v->stop() == 0);
  }
  {  // The same key twice is refused before anything is opened.
    auto v = with_config(rekey, {{"VELLUM_ROOT_KEY", next}, {"VELLUM_NEW_ROOT_KEY", next}}, false);
    CHECK(v->wait_exit() != 0);
    CHECK_THAT(v->log(), Catch::Contains("new_root_key is the same as root_key"));
  }
}
