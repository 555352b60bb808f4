// A minimal MaxMind DB writer for tests: an IPv4 database that maps networks
// to {"country": {"iso_code": CC}}, written from the published format
// specification (MaxMind DB 2.0: a binary trie of 24-bit records, 16 zero
// bytes, the data section, then "\xab\xcd\xefMaxMind.com" and a metadata
// map). No public test database places loopback addresses in a country, and
// the tests' clients connect from 127.0.0.1.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mmdb {

// Data section encoding: a control byte holds the type (3 bits; 0 = an
// extended type in the next byte, stored minus 7) and a size below 29.
inline void control(std::string& out, int type, size_t size) {
  if (size >= 29) throw std::invalid_argument("mmdb test writer: sizes below 29 only");
  if (type <= 7) {
    out.push_back(static_cast<char>((type << 5) | static_cast<int>(size)));
  } else {
    out.push_back(static_cast<char>(size));
    out.push_back(static_cast<char>(type - 7));
  }
}
inline void str(std::string& out, const std::string& s) {
  control(out, 2, s.size());
  out += s;
}
inline void uint(std::string& out, int type, uint64_t v) {  // 5: u16, 6: u32, 9: u64
  std::string be;
  for (; v; v >>= 8) be.insert(be.begin(), static_cast<char>(v & 0xff));
  control(out, type, be.size());
  out += be;
}
inline void map(std::string& out, size_t pairs) { control(out, 7, pairs); }
inline void array(std::string& out, size_t items) { control(out, 11, items); }

// networks: {"127.0.0.0/8", "DE"}, ...
inline std::string countries(const std::vector<std::pair<std::string, std::string>>& networks) {
  // The trie: each node has two records (bit 0, bit 1); -1 = no data,
  // >= 0 a node, <= -2 the data of network (-2 - record).
  std::vector<std::array<int64_t, 2>> nodes{{-1, -1}};
  for (size_t n = 0; n < networks.size(); ++n) {
    const std::string& cidr = networks[n].first;
    const auto slash = cidr.find('/');
    in_addr a{};
    if (slash == std::string::npos || inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &a) != 1)
      throw std::invalid_argument("mmdb test writer: networks are a.b.c.d/len");
    const int len = std::stoi(cidr.substr(slash + 1));
    if (len < 1 || len > 32) throw std::invalid_argument("mmdb test writer: prefix length 1..32");
    const uint32_t bits = ntohl(a.s_addr);
    size_t node = 0;
    for (int depth = 0; depth < len; ++depth) {
      const int bit = (bits >> (31 - depth)) & 1;
      if (depth == len - 1) {
        nodes[node][bit] = -2 - static_cast<int64_t>(n);
      } else {
        if (nodes[node][bit] < 0) {
          nodes[node][bit] = static_cast<int64_t>(nodes.size());
          nodes.push_back({-1, -1});
        }
        node = static_cast<size_t>(nodes[node][bit]);
      }
    }
  }
  std::string data;
  std::vector<size_t> offsets;
  for (const auto& [cidr, cc] : networks) {
    offsets.push_back(data.size());
    map(data, 1);
    str(data, "country");
    map(data, 1);
    str(data, "iso_code");
    str(data, cc);
  }
  const uint64_t node_count = nodes.size();
  std::string out;
  for (const auto& n : nodes)
    for (int64_t rec : n) {
      // A record is a node number, node_count for "no data", or
      // node_count + 16 + the offset in the data section.
      const uint64_t v = rec >= 0    ? static_cast<uint64_t>(rec)
                         : rec == -1 ? node_count
                                     : node_count + 16 + offsets[static_cast<size_t>(-2 - rec)];
      for (int shift = 16; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
    }
  out.append(16, '\0');
  out += data;
  out += std::string("\xab\xcd\xef", 3) + "MaxMind.com";
  map(out, 9);
  str(out, "node_count");
  uint(out, 6, node_count);
  str(out, "record_size");
  uint(out, 5, 24);
  str(out, "ip_version");
  uint(out, 5, 4);
  str(out, "database_type");
  str(out, "Vellum-Test-Country");
  str(out, "languages");
  array(out, 1);
  str(out, "en");
  str(out, "binary_format_major_version");
  uint(out, 5, 2);
  str(out, "binary_format_minor_version");
  uint(out, 5, 0);
  str(out, "build_epoch");
  uint(out, 9, 1795428000);
  str(out, "description");
  map(out, 1);
  str(out, "en");
  str(out, "Vellum test countries");
  return out;
}

}  // namespace mmdb
