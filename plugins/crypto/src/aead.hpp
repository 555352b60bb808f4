// AES-256-GCM and base64 through OpenSSL 3 EVP. No host dependency: the
// plugin, its unit tests and the benchmarks all link this.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vellum::crypto {

using Key = std::array<uint8_t, 32>;
constexpr size_t kNonceSize = 12;  // 96-bit GCM nonce
constexpr size_t kTagSize = 16;    // 128-bit GCM tag

// A failure of a cryptographic operation (bad tag, wrong input); never
// carries plaintext or key bytes in its message.
struct CryptoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Random bytes from OpenSSL's CSPRNG (RAND_bytes). Throws CryptoError.
void random_bytes(uint8_t* out, size_t n);
Key random_key();

// Writes ciphertext ‖ tag (plaintext.size() + 16 bytes) to out, which must
// not overlap the plaintext. Throws CryptoError on an OpenSSL failure.
void gcm_seal_to(const Key& key, const uint8_t* nonce, std::string_view aad, std::string_view plaintext,
                 uint8_t* out);
// Writes the plaintext (ct_and_tag.size() - 16 bytes) to out. Returns false
// on a bad tag or short input (out then holds no plaintext: it is wiped).
bool gcm_open_to(const Key& key, const uint8_t* nonce, std::string_view aad, std::string_view ct_and_tag,
                 uint8_t* out);

// Appends nonce-less GCM output to out: ciphertext ‖ 16-byte tag.
// nonce must be 12 bytes. Throws CryptoError on an OpenSSL failure.
void gcm_seal(const Key& key, const uint8_t* nonce, std::string_view aad, std::string_view plaintext,
              std::string& out);
// Opens ciphertext ‖ tag into out (replacing its content). Returns false on a
// bad tag or short input; out is then cleared.
bool gcm_open(const Key& key, const uint8_t* nonce, std::string_view aad, std::string_view ct_and_tag,
              std::string& out);

// Standard base64 (RFC 4648 §4) with padding. decode is strict: no
// whitespace, length a multiple of 4, only valid characters and padding.
std::string b64encode(std::string_view bytes);
std::optional<std::string> b64decode(std::string_view text);

// Overwrites memory so keys do not linger (OPENSSL_cleanse).
void cleanse(void* p, size_t n);

}  // namespace vellum::crypto
