// The plugin ABI through real vellumd processes: negotiation, failures,
// pins, struct_size growth, services and dependency order.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>
#include <vellum/abi.h>

#include "harness.hpp"

using namespace vt;
using nlohmann::json;

namespace {
const char* kTestkit = "[plugins.testkit]\n";

RunResult vellumd_cmd(const std::string& cmd, const std::string& config) {
  TempDir d;
  write_file(d / "vellum.toml", config + "\n[plugins]\ndir = \"" + plugin_dir() + "\"\n");
  return run({vellumd_path(), cmd, "--config", d / "vellum.toml"});
}
}  // namespace

TEST_CASE("a plugin built for the current minor loads and serves", "[abi]") {
  Vellumd v({kTestkit});
  HttpClient c(v);
  auto r = c.get("/v1/test/echo?msg=hi%20there");
  CHECK(r.status == 200);
  CHECK(r.body == "hi there");
  CHECK(r.header("X-Echo") == "1");
  auto p = json::parse(c.get("/v1/plugins").body);
  REQUIRE(p["plugins"].size() == 1);
  CHECK(p["plugins"][0]["name"] == "testkit");
  CHECK(p["plugins"][0]["state"] == "started");
  CHECK(p["plugins"][0]["services"][0] == "greeter@1.2");
  CHECK(c.get("/v1/test/params/one/x/t%2Fwo").body == R"({"a":"one","b":"t/wo"})");
  CHECK(v.stop() == 0);
}

TEST_CASE("a plugin asking for a newer minor is refused with a clear message", "[abi]") {
  auto r = vellumd_cmd("plugins", "[plugins.newminor]\n");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("plugin 'newminor' needs ABI 1." + std::to_string(VELLUM_ABI_MINOR + 1) +
                                    ", this host provides 1." + std::to_string(VELLUM_ABI_MINOR)));
  CHECK_THAT(r.err, Catch::Contains("upgrade vellumd"));
}

TEST_CASE("a plugin for another ABI major is refused", "[abi]") {
  auto r = vellumd_cmd("check-config", "[plugins.wrongmajor]\n");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err,
             Catch::Contains("plugin 'wrongmajor' was built for ABI major 2, this host speaks major 1"));
}

TEST_CASE("a fixture built against the frozen v1.0 header loads -- struct_size grows both ways", "[abi]") {
  // frozen's descriptor is larger than the host's (newer header), and it
  // registers a route with a truncated vellum_route_v1 (older header).
  Vellumd v({"[plugins.frozen]\n"});
  HttpClient c(v);
  auto r = c.get("/v1/frozen");
  CHECK(r.status == 200);
  CHECK(r.body == "frozen v1.0 plugin");
  // The fields beyond the truncated struct_size read as absent: no summary.
  auto doc = json::parse(c.get("/v1/openapi.json").body);
  CHECK_FALSE(doc["paths"]["/v1/frozen"]["get"].contains("summary"));
  CHECK(v.stop() == 0);
}

TEST_CASE("a throwing handler answers 500 while the host keeps serving", "[abi]") {
  Vellumd v({kTestkit});
  HttpClient c(v);
  for (int i = 0; i < 3; ++i) {
    auto r = c.get("/v1/test/throw");
    CHECK(r.status == 500);
    CHECK(r.header("Content-Type") == "application/problem+json");
    // The exception text stays in the server log, not in the response.
    CHECK(r.body.find("secret internals") == std::string::npos);
    CHECK(c.get("/healthz").status == 200);
  }
  auto nf = c.get("/v1/test/notfound");
  CHECK(nf.status == 404);
  CHECK(json::parse(nf.body)["detail"] == "no such widget");
  CHECK(c.get("/v1/test/noresponse").status == 500);
  auto m = c.get("/metrics").body;
  CHECK_THAT(m, Catch::Contains("vellum_plugin_call_errors_total{plugin=\"testkit\"} 5"));
  CHECK(v.stop() == 0);
  CHECK_THAT(v.log(), Catch::Contains("boom: secret internals"));
}

TEST_CASE("a required plugin failing create stops the host with its message", "[abi]") {
  Vellumd v({std::string(kTestkit) + "[plugins.badcreate]\n", false});
  CHECK(v.wait_exit() == 1);
  CHECK_THAT(
      v.log(),
      Catch::Contains(
          "required plugin 'badcreate' create failed (invalid argument): missing required key 'endpoint'"));
}

TEST_CASE("an optional plugin failing create is disabled and the host serves without it", "[abi]") {
  Vellumd v(Vellumd::Options(std::string(kTestkit) + "[plugins.badcreate]\nrequired = false\n"));
  HttpClient c(v);
  CHECK(c.get("/v1/test/echo?msg=x").status == 200);
  auto ready = json::parse(c.get("/readyz").body);
  CHECK(ready["disabled"][0]["plugin"] == "badcreate");
  CHECK_THAT(ready["disabled"][0]["error"].get<std::string>(),
             Catch::Contains("missing required key 'endpoint'"));
  auto p = json::parse(c.get("/v1/plugins").body);
  bool found = false;
  for (auto& pl : p["plugins"])
    if (pl["name"] == "badcreate") {
      found = true;
      CHECK(pl["state"] == "disabled");
    }
  CHECK(found);
  CHECK(v.stop() == 0);
}

TEST_CASE("the SHA-256 pin is enforced", "[abi]") {
  auto plugins = vellumd_cmd("plugins", kTestkit);
  REQUIRE(plugins.exit_code == 0);
  std::string sha = json::parse(plugins.out)["plugins"][0]["sha256"];
  REQUIRE(sha.size() == 64);
  SECTION("matching pin loads") {
    auto r = vellumd_cmd("check-config", std::string(kTestkit) + "sha256 = \"" + sha + "\"\n");
    CHECK(r.exit_code == 0);
  }
  SECTION("mismatching pin is refused") {
    std::string bad = sha;
    bad[0] = bad[0] == '0' ? '1' : '0';
    auto r = vellumd_cmd("check-config", std::string(kTestkit) + "sha256 = \"" + bad + "\"\n");
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Catch::Contains("but the config pins " + bad));
    CHECK_THAT(r.err, Catch::Contains("refusing to load it"));
  }
}

TEST_CASE("services: dependency order, acquisition, version checks", "[abi]") {
  SECTION("consumer starts after its provider whatever the config order") {
    Vellumd v({"[plugins.consumer]\n[plugins.testkit]\n"});
    HttpClient c(v);
    CHECK(c.get("/v1/consumer/greet?who=ada").body == "hello ada (1)");
    CHECK(c.get("/v1/consumer/greet?who=bob").body == "hello bob (2)");
    auto refused = c.get("/v1/consumer/greet?who=nobody");
    CHECK(refused.status == 422);
    CHECK(refused.body == "there is nobody to greet");
    auto p = json::parse(c.get("/v1/plugins").body);
    CHECK(p["plugins"][0]["name"] == "testkit");
    CHECK(p["plugins"][1]["name"] == "consumer");
    CHECK(v.stop() == 0);
    // Reverse order on the way down: the consumer stops before its provider.
    auto log = v.log();
    CHECK(log.find("plugin 'consumer' stopped") < log.find("plugin 'testkit' stopped"));
  }
  SECTION("a missing dependency is refused naming the plugin and the fix") {
    auto r = vellumd_cmd("check-config", "[plugins.consumer]\n");
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err,
               Catch::Contains("plugin 'consumer' requires 'greeter', which no enabled plugin provides"));
  }
  SECTION("a newer service minor than provided fails that plugin's start") {
    Vellumd v(Vellumd::Options(std::string(kTestkit) + "[plugins.greedy]\nrequired = false\n"));
    HttpClient c(v);
    auto ready = json::parse(c.get("/readyz").body);
    CHECK_THAT(ready["disabled"][0]["error"].get<std::string>(),
               Catch::Contains("service 'greeter' is version 1.2 (plugin 'testkit'); greedy needs 1.9"));
    CHECK(v.stop() == 0);
  }
}

TEST_CASE("check-config validates plugin tables and unknown keys", "[abi][config]") {
  CHECK(vellumd_cmd("check-config", kTestkit).exit_code == 0);
  auto bad = vellumd_cmd("check-config", std::string(kTestkit) + "invalid = 1\n");
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::Contains("[plugins.testkit]: key 'invalid' is not allowed here"));
  auto unknown = vellumd_cmd("check-config", "[server]\nlisten = \"127.0.0.1:1\"\nthreds = 4\n");
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Catch::Contains("server.threds: unknown key"));
}

TEST_CASE("events, storage, timers, metrics and audit through the ABI", "[abi]") {
  Vellumd v({kTestkit});
  HttpClient c(v);
  CHECK(c.request("POST", "/v1/test/publish/testkit.doc.created", R"({"id":1})").status == 200);
  CHECK(c.request("POST", "/v1/test/publish/other.topic", R"({})").status == 200);
  auto ev = json::parse(c.get("/v1/test/events").body);
  CHECK(ev["count"] == 1);
  CHECK(ev["last"] == "testkit.doc.created");
  CHECK(c.request("POST", "/v1/test/publish/bad..topic", "{}").status == 400);
  CHECK(c.request("POST", "/v1/test/publish/testkit.x", "not json").status == 400);

  CHECK(json::parse(c.request("PUT", "/v1/test/kv/k1", "v1").body)["version"] == 1);
  CHECK(json::parse(c.request("PUT", "/v1/test/kv/k1?expect=1", "v2").body)["version"] == 2);
  CHECK(c.request("PUT", "/v1/test/kv/k1?expect=1", "v3").status == 409);  // stale CAS
  auto got = c.get("/v1/test/kv/k1");
  CHECK(got.body == "v2");
  CHECK(got.header("X-Version") == "2");
  CHECK(c.request("POST", "/v1/test/txn-fail").status == 409);
  CHECK(c.get("/v1/test/kv/txn-key").status == 404);  // rolled back

  CHECK(c.request("POST", "/v1/test/echo", "abc").status == 200);
  CHECK_THAT(c.get("/metrics").body, Catch::Contains("vellum_plugin_testkit_echo_total 1"));
  CHECK(c.request("POST", "/v1/test/audit").status == 200);
  // Timers fire repeatedly.
  int ticks = 0;
  for (int i = 0; i < 200 && ticks < 3; ++i) {
    ticks = json::parse(c.get("/v1/test/ticks").body)["ticks"];
    if (ticks < 3) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(ticks >= 3);
  CHECK(v.stop() == 0);
}

TEST_CASE("async handlers complete from another thread -- stuck ones time out with 504", "[abi]") {
  Vellumd v({"[server]\nhandler_timeout_ms = 300\n[plugins.testkit]\n"});
  HttpClient c(v);
  auto r = c.get("/v1/test/async");
  CHECK(r.status == 200);
  CHECK(r.body == "async done");
  auto t = c.get("/v1/test/never");
  CHECK(t.status == 504);
  CHECK(t.header("Content-Type") == "application/problem+json");
  CHECK(c.get("/healthz").status == 200);
  CHECK(v.stop() == 0);
}

TEST_CASE("non-public routes refuse anonymous callers -- principal carries IP and request id", "[abi]") {
  Vellumd v({kTestkit});
  HttpClient c(v);
  auto r = c.get("/v1/test/private");
  CHECK(r.status == 401);
  CHECK(r.body.find("secret") == std::string::npos);
  auto w = json::parse(c.get("/v1/test/whoami").body);
  CHECK(w["authenticated"] == false);
  CHECK(w["ip"] == "127.0.0.1");
  CHECK(w["request_id"].get<std::string>().size() == 16);
  CHECK(v.stop() == 0);
}
