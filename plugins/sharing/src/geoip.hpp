// Client countries from a MaxMind DB file (GeoLite2/GeoIP2 Country or City,
// or any database with country.iso_code), through libmaxminddb.
#pragma once

#include <memory>
#include <string>

#include "engine.hpp"

namespace vellum::sharing {

// Opens the database (memory-mapped; lookups are lock-free and thread-safe).
// Throws std::runtime_error with libmaxminddb's reason if it cannot.
std::shared_ptr<const CountryLookup> open_maxmind_countries(const std::string& path);

}  // namespace vellum::sharing
