// bench_abi_overhead: the in-process cost of answering one request through
// the plugin ABI, compared with a direct C++ call that does the same work.
//
// It runs the real host runtime (vellum_host_core) with the benchplug plugin
// loaded from the build tree, and times, per call:
//
//   direct   a C++ function that builds the same HttpResponse (200,
//            text/plain, "pong") and hands it to vellum_request::respond().
//   abi      the route's registered C handler pointer called directly: the
//            SDK trampoline (exception guard, Request wrapper, std::function),
//            host->respond (argument checks, copies) and the pending-registry
//            release that every plugin response goes through.
//   host     Runtime::handle_http with a fresh request, as the server calls
//            it: router match, principal, public-route check, metrics, ABI call.
//   healthz  Runtime::handle_http for GET /healthz, a host-native route
//            (std::function, no ABI), for comparison.
//   host-direct  the same fresh request, answered by the direct function
//            (the baseline for "host": allocation of the request included).
//
// Runtime::release_pending (which every plugin respond() goes through),
// Router::match and Metrics::observe_request are timed alone as well, to
// show where the extra time goes.
//
// Each measurement is the median (and min/max) of several runs of N calls.
// No transport, no sockets, a single thread.
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime.hpp"

#ifndef VELLUM_BUILD_DIR
#error "VELLUM_BUILD_DIR must be defined (the CMake binary dir)"
#endif

using namespace vellum::host;
namespace fs = std::filesystem;

namespace {

// Sinks that keep the optimizer from dropping the work.
volatile unsigned g_status_sink = 0;
volatile size_t g_size_sink = 0;

// The direct equivalent of benchplug's handler.
__attribute__((noinline)) void direct_ping(vellum_request& req) {
  HttpResponse r;
  r.status = 200;
  r.content_type = "text/plain";
  r.body = "pong";
  req.respond(std::move(r));
}

std::function<void(HttpResponse&&)> sink_complete() {
  return [](HttpResponse&& r) {
    g_status_sink = r.status;
    g_size_sink = r.body.size();
  };
}

std::shared_ptr<vellum_request> fresh_request() {
  auto req = std::make_shared<vellum_request>();
  req->http.method = "GET";
  req->http.path = "/v1/bench/ping";
  req->http.client_ip = "127.0.0.1";
  req->http.request_id = "0123456789abcdef";
  req->complete = sink_complete();
  return req;
}

// Makes a reused request ready for another response.
void rearm(vellum_request& req) {
  req.responded.store(false, std::memory_order_relaxed);
  req.resp_headers.clear();
  req.complete = sink_complete();
}

struct Stats {
  double median, min, max;
};

// One benchmark case: a name and the body of one call.
struct Case {
  const char* name;
  std::function<void()> body;
  std::vector<double> ns = {};  // ns/call of each run
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return Stats{v[v.size() / 2], v.front(), v.back()};
}

// Runs every case `runs` times, interleaved (run 1 of each case, then run 2
// of each, ...), so that drift on a shared machine hits every case alike.
// The std::function indirection is the same for every case; the timed loop
// calls the body through a template so it inlines where it can.
template <class F>
double time_run(long calls, F& body) {
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < calls; ++i) body();
  auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(calls);
}

void run_interleaved(std::vector<Case>& cases, int runs, long calls) {
  for (auto& c : cases)  // warm-up: caches, allocator, branch predictors
    for (long i = 0; i < calls / 10; ++i) c.body();
  for (int r = 0; r < runs; ++r)
    for (auto& c : cases) c.ns.push_back(time_run(calls, c.body));
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vellum-bench-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

long arg_long(int argc, char** argv, const char* name, long def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::max(1L, std::atol(argv[i + 1]));
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const long calls = arg_long(argc, argv, "--calls", 200000);
  const int runs = static_cast<int>(std::max(7L, arg_long(argc, argv, "--runs", 11)));
  spdlog::set_level(spdlog::level::warn);

  TempDir dir;
  Config cfg;
  cfg.source = "<bench>";
  cfg.data_dir = dir.path;
  cfg.plugin_dir = std::string(VELLUM_BUILD_DIR) + "/plugins";
  PluginConfig pc;
  pc.name = "benchplug";
  cfg.plugins.push_back(pc);

  boost::asio::io_context io;  // not run: HTTP dispatch does not need it
  Runtime rt(cfg, io);
  try {
    rt.load_plugins();
    rt.open_storage();
    rt.start_plugins();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_abi_overhead: %s\n", e.what());
    return 1;
  }

  auto match = rt.router.match("GET", "/v1/bench/ping");
  if (!match.route || !match.route->handler) {
    std::fprintf(stderr, "bench_abi_overhead: benchplug did not register GET /v1/bench/ping\n");
    return 1;
  }
  const vellum_http_handler_fn handler = match.route->handler;
  void* const user = match.route->user->user;

  // Sanity: every path answers 200 "pong".
  {
    auto r = fresh_request();
    rt.handle_http(r);
    if (!r->responded || g_status_sink != 200 || g_size_sink != 4) {
      std::fprintf(stderr, "bench_abi_overhead: GET /v1/bench/ping did not answer 200 pong\n");
      return 1;
    }
  }

  // Reused request for the handler-level pair (no allocation of the request).
  auto reused = fresh_request();
  reused->route = match.route;  // as handle_http sets it (respond() consults it)
  vellum_status last = VELLUM_OK;

  std::vector<Case> cases;
  cases.push_back({"direct C++ handler (reused request)", [&] {
                     rearm(*reused);
                     direct_ping(*reused);
                   }});
  cases.push_back({"ABI handler pointer via SDK (reused request)", [&] {
                     rearm(*reused);
                     last = handler(user, reused.get());
                   }});
  cases.push_back({"direct C++ handler (fresh request)", [&] {
                     auto r = fresh_request();
                     direct_ping(*r);
                   }});
  cases.push_back({"Runtime::handle_http (fresh request)", [&] {
                     auto r = fresh_request();
                     rt.handle_http(r);
                   }});
  // For comparison: a host-native route (no ABI) through the same dispatch.
  cases.push_back({"Runtime::handle_http GET /healthz (host route)", [&] {
                     auto r = fresh_request();
                     r->http.path = "/healthz";
                     rt.handle_http(r);
                   }});
  // Attribution (each timed alone): where the extra time goes.
  cases.push_back(
      {"  part: Runtime::release_pending (ABI respond)", [&] { rt.release_pending(reused.get()); }});
  cases.push_back({"  part: Router::match (dispatch)", [&] {
                     auto m = rt.router.match("GET", "/v1/bench/ping");
                     g_size_sink = m.params.size();
                   }});
  cases.push_back({"  part: Metrics::observe_request (dispatch)",
                   [&] { rt.metrics.observe_request("GET", "/v1/bench/ping", 200, 1e-6); }});
  run_interleaved(cases, runs, calls);
  if (last != VELLUM_OK || !reused->responded || g_status_sink != 200) {
    std::fprintf(stderr, "bench_abi_overhead: a handler failed (status %d, http %u)\n", last, g_status_sink);
    return 1;
  }
  Stats direct = stats(cases[0].ns), abi = stats(cases[1].ns), host_direct = stats(cases[2].ns),
        host = stats(cases[3].ns);

  // Router::match scans the routes in registration order: say where ours is.
  auto routes = rt.router.routes();
  size_t ping_index = 0;
  while (ping_index < routes.size() && routes[ping_index] != match.route) ++ping_index;

  std::printf("ABI overhead: GET /v1/bench/ping in-process, %d runs x %ld calls, ns/call\n", runs, calls);
  std::printf("%-46s %9s %9s %9s\n", "path", "median", "min", "max");
  auto row = [](const char* name, const Stats& s) {
    std::printf("%-46s %9.1f %9.1f %9.1f\n", name, s.median, s.min, s.max);
  };
  for (auto& c : cases) row(c.name, stats(c.ns));
  std::printf("(%zu HTTP routes registered; GET /v1/bench/ping is matched as route #%zu)\n", routes.size(),
              ping_index + 1);
  std::printf("\n");
  std::printf("ABI trampoline overhead : %+.1f ns/call (%.2fx direct)\n", abi.median - direct.median,
              abi.median / direct.median);
  std::printf("full dispatch overhead  : %+.1f ns/call (%.2fx direct)\n", host.median - host_direct.median,
              host.median / host_direct.median);

  rt.stop_plugins();
  return 0;
}
