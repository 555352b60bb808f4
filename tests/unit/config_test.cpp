#include <catch2/catch.hpp>
#include <cstdlib>

#include "config.hpp"
#include "harness.hpp"

using namespace vellum::host;

TEST_CASE("the embedded default config parses and is safe", "[config][unit]") {
  setenv("VELLUM_ROOT_KEY", "dGVzdC1vbmx5LXJvb3Qta2V5LTMyLWJ5dGVzLWxvbiE=", 1);
  Config c = embedded_default_config();
  unsetenv("VELLUM_ROOT_KEY");
  REQUIRE(c.plugins.size() == 4);  // every first-party plugin that exists
  CHECK(c.plugins[0].name == "crypto");
  CHECK(c.plugins[1].name == "editor");
  CHECK(c.plugins[2].name == "sharing");
  CHECK(c.plugins[3].name == "signing");
  CHECK(c.plugins[2].required);  // without the PDP only owners and administrators get in: fail loudly
  CHECK(c.plugins[0].settings["root_key"] == "dGVzdC1vbmx5LXJvb3Qta2V5LTMyLWJ5dGVzLWxvbiE=");
  CHECK(c.server.tls);
  CHECK(c.server.listen == "127.0.0.1:8443");
  CHECK(c.storage.backend == "sqlite");
  CHECK(c.data_dir == "./data");
}

TEST_CASE("unknown keys and bad values are errors naming the key path", "[config][unit]") {
  auto err = [](const char* toml) {
    try {
      parse_config(toml, "t.toml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(err("[server]\nlistn = \"x\"") == "t.toml: server.listn: unknown key");
  CHECK(err("[sever]\n") == "t.toml: sever: unknown key");
  CHECK(err("[server]\nthreads = \"4\"") == "t.toml: server.threads: expected an integer");
  CHECK(err("[server]\nthreads = 1000") == "t.toml: server.threads: must be between 0 and 256");
  CHECK(err("[log]\nlevel = \"loud\"") ==
        "t.toml: log.level: must be one of: trace, debug, info, warn, error");
  CHECK(err("[plugins.Bad]\n") == "t.toml: plugins.Bad: plugin names are [a-z][a-z0-9_-]*");
  CHECK(err("[plugins.x]\nsha256 = \"abc\"") == "t.toml: plugins.x.sha256: must be 64 hex digits");
  CHECK(err("[server]\ncert_file = \"a.pem\"") ==
        "t.toml: server.cert_file: cert_file and key_file must be set together");
  CHECK_THAT(err("[server\n"), Catch::StartsWith("t.toml:1:"));
}

TEST_CASE("plugin settings become JSON -- secrets come from env or files", "[config][unit]") {
  vt::TempDir d;
  vt::write_file(d / "secret", "s3cr3t-from-file\n");
  setenv("VELLUM_TEST_SECRET", "s3cr3t-from-env", 1);
  std::string toml =
      "[plugins.demo]\nrequired = false\nmode = \"fast\"\nsizes = [1, 2]\n"
      "api_key = { env = \"VELLUM_TEST_SECRET\" }\n"
      "[plugins.demo.nested]\ntoken = { file = \"" +
      (d / "secret") + "\" }\n";
  Config c = parse_config(toml, "t.toml");
  REQUIRE(c.plugins.size() == 1);
  auto& p = c.plugins[0];
  CHECK_FALSE(p.required);
  CHECK(p.settings["mode"] == "fast");
  CHECK(p.settings["sizes"] == nlohmann::json::array({1, 2}));
  CHECK(p.settings["api_key"] == "s3cr3t-from-env");
  CHECK(p.settings["nested"]["token"] == "s3cr3t-from-file");
  CHECK_FALSE(p.settings.contains("required"));
  unsetenv("VELLUM_TEST_SECRET");
  CHECK_THROWS_WITH(parse_config(toml, "t.toml"),
                    "t.toml: plugins.demo.api_key: environment variable 'VELLUM_TEST_SECRET' is not set");
}

TEST_CASE("listen addresses", "[config][unit]") {
  CHECK(parse_endpoint("127.0.0.1:80").port == 80);
  CHECK(parse_endpoint("[::1]:443").host == "::1");
  CHECK_THROWS_AS(parse_endpoint("localhost"), ConfigError);
  CHECK_THROWS_AS(parse_endpoint("h:99999"), ConfigError);
  CHECK(is_loopback_host("127.0.0.2"));
  CHECK(is_loopback_host("::1"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("10.0.0.1"));
}
