#include "tsa_client.hpp"

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/httperr.h>
#include <openssl/x509v3.h>

#include <cstdlib>

#include "pki.hpp"

namespace vellum::signing {

namespace {

constexpr size_t kMaxReplyBytes = 64 * 1024;  // a reply with a certificate chain is a few KiB

struct TlsTarget {
  SSL_CTX* ctx;
  std::string host;
  bool host_is_ip;
};

// OpenSSL's HTTP client calls this after connecting (to push TLS on top of
// the socket when the URL is https) and before closing (to pop it again).
BIO* tls_layer(BIO* bio, void* arg, int connect, int detail) {
  const auto* t = static_cast<const TlsTarget*>(arg);
  if (connect) {
    if (!detail) return bio;  // plain HTTP
    SSL* ssl = SSL_new(t->ctx);
    if (!ssl) return nullptr;
    X509_VERIFY_PARAM* vp = SSL_get0_param(ssl);
    const bool named = t->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, t->host.c_str()) == 1
                                     : X509_VERIFY_PARAM_set1_host(vp, t->host.c_str(), 0) == 1 &&
                                           SSL_set_tlsext_host_name(ssl, t->host.c_str()) == 1;
    BIO* sbio = named ? BIO_new(BIO_f_ssl()) : nullptr;
    if (!sbio) {
      SSL_free(ssl);
      return nullptr;
    }
    SSL_set_connect_state(ssl);
    BIO_set_ssl(sbio, ssl, BIO_CLOSE);
    return BIO_push(sbio, bio);
  }
  if (BIO_method_type(bio) == BIO_TYPE_SSL) {
    BIO_ssl_shutdown(bio);
    BIO* socket = BIO_pop(bio);
    BIO_free(bio);
    return socket;
  }
  return bio;
}

bool is_ip_literal(const std::string& host) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
  ERR_clear_error();
  ASN1_OCTET_STRING_free(ip);
  return ip != nullptr;
}

bool http_answered(unsigned long e) {
  if (ERR_GET_LIB(e) != ERR_LIB_HTTP) return false;
  switch (ERR_GET_REASON(e)) {
    case HTTP_R_RECEIVED_ERROR:
    case HTTP_R_UNEXPECTED_CONTENT_TYPE:
    case HTTP_R_MISSING_CONTENT_TYPE:
    case HTTP_R_MISSING_ASN1_ENCODING:
    case HTTP_R_ERROR_PARSING_ASN1_LENGTH:
    case HTTP_R_ASN1_LEN_EXCEEDS_MAX_RESP_LEN:
    case HTTP_R_MAX_RESP_LEN_EXCEEDED:
    case HTTP_R_INCONSISTENT_CONTENT_LENGTH:
    case HTTP_R_ERROR_PARSING_CONTENT_LENGTH:
    case HTTP_R_RESPONSE_PARSE_ERROR:
    case HTTP_R_HEADER_PARSE_ERROR:
    case HTTP_R_RESPONSE_LINE_TOO_LONG:
    case HTTP_R_RECEIVED_WRONG_HTTP_VERSION:
    case HTTP_R_STATUS_CODE_UNSUPPORTED:
    case HTTP_R_MISSING_REDIRECT_LOCATION:
    case HTTP_R_REDIRECTION_NOT_ENABLED:
      return true;
    default:
      return false;
  }
}

// The queued errors with their detail text (e.g. "code=404" or the
// server's address); whether one says the server answered (badly) rather
// than not at all, and whether TLS failed (e.g. an untrusted certificate).
// Clears the queue.
std::string http_errors(bool* answered, bool* tls_failed) {
  std::string out;
  *answered = *tls_failed = false;
  const char* data = nullptr;
  int flags = 0;
  char buf[256];
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    *answered = *answered || http_answered(e);
    *tls_failed = *tls_failed || ERR_GET_LIB(e) == ERR_LIB_SSL;
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
    if ((flags & ERR_TXT_STRING) && data && *data) {
      out += " (";
      out += data;
      out += ")";
    }
  }
  return out;
}

}  // namespace

TsaUrl parse_tsa_url(const std::string& url, bool with_token) {
  int ssl = 0;
  char *user = nullptr, *host = nullptr, *port = nullptr, *path = nullptr, *query = nullptr, *frag = nullptr;
  const bool parsed =
      OSSL_HTTP_parse_url(url.c_str(), &ssl, &user, &host, &port, nullptr, &path, &query, &frag) == 1;
  const bool has_user = user && *user, has_frag = frag && *frag;
  TsaUrl u;
  if (parsed) {
    u.tls = ssl != 0;
    u.host = host;
    u.port = port;
    u.path = path;
    if (query && *query) u.path += std::string("?") + query;
  }
  OPENSSL_free(user);
  OPENSSL_free(host);
  OPENSSL_free(port);
  OPENSSL_free(path);
  OPENSSL_free(query);
  OPENSSL_free(frag);
  ossl_errors();
  const bool scheme_ok = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
  if (!parsed || !scheme_ok || u.host.empty())
    throw InvalidInput("'tsa_url' must be an http:// or https:// URL with a host");
  if (has_user) throw InvalidInput("'tsa_url' must not carry credentials (use 'tsa_auth_token')");
  if (has_frag) throw InvalidInput("'tsa_url' must not have a #fragment");
  if (with_token && !u.tls)
    throw InvalidInput("'tsa_auth_token' needs an https:// 'tsa_url' (it would travel in the clear)");
  return u;
}

RemoteTsa::RemoteTsa(RemoteTsaOptions o)
    : opt_(std::move(o)), url_(parse_tsa_url(opt_.url, !opt_.bearer_token.empty())) {
  if (opt_.anchors.empty()) throw InvalidInput("an external TSA needs 'tsa_ca_file'");
  if (opt_.timeout_seconds < 1) throw InvalidInput("the TSA timeout must be at least 1 second");
  if (url_.tls) {
    ssl_ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ssl_ctx_ || SSL_CTX_set_min_proto_version(ssl_ctx_, TLS1_2_VERSION) != 1)
      ossl_fail("SSL_CTX for the TSA client");
    SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_PEER, nullptr);
    const bool loaded = opt_.tls_ca_file.empty()
                            ? SSL_CTX_set_default_verify_paths(ssl_ctx_) == 1
                            : SSL_CTX_load_verify_locations(ssl_ctx_, opt_.tls_ca_file.c_str(), nullptr) == 1;
    if (!loaded) {
      std::string e = ossl_errors();
      SSL_CTX_free(ssl_ctx_);
      ssl_ctx_ = nullptr;
      throw InvalidInput("cannot load the TLS CA certificates for the TSA ('tsa_tls_ca_file'): " + e);
    }
  }
}

RemoteTsa::~RemoteTsa() { SSL_CTX_free(ssl_ctx_); }

std::vector<X509*> RemoteTsa::anchors() const {
  std::vector<X509*> out;
  for (const auto& c : opt_.anchors) out.push_back(c.get());
  return out;
}

std::string RemoteTsa::exchange(std::string_view query_der) const {
  STACK_OF(CONF_VALUE)* headers = nullptr;
  if (!opt_.bearer_token.empty()) {
    const std::string value = "Bearer " + opt_.bearer_token;
    if (X509V3_add_value("Authorization", value.c_str(), &headers) != 1) ossl_fail("HTTP header");
  }
  TlsTarget target{ssl_ctx_, url_.host, is_ip_literal(url_.host)};
  Bio req = mem_bio(query_der);
  ERR_clear_error();
  // proxy "" = no proxy: the environment's http(s)_proxy would otherwise
  // silently route time-stamp requests elsewhere.
  BIO* reply = OSSL_HTTP_transfer(nullptr, url_.host.c_str(), url_.port.c_str(), url_.path.c_str(),
                                  url_.tls ? 1 : 0, "", nullptr, nullptr, nullptr, tls_layer, &target, 0,
                                  headers, "application/timestamp-query", req.get(),
                                  "application/timestamp-reply", 1, kMaxReplyBytes, opt_.timeout_seconds, 0);
  sk_CONF_VALUE_pop_free(headers, X509V3_conf_free);
  if (!reply) {
    bool answered = false, tls_failed = false;
    std::string why = http_errors(&answered, &tls_failed);
    if (why.empty()) why = "no reply";
    if (answered) throw TsaBadReply("the time-stamp authority at " + opt_.url + " answered badly: " + why);
    if (tls_failed)
      throw TsaUnavailable("TLS with the time-stamp authority at " + opt_.url +
                           " failed (is 'tsa_tls_ca_file' right?): " + why);
    throw TsaUnavailable("the time-stamp authority at " + opt_.url + " is unreachable: " + why);
  }
  Bio owned(reply);
  ossl_errors();
  return bio_string(owned.get());
}

std::string RemoteTsa::stamp(std::string_view data, std::string_view nonce, int64_t now_ms) const {
  const std::string query = make_timestamp_query(data, nonce);
  std::string reply = exchange(query);
  TimestampCheck c = check_timestamp_reply(reply, query, anchors());
  if (!c.ok)
    throw TsaBadReply("the time-stamp authority at " + opt_.url + " sent no valid token: " + c.error);
  if (std::llabs(c.gen_time_ms - now_ms) > opt_.max_skew_ms)
    throw TsaBadReply("the time-stamp authority at " + opt_.url + " stamped " + rfc3339_ms(c.gen_time_ms) +
                      ", more than " + std::to_string(opt_.max_skew_ms / 1000) + " s from our clock (" +
                      rfc3339_ms(now_ms) + ")");
  return reply;
}

}  // namespace vellum::signing
