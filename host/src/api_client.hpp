// A small HTTPS client for vellumd subcommands that ask a running server
// (explain). Plain OpenSSL BIOs, not Beast: one request, Connection: close.
#pragma once

#include <string>
#include <vector>

namespace vellum::host {

struct ApiResponse {
  int status = 0;
  std::string body;
};

struct ApiTarget {
  std::string url;      // https://host:port or http://127.0.0.1:port
  std::string ca_file;  // trust anchors; empty = the system's
  std::string token;    // bearer token, never from argv
};

// Throws std::runtime_error on connection, TLS or protocol failures.
ApiResponse api_request(const ApiTarget& t, const std::string& method, const std::string& path_and_query);

// `vellumd explain --url URL --action A --resource R [--user ID] [--owner ID] [--ca FILE]`
// with the token in VELLUM_TOKEN. Prints the PDP's explanation; exit 0 when
// permitted, 3 when denied, 1 on errors.
int run_explain_command(const std::vector<std::string>& args);

}  // namespace vellum::host
