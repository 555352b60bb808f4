#include <catch2/catch.hpp>

#include "runtime.hpp"

using namespace vellum::host;

TEST_CASE("event topic patterns", "[events][unit]") {
  CHECK(EventBus::matches("editor.document.created", "editor.document.created"));
  CHECK(EventBus::matches("editor.*.created", "editor.document.created"));
  CHECK_FALSE(EventBus::matches("editor.*", "editor.document.created"));
  CHECK(EventBus::matches("editor.>", "editor.document.created"));
  CHECK(EventBus::matches("editor.>", "editor.x"));
  CHECK_FALSE(EventBus::matches("editor.>", "editor"));
  CHECK_FALSE(EventBus::matches("editor.document", "editor.document.created"));
  CHECK_FALSE(EventBus::matches("editor.document.created.x", "editor.document.created"));
  CHECK(EventBus::valid_pattern("a.*.>"));
  CHECK_FALSE(EventBus::valid_pattern("a.>.b"));
  CHECK_FALSE(EventBus::valid_topic("a..b"));
  CHECK_FALSE(EventBus::valid_topic("a.*"));
}

TEST_CASE("route patterns, parameters and precedence", "[router][unit]") {
  Router r;
  auto add = [&](const char* m, const char* p) {
    auto e = std::make_shared<RouteEntry>();
    e->method = m;
    e->pattern = PathPattern::parse(p);
    e->summary = p;
    r.add(e);
  };
  add("GET", "/v1/docs/{id}");
  add("GET", "/v1/docs/search");
  add("POST", "/v1/docs/{id}");
  auto m = r.match("GET", "/v1/docs/search");
  REQUIRE(m.route);
  CHECK(m.route->summary == "/v1/docs/search");
  m = r.match("GET", "/v1/docs/a%20b");
  REQUIRE(m.route);
  CHECK(m.params[0] == std::make_pair(std::string("id"), std::string("a b")));
  CHECK_FALSE(r.match("GET", "/v1/docs/").route);
  m = r.match("DELETE", "/v1/docs/x");
  CHECK_FALSE(m.route);
  CHECK(m.allowed == std::vector<std::string>{"GET", "POST"});
  CHECK_THROWS_WITH(add("GET", "/v1/docs/{other}"), Catch::Contains("already registered"));
  CHECK_THROWS(PathPattern::parse("v1/no-slash"));
  CHECK_THROWS(PathPattern::parse("/v1/x{y}"));
}
