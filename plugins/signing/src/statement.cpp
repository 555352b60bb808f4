#include "statement.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>

#include "keys.hpp"
#include "util.hpp"

namespace vellum::signing {

static bool valid_utf8(std::string_view s) {
  size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    unsigned char c = p[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

std::string jcs_string(std::string_view s) {
  if (!valid_utf8(s)) throw InvalidInput("string is not valid UTF-8");
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

bool valid_intent(std::string_view s) {
  if (s.empty() || s.size() > 32 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

static bool valid_id(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

static bool valid_time(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS.mmmZ exactly, as rfc3339_ms writes it.
  static const char* shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (t.size() != 24) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (shape[i] == 'd') {
      if (t[i] < '0' || t[i] > '9') return false;
    } else if (t[i] != shape[i]) {
      return false;
    }
  }
  return true;
}

static bool valid_signer(std::string_view s) {
  if (s.size() > 320 || !valid_utf8(s)) return false;
  if (s.rfind("user:", 0) == 0) return valid_id(s.substr(5), 128);
  if (s.rfind("email:", 0) == 0) {
    auto e = s.substr(6);
    auto at = e.find('@');
    if (at == 0 || at == std::string_view::npos || at + 1 >= e.size()) return false;
    for (unsigned char c : e)
      if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\') return false;
    return true;
  }
  return false;
}

void validate(const Statement& s) {
  if (!parse_algorithm(s.algorithm)) throw InvalidInput("statement: unknown algorithm");
  if (!is_sha256_hex(s.content_sha256)) throw InvalidInput("statement: content_sha256 is not 64 hex digits");
  if (!valid_id(s.document, 128)) throw InvalidInput("statement: malformed document id");
  if (!valid_intent(s.intent)) throw InvalidInput("statement: intent must match [a-z][a-z0-9-]{0,31}");
  if (!is_sha256_hex(s.key_id)) throw InvalidInput("statement: key_id is not 64 hex digits");
  if (!s.request.empty() && !valid_id(s.request, 128)) throw InvalidInput("statement: malformed request id");
  if (!valid_time(s.signed_at)) throw InvalidInput("statement: signed_at is not YYYY-MM-DDTHH:MM:SS.mmmZ");
  if (!valid_signer(s.signer)) throw InvalidInput("statement: signer must be user:<id> or email:<address>");
  // Integers beyond 2^53 have no exact JSON (IEEE double) reading.
  if (s.version < 1 || s.version > (uint64_t{1} << 53)) throw InvalidInput("statement: version out of range");
}

std::string canonical(const Statement& s) {
  validate(s);
  // Members in code-unit order (all names are ASCII, so byte order is JCS order).
  std::string out = "{";
  out += "\"algorithm\":" + jcs_string(s.algorithm);
  out += ",\"content_sha256\":" + jcs_string(s.content_sha256);
  out += ",\"document\":" + jcs_string(s.document);
  out += ",\"intent\":" + jcs_string(s.intent);
  out += ",\"key_id\":" + jcs_string(s.key_id);
  if (!s.request.empty()) out += ",\"request\":" + jcs_string(s.request);
  out += ",\"signed_at\":" + jcs_string(s.signed_at);
  out += ",\"signer\":" + jcs_string(s.signer);
  out += ",\"type\":";
  out += jcs_string(kStatementType);
  out += ",\"version\":";
  out += std::to_string(s.version);
  out += "}";
  return out;
}

Statement parse_statement(std::string_view bytes) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::exception&) {
    throw InvalidInput("statement: not valid JSON");
  }
  if (!j.is_object()) throw InvalidInput("statement: not a JSON object");
  Statement s;
  auto str = [&](const char* k, std::string& out, bool required) {
    auto it = j.find(k);
    if (it == j.end()) {
      if (required) throw InvalidInput(std::string("statement: missing ") + k);
      return;
    }
    if (!it->is_string()) throw InvalidInput(std::string("statement: ") + k + " must be a string");
    out = it->get<std::string>();
  };
  std::string type;
  str("type", type, true);
  if (type != kStatementType) throw InvalidInput("statement: unknown type");
  str("algorithm", s.algorithm, true);
  str("content_sha256", s.content_sha256, true);
  str("document", s.document, true);
  str("intent", s.intent, true);
  str("key_id", s.key_id, true);
  str("request", s.request, false);
  str("signed_at", s.signed_at, true);
  str("signer", s.signer, true);
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_unsigned()) throw InvalidInput("statement: version must be an integer");
  s.version = v->get<uint64_t>();
  if (canonical(s) != bytes) throw InvalidInput("statement: not in canonical form (or has unknown members)");
  return s;
}

}  // namespace vellum::signing
