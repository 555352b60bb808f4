// Transport-neutral HTTP request/response types: the server (Beast) fills and
// sends them; the runtime and the host API never see Beast.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vellum::host {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;
  std::string path;   // percent-decoded segments are NOT applied; raw path
  std::string query;  // without '?'
  HeaderList headers;
  std::string body;
  std::string client_ip;
  std::string request_id;
  const std::string* header(std::string_view name) const;
};

struct HttpResponse {
  uint16_t status = 200;
  std::string content_type;
  HeaderList headers;
  std::string body;
};

// RFC 9457 problem details.
HttpResponse problem_response(uint16_t status, std::string_view title, std::string_view detail,
                              std::string_view request_id = {});
std::string_view reason_phrase(uint16_t status);
std::string percent_decode(std::string_view s, bool plus_is_space);
bool iequals(std::string_view a, std::string_view b);

}  // namespace vellum::host
