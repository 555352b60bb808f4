// Identity and audit benchmarks against the real host code (no HTTP):
//  - login throughput at the OWASP argon2id parameters (m=19 MiB, t=2, p=1),
//    1 and 2 threads — the argon2 cost is the limit, by design;
//  - latency of resolving a bearer token (the per-request cost) with 100,000
//    stored sessions: p50/p99 over random tokens;
//  - durable audit appends per second (1 and 4 threads) and verify time.
// Usage: bench_identity_audit [sessions=100000] [audit_records=200000]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "audit.hpp"
#include "identity.hpp"

using namespace vellum::host;
using Steady = std::chrono::steady_clock;

static double ms_since(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

int main(int argc, char** argv) {
  size_t sessions = argc > 1 ? std::stoul(argv[1]) : 100000;
  size_t records = argc > 2 ? std::stoul(argv[2]) : 200000;
  std::string dir = std::filesystem::temp_directory_path() / ("vellum-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto store = open_sqlite_store({dir + "/bench.db", 4, 5000});
  Identity id(*store, IdentityConfig{}, system_clock_ms);
  const std::string pw = "a long load-test passphrase 42";
  auto user = id.create_user("bench@example.com", "Bench", pw, {});

  // ---- login throughput at OWASP parameters
  for (int threads : {1, 2}) {
    const int per_thread = 20;
    auto t0 = Steady::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        std::string ip = "10.0.0.";  // (built in two steps: GCC 12 warns falsely on the one-liner)
        ip += std::to_string(t);
        for (int i = 0; i < per_thread; ++i) id.login("bench@example.com", pw, "", ip, "b");
      });
    for (auto& t : ts) t.join();
    double s = ms_since(t0) / 1000;
    std::printf("login (argon2id m=19MiB t=2 p=1), %d thread(s): %.1f logins/s (%.1f ms each)\n", threads,
                threads * per_thread / s, s * 1000 / (threads * per_thread) * threads);
  }

  // ---- token resolution with many sessions
  std::vector<std::string> tokens;
  tokens.reserve(sessions);
  auto t0 = Steady::now();
  for (size_t i = 0; i < sessions; ++i)
    tokens.push_back(id.create_api_token(user.id, "bench token", "full", 30ull * 24 * 3600 * 1000).token);
  std::printf("stored %zu sessions in %.1f s (one durable commit each)\n", sessions, ms_since(t0) / 1000);
  std::mt19937 rng(42);
  std::vector<double> lat;
  for (int i = 0; i < 20000; ++i) {
    const auto& tok = tokens[rng() % tokens.size()];
    auto a = Steady::now();
    auto who = id.authenticate(tok);
    lat.push_back(std::chrono::duration<double, std::micro>(Steady::now() - a).count());
    if (!who) return std::fprintf(stderr, "token did not resolve\n"), 1;
  }
  std::sort(lat.begin(), lat.end());
  std::printf("authenticate(token) with %zu sessions: p50 %.1f us, p99 %.1f us, max %.1f us\n", sessions,
              lat[lat.size() / 2], lat[lat.size() * 99 / 100], lat.back());

  // ---- audit
  AuditOptions ao;
  ao.db_path = dir + "/audit.db";
  ao.hmac_key_path = dir + "/audit-hmac.key";
  ao.signing_key_path = dir + "/audit-signing.pem";
  {
    AuditLog log(ao);
    for (int threads : {1, 4}) {
      size_t n = records / 2 / threads * threads;
      auto a = Steady::now();
      std::vector<std::thread> ts;
      for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
          for (size_t i = 0; i < n / threads; ++i) {
            AuditEvent e;
            e.actor = user.id;
            e.action = "bench.append";
            e.resource = "document/";
            e.resource += std::to_string(i);
            e.outcome = "success";
            e.time_ms = system_clock_ms();
            log.append(std::move(e));
          }
        });
      for (auto& t : ts) t.join();
      std::printf("audit append (durable), %d thread(s): %.0f records/s\n", threads,
                  n / (ms_since(a) / 1000));
    }
    log.checkpoint();
  }
  auto v0 = Steady::now();
  auto rep = verify_audit(ao.db_path, "");
  double vs = ms_since(v0) / 1000;
  std::printf("audit verify: %llu records, %llu checkpoints in %.2f s (%s) -> 1M records ~ %.1f s\n",
              static_cast<unsigned long long>(rep.records), static_cast<unsigned long long>(rep.checkpoints),
              vs, rep.ok ? "ok" : rep.first_error.c_str(), vs * 1e6 / std::max<double>(1, rep.records));
  std::filesystem::remove_all(dir);
  return rep.ok ? 0 : 1;
}
