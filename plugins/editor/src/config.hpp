// Editor plugin configuration ([plugins.editor] in vellum.toml).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace vellum::editor {

// Version retention. keep_last = 0 keeps every version.
struct Retention {
  uint32_t keep_last = 0;  // newest versions always kept (the current one included)
  uint32_t keep_days = 0;  // versions younger than this are always kept
};

struct Config {
  uint64_t max_document_bytes = 10ull * 1024 * 1024;  // serialized content, bytes
  uint32_t max_depth = 64;                            // rich-text node nesting
  Retention retention;
  uint32_t lock_default_s = 3600;  // advisory lock timeout when the client names none
  uint32_t lock_max_s = 86400;
  // Three-way merge: on an overlapping change, the side whose author ranks
  // higher wins ("owner" > "editor"); off = report conflicts instead.
  bool merge_role_precedence = false;
  // [plugins.editor.collab], passed through untouched to the realtime server.
  nlohmann::json collab = nlohmann::json::object();
};

// Parses the plugin's JSON config; unknown keys and out-of-range values throw
// std::invalid_argument.
Config parse_config(std::string_view json);

}  // namespace vellum::editor
