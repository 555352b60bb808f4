// Shared by the crypto plugin's integration tests: a data directory with an
// administrator, vellumd with crypto + testkit, login.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

#include "aead.hpp"
#include "harness.hpp"

namespace crypto_test {
using namespace vt;
using nlohmann::json;

inline const std::string kAdminEmail = "ada.cryptotest@example.com";
inline const std::string kAdminName = "Ada NameMarker-91c2";
inline const std::string kAdminPw = "correct horse staple 42";
inline const std::string kMarker = "CRYPTO-PLAINTEXT-MARKER-5e81d0";

inline std::string new_root_key() {
  auto k = vellum::crypto::random_key();
  return vellum::crypto::b64encode(std::string(reinterpret_cast<const char*>(k.data()), k.size()));
}

inline std::string config(const std::string& extra = "") {
  return "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n" + extra + "\n[plugins.testkit]\n";
}

// A data directory with an administrator, created through `vellumd admin create`.
struct Site {
  TempDir dir;
  std::string root_key = new_root_key();
  std::string extra;
  explicit Site(std::string extra_crypto = "") : extra(std::move(extra_crypto)) {
    write_file(dir / "pw", kAdminPw + "\n");
    write_file(dir / "v.toml", config(extra) + "\n[plugins]\ndir = \"" + plugin_dir() + "\"\n");
    auto r = run({vellumd_path(), "admin", "create", "--email", kAdminEmail, "--name", kAdminName,
                  "--password-file", dir / "pw", "--config", dir / "v.toml", "--data-dir", dir / "data"},
                 std::chrono::seconds(60), {{"VELLUM_ROOT_KEY", root_key}});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  std::unique_ptr<Vellumd> start(const std::string& key, bool wait = true) {
    Vellumd::Options o(config(extra), wait, {{"VELLUM_ROOT_KEY", key}});
    o.data_dir = dir / "data";
    return std::make_unique<Vellumd>(o);
  }
  std::string db_bytes() {
    std::string all;
    for (const char* f : {"/vellum.db", "/vellum.db-wal"}) {
      try {
        all += read_file(dir / "data" + f);
      } catch (...) {
      }
    }
    return all;
  }
};

inline std::map<std::string, std::string> bearer(const std::string& t) {
  return {{"Authorization", "Bearer " + t}};
}

inline std::string login(HttpClient& c, const std::string& email, const std::string& pw) {
  auto r = c.request("POST", "/v1/auth/login", json({{"email", email}, {"password", pw}}).dump(),
                     {{"Content-Type", "application/json"}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body)["token"].get<std::string>();
}

}  // namespace crypto_test
