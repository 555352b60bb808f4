// The decision engine, driven directly with a clock, client address and user
// agent the test chooses: the permission matrix, ABAC conditions, combining
// algorithms, obligations, share-link guests, delegation, elevation and
// break-glass.
#include <catch2/catch.hpp>

#include <string>

#include "engine.hpp"

using namespace vellum::sharing;
using nlohmann::json;

namespace {

const std::string kWs = "workspace/w";
const std::string kF1 = kWs + "/folder/f1";
const std::string kF2 = kF1 + "/folder/f2";
const std::string kDoc = kF2 + "/document/d";
const std::string kNode = kDoc + "/node/n";
const std::string kSibling = kF2 + "/document/other";

// 2026-11-23 is a Monday; 10:00 UTC.
constexpr int64_t kMonday10 = 1795428000000;

int next_id = 0;
Grant grant(const std::string& subject, const std::string& resource, const std::string& effect,
            const std::string& role_or_actions, int64_t expires = 0) {
  Roles roles;
  json j = {{"id", "g" + std::to_string(++next_id)},
            {"subject", subject},
            {"resource", resource},
            {"effect", effect}};
  if (effect == "allow")
    j["role"] = role_or_actions;
  else
    j["actions"] = json::array({role_or_actions});
  if (expires) j["expires_ms"] = expires;
  return Grant::from_json(j, roles);
}

struct Ask {
  std::string user = "alice", action = "read", resource = kDoc, owner, ip = "10.1.2.3",
              ua = "Mozilla/5.0 (X11; Linux x86_64)", scopes = "read write", email;
  int64_t now = kMonday10, mfa = 0, session = kMonday10 - 60000;
  Query q() const {
    Query r;
    r.user_id = user;
    r.action = action;
    r.resource = resource;
    r.owner = owner;
    r.client_ip = ip;
    r.user_agent = ua;
    r.scopes = scopes;
    r.now_ms = now;
    r.mfa_verified_at_ms = mfa;
    r.email = email;
    r.session_created_at_ms = session;
    return r;
  }
};

bool allowed(const Engine& e, Ask a) { return e.decide(a.q()).permit; }
bool allowed(const Engine& e, const std::string& action, const std::string& resource,
             const std::string& user = "alice", const std::string& email = "") {
  Ask a;
  a.action = action;
  a.resource = resource;
  a.user = user;
  a.email = email;
  return allowed(e, a);
}

bool role_has(const std::string& role, const std::string& action) {
  Roles r;
  return (r.find(role)->actions & action_bit(action)) != 0;
}

Policy policy(const json& j) { return Policy::from_json(j, Roles()); }

}  // namespace

TEST_CASE("permission matrix: every role and action, inherited, explicit and denied", "[engine]") {
  for (const char* role : {"viewer", "commenter", "editor", "admin", "owner"}) {
    for (const char* action : kActions) {
      const bool expect = role_has(role, action);
      INFO(role << " " << action);
      {  // inherited from a folder two levels up, down to the element
        Engine e;
        e.put_grant(grant("user:alice", kF1, "allow", role));
        CHECK(allowed(e, action, kF2) == expect);
        CHECK(allowed(e, action, kDoc) == expect);
        CHECK(allowed(e, action, kNode) == expect);
        CHECK_FALSE(allowed(e, action, kWs));  // not upwards
        CHECK_FALSE(allowed(e, action, kDoc, "bob"));
      }
      {  // an explicit grant on the document replaces the inherited owner role
        Engine e;
        e.put_grant(grant("user:alice", kF1, "allow", "owner"));
        e.put_grant(grant("user:alice", kDoc, "allow", role));
        CHECK(allowed(e, action, kDoc) == expect);
        CHECK(allowed(e, action, kNode) == expect);
        CHECK(allowed(e, action, kSibling));  // the sibling still inherits owner
      }
      {  // an explicit denial of this action on the document
        Engine e;
        e.put_grant(grant("user:alice", kF1, "allow", role));
        e.put_grant(grant("user:alice", kDoc, "deny", action));
        CHECK_FALSE(allowed(e, action, kDoc));
        CHECK_FALSE(allowed(e, action, kNode));
        CHECK(allowed(e, action, kSibling) == expect);
        // other actions stay inherited
        const std::string other = std::string(action) == "read" ? "comment" : "read";
        CHECK(allowed(e, other, kDoc) == role_has(role, other));
      }
      {  // an explicit grant on the element below a denial wins again
        Engine e;
        e.put_grant(grant("user:alice", kDoc, "deny", "*"));
        e.put_grant(grant("user:alice", kNode, "allow", role));
        CHECK_FALSE(allowed(e, action, kDoc));
        CHECK(allowed(e, action, kNode) == expect);
      }
      {  // an exclusion at the folder overrides an explicit grant below it
        Engine e;
        e.put_grant(grant("user:alice", kDoc, "allow", role));
        e.put_grant(grant("user:alice", kF1, "exclude", action));
        CHECK_FALSE(allowed(e, action, kDoc));
        CHECK_FALSE(allowed(e, action, kNode));
      }
    }
  }
}

TEST_CASE("ownership, groups, teams, email domains and expiry", "[engine]") {
  Engine e;
  Ask a;
  a.owner = "alice";
  a.action = "delete";
  CHECK(allowed(e, a));
  a.owner = "bob";
  CHECK_FALSE(allowed(e, a));
  // an exclusion overrides even ownership
  a.owner = "alice";
  e.put_grant(grant("user:alice", kDoc, "exclude", "delete"));
  CHECK_FALSE(allowed(e, a));

  e.put_grant(grant("group:design", kF1, "allow", "editor"));
  e.put_grant(grant("domain:example.org", kF2, "allow", "commenter"));
  e.put_grant(grant("team:t1", kWs, "allow", "viewer"));
  CHECK_FALSE(allowed(e, "write", kDoc, "carol"));
  e.set_user("carol", {{"design"}});
  CHECK(allowed(e, "write", kDoc, "carol"));  // the group's grant; no e-mail, no domain grant
  // The domain comes from the e-mail in the query (the account's), in any case.
  const std::string mail = "Carol@Example.ORG";
  // nearest level wins: the domain grant on f2 is nearer than the group's on f1
  CHECK(allowed(e, "comment", kDoc, "carol", mail));
  CHECK_FALSE(allowed(e, "write", kDoc, "carol", mail));
  CHECK(allowed(e, "write", kF1, "carol", mail));
  CHECK(allowed(e, "read", kDoc, "zoe", "zoe@example.org"));  // no attributes recorded at all
  CHECK_FALSE(allowed(e, "read", kDoc, "zoe", "zoe@example.org.evil"));
  CHECK_FALSE(allowed(e, "read", kDoc, "zoe", "example.org"));
  CHECK_FALSE(allowed(e, "read", kWs, "dave"));
  e.set_team_members("t1", {"dave"});
  CHECK(allowed(e, "read", kWs, "dave"));
  e.set_team_members("t1", {});
  CHECK_FALSE(allowed(e, "read", kWs, "dave"));

  e.put_grant(grant("user:erin", kDoc, "allow", "viewer", kMonday10 + 1000));
  Ask b;
  b.user = "erin";
  CHECK(allowed(e, b));
  b.now = kMonday10 + 1000;
  CHECK_FALSE(allowed(e, b));
}

TEST_CASE("read-only tokens keep only non-mutating actions", "[engine]") {
  Engine e;
  e.put_grant(grant("user:alice", kDoc, "allow", "editor"));
  Ask a;
  a.scopes = "read";
  CHECK(allowed(e, a));
  a.action = "write";
  CHECK_FALSE(allowed(e, a));
  a.scopes = "read write";
  CHECK(allowed(e, a));
}

TEST_CASE("custom roles from config", "[engine]") {
  Roles r;
  r.add_custom({{"name", "reviewer"}, {"inherits", "commenter"}, {"actions", {"sign"}}});
  CHECK_THROWS_AS(r.add_custom({{"name", "reviewer"}}), BadInput);
  CHECK_THROWS_AS(r.add_custom({{"name", "x"}, {"inherits", "nope"}}), BadInput);
  CHECK_THROWS_AS(r.add_custom({{"name", "y"}, {"actions", {"fly"}}}), BadInput);
  Engine e(r);
  e.put_grant(Grant::from_json({{"id", "c1"},
                                {"subject", "user:alice"},
                                {"resource", kDoc},
                                {"effect", "allow"},
                                {"role", "reviewer"}},
                               r));
  CHECK(allowed(e, "sign", kDoc));
  CHECK(allowed(e, "comment", kDoc));
  CHECK_FALSE(allowed(e, "write", kDoc));
}

TEST_CASE("bad grants and policies are refused", "[engine]") {
  Roles r;
  CHECK_THROWS_AS(Grant::from_json({{"subject", "alice"}, {"resource", kDoc}, {"role", "viewer"}}, r),
                  BadInput);
  CHECK_THROWS_AS(Grant::from_json({{"subject", "user:a"}, {"resource", "document/"}, {"role", "viewer"}}, r),
                  BadInput);
  CHECK_THROWS_AS(Grant::from_json({{"subject", "user:a"}, {"resource", kDoc}, {"role", "god"}}, r),
                  BadInput);
  CHECK_THROWS_AS(Grant::from_json(
                      {{"subject", "user:a"}, {"resource", kDoc}, {"effect", "deny"}, {"actions", {"x"}}}, r),
                  BadInput);
  CHECK_THROWS_AS(policy({{"effect", "maybe"}}), BadInput);
  CHECK_THROWS_AS(
      policy({{"effect", "deny"}, {"environment", {{"time", {{"from", "25:00"}, {"to", "10:00"}}}}}}),
      BadInput);
  CHECK_THROWS_AS(policy({{"effect", "deny"}, {"environment", {{"ip_ranges", {"10.0.0.0/33"}}}}}), BadInput);
  CHECK_THROWS_AS(policy({{"effect", "deny"}, {"frobnicate", 1}}), BadInput);
  CHECK_THROWS_AS(policy({{"effect", "deny"}, {"obligations", {{{"type", "teleport"}}}}}), BadInput);
  std::vector<std::string_view> p;
  CHECK_FALSE(path_prefixes("document", p));
  CHECK_FALSE(path_prefixes("document/a/", p));
  CHECK_FALSE(path_prefixes("document//x/y", p));
  CHECK(path_prefixes(kNode, p));
  CHECK(p.size() == 5);
}

TEST_CASE("ABAC: time window and weekday under a controlled clock", "[engine][abac]") {
  Engine e;
  e.put_grant(grant("user:alice", kWs, "allow", "editor"));
  e.put_policy(policy({{"id", "office-hours"},
                       {"effect", "deny"},
                       {"target", {{"actions", {"write"}}}},
                       {"environment", {{"time", {{"from", "18:00"}, {"to", "08:00"}}}}}}));
  Ask a;
  a.action = "write";
  a.now = kMonday10;  // 10:00
  CHECK(allowed(e, a));
  a.now = kMonday10 + 9 * 3600000LL;  // 19:00: inside the overnight deny window
  CHECK_FALSE(allowed(e, a));
  a.now = kMonday10 - 3 * 3600000LL;  // 07:00
  CHECK_FALSE(allowed(e, a));
  a.action = "read";  // not targeted
  CHECK(allowed(e, a));

  Engine w;
  w.put_grant(grant("user:alice", kWs, "allow", "viewer"));
  // weekends denied, with a UTC+02:00 office
  w.put_policy(policy({{"id", "weekend"},
                       {"effect", "deny"},
                       {"environment", {{"weekdays", {6, 7}}, {"utc_offset_minutes", 120}}}}));
  Ask b;
  b.now = kMonday10;
  CHECK(allowed(w, b));
  b.now = kMonday10 - 11 * 3600000LL;  // Sunday 23:00 UTC = Monday 01:00 local: allowed
  CHECK(allowed(w, b));
  b.now = kMonday10 - 13 * 3600000LL;  // Sunday 21:00 UTC = 23:00 local: denied
  CHECK_FALSE(allowed(w, b));
  b.now = kMonday10 + 5 * 86400000LL;  // Saturday
  CHECK_FALSE(allowed(w, b));
}

TEST_CASE("ABAC: client IP ranges and user-agent classes", "[engine][abac]") {
  Engine e;
  e.put_grant(grant("user:alice", kWs, "allow", "viewer"));
  e.put_policy(policy({{"id", "office-net"},
                       {"effect", "deny"},
                       {"environment", {{"not_ip_ranges", {"10.0.0.0/8", "2001:db8::/32"}}}}}));
  Ask a;
  a.ip = "10.200.3.4";
  CHECK(allowed(e, a));
  a.ip = "::ffff:10.0.0.9";  // IPv4-mapped
  CHECK(allowed(e, a));
  a.ip = "2001:db8:1::5";
  CHECK(allowed(e, a));
  a.ip = "192.168.1.1";
  CHECK_FALSE(allowed(e, a));
  a.ip = "2001:db9::1";
  CHECK_FALSE(allowed(e, a));
  a.ip = "garbage";
  CHECK_FALSE(allowed(e, a));

  Engine u;
  u.put_grant(grant("user:alice", kWs, "allow", "viewer"));
  u.put_policy(policy(
      {{"id", "no-bots"}, {"effect", "deny"}, {"environment", {{"user_agent_classes", {"bot", "cli"}}}}}));
  Ask b;
  CHECK(allowed(u, b));
  b.ua = "curl/8.5.0";
  CHECK_FALSE(allowed(u, b));
  b.ua = "Googlebot/2.1";
  CHECK_FALSE(allowed(u, b));
  b.ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)";
  CHECK(allowed(u, b));
  CHECK(ua_class(b.ua) == "mobile");
}

TEST_CASE("ABAC: subject roles, groups, domains, MFA freshness and ownership", "[engine][abac]") {
  Engine e;
  e.set_user("alice", {{"finance"}});
  e.set_user("bob", {{}});
  // Permit reads of finance folders to the finance group without any grant.
  e.put_policy(policy({{"id", "finance"},
                       {"effect", "permit"},
                       {"target", {{"actions", {"read"}}, {"resource", kF1}}},
                       {"subject", {{"groups", {"finance"}}}}}));
  CHECK(allowed(e, "read", kDoc, "alice"));
  CHECK_FALSE(allowed(e, "read", kDoc, "bob"));
  CHECK_FALSE(allowed(e, "read", kWs, "alice"));  // target is f1 and below

  Engine d;
  d.put_grant(grant("user:alice", kWs, "allow", "editor"));
  d.put_grant(grant("user:bob", kWs, "allow", "editor"));
  d.put_policy(policy({{"id", "corp-only"},
                       {"effect", "deny"},
                       {"target", {{"actions", {"export"}}}},
                       {"subject", {{"roles", {"editor", "viewer"}}}}}));
  d.put_policy(policy({{"id", "corp-export"},
                       {"effect", "permit"},
                       {"order", -1},
                       {"target", {{"actions", {"export"}}}},
                       {"subject", {{"email_domains", {"corp.example"}}}}}));
  CHECK_FALSE(allowed(d, "export", kDoc, "alice", "alice@corp.example"));  // deny-overrides: the deny wins
  d.set_combining(Combining::FirstApplicable);  // corp-export comes first (order -1)
  CHECK(allowed(d, "export", kDoc, "alice", "alice@corp.example"));
  CHECK_FALSE(allowed(d, "export", kDoc, "bob", "bob@gmail.example"));
  CHECK_FALSE(allowed(d, "export", kDoc, "alice"));  // no e-mail, no domain

  Engine m;
  m.put_grant(grant("user:alice", kWs, "allow", "admin"));
  m.put_policy(policy({{"id", "fresh-delete"},
                       {"effect", "deny"},
                       {"target", {{"actions", {"delete"}}}},
                       {"subject", {{"is_owner", false}}}}));
  m.put_policy(policy({{"id", "mfa-share"},
                       {"effect", "permit"},
                       {"target", {{"actions", {"share"}}}},
                       {"subject", {{"mfa_max_age_s", 300}}}}));
  Ask a;
  a.action = "delete";
  CHECK_FALSE(allowed(m, a));
  a.owner = "alice";
  CHECK(allowed(m, a));
  m.set_combining(Combining::FirstApplicable);
  a.action = "share";
  a.owner = "";
  a.mfa = kMonday10 - 200 * 1000;
  CHECK(allowed(m, a));            // mfa-share permits
  a.mfa = kMonday10 - 400 * 1000;  // stale: policy not applicable, the grant decides
  CHECK(allowed(m, a));
  m.put_grant(grant("user:alice", kWs, "deny", "share"));
  CHECK_FALSE(allowed(m, a));
  a.mfa = kMonday10 - 10 * 1000;
  CHECK(allowed(m, a));
}

TEST_CASE("ABAC: resource classification and type", "[engine][abac]") {
  Engine e;
  e.put_grant(grant("user:alice", kWs, "allow", "editor"));
  e.put_policy(
      policy({{"id", "secret-no-export"},
              {"effect", "deny"},
              {"target", {{"actions", {"export", "download"}}, {"resource_types", {"document", "node"}}}},
              {"resource", {{"classification_any", {"secret"}}}}}));
  CHECK(allowed(e, "export", kDoc));
  e.set_classification(kF2, {"secret"});
  CHECK_FALSE(allowed(e, "export", kDoc));
  CHECK_FALSE(allowed(e, "download", kNode));
  CHECK(allowed(e, "export", kF2));  // type folder not targeted
  CHECK(allowed(e, "export", kF1 + "/document/x"));
  e.set_classification(kF2, {});
  CHECK(allowed(e, "export", kDoc));
}

TEST_CASE("combining algorithms", "[engine][abac]") {
  auto make = [](Engine& e, Combining c) {
    e.set_combining(c);
    e.put_grant(grant("user:alice", kWs, "allow", "viewer"));
    e.put_policy(policy({{"id", "a-permit-write"},
                         {"effect", "permit"},
                         {"order", 1},
                         {"target", {{"actions", {"write"}}}}}));
    e.put_policy(policy(
        {{"id", "b-deny-write"}, {"effect", "deny"}, {"order", 2}, {"target", {{"actions", {"write"}}}}}));
    e.put_policy(policy({{"id", "c-deny-read-bob"},
                         {"effect", "deny"},
                         {"order", 0},
                         {"target", {{"actions", {"read"}}}},
                         {"subject", {{"groups", {"blocked"}}}}}));
  };
  {
    Engine e;
    make(e, Combining::DenyOverrides);
    CHECK_FALSE(allowed(e, "write", kDoc));
    CHECK(allowed(e, "read", kDoc));
    Ask w;
    w.action = "write";
    CHECK(e.decide(w.q()).reason == "denied by policy b-deny-write");
  }
  {
    Engine e;
    make(e, Combining::PermitOverrides);
    CHECK(allowed(e, "write", kDoc));
    CHECK_FALSE(allowed(e, "comment", kDoc));  // no policy, no grant
  }
  {
    Engine e;
    make(e, Combining::FirstApplicable);
    CHECK(allowed(e, "write", kDoc));  // a-permit-write comes first
    e.put_policy(policy({{"id", "a-permit-write"},
                         {"effect", "permit"},
                         {"order", 3},
                         {"target", {{"actions", {"write"}}}}}));
    CHECK_FALSE(allowed(e, "write", kDoc));  // now b-deny-write comes first
    e.set_user("alice", {{"blocked"}});
    CHECK_FALSE(allowed(e, "read", kDoc));
  }
  CHECK(parse_combining("permit-overrides") == Combining::PermitOverrides);
  CHECK_FALSE(parse_combining("majority"));
}

TEST_CASE("obligations come back with the decision", "[engine][abac]") {
  Engine e;
  e.put_grant(grant("user:alice", kWs, "allow", "editor"));
  e.put_policy(
      policy({{"id", "wm"},
              {"effect", "permit"},
              {"target", {{"actions", {"export"}}}},
              {"obligations",
               {{{"type", "watermark"}, {"level", "visible"}}, {{"type", "log"}, {"level", "high"}}}}}));
  e.put_policy(policy({{"id", "mfa"},
                       {"effect", "permit"},
                       {"target", {{"actions", {"delete"}}}},
                       {"obligations", {{{"type", "require_mfa"}, {"max_age_s", 60}}}}}));
  e.put_grant(grant("user:alice", kDoc, "allow", "admin"));
  Ask a;
  a.action = "export";
  Decision d = e.decide(a.q());
  REQUIRE(d.permit);
  REQUIRE(d.obligations.size() == 2);
  CHECK(d.obligations[0]["type"] == "watermark");
  a.action = "delete";
  d = e.decide(a.q());
  CHECK_FALSE(d.permit);
  CHECK(d.reason == "fresh MFA required");
  a.mfa = kMonday10 - 30000;
  CHECK(e.decide(a.q()).permit);
  a.action = "read";
  CHECK(e.decide(a.q()).obligations.empty());
}

TEST_CASE("share-link guests get the link's current role on its resource only", "[engine][links]") {
  Engine e;
  LinkGrant l{"L1", kF2, "editor", false, false, false, false, 0, "light", std::nullopt};
  e.put_link(l);
  Ask a;
  a.user = "guest:sharing:L1";
  a.scopes = "guest read write";
  CHECK(allowed(e, a));
  a.action = "write";
  CHECK(allowed(e, a));
  a.action = "share";  // guests never share, manage or delete
  CHECK_FALSE(allowed(e, a));
  a.action = "read";
  a.resource = kF1;
  CHECK_FALSE(allowed(e, a));
  a.resource = kDoc;
  CHECK(e.decide(a.q()).obligations[0]["level"] == "light");
  l.role = "viewer";
  l.no_download = true;
  e.put_link(l);
  a.action = "write";
  CHECK_FALSE(allowed(e, a));
  a.action = "download";
  CHECK_FALSE(allowed(e, a));
  a.action = "read";
  CHECK(allowed(e, a));
  l.revoked = true;
  e.put_link(l);
  CHECK_FALSE(allowed(e, a));
  a.user = "guest:other:L1";  // another plugin's guest
  CHECK_FALSE(allowed(e, a));
}

TEST_CASE("delegation is limited to what the delegator holds", "[engine][delegation]") {
  Engine e;
  e.put_grant(grant("user:alice", kF2, "allow", "commenter"));
  e.put_delegation(
      {"d1", "alice", "bob", kF2, action_bit("comment") | action_bit("write"), kMonday10 + 60000, ""});
  CHECK(allowed(e, "comment", kDoc, "bob"));
  CHECK_FALSE(allowed(e, "write", kDoc, "bob"));   // alice cannot write
  CHECK_FALSE(allowed(e, "read", kDoc, "bob"));    // not delegated
  CHECK_FALSE(allowed(e, "comment", kF1, "bob"));  // outside the delegated resource
  Ask late;
  late.user = "bob";
  late.action = "comment";
  late.now = kMonday10 + 60000;
  CHECK_FALSE(allowed(e, late));
  e.put_grant(grant("user:alice", kF2, "deny", "comment"));
  CHECK_FALSE(allowed(e, "comment", kDoc, "bob"));  // revoked from alice = revoked from bob
  CHECK(e.remove_delegation("d1"));
}

TEST_CASE("elevation expires at decision time and break-glass bypasses exclusions", "[engine][elevation]") {
  Engine e;
  e.put_grant(grant("user:alice", kWs, "allow", "viewer"));
  e.put_elevation({"e1", "alice", kF1, "admin", "pending", kMonday10 + 3600000});
  CHECK_FALSE(allowed(e, "manage", kDoc));
  e.put_elevation({"e1", "alice", kF1, "admin", "approved", kMonday10 + 3600000});
  CHECK(allowed(e, "manage", kDoc));
  Ask a;
  a.action = "manage";
  a.now = kMonday10 + 3600000;
  CHECK_FALSE(allowed(e, a));

  e.put_grant(grant("user:alice", kWs, "exclude", "*"));
  CHECK_FALSE(allowed(e, "read", kDoc));
  e.put_break_glass({"b1", "alice", kF2, "pending", kMonday10 + 3600000});
  CHECK_FALSE(allowed(e, "read", kDoc));
  e.put_break_glass({"b1", "alice", kF2, "active", kMonday10 + 3600000});
  Decision d = e.decide(Ask{}.q());
  CHECK(d.permit);
  CHECK(d.obligations[0]["level"] == "high");
  Ask late;
  late.now = kMonday10 + 3600000;
  CHECK_FALSE(allowed(e, late));
}

TEST_CASE("explain lists the grants and policies behind a decision", "[engine][explain]") {
  Engine e;
  e.put_grant(grant("user:alice", kF1, "allow", "editor"));
  e.put_grant(grant("user:alice", kDoc, "deny", "write"));
  e.put_policy(policy({{"id", "p1"}, {"effect", "deny"}, {"target", {{"actions", {"export"}}}}}));
  Ask a;
  a.action = "write";
  json x = e.explain(a.q());
  CHECK(x["decision"] == "deny");
  REQUIRE(x["grants"].size() == 2);
  CHECK(x["grants"][0]["effect"] == "deny");
  CHECK(x["grants"][1]["inherited"] == true);
  CHECK(x["policies"][0]["applicable"] == false);
  a.action = "export";
  x = e.explain(a.q());
  CHECK(x["reason"] == "denied by policy p1");
  CHECK(x["policies"][0]["applicable"] == true);
}

TEST_CASE("workspace rules: session timeout, MFA and allowlist before grants", "[engine][workspace]") {
  Engine e;
  e.put_grant(grant("user:alice", kWs, "allow", "editor"));
  WorkspaceRules w;
  w.session_timeout_ms = 600000;
  e.set_workspace_rules("w", w);
  Ask a;
  a.session = kMonday10 - 600000;  // exactly the limit: still fine
  CHECK(allowed(e, a));
  a.session = kMonday10 - 600001;
  Decision d = e.decide(a.q());
  CHECK_FALSE(d.permit);
  CHECK(d.reason == "the session is older than the workspace's session timeout of 600 s; sign in again");
  CHECK(e.explain(a.q())["reason"] == d.reason);
  a.owner = "alice";  // ownership does not help either
  CHECK_FALSE(allowed(e, a));
  a.session = 0;  // an unknown session age fails closed
  CHECK_FALSE(allowed(e, a));
  Ask outside = a;  // resources outside the workspace are not affected
  outside.resource = "document/elsewhere";
  CHECK(allowed(e, outside));
  e.set_workspace_rules("w", std::nullopt);
  CHECK(allowed(e, a));
}

TEST_CASE("a delegator's domain grants count with the e-mail recorded at delegation",
          "[engine][delegation]") {
  Engine e;
  e.put_grant(grant("domain:corp.example", kF2, "allow", "editor"));
  e.put_delegation({"d1", "alice", "bob", kF2, action_bit("write"), kMonday10 + 60000, "alice@corp.example"});
  CHECK(allowed(e, "write", kDoc, "bob"));
  e.put_delegation({"d1", "alice", "bob", kF2, action_bit("write"), kMonday10 + 60000, ""});
  CHECK_FALSE(allowed(e, "write", kDoc, "bob"));
}

namespace {
// Countries by first octet, standing in for a GeoIP database (the plugin's
// libmaxminddb lookup is tested end to end with a real .mmdb file).
struct FirstOctetCountries : CountryLookup {
  std::optional<std::array<char, 2>> country(const IpAddr& ip) const override {
    if (!ip.ok || !ip.v4) return std::nullopt;
    if (ip.a[0] == 10) return std::array<char, 2>{'D', 'E'};
    if (ip.a[0] == 192) return std::array<char, 2>{'F', 'R'};
    return std::nullopt;
  }
};
}  // namespace

TEST_CASE("allowed countries fail closed without a GeoIP database", "[engine][geo]") {
  Engine e;
  e.put_grant(grant("user:alice", kWs, "allow", "editor"));
  WorkspaceRules w;
  w.allowed_countries = {"DE"};
  e.set_workspace_rules("w", w);
  Ask a;  // from 10.1.2.3
  Decision d = e.decide(a.q());
  CHECK_FALSE(d.permit);
  CHECK(d.reason == "a country condition applies, but no GeoIP database is configured (geoip_database)");

  e.set_country_lookup(std::make_shared<FirstOctetCountries>());
  CHECK(allowed(e, a));
  a.ip = "::ffff:10.9.9.9";  // IPv4-mapped
  CHECK(allowed(e, a));
  a.ip = "192.0.2.7";
  d = e.decide(a.q());
  CHECK_FALSE(d.permit);
  CHECK(d.reason == "the client address is outside the workspace's allowed countries");
  a.ip = "172.16.0.1";
  d = e.decide(a.q());
  CHECK(d.reason == "a country condition applies, but the client address's country is unknown");

  // In a policy's environment: a permit for one country only ...
  Engine p;
  p.put_policy(policy({{"id", "de-read"},
                       {"effect", "permit"},
                       {"target", {{"actions", {"read"}}}},
                       {"environment", {{"countries", {"de"}}}}}));
  CHECK(p.policies()[0].countries == std::vector<std::string>{"DE"});
  Ask b;
  CHECK_FALSE(allowed(p, b));  // no database: fails closed
  p.set_country_lookup(std::make_shared<FirstOctetCountries>());
  CHECK(allowed(p, b));
  b.ip = "192.0.2.7";
  CHECK_FALSE(allowed(p, b));
  // ... and a deny policy whose country cannot be told denies rather than
  // being skipped.
  Engine q;
  q.put_grant(grant("user:alice", kWs, "allow", "editor"));
  q.put_policy(policy({{"id", "no-fr"},
                       {"effect", "deny"},
                       {"target", {{"actions", {"read"}}}},
                       {"environment", {{"countries", {"FR"}}}}}));
  Ask c;
  d = q.decide(c.q());
  CHECK_FALSE(d.permit);
  CHECK(d.reason == "a country condition applies, but no GeoIP database is configured (geoip_database)");
  q.set_country_lookup(std::make_shared<FirstOctetCountries>());
  CHECK(allowed(q, c));  // DE: the deny does not apply
  c.ip = "192.0.2.7";
  CHECK_FALSE(allowed(q, c));  // FR: denied by the policy

  CHECK_THROWS_AS(policy({{"effect", "deny"}, {"environment", {{"countries", {"Germany"}}}}}), BadInput);
  CHECK(country_code("de") == std::optional<std::string>("DE"));
  CHECK_FALSE(country_code("d1"));
}
