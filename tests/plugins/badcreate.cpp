// Fails in create() with a message, like a plugin given a bad config.
#include <vellum/sdk.hpp>

namespace {
class BadCreate : public vellum::Plugin {
 public:
  static constexpr const char* kName = "badcreate";
  static constexpr const char* kVersion = "0.1.0";
  static constexpr const char* kProvides[] = {"badservice", nullptr};
  BadCreate(vellum::Host& host, std::string_view) : Plugin(host) {
    throw vellum::Error(VELLUM_ERR_INVALID_ARGUMENT, "missing required key 'endpoint'");
  }
};
}  // namespace
VELLUM_PLUGIN(BadCreate)
