// Editor plugin configuration ([plugins.editor] in vellum.toml).
#pragma once

#include <cstdint>
#include <string_view>

namespace vellum::editor {

struct Config {
  uint64_t max_document_bytes = 10ull * 1024 * 1024;  // serialized content, bytes
  uint32_t max_depth = 64;                            // rich-text node nesting
};

// Parses the plugin's JSON config; unknown keys and out-of-range values throw
// std::invalid_argument.
Config parse_config(std::string_view json);

}  // namespace vellum::editor
