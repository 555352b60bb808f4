#include "doc_crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

namespace vellum::editor {
namespace {

constexpr size_t kNonce = 12, kTag = 16;
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* u(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* u(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

}  // namespace

std::string content_aad(std::string_view doc_id, uint64_t version) {
  std::string a = "vellum.editor.v1";
  a.push_back('\0');
  a += doc_id;
  a.push_back('\0');
  for (int i = 7; i >= 0; --i) a.push_back(static_cast<char>((version >> (8 * i)) & 0xff));
  return a;
}

std::string seal(std::string_view key, std::string_view doc_id, uint64_t version, std::string_view pt) {
  if (key.size() != 32) throw std::invalid_argument("document key must be 32 bytes");
  const std::string aad = content_aad(doc_id, version);
  std::string out(kNonce + pt.size() + kTag, '\0');
  if (RAND_bytes(u(out), static_cast<int>(kNonce)) != 1) throw std::runtime_error("RAND_bytes failed");
  Ctx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u(key), u(out)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, u(aad), static_cast<int>(aad.size())) != 1)
    throw std::runtime_error("AES-256-GCM init failed");
  size_t done = 0;
  while (done < pt.size()) {  // EVP lengths are int: feed large inputs in chunks
    const int n = static_cast<int>(std::min<size_t>(pt.size() - done, 1u << 30));
    if (EVP_EncryptUpdate(ctx.get(), u(out) + kNonce + done, &len, u(pt) + done, n) != 1)
      throw std::runtime_error("AES-256-GCM encrypt failed");
    done += static_cast<size_t>(len);
  }
  if (EVP_EncryptFinal_ex(ctx.get(), u(out) + kNonce + done, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTag),
                          u(out) + kNonce + pt.size()) != 1)
    throw std::runtime_error("AES-256-GCM finish failed");
  return out;
}

std::optional<std::string> open(std::string_view key, std::string_view doc_id, uint64_t version,
                                std::string_view sealed) {
  if (key.size() != 32 || sealed.size() < kNonce + kTag) return std::nullopt;
  const std::string aad = content_aad(doc_id, version);
  const size_t n = sealed.size() - kNonce - kTag;
  std::string out(n, '\0');
  std::string tag(sealed.substr(kNonce + n));
  Ctx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u(key), u(sealed)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, u(aad), static_cast<int>(aad.size())) != 1)
    return std::nullopt;
  size_t done = 0;
  while (done < n) {
    const int chunk = static_cast<int>(std::min<size_t>(n - done, 1u << 30));
    if (EVP_DecryptUpdate(ctx.get(), u(out) + done, &len, u(sealed) + kNonce + done, chunk) != 1)
      return std::nullopt;
    done += static_cast<size_t>(len);
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTag), u(tag)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), u(out) + done, &len) != 1) {
    wipe(out);
    return std::nullopt;
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

std::string b64encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(u(out), u(data), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> b64decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(u(out), u(text), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

void wipe(std::string& s) noexcept {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

}  // namespace vellum::editor
