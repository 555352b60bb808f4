#include "validate.hpp"

#include <set>

namespace vellum::editor {
namespace {

using nlohmann::json;

// RFC 6901 escaping of one reference token.
std::string escape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out.push_back(c);
  }
  return out;
}

const std::set<std::string>& node_keys() {
  static const std::set<std::string> k{"type", "content", "text", "marks", "attrs"};
  return k;
}

std::optional<Problem> check_node(const json& n, const std::string& ptr, uint32_t depth, uint32_t max_depth) {
  if (depth > max_depth) return Problem{ptr, "nesting deeper than max_depth " + std::to_string(max_depth)};
  if (!n.is_object()) return Problem{ptr, "a node must be an object"};
  for (const auto& [key, value] : n.items()) {
    (void)value;
    if (!node_keys().contains(key)) return Problem{ptr + "/" + escape(key), "unknown node key"};
  }
  auto t = n.find("type");
  if (t == n.end() || !t->is_string() || t->get_ref<const std::string&>().empty())
    return Problem{ptr + "/type", "a node needs a non-empty string 'type'"};
  const bool is_text = t->get_ref<const std::string&>() == "text";
  if (auto a = n.find("attrs"); a != n.end() && !a->is_object())
    return Problem{ptr + "/attrs", "'attrs' must be an object"};
  if (auto x = n.find("text"); x != n.end()) {
    if (!is_text) return Problem{ptr + "/text", "'text' is only allowed on text nodes"};
    if (!x->is_string() || x->get_ref<const std::string&>().empty())
      return Problem{ptr + "/text", "'text' must be a non-empty string"};
  } else if (is_text) {
    return Problem{ptr, "a text node needs 'text'"};
  }
  if (auto m = n.find("marks"); m != n.end()) {
    if (!m->is_array()) return Problem{ptr + "/marks", "'marks' must be an array"};
    for (size_t i = 0; i < m->size(); ++i) {
      const json& mark = (*m)[i];
      const std::string mp = ptr + "/marks/" + std::to_string(i);
      if (!mark.is_object()) return Problem{mp, "a mark must be an object"};
      auto mt = mark.find("type");
      if (mt == mark.end() || !mt->is_string() || mt->get_ref<const std::string&>().empty())
        return Problem{mp + "/type", "a mark needs a non-empty string 'type'"};
      for (const auto& [key, value] : mark.items()) {
        if (key == "attrs") {
          if (!value.is_object()) return Problem{mp + "/attrs", "'attrs' must be an object"};
        } else if (key != "type") {
          return Problem{mp + "/" + escape(key), "unknown mark key"};
        }
      }
    }
  }
  if (auto c = n.find("content"); c != n.end()) {
    if (is_text) return Problem{ptr + "/content", "text nodes have no 'content'"};
    if (!c->is_array()) return Problem{ptr + "/content", "'content' must be an array"};
    for (size_t i = 0; i < c->size(); ++i) {
      if (auto p = check_node((*c)[i], ptr + "/content/" + std::to_string(i), depth + 1, max_depth)) return p;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<Problem> validate_richtext(const json& doc, uint32_t max_depth) {
  if (!doc.is_object()) return Problem{"", "a rich-text document must be a JSON object"};
  auto t = doc.find("type");
  if (t == doc.end() || !t->is_string() || t->get_ref<const std::string&>() != "doc")
    return Problem{"/type", "the top-level node must have type \"doc\""};
  auto c = doc.find("content");
  if (c == doc.end() || !c->is_array()) return Problem{"/content", "the doc node needs a 'content' array"};
  return check_node(doc, "", 1, max_depth);
}

bool nesting_exceeds(std::string_view s, size_t limit) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > limit) return true;
    } else if ((ch == '}' || ch == ']') && depth > 0) {
      --depth;
    }
  }
  return false;
}

}  // namespace vellum::editor

namespace vellum::editor {

namespace {

using nlohmann::json;

// Decoded length of standard padded base64, or nullopt if malformed.
std::optional<size_t> b64_len(const json& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (c == '=') {
      if (i + 2 < s.size()) return std::nullopt;
      ++pad;
    } else if (!alnum || pad) {
      return std::nullopt;
    }
  }
  return s.size() / 4 * 3 - pad;
}

bool hex64(const json& v) {
  if (!v.is_string() || v.get_ref<const std::string&>().size() != 64) return false;
  for (char c : v.get_ref<const std::string&>())
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

constexpr size_t kMaxRecipients = 1024;

}  // namespace

std::optional<Problem> validate_envelope(const json& e) {
  if (!e.is_object()) return Problem{"", "an end-to-end document is an envelope object"};
  for (const auto& [k, v] : e.items()) {
    (void)v;
    if (k != "vellum_envelope" && k != "content" && k != "recipients" && k != "kem")
      return Problem{"/" + k, "unknown envelope member"};
  }
  auto ver = e.find("vellum_envelope");
  if (ver == e.end() || !ver->is_number_unsigned() || ver->get<uint64_t>() != 1)
    return Problem{"/vellum_envelope", "only envelope version 1 is supported"};
  if (auto k = e.find("kem"); k != e.end() && !k->is_null())
    return Problem{"/kem", "'kem' must be null in envelope version 1"};
  auto c = e.find("content");
  if (c == e.end() || !c->is_object()) return Problem{"/content", "'content' must be an object"};
  if (c->value("alg", json()) != "A256GCM") return Problem{"/content/alg", "content alg must be A256GCM"};
  if (b64_len(c->value("nonce", json())) != 12u)
    return Problem{"/content/nonce", "nonce must be 12 bytes of base64"};
  auto ct = b64_len(c->value("ciphertext", json()));
  if (!ct || *ct < 16)
    return Problem{"/content/ciphertext", "ciphertext must be base64 of at least the 16-byte tag"};
  if (c->size() != 3) return Problem{"/content", "content has exactly alg, nonce and ciphertext"};
  auto r = e.find("recipients");
  if (r == e.end() || !r->is_array() || r->empty() || r->size() > kMaxRecipients)
    return Problem{"/recipients", "'recipients' must be an array of 1..1024 entries"};
  for (size_t i = 0; i < r->size(); ++i) {
    const json& x = (*r)[i];
    const std::string p = "/recipients/" + std::to_string(i);
    if (!x.is_object()) return Problem{p, "a recipient must be an object"};
    if (!hex64(x.value("kid", json()))) return Problem{p + "/kid", "kid must be 64 lowercase hex digits"};
    const std::string alg = x.value("alg", std::string());
    auto wk = b64_len(x.value("wrapped_key", json()));
    if (alg == "RSA-OAEP-256") {
      if (!wk || *wk < 256 || *wk > 512)
        return Problem{p + "/wrapped_key", "RSA-OAEP wrapped key must be 256..512 bytes"};
      if (x.size() != 3) return Problem{p, "an RSA-OAEP-256 entry has exactly kid, alg and wrapped_key"};
    } else if (alg == "ECDH-P256+HKDF-SHA256+A256GCM" || alg == "X25519+HKDF-SHA256+A256GCM") {
      if (wk != 48u) return Problem{p + "/wrapped_key", "wrapped key must be 48 bytes (CEK and tag)"};
      if (b64_len(x.value("nonce", json())) != 12u)
        return Problem{p + "/nonce", "nonce must be 12 bytes of base64"};
      auto epk = b64_len(x.value("epk", json()));
      if (!epk || *epk < 32 || *epk > 128)
        return Problem{p + "/epk", "epk must be a DER public key in base64"};
      if (x.size() != 5)
        return Problem{p, "a key-agreement entry has exactly kid, alg, epk, nonce and wrapped_key"};
    } else {
      return Problem{p + "/alg", "unknown recipient algorithm"};
    }
  }
  return std::nullopt;
}

std::optional<Problem> validate_content(const std::string& type, const json& content, uint32_t max_depth) {
  if (type == "richtext") return validate_richtext(content, max_depth);
  return Problem{"", "unknown document type"};
}

}  // namespace vellum::editor
