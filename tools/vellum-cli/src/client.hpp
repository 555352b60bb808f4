// The reference end-to-end-encryption client (library behind the `vellum`
// CLI, shared with the tests). Private keys are made and used here only;
// the server sees public keys, envelopes and wrapped keys.
#pragma once

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "http.hpp"

namespace vellum::cli {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// A server answered with an error; carries the status and the problem detail.
struct ApiError : std::runtime_error {
  ApiError(int s, const std::string& m) : std::runtime_error(m), status(s) {}
  int status;
};

// type: "x25519" (default), "p256", "rsa3072" or "rsa4096".
Pkey generate_key(const std::string& type);
std::string private_pem(EVP_PKEY* k);
std::string public_pem(EVP_PKEY* k);
Pkey load_private_pem(const std::string& pem);
// Writes the private key with mode 0600 (refuses to overwrite).
void save_private_key(EVP_PKEY* k, const std::string& path);
Pkey load_private_key_file(const std::string& path);

class Client {
 public:
  Client(std::string url, std::string token, std::string ca_file);

  static std::string login(const std::string& url, const std::string& ca_file, const std::string& email,
                           const std::string& password);
  std::string whoami();  // the caller's user id

  // Publishes the public half of `key` for encryption; returns its key id.
  std::string publish_key(EVP_PKEY* key);

  // Encrypts for every published encryption key of each user and stores the
  // envelope; returns its id. aad: associated data (e.g. a document name).
  std::string encrypt_for_users(const std::string& plaintext, const std::string& aad,
                                const std::vector<std::string>& user_ids);
  // Encrypts with the current version of team key chain `team` (which the
  // caller opens with `me`), stores the envelope, returns its id.
  std::string encrypt_for_team(const std::string& plaintext, const std::string& aad, const std::string& team,
                               EVP_PKEY* me);
  // Fetches the envelope and opens it with `me`: directly, or through a team
  // key version wrapped for `me`.
  std::string decrypt(const std::string& envelope_id, const std::string& aad, EVP_PKEY* me);
  nlohmann::json fetch_envelope(const std::string& envelope_id);

  // e2ee team keys: the key is made here and wrapped for each member's
  // published keys; the server stores the wraps only.
  nlohmann::json team_create(const std::string& team, const std::vector<std::string>& members);
  // One wrap of the current team key (opened with `me`) for the new member.
  nlohmann::json team_add(const std::string& team, const std::string& user, EVP_PKEY* me);
  // Removes the member and uploads a fresh team key for the remaining members.
  nlohmann::json team_remove(const std::string& team, const std::string& user);
  // Uploads a fresh team key wrapped for the current members (after a
  // removal, a schedule or a suspected breach marked the rotation due).
  nlohmann::json team_rotate(const std::string& team, const std::string& reason);
  // The team key of `version` (0 = current) as wrapped for `me`.
  std::string team_key(const std::string& team, uint32_t version, EVP_PKEY* me);
  nlohmann::json chain(const std::string& id);

  nlohmann::json call(const std::string& method, const std::string& path,
                      const nlohmann::json& body = nullptr);

 private:
  std::vector<Pkey> encryption_keys(const std::string& user);
  std::string wrap_for_user(const std::string& key, const std::string& chain, uint32_t version,
                            const std::string& user);
  Http http_;
  std::string token_;
};

}  // namespace vellum::cli
