// A client for an external RFC 3161 time-stamp authority over HTTP or
// HTTPS (RFC 3161 §3.4: POST application/timestamp-query, answer
// application/timestamp-reply), on OpenSSL's HTTP client and TLS. Every
// reply is checked as RFC 3161 §2.4.2 asks: status granted, the same
// imprint and nonce as the query, a token signed by a TSA certificate
// (extendedKeyUsage timeStamping) that chains to the configured CAs.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "util.hpp"

namespace vellum::signing {

// The TSA could not be reached or did not answer in time (HTTP 503 to our
// caller: try again later).
struct TsaUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The TSA answered, but not with a valid time-stamp for our query (HTTP
// 502: its answer is wrong, or we do not trust it).
struct TsaBadReply : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A TSA URL taken apart. Throws InvalidInput unless it is
// http(s)://host[:port][/path][?query] without user info or fragment, and
// (with_token) unless it is https, so a token never travels in the clear.
struct TsaUrl {
  bool tls = false;
  std::string host, port, path;
};
TsaUrl parse_tsa_url(const std::string& url, bool with_token);

struct RemoteTsaOptions {
  std::string url;                      // http://host[:port]/path or https://...
  std::vector<Cert> anchors;            // CAs the TSA's tokens must chain to (tsa_ca_file)
  std::string tls_ca_file;              // https: CAs for the server certificate; empty = the system's
  std::string bearer_token;             // sent as Authorization: Bearer (https only); empty = none
  int timeout_seconds = 10;             // the whole exchange: connect, TLS, request, reply
  int64_t max_skew_ms = 5 * 60 * 1000;  // genTime must be this close to our clock
};

class RemoteTsa {
 public:
  // Throws InvalidInput for a bad URL (parse_tsa_url), no anchors, or TLS
  // CA certificates that do not load.
  explicit RemoteTsa(RemoteTsaOptions o);
  ~RemoteTsa();
  RemoteTsa(const RemoteTsa&) = delete;
  RemoteTsa& operator=(const RemoteTsa&) = delete;

  // A checked TimeStampResp (DER) over SHA-256(data). nonce: 8+ random
  // bytes. Throws TsaUnavailable or TsaBadReply (messages name the URL and
  // the reason, never the token). Thread-safe.
  std::string stamp(std::string_view data, std::string_view nonce, int64_t now_ms) const;

  // One POST of a DER query; the DER reply. Throws as stamp does.
  std::string exchange(std::string_view query_der) const;

  const std::string& url() const { return opt_.url; }
  std::vector<X509*> anchors() const;

 private:
  RemoteTsaOptions opt_;
  TsaUrl url_;
  SSL_CTX* ssl_ctx_ = nullptr;
};

}  // namespace vellum::signing
