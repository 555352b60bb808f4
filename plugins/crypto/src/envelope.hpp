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

namespace vellum::crypto {

struct EnvelopeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The key id of a public (or private) key: lowercase hex SHA-256 of its DER SPKI.
std::string key_id_of(EVP_PKEY* key);

struct Recipient {
  EVP_PKEY* public_key;  // borrowed: RSA (>= 2048 bits), EC P-256 or X25519
};

// Returns the envelope JSON text. aad is optional associated data the
// decrypting side must present again. Throws EnvelopeError on unsupported
// recipient keys.
std::string envelope_encrypt(std::string_view plaintext, std::string_view aad,
                             const std::vector<Recipient>& to);

// Decrypts as the holder of private_key (its key id selects the entry).
// Throws EnvelopeError: malformed envelope, not a recipient, wrong key,
// tampered content or key entry.
std::string envelope_decrypt(std::string_view envelope_json, std::string_view aad, EVP_PKEY* private_key);

}  // namespace vellum::crypto
