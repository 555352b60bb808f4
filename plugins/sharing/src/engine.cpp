#include "engine.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace vellum::sharing {

namespace {

constexpr ActionMask kAll = (ActionMask(1) << kActions.size()) - 1;

ActionMask mask_of(std::initializer_list<const char*> names) {
  ActionMask m = 0;
  for (auto* n : names) m |= action_bit(n);
  return m;
}

// Non-mutating actions: all that a read-only API token keeps.
const ActionMask kReadOnly = mask_of({"read", "export", "download", "print", "copy"});

constexpr std::string_view kDomainPrefix = "domain:";

// "domain:<d>" for the domain of a (lower-case) e-mail, in buf; empty when
// there is none. No allocation: it runs on every decision.
std::string_view make_domain_subject(std::string_view email, std::array<char, 336>& buf) {
  const size_t at = email.rfind('@');
  if (at == std::string_view::npos || at + 1 == email.size()) return {};
  const std::string_view dom = email.substr(at + 1);
  if (kDomainPrefix.size() + dom.size() > buf.size()) return {};
  std::memcpy(buf.data(), kDomainPrefix.data(), kDomainPrefix.size());
  for (size_t i = 0; i < dom.size(); ++i)
    buf[kDomainPrefix.size() + i] = static_cast<char>(std::tolower(static_cast<unsigned char>(dom[i])));
  return {buf.data(), kDomainPrefix.size() + dom.size()};
}

// True if prefix is resource or an ancestor of it (at a pair boundary).
bool covers(std::string_view prefix, std::string_view resource) {
  if (prefix.empty()) return true;
  if (resource.size() < prefix.size() || resource.substr(0, prefix.size()) != prefix) return false;
  return resource.size() == prefix.size() || resource[prefix.size()] == '/';
}

std::vector<std::string> string_list(const json& j, const char* ptr) {
  if (!j.is_array()) throw BadInput(std::string(ptr) + " must be an array of strings", ptr);
  std::vector<std::string> out;
  for (const auto& v : j) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
        v.get_ref<const std::string&>().size() > 256)
      throw BadInput(std::string(ptr) + " must contain non-empty strings", ptr);
    out.push_back(v.get<std::string>());
  }
  return out;
}

ActionMask action_list(const json& j, const char* ptr) {
  ActionMask m = 0;
  for (const auto& a : string_list(j, ptr)) {
    ActionMask b = action_bit(a);
    if (!b) throw BadInput("unknown action '" + a + "'", ptr);
    m |= b;
  }
  return m;
}

int parse_hhmm(const std::string& s, const char* ptr) {
  if (s.size() != 5 || s[2] != ':' || !isdigit(static_cast<unsigned char>(s[0])) ||
      !isdigit(static_cast<unsigned char>(s[1])) || !isdigit(static_cast<unsigned char>(s[3])) ||
      !isdigit(static_cast<unsigned char>(s[4])))
    throw BadInput("times must be HH:MM", ptr);
  int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) throw BadInput("times must be HH:MM within 00:00..24:00", ptr);
  return h * 60 + m;
}

void check_keys(const json& j, std::initializer_list<const char*> allowed, const std::string& where) {
  for (const auto& [k, v] : j.items()) {
    (void)v;
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }) == allowed.end())
      throw BadInput("unknown key '" + k + "'", where + "/" + k);
  }
}

}  // namespace

bool has_scope(std::string_view scopes, std::string_view want) {
  size_t i = 0;
  while (i < scopes.size()) {
    size_t j = scopes.find(' ', i);
    if (j == std::string_view::npos) j = scopes.size();
    if (scopes.substr(i, j - i) == want) return true;
    i = j + 1;
  }
  return false;
}

int action_index(std::string_view a) {
  for (size_t i = 0; i < kActions.size(); ++i)
    if (a == kActions[i]) return static_cast<int>(i);
  return -1;
}
ActionMask action_bit(std::string_view a) {
  int i = action_index(a);
  return i < 0 ? 0 : ActionMask(1) << i;
}
json mask_to_json(ActionMask m) {
  json out = json::array();
  for (size_t i = 0; i < kActions.size(); ++i)
    if (m & (ActionMask(1) << i)) out.push_back(kActions[i]);
  return out;
}

// ---- roles

Roles::Roles() {
  ActionMask viewer = mask_of({"read"});
  ActionMask commenter = viewer | mask_of({"comment"});
  ActionMask editor = commenter | mask_of({"write", "export", "download", "print", "copy", "sign"});
  ActionMask admin = editor | mask_of({"share", "manage", "delete"});
  ActionMask owner = kAll;
  roles_ = {{"viewer", viewer, 10},
            {"commenter", commenter, 20},
            {"editor", editor, 30},
            {"admin", admin, 40},
            {"owner", owner, 50}};
}

void Roles::add_custom(const json& spec) {
  if (!spec.is_object()) throw BadInput("a custom role must be a table", "/roles");
  check_keys(spec, {"name", "inherits", "actions"}, "/roles");
  auto n = spec.find("name");
  if (n == spec.end() || !n->is_string()) throw BadInput("a custom role needs a 'name'", "/roles/name");
  const std::string name = *n;
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || c == '-' || c == '_';
      }))
    throw BadInput("role names are 1..64 characters of a-z, '-' and '_'", "/roles/name");
  if (find(name)) throw BadInput("role '" + name + "' already exists", "/roles/name");
  Role r{name, 0, 0};
  if (auto i = spec.find("inherits"); i != spec.end()) {
    if (!i->is_string()) throw BadInput("'inherits' must be a role name", "/roles/inherits");
    const Role* base = find(i->get<std::string>());
    if (!base) throw BadInput("'inherits' names an unknown role", "/roles/inherits");
    r.actions = base->actions;
    r.rank = base->rank;
  }
  if (auto a = spec.find("actions"); a != spec.end()) r.actions |= action_list(*a, "/roles/actions");
  if (!r.actions) throw BadInput("a custom role must allow at least one action", "/roles/actions");
  roles_.push_back(std::move(r));
}

const Role* Roles::find(std::string_view name) const {
  for (const auto& r : roles_)
    if (r.name == name) return &r;
  return nullptr;
}
int Roles::index(std::string_view name) const {
  for (size_t i = 0; i < roles_.size(); ++i)
    if (roles_[i].name == name) return static_cast<int>(i);
  return -1;
}

// ---- paths

bool path_prefixes(std::string_view path, std::vector<std::string_view>& out) {
  out.clear();
  if (path.empty() || path.size() > 2048) return false;
  size_t i = 0;
  while (i < path.size()) {
    size_t a = path.find('/', i);
    if (a == std::string_view::npos || a == i) return false;
    size_t b = path.find('/', a + 1);
    if (b == std::string_view::npos) b = path.size();
    if (b == a + 1) return false;
    out.push_back(path.substr(0, b));
    if (out.size() > 32) return false;  // Engine::kMaxLevels
    i = b + 1;
    if (b + 1 == path.size()) return false;  // trailing slash
  }
  return true;
}

bool valid_resource(std::string_view path) {
  for (char c : path) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == '/' || c == ':' || c == '@';
    if (!ok) return false;
  }
  std::vector<std::string_view> p;
  return path_prefixes(path, p);
}

std::string_view resource_type(std::string_view path) {
  size_t last = path.rfind('/');
  if (last == std::string_view::npos) return {};
  size_t prev = path.rfind('/', last - 1);
  size_t start = (last == 0 || prev == std::string_view::npos) ? 0 : prev + 1;
  return path.substr(start, last - start);
}

// ---- grants

json Grant::to_json() const {
  json j = {{"id", id},         {"subject", subject},       {"resource", resource},
            {"effect", effect}, {"created_by", created_by}, {"created_ms", created_ms}};
  if (effect == "allow")
    j["role"] = role;
  else
    j["actions"] = actions ? mask_to_json(actions) : json::array({"*"});
  if (expires_ms) j["expires_ms"] = expires_ms;
  return j;
}

namespace {
void check_subject(const std::string& s) {
  static const char* kinds[] = {"user:", "group:", "team:", "domain:"};
  for (auto* k : kinds) {
    const size_t n = std::strlen(k);
    if (s.compare(0, n, k) == 0 && s.size() > n && s.size() <= 256 &&
        s.find_first_of(" \x1f/") == std::string::npos)
      return;
  }
  throw BadInput("'subject' must be user:<id>, group:<name>, team:<id> or domain:<example.com>", "/subject");
}
}  // namespace

Grant Grant::from_json(const json& j, const Roles& roles) {
  if (!j.is_object()) throw BadInput("a grant must be a JSON object");
  check_keys(
      j, {"id", "subject", "resource", "effect", "role", "actions", "expires_ms", "created_by", "created_ms"},
      "");
  Grant g;
  auto str = [&](const char* k, bool required) -> std::string {
    auto it = j.find(k);
    if (it == j.end()) {
      if (required) throw BadInput(std::string("'") + k + "' is required", std::string("/") + k);
      return {};
    }
    if (!it->is_string()) throw BadInput(std::string("'") + k + "' must be a string", std::string("/") + k);
    return *it;
  };
  g.id = str("id", false);
  g.subject = str("subject", true);
  check_subject(g.subject);
  if (g.subject.rfind("domain:", 0) == 0) {
    std::transform(g.subject.begin(), g.subject.end(), g.subject.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  g.resource = str("resource", true);
  if (!valid_resource(g.resource)) throw BadInput("'resource' is not a resource path", "/resource");
  g.effect = str("effect", false);
  if (g.effect.empty()) g.effect = "allow";
  if (g.effect != "allow" && g.effect != "deny" && g.effect != "exclude")
    throw BadInput("'effect' must be allow, deny or exclude", "/effect");
  if (g.effect == "allow") {
    g.role = str("role", true);
    if (!roles.find(g.role)) throw BadInput("unknown role '" + g.role + "'", "/role");
    if (j.contains("actions"))
      throw BadInput("'actions' is for deny and exclude; allow takes a role", "/actions");
  } else {
    if (j.contains("role")) throw BadInput("deny and exclude take 'actions', not a role", "/role");
    if (auto a = j.find("actions"); a != j.end()) {
      if (a->is_array() && a->size() == 1 && (*a)[0] == "*")
        g.actions = 0;
      else
        g.actions = action_list(*a, "/actions");
    }
  }
  if (auto e = j.find("expires_ms"); e != j.end()) {
    if (!e->is_number_integer() || e->get<int64_t>() <= 0)
      throw BadInput("'expires_ms' must be a positive unix time in ms", "/expires_ms");
    g.expires_ms = *e;
  }
  g.created_by = str("created_by", false);
  if (auto c = j.find("created_ms"); c != j.end() && c->is_number_integer()) g.created_ms = *c;
  return g;
}

// ---- CIDR and user agents

std::optional<Cidr> Cidr::parse(std::string_view s) {
  Cidr c;
  std::string addr(s);
  int bits = -1;
  if (auto slash = addr.find('/'); slash != std::string::npos) {
    std::string b = addr.substr(slash + 1);
    addr.resize(slash);
    if (b.empty() || b.size() > 3 || !std::all_of(b.begin(), b.end(), ::isdigit)) return std::nullopt;
    bits = std::stoi(b);
  }
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) {
    c.v4 = true;
    std::memcpy(c.addr.data(), &a4, 4);
    c.bits = bits < 0 ? 32 : bits;
    if (c.bits > 32) return std::nullopt;
  } else if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1) {
    std::memcpy(c.addr.data(), &a6, 16);
    c.bits = bits < 0 ? 128 : bits;
    if (c.bits > 128) return std::nullopt;
  } else {
    return std::nullopt;
  }
  return c;
}

IpAddr IpAddr::parse(std::string_view ip) {
  IpAddr r;
  char buf[INET6_ADDRSTRLEN + 1];
  if (ip.size() >= sizeof buf) return r;
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = 0;
  in_addr a4{};
  in6_addr a6{};
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (inet_pton(AF_INET, buf, &a4) == 1) {
    r.v4 = true;
    std::memcpy(r.a.data(), &a4, 4);
  } else if (inet_pton(AF_INET6, buf, &a6) == 1) {
    if (std::memcmp(&a6, mapped, 12) == 0) {  // IPv4-mapped: matches IPv4 ranges
      r.v4 = true;
      std::memcpy(r.a.data(), reinterpret_cast<const uint8_t*>(&a6) + 12, 4);
    } else {
      std::memcpy(r.a.data(), &a6, 16);
    }
  } else {
    return r;
  }
  r.ok = true;
  return r;
}

bool Cidr::contains(const IpAddr& ip) const {
  if (!ip.ok || ip.v4 != v4) return false;
  const auto& a = ip.a;
  int full = bits / 8, rest = bits % 8;
  if (std::memcmp(a.data(), addr.data(), full) != 0) return false;
  if (rest) {
    uint8_t m = static_cast<uint8_t>(0xff << (8 - rest));
    if ((a[full] & m) != (addr[full] & m)) return false;
  }
  return true;
}

std::optional<std::string> country_code(std::string_view s) {
  if (s.size() != 2 || !std::isalpha(static_cast<unsigned char>(s[0])) ||
      !std::isalpha(static_cast<unsigned char>(s[1])))
    return std::nullopt;
  return std::string{static_cast<char>(std::toupper(static_cast<unsigned char>(s[0]))),
                     static_cast<char>(std::toupper(static_cast<unsigned char>(s[1])))};
}

std::string ua_class(std::string_view ua) {
  std::string l(ua);
  std::transform(l.begin(), l.end(), l.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto has = [&](const char* s) { return l.find(s) != std::string::npos; };
  if (l.empty()) return "unknown";
  if (has("bot") || has("crawler") || has("spider")) return "bot";
  if (has("android") || has("iphone") || has("ipad") || has("mobile")) return "mobile";
  if (has("mozilla/")) return "browser";
  if (has("curl/") || has("wget/") || has("vellum-cli") || has("python") || has("go-http") || has("node"))
    return "cli";
  return "other";
}

// ---- policies

Policy Policy::from_json(const json& j, const Roles& roles) {
  if (!j.is_object()) throw BadInput("a policy must be a JSON object");
  check_keys(
      j,
      {"id", "description", "effect", "order", "target", "subject", "resource", "environment", "obligations"},
      "");
  Policy p;
  p.source = j;
  if (auto i = j.find("id"); i != j.end()) {
    if (!i->is_string() || i->get_ref<const std::string&>().empty() ||
        i->get_ref<const std::string&>().size() > 128)
      throw BadInput("'id' must be a string of 1..128 characters", "/id");
    p.id = *i;
  }
  if (auto d = j.find("description"); d != j.end()) {
    if (!d->is_string()) throw BadInput("'description' must be a string", "/description");
    p.description = *d;
  }
  auto e = j.find("effect");
  if (e == j.end() || !e->is_string() || (*e != "permit" && *e != "deny"))
    throw BadInput("'effect' must be \"permit\" or \"deny\"", "/effect");
  p.effect = *e;
  if (auto o = j.find("order"); o != j.end()) {
    if (!o->is_number_integer()) throw BadInput("'order' must be an integer", "/order");
    p.order = *o;
  }
  if (auto t = j.find("target"); t != j.end()) {
    if (!t->is_object()) throw BadInput("'target' must be an object", "/target");
    check_keys(*t, {"actions", "resource", "resource_types"}, "/target");
    if (t->contains("actions")) p.actions = action_list((*t)["actions"], "/target/actions");
    if (auto r = t->find("resource"); r != t->end()) {
      if (!r->is_string() || !valid_resource(r->get<std::string>()))
        throw BadInput("'target.resource' must be a resource path", "/target/resource");
      p.resource = *r;
    }
    if (t->contains("resource_types"))
      p.resource_types = string_list((*t)["resource_types"], "/target/resource_types");
  }
  if (auto s = j.find("subject"); s != j.end()) {
    if (!s->is_object()) throw BadInput("'subject' must be an object", "/subject");
    check_keys(*s, {"roles", "groups", "email_domains", "mfa_max_age_s", "is_owner", "guest"}, "/subject");
    if (s->contains("roles")) {
      p.roles = string_list((*s)["roles"], "/subject/roles");
      for (const auto& r : p.roles)
        if (!roles.find(r)) throw BadInput("unknown role '" + r + "'", "/subject/roles");
    }
    if (s->contains("groups")) p.groups = string_list((*s)["groups"], "/subject/groups");
    if (s->contains("email_domains")) {
      p.email_domains = string_list((*s)["email_domains"], "/subject/email_domains");
      for (auto& d : p.email_domains)
        std::transform(d.begin(), d.end(), d.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    if (auto m = s->find("mfa_max_age_s"); m != s->end()) {
      if (!m->is_number_integer() || m->get<int64_t>() < 0)
        throw BadInput("'mfa_max_age_s' must be a non-negative integer", "/subject/mfa_max_age_s");
      p.mfa_max_age_s = *m;
    }
    if (auto o = s->find("is_owner"); o != s->end()) {
      if (!o->is_boolean()) throw BadInput("'is_owner' must be a boolean", "/subject/is_owner");
      (o->get<bool>() ? p.subject_is_owner : p.subject_not_owner) = true;
    }
    if (auto g = s->find("guest"); g != s->end()) {
      if (!g->is_boolean()) throw BadInput("'guest' must be a boolean", "/subject/guest");
      (g->get<bool>() ? p.guests_only : p.no_guests) = true;
    }
  }
  if (auto r = j.find("resource"); r != j.end()) {
    if (!r->is_object()) throw BadInput("'resource' must be an object", "/resource");
    check_keys(*r, {"classification_any", "classification_none"}, "/resource");
    if (r->contains("classification_any"))
      p.classification_any = string_list((*r)["classification_any"], "/resource/classification_any");
    if (r->contains("classification_none"))
      p.classification_none = string_list((*r)["classification_none"], "/resource/classification_none");
  }
  if (auto env = j.find("environment"); env != j.end()) {
    if (!env->is_object()) throw BadInput("'environment' must be an object", "/environment");
    check_keys(*env,
               {"time", "weekdays", "utc_offset_minutes", "ip_ranges", "not_ip_ranges", "user_agent_classes",
                "countries"},
               "/environment");
    if (env->contains("countries")) {
      for (const auto& c : string_list((*env)["countries"], "/environment/countries")) {
        auto cc = country_code(c);
        if (!cc)
          throw BadInput("countries are ISO 3166-1 alpha-2 codes such as \"DE\"", "/environment/countries");
        p.countries.push_back(*cc);
      }
      if (p.countries.empty()) throw BadInput("'countries' must not be empty", "/environment/countries");
    }
    if (auto t = env->find("time"); t != env->end()) {
      if (!t->is_object() || !t->contains("from") || !t->contains("to") || !(*t)["from"].is_string() ||
          !(*t)["to"].is_string())
        throw BadInput("'time' must be {\"from\": \"HH:MM\", \"to\": \"HH:MM\"}", "/environment/time");
      p.time_from_min = parse_hhmm((*t)["from"], "/environment/time");
      p.time_to_min = parse_hhmm((*t)["to"], "/environment/time");
    }
    if (auto w = env->find("weekdays"); w != env->end()) {
      if (!w->is_array() || w->empty())
        throw BadInput("'weekdays' must be a non-empty array of 1..7", "/environment/weekdays");
      for (const auto& d : *w) {
        if (!d.is_number_integer() || d.get<int>() < 1 || d.get<int>() > 7)
          throw BadInput("'weekdays' are 1 (Monday) .. 7 (Sunday)", "/environment/weekdays");
        p.weekdays |= static_cast<uint8_t>(1u << (d.get<int>() - 1));
      }
    }
    if (auto u = env->find("utc_offset_minutes"); u != env->end()) {
      if (!u->is_number_integer() || std::abs(u->get<int>()) > 14 * 60)
        throw BadInput("'utc_offset_minutes' must be an integer in -840..840",
                       "/environment/utc_offset_minutes");
      p.utc_offset_min = *u;
    }
    for (const char* k : {"ip_ranges", "not_ip_ranges"}) {
      if (!env->contains(k)) continue;
      const std::string ptr = std::string("/environment/") + k;
      for (const auto& s : string_list((*env)[k], ptr.c_str())) {
        auto c = Cidr::parse(s);
        if (!c) throw BadInput("'" + s + "' is not an IP address or CIDR range", ptr);
        (std::string(k) == "ip_ranges" ? p.cidrs : p.not_cidrs).push_back(*c);
      }
    }
    if (env->contains("user_agent_classes")) {
      p.ua_classes = string_list((*env)["user_agent_classes"], "/environment/user_agent_classes");
      for (const auto& c : p.ua_classes)
        if (c != "browser" && c != "mobile" && c != "cli" && c != "bot" && c != "other" && c != "unknown")
          throw BadInput("user agent classes are browser, mobile, cli, bot, other, unknown",
                         "/environment/user_agent_classes");
    }
  }
  if (auto o = j.find("obligations"); o != j.end()) {
    if (!o->is_array()) throw BadInput("'obligations' must be an array", "/obligations");
    for (const auto& ob : *o) {
      if (!ob.is_object() || !ob.contains("type") || !ob["type"].is_string())
        throw BadInput("each obligation is an object with a 'type'", "/obligations");
      const std::string t = ob["type"];
      if (t == "watermark") {
        check_keys(ob, {"type", "level"}, "/obligations");
        if (!ob.contains("level") || !ob["level"].is_string())
          throw BadInput("a watermark obligation needs a 'level'", "/obligations");
      } else if (t == "log") {
        check_keys(ob, {"type", "level"}, "/obligations");
        if (!ob.contains("level") || (ob["level"] != "high" && ob["level"] != "normal"))
          throw BadInput("a log obligation's level is high or normal", "/obligations");
      } else if (t == "require_mfa") {
        check_keys(ob, {"type", "max_age_s"}, "/obligations");
        if (!ob.contains("max_age_s") || !ob["max_age_s"].is_number_integer() ||
            ob["max_age_s"].get<int64_t>() < 0)
          throw BadInput("a require_mfa obligation needs 'max_age_s'", "/obligations");
      } else {
        throw BadInput("obligation types are watermark, log and require_mfa", "/obligations");
      }
      p.obligations.push_back(ob);
    }
  }
  return p;
}

std::optional<Combining> parse_combining(std::string_view s) {
  if (s == "deny-overrides") return Combining::DenyOverrides;
  if (s == "permit-overrides") return Combining::PermitOverrides;
  if (s == "first-applicable") return Combining::FirstApplicable;
  return std::nullopt;
}
const char* combining_name(Combining c) {
  switch (c) {
    case Combining::PermitOverrides:
      return "permit-overrides";
    case Combining::FirstApplicable:
      return "first-applicable";
    default:
      return "deny-overrides";
  }
}

// ---- engine: changes

void Engine::set_combining(Combining c) {
  std::unique_lock lk(mu_);
  combining_ = c;
}
Combining Engine::combining() const {
  std::shared_lock lk(mu_);
  return combining_;
}

void Engine::put_grant(const Grant& in) {
  Grant g = in;
  g.kind = g.effect == "allow" ? 0 : g.effect == "deny" ? 1 : 2;
  g.role_index = g.kind == 0 ? roles_.index(g.role) : -1;
  g.role_actions = g.role_index >= 0 ? roles_.all()[g.role_index].actions : 0;
  g.resource_hash = std::hash<std::string_view>{}(g.resource);
  if (g.kind == 0 && g.role_index < 0) throw BadInput("unknown role '" + g.role + "'", "/role");
  std::unique_lock lk(mu_);
  if (auto old = grant_key_.find(g.id); old != grant_key_.end()) {
    auto& v = by_subject_[old->second];
    v.erase(g.id);
    if (v.grants.empty()) by_subject_.erase(old->second);
  }
  grant_key_[g.id] = g.subject;
  by_subject_[g.subject].insert(std::move(g));
}

void Engine::SubjectGrants::insert(Grant g) {
  const auto pos = std::upper_bound(hashes.begin(), hashes.end(), g.resource_hash);
  const auto at = pos - hashes.begin();
  hashes.insert(pos, g.resource_hash);
  grants.insert(grants.begin() + at, std::move(g));
}

bool Engine::SubjectGrants::erase(const std::string& id) {
  for (size_t i = 0; i < grants.size(); ++i)
    if (grants[i].id == id) {
      grants.erase(grants.begin() + static_cast<std::ptrdiff_t>(i));
      hashes.erase(hashes.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  return false;
}

bool Engine::remove_grant(const std::string& id) {
  std::unique_lock lk(mu_);
  auto it = grant_key_.find(id);
  if (it == grant_key_.end()) return false;
  auto& v = by_subject_[it->second];
  v.erase(id);
  if (v.grants.empty()) by_subject_.erase(it->second);
  grant_key_.erase(it);
  return true;
}

std::optional<Grant> Engine::grant(const std::string& id) const {
  std::shared_lock lk(mu_);
  auto it = grant_key_.find(id);
  if (it == grant_key_.end()) return std::nullopt;
  for (const auto& g : by_subject_.at(it->second).grants)
    if (g.id == id) return g;
  return std::nullopt;
}

std::vector<Grant> Engine::grants_on(std::string_view resource) const {
  std::shared_lock lk(mu_);
  std::vector<Grant> out;
  for (const auto& [k, v] : by_subject_)
    for (const auto& g : v.grants)
      if (g.resource == resource) out.push_back(g);
  std::sort(out.begin(), out.end(), [](const Grant& a, const Grant& b) { return a.id < b.id; });
  return out;
}

size_t Engine::grant_count() const {
  std::shared_lock lk(mu_);
  return grant_key_.size();
}

void Engine::reindex_policies() {
  policy_order_.clear();
  policies_by_prefix_.clear();
  std::vector<Policy*> order;
  for (auto& [id, p] : policies_) order.push_back(&p);  // by id
  std::stable_sort(order.begin(), order.end(),
                   [](const Policy* a, const Policy* b) { return a->order < b->order; });
  // The rank orders candidates at decision time without comparing ids.
  for (size_t i = 0; i < order.size(); ++i) order[i]->rank = static_cast<int>(i);
  policy_order_.assign(order.begin(), order.end());
  for (const Policy* p : policy_order_) policies_by_prefix_[p->resource].push_back(p);
}

void Engine::put_policy(const Policy& p) {
  std::unique_lock lk(mu_);
  policies_[p.id] = p;
  reindex_policies();
}
bool Engine::remove_policy(const std::string& id) {
  std::unique_lock lk(mu_);
  if (!policies_.erase(id)) return false;
  reindex_policies();
  return true;
}
std::vector<Policy> Engine::policies() const {
  std::shared_lock lk(mu_);
  std::vector<Policy> out;
  for (const Policy* p : policy_order_) out.push_back(*p);
  return out;
}

void Engine::set_user(const std::string& user, UserAttrs a) {
  std::unique_lock lk(mu_);
  users_[user].attrs = std::move(a);
  refresh_subjects(user);
}
std::optional<UserAttrs> Engine::user(const std::string& user) const {
  std::shared_lock lk(mu_);
  auto it = users_.find(user);
  if (it == users_.end()) return std::nullopt;
  return it->second.attrs;
}

void Engine::set_team_members(const std::string& team, const std::vector<std::string>& users) {
  std::unique_lock lk(mu_);
  std::vector<std::string> old = team_members_[team];
  for (const auto& u : old) teams_of_user_[u].erase(team);
  team_members_[team] = users;
  for (const auto& u : users) teams_of_user_[u].insert(team);
  for (const auto& u : old) refresh_subjects(u);
  for (const auto& u : users) refresh_subjects(u);
}

void Engine::set_classification(const std::string& resource, std::vector<std::string> tags) {
  std::unique_lock lk(mu_);
  if (tags.empty())
    classes_.erase(resource);
  else
    classes_[resource] = std::move(tags);
}

void Engine::put_link(const LinkGrant& l) {
  std::unique_lock lk(mu_);
  links_[l.id] = l;
}

void Engine::put_delegation(const Delegation& d) {
  std::unique_lock lk(mu_);
  if (!delegations_.count(d.id)) delegations_to_[d.to].push_back(d.id);
  delegations_[d.id] = d;
}
bool Engine::remove_delegation(const std::string& id) {
  std::unique_lock lk(mu_);
  auto it = delegations_.find(id);
  if (it == delegations_.end()) return false;
  auto& v = delegations_to_[it->second.to];
  v.erase(std::remove(v.begin(), v.end(), id), v.end());
  delegations_.erase(it);
  return true;
}

void Engine::put_elevation(const Elevation& e) {
  std::unique_lock lk(mu_);
  if (!elevations_.count(e.id)) elevations_of_[e.user].push_back(e.id);
  elevations_[e.id] = e;
}

void Engine::put_break_glass(const BreakGlass& b) {
  std::unique_lock lk(mu_);
  if (!break_glass_.count(b.id)) break_glass_of_[b.user].push_back(b.id);
  break_glass_[b.id] = b;
}

void Engine::set_owner(const std::string& resource, const std::string& user) {
  std::unique_lock lk(mu_);
  owners_[resource] = user;
}
void Engine::set_workspace_rules(const std::string& workspace_id, std::optional<WorkspaceRules> rules) {
  std::unique_lock lk(mu_);
  const std::string key = "workspace/" + workspace_id;
  if (rules)
    workspaces_[key] = std::move(*rules);
  else
    workspaces_.erase(key);
}

void Engine::set_country_lookup(std::shared_ptr<const CountryLookup> lookup) {
  std::unique_lock lk(mu_);
  countries_ = std::move(lookup);
}

std::string Engine::owner_of(std::string_view resource) const {
  std::shared_lock lk(mu_);
  auto it = owners_.find(resource);
  return it == owners_.end() ? std::string() : it->second;
}

// ---- engine: decisions

struct Engine::Eval {
  bool explain = false;
  std::vector<std::string_view> prefixes;
  std::array<size_t, kMaxLevels> hashes{};  // of prefixes
  const Subjects* subjects = nullptr;
  ActionMask allowed = 0, excluded = 0, bit = 0;
  std::vector<int> roles_held;  // role indexes
  bool is_owner = false, guest = false, break_glass = false;
  const UserAttrs* attrs = nullptr;
  const LinkGrant* link = nullptr;
  std::vector<const std::vector<std::string>*> classes;
  json grants, exclusions, extra, policies;  // arrays, filled only for explain
  IpAddr ip;
  bool ip_parsed = false;
  Subjects scratch;
  // "domain:<d>" of the caller's e-mail, built once without allocating.
  std::array<char, 336> domain_buf{};
  std::string_view domain_subject;
  bool domain_done = false;
  std::string_view domain_of(std::string_view email) {
    if (!domain_done) {
      domain_subject = make_domain_subject(email, domain_buf);
      domain_done = true;
    }
    return domain_subject;
  }
  // Set when a country condition could not be evaluated: the decision is
  // then a deny with this reason, whatever the condition's policy said.
  const char* country_failure = nullptr;
  const IpAddr& client_ip(std::string_view s) {
    if (!ip_parsed) {
      ip = IpAddr::parse(s);
      ip_parsed = true;
    }
    return ip;
  }
  Decision d;
  // For reuse by the same thread: clears without giving back capacity.
  void reset() {
    explain = false;
    prefixes.clear();
    subjects = nullptr;
    allowed = excluded = bit = 0;
    roles_held.clear();
    is_owner = guest = break_glass = false;
    attrs = nullptr;
    link = nullptr;
    classes.clear();
    ip_parsed = false;
    country_failure = nullptr;
    domain_subject = {};
    domain_done = false;
    d.permit = false;
    d.reason.clear();
    d.obligations = json();
  }
};

// Called with the lock held exclusively. The domain subject is not here: it
// comes from the e-mail in each query.
void Engine::refresh_subjects(const std::string& u) {
  Subjects& s = users_[u];
  s.names.clear();
  s.names.push_back("user:" + u);
  for (const auto& g : s.attrs.groups) s.names.push_back("group:" + g);
  if (auto it = teams_of_user_.find(u); it != teams_of_user_.end())
    for (const auto& t : it->second) s.names.push_back("team:" + t);
  s.hashes.clear();
  for (const auto& n : s.names) s.hashes.push_back(std::hash<std::string_view>{}(n));
}

const Engine::Subjects& Engine::subjects_of(std::string_view user, Subjects& scratch) const {
  if (auto it = users_.find(user); it != users_.end()) return it->second;
  scratch.names.assign(1, "user:" + std::string(user));
  scratch.hashes.assign(1, std::hash<std::string_view>{}(scratch.names[0]));
  return scratch;
}

ActionMask Engine::rbac(const Query& q, const std::vector<std::string_view>& prefixes,
                        const size_t* prefix_hashes, const Subjects& subjects,
                        std::string_view domain_subject, Eval* e, bool allow_delegations) const {
  ActionMask decided = 0, allowed = 0, excluded = 0;
  // One lookup per subject, one hash per level (both hashed beforehand).
  std::array<const SubjectGrants*, 64> lists{};
  size_t nlists = 0;
  for (size_t i = 0; i < subjects.names.size(); ++i)
    if (auto it = by_subject_.find(Prehashed(subjects.names[i], subjects.hashes[i]));
        it != by_subject_.end() && nlists < lists.size())
      lists[nlists++] = &it->second;
  if (!domain_subject.empty())
    if (auto it = by_subject_.find(domain_subject); it != by_subject_.end() && nlists < lists.size())
      lists[nlists++] = &it->second;
  // Deepest level first. The nearest level with a grant replaces everything
  // inherited from above; a level with only denials removes those actions
  // and lets the rest be inherited.
  for (size_t li = prefixes.size(); li-- > 0;) {
    ActionMask lvl_allow = 0, lvl_deny = 0;
    const uint64_t h = prefix_hashes[li];
    for (size_t si = 0; si < nlists; ++si) {
      const auto& hs = lists[si]->hashes;
      auto hit = std::lower_bound(hs.begin(), hs.end(), h);
      for (; hit != hs.end() && *hit == h; ++hit) {
        const Grant& g = lists[si]->grants[static_cast<size_t>(hit - hs.begin())];
        if (g.resource != prefixes[li]) continue;  // a hash collision
        if (g.expires_ms && q.now_ms >= g.expires_ms) continue;
        if (g.kind == 0) {
          lvl_allow |= g.role_actions;
          if (e) e->roles_held.push_back(g.role_index);
        } else if (g.kind == 1) {
          lvl_deny |= g.actions ? g.actions : kAll;
        } else {
          excluded |= g.actions ? g.actions : kAll;
          if (e && e->explain) e->exclusions.push_back(g.to_json());
          continue;
        }
        if (e && e->explain) {
          json gj = g.to_json();
          gj["inherited"] = li + 1 != prefixes.size();
          e->grants.push_back(std::move(gj));
        }
      }
    }
    allowed |= lvl_allow & ~decided & ~lvl_deny;
    decided |= lvl_allow ? kAll : lvl_deny;
  }
  // Ownership: recorded owners of any ancestor, and the caller-supplied owner
  // of the resource itself.
  const std::string_view user = q.user_id;
  bool owner = !q.owner.empty() && q.owner == user;
  if (!owner && !owners_.empty())
    for (size_t i = 0; i < prefixes.size(); ++i)
      if (auto it = owners_.find(Prehashed(prefixes[i], prefix_hashes[i]));
          it != owners_.end() && it->second == user)
        owner = true;
  if (owner) {
    allowed |= roles_.find("owner")->actions;
    if (e) {
      e->is_owner = true;
      e->roles_held.push_back(roles_.index("owner"));
    }
  }
  if (allow_delegations) {
    if (auto it = delegations_to_.find(user); it != delegations_to_.end()) {
      for (const auto& id : it->second) {
        const Delegation& d = delegations_.at(id);
        if ((d.expires_ms && q.now_ms >= d.expires_ms) || !covers(d.resource, q.resource)) continue;
        // The delegator cannot pass on what they (no longer) hold.
        Query dq = q;
        dq.user_id = d.from;
        dq.email = d.from_email;
        dq.owner = q.owner;
        Subjects scratch;
        std::array<char, 336> buf;
        ActionMask has = rbac(dq, prefixes, prefix_hashes, subjects_of(d.from, scratch),
                              make_domain_subject(d.from_email, buf), nullptr, false);
        ActionMask add = d.actions & has;
        allowed |= add;
        if (e && e->explain)
          e->extra.push_back({{"delegation", d.id}, {"from", d.from}, {"actions", mask_to_json(add)}});
      }
    }
    if (auto it = elevations_of_.find(user); it != elevations_of_.end()) {
      for (const auto& id : it->second) {
        const Elevation& el = elevations_.at(id);
        if (el.status != "approved" || q.now_ms >= el.expires_ms || !covers(el.resource, q.resource))
          continue;
        const int ri = roles_.index(el.role);
        if (ri < 0) continue;
        allowed |= roles_.all()[ri].actions;
        if (e) {
          e->roles_held.push_back(ri);
          if (e->explain)
            e->extra.push_back({{"elevation", el.id}, {"role", el.role}, {"expires_ms", el.expires_ms}});
        }
      }
    }
  }
  if (e) e->excluded |= excluded;
  allowed &= ~excluded;
  if (!has_scope(q.scopes, "write")) allowed &= kReadOnly;
  return allowed;
}

ActionMask Engine::rbac_actions(const Query& q) const {
  std::vector<std::string_view> prefixes;
  if (!path_prefixes(q.resource, prefixes)) return 0;
  std::shared_lock lk(mu_);
  if (std::string_view(q.user_id).rfind("guest:", 0) == 0) return 0;
  std::array<size_t, kMaxLevels> hashes{};
  for (size_t i = 0; i < prefixes.size(); ++i) hashes[i] = std::hash<std::string_view>{}(prefixes[i]);
  Subjects scratch;
  std::array<char, 336> buf;
  return rbac(q, prefixes, hashes.data(), subjects_of(q.user_id, scratch), make_domain_subject(q.email, buf),
              nullptr, true);
}

bool Engine::policy_applies(const Policy& p, const Query& q, Eval& e, std::string* why) const {
  auto no = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (p.actions && !(p.actions & e.bit)) return no("action not targeted");
  if (!p.resource_types.empty() && std::find(p.resource_types.begin(), p.resource_types.end(),
                                             resource_type(q.resource)) == p.resource_types.end())
    return no("resource type not targeted");
  if (p.guests_only && !e.guest) return no("not a guest");
  if (p.no_guests && e.guest) return no("guest");
  if (p.subject_is_owner && !e.is_owner) return no("not the owner");
  if (p.subject_not_owner && e.is_owner) return no("the owner");
  if (!p.roles.empty()) {
    bool any = false;
    for (int ri : e.roles_held)
      for (const auto& r : p.roles)
        if (roles_.all()[ri].name == r) any = true;
    if (!any) return no("holds none of the roles");
  }
  if (!p.groups.empty()) {
    bool any = false;
    if (e.attrs)
      for (const auto& g : e.attrs->groups)
        if (std::find(p.groups.begin(), p.groups.end(), g) != p.groups.end()) any = true;
    if (!any) return no("in none of the groups");
  }
  if (!p.email_domains.empty()) {
    std::string_view dom = e.domain_of(q.email);
    if (!dom.empty()) dom.remove_prefix(kDomainPrefix.size());
    if (dom.empty() ||
        std::find(p.email_domains.begin(), p.email_domains.end(), dom) == p.email_domains.end())
      return no("email domain not listed");
  }
  if (p.mfa_max_age_s >= 0) {
    if (q.mfa_verified_at_ms <= 0 || q.now_ms - q.mfa_verified_at_ms > p.mfa_max_age_s * 1000)
      return no("MFA not fresh");
  }
  if (!p.classification_any.empty() || !p.classification_none.empty()) {
    auto tagged = [&](const std::string& t) {
      for (auto* v : e.classes)
        if (std::find(v->begin(), v->end(), t) != v->end()) return true;
      return false;
    };
    if (!p.classification_any.empty() &&
        std::none_of(p.classification_any.begin(), p.classification_any.end(), tagged))
      return no("classification not matched");
    if (std::any_of(p.classification_none.begin(), p.classification_none.end(), tagged))
      return no("excluded classification present");
  }
  if (p.time_from_min >= 0 || p.weekdays) {
    // Local time = UTC + offset; 1970-01-01 was a Thursday (weekday 4).
    const int64_t local_min = q.now_ms / 60000 + p.utc_offset_min;
    const int64_t day = local_min >= 0 ? local_min / 1440 : (local_min - 1439) / 1440;
    const int minute = static_cast<int>(local_min - day * 1440);
    const int weekday = static_cast<int>(((day % 7) + 7 + 3) % 7);  // 0 = Monday
    if (p.weekdays && !(p.weekdays & (1u << weekday))) return no("weekday outside the window");
    if (p.time_from_min >= 0) {
      const bool in = p.time_from_min <= p.time_to_min
                          ? minute >= p.time_from_min && minute < p.time_to_min
                          : minute >= p.time_from_min || minute < p.time_to_min;  // overnight window
      if (!in) return no("time outside the window");
    }
  }
  if (!p.cidrs.empty() && std::none_of(p.cidrs.begin(), p.cidrs.end(),
                                       [&](const Cidr& c) { return c.contains(e.client_ip(q.client_ip)); }))
    return no("client IP outside the ranges");
  if (std::any_of(p.not_cidrs.begin(), p.not_cidrs.end(),
                  [&](const Cidr& c) { return c.contains(e.client_ip(q.client_ip)); }))
    return no("client IP in an excluded range");
  if (!p.ua_classes.empty() &&
      std::find(p.ua_classes.begin(), p.ua_classes.end(), ua_class(q.user_agent)) == p.ua_classes.end())
    return no("user agent class not listed");
  if (!p.countries.empty())
    if (const char* r = country_refusal(p.countries, e, q.client_ip)) return no(r);
  return true;
}

const char* Engine::country_refusal(const std::vector<std::string>& allowed, Eval& e,
                                    std::string_view ip) const {
  if (!countries_) {
    e.country_failure = "a country condition applies, but no GeoIP database is configured (geoip_database)";
    return e.country_failure;
  }
  const auto cc = countries_->country(e.client_ip(ip));
  if (!cc) {
    e.country_failure = "a country condition applies, but the client address's country is unknown";
    return e.country_failure;
  }
  const std::string_view code(cc->data(), cc->size());
  if (std::find(allowed.begin(), allowed.end(), code) == allowed.end()) return "client country not listed";
  return nullptr;
}

void Engine::evaluate(const Query& q, Eval& e, bool want_explain) const {
  e.explain = want_explain;
  if (want_explain) e.grants = e.exclusions = e.extra = e.policies = json::array();
  e.bit = action_bit(q.action);
  Decision& d = e.d;
  if (!e.bit) {
    d.reason = "unknown action";
    return;
  }
  if (!path_prefixes(q.resource, e.prefixes)) {
    d.reason = "malformed resource path";
    return;
  }
  for (size_t i = 0; i < e.prefixes.size(); ++i) e.hashes[i] = std::hash<std::string_view>{}(e.prefixes[i]);
  std::shared_lock lk(mu_);
  const std::string_view user = q.user_id;
  ActionMask rb = 0;
  if (!workspaces_.empty() && e.prefixes[0].rfind("workspace/", 0) == 0) {
    if (auto it = workspaces_.find(Prehashed(e.prefixes[0], e.hashes[0])); it != workspaces_.end()) {
      const WorkspaceRules& w = it->second;
      if (w.require_mfa && q.mfa_verified_at_ms <= 0) {  // guests never have MFA
        d.reason = "the workspace requires MFA";
        return;
      }
      // Measured from when the session was issued, not from the last request:
      // an old session must sign in again, however active it is.
      if (w.session_timeout_ms > 0 &&
          (q.session_created_at_ms <= 0 || q.now_ms - q.session_created_at_ms > w.session_timeout_ms)) {
        d.reason = "the session is older than the workspace's session timeout of " +
                   std::to_string(w.session_timeout_ms / 1000) + " s; sign in again";
        return;
      }
      if (!w.ip_allowlist.empty() &&
          std::none_of(w.ip_allowlist.begin(), w.ip_allowlist.end(),
                       [&](const Cidr& c) { return c.contains(e.client_ip(q.client_ip)); })) {
        d.reason = "the client address is outside the workspace's allowlist";
        return;
      }
      if (!w.allowed_countries.empty())
        if (const char* r = country_refusal(w.allowed_countries, e, q.client_ip)) {
          d.reason =
              e.country_failure ? r : "the client address is outside the workspace's allowed countries";
          return;
        }
    }
  }
  if (user.rfind("guest:", 0) == 0) {
    e.guest = true;
    // Only this plugin's guests (share links) have rights, and only the
    // link's current role on the link's resource.
    constexpr std::string_view kPrefix = "guest:sharing:";
    if (user.rfind(kPrefix, 0) == 0) {
      auto it = links_.find(user.substr(kPrefix.size()));
      if (it != links_.end()) {
        const LinkGrant& l = it->second;
        if (!l.revoked && (!l.expires_ms || q.now_ms < l.expires_ms) && covers(l.resource, q.resource) &&
            (!l.env || policy_applies(*l.env, q, e, nullptr))) {
          e.link = &l;
          const int ri = roles_.index(l.role);
          if (ri >= 0) {
            rb = roles_.all()[ri].actions & kReadOnly;
            rb |= roles_.all()[ri].actions & (action_bit("comment") | action_bit("write"));
            if (l.no_download) rb &= ~(action_bit("download") | action_bit("export"));
            if (l.no_print) rb &= ~action_bit("print");
            if (l.no_copy) rb &= ~action_bit("copy");
            e.roles_held.push_back(ri);
          }
          if (!l.watermark.empty()) d.obligations.push_back({{"type", "watermark"}, {"level", l.watermark}});
          if (want_explain) e.extra.push_back({{"link", l.id}, {"role", l.role}, {"resource", l.resource}});
        }
      }
    }
  } else {
    // Break-glass: an active, unexpired emergency grant bypasses everything
    // and is always logged high.
    if (auto it = break_glass_of_.find(user); it != break_glass_of_.end()) {
      for (const auto& id : it->second) {
        const BreakGlass& b = break_glass_.at(id);
        if (b.status == "active" && q.now_ms < b.expires_ms && covers(b.resource, q.resource)) {
          e.break_glass = true;
          d.permit = true;
          d.reason = "break-glass access " + b.id;
          d.obligations.push_back({{"type", "log"}, {"level", "high"}});
          if (want_explain) e.extra.push_back({{"break_glass", b.id}, {"expires_ms", b.expires_ms}});
          return;
        }
      }
    }
    e.subjects = &subjects_of(user, e.scratch);
    e.attrs = &e.subjects->attrs;
    rb = rbac(q, e.prefixes, e.hashes.data(), *e.subjects, e.domain_of(q.email), &e, true);
  }
  e.allowed = rb;
  const bool rbac_permit = (rb & e.bit) != 0;
  const bool excluded = (e.excluded & e.bit) != 0;

  // Resource classification tags, inherited down the path.
  if (!policies_.empty() && !classes_.empty())
    for (size_t i = 0; i < e.prefixes.size(); ++i)
      if (auto it = classes_.find(Prehashed(e.prefixes[i], e.hashes[i])); it != classes_.end())
        e.classes.push_back(&it->second);

  // Candidate policies: global ones and those targeting a prefix of the path.
  thread_local std::vector<const Policy*> cand;
  cand.clear();
  if (!policies_by_prefix_.empty()) {
    if (auto it = policies_by_prefix_.find(std::string_view()); it != policies_by_prefix_.end())
      cand.insert(cand.end(), it->second.begin(), it->second.end());
    for (size_t i = 0; i < e.prefixes.size(); ++i)
      if (auto it = policies_by_prefix_.find(Prehashed(e.prefixes[i], e.hashes[i]));
          it != policies_by_prefix_.end())
        cand.insert(cand.end(), it->second.begin(), it->second.end());
    // By rank = (order, id). Insertion sort: the lists are short, each is
    // sorted already, and it needs no buffer (std::stable_sort allocates).
    for (size_t i = 1; i < cand.size(); ++i)
      for (size_t j = i; j > 0 && cand[j - 1]->rank > cand[j]->rank; --j) std::swap(cand[j - 1], cand[j]);
  }
  // Applicable policies are marked in place; obligations are gathered from
  // those whose effect matches the outcome.
  thread_local std::vector<char> applicable;
  applicable.assign(cand.size(), 0);
  const Policy* first = nullptr;
  const Policy* first_permit = nullptr;
  const Policy* first_deny = nullptr;
  for (size_t i = 0; i < cand.size(); ++i) {
    const Policy* p = cand[i];
    std::string why;
    const bool applies = policy_applies(*p, q, e, want_explain ? &why : nullptr);
    if (want_explain)
      e.policies.push_back({{"id", p->id}, {"effect", p->effect}, {"applicable", applies}, {"why", why}});
    if (!applies) continue;
    applicable[i] = 1;
    if (!first) first = p;
    if (p->effect == "permit") {
      if (!first_permit) first_permit = p;
    } else if (!first_deny) {
      first_deny = p;
    }
  }
  const bool any_permit = first_permit != nullptr, any_deny = first_deny != nullptr;
  auto take = [&](const char* effect) {
    for (size_t i = 0; i < cand.size(); ++i)
      if (applicable[i] && cand[i]->effect == effect)
        for (const auto& o : cand[i]->obligations) d.obligations.push_back(o);
  };
  auto take_one = [&](const Policy* p) {
    for (const auto& o : p->obligations) d.obligations.push_back(o);
  };
  switch (combining_) {
    case Combining::DenyOverrides:
      if (any_deny) {
        d.permit = false;
        d.reason = "denied by policy " + first_deny->id;
        take("deny");
      } else if (rbac_permit || any_permit) {
        d.permit = true;
        d.reason = rbac_permit ? "granted" : "permitted by policy " + first_permit->id;
        take("permit");
      }
      break;
    case Combining::PermitOverrides:
      if (rbac_permit || any_permit) {
        d.permit = true;
        d.reason = any_permit ? "permitted by policy " + first_permit->id : "granted";
        take("permit");
      } else if (any_deny) {
        d.reason = "denied by policy " + first_deny->id;
        take("deny");
      }
      break;
    case Combining::FirstApplicable:
      if (first) {
        d.permit = first->effect == "permit";
        d.reason = std::string(d.permit ? "permitted" : "denied") + " by policy " + first->id;
        take_one(first);
      } else {
        d.permit = rbac_permit;
        if (d.permit) d.reason = "granted";
      }
      break;
  }
  if (excluded) {
    d.permit = false;
    d.reason = "excluded";
  }
  // Fail closed: a country condition that could not be evaluated denies,
  // even where it sat in a deny policy that therefore did not apply.
  if (e.country_failure) {
    d.permit = false;
    d.reason = e.country_failure;
  }
  if (d.permit) {
    for (const auto& o : d.obligations)
      if (o["type"] == "require_mfa") {
        const int64_t max_age = o["max_age_s"].get<int64_t>() * 1000;
        if (q.mfa_verified_at_ms <= 0 || q.now_ms - q.mfa_verified_at_ms > max_age) {
          d.permit = false;
          d.reason = "fresh MFA required";
        }
      }
  }
  if (!d.permit && d.reason.empty()) d.reason = e.guest ? "the share link does not allow this" : "no grant";
}

bool Engine::link_usable(const std::string& id, const Query& q, std::string* why) const {
  std::shared_lock lk(mu_);
  auto it = links_.find(id);
  auto no = [&](const char* r) {
    if (why) *why = r;
    return false;
  };
  if (it == links_.end() || it->second.revoked) return no("the link was revoked");
  const LinkGrant& l = it->second;
  if (l.expires_ms && q.now_ms >= l.expires_ms) return no("the link has expired");
  if (l.env) {
    Eval e;
    e.bit = action_bit("read");
    if (!policy_applies(*l.env, q, e, why)) return false;
  }
  return true;
}

Decision Engine::decide(const Query& q) const {
  // One evaluation scratch per thread: its vectors keep their capacity, so a
  // decision does not allocate (but for a long reason or obligations).
  thread_local Eval e;
  e.reset();
  evaluate(q, e, false);
  Decision out;
  out.permit = e.d.permit;
  out.reason = e.d.reason;
  out.obligations = std::move(e.d.obligations);
  return out;
}

json Engine::explain(const Query& q) const {
  Eval e;
  evaluate(q, e, true);
  json subjects = e.subjects ? json(e.subjects->names) : json::array();
  if (!e.domain_subject.empty()) subjects.push_back(std::string(e.domain_subject));
  json out = {{"decision", e.d.permit ? "permit" : "deny"},
              {"reason", e.d.reason},
              {"action", std::string(q.action)},
              {"resource", std::string(q.resource)},
              {"user", std::string(q.user_id)},
              {"subjects", subjects},
              {"owner", e.is_owner},
              {"guest", e.guest},
              {"break_glass", e.break_glass},
              {"granted_actions", mask_to_json(e.allowed)},
              {"grants", e.grants},
              {"exclusions", e.exclusions},
              {"other", e.extra},
              {"policies", e.policies},
              {"algorithm", combining_name(combining())},
              {"obligations", e.d.obligations.is_null() ? json::array() : e.d.obligations}};
  json roles = json::array();
  for (int ri : e.roles_held) roles.push_back(roles_.all()[ri].name);
  out["roles"] = roles;
  return out;
}

}  // namespace vellum::sharing
