// The public-key directory's key checks: which public keys users may publish
// and their key ids (SHA-256 of the DER SubjectPublicKeyInfo).
#pragma once

#include <string>
#include <string_view>

namespace vellum::crypto {

struct PublicKeyInfo {
  std::string key_id;     // lowercase hex SHA-256 of the DER SPKI
  std::string type;       // "rsa", "ec-p256", "x25519", "ed25519", "secp256k1"
  int bits = 0;           // RSA modulus size; curve size otherwise
  std::string use;        // "encryption" or "signing"
  std::string algorithm;  // what the key is for: "RSA-OAEP-256", "ECDH-P256", "X25519", "ECDSA-P256-SHA256",
                          // "Ed25519", "ECDSA-secp256k1-SHA256"
  std::string pem;        // normalized PEM SPKI
};

// Parses a PEM "PUBLIC KEY" (SPKI) and checks it against the allowed set for
// `use` ("encryption" or "signing"): RSA-OAEP-256 with 2048/3072/4096 bits
// (at least min_rsa_bits), ECDH P-256, X25519; signing P-256, Ed25519,
// secp256k1. Throws std::invalid_argument with the reason (RSA below 2048 bits:
// RSA-512 was factored in 1999).
PublicKeyInfo inspect_public_key(std::string_view pem, std::string_view use, unsigned min_rsa_bits = 2048);

}  // namespace vellum::crypto
