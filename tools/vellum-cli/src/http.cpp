#include "http.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace vellum::cli {
namespace {

std::string ssl_error(const std::string& what) {
  char buf[256] = {};
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return what + ": " + buf;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_ip(const std::string& h) { return h.find_first_not_of("0123456789.:") == std::string::npos; }

// Reads everything until the peer closes (we send Connection: close).
std::string read_all(BIO* b) {
  std::string out;
  char buf[16384];
  for (;;) {
    const int n = BIO_read(b, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (BIO_should_retry(b)) continue;
    break;
  }
  return out;
}

std::string dechunk(const std::string& s) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    const size_t eol = s.find("\r\n", pos);
    if (eol == std::string::npos) throw HttpError("malformed chunked response");
    const size_t n = std::stoul(s.substr(pos, eol - pos), nullptr, 16);
    if (n == 0) return out;
    if (eol + 2 + n > s.size()) throw HttpError("truncated chunked response");
    out.append(s, eol + 2, n);
    pos = eol + 2 + n + 2;
  }
}

}  // namespace

Http::Http(std::string url, std::string ca_file) : ca_file_(std::move(ca_file)) {
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    tls_ = false;
  } else {
    throw HttpError("the server URL must start with https:// or http://");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    host_ = rest;
    port_ = tls_ ? "443" : "80";
  } else {
    host_ = rest.substr(0, colon);
    port_ = rest.substr(colon + 1);
  }
  if (host_.empty()) throw HttpError("the server URL has no host");
}

HttpResponse Http::request(const std::string& method, const std::string& target, const std::string& body,
                           const std::map<std::string, std::string>& headers) const {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(nullptr, SSL_CTX_free);
  BIO* raw = nullptr;
  const std::string hostport = host_ + ":" + port_;
  if (tls_) {
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw HttpError(ssl_error("TLS setup failed"));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (ca_file_.empty() ? SSL_CTX_set_default_verify_paths(ctx.get()) != 1
                         : SSL_CTX_load_verify_locations(ctx.get(), ca_file_.c_str(), nullptr) != 1)
      throw HttpError(ssl_error("cannot load the CA certificates"));
    raw = BIO_new_ssl_connect(ctx.get());
    SSL* ssl = nullptr;
    BIO_get_ssl(raw, &ssl);
    if (!ssl) throw HttpError("TLS setup failed");
    if (is_ip(host_)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host_.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, host_.c_str());
      SSL_set1_host(ssl, host_.c_str());
    }
    BIO_set_conn_hostname(raw, hostport.c_str());
  } else {
    raw = BIO_new_connect(hostport.c_str());
  }
  std::unique_ptr<BIO, decltype(&BIO_free_all)> bio(raw, BIO_free_all);
  if (!bio || BIO_do_connect(bio.get()) != 1) throw HttpError(ssl_error("cannot connect to " + hostport));
  if (tls_ && BIO_do_handshake(bio.get()) != 1) throw HttpError(ssl_error("TLS handshake with " + hostport));

  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + hostport + "\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req += "Content-Length: ";
    req += std::to_string(body.size());
    req += "\r\n";
  }
  req += "\r\n";
  req += body;
  size_t sent = 0;
  while (sent < req.size()) {
    const int n = BIO_write(bio.get(), req.data() + sent,
                            static_cast<int>(std::min<size_t>(req.size() - sent, 1 << 20)));
    if (n <= 0) {
      if (BIO_should_retry(bio.get())) continue;
      throw HttpError(ssl_error("sending the request failed"));
    }
    sent += static_cast<size_t>(n);
  }
  const std::string resp = read_all(bio.get());
  const auto head_end = resp.find("\r\n\r\n");
  if (head_end == std::string::npos || resp.compare(0, 5, "HTTP/") != 0)
    throw HttpError("malformed HTTP response");
  HttpResponse r;
  r.status = std::atoi(resp.c_str() + resp.find(' ') + 1);
  size_t pos = resp.find("\r\n") + 2;
  while (pos < head_end) {
    const size_t eol = resp.find("\r\n", pos);
    const std::string line = resp.substr(pos, eol - pos);
    const auto c = line.find(':');
    if (c != std::string::npos) {
      std::string v = line.substr(c + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      r.headers[lower(line.substr(0, c))] = v;
    }
    pos = eol + 2;
  }
  r.body = resp.substr(head_end + 4);
  if (lower(r.headers["transfer-encoding"]).find("chunked") != std::string::npos) r.body = dechunk(r.body);
  return r;
}

}  // namespace vellum::cli
