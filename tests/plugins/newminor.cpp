// Built against a "newer" SDK: needs a host minor this host does not have.
#include <vellum/sdk.hpp>

namespace {
class NewMinor : public vellum::Plugin {
 public:
  static constexpr const char* kName = "newminor";
  static constexpr const char* kVersion = "2.0.0";
  static constexpr uint32_t kMinMinor = VELLUM_ABI_MINOR + 1;
  NewMinor(vellum::Host& host, std::string_view) : Plugin(host) {}
};
}  // namespace
VELLUM_PLUGIN(NewMinor)
