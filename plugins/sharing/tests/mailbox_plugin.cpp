// Test-only plugin: keeps the sharing.mail messages (the mail hook) in memory
// and shows them to administrators, so integration tests can read what would
// have been mailed. Never built into a release.
#include <vellum/sdk.hpp>

#include <nlohmann/json.hpp>

#include <mutex>
#include <vector>

namespace {

class Mailbox : public vellum::Plugin {
 public:
  static constexpr const char* kName = "sharing_testmail";
  static constexpr const char* kVersion = "0.0.1";
  static constexpr const char* kDescription = "Test mailbox for sharing.mail";

  Mailbox(vellum::Host& host, std::string_view) : Plugin(host) {}

  void start() override {
    sub_ = host().subscribe("sharing.mail", [this](std::string_view, std::string_view payload) {
      std::lock_guard lk(mu_);
      messages_.push_back(nlohmann::json::parse(payload));
    });
    host().route("GET", "/v1/test/mailbox", [this](vellum::Request& req) {
      if (std::string_view(req.principal().scopes).find("admin") == std::string_view::npos) {
        req.problem(403, "Forbidden", "administrators only");
        return;
      }
      std::lock_guard lk(mu_);
      req.json(200, nlohmann::json({{"items", messages_}}).dump());
    });
  }
  void stop() override { sub_.reset(); }

 private:
  std::mutex mu_;
  std::vector<nlohmann::json> messages_;
  vellum::Handle sub_;
};

}  // namespace

VELLUM_PLUGIN(Mailbox)
