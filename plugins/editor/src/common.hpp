// Small helpers shared by the editor's store, routes and services.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vellum::editor {

// An answer other than 2xx, as problem+json with optional extra members.
struct HttpProblem {
  int status;
  std::string detail;
  nlohmann::json extra = nlohmann::json::object();
};

// RFC 6901 escaping of one JSON pointer reference token.
std::string pointer_escape(const std::string& key);

// 32 lowercase hex digits (document and folder ids).
bool valid_id(std::string_view id);
std::string hex(std::string_view bytes);
// n as 20 zero-padded digits, so keys sort numerically.
std::string pad20(uint64_t n);
// Parses a decimal without sign or garbage; nullopt otherwise.
std::optional<uint64_t> parse_u64(std::string_view s);

// Content types of stored versions. Only kJson content is validated,
// merged and exported by the server.
inline constexpr const char* kJson = "application/json";
inline constexpr const char* kText = "text/plain; charset=utf-8";
inline constexpr const char* kEnvelope = "application/vnd.vellum.envelope+json";
bool is_json_type(std::string_view content_type);

}  // namespace vellum::editor
