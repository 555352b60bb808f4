// The signature statement: what a signer's key actually signs. Its bytes are
// the canonical JSON described in docs/formats/signature-statement.md (an RFC
// 8785 JCS subset: strings and non-negative integers only, members sorted,
// no whitespace), so a third party can rebuild them from the fields alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vellum::signing {

inline constexpr const char* kStatementType = "vellum.signature-statement.v1";

struct Statement {
  std::string algorithm;       // algorithm_name()
  std::string content_sha256;  // hex SHA-256 of the exact version bytes
  std::string document;        // document id
  std::string intent;          // [a-z][a-z0-9-]{0,31}, e.g. "approve"
  std::string key_id;          // hex SHA-256 of the signer's SPKI
  std::string request;         // signing request id; empty = none (member omitted)
  std::string signed_at;       // RFC 3339 UTC with milliseconds
  std::string signer;          // "user:<id>" or "email:<address>"
  uint64_t version = 0;        // document version (>= 1)
};

// Throws InvalidInput when a field is malformed (names the field).
void validate(const Statement& s);
// The canonical bytes (validates first).
std::string canonical(const Statement& s);
// Parses statement bytes; throws InvalidInput unless they are exactly the
// canonical form of a valid statement (so two different byte strings never
// mean the same statement).
Statement parse_statement(std::string_view bytes);

// RFC 8785 string serialization (for documentation tests): quotes, escapes
// '"', '\\' and controls, leaves other UTF-8 as is. Throws InvalidInput on
// invalid UTF-8.
std::string jcs_string(std::string_view s);

bool valid_intent(std::string_view s);

}  // namespace vellum::signing
