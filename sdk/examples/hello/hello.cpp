// The smallest useful Vellum plugin: one public route, one config key, a
// counter kept in the plugin's storage namespace.
#include <vellum/sdk.hpp>

#include <string>

class Hello : public vellum::Plugin {
 public:
  static constexpr const char* kName = "hello";
  static constexpr const char* kVersion = "1.0.0";
  static constexpr const char* kDescription = "Says hello (SDK example)";

  // vellumd check-config calls this without creating the plugin.
  static void validate(std::string_view config_json) {
    if (config_json.find("\"greeting\"") == std::string_view::npos && config_json != "{}")
      throw vellum::Error(VELLUM_ERR_INVALID_ARGUMENT, "the only key is 'greeting'");
  }

  Hello(vellum::Host& host, std::string_view config_json) : Plugin(host) {
    // A real plugin would use a JSON parser; this keeps the example dependency-free.
    auto at = config_json.find("\"greeting\":\"");
    if (at != std::string_view::npos) {
      auto start = at + 12;
      greeting_ = std::string(config_json.substr(start, config_json.find('"', start) - start));
    }
  }

  void start() override {
    host().route(
        "GET", "/v1/hello",
        [this](vellum::Request& req) {
          // Compare-and-set loop: concurrent requests never lose a count.
          uint64_t count = 0;
          for (;;) {
            auto cur = host().get("count");
            count = cur ? std::stoull(cur->data) + 1 : 1;
            try {
              host().put("count", std::to_string(count), cur ? cur->version : VELLUM_VERSION_ABSENT);
              break;
            } catch (const vellum::Error& e) {
              if (e.status() != VELLUM_ERR_CONFLICT) throw;
            }
          }
          std::string who(req.query_param("name").value_or("world"));
          req.respond(200, "text/plain; charset=utf-8",
                      greeting_ + ", " + who + " (#" + std::to_string(count) + ")\n");
        },
        VELLUM_ROUTE_PUBLIC, "Say hello");
    host().info("hello plugin started");
  }

 private:
  std::string greeting_ = "Hello";
};

VELLUM_PLUGIN(Hello)
