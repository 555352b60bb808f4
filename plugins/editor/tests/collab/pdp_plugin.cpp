// collabpdp: a policy decision point for the realtime tests only. Owners are
// allowed; anyone else gets exactly the actions granted to them through
// POST /v1/test/collabpdp/grants, which then publishes sharing.changed as
// the sharing plugin would (docs/authorization.md).
#include <vellum/sdk.hpp>
#include <vellum/services/pdp_v1.h>

#include <nlohmann/json.hpp>

#include <map>
#include <mutex>
#include <set>
#include <string>

namespace {

using nlohmann::json;

class CollabPdp : public vellum::Plugin {
 public:
  static constexpr const char* kName = "collabpdp";
  static constexpr const char* kVersion = "0.1.0";
  static constexpr const char* kDescription = "Test-only PDP with grants set over HTTP";
  static constexpr const char* kProvides[] = {VELLUM_PDP_SERVICE, nullptr};

  CollabPdp(vellum::Host& host, std::string_view) : Plugin(host) {
    vtable_.struct_size = sizeof vtable_;
    vtable_.decide = [](void* inst, const vellum_principal_v1* who, vellum_str action, vellum_str resource,
                        vellum_str owner) -> vellum_status {
      try {
        return static_cast<CollabPdp*>(inst)->decide(who, vellum::to_sv(action), vellum::to_sv(resource),
                                                     vellum::to_sv(owner));
      } catch (...) {
        return VELLUM_ERR_INTERNAL;
      }
    };
    host.provide(VELLUM_PDP_SERVICE, VELLUM_PDP_MAJOR, VELLUM_PDP_MINOR, &vtable_, this);
  }

  void start() override {
    host().route("POST", "/v1/test/collabpdp/grants", [this](vellum::Request& req) {
      json b = json::parse(req.body());
      const std::string user = b.at("user"), resource = b.at("resource");
      {
        std::lock_guard<std::mutex> l(mu_);
        auto& actions = grants_[user][resource];
        actions.clear();
        for (auto& a : b.at("actions")) actions.insert(a.get<std::string>());
      }
      host().publish("sharing.changed", json({{"resource", resource}, {"subjects", {user}}}).dump());
      req.respond(204, "", "");
    });
  }

 private:
  vellum_status decide(const vellum_principal_v1* who, std::string_view action, std::string_view resource,
                       std::string_view owner) {
    if (!who->authenticated) return VELLUM_ERR_PERMISSION_DENIED;
    const std::string user(vellum::to_sv(who->user_id));
    if (!owner.empty() && owner == user) return VELLUM_OK;
    std::lock_guard<std::mutex> l(mu_);
    auto u = grants_.find(user);
    if (u == grants_.end()) return VELLUM_ERR_PERMISSION_DENIED;
    auto r = u->second.find(std::string(resource));
    if (r != u->second.end() && r->second.count(std::string(action))) return VELLUM_OK;
    return VELLUM_ERR_PERMISSION_DENIED;
  }

  vellum_pdp_v1 vtable_{};
  std::mutex mu_;
  std::map<std::string, std::map<std::string, std::set<std::string>>> grants_;
};

}  // namespace

VELLUM_PLUGIN(CollabPdp)
