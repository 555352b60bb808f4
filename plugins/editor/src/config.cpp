#include "config.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace vellum::editor {

Config parse_config(std::string_view text) {
  Config c;
  if (text.empty()) return c;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw std::invalid_argument("editor config is not valid JSON");
  }
  if (j.is_null()) return c;
  if (!j.is_object()) throw std::invalid_argument("editor config must be a table");
  for (const auto& [key, value] : j.items()) {
    if (key == "max_document_bytes") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() < 1024 || value.get<uint64_t>() > (1ull << 30))
        throw std::invalid_argument("editor: 'max_document_bytes' must be an integer in 1024..1073741824");
      c.max_document_bytes = value.get<uint64_t>();
    } else if (key == "max_depth") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() < 1 || value.get<uint64_t>() > 1024)
        throw std::invalid_argument("editor: 'max_depth' must be an integer in 1..1024");
      c.max_depth = static_cast<uint32_t>(value.get<uint64_t>());
    } else {
      throw std::invalid_argument("editor: unknown config key '" + key + "'");
    }
  }
  return c;
}

}  // namespace vellum::editor
