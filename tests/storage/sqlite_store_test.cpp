// Tests of the SQLite key-value store against the contract in store.hpp.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "storage/store.hpp"

using namespace vellum::host;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, so ctest -j runs never share a database.
struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vellum-storage-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string db() const { return (path / "kv.db").string(); }
  fs::path path;
};

std::unique_ptr<Store> open_store(const TempDir& dir, int busy_timeout_ms = 5000) {
  SqliteOptions opts;
  opts.path = dir.db();
  opts.busy_timeout_ms = busy_timeout_ms;
  return open_sqlite_store(opts);
}

uint64_t put(Store& s, std::string_view ns, std::string_view key, std::string_view value,
             uint64_t expected = VELLUM_VERSION_ANY) {
  auto txn = s.begin();
  const uint64_t v = txn->put(ns, key, value, expected);
  txn->commit();
  return v;
}

void erase(Store& s, std::string_view ns, std::string_view key, uint64_t expected) {
  auto txn = s.begin();
  txn->erase(ns, key, expected);
  txn->commit();
}

// Runs f and returns the StoreError status it threw (or 0 if it did not throw).
template <class F>
vellum_status status_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const StoreError& e) {
    if (message) *message = e.what();
    return e.status;
  }
  return VELLUM_OK;
}

std::vector<std::string> scan_keys(Store& s, std::string_view ns, const ScanOptions& opts,
                                   bool* more = nullptr) {
  std::vector<std::string> keys;
  const bool m = s.scan(ns, opts, [&](std::string_view k, std::string_view, uint64_t) {
    keys.emplace_back(k);
    return true;
  });
  if (more) *more = m;
  return keys;
}

std::string bytes(std::initializer_list<unsigned char> b) { return std::string(b.begin(), b.end()); }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Reversible and bound to its context: sealed = reverse(context + plaintext).
// The plaintext never appears verbatim on disk, and a sealed value moved to
// another key fails to unseal.
class ReversingBarrier : public Barrier {
 public:
  std::string name() const override { return "reversing"; }
  std::string seal(std::string_view context, std::string_view plaintext) override {
    std::string out = std::string(context) + std::string(plaintext);
    std::reverse(out.begin(), out.end());
    return out;
  }
  std::string unseal(std::string_view context, std::string_view sealed) override {
    std::string out(sealed.rbegin(), sealed.rend());
    if (out.compare(0, context.size(), context) != 0) throw std::runtime_error("context mismatch");
    return out.substr(context.size());
  }
};

}  // namespace

TEST_CASE("put, get and versions", "[storage]") {
  TempDir dir;
  auto s = open_store(dir);
  CHECK(s->backend_name() == "sqlite");
  CHECK_FALSE(s->has_barrier());
  CHECK_FALSE(s->get("ns", "a"));

  CHECK(put(*s, "ns", "a", "one") == 1);
  CHECK(put(*s, "ns", "a", "two") == 2);
  CHECK(put(*s, "ns", "a", "three", 2) == 3);
  auto r = s->get("ns", "a");
  REQUIRE(r);
  CHECK(r->value == "three");
  CHECK(r->version == 3);

  // Empty keys and values are blobs, not NULLs.
  CHECK(put(*s, "ns", "", "") == 1);
  r = s->get("ns", "");
  REQUIRE(r);
  CHECK(r->value.empty());

  SECTION("data survives reopening") {
    s.reset();
    s = open_store(dir);
    r = s->get("ns", "a");
    REQUIRE(r);
    CHECK(r->value == "three");
    CHECK(r->version == 3);
  }
}

TEST_CASE("compare-and-set conflicts", "[storage]") {
  TempDir dir;
  auto s = open_store(dir);
  const std::string key = "secret-key-bytes";
  CHECK(put(*s, "ns", key, "v1", VELLUM_VERSION_ABSENT) == 1);

  std::string msg;
  CHECK(status_of([&] { put(*s, "ns", key, "x", VELLUM_VERSION_ABSENT); }, &msg) == VELLUM_ERR_CONFLICT);
  CHECK(msg.find(key) == std::string::npos);
  CHECK(put(*s, "ns", key, "v2", 1) == 2);
  CHECK(status_of([&] { put(*s, "ns", key, "x", 1); }, &msg) == VELLUM_ERR_CONFLICT);  // stale
  CHECK(msg.find(key) == std::string::npos);
  CHECK(status_of([&] { put(*s, "ns", "missing", "x", 1); }) == VELLUM_ERR_CONFLICT);
  CHECK(put(*s, "ns", key, "v3", VELLUM_VERSION_ANY) == 3);
  CHECK(s->get("ns", key)->value == "v3");
  CHECK_FALSE(s->get("ns", "missing"));

  SECTION("erase") {
    CHECK(status_of([&] { erase(*s, "ns", "missing", VELLUM_VERSION_ANY); }) == VELLUM_ERR_NOT_FOUND);
    CHECK(status_of([&] { erase(*s, "ns", key, 2); }) == VELLUM_ERR_CONFLICT);
    CHECK(status_of([&] { erase(*s, "ns", key, VELLUM_VERSION_ABSENT); }) == VELLUM_ERR_CONFLICT);
    erase(*s, "ns", key, 3);
    CHECK_FALSE(s->get("ns", key));
    CHECK(status_of([&] { erase(*s, "ns", key, VELLUM_VERSION_ANY); }) == VELLUM_ERR_NOT_FOUND);
    CHECK(put(*s, "ns", key, "again", VELLUM_VERSION_ABSENT) == 1);  // versions restart after erase
    erase(*s, "ns", key, VELLUM_VERSION_ANY);
    CHECK_FALSE(s->get("ns", key));
  }

  SECTION("a conflict does not abort the transaction") {
    auto txn = s->begin();
    CHECK(status_of([&] { txn->put("ns", key, "x", 1); }) == VELLUM_ERR_CONFLICT);
    CHECK(txn->put("ns", "other", "y", VELLUM_VERSION_ABSENT) == 1);
    txn->commit();
    CHECK(s->get("ns", "other")->value == "y");
    CHECK(s->get("ns", key)->value == "v3");
  }
}

TEST_CASE("transactions commit or roll back as a whole", "[storage]") {
  TempDir dir;
  auto s = open_store(dir);
  put(*s, "ns", "base", "0");

  SECTION("an exception unwinds into a rollback") {
    CHECK_THROWS_AS(
        [&] {
          auto txn = s->begin();
          txn->put("ns", "a", "1", VELLUM_VERSION_ANY);
          txn->put("ns", "base", "changed", VELLUM_VERSION_ANY);
          txn->put("ns", "base", "conflict", 1);  // throws CONFLICT
          txn->commit();
        }(),
        StoreError);
    CHECK_FALSE(s->get("ns", "a"));
    CHECK(s->get("ns", "base")->value == "0");
  }

  SECTION("explicit rollback, then the transaction is finished") {
    auto txn = s->begin();
    txn->put("ns", "a", "1", VELLUM_VERSION_ANY);
    txn->erase("ns", "base", VELLUM_VERSION_ANY);
    txn->rollback();
    CHECK(status_of([&] { txn->put("ns", "a", "1", VELLUM_VERSION_ANY); }) == VELLUM_ERR_INTERNAL);
    CHECK(status_of([&] { txn->commit(); }) == VELLUM_ERR_INTERNAL);
    CHECK_FALSE(s->get("ns", "a"));
    CHECK(s->get("ns", "base"));
    put(*s, "ns", "after", "ok");  // the writer was released
  }

  SECTION("uncommitted writes are visible inside, invisible outside, visible after commit") {
    auto txn = s->begin();
    txn->put("ns", "a", "1", VELLUM_VERSION_ANY);
    txn->put("ns", "base", "changed", VELLUM_VERSION_ANY);
    CHECK(txn->get("ns", "a")->value == "1");
    std::vector<std::string> inside;
    txn->scan("ns", {}, [&](std::string_view k, std::string_view, uint64_t) {
      inside.emplace_back(k);
      return true;
    });
    CHECK(inside == std::vector<std::string>{"a", "base"});

    CHECK_FALSE(s->get("ns", "a"));
    CHECK(s->get("ns", "base")->value == "0");
    CHECK(scan_keys(*s, "ns", {}) == std::vector<std::string>{"base"});

    txn->commit();
    CHECK(s->get("ns", "a")->value == "1");
    CHECK(s->get("ns", "base")->value == "changed");
    CHECK(s->get("ns", "base")->version == 2);
  }

  SECTION("a transaction may finish on another thread") {
    auto txn = s->begin();
    txn->put("ns", "a", "1", VELLUM_VERSION_ANY);
    std::thread([&] { txn->commit(); }).join();
    put(*s, "ns", "b", "2");
    CHECK(s->get("ns", "a"));
  }
}

TEST_CASE("waiting for the writer is bounded by the busy timeout", "[storage]") {
  TempDir dir;
  auto s = open_store(dir, 50);
  auto held = s->begin();
  vellum_status st = VELLUM_OK;
  std::thread([&] { st = status_of([&] { s->begin(); }); }).join();
  CHECK(st == VELLUM_ERR_UNAVAILABLE);
  held->rollback();
  s->begin()->commit();
}

TEST_CASE("namespaces are isolated", "[storage]") {
  TempDir dir;
  auto s = open_store(dir);
  put(*s, "alpha", "k", "from alpha");
  put(*s, "beta", "k", "from beta");
  put(*s, "beta", "only-beta", "x");
  put(*s, std::string("alpha\0x", 7), "k", "embedded nul namespace");
  CHECK(s->get("alpha", "k")->value == "from alpha");
  CHECK(s->get("beta", "k")->value == "from beta");
  CHECK_FALSE(s->get("alpha", "only-beta"));
  CHECK(scan_keys(*s, "alpha", {}) == std::vector<std::string>{"k"});
  CHECK(scan_keys(*s, "beta", {}) == std::vector<std::string>{"k", "only-beta"});
  erase(*s, "alpha", "k", VELLUM_VERSION_ANY);
  CHECK(s->get("beta", "k"));
  CHECK(s->get(std::string("alpha\0x", 7), "k"));
}

TEST_CASE("scans", "[storage]") {
  TempDir dir;
  auto s = open_store(dir);
  // Sorted bytewise (unsigned): 0x00 first, 0xFF last.
  const std::vector<std::string> all = {bytes({0x00}),
                                        bytes({0x00, 0x00}),
                                        "a",
                                        "ab",
                                        std::string("ab\0z", 4),
                                        "abc",
                                        "ab\x7f",
                                        "ab\x80",
                                        "b",
                                        bytes({0xFE}),
                                        bytes({0xFF}),
                                        bytes({0xFF, 0x00}),
                                        bytes({0xFF, 0xFF}),
                                        bytes({0xFF, 0xFF, 0xFF})};
  REQUIRE(std::is_sorted(all.begin(), all.end()));  // std::string orders bytes as unsigned, like SQLite
  {
    auto txn = s->begin();
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      txn->put("ns", *it, "v:" + *it, VELLUM_VERSION_ABSENT);
    txn->put("other", "a", "elsewhere", VELLUM_VERSION_ABSENT);
    txn->commit();
  }
  const std::vector<std::string> reversed(all.rbegin(), all.rend());
  auto slice = [&](size_t from, size_t to) {
    return std::vector<std::string>(all.begin() + from, all.begin() + to);
  };

  bool more = true;
  CHECK(scan_keys(*s, "ns", {}, &more) == all);
  CHECK_FALSE(more);
  ScanOptions rev;
  rev.reverse = true;
  CHECK(scan_keys(*s, "ns", rev) == reversed);

  SECTION("values and versions arrive with their keys") {
    s->scan("ns", {}, [&](std::string_view k, std::string_view v, uint64_t version) {
      CHECK(v == "v:" + std::string(k));
      CHECK(version == 1);
      return true;
    });
  }

  SECTION("start inclusive, end exclusive") {
    ScanOptions o;
    o.start = "ab";
    o.end = "b";
    CHECK(scan_keys(*s, "ns", o) == slice(3, 8));
    o.reverse = true;
    auto r = slice(3, 8);
    std::reverse(r.begin(), r.end());
    CHECK(scan_keys(*s, "ns", o) == r);
    o.start = "b";
    o.end = "ab";
    CHECK(scan_keys(*s, "ns", o).empty());
  }

  SECTION("prefix, alone and intersected with start/end") {
    ScanOptions o;
    o.prefix = "ab";
    CHECK(scan_keys(*s, "ns", o) == slice(3, 8));
    o.start = "ab\x01";
    CHECK(scan_keys(*s, "ns", o) == slice(5, 8));
    o.end = "ab\x80";
    CHECK(scan_keys(*s, "ns", o) == slice(5, 7));
    o.start = "b";  // disjoint from the prefix
    o.end.clear();
    CHECK(scan_keys(*s, "ns", o).empty());
    o = {};
    o.prefix = "ab";
    o.end = "zzz";  // wider than the prefix range
    CHECK(scan_keys(*s, "ns", o) == slice(3, 8));

    ScanOptions ff;
    ff.prefix = bytes({0xFF});  // no successor: unbounded above
    CHECK(scan_keys(*s, "ns", ff) == slice(10, 14));
    ff.prefix = bytes({0xFF, 0xFF});
    CHECK(scan_keys(*s, "ns", ff) == slice(12, 14));
    ff.reverse = true;
    CHECK(scan_keys(*s, "ns", ff) == std::vector<std::string>{all[13], all[12]});
    ff = {};
    ff.prefix = bytes({0x00});
    CHECK(scan_keys(*s, "ns", ff) == slice(0, 2));
  }

  SECTION("pagination forward: limit, more flag, continue from last key + NUL") {
    ScanOptions o;
    o.limit = 4;
    std::vector<std::string> seen;
    for (int page = 0;; ++page) {
      REQUIRE(page < 10);
      auto keys = scan_keys(*s, "ns", o, &more);
      CHECK(keys.size() == (more ? 4u : all.size() % 4));
      seen.insert(seen.end(), keys.begin(), keys.end());
      if (!more) break;
      o.start = keys.back() + std::string(1, '\0');
    }
    CHECK(seen == all);
  }

  SECTION("pagination in reverse: continue with end = last key") {
    ScanOptions o;
    o.reverse = true;
    o.prefix = "a";
    o.limit = 2;
    std::vector<std::string> seen;
    do {
      auto keys = scan_keys(*s, "ns", o, &more);
      seen.insert(seen.end(), keys.begin(), keys.end());
      if (more) o.end = keys.back();
    } while (more);
    auto expect = slice(2, 8);
    std::reverse(expect.begin(), expect.end());
    CHECK(seen == expect);
  }

  SECTION("an exact limit reports no more rows") {
    ScanOptions o;
    o.limit = static_cast<uint32_t>(all.size());
    CHECK(scan_keys(*s, "ns", o, &more).size() == all.size());
    CHECK_FALSE(more);
    o.limit = 0;  // clamped to 1
    CHECK(scan_keys(*s, "ns", o, &more) == slice(0, 1));
    CHECK(more);
  }

  SECTION("the callback stops the scan") {
    int calls = 0;
    CHECK_FALSE(s->scan("ns", {}, [&](std::string_view, std::string_view, uint64_t) { return ++calls < 3; }));
    CHECK(calls == 3);
  }

  SECTION("a callback may read from the store") {
    int calls = 0;
    s->scan("ns", {}, [&](std::string_view k, std::string_view, uint64_t) {
      CHECK(s->get("ns", k));
      CHECK(scan_keys(*s, "other", {}).size() == 1);
      ++calls;
      return true;
    });
    CHECK(calls == static_cast<int>(all.size()));
  }
}

TEST_CASE("scan limit is clamped to 10000", "[storage]") {
  TempDir dir;
  auto s = open_store(dir);
  {
    auto txn = s->begin();
    char key[16];
    for (int i = 0; i < 10001; ++i) {
      std::snprintf(key, sizeof key, "%06d", i);
      txn->put("ns", key, "", VELLUM_VERSION_ABSENT);
    }
    txn->commit();
  }
  ScanOptions o;
  o.limit = 50000;
  bool more = false;
  CHECK(scan_keys(*s, "ns", o, &more).size() == 10000);
  CHECK(more);
}

TEST_CASE("the barrier seals values on disk", "[storage]") {
  TempDir dir;
  const std::string plaintext = "PLAINTEXT-SECRET-7f3a9c";
  auto on_disk = [&] { return read_file(dir.db()) + read_file(dir.db() + "-wal"); };

  SECTION("control: without a barrier the value is stored as is") {
    auto s = open_store(dir);
    put(*s, "ns", "k", plaintext);
    CHECK(on_disk().find(plaintext) != std::string::npos);
  }

  SECTION("with a barrier") {
    auto s = open_store(dir);
    s->set_barrier(std::make_shared<ReversingBarrier>());
    CHECK(s->has_barrier());
    put(*s, "ns", "k1", plaintext);
    put(*s, "ns", "k2", "other value");
    CHECK(s->get("ns", "k1")->value == plaintext);
    {
      auto txn = s->begin();
      CHECK(txn->get("ns", "k1")->value == plaintext);
      txn->rollback();
    }
    std::vector<std::string> values;
    s->scan("ns", {}, [&](std::string_view, std::string_view v, uint64_t) {
      values.emplace_back(v);
      return true;
    });
    CHECK(values == std::vector<std::string>{plaintext, "other value"});

    const std::string disk = on_disk();
    CHECK(disk.find(plaintext) == std::string::npos);
    CHECK(disk.find(std::string(plaintext.rbegin(), plaintext.rend())) != std::string::npos);

    // Move k1's sealed value onto k2 behind the store's back.
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &raw) == SQLITE_OK);
    sqlite3_busy_timeout(raw, 5000);
    char* err = nullptr;
    const int rc = sqlite3_exec(raw,
                                "UPDATE kv SET value = (SELECT value FROM kv WHERE ns = CAST('ns' AS BLOB) "
                                "AND key = CAST('k1' AS BLOB))"
                                " WHERE ns = CAST('ns' AS BLOB) AND key = CAST('k2' AS BLOB)",
                                nullptr, nullptr, &err);
    INFO((err ? err : ""));
    CHECK(rc == SQLITE_OK);
    CHECK(sqlite3_changes(raw) == 1);
    sqlite3_free(err);
    sqlite3_close(raw);

    std::string msg;
    CHECK(status_of([&] { s->get("ns", "k2"); }, &msg) == VELLUM_ERR_INTERNAL);
    CHECK(msg.find(plaintext) == std::string::npos);
    CHECK(status_of([&] { scan_keys(*s, "ns", {}); }) == VELLUM_ERR_INTERNAL);
    CHECK(s->get("ns", "k1")->value == plaintext);
  }
}

TEST_CASE("readers run concurrently with a committing writer", "[storage]") {
  TempDir dir;
  auto s = open_store(dir);
  constexpr int kKeys = 5;
  constexpr int kCommits = 60;
  auto write_all = [&](Transaction& txn, int round) {
    for (int k = 0; k < kKeys; ++k)
      txn.put("ns", "key" + std::to_string(k), std::to_string(round), VELLUM_VERSION_ANY);
  };
  {
    auto txn = s->begin();
    write_all(*txn, 0);
    txn->commit();
  }

  // Catch2 assertions are not thread-safe: threads count failures instead.
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      int last = 0;
      while (!done.load()) {
        try {
          // One scan is one snapshot: all keys carry the same round.
          std::vector<int> rounds;
          s->scan("ns", {}, [&](std::string_view, std::string_view v, uint64_t) {
            rounds.push_back(std::stoi(std::string(v)));
            return true;
          });
          if (rounds.size() != kKeys || std::count(rounds.begin(), rounds.end(), rounds[0]) != kKeys ||
              rounds[0] < last)
            ++failures;
          last = rounds.empty() ? last : rounds[0];
          auto rec = s->get("ns", "key0");
          if (!rec || std::stoi(rec->value) < last) ++failures;
          reads += 2;
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  // Two writers interleave commits; the gate serializes them.
  std::vector<std::thread> writers;
  std::atomic<int> round{0};
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&] {
      try {
        for (int i = 0; i < kCommits / 2; ++i) {
          auto txn = s->begin();
          write_all(*txn, ++round);
          txn->commit();
        }
      } catch (...) {
        ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  for (auto& t : readers) t.join();
  CHECK(failures == 0);
  CHECK(reads > 0);
  CHECK(s->get("ns", "key0")->version == kCommits + 1);
  CHECK(s->get("ns", "key0")->value == std::to_string(kCommits));
}

TEST_CASE("acknowledged commits survive kill -9", "[storage]") {
  TempDir dir;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(STORAGE_CRASH_WRITER, STORAGE_CRASH_WRITER, dir.db().c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* acks = fdopen(fds[0], "r");
  REQUIRE(acks);

  // Every complete "ack <i>" line is a commit the writer saw succeed, including
  // lines still in the pipe when the kill lands.
  int last_ack = -1;
  bool killed = false;
  char line[64];
  while (std::fgets(line, sizeof line, acks)) {
    int i = -1;
    if (std::sscanf(line, "ack %d", &i) == 1 && std::strchr(line, '\n')) {
      REQUIRE(i == last_ack + 1);
      last_ack = i;
    }
    if (last_ack >= 199 && !killed) {
      REQUIRE(kill(pid, SIGKILL) == 0);
      killed = true;
    }
  }
  std::fclose(acks);
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(killed);
  REQUIRE(WIFSIGNALED(wstatus));
  CHECK(WTERMSIG(wstatus) == SIGKILL);
  REQUIRE(last_ack >= 199);

  auto s = open_store(dir);
  int missing = 0;
  for (int i = 0; i <= last_ack; ++i) {
    auto rec = s->get("crash", "key-" + std::to_string(i));
    if (!rec || rec->value != "value-" + std::to_string(i)) ++missing;
  }
  CHECK(missing == 0);
  // At most the one commit in flight at the kill may exist beyond the last ack.
  ScanOptions all;
  all.limit = 10000;
  CHECK(scan_keys(*s, "crash", all).size() <= static_cast<size_t>(last_ack) + 2);
}

TEST_CASE("opening requires an existing parent directory", "[storage]") {
  TempDir dir;
  SqliteOptions opts;
  opts.path = (dir.path / "no-such-dir" / "kv.db").string();
  std::string msg;
  CHECK(status_of([&] { open_sqlite_store(opts); }, &msg) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(msg.find("no-such-dir") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "no-such-dir"));
}
