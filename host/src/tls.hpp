#pragma once
#include <string>

namespace vellum::host {
struct TlsFiles {
  std::string cert_file, key_file;
  std::string fingerprint_sha256;  // of the DER certificate, colon-separated hex
  bool generated = false;
};
// With cert/key configured, returns them (and the fingerprint). Otherwise
// creates (once) a self-signed P-256 development certificate for localhost
// in <data_dir>/tls/ and returns it. Throws std::runtime_error.
TlsFiles ensure_tls_files(const std::string& cert_file, const std::string& key_file,
                          const std::string& data_dir);
}  // namespace vellum::host
