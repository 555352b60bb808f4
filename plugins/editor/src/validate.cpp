#include "validate.hpp"

#include "common.hpp"

#include <cctype>
#include <map>
#include <set>
#include <vector>

namespace vellum::editor {
namespace {

using nlohmann::json;

const std::set<std::string>& node_keys() {
  static const std::set<std::string> k{"type", "content", "text", "marks", "attrs"};
  return k;
}

std::optional<Problem> check_node(const json& n, const std::string& ptr, uint32_t depth, uint32_t max_depth) {
  if (depth > max_depth) return Problem{ptr, "nesting deeper than max_depth " + std::to_string(max_depth)};
  if (!n.is_object()) return Problem{ptr, "a node must be an object"};
  for (const auto& [key, value] : n.items()) {
    (void)value;
    if (!node_keys().contains(key)) return Problem{ptr + "/" + pointer_escape(key), "unknown node key"};
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
          return Problem{mp + "/" + pointer_escape(key), "unknown mark key"};
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
constexpr size_t kMaxSheets = 256, kMaxFormula = 8192, kMaxNodes = 100000;
constexpr uint64_t kMaxRows = 1048576, kMaxCols = 16384;

// "B12" -> {col 2, row 12} (1-based); nullopt if not a plain A1 reference.
std::optional<CellRef> parse_ref(std::string_view s) {
  size_t i = 0;
  uint64_t col = 0, row = 0;
  while (i < s.size() && s[i] >= 'A' && s[i] <= 'Z' && i < 3)
    col = col * 26 + static_cast<uint64_t>(s[i++] - 'A' + 1);
  if (col == 0 || i == s.size() || s[i] == '0') return std::nullopt;
  const size_t digits = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - digits < 8)
    row = row * 10 + static_cast<uint64_t>(s[i++] - '0');
  if (i != s.size() || row == 0) return std::nullopt;
  return CellRef{col, row};
}

// Cell references in a formula, outside string literals: [Sheet!]$A$1.
// A name directly followed by '(' is a function (LOG10), not a reference.
std::vector<std::pair<std::string, std::string>> formula_refs(const std::string& f) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i < f.size()) {
    const char c = f[i];
    if (c == '"') {
      for (++i; i < f.size() && f[i] != '"'; ++i) {
      }
      ++i;
      continue;
    }
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$') {
      size_t j = i;
      std::string tok;
      while (j < f.size() && (std::isalnum(static_cast<unsigned char>(f[j])) || f[j] == '_' || f[j] == '$' ||
                              f[j] == '!' || f[j] == '.'))
        tok.push_back(f[j++]);
      if (j < f.size() && f[j] == '(') {
        i = j;
        continue;
      }
      std::string sheet;
      if (auto bang = tok.find('!'); bang != std::string::npos) {
        sheet = tok.substr(0, bang);
        tok = tok.substr(bang + 1);
      }
      std::string plain;
      for (char t : tok)
        if (t != '$') plain.push_back(t);
      if (parse_ref(plain) || !sheet.empty()) out.emplace_back(sheet, plain);
      i = j;
      continue;
    }
    ++i;
  }
  return out;
}

}  // namespace

std::optional<CellRef> cell_ref(std::string_view a1) { return parse_ref(a1); }

std::optional<Problem> validate_sheet(const json& wb) {
  if (!wb.is_object()) return Problem{"", "a workbook must be a JSON object"};
  for (const auto& [k, v] : wb.items()) {
    (void)v;
    if (k != "sheets") return Problem{"/" + pointer_escape(k), "unknown workbook member"};
  }
  auto sh = wb.find("sheets");
  if (sh == wb.end() || !sh->is_array() || sh->empty() || sh->size() > kMaxSheets)
    return Problem{"/sheets", "'sheets' must be an array of 1..256 sheets"};
  std::map<std::string, std::pair<uint64_t, uint64_t>> dims;  // name -> {rows, cols}
  for (size_t i = 0; i < sh->size(); ++i) {
    const json& s = (*sh)[i];
    const std::string p = "/sheets/" + std::to_string(i);
    if (!s.is_object()) return Problem{p, "a sheet must be an object"};
    for (const auto& [k, v] : s.items()) {
      (void)v;
      if (k != "name" && k != "rows" && k != "cols" && k != "cells")
        return Problem{p + "/" + pointer_escape(k), "unknown sheet member"};
    }
    auto name = s.find("name");
    if (name == s.end() || !name->is_string() || name->get_ref<const std::string&>().empty() ||
        name->get_ref<const std::string&>().size() > 100)
      return Problem{p + "/name", "a sheet needs a name of 1..100 bytes"};
    for (char c : name->get_ref<const std::string&>())
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ' ' || c == '-'))
        return Problem{p + "/name", "sheet names use letters, digits, space, '_' and '-'"};
    auto rows = s.find("rows");
    auto cols = s.find("cols");
    if (rows == s.end() || !rows->is_number_integer() || rows->get<int64_t>() < 1 ||
        rows->get<uint64_t>() > kMaxRows)
      return Problem{p + "/rows", "'rows' must be an integer in 1..1048576"};
    if (cols == s.end() || !cols->is_number_integer() || cols->get<int64_t>() < 1 ||
        cols->get<uint64_t>() > kMaxCols)
      return Problem{p + "/cols", "'cols' must be an integer in 1..16384"};
    if (!dims.emplace(name->get<std::string>(), std::make_pair(rows->get<uint64_t>(), cols->get<uint64_t>()))
             .second)
      return Problem{p + "/name", "sheet names must be unique"};
  }
  for (size_t i = 0; i < sh->size(); ++i) {
    const json& s = (*sh)[i];
    const std::string p = "/sheets/" + std::to_string(i) + "/cells";
    const auto [rows, cols] = dims[s["name"].get<std::string>()];
    auto cells = s.find("cells");
    if (cells == s.end()) continue;
    if (!cells->is_object()) return Problem{p, "'cells' must be an object keyed by A1 references"};
    for (const auto& [ref, cell] : cells->items()) {
      const std::string cp = p + "/" + pointer_escape(ref);
      auto r = parse_ref(ref);
      if (!r) return Problem{cp, "cell keys are A1 references"};
      if (r->row > rows || r->col > cols)
        return Problem{cp, "cell reference outside the sheet's rows and cols"};
      if (!cell.is_object()) return Problem{cp, "a cell must be an object"};
      for (const auto& [k, v] : cell.items()) {
        if (k == "v") {
          if (!(v.is_string() || v.is_number() || v.is_boolean() || v.is_null()))
            return Problem{cp + "/v", "a cell value is a string, number, boolean or null"};
        } else if (k == "f") {
          if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
              v.get_ref<const std::string&>().size() > kMaxFormula)
            return Problem{cp + "/f", "a formula is a string of 1..8192 bytes"};
          for (const auto& [sheet, a1] : formula_refs(v.get<std::string>())) {
            auto target = sheet.empty() ? std::make_optional(std::make_pair(rows, cols))
                                        : std::optional<std::pair<uint64_t, uint64_t>>();
            if (!sheet.empty()) {
              auto d = dims.find(sheet);
              if (d == dims.end()) return Problem{cp + "/f", "the formula names an unknown sheet"};
              target = d->second;
            }
            auto fr = parse_ref(a1);
            if (!fr) return Problem{cp + "/f", "malformed cell reference in the formula"};
            if (fr->row > target->first || fr->col > target->second)
              return Problem{cp + "/f", "the formula refers to a cell outside the sheet"};
          }
        } else {
          return Problem{cp + "/" + pointer_escape(k), "unknown cell member (use 'v' and 'f')"};
        }
      }
    }
  }
  return std::nullopt;
}

std::optional<Problem> validate_scene(const json& sc) {
  if (!sc.is_object()) return Problem{"", "a scene must be a JSON object"};
  for (const auto& [k, v] : sc.items()) {
    (void)v;
    if (k != "root" && k != "nodes") return Problem{"/" + pointer_escape(k), "unknown scene member"};
  }
  auto nodes = sc.find("nodes");
  if (nodes == sc.end() || !nodes->is_object() || nodes->empty() || nodes->size() > kMaxNodes)
    return Problem{"/nodes", "'nodes' must be an object of 1..100000 nodes keyed by id"};
  auto root = sc.find("root");
  if (root == sc.end() || !root->is_string() || !nodes->contains(root->get<std::string>()))
    return Problem{"/root", "'root' must name a node"};
  static const std::set<std::string> kKinds{"frame", "group", "rect", "ellipse", "text", "path", "line"};
  static const std::set<std::string> kNum{"x",        "y",         "width",        "height",
                                          "rx",       "ry",        "stroke_width", "opacity",
                                          "rotation", "font_size", "x2",           "y2"};
  static const std::set<std::string> kStr{"fill", "stroke", "text", "d", "name", "order"};
  for (const auto& [id, n] : nodes->items()) {
    const std::string p = "/nodes/" + pointer_escape(id);
    if (id.empty() || id.size() > 64) return Problem{p, "node ids are 1..64 bytes"};
    // Ids become part of authorization paths (".../node/<id>").
    for (char c : id)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ':' || c == '.'))
        return Problem{p, "node ids use letters, digits, '_', '-', ':' and '.'"};
    if (!n.is_object()) return Problem{p, "a node must be an object"};
    for (const auto& [k, v] : n.items()) {
      (void)v;
      if (k != "type" && k != "parent" && k != "children" && k != "props")
        return Problem{p + "/" + pointer_escape(k), "unknown node member"};
    }
    auto t = n.find("type");
    if (t == n.end() || !t->is_string() || !kKinds.contains(t->get<std::string>()))
      return Problem{p + "/type", "type must be frame, group, rect, ellipse, text, path or line"};
    auto par = n.find("parent");
    const bool is_root = id == root->get<std::string>();
    if (is_root) {
      if (par != n.end() && !par->is_null()) return Problem{p + "/parent", "the root has no parent"};
    } else if (par == n.end() || !par->is_string() || !nodes->contains(par->get<std::string>())) {
      return Problem{p + "/parent", "'parent' must name a node"};
    }
    if (auto ch = n.find("children"); ch != n.end()) {
      if (!ch->is_array()) return Problem{p + "/children", "'children' must be an array of node ids"};
      for (size_t i = 0; i < ch->size(); ++i) {
        const json& c = (*ch)[i];
        const std::string cp = p + "/children/" + std::to_string(i);
        if (!c.is_string() || !nodes->contains(c.get<std::string>()))
          return Problem{cp, "a child must name a node"};
        const json& cn = (*nodes)[c.get<std::string>()];
        if (cn.value("parent", json()) != id)
          return Problem{cp, "the child's 'parent' does not name this node"};
      }
    }
    if (auto pr = n.find("props"); pr != n.end()) {
      if (!pr->is_object()) return Problem{p + "/props", "'props' must be an object"};
      for (const auto& [k, v] : pr->items()) {
        if (kNum.contains(k)) {
          if (!v.is_number()) return Problem{p + "/props/" + pointer_escape(k), "must be a number"};
        } else if (kStr.contains(k)) {
          if (!v.is_string() || v.get_ref<const std::string&>().size() > 65536)
            return Problem{p + "/props/" + pointer_escape(k), "must be a string"};
        } else if (!(v.is_string() || v.is_number() || v.is_boolean() || v.is_null())) {
          return Problem{p + "/props/" + pointer_escape(k), "custom properties are scalars"};
        }
      }
    }
  }
  // Every non-root node must be listed by its parent, and following parents
  // from any node must reach the root: otherwise there is a cycle.
  for (const auto& [id, n] : nodes->items()) {
    if (id == root->get<std::string>()) continue;
    const json& par = (*nodes)[n["parent"].get<std::string>()];
    bool listed = false;
    if (auto ch = par.find("children"); ch != par.end())
      for (const json& c : *ch) listed = listed || c == id;
    if (!listed)
      return Problem{"/nodes/" + pointer_escape(id) + "/parent",
                     "the parent does not list this node as a child"};
  }
  std::map<std::string, int> state;  // 0 unseen, 1 on the current walk, 2 reaches the root
  state[root->get<std::string>()] = 2;
  for (const auto& [id, n] : nodes->items()) {
    (void)n;
    std::vector<std::string> walk;
    std::string cur = id;
    while (state[cur] == 0) {
      state[cur] = 1;
      walk.push_back(cur);
      cur = (*nodes)[cur]["parent"].get<std::string>();
    }
    if (state[cur] == 1)
      return Problem{"/nodes/" + pointer_escape(cur) + "/parent", "the scene graph has a cycle"};
    for (auto& w : walk) state[w] = 2;
  }
  return std::nullopt;
}

std::optional<Problem> validate_envelope(const json& e) {
  if (!e.is_object()) return Problem{"", "an end-to-end document is an envelope object"};
  for (const auto& [k, v] : e.items()) {
    (void)v;
    if (k != "vellum_envelope" && k != "content" && k != "recipients" && k != "kem")
      return Problem{"/" + k, "unknown envelope member"};
  }
  auto ver = e.find("vellum_envelope");
  if (ver == e.end() || !ver->is_number_integer() || ver->get<int64_t>() != 1)
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
  if (type == "sheet") return validate_sheet(content);
  if (type == "scene") return validate_scene(content);
  return Problem{"", "unknown document type"};
}

std::vector<std::string> changed_nodes(const json& before, const json& after) {
  static const json empty = json::object();
  const json& a = before.is_object() && before.contains("nodes") ? before["nodes"] : empty;
  const json& b = after.is_object() && after.contains("nodes") ? after["nodes"] : empty;
  std::vector<std::string> out;
  for (const auto& [id, n] : b.items()) {
    auto old = a.find(id);
    if (old == a.end() || *old != n) out.push_back(id);
  }
  for (const auto& [id, n] : a.items()) {
    (void)n;
    if (!b.contains(id)) out.push_back(id);
  }
  return out;
}

}  // namespace vellum::editor
