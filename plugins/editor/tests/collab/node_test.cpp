// Real Yjs clients (yjs + y-websocket from npm, tests/node/collab/*.mjs)
// against a real vellumd with crypto, editor and a test PDP. Each test case
// boots its own site on a free port, so the cases run in parallel.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include "harness.hpp"

using namespace vt;
using nlohmann::json;

namespace {

const std::string kAdminEmail = "ada.collab@example.com";
const std::string kPw = "correct horse collab 42";

std::string b64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out.push_back(t[(v >> k) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {t[(v >> 18) & 63], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {t[(v >> 18) & 63], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

std::string root_key() {
  std::string k(32, '\0');
  REQUIRE(RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32) == 1);
  return b64(k);
}

std::map<std::string, std::string> auth(const std::string& t) {
  return {{"Authorization", "Bearer " + t}, {"Content-Type", "application/json"}};
}

struct Collab {
  std::string key = root_key();
  std::string collab_config;
  std::unique_ptr<Site> site;
  std::unique_ptr<Vellumd> v;
  std::unique_ptr<HttpClient> c;
  std::string admin, bob, bob_id, carol, carol_id, doc;

  explicit Collab(std::string collab = "") : collab_config(std::move(collab)) {
    std::string cfg = "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n[plugins.editor]\n" +
                      collab_config + "[plugins.collabpdp]\n";
    site = std::make_unique<Site>(cfg, kAdminEmail, kPw,
                                  std::map<std::string, std::string>{{"VELLUM_ROOT_KEY", key}}, "Ada");
    start();
    admin = login(*c, kAdminEmail, kPw);
    bob_id = user("bob@example.com", "Bob");
    carol_id = user("carol@example.com", "Carol");
    bob = login(*c, "bob@example.com", kPw);
    carol = login(*c, "carol@example.com", kPw);
    auto r = call("POST", "/v1/docs", admin, R"({"type":"text","title":"collab","content":""})");
    INFO(r.body);
    REQUIRE(r.status == 201);
    doc = json::parse(r.body)["id"];
    grant(bob_id, {"read", "write"});
    grant(carol_id, {"read"});
  }
  void start() {
    v = site->start();
    c = std::make_unique<HttpClient>(*v);
  }
  void restart() {
    c.reset();
    REQUIRE(v->stop() == 0);
    start();
    grant(bob_id, {"read", "write"});  // the test PDP keeps grants in memory only
    grant(carol_id, {"read"});
  }
  Response call(const std::string& m, const std::string& path, const std::string& tok,
                const std::string& body = "") {
    return c->request(m, path, body, auth(tok));
  }
  std::string user(const std::string& email, const std::string& name) {
    auto r = call("POST", "/v1/admin/users", admin,
                  json({{"email", email}, {"display_name", name}, {"password", kPw}}).dump());
    INFO(r.body);
    REQUIRE(r.status == 201);
    return json::parse(r.body)["id"];
  }
  void grant(const std::string& user, const std::vector<std::string>& actions) {
    auto r = call("POST", "/v1/test/collabpdp/grants", admin,
                  json({{"user", user}, {"resource", "document/" + doc}, {"actions", actions}}).dump());
    REQUIRE(r.status == 204);
  }
  // Runs tests/node/collab/<script> with the site's coordinates; returns stdout.
  std::string node(const std::string& script, std::map<std::string, std::string> extra = {}) {
    const std::string dir = VELLUM_COLLAB_NODE_DIR;
    INFO("run scripts/install-deps.sh (npm ci in tests/node) first");
    REQUIRE(std::filesystem::exists(dir + "/node_modules/yjs"));
    std::map<std::string, std::string> env = {{"VELLUM_URL", v->url()},
                                              {"NODE_EXTRA_CA_CERTS", v->ca_file()},
                                              {"DOC", doc},
                                              {"ADMIN", admin},
                                              {"BOB", bob},
                                              {"BOB_ID", bob_id},
                                              {"CAROL", carol},
                                              {"CAROL_ID", carol_id},
                                              {"YTOOL", VELLUM_COLLAB_YTOOL}};
    for (auto& [k, val] : extra) env[k] = val;
    auto r = run({VELLUM_NODE, dir + "/collab/" + script}, std::chrono::seconds(240), env);
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err << "\nvellumd log:\n" << v->log());
    REQUIRE(r.exit_code == 0);
    return r.out;
  }
};

}  // namespace

TEST_CASE("C++ merge diff and state vector agree with yjs") {
  // No server needed: yjs generates random concurrent histories.
  std::map<std::string, std::string> env = {{"YTOOL", VELLUM_COLLAB_YTOOL}};
  auto r = run({VELLUM_NODE, std::string(VELLUM_COLLAB_NODE_DIR) + "/collab/ytool.test.mjs"},
               std::chrono::seconds(240), env);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("yjs clients converge and a late client receives the full state") {
  Collab t;
  t.node("converge.mjs");
}

TEST_CASE("a viewer's edits are refused and never reach others") {
  Collab t;
  t.node("viewer.mjs");
}

TEST_CASE("a restart loses nothing and compaction keeps the state") {
  Collab t("collab = { compact_after_updates = 50 }\n");
  const std::string text = t.node("restart.mjs", {{"PHASE", "write"}});
  REQUIRE(text.size() > 100);
  t.restart();
  t.node("restart.mjs", {{"PHASE", "read"}, {"EXPECT", text}});
}

TEST_CASE("revocation closes the socket and a downgrade makes it read-only") {
  Collab t;
  t.node("revoke.mjs");
}

TEST_CASE("malformed messages close only that connection") {
  Collab t;
  t.node("malformed.mjs");
  auto r = t.c->get("/healthz");
  CHECK(r.status == 200);
}

TEST_CASE("limits close with their own codes") {
  Collab t(
      "collab = { max_messages_per_second = 5, message_burst = 10, max_connections_per_document = 3, "
      "max_message_bytes = 4096 }\n");
  t.node("limits.mjs");
}

TEST_CASE("a client that cannot keep up is disconnected and others are not") {
  Collab t(
      "collab = { max_queued_bytes = 65536, max_messages_per_second = 100000, message_burst = 100000 }\n");
  t.node("backpressure.mjs");
}

TEST_CASE("Hocuspocus providers multiplex documents on one socket with in-message tokens") {
  Collab t;
  t.node("hocuspocus.mjs");
  REQUIRE(t.v->stop() == 0);
  // Tokens travel in auth messages: none of them may reach the log.
  for (const auto& token : {t.admin, t.bob, t.carol, std::string("vls_") + std::string(40, 'x')})
    CHECK(t.v->log().find(token) == std::string::npos);
}

TEST_CASE("end-to-end encrypted documents: opaque relay, client compaction, restart, no plaintext stored") {
  Collab t("collab = { max_messages_per_second = 5000, message_burst = 10000 }\n");
  const std::string out = t.node("e2ee.mjs", {{"PHASE", "write"}});
  INFO(out);
  const json written = json::parse(out);
  REQUIRE(written["head"].get<uint64_t>() > 100);
  t.restart();
  t.node("e2ee.mjs", {{"PHASE", "read"}, {"EXPECT", out}});
  REQUIRE(t.v->stop() == 0);
  // The clients' text never reached the server in the clear: not in any file
  // of the data directory, nor in the log.
  const std::string marker = "Zyzzyva-plaintext-marker-4711";
  size_t files = 0;
  for (auto& f : std::filesystem::recursive_directory_iterator(t.site->data_dir())) {
    if (!f.is_regular_file()) continue;
    std::ifstream in(f.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes.find(marker) == std::string::npos);
    ++files;
  }
  CHECK(files > 0);
  CHECK(t.v->log().find(marker) == std::string::npos);
}

TEST_CASE("end-to-end encrypted documents: a bounded log and checked snapshots") {
  Collab t("collab = { e2ee_max_log_entries = 5 }\n");
  t.node("e2ee.mjs", {{"PHASE", "limits"}});
}

TEST_CASE("Hocuspocus limits: anonymous sockets and documents per socket") {
  Collab t("collab = { max_unauthenticated_sockets = 2, max_documents_per_socket = 1 }\n");
  t.node("hocuspocus-limits.mjs");
}
