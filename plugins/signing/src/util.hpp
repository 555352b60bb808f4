// Small helpers shared by the signing core: encodings, digests, OpenSSL
// error text and RAII deleters. Everything cryptographic is OpenSSL 3.
#pragma once

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/ts.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vellum::signing {

// Bad input from a caller (a 4xx); the message is safe to show.
struct InvalidInput : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Bio = std::unique_ptr<BIO, BioFree>;

std::string hex(std::string_view bytes);
std::string unhex(std::string_view hex);  // throws InvalidInput
std::string b64encode(std::string_view bytes);
std::string b64decode(std::string_view text);  // throws InvalidInput
std::string sha256(std::string_view bytes);    // raw 32 bytes

// OpenSSL's SHA-256, fetched once per process: SHA256() and EVP_sha256()
// look the implementation up again on every call in OpenSSL 3 (~0.4 us,
// 2-4 % of a signature verification).
const EVP_MD* sha256_md();

// A reusable SHA-256 context for hot paths (Signer, Verifier); one thread
// at a time.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void digest(std::string_view in, unsigned char out[32]);

 private:
  EVP_MD_CTX* ctx_;
};
std::string sha256_hex(std::string_view bytes);
bool is_sha256_hex(std::string_view s);  // 64 lower-case hex digits

// The queued OpenSSL errors as text (and clears the queue).
std::string ossl_errors();
[[noreturn]] void ossl_fail(const std::string& what);

// RFC 3339 UTC with milliseconds: 2026-11-22T03:04:05.678Z.
std::string rfc3339_ms(int64_t unix_ms);

Bio mem_bio(std::string_view data = {});
std::string bio_string(BIO* b);

std::string cert_pem(X509* c);
std::string cert_der(X509* c);
Cert cert_from_pem(std::string_view pem);  // throws InvalidInput
std::string spki_der(EVP_PKEY* k);
std::string pubkey_pem(EVP_PKEY* k);
Pkey pubkey_from_pem(std::string_view pem);   // throws InvalidInput
Pkey privkey_from_pem(std::string_view pem);  // throws InvalidInput
std::string privkey_pem(EVP_PKEY* k);         // unencrypted PKCS#8; callers store it behind the barrier

}  // namespace vellum::signing
