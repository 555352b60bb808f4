// PDP decision latency: the sharing engine with 100,000 grants and 1,000
// ABAC policies on a 6-level tree (workspace/folder/folder/folder/document/
// node). Writes the same model and query list as JSON (--dump FILE) so
// bench/pdp/peers.mjs can load it into Cedar (WASM) and casbin; see README.md.
//
//   pdp_bench [--dump model.json] [--queries N] [--seed S] [--threads T] [--policies P]
//
// --policies 0 leaves the ABAC policies out (grants only), for the peers'
// floor without their per-policy cost.
//
// With --threads T, T threads decide at once (the engine's shared lock and
// caches under concurrency); each decision is timed on its own thread.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine.hpp"

using namespace vellum::sharing;
using nlohmann::json;

namespace {

constexpr int kFan = 10, kUsers = 10000, kGroups = 200, kGrants = 100000;
const char* kLevelType[] = {"workspace", "folder", "folder", "folder", "document", "node"};
const char* kRoles[] = {"viewer", "commenter", "editor", "admin", "owner"};
const char* kQueryActions[] = {"read", "comment", "write", "export", "share", "delete"};

// Two steps: GCC 12 -O3 warns falsely on "literal" + std::to_string(n).
std::string cat(const char* prefix, long n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

std::string path_of(const std::vector<int>& ids) {
  std::string p;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) p += '/';
    p += kLevelType[i];
    p += '/';
    p += (i == 0 ? "w" : "n");
    p += std::to_string(ids[i]);
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dump;
  int queries = 200000, threads = 1, policies = 1000;
  unsigned seed = 42;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dump") dump = argv[i + 1];
    if (a == "--queries") queries = std::stoi(argv[i + 1]);
    if (a == "--seed") seed = static_cast<unsigned>(std::stoul(argv[i + 1]));
    if (a == "--threads") threads = std::max(1, std::stoi(argv[i + 1]));
    if (a == "--policies") policies = std::max(0, std::stoi(argv[i + 1]));
  }
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  // Random node ids: each level's id is unique within the whole tree so that
  // a path prefix names one node.
  auto random_path = [&](int depth) {
    std::vector<int> ids;
    int id = 0;
    for (int l = 0; l < depth; ++l) {
      id = id * kFan + pick(kFan);
      ids.push_back(id);
    }
    return ids;
  };

  Engine e;
  json model = {{"grants", json::array()},
                {"policies", json::array()},
                {"groups", json::array()},
                {"queries", json::array()}};
  std::vector<std::vector<int>> user_groups(kUsers);
  for (int u = 0; u < kUsers; ++u) {
    user_groups[u] = {pick(kGroups), pick(kGroups)};
    UserAttrs a;
    for (int g : user_groups[u]) a.groups.push_back(cat("g", g));
    e.set_user(cat("u", u), a);
    model["groups"].push_back(a.groups);
  }
  // Grants: 80% to users, 20% to groups, on levels 1..5; 5% are denials.
  std::vector<std::vector<int>> grant_paths;
  std::vector<std::string> grant_subjects;
  for (int i = 0; i < kGrants; ++i) {
    auto ids = random_path(1 + pick(5));
    const bool group = pick(5) == 0;
    const std::string subject = group ? cat("group:g", pick(kGroups)) : cat("user:u", pick(kUsers));
    const bool deny = pick(20) == 0;
    Grant g;
    g.id = cat("g", i);
    g.subject = subject;
    g.resource = path_of(ids);
    g.effect = deny ? "deny" : "allow";
    if (deny)
      g.actions = action_bit(kQueryActions[pick(6)]);
    else
      g.role = kRoles[pick(5)];
    e.put_grant(g);
    json gj = {{"subject", subject}, {"resource", g.resource}, {"effect", g.effect}};
    if (deny)
      gj["action"] = mask_to_json(g.actions)[0];
    else
      gj["role"] = g.role;
    model["grants"].push_back(gj);
    grant_paths.push_back(ids);
    grant_subjects.push_back(subject);
  }
  // Policies on level-2 folders: half forbid export from outside 10.0.0.0/8,
  // half permit reads to a group.
  for (int i = 0; i < policies; ++i) {
    const std::string res = path_of(random_path(2));
    json p;
    if (i % 2 == 0) {
      p = {{"id", cat("p", i)},
           {"effect", "deny"},
           {"target", {{"actions", {"export"}}, {"resource", res}}},
           {"environment", {{"not_ip_ranges", {"10.0.0.0/8"}}}}};
    } else {
      p = {{"id", cat("p", i)},
           {"effect", "permit"},
           {"target", {{"actions", {"read"}}, {"resource", res}}},
           {"subject", {{"groups", {cat("g", pick(kGroups))}}}}};
    }
    e.put_policy(Policy::from_json(p, e.roles()));
    model["policies"].push_back(p);
  }
  // Queries: half aimed below an existing grant (as its user), half random.
  struct Q {
    std::string user, email, action, resource, ip;
  };
  std::vector<Q> qs;
  for (int i = 0; i < queries; ++i) {
    Q q;
    std::vector<int> ids;
    if (i % 2 == 0) {
      const int g = pick(kGrants);
      ids = grant_paths[g];
      const std::string& s = grant_subjects[g];
      q.user = s.rfind("user:", 0) == 0 ? s.substr(5) : cat("u", pick(kUsers));
    } else {
      ids = random_path(1);
      q.user = cat("u", pick(kUsers));
    }
    while (ids.size() < 6) ids.push_back(ids.back() * kFan + pick(kFan));
    q.resource = path_of(ids);
    q.email = q.user + "@example.com";  // the account e-mail: one more subject (domain:) per lookup
    q.action = kQueryActions[pick(6)];
    q.ip = pick(2) ? "10.1.2.3" : "192.0.2.7";
    qs.push_back(q);
  }
  if (!dump.empty()) {
    for (size_t i = 0; i < std::min<size_t>(qs.size(), 20000); ++i)
      model["queries"].push_back(
          {{"user", qs[i].user}, {"action", qs[i].action}, {"resource", qs[i].resource}, {"ip", qs[i].ip}});
    std::ofstream(dump) << model.dump();
  }

  // Warm up, then time each decision.
  constexpr int64_t kNow = 1795428000000;
  auto run = [&](const Q& q) {
    Query x;
    x.user_id = q.user;
    x.email = q.email;
    x.scopes = "read write";
    x.action = q.action;
    x.resource = q.resource;
    x.client_ip = q.ip;
    x.user_agent = "Mozilla/5.0";
    x.now_ms = kNow;
    x.session_created_at_ms = kNow - 60000;
    return e.decide(x).permit;
  };
  for (size_t i = 0; i < std::min<size_t>(qs.size(), 20000); ++i) run(qs[i]);
  std::vector<std::vector<double>> per_thread(static_cast<size_t>(threads));
  std::vector<size_t> permits(static_cast<size_t>(threads));
  auto worker = [&](size_t t) {
    auto& ns = per_thread[t];
    ns.reserve(qs.size() / threads + 1);
    for (size_t i = t; i < qs.size(); i += static_cast<size_t>(threads)) {
      auto t0 = std::chrono::steady_clock::now();
      const bool p = run(qs[i]);
      auto t1 = std::chrono::steady_clock::now();
      permits[t] += p;
      ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < per_thread.size(); ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& th : pool) th.join();
  std::vector<double> ns;
  size_t permitted = 0;
  for (size_t t = 0; t < per_thread.size(); ++t) {
    ns.insert(ns.end(), per_thread[t].begin(), per_thread[t].end());
    permitted += permits[t];
  }
  std::sort(ns.begin(), ns.end());
  auto pct = [&](double p) { return ns[static_cast<size_t>(p * (ns.size() - 1))]; };
  std::string name = threads == 1 ? "vellum-sharing" : cat("vellum-sharing x", threads) + " threads";
  if (policies == 0) name += " (grants only)";
  std::printf(
      "{\"engine\":\"%s\",\"grants\":%zu,\"policies\":%d,\"queries\":%zu,"
      "\"permit_rate\":%.4f,\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f}\n",
      name.c_str(), e.grant_count(), policies, qs.size(), double(permitted) / qs.size(), pct(0.5) / 1000,
      pct(0.99) / 1000, ns.back() / 1000);
  return 0;
}
