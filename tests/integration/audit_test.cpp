// The audit log through real vellumd processes: records of host actions,
// the admin query API, offline verification, and fail-closed.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "harness.hpp"

using namespace vt;
using nlohmann::json;

namespace {
const std::string kPw = "correct horse staple 42";

struct Server {
  Site site;
  std::unique_ptr<Vellumd> v;
  explicit Server(const std::string& extra) : site(extra, "root@example.com", kPw) { v = site.start(); }
  Response login(HttpClient& c) {
    return c.request("POST", "/v1/auth/login",
                     json({{"email", "root@example.com"}, {"password", kPw}}).dump());
  }
  RunResult audit(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {vellumd_path(), "audit"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--data-dir", site.data_dir()});
    return run(argv);
  }
};
}  // namespace

TEST_CASE("host actions are audited, queryable and verifiable offline", "[audit]") {
  Server s("[audit]\nhmac_emails = true\n[plugins.testkit]\n");
  HttpClient c(*s.v);
  auto bad = c.request("POST", "/v1/auth/login",
                       json({{"email", "root@example.com"}, {"password", "nope nope nope"}}).dump());
  CHECK(bad.status == 401);
  auto tok = json::parse(s.login(c).body)["token"].get<std::string>();
  std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + tok}};
  CHECK(c.request("POST", "/v1/test/audit", "", auth).status == 200);  // a plugin's record

  auto q = json::parse(c.request("GET", "/v1/admin/audit?action=auth.login", "", auth).body);
  REQUIRE(q["records"].size() == 2);
  CHECK(q["records"][0]["outcome"] == "failure");
  CHECK(q["records"][1]["outcome"] == "success");
  auto plugin_rec =
      json::parse(c.request("GET", "/v1/admin/audit?action=testkit.poke", "", auth).body)["records"];
  REQUIRE(plugin_rec.size() == 1);
  CHECK(plugin_rec[0]["plugin"] == "testkit");
  CHECK(c.request("GET", "/v1/admin/audit?bogus=1", "", auth).status == 400);
  CHECK(s.v->stop() == 0);  // writes the final checkpoint

  // Nothing secret in the audit database or the log.
  std::string db = read_file(s.site.dir() / "data/audit.db") + read_file(s.site.dir() / "data/audit.db-wal");
  CHECK(db.find(kPw) == std::string::npos);
  CHECK(db.find(tok) == std::string::npos);
  CHECK(db.find("root@example.com") == std::string::npos);  // emails are HMAC'd (hmac_emails)
  CHECK(s.v->log().find(tok) == std::string::npos);

  auto key = s.audit({"public-key"});
  REQUIRE(key.exit_code == 0);
  write_file(s.site.dir() / "audit.pub", key.out);
  auto ok = s.audit({"verify", "--public-key", s.site.dir() / "audit.pub"});
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);

  // Rewrite one record behind the server's back: verify names it.
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open((s.site.dir() / "data/audit.db").c_str(), &h) == SQLITE_OK);
  REQUIRE(sqlite3_exec(h,
                       "UPDATE records SET body = replace(body, '\"failure\"', '\"success\"') WHERE body "
                       "LIKE '%\"failure\"%'",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);
  auto bad_verify = s.audit({"verify", "--public-key", s.site.dir() / "audit.pub"});
  CHECK(bad_verify.exit_code == 1);
  INFO(bad_verify.out + bad_verify.err);
  CHECK_THAT(bad_verify.out + bad_verify.err, Catch::Contains("record 2"));
}

TEST_CASE("fail-closed: a request fails with 503 when the audit log cannot be written", "[audit]") {
  for (bool closed : {true, false}) {
    Server s(std::string("[audit]\nfail_closed = ") + (closed ? "true" : "false") + "\n");
    HttpClient c(*s.v);
    REQUIRE(s.login(c).status == 200);
    // Another process holds the audit database's write lock.
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open((s.site.dir() / "data/audit.db").c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    auto r = s.login(c);
    sqlite3_exec(h, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(h);
    if (closed) {
      CHECK(r.status == 503);
      CHECK(r.body.find("token") == std::string::npos);  // no session handed out unaudited
    } else {
      CHECK(r.status == 200);
    }
    CHECK(s.login(c).status == 200);
    CHECK(s.v->stop() == 0);
  }
}
