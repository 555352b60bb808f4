// Multi-recipient envelopes (format: docs/formats/envelope.md): content
// encrypted once with AES-256-GCM under a random content key; the content key
// wrapped per recipient with RSA-OAEP-256, or ECDH (P-256 or X25519) +
// HKDF-SHA256 + AES-256-GCM. Recipient entries are found by key id (SHA-256 of
// the recipient's DER SPKI).
#pragma once

#include <openssl/evp.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "aead.hpp"

namespace vellum::crypto {

struct EnvelopeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The key id of a public (or private) key: lowercase hex SHA-256 of its DER SPKI.
std::string key_id_of(EVP_PKEY* key);

struct Recipient {
  EVP_PKEY* public_key;  // borrowed: RSA (>= 2048 bits), EC P-256 or X25519
};

// A symmetric recipient: one version of a key chain (a team or document key,
// see keychain.hpp). kid = "chain:<chain id>:<version>"; algorithm
// "KEYCHAIN+A256GCM": the content key is wrapped with AES-256-GCM under `key`.
struct ChainRecipient {
  std::string kid;
  Key key{};
};
constexpr const char* kChainWrapAlg = "KEYCHAIN+A256GCM";
std::string chain_kid(std::string_view chain_id, uint32_t version);

// Returns the envelope JSON text. aad is optional associated data the
// decrypting side must present again. Throws EnvelopeError on unsupported
// recipient keys.
std::string envelope_encrypt(std::string_view plaintext, std::string_view aad,
                             const std::vector<Recipient>& to,
                             const std::vector<ChainRecipient>& chains = {});

// Decrypts as the holder of private_key (its key id selects the entry).
// Throws EnvelopeError: malformed envelope, not a recipient, wrong key,
// tampered content or key entry.
std::string envelope_decrypt(std::string_view envelope_json, std::string_view aad, EVP_PKEY* private_key);
// Decrypts with a key-chain version (the entry whose kid is key.kid).
std::string envelope_decrypt(std::string_view envelope_json, std::string_view aad, const ChainRecipient& key);

// What a server can check without any key: the envelope parses, names a
// known version and known algorithms, every field has its type, base64 and
// size. Returns the recipient entries. Throws EnvelopeError with the reason.
struct EnvelopeEntry {
  std::string kid, alg;
};
std::vector<EnvelopeEntry> envelope_inspect(std::string_view envelope_json);

}  // namespace vellum::crypto
