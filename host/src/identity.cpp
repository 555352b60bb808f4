#include "identity.hpp"

#include <argon2.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace vellum::host {
namespace {

constexpr std::string_view kNs = "vellum.identity";
const char* const kCommonPasswords[] = {
#include "common_passwords.inc"
};

std::string random_bytes(size_t n) {
  std::string s(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return s;
}

std::string hex(std::string_view b) {
  static const char* d = "0123456789abcdef";
  std::string o;
  for (unsigned char c : b) {
    o.push_back(d[c >> 4]);
    o.push_back(d[c & 15]);
  }
  return o;
}

std::string b64(std::string_view in, bool url) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(n);
  if (url) {
    for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
    while (!out.empty() && out.back() == '=') out.pop_back();
  }
  return out;
}

std::string unb64(const std::string& in) {
  std::string out(3 * in.size() / 4 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) throw std::runtime_error("bad base64");
  size_t pad = 0;
  for (auto it = in.rbegin(); it != in.rend() && *it == '='; ++it) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool valid_email(const std::string& e) {
  if (e.size() < 3 || e.size() > 254) return false;
  auto at = e.find('@');
  if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos) return false;
  auto domain = e.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string::npos || domain.front() == '.' ||
      domain.back() == '.')
    return false;
  for (unsigned char c : e)
    if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' || c == ',' || c == ';') return false;
  return true;
}

// Constant-time comparison of equal-length secrets.
bool ct_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

std::string user_key(const std::string& id) { return "u/" + id; }
std::string session_key(const std::string& hash) { return "s/" + hash; }
std::string user_session_key(const std::string& uid, const std::string& sid) {
  return "us/" + uid + "/" + sid;
}

const AuthError kInvalidCredentials(401, "invalid_credentials", "invalid email or password");

}  // namespace

int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Stored form: the field names as JSON keys; absent keys take the defaults.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(User, id, email, display_name, status, roles, created_ms,
                                                updated_ms, password_hash, mfa_enabled, totp_secret,
                                                pending_totp_secret, recovery_hashes, last_totp_step,
                                                failed_logins, locked_until_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Session, id, user_id, kind, name, scope, created_ms,
                                                last_seen_ms, expires_ms, idle_ms, mfa_at_ms, ip, user_agent)

bool User::is_admin() const { return std::find(roles.begin(), roles.end(), "admin") != roles.end(); }

nlohmann::json User::public_json() const {
  return {{"id", id},
          {"email", email},
          {"display_name", display_name},
          {"status", status},
          {"roles", roles},
          {"mfa_enabled", mfa_enabled},
          {"created_ms", created_ms},
          {"updated_ms", updated_ms}};
}

nlohmann::json Session::public_json() const {
  nlohmann::json j = {{"id", id},
                      {"kind", kind},
                      {"scope", scope},
                      {"created_ms", created_ms},
                      {"last_seen_ms", last_seen_ms},
                      {"expires_ms", expires_ms},
                      {"mfa_at_ms", mfa_at_ms},
                      {"ip", ip},
                      {"user_agent", user_agent}};
  if (kind == "api") j["name"] = name;
  return j;
}

Identity::Identity(Store& store, IdentityConfig cfg, Clock clock)
    : store_(store), cfg_(std::move(cfg)), clock_(std::move(clock)) {}

// Verified for logins of unknown users, so timing does not tell whether an
// account exists. Made on first use: it costs one argon2id hash (~30 ms).
const std::string& Identity::dummy_hash() {
  std::call_once(dummy_once_, [this] { dummy_hash_ = hash_password(hex(random_bytes(16))); });
  return dummy_hash_;
}

// ---------------------------------------------------------------- helpers
std::string Identity::sha256_hex(std::string_view s) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  return hex(std::string_view(reinterpret_cast<char*>(md), n));
}

std::string Identity::new_token(const char* prefix) { return prefix + b64(random_bytes(32), true); }

std::string Identity::base32(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out.push_back(alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(alphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::string Identity::totp(const std::string& secret, int64_t step, int digits) {
  unsigned char msg[8];
  for (int i = 7; i >= 0; --i, step >>= 8) msg[i] = static_cast<unsigned char>(step & 0xff);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()), msg, sizeof msg, md, &len);
  int off = md[len - 1] & 0x0f;
  uint32_t bin = ((md[off] & 0x7f) << 24) | (md[off + 1] << 16) | (md[off + 2] << 8) | md[off + 3];
  uint32_t mod = 1;
  for (int i = 0; i < digits; ++i) mod *= 10;
  std::string code = std::to_string(bin % mod);
  return std::string(static_cast<size_t>(digits) - code.size(), '0') + code;
}

std::string Identity::hash_password(const std::string& password) const {
  std::string salt = random_bytes(16);
  size_t len = argon2_encodedlen(cfg_.argon2_iterations, cfg_.argon2_memory_kib, cfg_.argon2_parallelism,
                                 static_cast<uint32_t>(salt.size()), 32, Argon2_id);
  std::string encoded(len, '\0');
  int rc = argon2id_hash_encoded(cfg_.argon2_iterations, cfg_.argon2_memory_kib, cfg_.argon2_parallelism,
                                 password.data(), password.size(), salt.data(), salt.size(), 32,
                                 encoded.data(), len);
  if (rc != ARGON2_OK) throw std::runtime_error(std::string("argon2id: ") + argon2_error_message(rc));
  encoded.resize(std::strlen(encoded.c_str()));
  return encoded;
}

bool Identity::verify_password(const std::string& encoded, const std::string& password) {
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

void Identity::check_password_policy(const std::string& password, const std::string& email) const {
  if (password.size() < cfg_.password_min_length)
    throw AuthError(422, "weak_password",
                    "passwords need at least " + std::to_string(cfg_.password_min_length) + " characters");
  if (password.size() > cfg_.password_max_length)
    throw AuthError(422, "weak_password",
                    "passwords are at most " + std::to_string(cfg_.password_max_length) + " characters");
  std::string p = lower(password);
  for (const char* common : kCommonPasswords)
    if (p == lower(common))
      throw AuthError(422, "weak_password", "this password is in a list of common passwords");
  auto local = lower(email.substr(0, email.find('@')));
  if (local.size() >= 4 && p.find(local) != std::string::npos)
    throw AuthError(422, "weak_password", "the password must not contain the email name");
}

// ---------------------------------------------------------------- storage
// The unique-email index is keyed by HMAC-SHA256(index key, lower(email)):
// the storage barrier seals values, not keys, so an address used as a key
// would sit on disk in the clear. The index key is a random value stored
// (sealed) in this namespace, read on first use — after plugins have
// installed the barrier.
std::string Identity::email_index(const std::string& email) const {
  std::call_once(index_once_, [this] {
    auto t = store_.begin();
    auto rec = t->get(kNs, "index-key");
    if (rec) {
      index_key_ = rec->value;
    } else {
      index_key_ = random_bytes(32);
      t->put(kNs, "index-key", index_key_, VELLUM_VERSION_ABSENT);
      t->commit();
    }
  });
  std::string e = lower(email);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), index_key_.data(), static_cast<int>(index_key_.size()),
       reinterpret_cast<const unsigned char*>(e.data()), e.size(), md, &len);
  return "e/" + hex(std::string_view(reinterpret_cast<char*>(md), len));
}

void Identity::put_user(Transaction& t, const User& u, uint64_t expected) {
  t.put(kNs, user_key(u.id), nlohmann::json(u).dump(), expected);
}

std::optional<std::pair<User, uint64_t>> Identity::load_user(Transaction* t, const std::string& id) const {
  auto rec = t ? t->get(kNs, user_key(id)) : store_.get(kNs, user_key(id));
  if (!rec) return std::nullopt;
  return std::make_pair(nlohmann::json::parse(rec->value).get<User>(), rec->version);
}

User Identity::create_user(const std::string& email_in, const std::string& display_name,
                           const std::string& password, const std::vector<std::string>& roles) {
  std::string email = lower(email_in);
  if (!valid_email(email)) throw AuthError(422, "invalid_email", "not a valid email address");
  if (display_name.size() > 200)
    throw AuthError(422, "invalid_name", "display names are at most 200 characters");
  for (auto& r : roles)
    if (r != "admin") throw AuthError(422, "invalid_role", "unknown role '" + r + "'");
  check_password_policy(password, email);
  User u;
  u.id = hex(random_bytes(16));
  u.email = email;
  u.display_name = display_name.empty() ? email.substr(0, email.find('@')) : display_name;
  u.roles = roles;
  u.created_ms = u.updated_ms = now();
  u.password_hash = hash_password(password);
  const std::string index = email_index(email);  // before begin(): it may write the index key
  auto t = store_.begin();
  try {
    t->put(kNs, index, u.id, VELLUM_VERSION_ABSENT);
  } catch (const StoreError& e) {
    if (e.status == VELLUM_ERR_CONFLICT) throw AuthError(409, "email_taken", "a user with this email exists");
    throw;
  }
  put_user(*t, u, VELLUM_VERSION_ABSENT);
  t->commit();
  return u;
}

std::optional<User> Identity::find_user(const std::string& id) const {
  auto u = load_user(nullptr, id);
  if (!u) return std::nullopt;
  return u->first;
}

std::optional<User> Identity::find_by_email(const std::string& email) const {
  auto rec = store_.get(kNs, email_index(email));
  if (!rec) return std::nullopt;
  return find_user(rec->value);
}

std::vector<User> Identity::list_users(const std::string& after, uint32_t limit, bool* more) const {
  std::vector<User> out;
  ScanOptions o;
  o.prefix = "u/";
  o.start = after.empty() ? "u/" : user_key(after) + std::string(1, '\0');
  o.limit = std::clamp<uint32_t>(limit, 1, 1000);
  bool m = store_.scan(kNs, o, [&](std::string_view, std::string_view v, uint64_t) {
    out.push_back(nlohmann::json::parse(v).get<User>());
    return true;
  });
  if (more) *more = m;
  return out;
}

size_t Identity::user_count() const {
  size_t n = 0;
  ScanOptions o;
  o.prefix = "e/";
  o.limit = 10000;
  store_.scan(kNs, o, [&](std::string_view, std::string_view, uint64_t) {
    ++n;
    return true;
  });
  return n;
}

User Identity::set_status(const std::string& user_id, const std::string& status) {
  if (status != "active" && status != "locked" && status != "disabled")
    throw AuthError(422, "invalid_status", "status is active, locked or disabled");
  auto t = store_.begin();
  auto cur = load_user(t.get(), user_id);
  if (!cur) throw AuthError(404, "not_found", "no such user");
  User u = cur->first;
  u.status = status;
  u.locked_until_ms = 0;  // an administrator's lock holds until unlocked
  if (status == "active") u.failed_logins = 0;
  u.updated_ms = now();
  put_user(*t, u, cur->second);
  t->commit();
  if (status != "active") revoke_all(user_id, "");
  if (status == "active") clear_failures("acct:" + u.email);
  return u;
}

// ---------------------------------------------------------------- throttling
uint64_t Identity::throttle_wait(const std::string& key) const {
  std::lock_guard lk(throttle_mu_);
  auto it = failures_.find(key);
  if (it == failures_.end()) return 0;
  const Failures& f = it->second;
  int64_t now_ms = clock_();
  int64_t until = 0;
  if (key.rfind("ip:", 0) == 0) {
    if (f.count >= cfg_.ip_max_failures) until = f.window_start_ms + static_cast<int64_t>(cfg_.ip_window_ms);
  } else if (f.count >= 3) {
    // Progressive delay: 1 s after the 3rd failure, doubling, at most 60 s.
    int64_t delay = std::min<int64_t>(60000, 1000ll << std::min<uint32_t>(f.count - 3, 6));
    until = f.last_ms + delay;
  }
  return until > now_ms ? static_cast<uint64_t>((until - now_ms + 999) / 1000) : 0;
}

void Identity::note_failure(const std::string& key) {
  std::lock_guard lk(throttle_mu_);
  int64_t now_ms = clock_();
  if (failures_.size() > 100000) {  // bound memory under a spray of keys
    std::erase_if(failures_, [&](auto& kv) {
      return now_ms - kv.second.last_ms > static_cast<int64_t>(std::max(cfg_.ip_window_ms, cfg_.lockout_ms));
    });
  }
  Failures& f = failures_[key];
  if (key.rfind("ip:", 0) == 0 && now_ms - f.window_start_ms > static_cast<int64_t>(cfg_.ip_window_ms)) {
    f.count = 0;
    f.window_start_ms = now_ms;
  }
  ++f.count;
  f.last_ms = now_ms;
}

void Identity::clear_failures(const std::string& key) {
  std::lock_guard lk(throttle_mu_);
  failures_.erase(key);
}

// ---------------------------------------------------------------- sessions
Session Identity::new_session(const User& u, const std::string& kind, const std::string& ip,
                              const std::string& ua) {
  Session s;
  s.id = hex(random_bytes(12));
  s.user_id = u.id;
  s.kind = kind;
  s.created_ms = s.last_seen_ms = now();
  s.expires_ms = s.created_ms + static_cast<int64_t>(cfg_.session_absolute_ms);
  s.idle_ms = cfg_.session_idle_ms;
  s.ip = ip;
  s.user_agent = ua.substr(0, 256);
  return s;
}

std::string Identity::store_session(Transaction& t, const Session& s) {
  std::string token = new_token(s.kind == "api" ? "vla_" : s.kind == "guest" ? "vlg_" : "vls_");
  std::string h = sha256_hex(token);
  t.put(kNs, session_key(h), nlohmann::json(s).dump(), VELLUM_VERSION_ABSENT);
  t.put(kNs, user_session_key(s.user_id, s.id), h, VELLUM_VERSION_ABSENT);
  return token;
}

bool Identity::check_totp(User& u, const std::string& code) {
  if (code.size() != 6 || !std::all_of(code.begin(), code.end(), ::isdigit) || u.totp_secret.empty())
    return false;
  std::string secret = unb64(u.totp_secret);
  int64_t step = now() / 30000;
  for (int64_t s = step - 1; s <= step + 1; ++s) {
    if (s <= u.last_totp_step) continue;  // a code is good once
    if (ct_equal(totp(secret, s), code)) {
      u.last_totp_step = s;
      return true;
    }
  }
  return false;
}

bool Identity::use_recovery_code(User& u, const std::string& code) {
  std::string norm;
  for (char c : code)
    if (c != '-' && c != ' ') norm.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (norm.size() != 16) return false;
  std::string h = sha256_hex(norm);
  for (auto it = u.recovery_hashes.begin(); it != u.recovery_hashes.end(); ++it)
    if (ct_equal(*it, h)) {
      u.recovery_hashes.erase(it);
      return true;
    }
  return false;
}

Identity::LoginResult Identity::login(const std::string& email_in, const std::string& password,
                                      const std::string& second_factor, const std::string& ip,
                                      const std::string& ua) {
  std::string email = lower(email_in);
  std::string acct = "acct:" + email, ipk = "ip:" + ip;
  if (uint64_t wait = std::max(throttle_wait(acct), throttle_wait(ipk)))
    throw AuthError(429, "too_many_attempts", "too many failed attempts; try again later", wait);
  if (password.size() > cfg_.password_max_length) throw kInvalidCredentials;

  auto rec = store_.get(kNs, email_index(email));
  if (!rec) {
    verify_password(dummy_hash(), password);  // same work as for a real user
    note_failure(acct);
    note_failure(ipk);
    throw kInvalidCredentials;
  }
  // The argon2id verification (tens of ms by design) runs before the write
  // transaction, so logins never hold up other writers.
  auto snapshot = load_user(nullptr, rec->value);
  if (!snapshot) throw kInvalidCredentials;
  std::string verified_hash = snapshot->first.password_hash;
  bool password_ok = verify_password(verified_hash, password);
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto t = store_.begin();
    auto cur = load_user(t.get(), rec->value);
    if (!cur) throw kInvalidCredentials;
    User u = cur->first;
    if (u.password_hash != verified_hash) {  // changed meanwhile: check against the new one
      t.reset();
      verified_hash = u.password_hash;
      password_ok = verify_password(verified_hash, password);
      continue;
    }
    if (u.status == "locked" && u.locked_until_ms && u.locked_until_ms <= now()) {
      u.status = "active";  // the automatic lock has run out
      u.failed_logins = 0;
      u.locked_until_ms = 0;
    }
    // Locked and disabled accounts get the very same answer as a bad password.
    if (!password_ok || u.status != "active") {
      note_failure(acct);
      note_failure(ipk);
      if (u.status == "active" && ++u.failed_logins >= cfg_.lockout_threshold) {
        u.status = "locked";
        u.locked_until_ms = now() + static_cast<int64_t>(cfg_.lockout_ms);
      }
      u.updated_ms = now();
      try {
        put_user(*t, u, cur->second);
        t->commit();
      } catch (const StoreError& e) {
        if (e.status == VELLUM_ERR_CONFLICT) continue;  // a concurrent attempt: count again
        throw;
      }
      throw kInvalidCredentials;
    }
    bool mfa_used = false;
    if (u.mfa_enabled) {
      if (second_factor.empty()) throw AuthError(401, "mfa_required", "a TOTP or recovery code is required");
      if (!check_totp(u, second_factor) && !use_recovery_code(u, second_factor)) {
        note_failure(acct);
        note_failure(ipk);
        throw AuthError(401, "invalid_mfa_code", "invalid authentication code");
      }
      mfa_used = true;
    }
    u.failed_logins = 0;
    u.updated_ms = now();
    Session s = new_session(u, "session", ip, ua);
    if (mfa_used) s.mfa_at_ms = now();
    try {
      put_user(*t, u, cur->second);
      std::string token = store_session(*t, s);
      t->commit();
      clear_failures(acct);
      return LoginResult{token, s, u};
    } catch (const StoreError& e) {
      if (e.status == VELLUM_ERR_CONFLICT) continue;
      throw;
    }
  }
  throw AuthError(503, "busy", "please retry");
}

User Identity::guest_user(const Session& s) {
  User u;
  u.id = s.user_id;
  u.display_name = s.name;
  u.created_ms = u.updated_ms = s.created_ms;
  return u;  // no roles, no password, no email: it can only do what the PDP grants
}

// Expiry and account status for a stored session; revokes an ended one.
std::optional<Authenticated> Identity::check_session(Session s, const std::string& h) {
  int64_t t = now();
  bool expired = t >= s.expires_ms || (s.idle_ms && t - s.last_seen_ms > static_cast<int64_t>(s.idle_ms));
  if (expired) {
    revoke_token_hash(h);
    return std::nullopt;
  }
  if (s.kind == "guest") return Authenticated{guest_user(s), s, h};
  auto u = find_user(s.user_id);
  if (!u) return std::nullopt;
  if (u->status != "active" && !(u->status == "locked" && u->locked_until_ms && u->locked_until_ms <= t))
    return std::nullopt;
  return Authenticated{*u, s, h};
}

std::optional<Authenticated> Identity::find_session(const std::string& user_id,
                                                    const std::string& session_id) {
  if (user_id.empty() || session_id.empty() || session_id.find('/') != std::string::npos) return std::nullopt;
  auto idx = store_.get(kNs, user_session_key(user_id, session_id));
  if (!idx) return std::nullopt;
  auto rec = store_.get(kNs, session_key(idx->value));
  if (!rec) return std::nullopt;
  return check_session(nlohmann::json::parse(rec->value).get<Session>(), idx->value);
}

Identity::LoginResult Identity::issue_guest_session(const std::string& user_id, const std::string& scopes,
                                                    const std::string& display_name, uint64_t ttl_ms) {
  Session s;
  s.id = hex(random_bytes(12));
  s.user_id = user_id;
  s.kind = "guest";
  s.name = display_name;
  s.scope = scopes.empty() ? std::string("guest") : "guest " + scopes;
  s.created_ms = s.last_seen_ms = now();
  s.expires_ms = s.created_ms + static_cast<int64_t>(ttl_ms);
  s.idle_ms = 0;
  auto t = store_.begin();
  std::string token = store_session(*t, s);
  t->commit();
  return LoginResult{token, s, guest_user(s)};
}

size_t Identity::revoke_guest_sessions(const std::string& user_id) { return revoke_all(user_id, "guest"); }

std::optional<Authenticated> Identity::authenticate(const std::string& token) {
  if (token.size() < 20 || token.size() > 100) return std::nullopt;
  std::string h = sha256_hex(token);
  auto rec = store_.get(kNs, session_key(h));
  if (!rec) return std::nullopt;
  auto who = check_session(nlohmann::json::parse(rec->value).get<Session>(), h);
  if (!who) return std::nullopt;
  Session& s = who->session;
  int64_t t = now();
  // Idle tracking without a write per request: refresh at most once a minute.
  if (t - s.last_seen_ms > 60000) {
    s.last_seen_ms = t;
    try {
      auto txn = store_.begin();
      txn->put(kNs, session_key(h), nlohmann::json(s).dump(), rec->version);
      txn->commit();
    } catch (const StoreError&) {
      // Another request refreshed it first: fine.
    }
  }
  return who;
}

void Identity::revoke_token_hash(const std::string& h) {
  auto t = store_.begin();
  auto rec = t->get(kNs, session_key(h));
  if (!rec) return;
  Session s = nlohmann::json::parse(rec->value).get<Session>();
  t->erase(kNs, session_key(h), VELLUM_VERSION_ANY);
  if (t->get(kNs, user_session_key(s.user_id, s.id)))
    t->erase(kNs, user_session_key(s.user_id, s.id), VELLUM_VERSION_ANY);
  t->commit();
  if (session_ended_) session_ended_(s.id);
}

std::vector<Session> Identity::list_sessions(const std::string& user_id, const std::string& kind) const {
  std::vector<std::string> hashes;
  ScanOptions o;
  o.prefix = "us/" + user_id + "/";
  o.limit = 10000;
  store_.scan(kNs, o, [&](std::string_view, std::string_view v, uint64_t) {
    hashes.emplace_back(v);
    return true;
  });
  std::vector<Session> out;
  int64_t t = now();
  for (auto& h : hashes) {
    auto rec = store_.get(kNs, session_key(h));
    if (!rec) continue;
    Session s = nlohmann::json::parse(rec->value).get<Session>();
    if (t >= s.expires_ms || (s.idle_ms && t - s.last_seen_ms > static_cast<int64_t>(s.idle_ms))) continue;
    if (kind.empty() || s.kind == kind) out.push_back(s);
  }
  return out;
}

bool Identity::revoke_session(const std::string& user_id, const std::string& session_id) {
  if (session_id.empty() || session_id.find('/') != std::string::npos) return false;
  auto rec = store_.get(kNs, user_session_key(user_id, session_id));  // scoped to the owner: no IDOR
  if (!rec) return false;
  revoke_token_hash(rec->value);
  return true;
}

size_t Identity::revoke_all(const std::string& user_id, const std::string& kind) {
  size_t n = 0;
  for (auto& s : list_sessions(user_id, kind)) n += revoke_session(user_id, s.id) ? 1 : 0;
  return n;
}

void Identity::change_password(const std::string& user_id, const std::string& current,
                               const std::string& next) {
  const std::string key = "pw:" + user_id;
  if (uint64_t wait = throttle_wait(key))
    throw AuthError(429, "too_many_attempts", "too many failed attempts; try again later", wait);
  auto cur = load_user(nullptr, user_id);
  if (!cur) throw AuthError(404, "not_found", "no such user");
  if (!verify_password(cur->first.password_hash, current)) {
    note_failure(key);
    throw AuthError(403, "invalid_credentials", "the current password is wrong");
  }
  clear_failures(key);
  check_password_policy(next, cur->first.email);
  if (verify_password(cur->first.password_hash, next))
    throw AuthError(422, "weak_password", "the new password must differ from the current one");
  std::string hash = hash_password(next);
  auto t = store_.begin();
  auto again = load_user(t.get(), user_id);
  User u = again->first;
  u.password_hash = hash;
  u.updated_ms = now();
  put_user(*t, u, again->second);
  t->commit();
  revoke_all(user_id, "");
}

Identity::LoginResult Identity::create_api_token(const std::string& user_id, const std::string& name,
                                                 const std::string& scope, uint64_t ttl_ms) {
  if (name.empty() || name.size() > 100)
    throw AuthError(422, "invalid_name", "token names are 1..100 characters");
  if (scope != "full" && scope != "read") throw AuthError(422, "invalid_scope", "scope is 'full' or 'read'");
  const uint64_t max_ttl = 366ull * 24 * 3600 * 1000;
  if (ttl_ms == 0 || ttl_ms > max_ttl)
    throw AuthError(422, "invalid_expiry", "tokens expire within 1 to 366 days");
  auto u = find_user(user_id);
  if (!u) throw AuthError(404, "not_found", "no such user");
  Session s = new_session(*u, "api", "", "");
  s.name = name;
  s.scope = scope;
  s.idle_ms = 0;
  s.expires_ms = s.created_ms + static_cast<int64_t>(ttl_ms);
  auto t = store_.begin();
  std::string token = store_session(*t, s);
  t->commit();
  return LoginResult{token, s, *u};
}

// ---------------------------------------------------------------- MFA
Identity::Enrollment Identity::mfa_enroll(const std::string& user_id) {
  auto t = store_.begin();
  auto cur = load_user(t.get(), user_id);
  if (!cur) throw AuthError(404, "not_found", "no such user");
  User u = cur->first;
  if (u.mfa_enabled) throw AuthError(409, "mfa_enabled", "MFA is already enabled; disable it first");
  std::string secret = random_bytes(20);  // 160 bits, as RFC 4226 recommends
  u.pending_totp_secret = b64(secret, false);
  put_user(*t, u, cur->second);
  t->commit();
  std::string b32 = base32(secret);
  auto enc = [](const std::string& s) {
    std::string o;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
        o.push_back(static_cast<char>(c));
      } else {
        char b[4];
        std::snprintf(b, sizeof b, "%%%02X", c);
        o += b;
      }
    }
    return o;
  };
  std::string uri = "otpauth://totp/" + enc(cfg_.totp_issuer) + ":" + enc(u.email) + "?secret=" + b32 +
                    "&issuer=" + enc(cfg_.totp_issuer) + "&algorithm=SHA1&digits=6&period=30";
  return Enrollment{b32, uri};
}

std::vector<std::string> Identity::mfa_confirm(const std::string& user_id, const std::string& code) {
  const std::string key = "mfa:" + user_id;
  if (uint64_t wait = throttle_wait(key))
    throw AuthError(429, "too_many_attempts", "too many failed attempts; try again later", wait);
  auto t = store_.begin();
  auto cur = load_user(t.get(), user_id);
  if (!cur) throw AuthError(404, "not_found", "no such user");
  User u = cur->first;
  if (u.pending_totp_secret.empty()) throw AuthError(409, "no_enrollment", "start an enrollment first");
  u.totp_secret = u.pending_totp_secret;
  if (!check_totp(u, code)) {
    note_failure(key);
    throw AuthError(422, "invalid_mfa_code", "invalid authentication code");
  }
  clear_failures(key);
  u.pending_totp_secret.clear();
  u.mfa_enabled = true;
  std::vector<std::string> codes;
  u.recovery_hashes.clear();
  for (int i = 0; i < 10; ++i) {
    std::string c = base32(random_bytes(10));  // 80 bits, 16 characters
    u.recovery_hashes.push_back(sha256_hex(c));
    codes.push_back(c.substr(0, 4) + "-" + c.substr(4, 4) + "-" + c.substr(8, 4) + "-" + c.substr(12, 4));
  }
  u.updated_ms = now();
  put_user(*t, u, cur->second);
  t->commit();
  return codes;
}

void Identity::mfa_disable(const std::string& user_id, const std::string& password, const std::string& code) {
  const std::string key = "mfa:" + user_id;
  if (uint64_t wait = throttle_wait(key))
    throw AuthError(429, "too_many_attempts", "too many failed attempts; try again later", wait);
  // argon2id before the write transaction, as in login: it must not hold up other writers.
  auto snapshot = load_user(nullptr, user_id);
  if (!snapshot) throw AuthError(404, "not_found", "no such user");
  bool password_ok = verify_password(snapshot->first.password_hash, password);
  auto t = store_.begin();
  auto cur = load_user(t.get(), user_id);
  if (!cur) throw AuthError(404, "not_found", "no such user");
  User u = cur->first;
  if (!u.mfa_enabled) throw AuthError(409, "mfa_disabled", "MFA is not enabled");
  if (u.password_hash != snapshot->first.password_hash) password_ok = false;  // changed meanwhile: retry
  if (!password_ok || !(check_totp(u, code) || use_recovery_code(u, code))) {
    note_failure(key);
    throw AuthError(403, "invalid_credentials", "password or authentication code is wrong");
  }
  clear_failures(key);
  u.mfa_enabled = false;
  u.totp_secret.clear();
  u.recovery_hashes.clear();
  u.updated_ms = now();
  put_user(*t, u, cur->second);
  t->commit();
}

int64_t Identity::mfa_verify(const Authenticated& who, const std::string& code) {
  const std::string key = "mfa:" + who.user.id;
  if (uint64_t wait = throttle_wait(key))
    throw AuthError(429, "too_many_attempts", "too many failed attempts; try again later", wait);
  auto t = store_.begin();
  auto cur = load_user(t.get(), who.user.id);
  if (!cur) throw AuthError(404, "not_found", "no such user");
  User u = cur->first;
  if (!u.mfa_enabled) throw AuthError(409, "mfa_disabled", "MFA is not enabled");
  if (!check_totp(u, code) && !use_recovery_code(u, code)) {
    note_failure(key);
    throw AuthError(401, "invalid_mfa_code", "invalid authentication code");
  }
  clear_failures(key);
  put_user(*t, u, cur->second);
  auto srec = t->get(kNs, session_key(who.token_hash));
  if (!srec) throw AuthError(401, "unauthenticated", "the session has ended");
  Session s = nlohmann::json::parse(srec->value).get<Session>();
  s.mfa_at_ms = now();
  t->put(kNs, session_key(who.token_hash), nlohmann::json(s).dump(), srec->version);
  t->commit();
  return s.mfa_at_ms;
}

}  // namespace vellum::host
