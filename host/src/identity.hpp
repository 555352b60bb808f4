// Identity: users, argon2id passwords, opaque session and API tokens (stored
// only as SHA-256 hashes), TOTP MFA with recovery codes, and brute-force
// defence. State lives in the store's reserved "vellum.identity" namespace,
// so it passes through the storage barrier like everything else.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/store.hpp"

namespace vellum::host {

using Clock = std::function<int64_t()>;  // unix milliseconds
int64_t system_clock_ms();

struct IdentityConfig {
  uint64_t session_absolute_ms = 12ull * 3600 * 1000;  // a session never outlives this
  uint64_t session_idle_ms = 60ull * 60 * 1000;        // nor this much inactivity
  uint32_t lockout_threshold = 10;                     // consecutive failures before a lock
  uint64_t lockout_ms = 15ull * 60 * 1000;
  uint32_t ip_max_failures = 100;  // per IP per window
  uint64_t ip_window_ms = 15ull * 60 * 1000;
  uint32_t password_min_length = 12;
  uint32_t password_max_length = 256;
  uint32_t argon2_memory_kib = 19 * 1024;  // OWASP: m=19 MiB, t=2, p=1
  uint32_t argon2_iterations = 2;
  uint32_t argon2_parallelism = 1;
  std::string totp_issuer = "Vellum";
};

// A failure the HTTP layer turns into a problem response.
struct AuthError : std::runtime_error {
  AuthError(uint16_t s, std::string c, const std::string& msg, uint64_t retry_after_s = 0)
      : std::runtime_error(msg), status(s), code(std::move(c)), retry_after(retry_after_s) {}
  uint16_t status;
  std::string code;  // machine-readable, e.g. "invalid_credentials", "mfa_required"
  uint64_t retry_after;
};

struct User {
  std::string id, email, display_name;
  std::string status = "active";   // active | locked | disabled
  std::vector<std::string> roles;  // "admin"
  int64_t created_ms = 0, updated_ms = 0;
  std::string password_hash;  // argon2id encoded
  bool mfa_enabled = false;
  std::string totp_secret, pending_totp_secret;  // raw bytes, base64
  std::vector<std::string> recovery_hashes;      // SHA-256 hex, consumed once
  int64_t last_totp_step = 0;                    // refuses replay of a used code
  uint32_t failed_logins = 0;
  int64_t locked_until_ms = 0;
  bool is_admin() const;
  nlohmann::json public_json() const;  // what an API may show
};

struct Session {
  std::string id, user_id;
  std::string kind = "session";  // session | api
  std::string name;              // API token name
  std::string scope = "full";    // full | read
  int64_t created_ms = 0, last_seen_ms = 0, expires_ms = 0;
  uint64_t idle_ms = 0;   // 0: no idle expiry (API tokens)
  int64_t mfa_at_ms = 0;  // when MFA was last verified in this session
  std::string ip, user_agent;
  nlohmann::json public_json() const;
};

struct Authenticated {
  User user;
  Session session;
  std::string token_hash;
};

class Identity {
 public:
  Identity(Store& store, IdentityConfig cfg, Clock clock);

  // ---- users
  User create_user(const std::string& email, const std::string& display_name, const std::string& password,
                   const std::vector<std::string>& roles);
  std::optional<User> find_user(const std::string& id) const;
  std::optional<User> find_by_email(const std::string& email) const;
  // Cursor pagination by user id; returns users after `after`.
  std::vector<User> list_users(const std::string& after, uint32_t limit, bool* more) const;
  User set_status(const std::string& user_id, const std::string& status);  // active|locked|disabled
  size_t user_count() const;

  // ---- login and sessions
  struct LoginResult {
    std::string token;
    Session session;
    User user;
  };
  // `second_factor` is a TOTP code or a recovery code. Throws AuthError.
  LoginResult login(const std::string& email, const std::string& password, const std::string& second_factor,
                    const std::string& ip, const std::string& user_agent);
  // Resolves a bearer token; nullopt if unknown, expired, revoked or the user is not active.
  std::optional<Authenticated> authenticate(const std::string& token);
  void revoke_token_hash(const std::string& token_hash);
  std::vector<Session> list_sessions(const std::string& user_id, const std::string& kind) const;
  bool revoke_session(const std::string& user_id, const std::string& session_id);
  size_t revoke_all(const std::string& user_id, const std::string& kind);  // kind "" = all
  // Changes the password and revokes every session and API token of the user.
  void change_password(const std::string& user_id, const std::string& current, const std::string& next);

  // ---- API tokens (shown once)
  // Guest sessions (ABI 1.2): a visitor who is not an account, e.g. a share
  // link's redeemer. user_id is "guest:<plugin>:<subject>"; scope is
  // "guest <scopes>"; no idle timeout, ttl_ms bounds it.
  LoginResult issue_guest_session(const std::string& user_id, const std::string& scopes,
                                  const std::string& display_name, uint64_t ttl_ms);
  size_t revoke_guest_sessions(const std::string& user_id);
  // The live session `session_id` of `user_id` (an ended one is revoked and
  // gives nullopt, as does a user who may no longer log in).
  std::optional<Authenticated> find_session(const std::string& user_id, const std::string& session_id);
  // Called with a session id after that session is revoked or found expired,
  // so the host can close what was opened with it. Set once, before serving.
  void on_session_ended(std::function<void(const std::string& session_id)> fn) {
    session_ended_ = std::move(fn);
  }

  LoginResult create_api_token(const std::string& user_id, const std::string& name, const std::string& scope,
                               uint64_t ttl_ms);

  // ---- MFA (RFC 6238 TOTP: SHA-1, 6 digits, 30 s)
  struct Enrollment {
    std::string secret_base32, otpauth_uri;
  };
  Enrollment mfa_enroll(const std::string& user_id);
  std::vector<std::string> mfa_confirm(const std::string& user_id,
                                       const std::string& code);  // recovery codes
  void mfa_disable(const std::string& user_id, const std::string& password, const std::string& code);
  // Step-up: re-verify MFA in the current session.
  // Returns the session's new MFA time. Secret checks outside login (step-up,
  // MFA changes, password change) share login's progressive delay, keyed per
  // user: a stolen session cannot brute-force them.
  int64_t mfa_verify(const Authenticated& who, const std::string& code);

  static std::string totp(const std::string& secret, int64_t step, int digits = 6);  // RFC 6238
  static std::string base32(const std::string& bytes);
  static std::string sha256_hex(std::string_view s);
  static std::string new_token(const char* prefix);  // prefix + base64url(32 random bytes)
  // Passwords.
  std::string hash_password(const std::string& password) const;
  static bool verify_password(const std::string& encoded, const std::string& password);
  void check_password_policy(const std::string& password, const std::string& email) const;

  const IdentityConfig& config() const { return cfg_; }
  int64_t now() const { return clock_(); }

 private:
  void put_user(Transaction& t, const User& u, uint64_t expected);
  std::optional<std::pair<User, uint64_t>> load_user(Transaction* t, const std::string& id) const;
  bool check_totp(User& u, const std::string& code);  // consumes the step
  bool use_recovery_code(User& u, const std::string& code);
  Session new_session(const User& u, const std::string& kind, const std::string& ip, const std::string& ua);
  std::string store_session(Transaction& t, const Session& s);  // returns the token
  uint64_t throttle_wait(const std::string& key) const;         // seconds to wait, 0 = go
  void note_failure(const std::string& key);
  void clear_failures(const std::string& key);

  std::optional<Authenticated> check_session(Session s, const std::string& token_hash);
  static User guest_user(const Session& s);
  std::function<void(const std::string&)> session_ended_;
  Store& store_;
  IdentityConfig cfg_;
  Clock clock_;
  const std::string& dummy_hash();
  std::string email_index(const std::string& email) const;  // store key of the unique-email index
  mutable std::once_flag index_once_;
  mutable std::string index_key_;
  std::once_flag dummy_once_;
  std::string dummy_hash_;  // verified for unknown users, so timing does not tell
  mutable std::mutex throttle_mu_;
  struct Failures {
    uint32_t count = 0;
    int64_t last_ms = 0, window_start_ms = 0;
  };
  std::unordered_map<std::string, Failures> failures_;
};

}  // namespace vellum::host
