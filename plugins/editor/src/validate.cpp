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
