// Shared fixture for the editor's integration tests: a real vellumd with
// crypto + editor, an administrator and a second user, Bob.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include <map>
#include <memory>
#include <string>

#include "doc_crypto.hpp"
#include "harness.hpp"

namespace edt {

using namespace vt;
using nlohmann::json;

inline const std::string kAdminEmail = "ada.editortest@example.com";
inline const std::string kAdminPw = "correct horse staple 42";
inline const std::string kUserPw = "bob passphrase 42!";

inline std::string new_root_key() {
  std::string k(32, '\0');
  REQUIRE(RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32) == 1);
  return vellum::editor::b64encode(k);
}

inline std::string config_with(const std::string& extra = "") {
  return "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n"
         "[plugins.editor]\nmax_document_bytes = 65536\nmax_depth = 16\n" +
         extra;
}

inline std::map<std::string, std::string> auth(const std::string& t) {
  return {{"Authorization", "Bearer " + t}, {"Content-Type", "application/json"}};
}

struct Api {
  std::string root_key = new_root_key();
  Site site;
  std::unique_ptr<Vellumd> v;
  std::unique_ptr<HttpClient> c;
  std::string admin, bob, bob_id;

  explicit Api(const std::string& extra_config = "")
      : site(config_with(extra_config), kAdminEmail, kAdminPw, {{"VELLUM_ROOT_KEY", root_key}}, "Ada") {
    v = site.start();
    c = std::make_unique<HttpClient>(*v);
    admin = login(kAdminEmail, kAdminPw);
    auto mk = c->request(
        "POST", "/v1/admin/users",
        json({{"email", "bob@example.com"}, {"display_name", "Bob"}, {"password", kUserPw}}).dump(),
        auth(admin));
    REQUIRE(mk.status == 201);
    bob_id = json::parse(mk.body)["id"];
    bob = login("bob@example.com", kUserPw);
  }
  std::string login(const std::string& email, const std::string& pw) { return vt::login(*c, email, pw); }
  Response call(const std::string& method, const std::string& path, const std::string& tok,
                const std::string& body = "") {
    return c->request(method, path, body, auth(tok));
  }
  json ok(const std::string& method, const std::string& path, const std::string& tok,
          const json& body = nullptr, int status = 200) {
    auto r = call(method, path, tok, body.is_null() ? "" : body.dump());
    INFO(method << " " << path << " -> " << r.body);
    REQUIRE(r.status == status);
    return json::parse(r.body);
  }
  json problem(const std::string& method, const std::string& path, const std::string& tok,
               const std::string& body, int status) {
    auto r = call(method, path, tok, body);
    INFO(method << " " << path << " -> " << r.body);
    CHECK(r.status == status);
    CHECK(r.header("Content-Type").find("application/problem+json") != std::string::npos);
    return json::parse(r.body);
  }
  std::string db_bytes() const { return site.db_bytes(); }
};

inline json richtext(const std::string& words) {
  return {{"type", "doc"},
          {"content", {{{"type", "paragraph"}, {"content", {{{"type", "text"}, {"text", words}}}}}}}};
}

}  // namespace edt
