// The host's identity API: login, sessions, API tokens, MFA, administration.
#include <spdlog/spdlog.h>

#include <set>

#include <nlohmann/json.hpp>

#include "runtime.hpp"

namespace vellum::host {
namespace {

using json = nlohmann::json;

void send_json(vellum_request& r, uint16_t status, const json& body) {
  if (r.audit_failed) {  // fail closed: no success is reported for an unaudited action
    r.respond(problem_response(503, "", "the audit log cannot be written", r.http.request_id));
    return;
  }
  HttpResponse resp;
  resp.status = status;
  resp.content_type = "application/json";
  resp.headers.emplace_back("Cache-Control", "no-store");  // tokens and codes must not be cached
  resp.body = status == 204 ? "" : body.dump();
  r.respond(std::move(resp));
}

void send_problem(vellum_request& r, uint16_t status, const std::string& detail, const std::string& code = "",
                  uint64_t retry_after = 0) {
  HttpResponse p = problem_response(status, "", detail, r.http.request_id);
  if (!code.empty()) {
    auto j = json::parse(p.body);
    j["code"] = code;
    p.body = j.dump();
  }
  if (retry_after) p.headers.emplace_back("Retry-After", std::to_string(retry_after));
  r.respond(std::move(p));
}

// The JSON object body, or a 400 (returns nullopt after responding).
std::optional<json> body_object(vellum_request& r) {
  auto j = json::parse(r.http.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    send_problem(r, 400, "the body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string user_agent(const vellum_request& r) {
  const std::string* ua = r.http.header("User-Agent");
  return ua ? *ua : "";
}

json token_response(const Identity::LoginResult& res) {
  return {{"token", res.token},
          {"token_type", "Bearer"},
          {"expires_ms", res.session.expires_ms},
          {"session", res.session.public_json()},
          {"user", res.user.public_json()}};
}

}  // namespace

void Runtime::resolve_principal(vellum_request& req, bool websocket) {
  std::string token;
  if (const std::string* a = req.http.header("Authorization")) {
    if (a->size() > 7 && iequals(std::string_view(*a).substr(0, 7), "Bearer ")) token = a->substr(7);
  }
  if (token.empty() && websocket) {
    // Take access_token out of the query: the plugin never sees the credential.
    std::string_view q = req.http.query;
    std::string rest;
    while (!q.empty()) {
      auto amp = q.find('&');
      auto part = q.substr(0, amp);
      if (part.rfind("access_token=", 0) == 0)
        token = percent_decode(part.substr(13), true);
      else
        rest += (rest.empty() ? "" : "&") + std::string(part);
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    req.http.query = std::move(rest);
    if (const std::string* p = req.http.header("Sec-WebSocket-Protocol"); token.empty() && p) {
      auto at = p->find("vellum.bearer,");
      if (at != std::string::npos) {
        std::string rest = p->substr(at + 14);
        rest.erase(0, rest.find_first_not_of(' '));
        token = rest.substr(0, rest.find_first_of(", "));
      }
    }
  }
  if (token.empty() || !identity) return;
  try {
    req.auth = identity->authenticate(token);
  } catch (const std::exception& e) {
    spdlog::error("session lookup failed: {}", e.what());  // never the token itself
  }
}

void Runtime::add_identity_routes() {
  auto add = [this](const char* method, const std::string& path, const char* summary, uint32_t flags,
                    bool admin, bool session_only, std::function<void(vellum_request&)> fn) {
    auto r = std::make_shared<RouteEntry>();
    r->method = method;
    r->pattern = PathPattern::parse(path);
    r->flags = flags;
    r->summary = summary;
    r->admin_only = admin;
    r->session_only = session_only;
    // These run argon2id (tens of ms by design): keep them off the I/O threads.
    static const std::set<std::string> kHashing = {"/v1/auth/login", "/v1/auth/password",
                                                   "/v1/auth/mfa/disable", "/v1/admin/users"};
    r->blocking = std::string(method) == "POST" && kHashing.count(path);
    // Turn identity errors into problems; never echo what the client sent.
    r->native = [fn = std::move(fn)](vellum_request& req) {
      try {
        fn(req);
      } catch (const AuthError& e) {
        send_problem(req, e.status, e.what(), e.code, e.retry_after);
      }
    };
    router.add(r);
  };
  const uint32_t kPublic = VELLUM_ROUTE_PUBLIC;

  add("POST", "/v1/auth/login", "Log in with email, password and (if enrolled) a TOTP or recovery code",
      kPublic, false, false, [this](vellum_request& r) {
        auto b = body_object(r);
        if (!b) return;
        std::string email = str(*b, "email");
        try {
          auto res =
              identity->login(email, str(*b, "password"), str(*b, "code"), r.http.client_ip, user_agent(r));
          r.auth = Authenticated{res.user, res.session, Identity::sha256_hex(res.token)};
          if (!audit_host(r, "auth.login", "user/" + res.user.id, "success",
                          {{"session_id", res.session.id}})) {
            identity->revoke_token_hash(r.auth->token_hash);
            return send_problem(r, 503, "the audit log cannot be written");
          }
          send_json(r, 200, token_response(res));
        } catch (const AuthError& e) {
          // The attempted email is recorded only as an HMAC.
          std::string lowered = email;
          for (auto& ch : lowered) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (e.status == 429)
            metrics.auth_throttled();  // counted, not audited one by one: a flood must not become disk I/O
          else
            audit_host(r, "auth.login", "", "failure", {{"reason", e.code}, {"email", lowered}});
          throw;
        }
      });

  add("POST", "/v1/auth/logout", "End the current session", 0, false, false, [this](vellum_request& r) {
    identity->revoke_token_hash(r.auth->token_hash);
    audit_host(r, "auth.logout", "session/" + r.auth->session.id, "success");
    send_json(r, 204, {});
  });

  add("GET", "/v1/me", "The calling user and session", 0, false, false, [](vellum_request& r) {
    send_json(r, 200, {{"user", r.auth->user.public_json()}, {"session", r.auth->session.public_json()}});
  });

  add("GET", "/v1/auth/sessions", "List the caller's sessions", 0, false, true, [this](vellum_request& r) {
    json list = json::array();
    for (auto& s : identity->list_sessions(r.auth->user.id, "session")) {
      auto j = s.public_json();
      j["current"] = s.id == r.auth->session.id;
      list.push_back(j);
    }
    send_json(r, 200, {{"sessions", list}});
  });

  add("DELETE", "/v1/auth/sessions/{id}", "Revoke one of the caller's sessions", 0, false, true,
      [this](vellum_request& r) {
        std::string id = r.params.at(0).second;
        bool is_session = false;  // API tokens have their own route
        for (auto& s : identity->list_sessions(r.auth->user.id, "session")) is_session |= s.id == id;
        if (!is_session || !identity->revoke_session(r.auth->user.id, id))
          return send_problem(r, 404, "no such session");
        audit_host(r, "auth.session.revoke", "session/" + id, "success");
        send_json(r, 204, {});
      });

  add("POST", "/v1/auth/password", "Change the password (revokes every session and token)", 0, false, true,
      [this](vellum_request& r) {
        auto b = body_object(r);
        if (!b) return;
        try {
          identity->change_password(r.auth->user.id, str(*b, "current_password"), str(*b, "new_password"));
        } catch (const AuthError& e) {
          audit_host(r, "auth.password.change", "user/" + r.auth->user.id, "failure", {{"reason", e.code}});
          throw;
        }
        audit_host(r, "auth.password.change", "user/" + r.auth->user.id, "success");
        auto user = identity->find_user(r.auth->user.id);
        // The caller's own session ended with the others: log in again.
        send_json(r, 200, {{"revoked_all_sessions", true}, {"user", user ? user->public_json() : json()}});
      });

  add("POST", "/v1/auth/tokens", "Create an API token (shown once)", 0, false, true,
      [this](vellum_request& r) {
        auto b = body_object(r);
        if (!b) return;
        uint64_t days = 90;
        if (b->contains("expires_in_days")) {
          auto& d = (*b)["expires_in_days"];
          if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > 366)
            return send_problem(r, 422, "expires_in_days is a whole number from 1 to 366", "invalid_expiry");
          days = d.get<uint64_t>();
        }
        std::string scope = b->contains("scope") ? str(*b, "scope") : "full";
        auto res =
            identity->create_api_token(r.auth->user.id, str(*b, "name"), scope, days * 24 * 3600 * 1000);
        if (!audit_host(r, "auth.token.create", "token/" + res.session.id, "success",
                        {{"name", res.session.name}, {"scope", res.session.scope}}))
          identity->revoke_session(r.auth->user.id, res.session.id);  // fail closed: no unaudited token
        send_json(r, 201, token_response(res));
      });

  add("GET", "/v1/auth/tokens", "List the caller's API tokens", 0, false, true, [this](vellum_request& r) {
    json list = json::array();
    for (auto& s : identity->list_sessions(r.auth->user.id, "api")) list.push_back(s.public_json());
    send_json(r, 200, {{"tokens", list}});
  });

  add("DELETE", "/v1/auth/tokens/{id}", "Revoke one of the caller's API tokens", 0, false, true,
      [this](vellum_request& r) {
        std::string id = r.params.at(0).second;
        bool is_token = false;
        for (auto& s : identity->list_sessions(r.auth->user.id, "api")) is_token |= s.id == id;
        if (!is_token || !identity->revoke_session(r.auth->user.id, id))
          return send_problem(r, 404, "no such token");
        audit_host(r, "auth.token.revoke", "token/" + id, "success");
        send_json(r, 204, {});
      });

  add("POST", "/v1/auth/mfa/enroll", "Start TOTP enrollment: returns the secret and an otpauth:// URI", 0,
      false, true, [this](vellum_request& r) {
        auto e = identity->mfa_enroll(r.auth->user.id);
        audit_host(r, "auth.mfa.enroll", "user/" + r.auth->user.id, "success");
        send_json(r, 200, {{"secret", e.secret_base32}, {"otpauth_uri", e.otpauth_uri}});
      });

  add("POST", "/v1/auth/mfa/confirm", "Confirm enrollment with a code: returns one-time recovery codes", 0,
      false, true, [this](vellum_request& r) {
        auto b = body_object(r);
        if (!b) return;
        std::vector<std::string> codes;
        try {
          codes = identity->mfa_confirm(r.auth->user.id, str(*b, "code"));
        } catch (const AuthError& e) {
          audit_host(r, "auth.mfa.confirm", "user/" + r.auth->user.id, "failure", {{"reason", e.code}});
          throw;
        }
        audit_host(r, "auth.mfa.confirm", "user/" + r.auth->user.id, "success");
        send_json(r, 200, {{"mfa_enabled", true}, {"recovery_codes", codes}});
      });

  add("POST", "/v1/auth/mfa/disable", "Disable MFA with the password and a code", 0, false, true,
      [this](vellum_request& r) {
        auto b = body_object(r);
        if (!b) return;
        try {
          identity->mfa_disable(r.auth->user.id, str(*b, "password"), str(*b, "code"));
        } catch (const AuthError& e) {
          audit_host(r, "auth.mfa.disable", "user/" + r.auth->user.id, "failure", {{"reason", e.code}});
          throw;
        }
        audit_host(r, "auth.mfa.disable", "user/" + r.auth->user.id, "success");
        send_json(r, 200, {{"mfa_enabled", false}});
      });

  add("POST", "/v1/auth/mfa/verify", "Step-up: verify MFA again in this session", 0, false, true,
      [this](vellum_request& r) {
        auto b = body_object(r);
        if (!b) return;
        int64_t verified_at = 0;
        try {
          verified_at = identity->mfa_verify(*r.auth, str(*b, "code"));
        } catch (const AuthError& e) {
          audit_host(r, "auth.mfa.verify", "session/" + r.auth->session.id, "failure", {{"reason", e.code}});
          throw;
        }
        audit_host(r, "auth.mfa.verify", "session/" + r.auth->session.id, "success");
        send_json(r, 200, {{"mfa_verified_at_ms", verified_at}});
      });

  // ---- administration
  add("GET", "/v1/admin/audit", "Query the audit log (actor, action, resource, since/until ms, cursor)", 0,
      true, false, [this](vellum_request& r) {
        AuditLog::Query q;
        std::string_view qs = r.http.query;
        try {
          while (!qs.empty()) {
            auto amp = qs.find('&');
            auto part = qs.substr(0, amp);
            auto eq = part.find('=');
            std::string k(part.substr(0, eq)),
                v = eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1), true);
            if (k == "actor")
              q.actor = v;
            else if (k == "action")
              q.action = v;
            else if (k == "resource")
              q.resource = v;
            else if (k == "since")
              q.since_ms = std::stoll(v);
            else if (k == "until")
              q.until_ms = std::stoll(v);
            else if (k == "cursor")
              q.after_seq = std::stoull(v);
            else if (k == "limit")
              q.limit = static_cast<uint32_t>(std::clamp<unsigned long>(std::stoul(v), 1, 1000));
            else
              return send_problem(r, 400, "unknown query parameter '" + k + "'");
            if (amp == std::string_view::npos) break;
            qs.remove_prefix(amp + 1);
          }
        } catch (const std::logic_error&) {
          return send_problem(r, 400, "since, until, cursor and limit are integers");
        }
        send_json(r, 200, audit->query(q));
      });

  add("GET", "/v1/admin/users", "List users (cursor pagination)", 0, true, false, [this](vellum_request& r) {
    std::string after;
    uint32_t limit = 100;
    std::string_view q = r.http.query;
    while (!q.empty()) {
      auto amp = q.find('&');
      auto part = q.substr(0, amp);
      if (part.rfind("cursor=", 0) == 0) after = percent_decode(part.substr(7), true);
      if (part.rfind("limit=", 0) == 0)
        limit = static_cast<uint32_t>(std::strtoul(std::string(part.substr(6)).c_str(), nullptr, 10));
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    bool more = false;
    json list = json::array();
    auto users = identity->list_users(after, limit ? limit : 100, &more);
    for (auto& u : users) list.push_back(u.public_json());
    send_json(r, 200,
              {{"users", list}, {"next_cursor", more && !users.empty() ? json(users.back().id) : json()}});
  });

  if (cfg.testing.clock_control) {
    // Tests of expiries (sessions, links, elevations, signing deadlines)
    // move time instead of sleeping. Forward only: records and sessions
    // assume time does not run backwards.
    add("POST", "/v1/admin/clock", "[testing] Move the host clock forward by advance_ms", 0, true, false,
        [this](vellum_request& r) {
          auto b = body_object(r);
          if (!b) return;
          auto it = b->find("advance_ms");
          if (it == b->end() || !it->is_number_integer() || it->get<int64_t>() < 0 ||
              it->get<int64_t>() > 10LL * 366 * 24 * 3600 * 1000)
            return send_problem(r, 400, "advance_ms must be an integer from 0 to 10 years in ms");
          clock_offset_ms.fetch_add(it->get<int64_t>());
          audit_host(r, "admin.clock.advance", "host/clock", "success", {{"advance_ms", it->get<int64_t>()}});
          send_json(r, 200, {{"now_ms", clock()}, {"offset_ms", clock_offset_ms.load()}});
        });
  }

  add("POST", "/v1/admin/users", "Create a user", 0, true, false, [this](vellum_request& r) {
    auto b = body_object(r);
    if (!b) return;
    std::vector<std::string> roles;
    if (b->contains("roles")) {
      if (!(*b)["roles"].is_array()) return send_problem(r, 400, "roles must be an array of strings");
      for (auto& x : (*b)["roles"]) {
        if (!x.is_string()) return send_problem(r, 400, "roles must be an array of strings");
        roles.push_back(x.get<std::string>());
      }
    }
    auto u = identity->create_user(str(*b, "email"), str(*b, "display_name"), str(*b, "password"), roles);
    audit_host(r, "admin.user.create", "user/" + u.id, "success", {{"roles", roles}});
    send_json(r, 201, u.public_json());
  });

  for (auto [verb, status] :
       {std::pair{"lock", "locked"}, {"unlock", "active"}, {"disable", "disabled"}, {"enable", "active"}}) {
    std::string path = std::string("/v1/admin/users/{id}/") + verb;
    std::string action = std::string("admin.user.") + verb;
    std::string target = status;
    add("POST", path, "Change a user's status (revokes their sessions unless active)", 0, true, false,
        [this, action, target](vellum_request& r) {
          std::string id = r.params.at(0).second;
          if (id == r.auth->user.id && target != "active")
            return send_problem(r, 409, "administrators cannot lock or disable themselves");
          auto u = identity->set_status(id, target);
          audit_host(r, action, "user/" + id, "success");
          send_json(r, 200, u.public_json());
        });
  }
}

}  // namespace vellum::host
