#include "util.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdio>
#include <ctime>

namespace vellum::signing {

std::string hex(std::string_view bytes) {
  static const char* h = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(h[c >> 4]);
    out.push_back(h[c & 15]);
  }
  return out;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string unhex(std::string_view s) {
  if (s.size() % 2) throw InvalidInput("hex string of odd length");
  std::string out(s.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);
    if (a < 0 || b < 0) throw InvalidInput("not a hex string");
    out[i] = static_cast<char>(a * 16 + b);
  }
  return out;
}

std::string b64encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string b64decode(std::string_view text) {
  if (text.size() % 4 != 0) throw InvalidInput("base64 length is not a multiple of 4");
  for (char c : text)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '/' || c == '='))
      throw InvalidInput("not standard base64");
  if (text.empty()) return {};
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) throw InvalidInput("not standard base64");
  size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  // '=' may only be trailing padding.
  if (text.substr(0, text.size() - pad).find('=') != std::string_view::npos)
    throw InvalidInput("not standard base64");
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

const EVP_MD* sha256_md() {
  // Kept for the life of the process (reachable, never freed: OpenSSL's own
  // cleanup at exit must not race a free from a static destructor).
  static const EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    if (!m) ossl_fail("EVP_MD_fetch SHA2-256");
    return m;
  }();
  return md;
}

std::string sha256(std::string_view bytes) {
  std::string out(32, '\0');
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), reinterpret_cast<unsigned char*>(out.data()), &len, sha256_md(),
                 nullptr) != 1)
    ossl_fail("SHA-256");
  return out;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) ossl_fail("EVP_MD_CTX_new");
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::digest(std::string_view in, unsigned char out[32]) {
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ctx_, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx_, in.data(), in.size()) != 1 || EVP_DigestFinal_ex(ctx_, out, &len) != 1)
    ossl_fail("SHA-256");
}

std::string sha256_hex(std::string_view bytes) { return hex(sha256(bytes)); }

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string ossl_errors() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

void ossl_fail(const std::string& what) {
  std::string e = ossl_errors();
  throw std::runtime_error(e.empty() ? what : what + ": " + e);
}

std::string rfc3339_ms(int64_t unix_ms) {
  if (unix_ms < 0) throw InvalidInput("time before 1970");
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  if (tm.tm_year + 1900 > 9999) throw InvalidInput("time after year 9999");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

Bio mem_bio(std::string_view data) {
  BIO* b = data.empty() ? BIO_new(BIO_s_mem()) : BIO_new_mem_buf(data.data(), static_cast<int>(data.size()));
  if (!b) ossl_fail("BIO_new");
  return Bio(b);
}

std::string bio_string(BIO* b) {
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  return n > 0 ? std::string(p, static_cast<size_t>(n)) : std::string();
}

std::string cert_pem(X509* c) {
  Bio b = mem_bio();
  if (PEM_write_bio_X509(b.get(), c) != 1) ossl_fail("PEM_write_bio_X509");
  return bio_string(b.get());
}

std::string cert_der(X509* c) {
  unsigned char* p = nullptr;
  int n = i2d_X509(c, &p);
  if (n <= 0) ossl_fail("i2d_X509");
  std::string out(reinterpret_cast<char*>(p), static_cast<size_t>(n));
  OPENSSL_free(p);
  return out;
}

Cert cert_from_pem(std::string_view pem) {
  Bio b = mem_bio(pem);
  X509* c = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr);
  if (!c) {
    ossl_errors();
    throw InvalidInput("not a PEM certificate");
  }
  return Cert(c);
}

std::string spki_der(EVP_PKEY* k) {
  unsigned char* p = nullptr;
  int n = i2d_PUBKEY(k, &p);
  if (n <= 0) ossl_fail("i2d_PUBKEY");
  std::string out(reinterpret_cast<char*>(p), static_cast<size_t>(n));
  OPENSSL_free(p);
  return out;
}

std::string pubkey_pem(EVP_PKEY* k) {
  Bio b = mem_bio();
  if (PEM_write_bio_PUBKEY(b.get(), k) != 1) ossl_fail("PEM_write_bio_PUBKEY");
  return bio_string(b.get());
}

Pkey pubkey_from_pem(std::string_view pem) {
  if (pem.empty()) throw InvalidInput("empty public key");
  Bio b = mem_bio(pem);
  EVP_PKEY* k = PEM_read_bio_PUBKEY(b.get(), nullptr, nullptr, nullptr);
  if (!k) {
    ossl_errors();
    throw InvalidInput("not a PEM SubjectPublicKeyInfo public key");
  }
  return Pkey(k);
}

Pkey privkey_from_pem(std::string_view pem) {
  if (pem.empty()) throw InvalidInput("empty private key");
  Bio b = mem_bio(pem);
  // An empty passphrase callback: encrypted PEM is refused instead of prompting.
  EVP_PKEY* k = PEM_read_bio_PrivateKey(
      b.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
  if (!k) {
    ossl_errors();
    throw InvalidInput("not an unencrypted PEM private key");
  }
  return Pkey(k);
}

std::string privkey_pem(EVP_PKEY* k) {
  Bio b = mem_bio();
  if (PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    ossl_fail("PEM_write_bio_PrivateKey");
  std::string out = bio_string(b.get());
  return out;
}

}  // namespace vellum::signing
