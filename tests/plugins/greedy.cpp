// Asks for a greeter minor newer than testkit provides: acquisition must fail.
#include <vellum/sdk.hpp>

#include "greeter.h"

namespace {
class Greedy : public vellum::Plugin {
 public:
  static constexpr const char* kName = "greedy";
  static constexpr const char* kVersion = "0.1.0";
  static constexpr const char* kRequires[] = {"greeter", nullptr};
  Greedy(vellum::Host& host, std::string_view) : Plugin(host) {}
  void start() override { (void)host().acquire<greeter_v1>("greeter", 1, 9); }
};
}  // namespace
VELLUM_PLUGIN(Greedy)
