// benchplug: the smallest useful plugin, used by the benchmarks as "a plugin
// route". GET /v1/bench/ping answers 200 text/plain "pong" through the C++
// SDK, so an HTTP benchmark against it measures the host (transport, router,
// ABI trampoline) and not plugin work.
#include <vellum/sdk.hpp>

#include <string_view>

namespace {

class BenchPlug : public vellum::Plugin {
 public:
  static constexpr const char* kName = "benchplug";
  static constexpr const char* kVersion = "1.0.0";
  static constexpr const char* kDescription = "Benchmark fixture: GET /v1/bench/ping answers pong";

  BenchPlug(vellum::Host& host, std::string_view /*config*/) : Plugin(host) {}

  void start() override {
    host().route(
        "GET", "/v1/bench/ping", [](vellum::Request& req) { req.respond(200, "text/plain", "pong"); },
        VELLUM_ROUTE_PUBLIC, "Benchmark ping: answers 200 text/plain \"pong\"");
  }
};

}  // namespace

VELLUM_PLUGIN(BenchPlug)
