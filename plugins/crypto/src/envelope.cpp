#include "envelope.hpp"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <memory>

#include "aead.hpp"

namespace vellum::crypto {
namespace {

constexpr std::string_view kLabel = "vellum.envelope.v1";
constexpr const char* kRsa = "RSA-OAEP-256";
constexpr const char* kEcdhP256 = "ECDH-P256+HKDF-SHA256+A256GCM";
constexpr const char* kX25519 = "X25519+HKDF-SHA256+A256GCM";
constexpr const char* kChain = kChainWrapAlg;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct KdfFree {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

EnvelopeError err(const std::string& m) { return EnvelopeError(m); }

std::string spki_der(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(k, &der);
  if (n <= 0) throw err("cannot encode a public key");
  std::string s(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return s;
}

Pkey pubkey_from_der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EVP_PKEY* k = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (!k) throw err("malformed ephemeral public key");
  return Pkey(k);
}

const char* alg_for(EVP_PKEY* k) {
  if (EVP_PKEY_is_a(k, "RSA")) {
    if (EVP_PKEY_get_bits(k) < 2048) throw err("RSA recipient keys below 2048 bits are refused");
    return kRsa;
  }
  if (EVP_PKEY_is_a(k, "X25519")) return kX25519;
  if (EVP_PKEY_is_a(k, "EC")) {
    char name[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) == 1 &&
        (std::string_view(name, len) == "prime256v1" || std::string_view(name, len) == "P-256"))
      return kEcdhP256;
  }
  throw err("unsupported recipient key (RSA >= 2048, EC P-256 or X25519)");
}

std::string b64(std::string_view s) { return b64encode(s); }
std::string unb64(const nlohmann::json& j, const char* k) {
  if (!j.contains(k) || !j[k].is_string()) throw err(std::string("envelope field '") + k + "' is missing");
  auto r = b64decode(j[k].get<std::string>());
  if (!r) throw err(std::string("envelope field '") + k + "' is not base64");
  return *r;
}

std::string rsa_oaep(EVP_PKEY* k, std::string_view in, bool encrypt) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, k, nullptr));
  if (!ctx || (encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), "SHA256", nullptr) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), "SHA256", nullptr) != 1)
    throw err("RSA-OAEP setup failed");
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = 0;
  if ((encrypt ? EVP_PKEY_encrypt(ctx.get(), nullptr, &n, src, in.size())
               : EVP_PKEY_decrypt(ctx.get(), nullptr, &n, src, in.size())) != 1)
    throw err("RSA-OAEP failed");
  std::string out(n, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  if ((encrypt ? EVP_PKEY_encrypt(ctx.get(), dst, &n, src, in.size())
               : EVP_PKEY_decrypt(ctx.get(), dst, &n, src, in.size())) != 1)
    throw err(encrypt ? "RSA-OAEP encryption failed" : "the content key does not unwrap with this key");
  out.resize(n);
  return out;
}

std::string ecdh(EVP_PKEY* mine, EVP_PKEY* peer) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, mine, nullptr));
  size_t n = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &n) != 1)
    throw err("key agreement failed (key types do not match?)");
  std::string s(n, '\0');
  if (EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(s.data()), &n) != 1)
    throw err("key agreement failed");
  s.resize(n);
  return s;
}

// KEK = HKDF-SHA256(ikm = shared secret, salt = none,
//                   info = label ‖ 0x00 ‖ alg ‖ 0x00 ‖ ephemeral SPKI ‖ recipient SPKI)
Key hkdf(std::string_view shared, std::string_view info) {
  std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) throw err("HKDF is not available");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(shared.data()), shared.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
      OSSL_PARAM_construct_end()};
  Key k;
  if (!ctx || EVP_KDF_derive(ctx.get(), k.data(), k.size(), params) != 1) throw err("HKDF failed");
  return k;
}

std::string kdf_info(const char* alg, std::string_view epk_der, std::string_view recipient_der) {
  std::string info(kLabel);
  info.push_back('\0');
  info += alg;
  info.push_back('\0');
  info += epk_der;
  info += recipient_der;
  return info;
}

std::string wrap_aad(std::string_view kid, const char* alg) {
  return std::string(kLabel) + ".wrap" + '\0' + std::string(kid) + '\0' + alg;
}
std::string content_aad(std::string_view aad) {
  return std::string(kLabel) + ".content" + '\0' + std::string(aad);
}

}  // namespace

std::string key_id_of(EVP_PKEY* key) {
  const std::string der = spki_der(key);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(der.data(), der.size(), md, &n, EVP_sha256(), nullptr) != 1) throw err("SHA-256 failed");
  static const char* hx = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s.push_back(hx[md[i] >> 4]);
    s.push_back(hx[md[i] & 15]);
  }
  return s;
}

std::string envelope_encrypt(std::string_view plaintext, std::string_view aad,
                             const std::vector<Recipient>& to, const std::vector<ChainRecipient>& chains) {
  if (to.empty() && chains.empty()) throw err("an envelope needs at least one recipient");
  Key cek = random_key();
  uint8_t nonce[kNonceSize];
  random_bytes(nonce, sizeof nonce);
  std::string ct;
  gcm_seal(cek, nonce, content_aad(aad), plaintext, ct);
  const std::string_view cek_view(reinterpret_cast<const char*>(cek.data()), cek.size());

  nlohmann::json recipients = nlohmann::json::array();
  for (const auto& r : to) {
    const char* alg = alg_for(r.public_key);
    const std::string kid = key_id_of(r.public_key);
    if (alg == kRsa) {
      recipients.push_back(
          {{"kid", kid}, {"alg", alg}, {"wrapped_key", b64(rsa_oaep(r.public_key, cek_view, true))}});
      continue;
    }
    Pkey eph(alg == kX25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519")
                            : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!eph) throw err("ephemeral key generation failed");
    std::string shared = ecdh(eph.get(), r.public_key);
    const std::string epk = spki_der(eph.get());
    Key kek = hkdf(shared, kdf_info(alg, epk, spki_der(r.public_key)));
    cleanse(shared.data(), shared.size());
    uint8_t wnonce[kNonceSize];
    random_bytes(wnonce, sizeof wnonce);
    std::string wrapped;
    gcm_seal(kek, wnonce, wrap_aad(kid, alg), cek_view, wrapped);
    cleanse(kek.data(), kek.size());
    recipients.push_back(
        {{"kid", kid},
         {"alg", alg},
         {"epk", b64(epk)},
         {"nonce", b64(std::string_view(reinterpret_cast<const char*>(wnonce), sizeof wnonce))},
         {"wrapped_key", b64(wrapped)}});
  }
  for (const auto& c : chains) {
    uint8_t wnonce[kNonceSize];
    random_bytes(wnonce, sizeof wnonce);
    std::string wrapped;
    gcm_seal(c.key, wnonce, wrap_aad(c.kid, kChain), cek_view, wrapped);
    recipients.push_back(
        {{"kid", c.kid},
         {"alg", kChain},
         {"nonce", b64(std::string_view(reinterpret_cast<const char*>(wnonce), sizeof wnonce))},
         {"wrapped_key", b64(wrapped)}});
  }
  cleanse(cek.data(), cek.size());
  nlohmann::json env = {
      {"vellum_envelope", 1},
      {"content",
       {{"alg", "A256GCM"},
        {"nonce", b64(std::string_view(reinterpret_cast<const char*>(nonce), sizeof nonce))},
        {"ciphertext", b64(ct)}}},
      {"recipients", recipients},
      {"kem", nullptr}};
  return env.dump();
}

namespace {

nlohmann::json parse_envelope(std::string_view text) {
  auto env = nlohmann::json::parse(text, nullptr, false);
  if (!env.is_object() || !env.contains("vellum_envelope") || env["vellum_envelope"] != 1 ||
      !env.contains("content") || !env["content"].is_object() || !env.contains("recipients") ||
      !env["recipients"].is_array())
    throw err("not a version 1 vellum envelope");
  if (env.contains("kem") && !env["kem"].is_null())
    throw err("this envelope needs a post-quantum KEM this build does not implement");
  const auto& content = env["content"];
  if (!content.contains("alg") || content["alg"] != "A256GCM") throw err("unsupported content algorithm");
  return env;
}

const nlohmann::json& find_entry(const nlohmann::json& env, const std::string& kid) {
  const nlohmann::json* entry = nullptr;
  for (const auto& r : env["recipients"])
    if (r.is_object() && r.contains("kid") && r["kid"] == kid) entry = &r;
  if (!entry) throw err("this key is not a recipient of the envelope");
  if (!entry->contains("alg") || !(*entry)["alg"].is_string()) throw err("recipient entry has no algorithm");
  return *entry;
}

// Takes the unwrapped content key (wiped here) and opens the content.
std::string open_content(const nlohmann::json& env, std::string_view aad, std::string& cek) {
  if (cek.size() != 32) {
    cleanse(cek.data(), cek.size());
    throw err("the content key has a wrong length");
  }
  Key k;
  std::memcpy(k.data(), cek.data(), 32);
  cleanse(cek.data(), cek.size());
  const auto& content = env["content"];
  const std::string nonce = unb64(content, "nonce");
  const std::string ct = unb64(content, "ciphertext");
  if (nonce.size() != kNonceSize) throw err("content has a bad nonce");
  std::string pt;
  const bool ok = gcm_open(k, reinterpret_cast<const uint8_t*>(nonce.data()), content_aad(aad), ct, pt);
  cleanse(k.data(), k.size());
  if (!ok) throw err("the content failed authentication (tampered, or wrong associated data)");
  return pt;
}

}  // namespace

std::string chain_kid(std::string_view chain_id, uint32_t version) {
  std::string s = "chain:";
  s += chain_id;
  s += ':';
  s += std::to_string(version);
  return s;
}

std::string envelope_decrypt(std::string_view text, std::string_view aad, EVP_PKEY* priv) {
  const auto env = parse_envelope(text);
  const std::string kid = key_id_of(priv);
  const auto& entry = find_entry(env, kid);
  const std::string alg = entry["alg"];
  const std::string wrapped = unb64(entry, "wrapped_key");
  std::string cek;
  if (alg == kRsa) {
    if (!EVP_PKEY_is_a(priv, "RSA")) throw err("wrong key type for " + alg);
    cek = rsa_oaep(priv, wrapped, false);
  } else if (alg == kEcdhP256 || alg == kX25519) {
    if (alg_for(priv) != (alg == kX25519 ? kX25519 : kEcdhP256)) throw err("wrong key type for " + alg);
    const std::string epk_der = unb64(entry, "epk");
    const std::string wnonce = unb64(entry, "nonce");
    if (wnonce.size() != kNonceSize) throw err("recipient entry has a bad nonce");
    Pkey epk = pubkey_from_der(epk_der);
    std::string shared = ecdh(priv, epk.get());
    Key kek = hkdf(shared, kdf_info(alg == kX25519 ? kX25519 : kEcdhP256, epk_der, spki_der(priv)));
    cleanse(shared.data(), shared.size());
    const bool ok = gcm_open(kek, reinterpret_cast<const uint8_t*>(wnonce.data()),
                             wrap_aad(kid, alg == kX25519 ? kX25519 : kEcdhP256), wrapped, cek);
    cleanse(kek.data(), kek.size());
    if (!ok) throw err("the content key does not unwrap with this key (tampered entry?)");
  } else {
    throw err("unsupported key wrapping algorithm '" + alg + "'");
  }
  return open_content(env, aad, cek);
}

std::string envelope_decrypt(std::string_view text, std::string_view aad, const ChainRecipient& key) {
  const auto env = parse_envelope(text);
  const auto& entry = find_entry(env, key.kid);
  if (entry["alg"] != kChain) throw err("wrong key type for this recipient entry");
  const std::string wrapped = unb64(entry, "wrapped_key");
  const std::string wnonce = unb64(entry, "nonce");
  if (wnonce.size() != kNonceSize) throw err("recipient entry has a bad nonce");
  std::string cek;
  if (!gcm_open(key.key, reinterpret_cast<const uint8_t*>(wnonce.data()), wrap_aad(key.kid, kChain), wrapped,
                cek))
    throw err("the content key does not unwrap with this key (tampered entry or wrong key version?)");
  return open_content(env, aad, cek);
}

std::vector<EnvelopeEntry> envelope_inspect(std::string_view text) {
  const auto env = parse_envelope(text);
  const std::string nonce = unb64(env["content"], "nonce");
  const std::string ct = unb64(env["content"], "ciphertext");
  if (nonce.size() != kNonceSize) throw err("content has a bad nonce");
  if (ct.size() < kTagSize) throw err("content ciphertext is truncated (shorter than the GCM tag)");
  if (env["recipients"].empty()) throw err("an envelope needs at least one recipient");
  std::vector<EnvelopeEntry> out;
  for (const auto& r : env["recipients"]) {
    if (!r.is_object() || !r.contains("kid") || !r["kid"].is_string() || !r.contains("alg") ||
        !r["alg"].is_string())
      throw err("a recipient entry lacks 'kid' or 'alg'");
    const std::string alg = r["alg"], kid = r["kid"];
    const std::string wrapped = unb64(r, "wrapped_key");
    if (alg == kRsa) {
      if (wrapped.size() < 256 || wrapped.size() > 512) throw err("RSA-OAEP wrapped key has a wrong length");
    } else if (alg == kEcdhP256 || alg == kX25519 || alg == kChain) {
      if (wrapped.size() != 32 + kTagSize) throw err("wrapped key has a wrong length (truncated?)");
      if (unb64(r, "nonce").size() != kNonceSize) throw err("recipient entry has a bad nonce");
      if (alg != kChain) (void)pubkey_from_der(unb64(r, "epk"));
    } else {
      throw err("unsupported key wrapping algorithm '" + alg + "'");
    }
    for (const auto& e : out)
      if (e.kid == kid) throw err("duplicate recipient key id");
    out.push_back({kid, alg});
  }
  return out;
}

}  // namespace vellum::crypto
