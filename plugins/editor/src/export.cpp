#include "export.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

#include "validate.hpp"

namespace vellum::editor {

using nlohmann::json;

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

namespace {

// Links keep only schemes that cannot run script.
bool safe_href(const std::string& h) {
  return h.rfind("https://", 0) == 0 || h.rfind("http://", 0) == 0 || h.rfind("mailto:", 0) == 0;
}

std::string attr_str(const json& node, const char* key) {
  auto a = node.find("attrs");
  if (a == node.end() || !a->is_object()) return {};
  auto v = a->find(key);
  return v != a->end() && v->is_string() ? v->get<std::string>() : std::string();
}

int heading_level(const json& node) {
  auto a = node.find("attrs");
  if (a != node.end() && a->is_object())
    if (auto l = a->find("level"); l != a->end() && l->is_number_integer())
      return std::clamp(l->get<int>(), 1, 6);
  return 1;
}

void html_node(const json& n, std::string& out) {
  const std::string type = n["type"];
  if (type == "text") {
    std::string t = html_escape(n["text"].get<std::string>());
    if (auto m = n.find("marks"); m != n.end())
      for (const json& mark : *m) {
        const std::string mt = mark["type"];
        if (mt == "bold" || mt == "strong")
          t = "<strong>" + t + "</strong>";
        else if (mt == "italic" || mt == "em")
          t = "<em>" + t + "</em>";
        else if (mt == "code")
          t = "<code>" + t + "</code>";
        else if (mt == "strike")
          t = "<s>" + t + "</s>";
        else if (mt == "underline")
          t = "<u>" + t + "</u>";
        else if (mt == "link") {
          const std::string href = attr_str(mark, "href");
          if (safe_href(href)) t = "<a href=\"" + html_escape(href) + "\">" + t + "</a>";
        }
      }
    out += t;
    return;
  }
  std::string open, close;
  if (type == "paragraph") {
    open = "<p>", close = "</p>\n";
  } else if (type == "heading") {
    const std::string l = std::to_string(heading_level(n));
    open = "<h" + l + ">", close = "</h" + l + ">\n";
  } else if (type == "bulletList") {
    open = "<ul>\n", close = "</ul>\n";
  } else if (type == "orderedList") {
    open = "<ol>\n", close = "</ol>\n";
  } else if (type == "listItem") {
    open = "<li>", close = "</li>\n";
  } else if (type == "blockquote") {
    open = "<blockquote>\n", close = "</blockquote>\n";
  } else if (type == "codeBlock") {
    open = "<pre><code>", close = "</code></pre>\n";
  } else if (type == "hardBreak") {
    out += "<br>";
    return;
  } else if (type == "horizontalRule") {
    out += "<hr>\n";
    return;
  } else if (type != "doc") {
    open = "<div>", close = "</div>\n";  // unknown node types keep their text
  }
  out += open;
  if (auto c = n.find("content"); c != n.end())
    for (const json& child : *c) html_node(child, out);
  out += close;
}

// Backslash-escapes Markdown punctuation and entity-escapes HTML, so text
// can neither format itself nor inject markup.
std::string md_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else {
      if (std::string_view("\\`*_{}[]()#+-.!|~").find(c) != std::string_view::npos) out.push_back('\\');
      out.push_back(c);
    }
  }
  return out;
}

void md_inline(const json& n, std::string& out) {
  if (n["type"] == "text") {
    std::string t = md_escape(n["text"].get<std::string>());
    if (auto m = n.find("marks"); m != n.end())
      for (const json& mark : *m) {
        const std::string mt = mark["type"];
        if (mt == "bold" || mt == "strong")
          t = "**" + t + "**";
        else if (mt == "italic" || mt == "em")
          t = "_" + t + "_";
        else if (mt == "code")
          t = "`" + t + "`";
        else if (mt == "strike")
          t = "~~" + t + "~~";
        else if (mt == "link") {
          const std::string href = attr_str(mark, "href");
          if (safe_href(href)) t = "[" + t + "](" + md_escape(href) + ")";
        }
      }
    out += t;
  } else if (n["type"] == "hardBreak") {
    out += "  \n";
  } else if (auto c = n.find("content"); c != n.end()) {
    for (const json& child : *c) md_inline(child, out);
  }
}

void md_block(const json& n, const std::string& indent, std::string& out) {
  const std::string type = n["type"];
  auto kids = [&]() -> const json& {
    static const json empty = json::array();
    auto c = n.find("content");
    return c != n.end() ? *c : empty;
  };
  if (type == "doc") {
    for (const json& c : kids()) md_block(c, indent, out);
  } else if (type == "heading") {
    out += indent + std::string(static_cast<size_t>(heading_level(n)), '#') + " ";
    md_inline(n, out);
    out += "\n\n";
  } else if (type == "bulletList" || type == "orderedList") {
    size_t i = 1;
    for (const json& item : kids()) {
      out += indent + (type == "bulletList" ? std::string("- ") : std::to_string(i++) + ". ");
      std::string inner;
      if (auto ic = item.find("content"); ic != item.end())
        for (const json& c : *ic) md_block(c, indent + "   ", inner);
      // The first block sits on the bullet's line.
      const std::string lead = indent + "   ";
      if (inner.rfind(lead, 0) == 0) inner = inner.substr(lead.size());
      while (!inner.empty() && inner.back() == '\n') inner.pop_back();
      out += inner + "\n";
    }
    out += "\n";
  } else if (type == "blockquote") {
    std::string inner;
    for (const json& c : kids()) md_block(c, "", inner);
    size_t start = 0;
    while (start < inner.size()) {
      size_t end = inner.find('\n', start);
      if (end == std::string::npos) end = inner.size();
      out += indent + "> " + inner.substr(start, end - start) + "\n";
      start = end + 1;
    }
  } else if (type == "codeBlock") {
    std::string code;
    for (const json& c : kids())
      if (c["type"] == "text") code += c["text"].get<std::string>();
    // A fence longer than any run of backticks inside cannot be closed early.
    size_t run = 0, longest = 0;
    for (char ch : code) {
      run = ch == '`' ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    const std::string fence(std::max<size_t>(3, longest + 1), '`');
    out += indent + fence + "\n" + html_escape(code) + "\n" + indent + fence + "\n\n";
  } else if (type == "horizontalRule") {
    out += indent + "---\n\n";
  } else {
    out += indent;
    md_inline(n, out);
    out += "\n\n";
  }
}

std::string csv_field(std::string s) {
  if (!s.empty() &&
      (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r'))
    s.insert(s.begin(), '\'');
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

std::string num(double v) {
  if (!std::isfinite(v)) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// Colours and paths are written into attributes: keep a conservative charset.
std::string safe_paint(const json& props, const char* key, const char* fallback) {
  auto v = props.find(key);
  if (v == props.end() || !v->is_string()) return fallback;
  const std::string s = *v;
  if (s.size() > 64) return fallback;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '#' || c == '(' || c == ')' || c == ',' ||
          c == '.' || c == ' ' || c == '%'))
      return fallback;
  return s;
}

double prop(const json& props, const char* key, double fallback = 0) {
  auto v = props.find(key);
  return v != props.end() && v->is_number() ? v->get<double>() : fallback;
}

void svg_node(const json& nodes, const std::string& id, std::string& out, size_t depth) {
  const json& n = nodes[id];
  const std::string type = n["type"];
  static const json none = json::object();
  const json& p = n.contains("props") ? n["props"] : none;
  const std::string common =
      " data-node=\"" + html_escape(id) + "\" fill=\"" + html_escape(safe_paint(p, "fill", "none")) +
      "\" stroke=\"" + html_escape(safe_paint(p, "stroke", "none")) + "\" stroke-width=\"" +
      num(prop(p, "stroke_width", 0)) + "\" opacity=\"" + num(prop(p, "opacity", 1)) + "\"";
  const std::string pad(depth * 2, ' ');
  if (type == "rect" || type == "frame") {
    out += pad + "<rect x=\"" + num(prop(p, "x")) + "\" y=\"" + num(prop(p, "y")) + "\" width=\"" +
           num(prop(p, "width")) + "\" height=\"" + num(prop(p, "height")) + "\" rx=\"" + num(prop(p, "rx")) +
           "\"" + common + "/>\n";
  } else if (type == "ellipse") {
    const double w = prop(p, "width"), h = prop(p, "height");
    out += pad + "<ellipse cx=\"" + num(prop(p, "x") + w / 2) + "\" cy=\"" + num(prop(p, "y") + h / 2) +
           "\" rx=\"" + num(w / 2) + "\" ry=\"" + num(h / 2) + "\"" + common + "/>\n";
  } else if (type == "line") {
    out += pad + "<line x1=\"" + num(prop(p, "x")) + "\" y1=\"" + num(prop(p, "y")) + "\" x2=\"" +
           num(prop(p, "x2")) + "\" y2=\"" + num(prop(p, "y2")) + "\"" + common + "/>\n";
  } else if (type == "text") {
    auto t = p.find("text");
    out += pad + "<text x=\"" + num(prop(p, "x")) + "\" y=\"" + num(prop(p, "y")) + "\" font-size=\"" +
           num(prop(p, "font_size", 16)) + "\"" + common + ">" +
           html_escape(t != p.end() && t->is_string() ? t->get<std::string>() : std::string()) + "</text>\n";
  } else if (type == "path") {
    std::string d;
    if (auto v = p.find("d"); v != p.end() && v->is_string())
      for (char c : v->get<std::string>())
        if (std::string_view("MmLlHhVvCcSsQqTtAaZz0123456789.,-+eE ").find(c) != std::string_view::npos)
          d.push_back(c);
    out += pad + "<path d=\"" + html_escape(d) + "\"" + common + "/>\n";
  }
  if (auto ch = n.find("children"); ch != n.end() && !ch->empty()) {
    out += pad + "<g data-children-of=\"" + html_escape(id) + "\">\n";
    for (const json& c : *ch) svg_node(nodes, c.get<std::string>(), out, depth + 1);
    out += pad + "</g>\n";
  }
}

}  // namespace

std::string richtext_html(const json& doc) {
  std::string out;
  html_node(doc, out);
  return out;
}

std::string richtext_markdown(const json& doc) {
  std::string out;
  md_block(doc, "", out);
  while (out.size() > 1 && out.back() == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

std::optional<std::string> sheet_csv(const json& wb, const std::string& sheet) {
  for (size_t i = 0; i < wb["sheets"].size(); ++i) {
    const json& s = wb["sheets"][i];
    if (s["name"] != sheet && sheet != std::to_string(i)) continue;
    // Only the used range is written, not the declared (possibly huge) one.
    std::map<uint64_t, std::map<uint64_t, std::string>> grid;
    uint64_t max_col = 0;
    if (auto cells = s.find("cells"); cells != s.end())
      for (const auto& [ref, cell] : cells->items()) {
        auto r = cell_ref(ref);
        if (!r) continue;
        const json& v = cell.value("v", json());
        std::string text = v.is_string() ? v.get<std::string>() : v.is_null() ? std::string() : v.dump();
        grid[r->row][r->col] = std::move(text);
        max_col = std::max(max_col, r->col);
      }
    std::string out;
    const uint64_t max_row = grid.empty() ? 0 : grid.rbegin()->first;
    for (uint64_t row = 1; row <= max_row; ++row) {
      auto it = grid.find(row);
      for (uint64_t col = 1; col <= max_col; ++col) {
        if (col > 1) out.push_back(',');
        if (it == grid.end()) continue;
        auto c = it->second.find(col);
        if (c != it->second.end()) out += csv_field(c->second);
      }
      out += "\r\n";
    }
    return out;
  }
  return std::nullopt;
}

std::string scene_svg(const json& scene) {
  const json& nodes = scene["nodes"];
  const std::string root = scene["root"];
  static const json none = json::object();
  const json& rp = nodes[root].contains("props") ? nodes[root]["props"] : none;
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(prop(rp, "width", 1024)) +
                    "\" height=\"" + num(prop(rp, "height", 768)) + "\">\n";
  svg_node(nodes, root, out, 1);
  return out + "</svg>\n";
}

}  // namespace vellum::editor
