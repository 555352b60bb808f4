// The sharing plugin's decision engine: roles, grants, exclusions, ABAC
// policies, share-link guests, delegations, elevations and break-glass,
// compiled into in-memory indexes. It knows nothing about the host: the
// plugin feeds it records and asks it questions, and unit tests drive it
// with a clock and client addresses they choose.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vellum::sharing {

using nlohmann::json;
using ActionMask = uint64_t;

// A key whose hash is already known: a decision hashes each path prefix and
// subject once and reuses the hash for every map it looks in.
struct Prehashed {
  std::string_view s;
  size_t h;
  explicit Prehashed(std::string_view v) : s(v), h(std::hash<std::string_view>{}(v)) {}
  Prehashed(std::string_view v, size_t hash) : s(v), h(hash) {}
  friend bool operator==(const std::string& a, const Prehashed& b) { return a == b.s; }
  friend bool operator==(const Prehashed& a, const std::string& b) { return a.s == b; }
};

// Heterogeneous lookup: the hot path looks up string_views without allocating.
struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  size_t operator()(const Prehashed& p) const noexcept { return p.h; }
};
template <class V>
using StrMap = std::unordered_map<std::string, V, SvHash, std::equal_to<>>;

// Thrown for bad input (policy JSON, grant fields); becomes a 4xx.
struct BadInput : std::runtime_error {
  std::string pointer;
  BadInput(const std::string& m, std::string p = {}) : std::runtime_error(m), pointer(std::move(p)) {}
};

// The standard actions, in bit order; custom actions are not supported
// (plugins that need a new action document it and get a bit here).
inline constexpr std::array<const char*, 12> kActions = {"read",     "comment", "write", "export",
                                                         "download", "print",   "copy",  "share",
                                                         "manage",   "delete",  "sign",  "billing"};
int action_index(std::string_view a);                            // -1 if unknown
bool has_scope(std::string_view scopes, std::string_view want);  // space-separated scopes
ActionMask action_bit(std::string_view a);                       // 0 if unknown
json mask_to_json(ActionMask m);

struct Role {
  std::string name;
  ActionMask actions = 0;  // including inherited ones
  int rank = 0;            // higher = more powerful (for "at least" comparisons)
};

// Roles: the default hierarchy plus custom roles from config
// ([{name, inherits, actions}]). Throws BadInput.
class Roles {
 public:
  Roles();
  void add_custom(const json& spec);
  const Role* find(std::string_view name) const;
  int index(std::string_view name) const;
  const std::vector<Role>& all() const { return roles_; }

 private:
  std::vector<Role> roles_;
};

// Splits "workspace/w/folder/f/document/d" into its cumulative prefixes
// ("workspace/w", "workspace/w/folder/f", ...). Returns false if the path is
// not a sequence of non-empty type/id pairs.
bool path_prefixes(std::string_view path, std::vector<std::string_view>& out);
bool valid_resource(std::string_view path);
std::string_view resource_type(std::string_view path);  // type of the last pair

// ---- records (what the API stores, as JSON in the plugin's KV) ----

// A grant (effect allow), a denial (deny: removes actions at this level and
// below, unless a deeper grant says otherwise) or an exclusion (exclude:
// removes actions everywhere below, overriding everything but break-glass).
struct Grant {
  std::string id;
  std::string subject;   // user:<id> | group:<name> | team:<id> | domain:<example.com>
  std::string resource;  // path prefix
  std::string effect = "allow";
  std::string role;        // for allow
  ActionMask actions = 0;  // for deny/exclude (0 = all)
  int64_t expires_ms = 0;  // 0 = never
  std::string created_by;
  int64_t created_ms = 0;
  // Compiled by the engine: the role's actions for allow; 0 = allow, 1 = deny, 2 = exclude.
  ActionMask role_actions = 0;
  int role_index = -1, kind = 0;
  uint64_t resource_hash = 0;
  json to_json() const;
  static Grant from_json(const json& j, const Roles& roles);  // throws BadInput
};

// A parsed client address (IPv4-mapped IPv6 addresses count as IPv4).
struct IpAddr {
  std::array<uint8_t, 16> a{};
  bool v4 = false, ok = false;
  static IpAddr parse(std::string_view ip);
};

// The country of a client address (ISO 3166-1 alpha-2, upper case), from a
// GeoIP database the plugin opens. Lookups run on every decision that has a
// country condition, concurrently: they must not block on I/O.
class CountryLookup {
 public:
  virtual ~CountryLookup() = default;
  // nullopt when the address is not in the database or has no country.
  virtual std::optional<std::array<char, 2>> country(const IpAddr& ip) const = 0;
};

// An ISO 3166-1 alpha-2 code, upper-cased; nullopt if s is not two letters.
std::optional<std::string> country_code(std::string_view s);

struct Cidr {
  std::array<uint8_t, 16> addr{};
  int bits = 0;
  bool v4 = false;
  static std::optional<Cidr> parse(std::string_view s);
  bool contains(std::string_view ip) const { return contains(IpAddr::parse(ip)); }
  bool contains(const IpAddr& ip) const;
};

// An ABAC policy (see docs/sharing.md for the JSON form).
struct Policy {
  std::string id, description, effect;  // effect: permit | deny
  int order = 0;
  ActionMask actions = 0;  // 0 = any action
  std::string resource;    // path prefix; empty = everything
  std::vector<std::string> resource_types;
  // subject conditions
  std::vector<std::string> roles;  // holds any of these roles (via grants/ownership) on the resource
  std::vector<std::string> groups, email_domains;
  int64_t mfa_max_age_s = -1;  // -1 = no condition
  bool subject_is_owner = false, subject_not_owner = false;
  bool guests_only = false, no_guests = false;
  // resource conditions
  std::vector<std::string> classification_any, classification_none;
  // environment
  int time_from_min = -1, time_to_min = -1, utc_offset_min = 0;
  uint8_t weekdays = 0;  // bit 0 = Monday .. bit 6 = Sunday; 0 = any
  std::vector<Cidr> cidrs, not_cidrs;
  std::vector<std::string> ua_classes;
  std::vector<std::string> countries;  // client's country must be one (needs a GeoIP database)
  json obligations = json::array();
  json source;                                                 // the JSON it came from
  int rank = 0;                                                // position in (order, id), set by the engine
  static Policy from_json(const json& j, const Roles& roles);  // throws BadInput
};

// Attributes the plugin records for a user. The e-mail is not one of them:
// it comes with each request (the principal's account e-mail, ABI 1.3).
struct UserAttrs {
  std::vector<std::string> groups;
};

// A share link as the PDP sees it (the plugin keeps the rest).
struct LinkGrant {
  std::string id, resource, role;
  bool revoked = false, no_download = false, no_print = false, no_copy = false;
  int64_t expires_ms = 0;
  std::string watermark;  // "" = none
  // Environment conditions (IP ranges, time window) checked on every request.
  std::optional<Policy> env;
};

struct Delegation {
  std::string id, from, to, resource;
  ActionMask actions = 0;
  int64_t expires_ms = 0;
  // The delegator's account e-mail when they delegated: their domain grants
  // count towards what they can pass on (their principal is not at hand when
  // the delegate asks).
  std::string from_email;
};

struct Elevation {
  std::string id, user, resource, role, status;  // pending | approved | denied
  int64_t expires_ms = 0;
};

struct BreakGlass {
  std::string id, user, resource, status;  // pending | active | closed
  int64_t expires_ms = 0;
};

// Workspace-wide requirements, checked before grants and policies for every
// resource under workspace/<id>.
struct WorkspaceRules {
  bool require_mfa = false;
  std::vector<Cidr> ip_allowlist;              // empty = any address
  int64_t session_timeout_ms = 0;              // 0 = none; older sessions are denied
  std::vector<std::string> allowed_countries;  // empty = any; needs a GeoIP database
};

// What the PDP is asked.
struct Query {
  std::string_view user_id, scopes, client_ip, user_agent;
  std::string_view email;  // the account e-mail (lower-case); empty for guests
  int64_t mfa_verified_at_ms = 0;
  int64_t session_created_at_ms = 0;  // when the session was issued; 0 = unknown
  std::string_view action, resource, owner;
  int64_t now_ms = 0;
};

struct Decision {
  bool permit = false;
  std::string reason;
  json obligations;  // null (none) or an array
};

enum class Combining { DenyOverrides, PermitOverrides, FirstApplicable };
std::optional<Combining> parse_combining(std::string_view s);
const char* combining_name(Combining c);

std::string ua_class(std::string_view ua);

// The compiled model. All reads take a shared lock; changes an exclusive one.
class Engine {
 public:
  explicit Engine(Roles roles = Roles()) : roles_(std::move(roles)) {}
  const Roles& roles() const { return roles_; }

  void set_combining(Combining c);
  Combining combining() const;
  void put_grant(const Grant& g);
  bool remove_grant(const std::string& id);
  std::optional<Grant> grant(const std::string& id) const;
  std::vector<Grant> grants_on(std::string_view resource) const;  // exactly this resource
  void put_policy(const Policy& p);
  bool remove_policy(const std::string& id);
  std::vector<Policy> policies() const;
  void set_user(const std::string& user, UserAttrs a);
  std::optional<UserAttrs> user(const std::string& user) const;
  void set_team_members(const std::string& team, const std::vector<std::string>& users);
  void set_classification(const std::string& resource, std::vector<std::string> tags);
  void put_link(const LinkGrant& l);
  void put_delegation(const Delegation& d);
  bool remove_delegation(const std::string& id);
  void put_elevation(const Elevation& e);
  void put_break_glass(const BreakGlass& b);
  void set_owner(const std::string& resource, const std::string& user);  // recorded ownership
  void set_workspace_rules(const std::string& workspace_id, std::optional<WorkspaceRules> rules);
  // Without one, country conditions deny (fail closed) and say why.
  void set_country_lookup(std::shared_ptr<const CountryLookup> lookup);
  std::string owner_of(std::string_view resource) const;
  size_t grant_count() const;
  // Whether link `id` is live and its environment conditions hold for q
  // (why: the reason it is not).
  bool link_usable(const std::string& id, const Query& q, std::string* why) const;

  // The decision for q. Never does I/O.
  Decision decide(const Query& q) const;
  // The decision with everything that contributed to it.
  json explain(const Query& q) const;
  // The actions `user` holds on resource through grants, ownership,
  // delegation and elevation (no policies): what they may delegate or share.
  ActionMask rbac_actions(const Query& q) const;

 private:
  struct Eval;
  void evaluate(const Query& q, Eval& e, bool want_explain) const;
  // A user's subjects (user:, group:, team:) with their hashes.
  struct Subjects {
    std::vector<std::string> names;
    std::vector<size_t> hashes;
    UserAttrs attrs;
  };
  // One subject's grants, sorted by resource hash; the hashes alone in a
  // parallel array so the binary search touches one cache line or two.
  struct SubjectGrants {
    std::vector<uint64_t> hashes;
    std::vector<Grant> grants;
    void insert(Grant g);
    bool erase(const std::string& id);
  };
  static constexpr size_t kMaxLevels = 33;
  ActionMask rbac(const Query& q, const std::vector<std::string_view>& prefixes, const size_t* prefix_hashes,
                  const Subjects& subjects, std::string_view domain_subject, Eval* e,
                  bool allow_delegations) const;
  const Subjects& subjects_of(std::string_view user, Subjects& scratch) const;
  void refresh_subjects(const std::string& user);
  bool policy_applies(const Policy& p, const Query& q, Eval& e, std::string* why) const;
  // Empty when the client's country is one of `allowed`, else why not.
  const char* country_refusal(const std::vector<std::string>& allowed, Eval& e, std::string_view ip) const;

  Roles roles_;
  mutable std::shared_mutex mu_;
  Combining combining_ = Combining::DenyOverrides;
  // Grants by subject, each list sorted by resource hash: a decision looks up
  // each of the caller's few subjects once and binary-searches its list per
  // path level, which keeps it to a handful of cache misses.
  StrMap<SubjectGrants> by_subject_;
  StrMap<std::string> grant_key_;            // id -> subject
  std::map<std::string, Policy> policies_;   // by id
  std::vector<const Policy*> policy_order_;  // sorted by (order, id)
  StrMap<std::vector<const Policy*>> policies_by_prefix_;
  StrMap<std::set<std::string>> teams_of_user_;
  StrMap<std::vector<std::string>> team_members_;
  StrMap<std::vector<std::string>> classes_;
  StrMap<LinkGrant> links_;
  StrMap<Delegation> delegations_;
  StrMap<std::vector<std::string>> delegations_to_;  // user -> ids
  StrMap<Elevation> elevations_;
  StrMap<std::vector<std::string>> elevations_of_;
  StrMap<BreakGlass> break_glass_;
  StrMap<std::vector<std::string>> break_glass_of_;
  StrMap<std::string> owners_;
  StrMap<WorkspaceRules> workspaces_;               // by "workspace/<id>"
  std::shared_ptr<const CountryLookup> countries_;  // null: no GeoIP database
  StrMap<Subjects> users_;                          // subjects and attributes of users with groups or teams

  void reindex_policies();
};

}  // namespace vellum::sharing
