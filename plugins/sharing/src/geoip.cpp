#include "geoip.hpp"

#include <maxminddb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cctype>
#include <cstring>
#include <stdexcept>

namespace vellum::sharing {

namespace {

class MaxMindCountries final : public CountryLookup {
 public:
  explicit MaxMindCountries(const std::string& path) {
    const int rc = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &db_);
    if (rc != MMDB_SUCCESS) throw std::runtime_error(std::string(MMDB_strerror(rc)));
  }
  ~MaxMindCountries() override { MMDB_close(&db_); }
  MaxMindCountries(const MaxMindCountries&) = delete;
  MaxMindCountries& operator=(const MaxMindCountries&) = delete;

  std::optional<std::array<char, 2>> country(const IpAddr& ip) const override {
    if (!ip.ok) return std::nullopt;
    sockaddr_storage ss{};
    if (ip.v4) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      std::memcpy(&sin->sin_addr, ip.a.data(), 4);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      std::memcpy(&sin6->sin6_addr, ip.a.data(), 16);
    }
    int err = MMDB_SUCCESS;
    // libmaxminddb takes a non-const handle but only reads it.
    MMDB_lookup_result_s r =
        MMDB_lookup_sockaddr(const_cast<MMDB_s*>(&db_), reinterpret_cast<const sockaddr*>(&ss), &err);
    if (err != MMDB_SUCCESS || !r.found_entry) return std::nullopt;
    // Where the address is; else where its block is registered.
    for (const char* where : {"country", "registered_country"}) {
      MMDB_entry_data_s d{};
      if (MMDB_get_value(&r.entry, &d, where, "iso_code", nullptr) != MMDB_SUCCESS || !d.has_data ||
          d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
        continue;
      const char a = d.utf8_string[0], b = d.utf8_string[1];
      if (!std::isalpha(static_cast<unsigned char>(a)) || !std::isalpha(static_cast<unsigned char>(b)))
        continue;
      return std::array<char, 2>{static_cast<char>(std::toupper(static_cast<unsigned char>(a))),
                                 static_cast<char>(std::toupper(static_cast<unsigned char>(b)))};
    }
    return std::nullopt;
  }

 private:
  MMDB_s db_{};
};

}  // namespace

std::shared_ptr<const CountryLookup> open_maxmind_countries(const std::string& path) {
  return std::make_shared<MaxMindCountries>(path);
}

}  // namespace vellum::sharing
