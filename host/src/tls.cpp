#include "tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace fs = std::filesystem;

namespace vellum::host {
namespace {
template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("TLS: ") + what);
}

std::string fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  check(X509_digest(cert, EVP_sha256(), md, &n) == 1, "cannot hash the certificate");
  std::string out;
  char b[4];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, i ? ":%02X" : "%02X", md[i]);
    out += b;
  }
  return out;
}

Cert read_cert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("TLS: cannot read certificate " + path);
  Cert c(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!c) throw std::runtime_error("TLS: " + path + " is not a PEM certificate");
  return c;
}

void add_ext(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "cannot build a certificate extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

void generate(const fs::path& cert_path, const fs::path& key_path) {
  PKey key(EVP_EC_gen("P-256"));
  check(key != nullptr, "cannot generate a P-256 key");
  Cert cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  FILE* r = std::fopen("/dev/urandom", "rb");
  check(r && std::fread(serial, 1, sizeof serial, r) == sizeof serial, "no randomness for the serial");
  std::fclose(r);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 365);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Vellum development"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  add_ext(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
  add_ext(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), NID_key_usage, "critical,digitalSignature");
  add_ext(cert.get(), NID_ext_key_usage, "serverAuth");
  check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "cannot sign the certificate");

  // The key is written 0600 before any byte of it exists on disk.
  fs::path tmp_key = key_path.string() + ".tmp";
  int old = umask(077);
  FILE* kf = std::fopen(tmp_key.c_str(), "wb");
  umask(old);
  check(kf != nullptr, "cannot write the key file");
  bool ok = PEM_write_PrivateKey(kf, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  ok = (std::fflush(kf) == 0) && ok && fsync(fileno(kf)) == 0;
  std::fclose(kf);
  check(ok, "cannot write the key file");
  fs::path tmp_cert = cert_path.string() + ".tmp";
  FILE* cf = std::fopen(tmp_cert.c_str(), "wb");
  check(cf != nullptr, "cannot write the certificate");
  ok = PEM_write_X509(cf, cert.get()) == 1;
  ok = (std::fflush(cf) == 0) && ok && fsync(fileno(cf)) == 0;
  std::fclose(cf);
  check(ok, "cannot write the certificate");
  fs::rename(tmp_key, key_path);
  fs::rename(tmp_cert, cert_path);
}
}  // namespace

TlsFiles ensure_tls_files(const std::string& cert_file, const std::string& key_file,
                          const std::string& data_dir) {
  TlsFiles t;
  if (!cert_file.empty()) {
    t.cert_file = cert_file;
    t.key_file = key_file;
  } else {
    fs::path dir = fs::path(data_dir) / "tls";
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
    t.cert_file = (dir / "dev-cert.pem").string();
    t.key_file = (dir / "dev-key.pem").string();
    if (!fs::exists(t.cert_file) || !fs::exists(t.key_file)) {
      generate(t.cert_file, t.key_file);
      t.generated = true;
    }
  }
  t.fingerprint_sha256 = fingerprint(read_cert(t.cert_file).get());
  return t;
}

}  // namespace vellum::host
