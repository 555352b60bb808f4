// Shamir secret sharing (k of n) over GF(2^8), for splitting the root key
// among operators. A scheme, not a primitive: the field arithmetic is the
// AES field (x^8 + x^4 + x^3 + x + 1), computed without tables or
// secret-dependent branches; the polynomial coefficients come from
// RAND_bytes; the check digest is SHA-256 (OpenSSL).
//
// Share (binary, then base64 with the prefix "vellum-share-1:"):
//   "VSS1" ‖ u8 k ‖ u8 x (1..255) ‖ 16-byte set id ‖ 8-byte check ‖ y (len(secret) bytes)
// check = first 8 bytes of SHA-256("vellum.shamir.v1" ‖ set id ‖ secret): it
// tells a wrong or altered share from the right secret at combine time and
// says nothing useful about a 256-bit random secret.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vellum::crypto {

struct ShamirError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

uint8_t gf256_mul(uint8_t a, uint8_t b);
uint8_t gf256_inv(uint8_t a);  // a != 0

// n shares of which any k recover the secret (2 <= k <= n <= 255; secret 1..1024 bytes).
std::vector<std::string> shamir_split(std::string_view secret, unsigned k, unsigned n);
// Recovers the secret from at least k shares of one set. Throws ShamirError
// with the reason (malformed, mixed sets, duplicates, too few, check failed).
std::string shamir_combine(const std::vector<std::string>& shares);

}  // namespace vellum::crypto
