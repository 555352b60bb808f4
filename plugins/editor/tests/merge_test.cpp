// Three-way JSON merge: disjoint edits, same-field conflicts, delete vs
// edit, array insertions, role precedence.
#include <catch2/catch.hpp>

#include "merge.hpp"

using nlohmann::json;
using namespace vellum::editor;

TEST_CASE("disjoint object edits merge", "[editor][merge]") {
  json base = {{"a", 1}, {"b", 2}, {"c", {{"x", 1}}}};
  json local = {{"a", 10}, {"b", 2}, {"c", {{"x", 1}}}};
  json remote = {{"a", 1}, {"b", 20}, {"c", {{"x", 1}, {"y", 2}}}};
  auto m = merge3(base, local, remote);
  CHECK(m.conflicts.empty());
  CHECK(m.merged == json({{"a", 10}, {"b", 20}, {"c", {{"x", 1}, {"y", 2}}}}));
}

TEST_CASE("the same field changed differently is a conflict with both values", "[editor][merge]") {
  json base = {{"title", "A"}, {"n", 1}};
  auto m = merge3(base, {{"title", "L"}, {"n", 1}}, {{"title", "R"}, {"n", 2}});
  REQUIRE(m.conflicts.size() == 1);
  CHECK(m.conflicts[0].pointer == "/title");
  CHECK(*m.conflicts[0].local == "L");
  CHECK(*m.conflicts[0].remote == "R");
  auto j = conflict_json(m.conflicts[0]);
  CHECK(j["base"] == "A");
  // The same change on both sides is no conflict.
  CHECK(merge3(base, {{"title", "S"}, {"n", 1}}, {{"title", "S"}, {"n", 1}}).conflicts.empty());
}

TEST_CASE("delete against edit conflicts and delete against nothing merges", "[editor][merge]") {
  json base = {{"keep", 1}, {"gone", {{"v", 1}}}};
  auto m = merge3(base, {{"keep", 1}}, {{"keep", 1}, {"gone", {{"v", 2}}}});
  REQUIRE(m.conflicts.size() == 1);
  CHECK(m.conflicts[0].pointer == "/gone");
  CHECK_FALSE(m.conflicts[0].local.has_value());
  CHECK(conflict_json(m.conflicts[0])["local_absent"] == true);
  auto ok = merge3(base, {{"keep", 1}}, {{"keep", 2}, {"gone", {{"v", 1}}}});
  CHECK(ok.conflicts.empty());
  CHECK(ok.merged == json({{"keep", 2}}));
}

TEST_CASE("array insertions at different places merge", "[editor][merge]") {
  json base = json::array({"p1", "p2", "p3"});
  json local = json::array({"p0", "p1", "p2", "p3"});
  json remote = json::array({"p1", "p2", "p2b", "p3"});
  auto m = merge3(base, local, remote);
  CHECK(m.conflicts.empty());
  CHECK(m.merged == json::array({"p0", "p1", "p2", "p2b", "p3"}));
  // Insertions at the same place with different content overlap.
  auto clash = merge3(base, json::array({"p1", "L", "p2", "p3"}), json::array({"p1", "R", "p2", "p3"}));
  REQUIRE(clash.conflicts.size() == 1);
  CHECK(clash.conflicts[0].pointer == "/1");
}

TEST_CASE("edits inside the same paragraph merge field by field", "[editor][merge]") {
  auto para = [](const std::string& text, const std::string& align) {
    return json({{"type", "paragraph"},
                 {"attrs", {{"align", align}}},
                 {"content", {{{"type", "text"}, {"text", text}}}}});
  };
  json base = {{"type", "doc"}, {"content", {para("hello", "left"), para("world", "left")}}};
  json local = {{"type", "doc"}, {"content", {para("hello there", "left"), para("world", "left")}}};
  json remote = {{"type", "doc"}, {"content", {para("hello", "center"), para("world", "left")}}};
  auto m = merge3(base, local, remote);
  CHECK(m.conflicts.empty());
  CHECK(m.merged["content"][0] == para("hello there", "center"));
}

TEST_CASE("role precedence settles overlaps", "[editor][merge]") {
  json base = {{"x", 1}};
  auto l = merge3(base, {{"x", 2}}, {{"x", 3}}, Prefer::kLocal);
  CHECK(l.conflicts.empty());
  CHECK(l.resolved == 1);
  CHECK(l.merged["x"] == 2);
  auto r = merge3(base, {{"x", 2}}, {{"x", 3}}, Prefer::kRemote);
  CHECK(r.merged["x"] == 3);
}

TEST_CASE("a thousand disjoint edits merge", "[editor][merge]") {
  json base = json::array();
  for (int i = 0; i < 2000; ++i) base.push_back({{"id", i}, {"text", "line " + std::to_string(i)}});
  json local = base, remote = base;
  for (int i = 0; i < 2000; i += 2) local[static_cast<size_t>(i)]["text"] = "local " + std::to_string(i);
  for (int i = 1; i < 2000; i += 2) remote[static_cast<size_t>(i)]["text"] = "remote " + std::to_string(i);
  auto m = merge3(base, local, remote);
  CHECK(m.conflicts.empty());
  CHECK(m.merged[10]["text"] == "local 10");
  CHECK(m.merged[11]["text"] == "remote 11");
}
