// A minimal HTTP/1.1 client over OpenSSL (TLS with certificate and host
// verification, or plain HTTP for http:// URLs): one request per connection.
// Enough for the CLI's JSON calls; no Beast, so the client stays one small TU.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

namespace vellum::cli {

struct HttpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// url: "https://host:port" or "http://host:port" (no path). ca_file: PEM
// bundle to verify the server with (empty: the system store).
class Http {
 public:
  Http(std::string url, std::string ca_file);
  HttpResponse request(const std::string& method, const std::string& target, const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {}) const;

 private:
  std::string host_, port_, ca_file_;
  bool tls_ = true;
};

}  // namespace vellum::cli
