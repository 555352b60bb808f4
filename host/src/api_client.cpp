#include "api_client.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace vellum::host {
namespace {

std::string ssl_error(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = {};
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  return e ? what + ": " + buf : what;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace

ApiResponse api_request(const ApiTarget& t, const std::string& method, const std::string& path_and_query) {
  bool tls;
  std::string rest;
  if (t.url.rfind("https://", 0) == 0) {
    tls = true;
    rest = t.url.substr(8);
  } else if (t.url.rfind("http://", 0) == 0) {
    tls = false;
    rest = t.url.substr(7);
  } else {
    throw std::invalid_argument("--url must start with https:// or http://");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) throw std::invalid_argument("--url takes no path");
  std::string host = rest.substr(0, rest.rfind(':'));
  if (rest.find(':') == std::string::npos) rest += tls ? ":443" : ":80";
  if (!tls && host != "127.0.0.1" && host != "localhost" && host != "[::1]")
    throw std::invalid_argument("plain http:// only to a loopback address (the token would travel in clear)");

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(nullptr, SSL_CTX_free);
  std::unique_ptr<BIO, decltype(&BIO_free_all)> bio(nullptr, BIO_free_all);
  if (tls) {
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw std::runtime_error(ssl_error("TLS setup"));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    int ok = t.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                               : SSL_CTX_load_verify_locations(ctx.get(), t.ca_file.c_str(), nullptr);
    if (ok != 1) throw std::runtime_error(ssl_error("cannot load trust anchors"));
    bio.reset(BIO_new_ssl_connect(ctx.get()));
    SSL* ssl = nullptr;
    BIO_get_ssl(bio.get(), &ssl);
    bool ip_literal = host.find_first_not_of("0123456789.") == std::string::npos || host.front() == '[';
    if (!ip_literal) SSL_set_tlsext_host_name(ssl, host.c_str());  // SNI carries names, not addresses
    std::string name = host.front() == '[' ? host.substr(1, host.size() - 2) : host;
    SSL_set1_host(ssl, name.c_str());  // the certificate must name the host we dialled
  } else {
    bio.reset(BIO_new(BIO_s_connect()));
  }
  if (!bio) throw std::runtime_error(ssl_error("connection setup"));
  BIO_set_conn_hostname(bio.get(), rest.c_str());
  if (BIO_do_connect(bio.get()) != 1) throw std::runtime_error(ssl_error("cannot connect to " + t.url));
  if (tls && BIO_do_handshake(bio.get()) != 1) throw std::runtime_error(ssl_error("TLS handshake failed"));

  std::string req = method + " " + path_and_query + " HTTP/1.1\r\nHost: " + host +
                    "\r\nAccept: application/json\r\nConnection: close\r\n";
  if (!t.token.empty()) req += "Authorization: Bearer " + t.token + "\r\n";
  req += "\r\n";
  if (BIO_write(bio.get(), req.data(), static_cast<int>(req.size())) != static_cast<int>(req.size()))
    throw std::runtime_error(ssl_error("write failed"));
  std::string raw;
  char buf[16384];
  for (;;) {
    int n = BIO_read(bio.get(), buf, sizeof buf);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > (64u << 20)) throw std::runtime_error("response larger than 64 MiB");
  }
  auto head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || raw.size() < 12)
    throw std::runtime_error("not an HTTP response");
  ApiResponse r;
  r.status = std::atoi(raw.c_str() + 9);
  std::string head = raw.substr(0, head_end);
  r.body = raw.substr(head_end + 4);
  // The server answers Connection: close with Content-Length or chunked.
  std::string lower = head;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    std::string body, in = r.body;
    size_t at = 0;
    for (;;) {
      size_t eol = in.find("\r\n", at);
      if (eol == std::string::npos) throw std::runtime_error("bad chunked body");
      size_t len = std::stoul(in.substr(at, eol - at), nullptr, 16);
      if (len == 0) break;
      body += in.substr(eol + 2, len);
      at = eol + 2 + len + 2;
    }
    r.body = std::move(body);
  }
  return r;
}

int run_explain_command(const std::vector<std::string>& args) {
  ApiTarget t;
  t.url = "https://127.0.0.1:8443";
  std::string action, resource, user, owner;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(args[i] + " needs a value");
      return args[++i];
    };
    const std::string& k = args[i];
    if (k == "--url")
      t.url = value();
    else if (k == "--ca")
      t.ca_file = value();
    else if (k == "--action")
      action = value();
    else if (k == "--resource")
      resource = value();
    else if (k == "--user")
      user = value();
    else if (k == "--owner")
      owner = value();
    else
      throw std::invalid_argument("unknown option " + k);
  }
  if (action.empty() || resource.empty())
    throw std::invalid_argument("explain needs --action and --resource");
  const char* token = std::getenv("VELLUM_TOKEN");
  if (!token || !*token)
    throw std::invalid_argument("set VELLUM_TOKEN to a session or API token (never on argv)");
  t.token = token;
  std::string q = "/v1/sharing/explain?action=" + url_encode(action) + "&resource=" + url_encode(resource);
  if (!user.empty()) q += "&user=" + url_encode(user);
  if (!owner.empty()) q += "&owner=" + url_encode(owner);
  ApiResponse r = api_request(t, "GET", q);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::cout << (j.is_discarded() ? r.body : j.dump(2)) << "\n";
  if (r.status / 100 != 2) {
    std::cerr << "vellumd explain: the server answered " << r.status << "\n";
    return 1;
  }
  bool allowed = j.is_object() && (j.value("allowed", false) || j.value("decision", "") == "permit");
  return allowed ? 0 : 3;
}

}  // namespace vellum::host
