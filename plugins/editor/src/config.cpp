#include "config.hpp"

#include <stdexcept>
#include <string>

namespace vellum::editor {

namespace {

using nlohmann::json;

uint64_t in_range(const json& value, const std::string& key, uint64_t lo, uint64_t hi) {
  if (!value.is_number_unsigned() || value.get<uint64_t>() < lo || value.get<uint64_t>() > hi)
    throw std::invalid_argument("editor: '" + key + "' must be an integer in " + std::to_string(lo) + ".." +
                                std::to_string(hi));
  return value.get<uint64_t>();
}

}  // namespace

Config parse_config(std::string_view text) {
  Config c;
  if (text.empty()) return c;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception&) {
    throw std::invalid_argument("editor config is not valid JSON");
  }
  if (j.is_null()) return c;
  if (!j.is_object()) throw std::invalid_argument("editor config must be a table");
  for (const auto& [key, value] : j.items()) {
    if (key == "max_document_bytes") {
      c.max_document_bytes = in_range(value, key, 1024, 1ull << 30);
    } else if (key == "max_depth") {
      c.max_depth = static_cast<uint32_t>(in_range(value, key, 1, 1024));
    } else if (key == "lock_default_seconds") {
      c.lock_default_s = static_cast<uint32_t>(in_range(value, key, 10, 7 * 86400));
    } else if (key == "lock_max_seconds") {
      c.lock_max_s = static_cast<uint32_t>(in_range(value, key, 10, 30 * 86400));
    } else if (key == "merge_role_precedence") {
      if (!value.is_boolean())
        throw std::invalid_argument("editor: 'merge_role_precedence' must be true or false");
      c.merge_role_precedence = value.get<bool>();
    } else if (key == "retention") {
      if (!value.is_object()) throw std::invalid_argument("editor: 'retention' must be a table");
      for (const auto& [rk, rv] : value.items()) {
        if (rk == "keep_last")
          c.retention.keep_last = static_cast<uint32_t>(in_range(rv, "retention.keep_last", 0, 1000000));
        else if (rk == "keep_days")
          c.retention.keep_days = static_cast<uint32_t>(in_range(rv, "retention.keep_days", 0, 36500));
        else
          throw std::invalid_argument("editor: unknown config key 'retention." + rk + "'");
      }
    } else if (key == "collab") {
      // Validated by the realtime server; only its shape is checked here.
      if (!value.is_object()) throw std::invalid_argument("editor: 'collab' must be a table");
      c.collab = value;
    } else {
      throw std::invalid_argument("editor: unknown config key '" + key + "'");
    }
  }
  if (c.lock_default_s > c.lock_max_s)
    throw std::invalid_argument("editor: 'lock_default_seconds' must not exceed 'lock_max_seconds'");
  return c;
}

}  // namespace vellum::editor
