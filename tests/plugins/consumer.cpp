// Requires the "greeter" service from testkit: tests ordering and services.
#include <vellum/sdk.hpp>

#include "greeter.h"

namespace {
class Consumer : public vellum::Plugin {
 public:
  static constexpr const char* kName = "consumer";
  static constexpr const char* kVersion = "0.3.0";
  static constexpr const char* kRequires[] = {"greeter", nullptr};

  Consumer(vellum::Host& host, std::string_view) : Plugin(host) {}

  void start() override {
    // Same major, at least minor 1 (testkit provides 1.2).
    greeter_ = host().acquire<greeter_v1>("greeter", 1, 1);
    host().route(
        "GET", "/v1/consumer/greet",
        [this](vellum::Request& req) {
          char buf[128];
          if (greeter_->greet(greeter_.instance(),
                              std::string(req.query_param("who").value_or("you")).c_str(), buf,
                              sizeof buf) != 0) {
            // The provider's set_error reaches us through last_error.
            auto why = vellum::to_sv(host().api()->last_error(host().self()));
            req.respond(422, "text/plain", why);
            return;
          }
          req.respond(200, "text/plain", buf);
        },
        VELLUM_ROUTE_PUBLIC);
  }
  void stop() override { greeter_ = {}; }

 private:
  vellum::Service<greeter_v1> greeter_;
};
}  // namespace

VELLUM_PLUGIN(Consumer)
