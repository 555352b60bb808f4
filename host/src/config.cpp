#include "config.hpp"

#include <arpa/inet.h>

#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "embedded_config.hpp"  // generated: kEmbeddedConfig

namespace vellum::host {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& path, const std::string& what) {
  throw ConfigError(source + ": " + path + ": " + what);
}

// Reads typed keys from one table and remembers which were consumed, so that
// anything left over is reported as unknown.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string path, const std::string& source)
      : t_(t), path_(std::move(path)), source_(source) {}

  std::string key_path(std::string_view k) const {
    return path_.empty() ? std::string(k) : path_ + "." + std::string(k);
  }

  void str(std::string_view k, std::string& out) {
    if (auto* n = take(k)) {
      if (!n->is_string()) fail(source_, key_path(k), "expected a string");
      out = **n->as_string();
    }
  }
  void boolean(std::string_view k, bool& out) {
    if (auto* n = take(k)) {
      if (!n->is_boolean()) fail(source_, key_path(k), "expected true or false");
      out = **n->as_boolean();
    }
  }
  template <class T>
  void uint(std::string_view k, T& out, uint64_t min, uint64_t max) {
    if (auto* n = take(k)) {
      if (!n->is_integer()) fail(source_, key_path(k), "expected an integer");
      int64_t v = **n->as_integer();
      if (v < 0 || static_cast<uint64_t>(v) < min || static_cast<uint64_t>(v) > max)
        fail(source_, key_path(k), "must be between " + std::to_string(min) + " and " + std::to_string(max));
      out = static_cast<T>(v);
    }
  }
  void one_of(std::string_view k, std::string& out, std::initializer_list<const char*> allowed) {
    str(k, out);
    for (auto* a : allowed)
      if (out == a) return;
    std::string list;
    for (auto* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    fail(source_, key_path(k), "must be one of: " + list);
  }
  const toml::table* table(std::string_view k) {
    if (auto* n = take(k)) {
      if (!n->is_table()) fail(source_, key_path(k), "expected a table");
      return n->as_table();
    }
    return nullptr;
  }
  void finish() const {
    for (auto&& [k, v] : t_)
      if (!seen_.count(std::string(k.str()))) fail(source_, key_path(k.str()), "unknown key");
  }
  // Keys not consumed yet (plugin-specific settings).
  std::vector<std::pair<std::string, const toml::node*>> rest() const {
    std::vector<std::pair<std::string, const toml::node*>> out;
    for (auto&& [k, v] : t_)
      if (!seen_.count(std::string(k.str()))) out.emplace_back(std::string(k.str()), &v);
    return out;
  }

 private:
  const toml::node* take(std::string_view k) {
    seen_.insert(std::string(k));
    return t_.get(k);
  }
  const toml::table& t_;
  std::string path_;
  const std::string& source_;
  std::set<std::string> seen_;
};

std::string read_secret_file(const std::string& source, const std::string& path, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(source, path, "cannot read secret file '" + file + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();  // files usually end in a newline
  return s;
}

// TOML → JSON for plugin settings; `{ env = "NAME" }` and `{ file = "PATH" }`
// tables are replaced by the secret they point to, so secrets never sit inline.
nlohmann::json to_json(const toml::node& n, const std::string& source, const std::string& path) {
  if (auto* t = n.as_table()) {
    if (t->size() == 1 && (t->contains("env") || t->contains("file"))) {
      bool is_env = t->contains("env");
      auto* v = t->get(is_env ? "env" : "file");
      if (!v->is_string()) fail(source, path, "secret reference must be a string");
      std::string ref = **v->as_string();
      if (is_env) {
        const char* val = std::getenv(ref.c_str());
        if (!val) fail(source, path, "environment variable '" + ref + "' is not set");
        return std::string(val);
      }
      return read_secret_file(source, path, ref);
    }
    nlohmann::json obj = nlohmann::json::object();
    for (auto&& [k, v] : *t)
      obj[std::string(k.str())] = to_json(v, source, path + "." + std::string(k.str()));
    return obj;
  }
  if (auto* a = n.as_array()) {
    nlohmann::json arr = nlohmann::json::array();
    size_t i = 0;
    for (auto&& v : *a) arr.push_back(to_json(v, source, path + "[" + std::to_string(i++) + "]"));
    return arr;
  }
  if (auto* s = n.as_string()) return **s;
  if (auto* i = n.as_integer()) return **i;
  if (auto* f = n.as_floating_point()) return **f;
  if (auto* b = n.as_boolean()) return **b;
  fail(source, path, "dates and times are not supported in plugin settings; use a string");
}

bool valid_plugin_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || !(n[0] >= 'a' && n[0] <= 'z')) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

}  // namespace

Endpoint parse_endpoint(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw ConfigError("listen address '" + listen + "' must be HOST:PORT");
  Endpoint e;
  e.host = listen.substr(0, colon);
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']')
    e.host = e.host.substr(1, e.host.size() - 2);
  std::string port = listen.substr(colon + 1);
  try {
    size_t used = 0;
    long p = std::stol(port, &used);
    if (used != port.size() || p < 0 || p > 65535) throw std::out_of_range("port");
    e.port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    throw ConfigError("listen address '" + listen + "' has an invalid port");
  }
  in_addr a4{};
  in6_addr a6{};
  if (e.host != "localhost" && inet_pton(AF_INET, e.host.c_str(), &a4) != 1 &&
      inet_pton(AF_INET6, e.host.c_str(), &a6) != 1)
    throw ConfigError("listen address '" + listen + "': the host must be an IP address or localhost");
  return e;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

Config parse_config(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw ConfigError(os.str());
  }
  Config c;
  c.source = source;
  TableReader top(root, "", source);
  if (auto* t = top.table("data")) {
    TableReader r(*t, "data", source);
    r.str("dir", c.data_dir);
    r.finish();
  }
  if (auto* t = top.table("server")) {
    TableReader r(*t, "server", source);
    auto& s = c.server;
    r.str("listen", s.listen);
    r.boolean("tls", s.tls);
    r.str("cert_file", s.cert_file);
    r.str("key_file", s.key_file);
    r.uint("threads", s.threads, 0, 256);
    r.uint("max_header_bytes", s.max_header_bytes, 1024, 1 << 20);
    r.uint("max_body_bytes", s.max_body_bytes, 1024, 1ull << 32);
    r.uint("read_timeout_ms", s.read_timeout_ms, 100, 3600000);
    r.uint("idle_timeout_ms", s.idle_timeout_ms, 100, 3600000);
    r.uint("handler_timeout_ms", s.handler_timeout_ms, 100, 3600000);
    r.uint("shutdown_grace_ms", s.shutdown_grace_ms, 0, 600000);
    r.uint("ws_max_message_bytes", s.ws_max_message_bytes, 1024, 1ull << 30);
    r.uint("ws_max_queued_bytes", s.ws_max_queued_bytes, 1024, 1ull << 32);
    r.uint("ws_idle_timeout_ms", s.ws_idle_timeout_ms, 1000, 3600000);
    r.finish();
    Endpoint e;
    try {
      e = parse_endpoint(s.listen);
    } catch (const ConfigError& err) {
      fail(source, "server.listen", err.what());
    }
    if (!s.tls && !is_loopback_host(e.host))
      fail(source, "server.tls",
           "plain HTTP is allowed only on a loopback address; listen on 127.0.0.1 or enable TLS");
    if (s.cert_file.empty() != s.key_file.empty())
      fail(source, "server.cert_file", "cert_file and key_file must be set together");
  }
  if (auto* t = top.table("storage")) {
    TableReader r(*t, "storage", source);
    r.one_of("backend", c.storage.backend, {"sqlite"});
    r.str("path", c.storage.path);
    r.finish();
  }
  if (auto* t = top.table("log")) {
    TableReader r(*t, "log", source);
    r.one_of("level", c.log.level, {"trace", "debug", "info", "warn", "error"});
    r.one_of("format", c.log.format, {"text", "json"});
    r.finish();
  }
  if (auto* t = top.table("audit")) {
    TableReader r(*t, "audit", source);
    r.boolean("fail_closed", c.audit.fail_closed);
    r.boolean("hmac_emails", c.audit.hmac_emails);
    r.boolean("hmac_ips", c.audit.hmac_ips);
    r.uint("checkpoint_every", c.audit.checkpoint_every, 1, 1000000);
    r.uint("checkpoint_interval_seconds", c.audit.checkpoint_interval_seconds, 1, 86400);
    r.finish();
  }
  if (auto* t = top.table("testing")) {
    TableReader r(*t, "testing", source);
    r.boolean("clock_control", c.testing.clock_control);
    r.finish();
  }
  if (auto* t = top.table("identity")) {
    TableReader r(*t, "identity", source);
    auto& id = c.identity;
    uint64_t abs_min = id.session_absolute_ms / 60000, idle_min = id.session_idle_ms / 60000,
             lock_min = id.lockout_ms / 60000;
    r.uint("session_absolute_minutes", abs_min, 5, 60 * 24 * 30);
    r.uint("session_idle_minutes", idle_min, 1, 60 * 24 * 30);
    r.uint("lockout_threshold", id.lockout_threshold, 3, 1000);
    r.uint("lockout_minutes", lock_min, 1, 60 * 24);
    r.uint("ip_max_failures", id.ip_max_failures, 10, 1000000);
    r.uint("password_min_length", id.password_min_length, 8, 128);
    r.str("totp_issuer", id.totp_issuer);
    r.finish();
    id.session_absolute_ms = abs_min * 60000;
    id.session_idle_ms = idle_min * 60000;
    id.lockout_ms = lock_min * 60000;
  }
  if (auto* t = top.table("plugins")) {
    TableReader r(*t, "plugins", source);
    r.str("dir", c.plugin_dir);
    for (auto& [name, node] : r.rest()) {
      std::string path = "plugins." + name;
      if (!node->is_table()) fail(source, path, "expected a [plugins." + name + "] table");
      if (!valid_plugin_name(name)) fail(source, path, "plugin names are [a-z][a-z0-9_-]*");
      PluginConfig p;
      p.name = name;
      TableReader pr(*node->as_table(), path, source);
      pr.boolean("enabled", p.enabled);
      pr.boolean("required", p.required);
      pr.str("path", p.path);
      pr.str("sha256", p.sha256);
      if (!p.sha256.empty()) {
        bool hex = p.sha256.size() == 64;
        for (char ch : p.sha256) hex = hex && std::isxdigit(static_cast<unsigned char>(ch));
        if (!hex) fail(source, path + ".sha256", "must be 64 hex digits");
      }
      // A disabled plugin's secrets are not looked up (its env vars may be unset).
      for (auto& [k, v] : pr.rest())
        p.settings[k] = p.enabled ? to_json(*v, source, path + "." + k) : nlohmann::json();
      c.plugins.push_back(std::move(p));
    }
  }
  top.finish();
  return c;
}

Config load_config_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path.string() + ": cannot read the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path.string());
}

std::string_view embedded_default_config_text() { return kEmbeddedConfig; }
Config embedded_default_config() { return parse_config(kEmbeddedConfig, "<embedded default>"); }

}  // namespace vellum::host
