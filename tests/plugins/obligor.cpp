// A policy decision point for the host's tests of authorize_ex (ABI 1.3):
// it answers from the action alone, so a test knows what to expect.
//   read     -> permit, obligations [watermark visible, log high]
//   write    -> deny, reason "writes are closed"
//   comment  -> permit through decide_ex with malformed JSON
//   anything else -> deny
// The e-mail of the principal is echoed in the reason, so a test sees it
// reach the PDP.
#include <vellum/sdk.hpp>
#include <vellum/services/pdp_v1.h>

#include <cstring>
#include <string>

namespace {

class Obligor : public vellum::Plugin {
 public:
  static constexpr const char* kName = "obligor";
  static constexpr const char* kVersion = "1.0.0";
  static constexpr const char* kDescription = "A fixed PDP with obligations, for tests";
  static constexpr const char* kProvides[] = {VELLUM_PDP_SERVICE, nullptr};
  static constexpr uint32_t kMinMinor = 3;

  Obligor(vellum::Host& host, std::string_view) : Plugin(host) {
    vtable_.struct_size = sizeof vtable_;
    vtable_.decide = [](void* inst, const vellum_principal_v1* who, vellum_str action, vellum_str resource,
                        vellum_str owner) -> vellum_status {
      return static_cast<Obligor*>(inst)->answer(who, action, resource, owner, nullptr);
    };
    vtable_.decide_ex = [](void* inst, const vellum_principal_v1* who, vellum_str action, vellum_str resource,
                           vellum_str owner, vellum_buffer* out) -> vellum_status {
      return static_cast<Obligor*>(inst)->answer(who, action, resource, owner, out);
    };
    host.provide(VELLUM_PDP_SERVICE, VELLUM_PDP_MAJOR, VELLUM_PDP_MINOR, &vtable_, this);
  }

 private:
  vellum_status answer(const vellum_principal_v1* who, vellum_str action, vellum_str, vellum_str,
                       vellum_buffer* out) {
    std::string a(action.data, action.size);
    std::string email = who->struct_size >= offsetof(vellum_principal_v1, email) + sizeof who->email
                            ? std::string(who->email.data, who->email.size)
                            : std::string();
    std::string json;
    vellum_status s = VELLUM_ERR_PERMISSION_DENIED;
    if (a == "read") {
      s = VELLUM_OK;
      json = R"({"decision":"permit","reason":"read is open to )" + email +
             R"(","obligations":[{"type":"watermark","level":"visible"},{"type":"log","level":"high"}]})";
    } else if (a == "comment") {
      s = VELLUM_OK;
      json = R"({"decision":"permit","obligations":"not an array"})";
    } else {
      std::string why = a == "write" ? "writes are closed" : "unknown action";
      host().api()->set_error(host().self(), vellum::to_c(why));
      json = R"({"decision":"deny","reason":")" + why + R"(","obligations":[]})";
    }
    if (out) {
      auto* p = static_cast<uint8_t*>(host().api()->alloc(json.size()));
      if (!p) return VELLUM_ERR_INTERNAL;
      std::memcpy(p, json.data(), json.size());
      *out = vellum_buffer{p, json.size()};
    }
    return s;
  }

  vellum_pdp_v1 vtable_{};
};

}  // namespace

VELLUM_PLUGIN(Obligor)
