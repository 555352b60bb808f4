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

// A data directory with an administrator (vt::Site) served with crypto + testkit.
struct CryptoSite {
  std::string root_key = new_root_key();
  std::string extra;
  vt::Site site;
  explicit CryptoSite(std::string extra_crypto = "")
      : extra(std::move(extra_crypto)),
        site(config(extra), kAdminEmail, kAdminPw, {{"VELLUM_ROOT_KEY", root_key}}, kAdminName) {}
  std::string data_file(const std::string& name) const { return site.data_dir() + "/" + name; }
  std::unique_ptr<Vellumd> start(const std::string& key, bool wait = true) {
    std::map<std::string, std::string> env = {{"VELLUM_ROOT_KEY", key}};
    return site.start(wait, &env);
  }
  std::string db_bytes() const { return site.db_bytes(); }
};

}  // namespace crypto_test
