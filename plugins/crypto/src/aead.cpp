#include "aead.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

namespace vellum::crypto {
namespace {

// Fetched once: an explicit fetch avoids the implicit per-call lookup.
const EVP_CIPHER* aes_256_gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (!cipher) throw CryptoError("AES-256-GCM is not available from OpenSSL");
  return cipher;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

Ctx new_ctx() {
  Ctx c(EVP_CIPHER_CTX_new());
  if (!c) throw CryptoError("EVP_CIPHER_CTX_new failed");
  return c;
}

// OpenSSL takes int lengths: feed large inputs in chunks.
constexpr size_t kChunk = size_t{1} << 30;

}  // namespace

void random_bytes(uint8_t* out, size_t n) {
  while (n > 0) {
    const size_t step = n > kChunk ? kChunk : n;
    if (RAND_bytes(out, static_cast<int>(step)) != 1) throw CryptoError("RAND_bytes failed");
    out += step;
    n -= step;
  }
}

Key random_key() {
  Key k;
  random_bytes(k.data(), k.size());
  return k;
}

void gcm_seal_to(const Key& key, const uint8_t* nonce, std::string_view aad, std::string_view plaintext,
                 uint8_t* dst) {
  Ctx ctx = new_ctx();
  if (EVP_EncryptInit_ex2(ctx.get(), aes_256_gcm(), key.data(), nonce, nullptr) != 1)
    throw CryptoError("AES-256-GCM init failed");
  int n = 0;
  for (size_t off = 0; off < aad.size(); off += kChunk) {
    const size_t step = std::min(kChunk, aad.size() - off);
    if (EVP_EncryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const uint8_t*>(aad.data() + off),
                          static_cast<int>(step)) != 1)
      throw CryptoError("AES-256-GCM AAD failed");
  }
  size_t written = 0;
  for (size_t off = 0; off < plaintext.size(); off += kChunk) {
    const size_t step = std::min(kChunk, plaintext.size() - off);
    if (EVP_EncryptUpdate(ctx.get(), dst + written, &n,
                          reinterpret_cast<const uint8_t*>(plaintext.data() + off),
                          static_cast<int>(step)) != 1)
      throw CryptoError("AES-256-GCM encryption failed");
    written += static_cast<size_t>(n);
  }
  if (EVP_EncryptFinal_ex(ctx.get(), dst + written, &n) != 1) throw CryptoError("AES-256-GCM final failed");
  written += static_cast<size_t>(n);
  if (written != plaintext.size()) throw CryptoError("AES-256-GCM produced an unexpected length");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), dst + written) != 1)
    throw CryptoError("AES-256-GCM tag failed");
}

bool gcm_open_to(const Key& key, const uint8_t* nonce, std::string_view aad, std::string_view ct_and_tag,
                 uint8_t* dst) {
  if (ct_and_tag.size() < kTagSize) return false;
  const size_t ct_size = ct_and_tag.size() - kTagSize;
  Ctx ctx = new_ctx();
  if (EVP_DecryptInit_ex2(ctx.get(), aes_256_gcm(), key.data(), nonce, nullptr) != 1)
    throw CryptoError("AES-256-GCM init failed");
  int n = 0;
  for (size_t off = 0; off < aad.size(); off += kChunk) {
    const size_t step = std::min(kChunk, aad.size() - off);
    if (EVP_DecryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const uint8_t*>(aad.data() + off),
                          static_cast<int>(step)) != 1)
      return false;
  }
  size_t written = 0;
  for (size_t off = 0; off < ct_size; off += kChunk) {
    const size_t step = std::min(kChunk, ct_size - off);
    if (EVP_DecryptUpdate(ctx.get(), dst + written, &n,
                          reinterpret_cast<const uint8_t*>(ct_and_tag.data() + off),
                          static_cast<int>(step)) != 1) {
      cleanse(dst, ct_size);
      return false;
    }
    written += static_cast<size_t>(n);
  }
  std::array<uint8_t, kTagSize> tag;
  std::memcpy(tag.data(), ct_and_tag.data() + ct_size, kTagSize);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag.data()) != 1)
    throw CryptoError("AES-256-GCM tag failed");
  if (EVP_DecryptFinal_ex(ctx.get(), dst + written, &n) != 1) {  // tag mismatch: wipe the unverified output
    cleanse(dst, ct_size);
    return false;
  }
  return true;
}

void gcm_seal(const Key& key, const uint8_t* nonce, std::string_view aad, std::string_view plaintext,
              std::string& out) {
  const size_t start = out.size();
  out.resize(start + plaintext.size() + kTagSize);
  gcm_seal_to(key, nonce, aad, plaintext, reinterpret_cast<uint8_t*>(out.data() + start));
}

bool gcm_open(const Key& key, const uint8_t* nonce, std::string_view aad, std::string_view ct_and_tag,
              std::string& out) {
  out.clear();
  if (ct_and_tag.size() < kTagSize) return false;
  out.resize(ct_and_tag.size() - kTagSize);
  if (!gcm_open_to(key, nonce, aad, ct_and_tag, reinterpret_cast<uint8_t*>(out.data()))) {
    out.clear();
    return false;
  }
  return true;
}

std::string b64encode(std::string_view bytes) {
  std::string out;
  out.resize(4 * ((bytes.size() + 2) / 3) + 1);
  // EVP_EncodeBlock takes an int length: encode in chunks that are multiples of 3.
  constexpr size_t kStep = 3 * (size_t{1} << 28);
  size_t w = 0;
  for (size_t off = 0; off < bytes.size(); off += kStep) {
    const size_t step = std::min(kStep, bytes.size() - off);
    w += static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<uint8_t*>(out.data() + w),
                                             reinterpret_cast<const uint8_t*>(bytes.data() + off),
                                             static_cast<int>(step)));
  }
  out.resize(w);
  return out;
}

std::optional<std::string> b64decode(std::string_view text) {
  if (text.size() % 4 != 0 || text.size() > size_t{INT_MAX}) return std::nullopt;
  if (text.empty()) return std::string();
  size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  for (size_t i = 0; i < text.size() - pad; ++i) {
    const char c = text[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<uint8_t*>(out.data()),
                                reinterpret_cast<const uint8_t*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);  // EVP_DecodeBlock counts padding as zero bytes
  return out;
}

void cleanse(void* p, size_t n) {
  if (p && n) OPENSSL_cleanse(p, n);
}

}  // namespace vellum::crypto
