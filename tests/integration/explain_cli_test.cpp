// `vellumd explain`: the command-line face of the sharing plugin's explain
// route, talking HTTPS to a running server with the token from VELLUM_TOKEN.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace vt;
using nlohmann::json;

namespace {
const std::string kAdminPw = "correct horse staple 42";
}

TEST_CASE("vellumd explain asks a running server and exits by the decision", "[explain][cli]") {
  Site site("[plugins.sharing]\n", "admin@example.com", kAdminPw);
  auto v = site.start();
  HttpClient c(*v);
  std::string tok = json::parse(login_response(c, "admin@example.com", kAdminPw).body)["token"];
  std::string uid = json::parse(c.request("GET", "/v1/me", "", bearer(tok)).body)["user"]["id"];
  auto explain = [&](const std::string& resource, const std::map<std::string, std::string>& env) {
    return run({vellumd_path(), "explain", "--url", v->url(), "--ca", v->ca_file(), "--action", "read",
                "--resource", resource},
               std::chrono::seconds(30), env);
  };
  auto denied = explain("document/d1", {{"VELLUM_TOKEN", tok}});
  INFO(denied.err);
  CHECK(denied.exit_code == 3);
  CHECK(json::parse(denied.out)["decision"] == "deny");

  auto g = c.request("POST", "/v1/sharing/grants",
                     json({{"subject", "user:" + uid}, {"resource", "folder/f1"}, {"role", "viewer"}}).dump(),
                     bearer(tok));
  REQUIRE(g.status == 201);
  auto permitted = explain("folder/f1/document/d1", {{"VELLUM_TOKEN", tok}});
  CHECK(permitted.exit_code == 0);
  auto j = json::parse(permitted.out);
  CHECK(j["decision"] == "permit");
  CHECK(j["grants"].size() == 1);

  // No token in the environment: refused before any connection; the token never goes on argv.
  auto no_token = explain("document/d1", {});
  CHECK(no_token.exit_code == 2);
  // Without the server's certificate as a trust anchor, TLS verification fails.
  auto untrusted =
      run({vellumd_path(), "explain", "--url", v->url(), "--action", "read", "--resource", "document/d1"},
          std::chrono::seconds(30), {{"VELLUM_TOKEN", tok}});
  CHECK(untrusted.exit_code == 1);
  CHECK(untrusted.err.find("certificate verify failed") != std::string::npos);
  CHECK(v->stop() == 0);
}
