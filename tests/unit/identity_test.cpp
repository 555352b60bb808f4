// Identity with an injected clock: no sleeps.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "identity.hpp"

using namespace vellum::host;

namespace {
struct Fixture {
  vt::TempDir dir;
  std::unique_ptr<Store> store;
  int64_t now = 1'700'000'000'000;
  IdentityConfig cfg;
  std::unique_ptr<Identity> id;
  Fixture() {
    store = open_sqlite_store({dir / "t.db", 2, 5000});
    cfg.argon2_memory_kib = 1024;  // fast in unit tests; the OWASP default is checked separately
    cfg.argon2_iterations = 1;
    id = std::make_unique<Identity>(*store, cfg, [this] { return now; });
  }
  // The current TOTP code for a base32 secret (decoded with the RFC 4648 alphabet).
  std::string code_for(const std::string& b32, int64_t offset_steps = 0) const {
    std::string bytes;
    uint32_t buf = 0;
    int bits = 0;
    for (char c : b32) {
      int v = c >= 'A' && c <= 'Z' ? c - 'A' : c - '2' + 26;
      buf = (buf << 5) | static_cast<uint32_t>(v);
      bits += 5;
      if (bits >= 8) {
        bytes.push_back(static_cast<char>((buf >> (bits - 8)) & 0xff));
        bits -= 8;
      }
    }
    return Identity::totp(bytes, now / 30000 + offset_steps);
  }
};
const std::string kPw = "correct horse battery";

int status_of(const std::function<void()>& f, std::string* code = nullptr) {
  try {
    f();
  } catch (const AuthError& e) {
    if (code) *code = e.code;
    return e.status;
  }
  return 0;
}
}  // namespace

TEST_CASE("TOTP matches the RFC 6238 SHA-1 test vectors", "[identity][unit]") {
  const std::string seed = "12345678901234567890";
  CHECK(Identity::totp(seed, 59 / 30, 8) == "94287082");
  CHECK(Identity::totp(seed, 1111111109 / 30, 8) == "07081804");
  CHECK(Identity::totp(seed, 1111111111 / 30, 8) == "14050471");
  CHECK(Identity::totp(seed, 1234567890 / 30, 8) == "89005924");
  CHECK(Identity::totp(seed, 2000000000 / 30, 8) == "69279037");
  CHECK(Identity::totp(seed, 20000000000 / 30, 8) == "65353130");
  CHECK(Identity::base32("12345678901234567890") == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

TEST_CASE("passwords: argon2id at OWASP parameters and a policy", "[identity][unit]") {
  vt::TempDir d;
  auto store = open_sqlite_store({d / "t.db", 2, 5000});
  Identity owasp(*store, IdentityConfig{}, system_clock_ms);
  std::string h = owasp.hash_password(kPw);
  CHECK(h.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0) == 0);
  CHECK(Identity::verify_password(h, kPw));
  CHECK_FALSE(Identity::verify_password(h, kPw + "x"));
  Fixture f;
  CHECK(status_of([&] { f.id->create_user("a@example.com", "", "short", {}); }) == 422);
  CHECK(status_of([&] { f.id->create_user("a@example.com", "", "Password1234", {}); }) == 422);  // common
  CHECK(status_of([&] { f.id->create_user("alice@example.com", "", "alice-is-great-1", {}); }) == 422);
  CHECK(status_of([&] { f.id->create_user("not-an-email", "", kPw, {}); }) == 422);
  f.id->create_user("a@example.com", "A", kPw, {});
  CHECK(status_of([&] { f.id->create_user("A@Example.com", "", kPw, {}); }) ==
        409);  // case-insensitive unique
}

TEST_CASE("login: identical errors, lockout, progressive delay", "[identity][unit]") {
  Fixture f;
  f.id->create_user("a@example.com", "A", kPw, {});
  std::string c1, c2;
  CHECK(status_of([&] { f.id->login("nobody@example.com", kPw, "", "10.0.0.1", ""); }, &c1) == 401);
  CHECK(status_of([&] { f.id->login("a@example.com", "wrong password!", "", "10.0.0.2", ""); }, &c2) == 401);
  CHECK(c1 == c2);
  auto ok = f.id->login("a@example.com", kPw, "", "10.0.0.2", "ua");
  CHECK(ok.token.rfind("vls_", 0) == 0);
  CHECK(ok.token.size() >= 40);  // 256 random bits

  // Failures 1-2 are free, then the wait doubles: 1 s, 2 s, 4 s ...
  f.id->login("a@example.com", kPw, "", "10.0.0.3", "");  // success clears the counter
  for (int i = 0; i < 3; ++i)
    status_of([&] { f.id->login("a@example.com", "bad password", "", "10.0.0.3", ""); });
  AuthError throttled(0, "", "");
  try {
    f.id->login("a@example.com", kPw, "", "10.0.0.3", "");
  } catch (const AuthError& e) {
    throttled = e;
  }
  CHECK(throttled.status == 429);
  CHECK(throttled.retry_after == 1);
  f.now += 1000;
  CHECK(status_of([&] { f.id->login("a@example.com", "bad password", "", "10.0.0.3", ""); }) == 401);
  f.now += 1000;
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, "", "10.0.0.3", ""); }) == 429);  // now 2 s

  // Lockout after 10 consecutive failures: even the right password then fails, identically.
  for (int i = 0; i < 12; ++i) {
    f.now += 61000;
    status_of([&] { f.id->login("a@example.com", "bad password", "", "10.0.0.4", ""); });
  }
  CHECK(f.id->find_by_email("a@example.com")->status == "locked");
  f.now += 61000;
  std::string code;
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, "", "10.0.0.4", ""); }, &code) == 401);
  CHECK(code == "invalid_credentials");
  f.now += 16 * 60 * 1000;  // the automatic lock runs out
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, "", "10.0.0.4", ""); }) == 0);
}

TEST_CASE("sessions expire (absolute and idle) and revoke", "[identity][unit]") {
  Fixture f;
  auto u = f.id->create_user("a@example.com", "A", kPw, {});
  auto s = f.id->login("a@example.com", kPw, "", "ip", "ua");
  REQUIRE(f.id->authenticate(s.token));
  CHECK_FALSE(f.id->authenticate(s.token + "x"));
  f.now += f.cfg.session_idle_ms + 1;
  CHECK_FALSE(f.id->authenticate(s.token));  // idle too long

  auto s2 = f.id->login("a@example.com", kPw, "", "ip", "ua");
  for (int64_t t = 0; t < static_cast<int64_t>(f.cfg.session_absolute_ms); t += 30 * 60 * 1000) {
    f.now += 30 * 60 * 1000;  // active every 30 minutes
    if (!f.id->authenticate(s2.token)) break;
  }
  CHECK_FALSE(f.id->authenticate(s2.token));  // absolute limit reached despite activity

  auto a = f.id->login("a@example.com", kPw, "", "ip", "ua");
  auto b = f.id->login("a@example.com", kPw, "", "ip", "ua");
  auto t = f.id->create_api_token(u.id, "ci", "read", 24ull * 3600 * 1000);
  CHECK(t.token.rfind("vla_", 0) == 0);
  CHECK(f.id->list_sessions(u.id, "session").size() == 2);
  CHECK(f.id->revoke_session(u.id, a.session.id));
  CHECK_FALSE(f.id->authenticate(a.token));
  CHECK(f.id->authenticate(b.token));
  f.id->change_password(u.id, kPw, "an entirely new passphrase");
  CHECK_FALSE(f.id->authenticate(b.token));  // every session and token
  CHECK_FALSE(f.id->authenticate(t.token));
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, "", "ip", ""); }) == 401);
  CHECK(status_of([&] { f.id->login("a@example.com", "an entirely new passphrase", "", "ip", ""); }) == 0);
}

TEST_CASE("TOTP MFA: enrol, confirm, login, replay, recovery codes, step-up, disable", "[identity][unit]") {
  Fixture f;
  auto u = f.id->create_user("a@example.com", "A", kPw, {});
  auto e = f.id->mfa_enroll(u.id);
  CHECK(e.otpauth_uri.rfind("otpauth://totp/Vellum:a%40example.com?secret=" + e.secret_base32, 0) == 0);
  CHECK(status_of([&] { f.id->mfa_confirm(u.id, "000000"); }) == 422);
  auto codes = f.id->mfa_confirm(u.id, f.code_for(e.secret_base32));
  CHECK(codes.size() == 10);
  CHECK(f.id->find_user(u.id)->mfa_enabled);

  std::string code;
  f.now += 30000;
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, "", "ip", ""); }, &code) == 401);
  CHECK(code == "mfa_required");
  std::string good = f.code_for(e.secret_base32);
  auto s = f.id->login("a@example.com", kPw, good, "ip", "");
  CHECK(s.session.mfa_at_ms == f.now);
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, good, "ip", ""); }, &code) == 401);  // replay
  CHECK(code == "invalid_mfa_code");
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, codes[0], "ip", ""); }) == 0);
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, codes[0], "ip", ""); }) == 401);  // used once

  auto who = f.id->authenticate(s.token);
  f.now += 5 * 60000;
  f.id->mfa_verify(*who, f.code_for(e.secret_base32));
  CHECK(f.id->authenticate(s.token)->session.mfa_at_ms == f.now);

  // Step-up guesses are throttled like logins.
  for (int i = 0; i < 3; ++i) CHECK(status_of([&] { f.id->mfa_verify(*who, "000000"); }) == 401);
  CHECK(status_of([&] { f.id->mfa_verify(*who, f.code_for(e.secret_base32)); }) == 429);
  f.now += 2000;

  f.now += 30000;
  CHECK(status_of([&] { f.id->mfa_disable(u.id, "wrong", f.code_for(e.secret_base32)); }) == 403);
  f.now += 30000;
  f.id->mfa_disable(u.id, kPw, f.code_for(e.secret_base32));
  CHECK(status_of([&] { f.id->login("a@example.com", kPw, "", "ip", ""); }) == 0);
}
