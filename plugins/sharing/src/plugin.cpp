// The sharing plugin: the host's policy decision point ("pdp" service) and
// the APIs that feed it — grants, ABAC policies, attributes, share links,
// delegation, elevation and break-glass. Everything the PDP needs is compiled
// in memory (engine.hpp) from this plugin's storage at start and updated on
// each change; decisions never touch storage. See ../README.md.
#include <vellum/sdk.hpp>
#include <vellum/services/crypto_v1.h>
#include <vellum/services/pdp_v1.h>

#include <argon2.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine.hpp"
#include "geoip.hpp"
#include "qr_png.hpp"

namespace {

using nlohmann::json;
using vellum::Error;
namespace sh = vellum::sharing;

struct HttpProblem {
  int status;
  std::string detail;
  json extra = json::object();
};

std::string hex(std::string_view bytes) {
  static const char* h = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(h[c >> 4]);
    out.push_back(h[c & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return hex(std::string_view(reinterpret_cast<const char*>(d), sizeof d));
}

std::string b64url(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '_' || c == '.';
  });
}

struct Config {
  sh::Combining combining = sh::Combining::DenyOverrides;
  json roles = json::array();
  int link_max_failures = 5;
  int64_t link_lock_seconds = 900;
  int64_t link_delay_base_ms = 1000;  // progressive delay: base * 2^(failures-1), at most 60 s
  int64_t mfa_fresh_seconds = 300;
  int64_t elevation_max_seconds = 8 * 3600;
  std::map<std::string, int> break_glass_approvals{{"default", 2}};
  // Where a share link opens: <link_url>#<token>. Empty: https://<Host>/share.
  std::string link_url;
  std::string geoip_database;  // a MaxMind DB file; empty: country conditions deny
};

Config parse_config(std::string_view text) {
  Config c;
  if (text.empty()) return c;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception&) {
    throw Error(VELLUM_ERR_INVALID_ARGUMENT, "sharing config is not valid JSON");
  }
  if (j.is_null()) return c;
  if (!j.is_object()) throw Error(VELLUM_ERR_INVALID_ARGUMENT, "sharing config must be a table");
  auto int_in = [](const json& v, const std::string& k, int64_t lo, int64_t hi) {
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      throw Error(VELLUM_ERR_INVALID_ARGUMENT, "sharing: '" + k + "' must be an integer in " +
                                                   std::to_string(lo) + ".." + std::to_string(hi));
    return v.get<int64_t>();
  };
  for (const auto& [k, v] : j.items()) {
    if (k == "combining") {
      auto cm = v.is_string() ? sh::parse_combining(v.get<std::string>()) : std::nullopt;
      if (!cm)
        throw Error(VELLUM_ERR_INVALID_ARGUMENT,
                    "sharing: 'combining' must be deny-overrides, permit-overrides or first-applicable");
      c.combining = *cm;
    } else if (k == "roles") {
      if (!v.is_array())
        throw Error(VELLUM_ERR_INVALID_ARGUMENT, "sharing: 'roles' must be an array of tables");
      sh::Roles r;
      try {
        for (const auto& spec : v) r.add_custom(spec);
      } catch (const sh::BadInput& e) {
        throw Error(VELLUM_ERR_INVALID_ARGUMENT, std::string("sharing: roles: ") + e.what());
      }
      c.roles = v;
    } else if (k == "link_max_failures") {
      c.link_max_failures = static_cast<int>(int_in(v, k, 1, 1000));
    } else if (k == "link_lock_seconds") {
      c.link_lock_seconds = int_in(v, k, 1, 86400 * 30);
    } else if (k == "link_delay_base_ms") {
      c.link_delay_base_ms = int_in(v, k, 0, 60000);
    } else if (k == "mfa_fresh_seconds") {
      c.mfa_fresh_seconds = int_in(v, k, 10, 86400);
    } else if (k == "elevation_max_seconds") {
      c.elevation_max_seconds = int_in(v, k, 60, 86400 * 7);
    } else if (k == "geoip_database") {
      if (!v.is_string() || v.get<std::string>().empty())
        throw Error(VELLUM_ERR_INVALID_ARGUMENT,
                    "sharing: 'geoip_database' must be the path of a MaxMind DB file");
      c.geoip_database = v;
    } else if (k == "link_url") {
      const std::string u = v.is_string() ? v.get<std::string>() : std::string();
      if ((u.rfind("https://", 0) != 0 && u.rfind("http://", 0) != 0) || u.size() > 512 ||
          u.find_first_of("#? \r\n") != std::string::npos)
        throw Error(VELLUM_ERR_INVALID_ARGUMENT,
                    "sharing: 'link_url' must be an http(s) URL without query or fragment");
      c.link_url = u;
    } else if (k == "break_glass_approvals") {
      if (!v.is_object())
        throw Error(VELLUM_ERR_INVALID_ARGUMENT, "sharing: 'break_glass_approvals' must be a table");
      for (const auto& [cls, n] : v.items())
        c.break_glass_approvals[cls] = static_cast<int>(int_in(n, "break_glass_approvals." + cls, 1, 20));
    } else {
      throw Error(VELLUM_ERR_INVALID_ARGUMENT, "sharing: unknown config key '" + k + "'");
    }
  }
  return c;
}

std::shared_ptr<const sh::CountryLookup> open_countries(const Config& c) {
  if (c.geoip_database.empty()) return nullptr;
  try {
    return sh::open_maxmind_countries(c.geoip_database);
  } catch (const std::runtime_error& e) {
    throw Error(VELLUM_ERR_INVALID_ARGUMENT,
                "sharing: geoip_database '" + c.geoip_database + "' cannot be opened: " + e.what());
  }
}

sh::Roles make_roles(const Config& c) {
  sh::Roles r;
  for (const auto& spec : c.roles) r.add_custom(spec);
  return r;
}

// Argon2id with OWASP's second recommended parameter set (19 MiB, t=2, p=1).
std::string hash_password(const std::string& pw, const std::string& salt) {
  char out[256];
  int rc =
      argon2id_hash_encoded(2, 19456, 1, pw.data(), pw.size(), salt.data(), salt.size(), 32, out, sizeof out);
  if (rc != ARGON2_OK) throw Error(VELLUM_ERR_INTERNAL, "argon2id failed");
  return out;
}
bool verify_password(const std::string& encoded, const std::string& pw) {
  return argon2id_verify(encoded.c_str(), pw.data(), pw.size()) == ARGON2_OK;
}

class Sharing : public vellum::Plugin {
 public:
  static constexpr const char* kName = "sharing";
  static constexpr const char* kVersion = "0.1.0";
  static constexpr const char* kDescription =
      "Policy decision point: roles, grants, ABAC policies, share links, delegation, elevation, break-glass";
  static constexpr const char* kProvides[] = {VELLUM_PDP_SERVICE, nullptr};
  static constexpr uint32_t kMinMinor = 3;  // principal e-mail and session age

  static void validate(std::string_view config) { (void)open_countries(parse_config(config)); }

  Sharing(vellum::Host& host, std::string_view config)
      : Plugin(host), cfg_(parse_config(config)), engine_(make_roles(cfg_)) {
    engine_.set_combining(cfg_.combining);
    engine_.set_country_lookup(open_countries(cfg_));
    vtable_.struct_size = sizeof vtable_;
    vtable_.decide = &Sharing::c_decide;
    vtable_.decide_ex = &Sharing::decide_into;
    host.provide(VELLUM_PDP_SERVICE, VELLUM_PDP_MAJOR, VELLUM_PDP_MINOR, &vtable_, this);
  }

  void start() override {
    load();
    subs_.push_back(host().subscribe("editor.document.created", [this](std::string_view, std::string_view p) {
      // Documents are owned by their creator; remembering it lets the
      // sharing routes check "share" on a document the editor owns.
      json j = json::parse(p);
      if (!j.contains("id") || !j.contains("owner")) return;
      const std::string res = "document/" + j["id"].get<std::string>();
      host().put("o/" + res, j["owner"].get<std::string>());
      engine_.set_owner(res, j["owner"]);
    }));
    // grants
    route("POST", "/v1/sharing/grants", "Grant, deny or exclude a subject on a resource",
          [this](vellum::Request& r) { create_grant(r); });
    route("GET", "/v1/sharing/grants", "Grants on one resource",
          [this](vellum::Request& r) { list_grants(r); });
    route("DELETE", "/v1/sharing/grants/{id}", "Remove a grant",
          [this](vellum::Request& r) { delete_grant(r); });
    route("POST", "/v1/sharing/bulk", "Share one resource with many subjects (per-entry results)",
          [this](vellum::Request& r) { bulk(r); });
    // policies and attributes
    route("PUT", "/v1/sharing/policies/{id}", "Create or replace an ABAC policy",
          [this](vellum::Request& r) { put_policy(r); });
    route("GET", "/v1/sharing/policies", "List ABAC policies",
          [this](vellum::Request& r) { list_policies(r); });
    route("DELETE", "/v1/sharing/policies/{id}", "Delete an ABAC policy",
          [this](vellum::Request& r) { delete_policy(r); });
    route("PUT", "/v1/sharing/settings", "Set the combining algorithm",
          [this](vellum::Request& r) { put_settings(r); });
    route("PUT", "/v1/sharing/users/{id}", "Set a user's groups",
          [this](vellum::Request& r) { put_user(r); });
    route("PUT", "/v1/sharing/classifications", "Set a resource's classification tags",
          [this](vellum::Request& r) { put_classification(r); });
    route("GET", "/v1/sharing/explain", "Why may (or may not) a user do an action on a resource",
          [this](vellum::Request& r) { explain(r); });
    // share links
    route("POST", "/v1/sharing/links", "Create a share link (the token is shown once)",
          [this](vellum::Request& r) { create_link(r); });
    route("GET", "/v1/sharing/links", "Share links of a resource",
          [this](vellum::Request& r) { list_links(r); });
    route("PATCH", "/v1/sharing/links/{id}", "Change a share link (applies at once)",
          [this](vellum::Request& r) { patch_link(r); });
    route("DELETE", "/v1/sharing/links/{id}", "Revoke a share link and its guest sessions",
          [this](vellum::Request& r) { revoke_link(r); });
    route("GET", "/v1/sharing/links/{id}/uses", "Who redeemed a link, when, from where (hashed)",
          [this](vellum::Request& r) { link_uses(r); });
    route("POST", "/v1/sharing/links/{id}/qr.png", "The link's URL as a QR code (PNG); brings the token",
          [this](vellum::Request& r) { link_qr(r); });
    route(
        "POST", "/v1/sharing/links/redeem", "Redeem a share link for a guest session",
        [this](vellum::Request& r) { redeem(r); }, VELLUM_ROUTE_PUBLIC);
    // delegation, elevation, break-glass
    route("POST", "/v1/sharing/delegations", "Delegate some of your permissions",
          [this](vellum::Request& r) { delegate(r); });
    route("DELETE", "/v1/sharing/delegations/{id}", "Withdraw a delegation",
          [this](vellum::Request& r) { undelegate(r); });
    route("POST", "/v1/sharing/elevations", "Request temporary elevation (fresh MFA, a justification)",
          [this](vellum::Request& r) { request_elevation(r); });
    route("POST", "/v1/sharing/elevations/{id}/approve", "Approve an elevation (the named approver)",
          [this](vellum::Request& r) { decide_elevation(r, true); });
    route("POST", "/v1/sharing/elevations/{id}/deny", "Deny an elevation (the named approver)",
          [this](vellum::Request& r) { decide_elevation(r, false); });
    route("POST", "/v1/sharing/break-glass", "Request emergency access",
          [this](vellum::Request& r) { request_break_glass(r); });
    route("POST", "/v1/sharing/break-glass/{id}/approve", "Approve emergency access (administrators)",
          [this](vellum::Request& r) { approve_break_glass(r); });
    route("POST", "/v1/sharing/break-glass/{id}/justification", "Justify emergency access (within 24 h)",
          [this](vellum::Request& r) { justify_break_glass(r); });
    // workspaces
    route("POST", "/v1/sharing/workspaces", "Create a workspace (you become its owner)",
          [this](vellum::Request& r) { create_workspace(r); });
    route("GET", "/v1/sharing/workspaces/{id}", "A workspace and its settings",
          [this](vellum::Request& r) { get_workspace(r); });
    route("PUT", "/v1/sharing/workspaces/{id}/settings", "Replace a workspace's settings",
          [this](vellum::Request& r) { put_workspace_settings(r); });
    // teams
    route("POST", "/v1/sharing/teams", "Create a team (you become its owner)",
          [this](vellum::Request& r) { create_team(r); });
    route("GET", "/v1/sharing/teams/{id}", "A team and its members",
          [this](vellum::Request& r) { get_team(r); });
    route("POST", "/v1/sharing/teams/{id}/invites",
          "Invite by email (the token goes out through sharing.mail)",
          [this](vellum::Request& r) { invite(r); });
    route("POST", "/v1/sharing/teams/invites/accept", "Accept a team invitation",
          [this](vellum::Request& r) { accept_invite(r); });
    route("PATCH", "/v1/sharing/teams/{id}/members/{user}", "Change a member's role",
          [this](vellum::Request& r) { change_member(r); });
    route("DELETE", "/v1/sharing/teams/{id}/members/{user}", "Remove a member (or leave)",
          [this](vellum::Request& r) { remove_member(r); });
    route("POST", "/v1/sharing/teams/{id}/transfer", "Transfer ownership to a member",
          [this](vellum::Request& r) { transfer_team(r); });
    route("GET", "/v1/sharing/break-glass", "List emergency accesses (administrators)",
          [this](vellum::Request& r) { list_break_glass(r); });
  }

  void stop() override { subs_.clear(); }

 private:
  // ---- the PDP service
  static sh::Query query_of(const vellum_principal_v1* who, vellum_str action, vellum_str resource,
                            vellum_str owner, int64_t now) {
    sh::Query q;
    q.user_id = vellum::to_sv(who->user_id);
    q.scopes = vellum::to_sv(who->scopes);
    q.client_ip = vellum::to_sv(who->client_ip);
    q.user_agent = vellum::to_sv(who->user_agent);
    q.mfa_verified_at_ms = who->mfa_verified_at_ms;
    // kMinMinor = 3 guarantees a host that fills these; the size check keeps
    // a smaller struct from a misbehaving caller from being over-read.
    if (who->struct_size >= offsetof(vellum_principal_v1, session_created_at_ms) + sizeof(int64_t)) {
      q.email = vellum::to_sv(who->email);
      q.session_created_at_ms = who->session_created_at_ms;
    }
    q.action = vellum::to_sv(action);
    q.resource = vellum::to_sv(resource);
    q.owner = vellum::to_sv(owner);
    q.now_ms = now;
    return q;
  }
  sh::Decision decide_for(const vellum_principal_v1* who, vellum_str action, vellum_str resource,
                          vellum_str owner) const {
    if (!who || !who->authenticated) return sh::Decision{false, "unauthenticated", json()};
    sh::Decision d = engine_.decide(query_of(who, action, resource, owner, host().now_ms()));
    for (const auto& o : d.obligations)
      if (o["type"] == "log" && o["level"] == "high") {
        // Logged without the principal's secrets: user id, action, resource.
        host().warn("high-level access: " + std::string(vellum::to_sv(who->user_id)) + " " +
                    std::string(vellum::to_sv(action)) + " " + std::string(vellum::to_sv(resource)) + " -> " +
                    (d.permit ? "permit" : "deny"));
        break;
      }
    return d;
  }
  // Both service entry points: out_json (decide_ex) may be null.
  static vellum_status decide_into(void* inst, const vellum_principal_v1* who, vellum_str action,
                                   vellum_str resource, vellum_str owner, vellum_buffer* out_json) noexcept {
    auto* self = static_cast<Sharing*>(inst);
    return vellum::detail::guarded(self->host().api(), self->host().self(), [&] {
      sh::Decision d = self->decide_for(who, action, resource, owner);
      if (out_json) {
        const std::string s = json({{"decision", d.permit ? "permit" : "deny"},
                                    {"reason", d.reason},
                                    {"obligations", d.obligations.is_null() ? json::array() : d.obligations}})
                                  .dump();
        auto* p = static_cast<uint8_t*>(self->host().api()->alloc(s.size()));
        if (!p) return VELLUM_ERR_INTERNAL;
        std::memcpy(p, s.data(), s.size());
        *out_json = vellum_buffer{p, s.size()};
      }
      if (d.permit) return VELLUM_OK;
      self->host().api()->set_error(self->host().self(), vellum::to_c(d.reason));
      return VELLUM_ERR_PERMISSION_DENIED;
    });
  }
  static vellum_status c_decide(void* inst, const vellum_principal_v1* who, vellum_str action,
                                vellum_str resource, vellum_str owner) noexcept {
    return decide_into(inst, who, action, resource, owner, nullptr);
  }

  // ---- plumbing
  template <class F>
  void route(const char* method, const char* path, const char* summary, F&& f, uint32_t flags = 0) {
    host().route(
        method, path,
        [this, f = std::forward<F>(f)](vellum::Request& req) {
          try {
            f(req);
          } catch (const HttpProblem& p) {
            respond_problem(req, p);
          } catch (const sh::BadInput& e) {
            respond_problem(req, HttpProblem{422, e.what(), {{"pointer", e.pointer}}});
          }
        },
        flags, summary);
  }
  static void respond_problem(vellum::Request& req, const HttpProblem& p) {
    json body = p.extra;
    body["type"] = "about:blank";
    body["title"] = vellum::http_reason(p.status);
    body["status"] = p.status;
    body["detail"] = p.detail;
    req.respond(static_cast<uint16_t>(p.status), "application/problem+json", body.dump());
  }
  static json body_of(vellum::Request& req) {
    if (req.body().size() > 1 << 20) throw HttpProblem{413, "request body too large"};
    try {
      json j = json::parse(req.body());
      if (!j.is_object()) throw HttpProblem{400, "the body must be a JSON object"};
      return j;
    } catch (const json::exception&) {
      throw HttpProblem{400, "the body is not valid JSON"};
    }
  }
  std::vector<std::pair<std::string, std::string>> scan_all(const std::string& prefix) const {
    std::vector<std::pair<std::string, std::string>> out;
    std::string start;
    for (;;) {
      vellum::Host::ScanOptions o;
      o.prefix = prefix;
      o.start = start;
      o.limit = 1000;
      size_t before = out.size();
      const bool more = host().scan(o, [&](std::string_view k, std::string_view v, uint64_t) {
        out.emplace_back(std::string(k), std::string(v));
        return true;
      });
      if (!more || out.size() == before) return out;
      start = out.back().first + std::string(1, '\0');
    }
  }
  std::string new_id() const { return hex(host().random(16)); }
  static bool is_admin(const vellum::Principal& p) {
    return sh::has_scope(p.scopes, "admin") && !p.is_guest();
  }

  void changed(const std::string& resource, const std::vector<std::string>& subjects = {}) const {
    host().publish("sharing.changed", json({{"resource", resource}, {"subjects", subjects}}).dump());
  }
  void audit(vellum::Request& req, const std::string& action, const std::string& resource, json details = {},
             int32_t outcome = VELLUM_OUTCOME_SUCCESS) const {
    host().audit(action, resource, outcome, &req, details.is_null() ? std::string() : details.dump());
  }

  sh::Query query_for(const vellum::Principal& p, std::string_view action, std::string_view resource,
                      std::string_view owner) const {
    sh::Query q;
    q.user_id = p.user_id;
    q.scopes = p.scopes;
    q.client_ip = p.client_ip;
    q.user_agent = p.user_agent;
    q.mfa_verified_at_ms = p.mfa_verified_at_ms;
    q.email = p.email;
    q.session_created_at_ms = p.session_created_at_ms;
    q.action = action;
    q.resource = resource;
    q.owner = owner;
    q.now_ms = host().now_ms();
    return q;
  }

  // The caller may change sharing on resource: administrators always (and
  // audited as such); others need `action` there through the PDP, and can
  // hand out only actions they hold themselves.
  void require_may(vellum::Request& req, const std::string& resource, const char* action,
                   sh::ActionMask handing_out = 0) const {
    const auto p = req.principal();
    if (p.is_guest()) throw HttpProblem{403, "guests cannot change sharing"};
    if (is_admin(p)) return;
    const std::string owner = engine_.owner_of(resource);
    if (!host().authorize(req, action, resource, owner))
      throw HttpProblem{403, std::string("you may not ") + action + " " + resource};
    if (handing_out) {
      const sh::ActionMask held = engine_.rbac_actions(query_for(p, action, resource, owner));
      if ((handing_out & held) != handing_out)
        throw HttpProblem{403,
                          "you cannot hand out actions you do not hold",
                          {{"missing", sh::mask_to_json(handing_out & ~held)}}};
    }
  }
  void require_admin(vellum::Request& req) const {
    if (!is_admin(req.principal())) throw HttpProblem{403, "only administrators may do this"};
  }
  static std::string resource_param(vellum::Request& req) {
    std::string r(req.query_param("resource").value_or(""));
    if (!sh::valid_resource(r)) throw HttpProblem{400, "'resource' must be a resource path"};
    return r;
  }

  // ---- load everything at start
  void load() {
    if (auto s = host().get("settings")) {
      json j = json::parse(s->data);
      if (auto c = sh::parse_combining(j.value("combining", ""))) engine_.set_combining(*c);
    }
    for (auto& [k, v] : scan_all("g/"))
      engine_.put_grant(sh::Grant::from_json(json::parse(v), engine_.roles()));
    for (auto& [k, v] : scan_all("p/"))
      engine_.put_policy(sh::Policy::from_json(json::parse(v), engine_.roles()));
    for (auto& [k, v] : scan_all("u/")) {
      json j = json::parse(v);
      engine_.set_user(k.substr(2), {j.value("groups", std::vector<std::string>{})});
    }
    for (auto& [k, v] : scan_all("c/")) engine_.set_classification(k.substr(2), json::parse(v));
    for (auto& [k, v] : scan_all("o/")) engine_.set_owner(k.substr(2), v);
    for (auto& [k, v] : scan_all("l/")) engine_.put_link(link_grant(json::parse(v)));
    for (auto& [k, v] : scan_all("d/")) engine_.put_delegation(delegation_of(json::parse(v)));
    for (auto& [k, v] : scan_all("e/")) engine_.put_elevation(elevation_of(json::parse(v)));
    for (auto& [k, v] : scan_all("b/")) engine_.put_break_glass(break_glass_of(json::parse(v)));
    for (auto& [k, v] : scan_all("t/")) apply_team(json::parse(v));
    for (auto& [k, v] : scan_all("w/")) {
      json w = json::parse(v);
      engine_.set_workspace_rules(w["id"], rules_of(w["settings"]));
    }
    host().info("sharing: " + std::to_string(engine_.grant_count()) + " grants loaded");
  }

  // ---- grants
  sh::Grant parse_grant(const json& body, const std::string& actor) const {
    json j = body;
    for (const char* k : {"id", "created_by", "created_ms"}) j.erase(k);
    sh::Grant g = sh::Grant::from_json(j, engine_.roles());
    g.id = new_id();
    g.created_by = actor;
    g.created_ms = host().now_ms();
    if (g.expires_ms && g.expires_ms <= g.created_ms)
      throw sh::BadInput("'expires_ms' is in the past", "/expires_ms");
    return g;
  }
  sh::ActionMask handed_out(const sh::Grant& g) const {
    return g.effect == "allow" ? engine_.roles().find(g.role)->actions : 0;
  }
  json store_grant(vellum::Request& req, const sh::Grant& g) {
    require_may(req, g.resource, g.effect == "allow" ? "share" : "manage", handed_out(g));
    host().put("g/" + g.id, g.to_json().dump(), VELLUM_VERSION_ABSENT);
    engine_.put_grant(g);
    audit(req, "sharing.grant.create", g.resource,
          {{"grant", g.id}, {"subject", g.subject}, {"effect", g.effect}, {"role", g.role}});
    changed(g.resource, {g.subject});
    return g.to_json();
  }
  void create_grant(vellum::Request& req) {
    json body = body_of(req);
    sh::Grant g = parse_grant(body, std::string(req.principal().user_id));
    req.json(201, store_grant(req, g).dump());
  }
  void list_grants(vellum::Request& req) {
    const std::string res = resource_param(req);
    require_may(req, res, "share");
    json items = json::array();
    for (const auto& g : engine_.grants_on(res)) items.push_back(g.to_json());
    req.json(200, json({{"items", items}}).dump());
  }
  void delete_grant(vellum::Request& req) {
    const std::string id(req.param("id").value_or(""));
    auto g = valid_id(id) ? engine_.grant(id) : std::nullopt;
    if (!g) throw HttpProblem{404, "no such grant"};
    require_may(req, g->resource, g->effect == "allow" ? "share" : "manage");
    host().erase("g/" + id);
    engine_.remove_grant(id);
    audit(req, "sharing.grant.delete", g->resource, {{"grant", id}, {"subject", g->subject}});
    changed(g->resource, {g->subject});
    req.json(200, g->to_json().dump());
  }
  void bulk(vellum::Request& req) {
    json body = body_of(req);
    auto entries = body.find("entries");
    if (entries == body.end() || !entries->is_array() || entries->empty() || entries->size() > 1000)
      throw HttpProblem{422, "'entries' must be an array of 1..1000 grants", {{"pointer", "/entries"}}};
    const std::string actor(req.principal().user_id);
    json results = json::array();
    size_t ok = 0;
    for (size_t i = 0; i < entries->size(); ++i) {
      json e = (*entries)[i];
      if (e.is_object()) {
        // Entry fields default from the top level (one resource, one role).
        for (const char* k : {"resource", "role", "effect", "expires_ms"})
          if (!e.contains(k) && body.contains(k)) e[k] = body[k];
      }
      try {
        sh::Grant g = parse_grant(e, actor);
        json stored = store_grant(req, g);
        results.push_back({{"index", i}, {"status", 201}, {"grant", stored}});
        ++ok;
      } catch (const sh::BadInput& ex) {
        results.push_back({{"index", i}, {"status", 422}, {"detail", ex.what()}, {"pointer", ex.pointer}});
      } catch (const HttpProblem& p) {
        results.push_back({{"index", i}, {"status", p.status}, {"detail", p.detail}});
      }
    }
    req.json(ok == entries->size() ? 201 : 207, json({{"results", results}, {"succeeded", ok}}).dump());
  }

  // ---- policies, settings, attributes
  void put_policy(vellum::Request& req) {
    require_admin(req);
    const std::string id(req.param("id").value_or(""));
    if (!valid_id(id)) throw HttpProblem{400, "policy ids are 1..64 characters of [A-Za-z0-9._-]"};
    json body = body_of(req);
    body["id"] = id;
    sh::Policy p = sh::Policy::from_json(body, engine_.roles());
    const bool existed = host().get("p/" + id).has_value();
    host().put("p/" + id, body.dump());
    engine_.put_policy(p);
    audit(req, "sharing.policy.put", p.resource, {{"policy", id}, {"effect", p.effect}});
    changed(p.resource);
    req.json(existed ? 200 : 201, body.dump());
  }
  void list_policies(vellum::Request& req) {
    require_admin(req);
    json items = json::array();
    for (const auto& p : engine_.policies()) items.push_back(p.source);
    req.json(200, json({{"items", items}, {"algorithm", sh::combining_name(engine_.combining())}}).dump());
  }
  void delete_policy(vellum::Request& req) {
    require_admin(req);
    const std::string id(req.param("id").value_or(""));
    if (!valid_id(id) || !engine_.remove_policy(id)) throw HttpProblem{404, "no such policy"};
    host().erase("p/" + id);
    audit(req, "sharing.policy.delete", "", {{"policy", id}});
    changed("");
    req.json(200, json({{"id", id}, {"deleted", true}}).dump());
  }
  void put_settings(vellum::Request& req) {
    require_admin(req);
    json body = body_of(req);
    auto c = body.find("combining");
    auto alg = c != body.end() && c->is_string() ? sh::parse_combining(c->get<std::string>()) : std::nullopt;
    if (!alg || body.size() != 1)
      throw HttpProblem{422,
                        "'combining' must be deny-overrides, permit-overrides or first-applicable",
                        {{"pointer", "/combining"}}};
    host().put("settings", body.dump());
    engine_.set_combining(*alg);
    audit(req, "sharing.settings.put", "", body);
    changed("");
    req.json(200, body.dump());
  }
  void put_user(vellum::Request& req) {
    require_admin(req);
    const std::string id(req.param("id").value_or(""));
    if (!valid_id(id)) throw HttpProblem{400, "invalid user id"};
    json body = body_of(req);
    sh::UserAttrs a;
    for (const auto& [k, v] : body.items()) {
      if (k == "email") {
        // The account e-mail reaches the PDP with every request (ABI 1.3);
        // a second, administrator-set address could contradict it.
        throw HttpProblem{422,
                          "'email' is the account's e-mail, taken from the session; set only 'groups' here",
                          {{"pointer", "/email"}}};
      } else if (k == "groups") {
        if (!v.is_array() || v.size() > 256)
          throw HttpProblem{422, "'groups' must be an array", {{"pointer", "/groups"}}};
        for (const auto& g : v) {
          if (!g.is_string() || !valid_id(g.get<std::string>()))
            throw HttpProblem{
                422, "group names are 1..64 characters of [A-Za-z0-9._-]", {{"pointer", "/groups"}}};
          a.groups.push_back(g);
        }
      } else {
        throw HttpProblem{422, "unknown key '" + k + "'", {{"pointer", "/" + k}}};
      }
    }
    host().put("u/" + id, json({{"groups", a.groups}}).dump());
    engine_.set_user(id, a);
    audit(req, "sharing.user.put", "", {{"user", id}, {"groups", a.groups}});
    changed("", {id});
    req.json(200, json({{"id", id}, {"groups", a.groups}}).dump());
  }
  void put_classification(vellum::Request& req) {
    json body = body_of(req);
    auto r = body.find("resource");
    auto t = body.find("tags");
    if (r == body.end() || !r->is_string() || !sh::valid_resource(r->get<std::string>()))
      throw HttpProblem{422, "'resource' must be a resource path", {{"pointer", "/resource"}}};
    if (t == body.end() || !t->is_array() || t->size() > 64)
      throw HttpProblem{422, "'tags' must be an array of at most 64 tags", {{"pointer", "/tags"}}};
    std::vector<std::string> tags;
    for (const auto& x : *t) {
      if (!x.is_string() || !valid_id(x.get<std::string>()))
        throw HttpProblem{422, "tags are 1..64 characters of [A-Za-z0-9._-]", {{"pointer", "/tags"}}};
      tags.push_back(x);
    }
    const std::string res = *r;
    require_may(req, res, "manage");
    if (tags.empty()) {
      if (host().get("c/" + res)) host().erase("c/" + res);
    } else {
      host().put("c/" + res, json(tags).dump());
    }
    engine_.set_classification(res, tags);
    audit(req, "sharing.classification.put", res, {{"tags", tags}});
    changed(res);
    req.json(200, json({{"resource", res}, {"tags", tags}}).dump());
  }
  void explain(vellum::Request& req) {
    const auto p = req.principal();
    std::string user(req.query_param("user").value_or(p.user_id));
    const std::string action(req.query_param("action").value_or(""));
    const std::string res = resource_param(req);
    if (sh::action_index(action) < 0) throw HttpProblem{400, "'action' must be one of the standard actions"};
    if (user != p.user_id && !is_admin(p))
      throw HttpProblem{403, "only administrators may explain other users"};
    std::string owner(req.query_param("owner").value_or(""));
    if (owner.empty()) owner = engine_.owner_of(res);
    std::string email(req.query_param("email").value_or(""));
    if (!email.empty() && (user == p.user_id || email.size() > 320 || email.find('@') == std::string::npos))
      throw HttpProblem{400, "'email' names another user's account e-mail (administrators only)"};
    std::transform(email.begin(), email.end(), email.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    sh::Query q = query_for(p, action, res, owner);
    q.user_id = user;
    std::string scopes = "read write";
    if (user == p.user_id) {
      scopes = std::string(p.scopes);
    } else {
      // Another user's session is not at hand: no MFA, a session issued
      // now, and the e-mail only if the administrator gives it (plugins
      // cannot look accounts up).
      q.mfa_verified_at_ms = 0;
      q.session_created_at_ms = q.now_ms;
      q.email = email;
    }
    q.scopes = scopes;
    json x = engine_.explain(q);
    x["evaluated_for"] = user == p.user_id
                             ? "the caller's own request"
                             : "the caller's IP and user agent, no MFA, a new session, " +
                                   (email.empty() ? std::string("no e-mail") : "e-mail " + email);
    req.json(200, x.dump());
  }

  // ---- share links
  static sh::LinkGrant link_grant(const json& j) {
    sh::LinkGrant l;
    l.id = j["id"];
    l.resource = j["resource"];
    l.role = j["role"];
    l.revoked = j.value("revoked", false);
    l.no_download = j.value("no_download", false);
    l.no_print = j.value("no_print", false);
    l.no_copy = j.value("no_copy", false);
    l.expires_ms = j.value("expires_ms", int64_t(0));
    l.watermark = j.value("watermark", "");
    if (j.contains("environment") && !j["environment"].is_null())
      l.env = sh::Policy::from_json({{"id", "link"}, {"effect", "permit"}, {"environment", j["environment"]}},
                                    sh::Roles());
    return l;
  }
  static json public_link(const json& j) {
    json out = j;
    out.erase("token_hash");
    out.erase("password_hash");
    out["has_password"] = j.contains("password_hash");
    return out;
  }
  // Validates the mutable fields of a link (create and PATCH).
  void apply_link_fields(json& link, const json& body, bool creating) const {
    for (const auto& [k, v] : body.items()) {
      const std::string ptr = "/" + k;
      if (k == "resource") {
        if (!creating) throw HttpProblem{422, "a link's resource cannot change", {{"pointer", ptr}}};
        if (!v.is_string() || !sh::valid_resource(v.get<std::string>()))
          throw HttpProblem{422, "'resource' must be a resource path", {{"pointer", ptr}}};
        link[k] = v;
      } else if (k == "role") {
        if (!v.is_string() || !engine_.roles().find(v.get<std::string>()))
          throw HttpProblem{422, "unknown role", {{"pointer", ptr}}};
        link[k] = v;
      } else if (k == "expires_ms" || k == "max_uses") {
        if (!v.is_null() && (!v.is_number_integer() || v.get<int64_t>() <= 0))
          throw HttpProblem{422, "'" + k + "' must be a positive integer or null", {{"pointer", ptr}}};
        if (k == "expires_ms" && v.is_number_integer() && v.get<int64_t>() <= host().now_ms())
          throw HttpProblem{422, "'expires_ms' is in the past", {{"pointer", ptr}}};
        if (v.is_null())
          link.erase(k);
        else
          link[k] = v;
      } else if (k == "no_download" || k == "no_print" || k == "no_copy" || k == "require_mfa") {
        if (!v.is_boolean()) throw HttpProblem{422, "'" + k + "' must be a boolean", {{"pointer", ptr}}};
        link[k] = v;
      } else if (k == "watermark") {
        if (!v.is_string() || (v != "" && v != "light" && v != "visible" && v != "forensic"))
          throw HttpProblem{422, "'watermark' is \"\", light, visible or forensic", {{"pointer", ptr}}};
        link[k] = v;
      } else if (k == "environment") {
        if (!v.is_null()) {
          // Same form as a policy's environment (IP ranges, time, weekdays).
          (void)sh::Policy::from_json({{"id", "link"}, {"effect", "permit"}, {"environment", v}},
                                      engine_.roles());
        }
        link[k] = v;
      } else if (k == "allowed_emails" || k == "allowed_domains") {
        if (!v.is_array() || v.size() > 1000)
          throw HttpProblem{422, "'" + k + "' must be an array of at most 1000 entries", {{"pointer", ptr}}};
        json list = json::array();
        for (const auto& x : v) {
          std::string e = x.is_string() ? x.get<std::string>() : std::string();
          std::transform(e.begin(), e.end(), e.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
          const bool ok =
              !e.empty() && e.size() <= 320 && e.find_first_of(" \r\n") == std::string::npos &&
              (k == "allowed_emails" ? e.find('@') != std::string::npos : e.find('@') == std::string::npos);
          if (!ok) throw HttpProblem{422, "'" + k + "' holds an invalid entry", {{"pointer", ptr}}};
          list.push_back(e);
        }
        if (list.empty())
          link.erase(k);
        else
          link[k] = list;
      } else if (k == "password") {
        if (!v.is_string() || v.get<std::string>().size() < 8 || v.get<std::string>().size() > 256)
          throw HttpProblem{422, "'password' must be 8..256 characters", {{"pointer", ptr}}};
        link["password_hash"] = hash_password(v.get<std::string>(), host().random(16));
      } else {
        throw HttpProblem{422, "unknown key '" + k + "'", {{"pointer", ptr}}};
      }
    }
  }
  void create_link(vellum::Request& req) {
    json body = body_of(req);
    if (!body.contains("resource") || !body.contains("role"))
      throw HttpProblem{422, "'resource' and 'role' are required"};
    json link = json::object();
    apply_link_fields(link, body, true);
    const std::string res = link["resource"];
    require_may(req, res, "share", engine_.roles().find(link["role"].get<std::string>())->actions);
    const std::string id = new_id();
    // The token: 256 random bits; only its SHA-256 is stored.
    const std::string token = "vsl_" + b64url(host().random(32));
    link["id"] = id;
    link["created_by"] = std::string(req.principal().user_id);
    link["created_ms"] = host().now_ms();
    link["uses"] = 0;
    link["revoked"] = false;
    link["token_hash"] = sha256_hex(token);
    auto txn = host().begin();
    txn.put("l/" + id, link.dump(), VELLUM_VERSION_ABSENT);
    txn.put("lt/" + link["token_hash"].get<std::string>(), id, VELLUM_VERSION_ABSENT);
    txn.commit();
    engine_.put_link(link_grant(link));
    audit(req, "sharing.link.create", res, {{"link", id}, {"role", link["role"]}});
    json out = public_link(link);
    out["token"] = token;
    out["url"] = link_url(req, token);
    req.json(201, out.dump());
  }
  json load_link(vellum::Request& req, const char* action, uint64_t* version = nullptr) const {
    const std::string id(req.param("id").value_or(""));
    auto v = valid_id(id) ? host().get("l/" + id) : std::nullopt;
    if (!v) throw HttpProblem{404, "no such link"};
    json link = json::parse(v->data);
    require_may(req, link["resource"], action);
    if (version) *version = v->version;
    return link;
  }
  void list_links(vellum::Request& req) {
    const std::string res = resource_param(req);
    require_may(req, res, "share");
    json items = json::array();
    for (auto& [k, v] : scan_all("l/")) {
      json l = json::parse(v);
      if (l["resource"] == res) items.push_back(public_link(l));
    }
    req.json(200, json({{"items", items}}).dump());
  }
  void patch_link(vellum::Request& req) {
    uint64_t ver = 0;
    json link = load_link(req, "share", &ver);
    if (link["revoked"].get<bool>()) throw HttpProblem{410, "the link was revoked"};
    json body = body_of(req);
    apply_link_fields(link, body, false);
    require_may(req, link["resource"], "share",
                engine_.roles().find(link["role"].get<std::string>())->actions);
    try {
      host().put("l/" + link["id"].get<std::string>(), link.dump(), ver);
    } catch (const Error& e) {
      if (e.status() == VELLUM_ERR_CONFLICT) throw HttpProblem{409, "the link changed; try again"};
      throw;
    }
    engine_.put_link(link_grant(link));
    json fields = json::array();
    for (const auto& [k, v] : body.items()) fields.push_back(k);
    audit(req, "sharing.link.update", link["resource"], {{"link", link["id"]}, {"fields", fields}});
    changed(link["resource"], {"guest:sharing:" + link["id"].get<std::string>()});
    req.json(200, public_link(link).dump());
  }
  void revoke_link(vellum::Request& req) {
    uint64_t ver = 0;
    json link = load_link(req, "share", &ver);
    const std::string id = link["id"];
    if (!link["revoked"].get<bool>()) {
      link["revoked"] = true;
      host().put("l/" + id, link.dump(), ver);
      engine_.put_link(link_grant(link));
    }
    const uint64_t sessions = host().guest_session_revoke(id);
    audit(req, "sharing.link.revoke", link["resource"], {{"link", id}, {"sessions_revoked", sessions}});
    changed(link["resource"], {"guest:sharing:" + id});
    json out = public_link(link);
    out["sessions_revoked"] = sessions;
    req.json(200, out.dump());
  }
  void link_uses(vellum::Request& req) {
    json link = load_link(req, "share");
    json items = json::array();
    for (auto& [k, v] : scan_all("lu/" + link["id"].get<std::string>() + "/"))
      items.push_back(json::parse(v));
    req.json(200, json({{"items", items}}).dump());
  }

  // The address a link opens. The token goes in the fragment, which browsers
  // never send to a server, so it stays out of access logs and Referer.
  std::string link_url(vellum::Request& req, const std::string& token) const {
    std::string base = cfg_.link_url;
    if (base.empty()) {
      const std::string host(req.header("Host").value_or("localhost"));
      base = "https://" + host + "/share";
    }
    return base + "#" + token;
  }
  // The token is stored only as a hash, so the caller brings it: POST keeps
  // it out of URLs and logs, and it must belong to this link.
  void link_qr(vellum::Request& req) {
    json link = load_link(req, "share");
    if (link["revoked"].get<bool>()) throw HttpProblem{410, "the link was revoked"};
    json body = body_of(req);
    for (const auto& [k, v] : body.items())
      if (k != "token" && k != "scale")
        throw HttpProblem{422, "unknown key '" + k + "'", {{"pointer", "/" + k}}};
    const std::string token = body.value("token", "");
    const std::string want = link["token_hash"], got = sha256_hex(token);
    if (token.empty() || CRYPTO_memcmp(want.data(), got.data(), want.size()) != 0)
      throw HttpProblem{403, "'token' is not this link's token", {{"pointer", "/token"}}};
    const auto scale = body.find("scale");
    if (scale != body.end() &&
        (!scale->is_number_integer() || scale->get<int>() < 1 || scale->get<int>() > 32))
      throw HttpProblem{422, "'scale' (pixels per module) must be 1..32", {{"pointer", "/scale"}}};
    auto png = sh::qr_png(link_url(req, token), scale == body.end() ? 8 : scale->get<int>());
    if (!png)
      throw HttpProblem{422, "the link's URL does not fit a QR code of at most 4096 pixels at this scale"};
    audit(req, "sharing.link.qr", link["resource"], {{"link", link["id"]}});
    req.set_header("Cache-Control", "no-store");  // it carries the token
    req.respond(200, "image/png", *png);
  }

  // Failed redemptions per (link, client address): progressive delay, then a lock.
  struct Throttle {
    int failures = 0;
    int64_t last_ms = 0, locked_until = 0;
  };
  std::string throttle_key(const std::string& link, std::string_view ip) const {
    return "lf/" + link + "/" + sha256_hex(link + "\n" + std::string(ip)).substr(0, 32);
  }
  void record_failure(const std::string& key, Throttle t, int64_t now) const {
    t.failures++;
    t.last_ms = now;
    if (t.failures >= cfg_.link_max_failures) t.locked_until = now + cfg_.link_lock_seconds * 1000;
    host().put(
        key,
        json({{"failures", t.failures}, {"last_ms", t.last_ms}, {"locked_until", t.locked_until}}).dump());
  }

  static bool email_allowed(const json& link, const std::string& email) {
    const auto at = email.rfind('@');
    if (at == std::string::npos || email.size() > 320) return false;
    for (const auto& e : link.value("allowed_emails", json::array()))
      if (e == email) return true;
    for (const auto& d : link.value("allowed_domains", json::array()))
      if (d == email.substr(at + 1)) return true;
    return false;
  }

  // Links limited to email addresses or domains. A signed-in user is checked
  // by the account e-mail the host gives with the session (no code: the
  // account is the proof). Anyone else: the first call with an allowed
  // `email` mails a one-time code (sharing.mail) and answers 202; the second
  // call brings the code. Returns true once the address is verified.
  bool verify_email(vellum::Request& req, const vellum::Principal& p, const json& link, const json& body,
                    const std::string& tkey, const Throttle& th, int64_t now, std::string& email) const {
    const std::string id = link["id"];
    email = body.value("email", "");
    std::transform(email.begin(), email.end(), email.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (p.authenticated && !p.is_guest() && !p.email.empty()) {
      if (!email.empty() && email != p.email) {
        record_failure(tkey, th, now);
        throw HttpProblem{403, "signed in, you redeem with your account e-mail; leave 'email' out"};
      }
      email = std::string(p.email);
      if (!email_allowed(link, email)) {
        record_failure(tkey, th, now);
        audit(req, "sharing.link.redeem", link["resource"],
              {{"link", id}, {"reason", "account e-mail not allowed"}}, VELLUM_OUTCOME_DENIED);
        throw HttpProblem{403, "this link is limited to other e-mail addresses than your account's"};
      }
      return true;
    }
    if (!email_allowed(link, email)) {
      record_failure(tkey, th, now);
      throw HttpProblem{403, "this link is limited to certain email addresses; give yours in 'email'"};
    }
    const std::string okey = "lo/" + id + "/" + sha256_hex(email);
    const std::string code = body.value("code", "");
    auto cur = host().get(okey);
    if (code.empty()) {
      if (cur && now < json::parse(cur->data)["issued_ms"].get<int64_t>() + 60000)
        throw HttpProblem{429, "a code was sent less than a minute ago"};
      // Six digits, uniform (rejection sampling); only a hash is kept.
      uint32_t n = 0;
      do {
        const std::string r = host().random(4);
        std::memcpy(&n, r.data(), 4);
      } while (n >= 4294000000u);
      char digits[8];
      std::snprintf(digits, sizeof digits, "%06u", n % 1000000u);
      host().put(okey, json({{"hash", sha256_hex(id + "\n" + email + "\n" + digits)},
                             {"issued_ms", now},
                             {"expires_ms", now + 600000},
                             {"attempts", 0}})
                           .dump());
      host().publish("sharing.mail",
                     json({{"to", email}, {"kind", "link_code"}, {"link", id}, {"code", digits}}).dump());
      OPENSSL_cleanse(digits, sizeof digits);
      audit(req, "sharing.link.code", link["resource"], {{"link", id}});
      req.json(202, json({{"code_sent", true}, {"expires_in_s", 600}}).dump());
      return false;
    }
    json c = cur ? json::parse(cur->data) : json();
    if (!cur || now >= c["expires_ms"].get<int64_t>() || c["attempts"].get<int>() >= 5 ||
        c["hash"] != sha256_hex(id + "\n" + email + "\n" + code)) {
      record_failure(tkey, th, now);
      if (cur) {
        c["attempts"] = c["attempts"].get<int>() + 1;
        host().put(okey, c.dump());
      }
      audit(req, "sharing.link.redeem", link["resource"], {{"link", id}, {"reason", "wrong or expired code"}},
            VELLUM_OUTCOME_DENIED);
      throw HttpProblem{401, "the code is wrong or has expired"};
    }
    host().erase(okey);  // one use
    return true;
  }

  void redeem(vellum::Request& req) {
    const auto p = req.principal();
    json body = body_of(req);
    const std::string token = body.value("token", "");
    const int64_t now = host().now_ms();
    std::optional<vellum::Value> idv;
    if (token.size() >= 20 && token.size() <= 128) idv = host().get("lt/" + sha256_hex(token));
    if (!idv) throw HttpProblem{404, "no such link"};
    const std::string id = idv->data;
    const std::string tkey = throttle_key(id, p.client_ip);
    Throttle th;
    if (auto t = host().get(tkey)) {
      json j = json::parse(t->data);
      th = {j["failures"].get<int>(), j["last_ms"].get<int64_t>(), j["locked_until"].get<int64_t>()};
    }
    if (th.locked_until > now) {
      req.set_header("Retry-After", std::to_string((th.locked_until - now + 999) / 1000));
      throw HttpProblem{423, "too many failed attempts from this address; the link is locked for it"};
    }
    if (th.failures > 0 && cfg_.link_delay_base_ms > 0) {
      const int64_t delay =
          std::min<int64_t>(60000, cfg_.link_delay_base_ms << std::min(th.failures - 1, 16));
      if (now < th.last_ms + delay) {
        req.set_header("Retry-After", std::to_string((th.last_ms + delay - now + 999) / 1000));
        throw HttpProblem{429, "wait before trying again"};
      }
    }
    auto lv = host().get("l/" + id);
    if (!lv) throw HttpProblem{404, "no such link"};
    json link = json::parse(lv->data);
    const std::string res = link["resource"];
    sh::Query q = query_for(p, "read", res, "");
    std::string why;
    if (!engine_.link_usable(id, q, &why)) {
      audit(req, "sharing.link.redeem", res, {{"link", id}, {"reason", why}}, VELLUM_OUTCOME_DENIED);
      throw HttpProblem{link["revoked"].get<bool>() || why == "the link has expired" ? 410 : 403, why};
    }
    if (link.contains("max_uses") && link["uses"].get<int64_t>() >= link["max_uses"].get<int64_t>())
      throw HttpProblem{410, "the link has been used the maximum number of times"};
    if (link.contains("password_hash")) {
      const std::string pw = body.value("password", "");
      if (pw.empty() || !verify_password(link["password_hash"], pw)) {
        record_failure(tkey, th, now);
        audit(req, "sharing.link.redeem", res, {{"link", id}, {"reason", "wrong password"}},
              VELLUM_OUTCOME_DENIED);
        throw HttpProblem{401, "the link needs its password"};
      }
    }
    std::string email;
    if (link.contains("allowed_emails") || link.contains("allowed_domains")) {
      if (!verify_email(req, p, link, body, tkey, th, now, email)) return;  // a code was sent (202)
    }
    const bool user = p.authenticated && !p.is_guest();
    if (link.value("require_mfa", false)) {
      // Guests have no MFA: such links are for signed-in users with fresh MFA.
      if (!user || p.mfa_verified_at_ms <= 0 || now - p.mfa_verified_at_ms > cfg_.mfa_fresh_seconds * 1000)
        throw HttpProblem{401, "this link needs a signed-in user with fresh MFA"};
    }
    // Count the use (compare-and-set, so max_uses holds under concurrency).
    link["uses"] = link["uses"].get<int64_t>() + 1;
    try {
      host().put("l/" + id, link.dump(), lv->version);
    } catch (const Error& e) {
      if (e.status() == VELLUM_ERR_CONFLICT) throw HttpProblem{409, "the link changed; try again"};
      throw;
    }
    if (th.failures) host().erase(tkey);
    json use = {{"at_ms", now},
                {"ip_hash", sha256_hex("vellum-sharing-ip\n" + std::string(p.client_ip)).substr(0, 32)},
                {"who", user            ? std::string(p.user_id)
                        : email.empty() ? "guest"
                                        : "guest " + email}};
    char seq[32];
    std::snprintf(seq, sizeof seq, "%020lld", static_cast<long long>(now));
    host().put("lu/" + id + "/" + seq + "-" + hex(host().random(4)), use.dump());
    json out = {{"resource", res}, {"role", link["role"]}, {"link", id}};
    if (user) {
      // A signed-in user gets a grant, limited to the link's lifetime.
      json gj = {{"subject", "user:" + std::string(p.user_id)}, {"resource", res}, {"role", link["role"]}};
      if (link.contains("expires_ms")) gj["expires_ms"] = link["expires_ms"];
      sh::Grant g = parse_grant(gj, "link:" + id);
      host().put("g/" + g.id, g.to_json().dump(), VELLUM_VERSION_ABSENT);
      engine_.put_grant(g);
      out["grant"] = g.to_json();
      changed(res, {std::string(p.user_id)});
    } else {
      const int64_t ttl = link.contains("expires_ms")
                              ? std::min<int64_t>(link["expires_ms"].get<int64_t>() - now, 30LL * 86400000)
                              : 7LL * 86400000;
      std::string name = body.value("display_name", email.empty() ? "Guest" : email);
      if (name.empty() || name.size() > 128) name = "Guest";
      out["token"] = host().guest_session_issue(id, "link", name, std::max<int64_t>(ttl, 60000));
      out["expires_ms"] = now + std::max<int64_t>(ttl, 60000);
    }
    audit(req, "sharing.link.redeem", res, {{"link", id}, {"as", user ? "user" : "guest"}});
    req.json(200, out.dump());
  }

  // ---- workspaces
  static std::optional<sh::WorkspaceRules> rules_of(const json& st) {
    sh::WorkspaceRules r;
    r.require_mfa = st.value("require_mfa", false);
    for (const auto& c : st.value("ip_allowlist", json::array()))
      r.ip_allowlist.push_back(*sh::Cidr::parse(c.get<std::string>()));
    r.session_timeout_ms = st.value("session_timeout_s", int64_t(0)) * 1000;
    for (const auto& c : st.value("allowed_countries", json::array())) r.allowed_countries.push_back(c);
    if (!r.require_mfa && r.ip_allowlist.empty() && !r.session_timeout_ms && r.allowed_countries.empty())
      return std::nullopt;
    return r;
  }
  // Validates settings; unknown keys are refused.
  json parse_settings(const json& body) const {
    json st = json::object();
    for (const auto& [k, v] : body.items()) {
      const std::string ptr = "/" + k;
      if (k == "require_mfa") {
        if (!v.is_boolean()) throw HttpProblem{422, "'require_mfa' must be a boolean", {{"pointer", ptr}}};
      } else if (k == "session_timeout_s") {
        if (!v.is_number_integer() || v.get<int64_t>() < 60 || v.get<int64_t>() > 30LL * 86400)
          throw HttpProblem{422, "'session_timeout_s' must be 60..2592000", {{"pointer", ptr}}};
      } else if (k == "ip_allowlist") {
        if (!v.is_array() || v.size() > 256)
          throw HttpProblem{422, "'ip_allowlist' must be an array", {{"pointer", ptr}}};
        for (const auto& c : v)
          if (!c.is_string() || !sh::Cidr::parse(c.get<std::string>()))
            throw HttpProblem{422, "'ip_allowlist' holds an invalid address or range", {{"pointer", ptr}}};
      } else if (k == "allowed_countries") {
        // Accepted without a GeoIP database too: decisions then deny and say
        // why (fail closed), rather than the setting being silently ignored.
        if (!v.is_array() || v.size() > 300)
          throw HttpProblem{422, "'allowed_countries' must be an array", {{"pointer", ptr}}};
        json codes = json::array();
        for (const auto& c : v) {
          auto cc = c.is_string() ? sh::country_code(c.get<std::string>()) : std::nullopt;
          if (!cc)
            throw HttpProblem{
                422, "countries are ISO 3166-1 alpha-2 codes such as \"DE\"", {{"pointer", ptr}}};
          codes.push_back(*cc);
        }
        st[k] = codes;
        continue;
      } else if (k == "default_team") {
        if (!v.is_string() || !host().get("t/" + v.get<std::string>()))
          throw HttpProblem{422, "'default_team' must be a team id", {{"pointer", ptr}}};
      } else if (k == "default_role") {
        if (!v.is_string() || !engine_.roles().find(v.get<std::string>()))
          throw HttpProblem{422, "unknown role", {{"pointer", ptr}}};
      } else if (k == "features") {
        if (!v.is_object() || v.size() > 100)
          throw HttpProblem{422, "'features' must be an object", {{"pointer", ptr}}};
        for (const auto& [f, on] : v.items())
          if (!on.is_boolean() || !valid_id(f))
            throw HttpProblem{422, "feature flags are name: boolean", {{"pointer", ptr + "/" + f}}};
      } else {
        throw HttpProblem{422, "unknown key '" + k + "'", {{"pointer", ptr}}};
      }
      st[k] = v;
    }
    if (st.contains("default_team") != st.contains("default_role"))
      throw HttpProblem{422, "'default_team' and 'default_role' go together", {{"pointer", "/default_role"}}};
    return st;
  }
  void create_workspace(vellum::Request& req) {
    const auto p = req.principal();
    if (p.is_guest()) throw HttpProblem{403, "guests cannot create workspaces"};
    json body = body_of(req);
    const std::string name = body.value("name", "");
    if (name.empty() || name.size() > 200)
      throw HttpProblem{422, "'name' must be 1..200 characters", {{"pointer", "/name"}}};
    const std::string id = new_id(), res = "workspace/" + id, me(p.user_id);
    json w = {{"id", id},
              {"name", name},
              {"owner", me},
              {"settings", json::object()},
              {"created_ms", host().now_ms()}};
    auto txn = host().begin();
    txn.put("w/" + id, w.dump(), VELLUM_VERSION_ABSENT);
    txn.put("o/" + res, me, VELLUM_VERSION_ABSENT);
    txn.commit();
    engine_.set_owner(res, me);
    audit(req, "sharing.workspace.create", res);
    changed(res, {me});
    req.json(201, w.dump());
  }
  void get_workspace(vellum::Request& req) {
    const std::string id(req.param("id").value_or(""));
    auto v = valid_id(id) ? host().get("w/" + id) : std::nullopt;
    if (!v) throw HttpProblem{404, "no such workspace"};
    const std::string res = "workspace/" + id;
    if (!is_admin(req.principal()) && !host().authorize(req, "read", res, engine_.owner_of(res)))
      throw HttpProblem{403, "you may not read this workspace"};
    req.json(200, v->data);
  }
  void put_workspace_settings(vellum::Request& req) {
    const std::string id(req.param("id").value_or(""));
    auto v = valid_id(id) ? host().get("w/" + id) : std::nullopt;
    if (!v) throw HttpProblem{404, "no such workspace"};
    const std::string res = "workspace/" + id;
    require_may(req, res, "manage");
    json st = parse_settings(body_of(req));
    json w = json::parse(v->data);
    // Default permissions: one grant of the default role to the default team.
    const std::string gid = "wsdefault" + id;
    if (engine_.grant(gid)) {
      host().erase("g/" + gid);
      engine_.remove_grant(gid);
    }
    if (st.contains("default_team")) {
      sh::Grant g = sh::Grant::from_json({{"id", gid},
                                          {"subject", "team:" + st["default_team"].get<std::string>()},
                                          {"resource", res},
                                          {"role", st["default_role"]},
                                          {"created_by", std::string(req.principal().user_id)},
                                          {"created_ms", host().now_ms()}},
                                         engine_.roles());
      host().put("g/" + gid, g.to_json().dump());
      engine_.put_grant(g);
    }
    w["settings"] = st;
    try {
      host().put("w/" + id, w.dump(), v->version);
    } catch (const Error& e) {
      if (e.status() == VELLUM_ERR_CONFLICT) throw HttpProblem{409, "the workspace changed; try again"};
      throw;
    }
    engine_.set_workspace_rules(id, rules_of(st));
    audit(req, "sharing.workspace.settings", res, st);
    changed(res);
    req.json(200, w.dump());
  }

  // ---- teams: roles owner > admin > editor > viewer; membership makes the
  // subject team:<id> for grants.
  static int team_rank(const std::string& role) {
    return role == "owner" ? 4 : role == "admin" ? 3 : role == "editor" ? 2 : role == "viewer" ? 1 : 0;
  }
  void apply_team(const json& t) {
    std::vector<std::string> members;
    for (const auto& [u, r] : t["members"].items()) members.push_back(u);
    engine_.set_team_members(t["id"], members);
  }
  struct Team {
    json t;
    uint64_t version = 0;
  };
  Team load_team(vellum::Request& req, int min_rank) const {
    const std::string id(req.param("id").value_or(""));
    auto v = valid_id(id) ? host().get("t/" + id) : std::nullopt;
    const std::string me(req.principal().user_id);
    if (!v) throw HttpProblem{404, "no such team"};
    json t = json::parse(v->data);
    const int rank = t["members"].contains(me) ? team_rank(t["members"][me]) : 0;
    if (rank == 0) throw HttpProblem{404, "no such team"};  // non-members do not learn it exists
    if (rank < min_rank) throw HttpProblem{403, "your team role does not allow this"};
    return {t, v->version};
  }
  void save_team(vellum::Request& req, Team& t, const std::string& what, json details,
                 const std::vector<std::string>& subjects) {
    try {
      host().put("t/" + t.t["id"].get<std::string>(), t.t.dump(), t.version);
    } catch (const Error& e) {
      if (e.status() == VELLUM_ERR_CONFLICT) throw HttpProblem{409, "the team changed; try again"};
      throw;
    }
    apply_team(t.t);
    details["team"] = t.t["id"];
    audit(req, "sharing.team." + what, "", details);
    changed("", subjects);
  }
  static std::string member_role(const json& body, bool owner_ok) {
    const std::string role = body.value("role", "");
    if (team_rank(role) == 0 || (!owner_ok && role == "owner"))
      throw HttpProblem{422, "'role' must be admin, editor or viewer", {{"pointer", "/role"}}};
    return role;
  }
  // Team keys live in the crypto plugin when it is enabled (crypto service
  // 1.1): a team key wrapped for each member; removing a member rotates it
  // and re-wraps for the rest only. Acquired per call, so the plugins' start
  // order does not matter. Returns false when there is no such provider.
  template <class F>
  bool with_team_keys(F&& f) {
    vellum::Service<vellum_crypto_v1> crypto;
    try {
      crypto = host().acquire<vellum_crypto_v1>(VELLUM_CRYPTO_SERVICE, VELLUM_CRYPTO_MAJOR, 1);
    } catch (const Error&) {
      return false;  // no crypto plugin, or one without key chains
    }
    if (crypto->struct_size <
        offsetof(vellum_crypto_v1, team_remove_member) + sizeof crypto->team_remove_member)
      return false;
    vellum_status s = f(crypto.vtable(), crypto.instance());
    if (s != VELLUM_OK) throw HttpProblem{503, "the team key could not be updated; nothing changed"};
    return true;
  }
  void create_team(vellum::Request& req) {
    const auto p = req.principal();
    if (p.is_guest()) throw HttpProblem{403, "guests cannot create teams"};
    json body = body_of(req);
    const std::string name = body.value("name", "");
    if (name.empty() || name.size() > 200)
      throw HttpProblem{422, "'name' must be 1..200 characters", {{"pointer", "/name"}}};
    Team t{{{"id", new_id()},
            {"name", name},
            {"owner", std::string(p.user_id)},
            {"members", {{std::string(p.user_id), "owner"}}},
            {"created_ms", host().now_ms()}},
           VELLUM_VERSION_ABSENT};
    const std::string tid = t.t["id"];
    // The chain's owner is the team itself, not a person: team ownership can
    // move and any person can leave, and the crypto plugin never removes a
    // chain's owner. The pseudo owner has no published key, so no wrap.
    const std::string chain_owner = "sharing-team:" + tid;
    if (with_team_keys([&](const vellum_crypto_v1& c, void* inst) {
          vellum_status st = c.team_key_create(inst, vellum::to_c(tid), vellum::to_c(chain_owner),
                                               VELLUM_CRYPTO_KEYS_MANAGED);
          if (st != VELLUM_OK) return st;
          return c.team_add_member(inst, vellum::to_c(tid), vellum::to_c(p.user_id));
        }))
      t.t["key_chain"] = tid;
    save_team(req, t, "create", {}, {std::string(p.user_id)});
    req.json(201, t.t.dump());
  }
  void get_team(vellum::Request& req) { req.json(200, load_team(req, 1).t.dump()); }
  void invite(vellum::Request& req) {
    Team t = load_team(req, 3);
    json body = body_of(req);
    std::string email = body.value("email", "");
    std::transform(email.begin(), email.end(), email.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::string role = member_role(body, false);
    if (email.size() < 3 || email.size() > 320 || email.find('@') == std::string::npos ||
        email.find_first_of(" \r\n") != std::string::npos)
      throw HttpProblem{422, "'email' must be an email address", {{"pointer", "/email"}}};
    // The token reaches only the mailbox (sharing.mail); we keep its hash.
    const std::string token = "vsi_" + b64url(host().random(32));
    const std::string id = new_id();
    json inv = {{"id", id},
                {"team", t.t["id"]},
                {"email_hash", sha256_hex(email)},
                {"role", role},
                {"invited_by", std::string(req.principal().user_id)},
                {"expires_ms", host().now_ms() + 7LL * 86400000}};
    host().put("ti/" + sha256_hex(token), inv.dump(), VELLUM_VERSION_ABSENT);
    host().publish("sharing.mail", json({{"to", email},
                                         {"kind", "team_invite"},
                                         {"team", t.t["id"]},
                                         {"team_name", t.t["name"]},
                                         {"role", role},
                                         {"token", token}})
                                       .dump());
    audit(req, "sharing.team.invite", "", {{"team", t.t["id"]}, {"invite", id}, {"role", role}});
    inv.erase("email_hash");
    req.json(201, inv.dump());
  }
  void accept_invite(vellum::Request& req) {
    const auto p = req.principal();
    if (p.is_guest()) throw HttpProblem{403, "guests cannot join teams"};
    json body = body_of(req);
    const std::string token = body.value("token", "");
    const std::string key = "ti/" + sha256_hex(token);
    auto iv = token.size() >= 20 && token.size() <= 128 ? host().get(key) : std::nullopt;
    if (!iv) throw HttpProblem{404, "no such invitation"};
    json inv = json::parse(iv->data);
    if (host().now_ms() >= inv["expires_ms"].get<int64_t>()) {
      host().erase(key);
      throw HttpProblem{410, "the invitation has expired"};
    }
    // The invitation is for one address: only the account with that e-mail
    // may accept it (a forwarded token is useless to anyone else).
    if (p.email.empty() || sha256_hex(p.email) != inv["email_hash"])
      throw HttpProblem{403, "this invitation is for another e-mail address"};
    auto tv = host().get("t/" + inv["team"].get<std::string>());
    if (!tv) throw HttpProblem{410, "the team no longer exists"};
    Team t{json::parse(tv->data), tv->version};
    const std::string me(p.user_id);
    if (!t.t["members"].contains(me)) {
      if (t.t.contains("key_chain"))  // one wrap of the current team key for the newcomer
        with_team_keys([&](const vellum_crypto_v1& c, void* inst) {
          vellum_status st =
              c.team_add_member(inst, vellum::to_c(t.t["key_chain"].get<std::string>()), vellum::to_c(me));
          return st == VELLUM_ERR_CONFLICT ? VELLUM_OK : st;
        });
      t.t["members"][me] = inv["role"];
    }
    host().erase(key);  // one use
    save_team(req, t, "join", {{"user", me}, {"role", t.t["members"][me]}}, {me});
    req.json(200, t.t.dump());
  }
  void change_member(vellum::Request& req) {
    Team t = load_team(req, 3);
    const std::string user(req.param("user").value_or(""));
    if (!t.t["members"].contains(user)) throw HttpProblem{404, "not a member"};
    if (t.t["members"][user] == "owner") throw HttpProblem{409, "transfer ownership instead"};
    json body = body_of(req);
    const std::string role = member_role(body, false);
    t.t["members"][user] = role;
    save_team(req, t, "role", {{"user", user}, {"role", role}}, {user});
    req.json(200, t.t.dump());
  }
  void remove_member(vellum::Request& req) {
    const std::string me(req.principal().user_id);
    const std::string user(req.param("user").value_or(""));
    Team t = load_team(req, user == me ? 1 : 3);
    if (!t.t["members"].contains(user)) throw HttpProblem{404, "not a member"};
    if (t.t["members"][user] == "owner")
      throw HttpProblem{409, "the owner cannot leave; transfer ownership first"};
    if (t.t.contains("key_chain"))  // rotate: the removed member gets nothing new
      with_team_keys([&](const vellum_crypto_v1& c, void* inst) {
        vellum_status st = c.team_remove_member(inst, vellum::to_c(t.t["key_chain"].get<std::string>()),
                                                vellum::to_c(user), nullptr);
        return st == VELLUM_ERR_NOT_FOUND ? VELLUM_OK : st;
      });
    t.t["members"].erase(user);
    save_team(req, t, "remove", {{"user", user}}, {user});
    req.json(200, t.t.dump());
  }
  void transfer_team(vellum::Request& req) {
    Team t = load_team(req, 4);
    json body = body_of(req);
    const std::string to = body.value("user", "");
    if (!t.t["members"].contains(to) || to == t.t["owner"])
      throw HttpProblem{422, "'user' must be another member", {{"pointer", "/user"}}};
    const std::string from = t.t["owner"];
    t.t["members"][from] = "admin";
    t.t["members"][to] = "owner";
    t.t["owner"] = to;
    save_team(req, t, "transfer", {{"from", from}, {"to", to}}, {from, to});
    req.json(200, t.t.dump());
  }

  // ---- delegation
  static sh::Delegation delegation_of(const json& j) {
    sh::Delegation d;
    d.id = j["id"];
    d.from = j["from"];
    d.to = j["to"];
    d.resource = j["resource"];
    d.expires_ms = j.value("expires_ms", int64_t(0));
    d.from_email = j.value("from_email", "");
    for (const auto& a : j["actions"]) d.actions |= sh::action_bit(a.get<std::string>());
    return d;
  }
  void delegate(vellum::Request& req) {
    const auto p = req.principal();
    if (p.is_guest()) throw HttpProblem{403, "guests cannot delegate"};
    json body = body_of(req);
    for (const auto& [k, v] : body.items())
      if (k != "to" && k != "resource" && k != "actions" && k != "expires_ms")
        throw HttpProblem{422, "unknown key '" + k + "'", {{"pointer", "/" + k}}};
    const std::string to = body.value("to", "");
    if (!valid_id(to) || to == p.user_id)
      throw HttpProblem{422, "'to' must be another user's id", {{"pointer", "/to"}}};
    const std::string res = body.value("resource", "");
    if (!sh::valid_resource(res))
      throw HttpProblem{422, "'resource' must be a resource path", {{"pointer", "/resource"}}};
    sh::ActionMask want = 0;
    if (!body.contains("actions") || !body["actions"].is_array() || body["actions"].empty())
      throw HttpProblem{422, "'actions' must be a non-empty array", {{"pointer", "/actions"}}};
    for (const auto& a : body["actions"]) {
      const sh::ActionMask b = a.is_string() ? sh::action_bit(a.get<std::string>()) : 0;
      if (!b) throw HttpProblem{422, "unknown action", {{"pointer", "/actions"}}};
      want |= b;
    }
    const auto e = body.find("expires_ms");
    if (e == body.end() || !e->is_number_integer() || e->get<int64_t>() <= host().now_ms())
      throw HttpProblem{
          422, "'expires_ms' (a future unix time in ms) is required", {{"pointer", "/expires_ms"}}};
    const sh::ActionMask held = engine_.rbac_actions(query_for(p, "read", res, engine_.owner_of(res)));
    if ((want & held) != want)
      throw HttpProblem{
          403, "you cannot delegate what you do not hold", {{"missing", sh::mask_to_json(want & ~held)}}};
    json d = {{"id", new_id()},
              {"from", std::string(p.user_id)},
              {"to", to},
              {"resource", res},
              {"actions", sh::mask_to_json(want)},
              {"expires_ms", *e},
              {"from_email", std::string(p.email)},
              {"created_ms", host().now_ms()}};
    host().put("d/" + d["id"].get<std::string>(), d.dump(), VELLUM_VERSION_ABSENT);
    engine_.put_delegation(delegation_of(d));
    audit(req, "sharing.delegation.create", res,
          {{"delegation", d["id"]}, {"to", to}, {"actions", d["actions"]}});
    changed(res, {to});
    req.json(201, d.dump());
  }
  void undelegate(vellum::Request& req) {
    const std::string id(req.param("id").value_or(""));
    auto v = valid_id(id) ? host().get("d/" + id) : std::nullopt;
    if (!v) throw HttpProblem{404, "no such delegation"};
    json d = json::parse(v->data);
    const auto p = req.principal();
    if (d["from"] != p.user_id && !is_admin(p)) throw HttpProblem{403, "only the delegator may withdraw it"};
    host().erase("d/" + id);
    engine_.remove_delegation(id);
    audit(req, "sharing.delegation.delete", d["resource"], {{"delegation", id}});
    changed(d["resource"], {d["to"].get<std::string>()});
    req.json(200, d.dump());
  }

  // ---- temporary elevation
  static sh::Elevation elevation_of(const json& j) {
    return sh::Elevation{j["id"],   j["user"],   j["resource"],
                         j["role"], j["status"], j.value("expires_ms", int64_t(0))};
  }
  void request_elevation(vellum::Request& req) {
    const auto p = req.principal();
    if (p.is_guest()) throw HttpProblem{403, "guests cannot request elevation"};
    const int64_t now = host().now_ms();
    if (p.mfa_verified_at_ms <= 0 || now - p.mfa_verified_at_ms > cfg_.mfa_fresh_seconds * 1000)
      throw HttpProblem{401, "elevation needs fresh MFA (POST /v1/auth/mfa/verify)"};
    json body = body_of(req);
    const std::string res = body.value("resource", ""), role = body.value("role", ""),
                      why = body.value("justification", ""), approver = body.value("approver", "");
    if (!sh::valid_resource(res))
      throw HttpProblem{422, "'resource' must be a resource path", {{"pointer", "/resource"}}};
    if (!engine_.roles().find(role)) throw HttpProblem{422, "unknown role", {{"pointer", "/role"}}};
    if (why.size() < 10 || why.size() > 4000)
      throw HttpProblem{422, "'justification' must be 10..4000 characters", {{"pointer", "/justification"}}};
    if (!valid_id(approver) || approver == p.user_id)
      throw HttpProblem{422, "'approver' must be another user's id", {{"pointer", "/approver"}}};
    const int64_t dur = body.value("duration_s", int64_t(3600));
    if (dur < 60 || dur > cfg_.elevation_max_seconds)
      throw HttpProblem{422, "'duration_s' is out of range", {{"pointer", "/duration_s"}}};
    json e = {
        {"id", new_id()},      {"user", std::string(p.user_id)}, {"resource", res},      {"role", role},
        {"status", "pending"}, {"justification", why},           {"approver", approver}, {"duration_s", dur},
        {"created_ms", now}};
    host().put("e/" + e["id"].get<std::string>(), e.dump(), VELLUM_VERSION_ABSENT);
    engine_.put_elevation(elevation_of(e));
    audit(req, "sharing.elevation.request", res,
          {{"elevation", e["id"]}, {"role", role}, {"approver", approver}});
    host().publish(
        "sharing.elevation.requested",
        json({{"id", e["id"]}, {"user", e["user"]}, {"approver", approver}, {"resource", res}}).dump());
    req.json(201, e.dump());
  }
  void decide_elevation(vellum::Request& req, bool approve) {
    const std::string id(req.param("id").value_or(""));
    auto v = valid_id(id) ? host().get("e/" + id) : std::nullopt;
    if (!v) throw HttpProblem{404, "no such elevation"};
    json e = json::parse(v->data);
    if (e["approver"] != req.principal().user_id)
      throw HttpProblem{403, "only the named approver may decide"};
    if (e["status"] != "pending") throw HttpProblem{409, "the elevation was already decided"};
    const int64_t now = host().now_ms();
    e["status"] = approve ? "approved" : "denied";
    e["decided_ms"] = now;
    if (approve) e["expires_ms"] = now + e["duration_s"].get<int64_t>() * 1000;
    try {
      host().put("e/" + id, e.dump(), v->version);
    } catch (const Error& x) {
      if (x.status() == VELLUM_ERR_CONFLICT) throw HttpProblem{409, "the elevation changed; try again"};
      throw;
    }
    engine_.put_elevation(elevation_of(e));
    audit(req, approve ? "sharing.elevation.approve" : "sharing.elevation.deny", e["resource"],
          {{"elevation", id}});
    changed(e["resource"], {e["user"].get<std::string>()});
    req.json(200, e.dump());
  }

  // ---- break-glass
  static sh::BreakGlass break_glass_of(const json& j) {
    return sh::BreakGlass{j["id"], j["user"], j["resource"], j["status"], j.value("expires_ms", int64_t(0))};
  }
  int approvals_needed(const std::string& res) const {
    // The strictest count among the resource's (inherited) classification tags.
    int n = cfg_.break_glass_approvals.at("default");
    std::vector<std::string_view> prefixes;
    sh::path_prefixes(res, prefixes);
    for (auto pr : prefixes)
      if (auto c = host().get("c/" + std::string(pr)))
        for (const auto& t : json::parse(c->data))
          if (auto it = cfg_.break_glass_approvals.find(t.get<std::string>());
              it != cfg_.break_glass_approvals.end())
            n = std::max(n, it->second);
    return n;
  }
  static bool flagged(const json& b, int64_t now) {
    return b.contains("activated_ms") && !b.contains("justified_ms") &&
           now > b["activated_ms"].get<int64_t>() + 24LL * 3600000;
  }
  void request_break_glass(vellum::Request& req) {
    const auto p = req.principal();
    if (p.is_guest()) throw HttpProblem{403, "guests cannot request emergency access"};
    const int64_t now = host().now_ms();
    for (auto& [k, v] : scan_all("b/")) {
      json b = json::parse(v);
      if (b["user"] == p.user_id && flagged(b, now))
        throw HttpProblem{403, "your account is flagged: an earlier emergency access was never justified"};
    }
    json body = body_of(req);
    const std::string res = body.value("resource", ""), why = body.value("reason", "");
    if (!sh::valid_resource(res))
      throw HttpProblem{422, "'resource' must be a resource path", {{"pointer", "/resource"}}};
    if (why.size() < 10 || why.size() > 4000)
      throw HttpProblem{422, "'reason' must be 10..4000 characters", {{"pointer", "/reason"}}};
    json b = {{"id", new_id()},
              {"user", std::string(p.user_id)},
              {"resource", res},
              {"status", "pending"},
              {"reason", why},
              {"approvals_needed", approvals_needed(res)},
              {"approvals", json::array()},
              {"created_ms", now}};
    host().put("b/" + b["id"].get<std::string>(), b.dump(), VELLUM_VERSION_ABSENT);
    engine_.put_break_glass(break_glass_of(b));
    audit(req, "sharing.break_glass.request", res, {{"break_glass", b["id"]}});
    host().publish("sharing.break_glass.requested",
                   json({{"id", b["id"]}, {"user", b["user"]}, {"resource", res}}).dump());
    req.json(201, b.dump());
  }
  void approve_break_glass(vellum::Request& req) {
    require_admin(req);
    const auto p = req.principal();
    const std::string id(req.param("id").value_or(""));
    auto v = valid_id(id) ? host().get("b/" + id) : std::nullopt;
    if (!v) throw HttpProblem{404, "no such emergency access"};
    json b = json::parse(v->data);
    if (b["user"] == p.user_id) throw HttpProblem{403, "you cannot approve your own emergency access"};
    if (b["status"] != "pending") throw HttpProblem{409, "this emergency access is not pending"};
    for (const auto& a : b["approvals"])
      if (a["user"] == p.user_id) throw HttpProblem{409, "you already approved it"};
    const int64_t now = host().now_ms();
    b["approvals"].push_back({{"user", std::string(p.user_id)}, {"at_ms", now}});
    const bool active = b["approvals"].size() >= b["approvals_needed"].get<size_t>();
    if (active) {
      b["status"] = "active";
      b["activated_ms"] = now;
      b["expires_ms"] = now + 3600000;
    }
    try {
      host().put("b/" + id, b.dump(), v->version);
    } catch (const Error& x) {
      if (x.status() == VELLUM_ERR_CONFLICT) throw HttpProblem{409, "it changed; try again"};
      throw;
    }
    engine_.put_break_glass(break_glass_of(b));
    audit(req, "sharing.break_glass.approve", b["resource"],
          {{"break_glass", id}, {"level", "high"}, {"active", active}, {"approvals", b["approvals"].size()}});
    if (active) {
      const std::string owner = engine_.owner_of(b["resource"].get<std::string>());
      host().warn("break-glass access activated: " + b["user"].get<std::string>() + " on " +
                  b["resource"].get<std::string>());
      host().publish("sharing.break_glass.activated", json({{"id", id},
                                                            {"user", b["user"]},
                                                            {"resource", b["resource"]},
                                                            {"owner", owner},
                                                            {"expires_ms", b["expires_ms"]},
                                                            {"notify", "owners and security administrators"}})
                                                          .dump());
      changed(b["resource"], {b["user"].get<std::string>()});
    }
    req.json(200, b.dump());
  }
  void justify_break_glass(vellum::Request& req) {
    const std::string id(req.param("id").value_or(""));
    auto v = valid_id(id) ? host().get("b/" + id) : std::nullopt;
    if (!v) throw HttpProblem{404, "no such emergency access"};
    json b = json::parse(v->data);
    if (b["user"] != req.principal().user_id) throw HttpProblem{403, "only the requester may justify it"};
    json body = body_of(req);
    const std::string text = body.value("justification", "");
    if (text.size() < 20 || text.size() > 20000)
      throw HttpProblem{422, "'justification' must be 20..20000 characters", {{"pointer", "/justification"}}};
    if (!b.contains("activated_ms")) throw HttpProblem{409, "it was never activated"};
    const int64_t now = host().now_ms();
    if (b.contains("justified_ms")) throw HttpProblem{409, "already justified"};
    b["justification"] = text;
    b["justified_ms"] = now;
    b["late"] = now > b["activated_ms"].get<int64_t>() + 24LL * 3600000;
    host().put("b/" + id, b.dump(), v->version);
    audit(req, "sharing.break_glass.justify", b["resource"], {{"break_glass", id}, {"late", b["late"]}});
    req.json(200, b.dump());
  }
  void list_break_glass(vellum::Request& req) {
    require_admin(req);
    const int64_t now = host().now_ms();
    json items = json::array();
    for (auto& [k, v] : scan_all("b/")) {
      json b = json::parse(v);
      b["flagged"] = flagged(b, now);
      items.push_back(b);
    }
    req.json(200, json({{"items", items}}).dump());
  }

  Config cfg_;
  sh::Engine engine_;
  vellum_pdp_v1 vtable_{};
  std::vector<vellum::Handle> subs_;
};

}  // namespace

VELLUM_PLUGIN(Sharing)
