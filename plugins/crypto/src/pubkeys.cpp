#include "pubkeys.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>

namespace vellum::crypto {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

std::string curve_name(EVP_PKEY* k) {
  char name[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1) return "";
  return std::string(name, len);
}

}  // namespace

PublicKeyInfo inspect_public_key(std::string_view pem, std::string_view use, unsigned min_rsa_bits) {
  if (use != "encryption" && use != "signing")
    throw std::invalid_argument("'use' must be encryption or signing");
  if (pem.size() > 16384) throw std::invalid_argument("the public key is too large");
  if (pem.find("PRIVATE KEY") != std::string_view::npos)
    throw std::invalid_argument("this is a private key: upload only the public key (PEM \"PUBLIC KEY\")");
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw std::runtime_error("BIO_new_mem_buf failed");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::invalid_argument("not a PEM public key (SubjectPublicKeyInfo, \"BEGIN PUBLIC KEY\")");

  PublicKeyInfo info;
  info.use = std::string(use);
  const bool enc = use == "encryption";
  if (EVP_PKEY_is_a(key.get(), "RSA")) {
    info.type = "rsa";
    info.bits = EVP_PKEY_get_bits(key.get());
    if (info.bits < 2048)
      throw std::invalid_argument(
          "RSA keys below 2048 bits are refused (this one has " + std::to_string(info.bits) +
          "): RSA-512 was factored in 1999 (RSA-155) and NIST SP 800-131A disallows RSA below 2048 bits");
    if (info.bits < static_cast<int>(min_rsa_bits))
      throw std::invalid_argument("RSA keys must have at least " + std::to_string(min_rsa_bits) +
                                  " bits on this server (this one has " + std::to_string(info.bits) + ")");
    if (info.bits != 2048 && info.bits != 3072 && info.bits != 4096)
      throw std::invalid_argument("RSA keys must have 2048, 3072 or 4096 bits (this one has " +
                                  std::to_string(info.bits) + ")");
    if (!enc) throw std::invalid_argument("RSA keys are accepted for encryption (RSA-OAEP-256) only");
    info.algorithm = "RSA-OAEP-256";
  } else if (EVP_PKEY_is_a(key.get(), "X25519")) {
    info.type = "x25519";
    info.bits = 255;
    if (!enc) throw std::invalid_argument("X25519 keys are for encryption (key agreement) only");
    info.algorithm = "X25519";
  } else if (EVP_PKEY_is_a(key.get(), "ED25519")) {
    info.type = "ed25519";
    info.bits = 255;
    if (enc) throw std::invalid_argument("Ed25519 keys are for signing only");
    info.algorithm = "Ed25519";
  } else if (EVP_PKEY_is_a(key.get(), "EC")) {
    const std::string curve = curve_name(key.get());
    if (curve == "prime256v1" || curve == "P-256") {
      info.type = "ec-p256";
      info.bits = 256;
      info.algorithm = enc ? "ECDH-P256" : "ECDSA-P256-SHA256";
    } else if (curve == "secp256k1") {
      info.type = "secp256k1";
      info.bits = 256;
      if (enc) throw std::invalid_argument("secp256k1 keys are accepted for signing only");
      info.algorithm = "ECDSA-secp256k1-SHA256";
    } else {
      throw std::invalid_argument("EC curve '" + curve + "' is not accepted (P-256 or secp256k1)");
    }
  } else {
    throw std::invalid_argument(
        "unsupported key type (accepted: RSA 2048/3072/4096, EC P-256, X25519, Ed25519, secp256k1)");
  }

  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(key.get(), &der);
  if (n <= 0) throw std::runtime_error("cannot encode the public key");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  const bool ok = EVP_Digest(der, static_cast<size_t>(n), md, &mdlen, EVP_sha256(), nullptr) == 1;
  OPENSSL_free(der);
  if (!ok) throw std::runtime_error("SHA-256 failed");
  info.key_id = hex(md, mdlen);

  std::unique_ptr<BIO, BioFree> out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PUBKEY(out.get(), key.get()) != 1)
    throw std::runtime_error("cannot encode the public key");
  char* data = nullptr;
  const long len = BIO_get_mem_data(out.get(), &data);
  info.pem.assign(data, static_cast<size_t>(len));
  return info;
}

}  // namespace vellum::crypto
