// Config keys, defaults and refusals.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "config.hpp"

using vellum::editor::parse_config;

TEST_CASE("editor config defaults and keys", "[editor][config]") {
  auto d = parse_config("{}");
  CHECK(d.max_document_bytes == 10u * 1024 * 1024);
  CHECK(d.max_depth == 64);
  auto c = parse_config(R"({"max_document_bytes": 4096, "max_depth": 8})");
  CHECK(c.max_document_bytes == 4096);
  CHECK(c.max_depth == 8);
  CHECK_THROWS_AS(parse_config(R"({"max_dept": 8})"), std::invalid_argument);
  CHECK_THROWS_AS(parse_config(R"({"max_depth": 0})"), std::invalid_argument);
  CHECK_THROWS_AS(parse_config(R"({"max_document_bytes": "big"})"), std::invalid_argument);
  CHECK_THROWS_AS(parse_config("[1]"), std::invalid_argument);
}
