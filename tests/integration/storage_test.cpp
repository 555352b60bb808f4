// Storage through the ABI and real processes: the barrier, durability
// across kill -9, and data surviving a restart.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

#include "harness.hpp"

using namespace vt;

namespace {
bool file_contains(const std::string& path, const std::string& needle) {
  return read_file(path).find(needle) != std::string::npos;
}
bool db_contains(const Vellumd& v, const std::string& needle) {
  return file_contains(v.data_dir() + "/vellum.db", needle) ||
         file_contains(v.data_dir() + "/vellum.db-wal", needle);
}
}  // namespace

TEST_CASE("values pass through the storage barrier a plugin installs", "[storage][abi]") {
  const std::string marker = "PLAINTEXT-MARKER-7f3a9c";
  SECTION("without a barrier: the plaintext is on disk and the host warns") {
    Vellumd v({"[plugins.testkit]\n"});
    CHECK_THAT(v.log(), Catch::Contains("data is stored in PLAINTEXT"));
    HttpClient c(v);
    REQUIRE(c.request("PUT", "/v1/test/kv/doc", marker).status == 200);
    CHECK(v.stop() == 0);
    CHECK(db_contains(v, marker));
  }
  SECTION("with a barrier: nothing readable on disk, values read back") {
    Vellumd v({"[plugins.sealer]\n[plugins.testkit]\n"});
    CHECK_THAT(v.log(), Catch::Contains(
                            "storage barrier 'test reversal (not encryption)' installed by plugin 'sealer'"));
    CHECK_FALSE(v.log().find("PLAINTEXT") != std::string::npos);
    HttpClient c(v);
    REQUIRE(c.request("PUT", "/v1/test/kv/doc", marker).status == 200);
    CHECK(c.get("/v1/test/kv/doc").body == marker);
    CHECK(c.request("POST", "/v1/test/audit").status == 200);  // audit records are sealed too
    CHECK(v.stop() == 0);
    CHECK_FALSE(db_contains(v, marker));
    CHECK_FALSE(db_contains(v, "testkit.poke"));
  }
}

TEST_CASE("every acknowledged write survives kill -9 of vellumd", "[storage][durability]") {
  Vellumd v({"[plugins.testkit]\n"});
  std::atomic<int> acked{0};
  std::atomic<bool> stop{false};
  // A stream of writes; each counts only once its 200 has arrived.
  std::thread writer([&] {
    HttpClient c(v);
    for (int i = 0; i < 100000 && !stop; ++i) {
      Response r;
      try {
        r = c.request("PUT", "/v1/test/kv/key-" + std::to_string(i), "value-" + std::to_string(i));
      } catch (const std::exception&) {
        return;  // the server died mid-request: this write was never acknowledged
      }
      if (r.status != 200) return;
      acked = i + 1;
    }
  });
  while (acked < 300) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  v.kill9();
  stop = true;
  writer.join();
  int n = acked;
  REQUIRE(n >= 300);

  // Restart on the same data directory.
  Vellumd::Options o("[plugins.testkit]\n");
  o.data_dir = v.data_dir();
  Vellumd again(o);
  HttpClient c(again);
  int missing = 0;
  for (int i = 0; i < n; ++i) {
    auto r = c.get("/v1/test/kv/key-" + std::to_string(i));
    if (r.status != 200 || r.body != "value-" + std::to_string(i)) ++missing;
  }
  CHECK(missing == 0);
  CHECK(again.stop() == 0);
}
