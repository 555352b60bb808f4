#include "client.hpp"

#include <fcntl.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "aead.hpp"
#include "envelope.hpp"
#include "keychain.hpp"

namespace vellum::cli {

using nlohmann::json;
using vellum::crypto::b64encode;
using vellum::crypto::ChainRecipient;
using vellum::crypto::cleanse;
using vellum::crypto::Recipient;

Pkey generate_key(const std::string& type) {
  EVP_PKEY* k = nullptr;
  if (type == "x25519")
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
  else if (type == "p256")
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  else if (type == "rsa3072")
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{3072});
  else if (type == "rsa4096")
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{4096});
  else
    throw std::invalid_argument("key type must be x25519, p256, rsa3072 or rsa4096");
  if (!k) throw std::runtime_error("key generation failed");
  return Pkey(k);
}

namespace {
std::string bio_string(BIO* b) {
  char* p = nullptr;
  const long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  return s;
}
}  // namespace

std::string private_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  if (!b || PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("cannot encode the private key");
  return bio_string(b.get());
}

std::string public_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  if (!b || PEM_write_bio_PUBKEY(b.get(), k) != 1) throw std::runtime_error("cannot encode the public key");
  return bio_string(b.get());
}

Pkey load_private_pem(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                              BIO_free);
  EVP_PKEY* k = b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!k) throw std::runtime_error("not a PEM private key");
  return Pkey(k);
}

void save_private_key(EVP_PKEY* k, const std::string& path) {
  std::string pem = private_pem(k);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path + " (exists?): " + std::strerror(errno));
  const bool ok = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
  ::close(fd);
  cleanse(pem.data(), pem.size());
  if (!ok) throw std::runtime_error("cannot write " + path);
}

Pkey load_private_key_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string pem = ss.str();
  Pkey k = load_private_pem(pem);
  cleanse(pem.data(), pem.size());
  return k;
}

Client::Client(std::string url, std::string token, std::string ca_file)
    : http_(std::move(url), std::move(ca_file)), token_(std::move(token)) {}

std::string Client::login(const std::string& url, const std::string& ca_file, const std::string& email,
                          const std::string& password) {
  Http h(url, ca_file);
  auto r = h.request("POST", "/v1/auth/login", json{{"email", email}, {"password", password}}.dump(),
                     {{"Content-Type", "application/json"}});
  auto j = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_object() || !j.contains("token"))
    throw ApiError(r.status, "login failed: " + (j.is_object() ? j.value("detail", r.body) : r.body));
  return j["token"];
}

json Client::call(const std::string& method, const std::string& path, const json& body) {
  std::map<std::string, std::string> h = {{"Authorization", "Bearer " + token_}};
  std::string b;
  if (!body.is_null()) {
    b = body.dump();
    h["Content-Type"] = "application/json";
  }
  auto r = http_.request(method, path, b, h);
  if (r.status == 204) return nullptr;
  auto j = json::parse(r.body, nullptr, false);
  if (r.status >= 300) {
    std::string detail = j.is_object() ? j.value("detail", j.value("title", r.body)) : r.body;
    throw ApiError(r.status, method + " " + path + ": " + std::to_string(r.status) + " " + detail);
  }
  if (j.is_discarded()) throw ApiError(r.status, "the server's answer is not JSON");
  return j;
}

std::string Client::whoami() { return call("GET", "/v1/me")["user"]["id"]; }

std::string Client::publish_key(EVP_PKEY* key) {
  return call("POST", "/v1/crypto/pubkeys",
              {{"public_key", public_pem(key)}, {"use", "encryption"}})["key_id"];
}

std::vector<Pkey> Client::encryption_keys(const std::string& user) {
  std::vector<Pkey> out;
  const json listed = call("GET", "/v1/crypto/users/" + user + "/pubkeys");  // kept alive for the loop
  for (const auto& rec : listed["keys"]) {
    if (rec.value("use", "") != "encryption") continue;
    const std::string pem = rec["public_key"];
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                BIO_free);
    EVP_PKEY* k = b ? PEM_read_bio_PUBKEY(b.get(), nullptr, nullptr, nullptr) : nullptr;
    if (!k) throw std::runtime_error("a published key of " + user + " does not parse");
    Pkey pk(k);
    // The directory is not trusted to name keys: the id is recomputed here.
    if (vellum::crypto::key_id_of(pk.get()) != rec.value("key_id", ""))
      throw std::runtime_error("the directory's key id for a key of " + user + " does not match the key");
    out.push_back(std::move(pk));
  }
  if (out.empty()) throw std::runtime_error("user " + user + " has published no encryption key");
  return out;
}

std::string Client::encrypt_for_users(const std::string& plaintext, const std::string& aad,
                                      const std::vector<std::string>& user_ids) {
  std::vector<Pkey> keys;
  std::vector<Recipient> to;
  for (const auto& u : user_ids)
    for (auto& k : encryption_keys(u)) keys.push_back(std::move(k));
  for (auto& k : keys) to.push_back({k.get()});
  const std::string env = vellum::crypto::envelope_encrypt(plaintext, aad, to);
  return call("POST", "/v1/crypto/envelopes", {{"envelope", env}})["id"];
}

json Client::chain(const std::string& id) { return call("GET", "/v1/crypto/chains/" + id); }

std::string Client::team_key(const std::string& team, uint32_t version, EVP_PKEY* me) {
  const json c = chain(team);
  if (version == 0) version = c["current_version"];
  const std::string uid = whoami();
  for (const auto& v : c["versions"])
    if (v["version"] == version) {
      if (!v["wraps"].contains(uid)) throw std::runtime_error("the team key version is not wrapped for you");
      return vellum::crypto::envelope_decrypt(v["wraps"][uid].get<std::string>(),
                                              vellum::crypto::keychain_aad(team, version), me);
    }
  throw std::runtime_error("no such team key version");
}

std::string Client::encrypt_for_team(const std::string& plaintext, const std::string& aad,
                                     const std::string& team, EVP_PKEY* me) {
  const json c = chain(team);
  if (!c["rotation_due"].is_null())
    throw std::runtime_error("the team key must be rotated first: " + c["rotation_due"].get<std::string>());
  const uint32_t v = c["current_version"];
  std::string k = team_key(team, v, me);
  ChainRecipient r{vellum::crypto::chain_kid(team, v), {}};
  std::memcpy(r.key.data(), k.data(), 32);
  cleanse(k.data(), k.size());
  const std::string env = vellum::crypto::envelope_encrypt(plaintext, aad, {}, {r});
  cleanse(r.key.data(), r.key.size());
  return call("POST", "/v1/crypto/envelopes", {{"envelope", env}})["id"];
}

json Client::fetch_envelope(const std::string& id) { return call("GET", "/v1/crypto/envelopes/" + id); }

std::string Client::decrypt(const std::string& id, const std::string& aad, EVP_PKEY* me) {
  const json rec = fetch_envelope(id);
  const std::string env = rec["envelope"];
  for (const auto& e : vellum::crypto::envelope_inspect(env)) {
    if (e.alg != vellum::crypto::kChainWrapAlg) continue;
    const auto colon = e.kid.rfind(':');
    const std::string team = e.kid.substr(6, colon - 6);
    const auto version = static_cast<uint32_t>(std::stoul(e.kid.substr(colon + 1)));
    std::string k = team_key(team, version, me);
    ChainRecipient r{e.kid, {}};
    std::memcpy(r.key.data(), k.data(), 32);
    cleanse(k.data(), k.size());
    std::string pt = vellum::crypto::envelope_decrypt(env, aad, r);
    cleanse(r.key.data(), r.key.size());
    return pt;
  }
  return vellum::crypto::envelope_decrypt(env, aad, me);
}

std::string Client::wrap_for_user(const std::string& key, const std::string& chain, uint32_t version,
                                  const std::string& user) {
  auto keys = encryption_keys(user);
  std::vector<Recipient> to;
  for (auto& k : keys) to.push_back({k.get()});
  return vellum::crypto::envelope_encrypt(key, vellum::crypto::keychain_aad(chain, version), to);
}

json Client::team_create(const std::string& team, const std::vector<std::string>& members) {
  const std::string me = whoami();
  auto k = vellum::crypto::random_key();
  std::string key(reinterpret_cast<const char*>(k.data()), k.size());
  cleanse(k.data(), k.size());
  json wraps = json::object();
  wraps[me] = wrap_for_user(key, team, 1, me);
  for (const auto& m : members) wraps[m] = wrap_for_user(key, team, 1, m);
  cleanse(key.data(), key.size());
  return call("POST", "/v1/crypto/chains",
              {{"id", team}, {"kind", "team"}, {"mode", "e2ee"}, {"members", members}, {"wraps", wraps}});
}

json Client::team_add(const std::string& team, const std::string& user, EVP_PKEY* me) {
  const uint32_t v = chain(team)["current_version"];
  std::string key = team_key(team, v, me);
  const std::string wrap = wrap_for_user(key, team, v, user);
  cleanse(key.data(), key.size());
  return call("POST", "/v1/crypto/chains/" + team + "/members", {{"user_id", user}, {"wrap", wrap}});
}

json Client::team_rotate(const std::string& team, const std::string& reason) {
  const json c = chain(team);
  const uint32_t v = c["current_version"].get<uint32_t>() + 1;
  auto k = vellum::crypto::random_key();
  std::string key(reinterpret_cast<const char*>(k.data()), k.size());
  cleanse(k.data(), k.size());
  json wraps = json::object();
  // The remaining members only: the server refuses a wrap for anyone else.
  for (const auto& m : c["members"]) wraps[m.get<std::string>()] = wrap_for_user(key, team, v, m);
  cleanse(key.data(), key.size());
  return call("POST", "/v1/crypto/chains/" + team + "/versions", {{"wraps", wraps}, {"reason", reason}});
}

json Client::team_remove(const std::string& team, const std::string& user) {
  call("DELETE", "/v1/crypto/chains/" + team + "/members/" + user);
  return team_rotate(team, "member removed");
}

}  // namespace vellum::cli
