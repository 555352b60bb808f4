// The audit log: append/query, tamper detection (by raw SQL on the file),
// checkpoint signatures checked with the stock openssl CLI, RFC 6962 roots,
// HMAC'd sensitive values, export formats, concurrency, restart.
#include <SQLiteCpp/SQLiteCpp.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "audit.hpp"

using namespace vellum::host;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vellum-audit-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

AuditOptions options(const TempDir& d, uint64_t every = 1000) {
  AuditOptions o;
  o.db_path = d / "audit.db";
  o.hmac_key_path = d / "audit-hmac.key";
  o.signing_key_path = d / "audit-signing.pem";
  o.checkpoint_every = every;
  return o;
}

AuditEvent event(int i) {
  AuditEvent e;
  e.actor = "u" + std::to_string(i % 3);
  e.action = i % 2 ? "doc.write" : "doc.read";
  e.resource = "doc/" + std::to_string(i % 5);
  e.outcome = i % 7 == 6 ? "denied" : "success";
  e.request_id = "req-" + std::to_string(i);
  e.client_ip = "192.0.2." + std::to_string(i % 250);
  e.user_agent = "test-agent/1.0";
  e.details = {{"i", i}};
  e.time_ms = 1700000000000 + i * 1000;
  return e;
}

// n records (time_ms fixed by index, so two logs with the same n have the
// same records), checkpoints every `every`.
void fill(const TempDir& d, int n, uint64_t every) {
  AuditLog log(options(d, every));
  for (int i = 1; i <= n; ++i) REQUIRE(log.append(event(i)) == static_cast<uint64_t>(i));
}

void sql(const std::string& db, const std::string& stmt) {
  SQLite::Database d(db, SQLite::OPEN_READWRITE);
  d.exec(stmt);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& s) {
  std::ofstream out(path, std::ios::binary);
  out << s;
}

std::string sha256(const std::string& s) {
  unsigned char out[32];
  unsigned int n = 0;
  REQUIRE(EVP_Digest(s.data(), s.size(), out, &n, EVP_sha256(), nullptr) == 1);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string hex(const std::string& s) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += k[c >> 4];
    out += k[c & 15];
  }
  return out;
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

// RFC 6962 section 2.1, written from the definition: MTH({}) = SHA-256(),
// MTH({d}) = SHA-256(0x00 || d), MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) ||
// MTH(D[k:n])) with k the largest power of two < n.
std::string reference_mth(const std::vector<std::string>& d, size_t lo, size_t hi) {
  size_t n = hi - lo;
  if (n == 0) return sha256("");
  if (n == 1) return sha256(std::string(1, '\0') + d[lo]);
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return sha256(std::string(1, '\1') + reference_mth(d, lo, lo + k) + reference_mth(d, lo + k, hi));
}

struct Cmd {
  int code;
  std::string out;
};
Cmd shell(const std::string& cmd, const TempDir& d) {
  std::string out = d / "cmd.out";
  int rc = std::system((cmd + " >" + out + " 2>&1").c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out)};
}

// Runs the CLI with stdout captured.
Cmd cli(const std::vector<std::string>& args, const std::string& data_dir) {
  std::ostringstream out;
  auto* old = std::cout.rdbuf(out.rdbuf());
  int code = run_audit_command(args, data_dir);
  std::cout.rdbuf(old);
  return {code, out.str()};
}

}  // namespace

TEST_CASE("append assigns consecutive seqs and the log verifies") {
  TempDir d;
  {
    AuditLog log(options(d, 4));
    for (int i = 1; i <= 10; ++i) CHECK(log.append(event(i)) == static_cast<uint64_t>(i));
    CHECK(log.last_seq() == 10);
  }
  auto r = verify_audit(d / "audit.db", "");
  CHECK(r.ok);
  CHECK(r.first_error.empty());
  CHECK(r.records == 10);
  CHECK(r.checkpoints == 2);  // at 4 and 8
  CHECK(r.unsigned_tail == 2);
  CHECK_FALSE(r.external_key);
  CHECK(fs::status(d / "audit-hmac.key").permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(fs::status(d / "audit-signing.pem").permissions() ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(fs::file_size(d / "audit-hmac.key") == 32);
}

TEST_CASE("query filters by actor action resource and time with cursor pagination") {
  TempDir d;
  AuditLog log(options(d));
  for (int i = 1; i <= 30; ++i) log.append(event(i));

  AuditLog::Query q;
  q.actor = "u1";
  q.limit = 4;
  std::vector<uint64_t> seqs;
  int pages = 0;
  for (;;) {
    auto page = log.query(q);
    ++pages;
    for (auto& rec : page["records"]) {
      CHECK(rec["actor"] == "u1");
      CHECK(rec["hash"].get<std::string>().size() == 64);
      CHECK(rec["prev"].get<std::string>().size() == 64);
      seqs.push_back(rec["seq"].get<uint64_t>());
    }
    if (page["next_cursor"].is_null()) break;
    CHECK(page["records"].size() == 4);
    q.after_seq = page["next_cursor"].get<uint64_t>();
    CHECK(q.after_seq == seqs.back());
  }
  CHECK(pages == 3);  // 10 records, 4 per page
  REQUIRE(seqs.size() == 10);
  for (size_t i = 0; i < seqs.size(); ++i) CHECK(seqs[i] == 1 + 3 * i);  // i % 3 == 1

  AuditLog::Query a;
  a.action = "doc.write";
  a.resource = "doc/3";
  auto r = log.query(a)["records"];
  REQUIRE(r.size() == 3);  // odd i with i % 5 == 3: 3, 13, 23
  CHECK(r[0]["seq"] == 3);
  CHECK(r[2]["seq"] == 23);
  CHECK(r[0]["details"]["i"] == 3);
  CHECK(r[0]["outcome"] == "success");
  CHECK(r[0]["request_id"] == "req-3");
  CHECK(r[0]["user_agent"] == "test-agent/1.0");

  AuditLog::Query t;
  t.since_ms = 1700000000000 + 5 * 1000;
  t.until_ms = 1700000000000 + 9 * 1000;
  auto tr = log.query(t)["records"];
  REQUIRE(tr.size() == 5);
  CHECK(tr[0]["seq"] == 5);
  CHECK(tr[4]["seq"] == 9);

  AuditLog::Query none;
  none.actor = "nobody";
  CHECK(log.query(none)["records"].empty());
  CHECK(log.query(none)["next_cursor"].is_null());
}

TEST_CASE("append refuses bad events and writes nothing of them") {
  TempDir d;
  AuditLog log(options(d));
  AuditEvent bad = event(1);
  bad.outcome = "maybe";
  CHECK_THROWS_AS(log.append(bad), std::runtime_error);
  AuditEvent no_action = event(1);
  no_action.action = "";
  CHECK_THROWS_AS(log.append(no_action), std::runtime_error);
  AuditEvent bad_ptr = event(1);
  bad_ptr.details = {{"token", "SECRET"}};
  bad_ptr.sensitive = {"token"};  // not a JSON pointer
  CHECK_THROWS_AS(log.append(bad_ptr), std::runtime_error);
  AuditEvent not_object = event(1);
  not_object.details = nlohmann::json::array({1, 2});
  CHECK_THROWS_AS(log.append(not_object), std::runtime_error);
  CHECK(log.append(event(1)) == 1);
}

TEST_CASE("tamper: a modified body is detected") {
  TempDir d;
  fill(d, 10, 4);
  sql(d / "audit.db",
      "UPDATE records SET body = replace(body, '\"actor\":\"u0\"', '\"actor\":\"mallory\"') WHERE seq = 3");
  auto r = verify_audit(d / "audit.db", "");
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_seq == 3);
  CHECK_THAT(r.first_error, Catch::Contains("body modified"));
}

TEST_CASE("tamper: a modified column is detected") {
  TempDir d;
  fill(d, 10, 4);
  sql(d / "audit.db", "UPDATE records SET actor = 'mallory' WHERE seq = 5");
  auto r = verify_audit(d / "audit.db", "");
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_seq == 5);
  CHECK_THAT(r.first_error, Catch::Contains("column actor does not match"));

  TempDir d2;
  fill(d2, 10, 4);
  sql(d2 / "audit.db", "UPDATE records SET time_ms = 0 WHERE seq = 7");
  auto r2 = verify_audit(d2 / "audit.db", "");
  CHECK_FALSE(r2.ok);
  CHECK(r2.first_bad_seq == 7);
  CHECK_THAT(r2.first_error, Catch::Contains("column time_ms"));
}

TEST_CASE("tamper: a deleted record is detected") {
  TempDir d;
  fill(d, 10, 4);
  sql(d / "audit.db", "DELETE FROM records WHERE seq = 6");
  auto r = verify_audit(d / "audit.db", "");
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_seq == 6);
  CHECK_THAT(r.first_error, Catch::Contains("record 6 is missing"));

  TempDir d1;  // the very first one
  fill(d1, 3, 1000);
  sql(d1 / "audit.db", "DELETE FROM records WHERE seq = 1");
  auto r1 = verify_audit(d1 / "audit.db", "");
  CHECK_FALSE(r1.ok);
  CHECK(r1.first_bad_seq == 1);
}

TEST_CASE("tamper: reordered records are detected") {
  TempDir d;
  fill(d, 10, 4);
  sql(d / "audit.db",
      "UPDATE records SET seq = -1 WHERE seq = 3; UPDATE records SET seq = 3 WHERE seq = 4;"
      " UPDATE records SET seq = 4 WHERE seq = -1;");
  auto r = verify_audit(d / "audit.db", "");
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_seq == 3);
  CHECK_THAT(r.first_error, Catch::Contains("body is that of record 4"));

  // Swapping whole rows but renumbering the bodies breaks the chain instead.
  TempDir d2;
  fill(d2, 10, 4);
  sql(d2 / "audit.db",
      "UPDATE records SET seq = -1 WHERE seq = 3; UPDATE records SET seq = 3 WHERE seq = 4;"
      " UPDATE records SET seq = 4 WHERE seq = -1;"
      " UPDATE records SET body = replace(body, '\"seq\":4,', '\"seq\":3,') WHERE seq = 3;"
      " UPDATE records SET body = replace(body, '\"seq\":3,', '\"seq\":4,') WHERE seq = 4;");
  auto r2 = verify_audit(d2 / "audit.db", "");
  CHECK_FALSE(r2.ok);
  CHECK(r2.first_bad_seq == 3);
  CHECK_THAT(r2.first_error, Catch::Contains("chain is broken"));
}

TEST_CASE("tamper: truncating the tail after a checkpoint is detected") {
  TempDir d;
  fill(d, 10, 5);  // checkpoints over 1..5 and 1..10
  sql(d / "audit.db", "DELETE FROM records WHERE seq > 7");
  auto r = verify_audit(d / "audit.db", "");
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_seq == 8);
  CHECK_THAT(r.first_error, Catch::Contains("deleted from the tail"));

  // Without a checkpoint past them, tail records are protected by nothing
  // but the chain: removing them is not detectable (stated in the report).
  TempDir d2;
  fill(d2, 7, 5);
  CHECK(verify_audit(d2 / "audit.db", "").unsigned_tail == 2);
}

TEST_CASE("tamper: a forged checkpoint is detected") {
  const std::string fake_root(64, 'a');
  SECTION("root column") {
    TempDir d;
    fill(d, 10, 5);
    sql(d / "audit.db", "UPDATE checkpoints SET root_hex = '" + fake_root + "' WHERE id = 2");
    auto r = verify_audit(d / "audit.db", "");
    CHECK_FALSE(r.ok);
    CHECK(r.first_bad_seq == 6);
    CHECK_THAT(r.first_error, Catch::Contains("checkpoint 2") && Catch::Contains("root_hex"));
  }
  SECTION("signed root") {
    TempDir d;
    fill(d, 10, 5);
    SQLite::Database db(d / "audit.db", SQLite::OPEN_READWRITE);
    std::string text = db.execAndGet("SELECT signed_data FROM checkpoints WHERE id = 1").getString();
    auto at = text.find("root=");
    REQUIRE(at != std::string::npos);
    text.replace(at + 5, 64, fake_root);
    SQLite::Statement st(db, "UPDATE checkpoints SET signed_data = ?1, root_hex = ?2 WHERE id = 1");
    st.bind(1, text);
    st.bind(2, fake_root);
    st.exec();
    auto r = verify_audit(d / "audit.db", "");
    CHECK_FALSE(r.ok);
    CHECK(r.first_bad_seq == 1);
    CHECK_THAT(r.first_error, Catch::Contains("signature does not verify"));
  }
}

TEST_CASE("tamper: a rewritten chain contradicts the signed Merkle root") {
  TempDir d;
  fill(d, 10, 5);
  {
    // Change record 7 and recompute every hash after it: the chain is
    // consistent again, only the signatures can tell.
    SQLite::Database db(d / "audit.db", SQLite::OPEN_READWRITE);
    db.exec(
        "UPDATE records SET body = replace(body, '\"outcome\":\"success\"', '\"outcome\":\"failure\"'),"
        " outcome = 'failure' WHERE seq = 7");
    std::string prev(32, '\0');
    SQLite::Statement rows(db, "SELECT seq, body FROM records ORDER BY seq");
    std::vector<std::pair<int64_t, std::string>> all;
    while (rows.executeStep()) all.emplace_back(rows.getColumn(0).getInt64(), rows.getColumn(1).getString());
    rows.reset();
    for (auto& [seq, body] : all) {
      std::string h = sha256(prev + body);
      SQLite::Statement up(db, "UPDATE records SET prev = ?1, hash = ?2 WHERE seq = ?3");
      up.bind(1, hex(prev));
      up.bind(2, hex(h));
      up.bind(3, seq);
      up.exec();
      prev = h;
    }
  }
  auto r = verify_audit(d / "audit.db", "");
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_seq == 6);  // the first record of checkpoint 2's range
  CHECK_THAT(r.first_error, Catch::Contains("Merkle root"));
}

TEST_CASE("a replaced stored key passes the weak check and fails the strong one") {
  TempDir a, b;
  fill(a, 10, 5);
  fill(b, 10, 5);  // same records, another signing key
  std::string a_pub;
  {
    AuditLog log(options(a));
    a_pub = log.public_key_pem();
  }
  sql(a / "audit.db",
      "ATTACH DATABASE '" + (b / "audit.db") +
          "' AS b; DELETE FROM checkpoints; INSERT INTO checkpoints SELECT * FROM b.checkpoints;");
  auto weak = verify_audit(a / "audit.db", "");
  CHECK(weak.ok);  // all an attacker needs is write access to audit.db
  CHECK_FALSE(weak.external_key);
  bool warned = false;
  for (auto& w : weak.warnings) warned = warned || w.find("--public-key") != std::string::npos;
  CHECK(warned);
  auto strong = verify_audit(a / "audit.db", a_pub);
  CHECK_FALSE(strong.ok);
  CHECK(strong.external_key);
  CHECK(strong.first_bad_seq == 1);
  CHECK_THAT(strong.first_error, Catch::Contains("given public key"));

  TempDir c;
  fill(c, 10, 5);
  std::string c_pub;
  {
    AuditLog log(options(c));
    c_pub = log.public_key_pem();
  }
  auto good = verify_audit(c / "audit.db", c_pub);
  CHECK(good.ok);
  CHECK(good.external_key);
  CHECK_FALSE(verify_audit(c / "audit.db", "not a key").ok);
}

TEST_CASE("checkpoint signatures verify with the openssl CLI") {
  TempDir d;
  AuditLog log(options(d));
  for (int i = 1; i <= 3; ++i) log.append(event(i));
  log.checkpoint();
  SQLite::Database db(d / "audit.db", SQLite::OPEN_READONLY);
  SQLite::Statement st(db, "SELECT signed_data, signature_b64, public_key_pem, root_hex FROM checkpoints");
  REQUIRE(st.executeStep());
  std::string data = st.getColumn(0).getString();
  CHECK(st.getColumn(2).getString() == log.public_key_pem());
  CHECK_THAT(data, Catch::StartsWith("vellum-audit-checkpoint v1\n"));
  CHECK_THAT(data, Catch::Contains("last_seq=3\n") && Catch::Contains("tree_size=3\n") &&
                       Catch::Contains("root=" + st.getColumn(3).getString() + "\n"));
  spit(d / "pub.pem", log.public_key_pem());
  spit(d / "data", data);
  spit(d / "sig.b64", st.getColumn(1).getString() + "\n");
  REQUIRE(shell("openssl base64 -d -A -in " + (d / "sig.b64") + " -out " + (d / "sig"), d).code == 0);
  REQUIRE(fs::file_size(d / "sig") == 64);
  const std::string verify = "openssl pkeyutl -verify -pubin -inkey " + (d / "pub.pem") + " -rawin -in " +
                             (d / "data") + " -sigfile " + (d / "sig");
  auto ok = shell(verify, d);
  CHECK(ok.code == 0);
  CHECK_THAT(ok.out, Catch::Contains("Signature Verified Successfully"));

  data[data.find("last_seq=3") + 9] = '4';
  spit(d / "data", data);
  auto bad = shell(verify, d);
  CHECK(bad.code != 0);
  CHECK_THAT(bad.out, !Catch::Contains("Signature Verified Successfully"));
}

TEST_CASE("Merkle roots follow RFC 6962") {
  using audit_detail::merkle_root_hex;
  // Derived with printf + openssl dgst -sha256 (leaf = 0x00||d, node = 0x01||l||r).
  CHECK(merkle_root_hex({"a"}) == "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c");
  CHECK(merkle_root_hex({"a", "b"}) == "b137985ff484fb600db93107c77b0365c80d78f5b429ded0fd97361d077999eb");
  CHECK(merkle_root_hex({"a", "b", "c"}) ==
        "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1");
  CHECK(merkle_root_hex({}) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  for (size_t n : {1, 2, 3, 5, 8, 7, 13, 16, 33}) {
    std::vector<std::string> leaves;
    for (size_t i = 0; i < n; ++i) leaves.push_back("leaf-" + std::to_string(i) + std::string(i % 4, '\0'));
    INFO("n = " << n);
    CHECK(merkle_root_hex(leaves) == hex(reference_mth(leaves, 0, n)));
  }
}

TEST_CASE("checkpoint roots are RFC 6962 roots over all record bodies") {
  TempDir d;
  {
    AuditLog log(options(d, 5));
    for (int i = 1; i <= 8; ++i) log.append(event(i));
    log.checkpoint();
  }
  SQLite::Database db(d / "audit.db", SQLite::OPEN_READONLY);
  std::vector<std::string> bodies;
  SQLite::Statement rows(db, "SELECT body FROM records ORDER BY seq");
  while (rows.executeStep()) bodies.push_back(rows.getColumn(0).getString());
  SQLite::Statement cps(db, "SELECT last_seq, root_hex FROM checkpoints ORDER BY id");
  std::vector<uint64_t> sizes;
  while (cps.executeStep()) {
    auto n = static_cast<size_t>(cps.getColumn(0).getInt64());
    sizes.push_back(n);
    CHECK(cps.getColumn(1).getString() == hex(reference_mth(bodies, 0, n)));
  }
  CHECK(sizes == std::vector<uint64_t>{5, 8});
  // The chain: hash_n = SHA-256(hash_{n-1} || body_n), hash_0 = 32 zero bytes.
  SQLite::Statement h(db, "SELECT body, prev, hash FROM records ORDER BY seq");
  std::string prev(32, '\0');
  while (h.executeStep()) {
    CHECK(h.getColumn(1).getString() == hex(prev));
    prev = sha256(prev + h.getColumn(0).getString());
    CHECK(h.getColumn(2).getString() == hex(prev));
  }
}

TEST_CASE("sensitive values are stored only as HMACs") {
  TempDir d;
  auto o = options(d);
  o.hmac_emails = true;
  o.hmac_ips = true;
  AuditLog log(o);
  AuditEvent e = event(1);
  e.actor_email = "alice@example.com";
  e.client_ip = "203.0.113.77";
  e.details = {
      {"token", "SECRET-XYZ"}, {"nested", {{"totp", "SECRET-TOTP"}, {"n", 123456}}}, {"keep", "visible"}};
  e.sensitive = {"/token", "/nested/totp", "/nested/n", "/absent"};
  log.append(e);
  for (int i = 2; i <= 5; ++i) log.append(event(i));

  auto scan = [&] {
    std::string bytes = slurp(d / "audit.db") + slurp(d / "audit.db-wal");
    CHECK(bytes.find("visible") != std::string::npos);  // the scan does see record bytes
    for (const char* s : {"SECRET-XYZ", "SECRET-TOTP", "alice@example.com", "203.0.113.77"}) {
      INFO(s);
      CHECK(bytes.find(s) == std::string::npos);
    }
  };
  scan();

  auto rec = log.query({})["records"][0];
  CHECK(rec["details"]["token"] == log.hmac("SECRET-XYZ"));
  CHECK(rec["details"]["nested"]["totp"] == log.hmac("SECRET-TOTP"));
  CHECK(rec["details"]["nested"]["n"] == log.hmac("123456"));
  CHECK(rec["details"]["keep"] == "visible");
  CHECK_FALSE(rec["details"].contains("absent"));
  CHECK(rec["actor_email"] == log.hmac("alice@example.com"));
  CHECK(rec["client_ip"] == log.hmac("203.0.113.77"));

  CHECK(log.hmac("x") == log.hmac("x"));
  CHECK(log.hmac("x") != log.hmac("y"));
  CHECK(std::regex_match(log.hmac("x"), std::regex("hmac-sha256:[0-9a-f]{64}")));
  // HMAC-SHA256 under the key file, as the openssl CLI computes it.
  auto key = hex(slurp(d / "audit-hmac.key"));
  auto cli_mac = shell("printf SECRET-XYZ | openssl dgst -sha256 -mac HMAC -macopt hexkey:" + key + " -r", d);
  CHECK(cli_mac.out.substr(0, 64) == log.hmac("SECRET-XYZ").substr(12));
  {
    TempDir other;  // another deployment, another key
    AuditLog log2(options(other));
    CHECK(log2.hmac("x") != log.hmac("x"));
  }
  log.checkpoint();
  scan();
  CHECK(verify_audit(d / "audit.db", "").ok);
}

TEST_CASE("export jsonl round-trips and syslog lines are RFC 5424") {
  TempDir d;
  {
    AuditLog log(options(d, 10));
    for (int i = 1; i <= 25; ++i) log.append(event(i));
  }
  std::ostringstream jl;
  export_audit(d / "audit.db", 0, "jsonl", jl);
  std::istringstream in(jl.str());
  std::string line, prev(64, '0');
  uint64_t n = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::ordered_json::parse(line);
    CHECK(j["seq"] == ++n);
    CHECK(j["prev"] == prev);
    // Dropping prev and hash gives the hashed body back.
    std::string body = line.substr(0, line.rfind(",\"prev\":")) + "}";
    CHECK(j["hash"] == hex(sha256(unhex(prev) + body)));
    prev = j["hash"].get<std::string>();
  }
  CHECK(n == 25);

  std::ostringstream since;
  export_audit(d / "audit.db", 1700000000000 + 20 * 1000, "jsonl", since);
  auto s = since.str();
  CHECK(std::count(s.begin(), s.end(), '\n') == 6);  // 20..25

  std::ostringstream sl;
  export_audit(d / "audit.db", 0, "syslog", sl);
  std::regex shape(
      R"re(<(\d{1,3})>1 \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z [!-~]{1,255} vellumd - [!-~]{1,32} )re"
      R"re(\[vellum@32473 seq="(\d+)" outcome="(success|failure|denied)" hash="[0-9a-f]{64}"\] \{.*\})re");
  std::istringstream sin(sl.str());
  n = 0;
  while (std::getline(sin, line)) {
    std::smatch m;
    INFO(line);
    REQUIRE(std::regex_match(line, m, shape));
    CHECK(std::stoul(m[2]) == ++n);
    int pri = std::stoi(m[1]);
    CHECK(pri / 8 == 13);  // log audit
    CHECK(pri % 8 == (m[3] == "success" ? 6 : m[3] == "denied" ? 5 : 4));
    CHECK_NOTHROW(nlohmann::json::parse(line.substr(line.find("] {") + 2)));
  }
  CHECK(n == 25);
  CHECK_THAT(sl.str(), Catch::Contains("2023-11-14T22:13:21.000Z"));  // 1700000001000 ms
  std::ostringstream junk;
  CHECK_THROWS(export_audit(d / "audit.db", 0, "xml", junk));
}

TEST_CASE("concurrent appends form one verifiable chain") {
  TempDir d;
  {
    AuditLog log(options(d, 100));
    std::vector<std::thread> threads;
    std::vector<std::vector<uint64_t>> got(4);
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 250; ++i) {
          AuditEvent e = event(i);
          e.actor = "thread-" + std::to_string(t);
          got[t].push_back(log.append(e));
        }
      });
    for (auto& th : threads) th.join();
    std::set<uint64_t> all;
    for (auto& v : got) {
      CHECK(std::is_sorted(v.begin(), v.end()));
      all.insert(v.begin(), v.end());
    }
    CHECK(all.size() == 1000);
    CHECK(*all.begin() == 1);
    CHECK(*all.rbegin() == 1000);
    AuditLog::Query q;
    q.actor = "thread-2";
    q.limit = 1000;
    CHECK(log.query(q)["records"].size() == 250);
  }
  auto r = verify_audit(d / "audit.db", "");
  CHECK(r.ok);
  CHECK(r.records == 1000);
  // Group commit can carry a batch past a multiple of 100: at most 10.
  CHECK(r.checkpoints >= 5);
  CHECK(r.checkpoints <= 10);
}

TEST_CASE("a reopened log continues the chain and the tree") {
  TempDir d;
  std::string pub;
  fill(d, 7, 5);  // checkpoint at 5, 6..7 pending
  {
    AuditLog log(options(d, 5));
    pub = log.public_key_pem();
    CHECK(log.last_seq() == 7);
    for (int i = 8; i <= 12; ++i)
      CHECK(log.append(event(i)) == static_cast<uint64_t>(i));  // checkpoint at 12
    log.append(event(13));
  }
  // Without the saved frontier the writer rebuilds it from the records.
  sql(d / "audit.db", "DELETE FROM meta");
  {
    AuditLog log(options(d, 5));
    log.append(event(14));
    log.checkpoint();
    log.checkpoint();  // nothing new: no-op
  }
  auto r = verify_audit(d / "audit.db", pub);
  CHECK(r.ok);
  CHECK(r.records == 14);
  CHECK(r.checkpoints == 3);
  CHECK(r.unsigned_tail == 0);
}

TEST_CASE("maybe_checkpoint waits for the interval and for pending records") {
  TempDir d;
  auto o = options(d);
  o.checkpoint_interval_ms = 60000;
  AuditLog log(o);
  auto now = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  log.maybe_checkpoint(now());  // nothing pending
  log.append(event(1));
  log.maybe_checkpoint(now());  // pending, never checkpointed: due
  log.append(event(2));
  log.maybe_checkpoint(now() + 1000);  // interval not over
  CHECK(verify_audit(d / "audit.db", "").checkpoints == 1);
  log.maybe_checkpoint(now() + 61000);
  log.maybe_checkpoint(now() + 130000);  // nothing pending
  CHECK(verify_audit(d / "audit.db", "").checkpoints == 2);
}

TEST_CASE("parse_audit_since takes unix ms and ISO 8601") {
  CHECK(parse_audit_since("1700000000000") == 1700000000000);
  CHECK(parse_audit_since("2024-01-02") == 1704153600000);
  CHECK(parse_audit_since("2024-01-02T03:04:05Z") == 1704164645000);
  CHECK(parse_audit_since("2024-01-02T03:04:05.123Z") == 1704164645123);
  CHECK(parse_audit_since("2024-01-02T03:04:05.123+01:00") == 1704164645123 - 3600000);
  CHECK(parse_audit_since("2024-01-02T03:04") == 1704164640000);
  CHECK_THROWS_AS(parse_audit_since("yesterday"), std::invalid_argument);
  CHECK_THROWS_AS(parse_audit_since("2024-02-30"), std::invalid_argument);
  CHECK_THROWS_AS(parse_audit_since("2024-01-02T25:00Z"), std::invalid_argument);
}

TEST_CASE("the audit command verifies exports and prints the key") {
  TempDir d;
  std::string pub;
  {
    AuditLog log(options(d, 3));
    for (int i = 1; i <= 4; ++i) log.append(event(i));
    pub = log.public_key_pem();
  }
  auto key = cli({"public-key"}, d.path());
  CHECK(key.code == 0);
  CHECK(key.out == pub);
  spit(d / "pub.pem", pub);

  auto ok = cli({"verify", "--public-key", d / "pub.pem"}, d.path());
  CHECK(ok.code == 0);
  CHECK_THAT(ok.out, Catch::Contains("OK, 4 record(s), 1 signed checkpoint(s)"));
  auto weak = cli({"audit", "verify"}, d.path());
  CHECK(weak.code == 0);
  CHECK_THAT(weak.out, Catch::Contains("--public-key"));

  auto ex = cli({"export", "--since", "2023-11-14T22:13:22Z", "--format", "syslog"}, d.path());
  CHECK(ex.code == 0);
  CHECK(std::count(ex.out.begin(), ex.out.end(), '\n') == 3);  // records 2..4
  CHECK(cli({"export", "--format", "csv"}, d.path()).code == 2);
  CHECK(cli({"export", "--since", "soon"}, d.path()).code == 2);
  CHECK(cli({"frobnicate"}, d.path()).code == 2);

  sql(d / "audit.db", "UPDATE records SET resource = 'x' WHERE seq = 2");
  auto bad = cli({"verify"}, d.path());
  CHECK(bad.code == 1);
  CHECK_THAT(bad.out, Catch::Contains("first bad record: seq 2"));

  TempDir empty;
  CHECK(cli({"verify"}, empty.path()).code == 1);
}

// Not run by ctest: `audit_tests "[.bench]"` prints durable append
// throughput and verification time.
TEST_CASE("bench append and verify", "[.bench]") {
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a) { return std::chrono::duration<double>(clock::now() - a).count(); };
  TempDir d;
  const int n = 100000;
  {
    AuditLog log(options(d, 1000));
    auto t0 = clock::now();
    for (int i = 0; i < 2000; ++i) log.append(event(i));
    std::cout << "sequential: " << 2000 / secs(t0) << " records/s\n";
    for (int threads : {4, 16}) {
      t0 = clock::now();
      std::vector<std::thread> ts;
      for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
          for (int i = 0; i < 8000 / threads; ++i) log.append(event(i));
        });
      for (auto& th : ts) th.join();
      std::cout << threads << " threads: " << 8000 / secs(t0) << " records/s\n";
    }
    std::vector<std::thread> ts;
    for (int t = 0; t < 32; ++t)
      ts.emplace_back([&] {
        while (log.last_seq() < static_cast<uint64_t>(n))
          for (int i = 0; i < 50; ++i) log.append(event(i));
      });
    for (auto& th : ts) th.join();
    log.checkpoint();
  }
  auto t0 = clock::now();
  auto r = verify_audit(d / "audit.db", "");
  double v = secs(t0);
  REQUIRE(r.ok);
  std::cout << "verify: " << r.records << " records, " << r.checkpoints << " checkpoints in " << v << " s ("
            << r.records / v << " records/s); db " << fs::file_size(d / "audit.db") / 1e6 << " MB\n";
  t0 = clock::now();
  { AuditLog reopen(options(d, 1000)); }
  std::cout << "reopen: " << secs(t0) << " s\n";
}

namespace {
// RFC 9162 section 2.1.3.2, the iterative verifier (deliberately not the
// recursive construction the log uses): true if `path` proves leaf_hash is
// leaf `index` of a tree of `size` leaves with root `root`.
bool verify_inclusion(uint64_t index, uint64_t size, std::string r, const std::vector<std::string>& path,
                      const std::string& root) {
  if (index >= size) return false;
  uint64_t fn = index, sn = size - 1;
  for (const auto& p : path) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      r = sha256(std::string(1, '\1') + p + r);
      if (!(fn & 1))
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
    } else {
      r = sha256(std::string(1, '\1') + r + p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

std::vector<std::string> unhex_all(const nlohmann::json& a) {
  std::vector<std::string> out;
  for (auto& h : a) out.push_back(unhex(h.get<std::string>()));
  return out;
}

std::string signed_field(const std::string& signed_data, const std::string& key) {
  auto at = signed_data.find("\n" + key + "=");
  REQUIRE(at != std::string::npos);
  at += key.size() + 2;
  return signed_data.substr(at, signed_data.find('\n', at) - at);
}

bool ed25519_verifies(const std::string& pem, const std::string& data, const std::string& sig_b64) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  REQUIRE(key);
  std::string sig(64 + 8, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(sig.data()),
                          reinterpret_cast<const unsigned char*>(sig_b64.data()),
                          static_cast<int>(sig_b64.size()));
  REQUIRE(n >= 64);
  sig.resize(64);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  REQUIRE(EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1);
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}
}  // namespace

TEST_CASE("inclusion proofs follow RFC 6962 and verify with the RFC 9162 algorithm") {
  for (size_t n = 1; n <= 33; ++n) {
    std::vector<std::string> leaves;
    for (size_t i = 0; i < n; ++i) leaves.push_back("record " + std::to_string(i));
    std::string root = reference_mth(leaves, 0, n);
    for (size_t i = 0; i < n; ++i) {
      INFO("n = " << n << ", i = " << i);
      auto path = unhex_all(audit_detail::inclusion_proof_hex(leaves, i));
      std::string leaf = sha256(std::string(1, '\0') + leaves[i]);
      CHECK(verify_inclusion(i, n, leaf, path, root));
      // The same path proves nothing about another leaf or index.
      CHECK_FALSE(verify_inclusion(i, n, sha256(std::string(1, '\0') + "forged"), path, root));
      if (n > 1) CHECK_FALSE(verify_inclusion((i + 1) % n, n, leaf, path, root));
    }
  }
}

TEST_CASE("an excerpt returns a resource subtree with proofs against a signed checkpoint") {
  TempDir d;
  AuditLog log(options(d, 1000));
  auto add = [&](const std::string& resource) {
    AuditEvent e = event(1);
    e.resource = resource;
    return log.append(e);
  };
  add("document/d1");
  add("document/d10");  // shares a prefix, not a parent
  add("document/d1/version/2");
  add("workspace/w");
  add("document/d1");
  for (int i = 0; i < 20; ++i) add("noise/" + std::to_string(i));

  auto x = log.excerpt("document/d1", 0, 100);
  const auto& cp = x["checkpoint"];
  REQUIRE(cp.is_object());
  CHECK(cp["tree_size"] == 25);  // the pending records were signed first
  std::string signed_data = cp["signed_data"];
  std::string root = unhex(signed_field(signed_data, "root"));
  CHECK(signed_field(signed_data, "tree_size") == "25");
  CHECK(ed25519_verifies(cp["public_key_pem"], signed_data, cp["signature_b64"]));
  CHECK(cp["public_key_pem"] == log.public_key_pem());
  REQUIRE(x["records"].size() == 3);
  std::vector<uint64_t> seqs;
  for (auto& r : x["records"]) {
    uint64_t seq = r["seq"];
    seqs.push_back(seq);
    std::string body = r["body"];
    CHECK(nlohmann::json::parse(body)["resource"].get<std::string>().rfind("document/d1", 0) == 0);
    std::string leaf = sha256(std::string(1, '\0') + body);
    CHECK(hex(leaf) == r["leaf_hash_hex"]);
    auto path = unhex_all(r["inclusion_proof"]);
    CHECK(verify_inclusion(seq - 1, 25, leaf, path, root));
    // A changed record no longer fits the signed root.
    std::string forged = body;
    forged[forged.find("success")] = 'S';
    CHECK_FALSE(verify_inclusion(seq - 1, 25, sha256(std::string(1, '\0') + forged), path, root));
  }
  CHECK(seqs == std::vector<uint64_t>{1, 3, 5});
  CHECK(x["more"] == false);

  // Paging: limit, more and next_after_seq.
  auto page = log.excerpt("document/d1", 0, 2);
  CHECK(page["records"].size() == 2);
  CHECK(page["more"] == true);
  auto rest = log.excerpt("document/d1", page["next_after_seq"], 2);
  REQUIRE(rest["records"].size() == 1);
  CHECK(rest["records"][0]["seq"] == 5);
  CHECK(rest["more"] == false);

  // No match is an empty list under the same checkpoint; bad arguments throw.
  CHECK(log.excerpt("document/none", 0, 10)["records"].empty());
  CHECK_THROWS_AS(log.excerpt("", 0, 10), std::invalid_argument);
  CHECK_THROWS_AS(log.excerpt("document/d1", 0, 1001), std::invalid_argument);
}

TEST_CASE("an empty log has no checkpoint to prove against") {
  TempDir d;
  AuditLog log(options(d, 1000));
  auto x = log.excerpt("document/d1", 0, 10);
  CHECK(x["checkpoint"].is_null());
  CHECK(x["records"].empty());
}
