// Signing keys and raw signatures: ECDSA P-256 and secp256k1 with SHA-256
// (DER signatures), Ed25519 (pure, RFC 8032) and RSA-PSS with SHA-256,
// MGF1-SHA-256 and a 32-byte salt (RSA keys of 2048 bits or more). Every
// signature is over the exact bytes of a statement and verifies with stock
// `openssl dgst -sha256 -verify` (ECDSA, RSA-PSS with -sigopt) or
// `openssl pkeyutl -verify -rawin` (Ed25519).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util.hpp"

namespace vellum::signing {

enum class Algorithm { EcdsaP256, EcdsaSecp256k1, Ed25519, RsaPss };

constexpr uint32_t kMinRsaBits = 2048;
constexpr uint32_t kMaxRsaBits = 8192;

// "ecdsa-p256-sha256", "ecdsa-secp256k1-sha256", "ed25519", "rsa-pss-sha256".
const char* algorithm_name(Algorithm a);
std::optional<Algorithm> parse_algorithm(std::string_view name);

// A new private key. rsa_bits is used for RsaPss only (throws InvalidInput
// below kMinRsaBits or above kMaxRsaBits, with the reason).
Pkey generate_key(Algorithm a, uint32_t rsa_bits = 3072);

// Throws InvalidInput unless k is a key of algorithm a (curve, type, RSA size).
void check_key(Algorithm a, EVP_PKEY* k);
// The algorithm a public key can be used with; RSA keys mean RSA-PSS.
Algorithm algorithm_of(EVP_PKEY* k);

// Key id: lower-case hex SHA-256 of the DER SubjectPublicKeyInfo.
std::string key_id(EVP_PKEY* k);

// A loaded private key that signs. Keeps its OpenSSL contexts between calls,
// so one object must not be used by two threads at once.
class Signer {
 public:
  Signer(Algorithm a, Pkey key);
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;
  std::string sign(std::string_view message);
  Algorithm algorithm() const { return alg_; }
  EVP_PKEY* key() const { return key_.get(); }

 private:
  Algorithm alg_;
  Pkey key_;
  EVP_PKEY_CTX* pctx_ = nullptr;  // ECDSA and RSA-PSS: sign_init done once
  EVP_MD_CTX* mctx_ = nullptr;    // Ed25519: one-shot DigestSign
  Sha256 hash_;                   // ECDSA and RSA-PSS sign a SHA-256 digest
};

// A public key that verifies; same threading rule as Signer.
class Verifier {
 public:
  Verifier(Algorithm a, Pkey key);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;
  // False for a wrong or malformed signature; never throws for bad input.
  bool verify(std::string_view message, std::string_view signature);

 private:
  Algorithm alg_;
  Pkey key_;
  EVP_PKEY_CTX* pctx_ = nullptr;
  EVP_MD_CTX* mctx_ = nullptr;
  Sha256 hash_;
};

// One-off verification.
bool verify_signature(Algorithm a, EVP_PKEY* pub, std::string_view message, std::string_view signature);

// WebCrypto gives ECDSA signatures as r ‖ s (IEEE P1363); openssl and CMS
// want DER. Converts a 64-byte P1363 signature to DER; other input is
// returned unchanged.
std::string ecdsa_p1363_to_der(std::string_view sig);

// A signature from a client: checked as given, and for ECDSA also as
// WebCrypto's r ‖ s. Returns the form that verified (DER for ECDSA), or
// nullopt if neither does.
std::optional<std::string> verify_client_signature(Algorithm a, EVP_PKEY* pub, std::string_view message,
                                                   std::string_view signature);

// The exact openssl command line that checks a signature, for READMEs and
// tests: files pub.pem, statement.json, signature.bin.
std::string openssl_verify_command(Algorithm a, const std::string& pub, const std::string& msg,
                                   const std::string& sig);

}  // namespace vellum::signing
