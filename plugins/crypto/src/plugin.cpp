// The crypto plugin: installs the AES-256-GCM storage barrier backed by a
// versioned keyring that the root key unseals, rotates keys by encryption
// count and rewraps old values in the background (ABI 1.1 barrier_reseal).
// Formats are described in keyring.hpp and README.md.
#include <vellum/sdk.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include <vellum/services/crypto_v1.h>

#include "config.hpp"
#include "envelope.hpp"
#include "keychain.hpp"
#include "keyring.hpp"
#include "pubkeys.hpp"
#include "transit.hpp"

namespace {

using vellum::Error;
using namespace vellum::crypto;

// Owned by the host from set_barrier on (it may outlive the plugin instance
// while the store shuts down), shared with the plugin for the keyring.
struct BarrierState {
  const vellum_host_api_v1* api;
  vellum_plugin* self;
  Key root;
  std::shared_ptr<Keyring> keyring;
  std::atomic<bool> root_failed{false};
  ~BarrierState() { cleanse(root.data(), root.size()); }
};

// Set on the maintenance thread while it runs a rewrap batch: the host
// unseals each row of the batch on that same thread, so the barrier can count
// the rows it finds under older key versions.
struct RewrapTally {
  uint32_t current = 0;
  uint64_t old_versions = 0;
};
thread_local RewrapTally* t_rewrap_tally = nullptr;

bool is_keyring_context(vellum_bytes ctx) {
  return ctx.size == kKeyringContext.size() && std::memcmp(ctx.data, kKeyringContext.data(), ctx.size) == 0;
}

vellum_status hand_out(BarrierState* st, const std::string& bytes, vellum_buffer* out) {
  auto* p = static_cast<uint8_t*>(st->api->alloc(bytes.size() ? bytes.size() : 1));
  if (!p) return VELLUM_ERR_LIMIT;
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  *out = vellum_buffer{p, bytes.size()};
  return VELLUM_OK;
}

vellum_status barrier_fail(BarrierState* st, vellum_status s, std::string_view msg) {
  st->api->set_error(st->self, vellum::to_c(msg));
  return s;
}

vellum_status barrier_seal(void* user, vellum_bytes ctx, vellum_bytes in, vellum_buffer* out) noexcept {
  auto* st = static_cast<BarrierState*>(user);
  try {
    const std::string_view c = vellum::to_sv(ctx), v = vellum::to_sv(in);
    if (is_keyring_context(ctx)) return hand_out(st, seal_with_root(st->root, c, v), out);
    if (!st->keyring->loaded()) return barrier_fail(st, VELLUM_ERR_STATE, "the keyring is not loaded yet");
    const size_t n = v.size() + kOverhead;
    auto* p = static_cast<uint8_t*>(st->api->alloc(n));
    if (!p) return VELLUM_ERR_LIMIT;
    try {
      st->keyring->seal_to(c, v, p);
    } catch (...) {
      st->api->free(p);
      throw;
    }
    *out = vellum_buffer{p, n};
    return VELLUM_OK;
  } catch (const std::exception& e) {
    return barrier_fail(st, VELLUM_ERR_INTERNAL, e.what());
  }
}

vellum_status barrier_unseal(void* user, vellum_bytes ctx, vellum_bytes in, vellum_buffer* out) noexcept {
  auto* st = static_cast<BarrierState*>(user);
  try {
    const std::string_view c = vellum::to_sv(ctx), v = vellum::to_sv(in);
    if (is_keyring_context(ctx)) {
      try {
        std::string plain = unseal_with_root(st->root, c, v);
        vellum_status s = hand_out(st, plain, out);
        cleanse(plain.data(), plain.size());
        return s;
      } catch (const UnsealError& e) {
        st->root_failed = true;
        return barrier_fail(st, VELLUM_ERR_PERMISSION_DENIED, e.what());
      }
    }
    if (!st->keyring->loaded()) return barrier_fail(st, VELLUM_ERR_STATE, "the keyring is not loaded yet");
    if (v.size() < kOverhead) return barrier_fail(st, VELLUM_ERR_INTERNAL, "sealed value is truncated");
    const size_t n = v.size() - kOverhead;
    auto* p = static_cast<uint8_t*>(st->api->alloc(n ? n : 1));
    if (!p) return VELLUM_ERR_LIMIT;
    try {
      st->keyring->unseal_to(c, v, p);
    } catch (...) {
      st->api->free(p);
      throw;
    }
    if (t_rewrap_tally && Keyring::version_of(v) < t_rewrap_tally->current) ++t_rewrap_tally->old_versions;
    *out = vellum_buffer{p, n};
    return VELLUM_OK;
  } catch (const std::exception& e) {
    return barrier_fail(st, VELLUM_ERR_INTERNAL, e.what());
  }
}

// Records in the plugin's namespace under "<prefix><name>", sealed by the
// barrier like every other value: transit keys under "keys/", key chains
// under "chain/" (managed chains hold their keys in the record).
class KvRecords : public TransitStore, public ChainStore {
 public:
  KvRecords(vellum::Host& host, std::string prefix) : host_(host), prefix_(std::move(prefix)) {}
  std::optional<std::pair<std::string, uint64_t>> load(std::string_view name) override {
    auto v = host_.get(prefix_ + std::string(name));
    if (!v) return std::nullopt;
    return std::make_pair(std::move(v->data), v->version);
  }
  uint64_t store(std::string_view name, std::string_view record, uint64_t expected) override {
    try {
      return host_.put(prefix_ + std::string(name), record, expected == 0 ? VELLUM_VERSION_ABSENT : expected);
    } catch (const Error& e) {
      if (e.status() == VELLUM_ERR_CONFLICT)
        throw TransitError(VELLUM_ERR_CONFLICT, "record changed concurrently");
      throw;
    }
  }
  std::vector<std::string> list() override {
    std::vector<std::string> ids;
    vellum::Host::ScanOptions o;
    o.prefix = prefix_;
    host_.scan(o, [&](std::string_view k, std::string_view, uint64_t) {
      ids.emplace_back(k.substr(prefix_.size()));
      return true;
    });
    return ids;
  }

 private:
  vellum::Host& host_;
  std::string prefix_;
};

uint16_t http_status(vellum_status s) {
  switch (s) {
    case VELLUM_ERR_INVALID_ARGUMENT:
      return 400;
    case VELLUM_ERR_PERMISSION_DENIED:
      return 403;
    case VELLUM_ERR_NOT_FOUND:
      return 404;
    case VELLUM_ERR_CONFLICT:
      return 409;
    case VELLUM_ERR_LIMIT:
      return 413;
    case VELLUM_ERR_UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

class Crypto : public vellum::Plugin {
 public:
  static constexpr const char* kName = "crypto";
  static constexpr const char* kVersion = "0.1.0";
  static constexpr const char* kDescription = "AES-256-GCM storage barrier with a rotating keyring";
  static constexpr uint32_t kMinMinor = 1;  // barrier_reseal
  static constexpr const char* kProvides[] = {"crypto", nullptr};

  static void validate(std::string_view json) {
    try {
      (void)parse_config(json);
    } catch (const std::invalid_argument& e) {
      throw Error(VELLUM_ERR_INVALID_ARGUMENT, e.what());
    }
  }

  Crypto(vellum::Host& host, std::string_view json) : Plugin(host) {
    try {
      cfg_ = parse_config(json);
    } catch (const std::invalid_argument& e) {
      throw Error(VELLUM_ERR_INVALID_ARGUMENT, e.what());
    }
    // A reservation of at most 1/16 of the rotation threshold: a crash may
    // over-count by that much, never under-count (see README, "Counting").
    lease_ = std::clamp<uint64_t>(cfg_.rotate_after_encryptions / 16, 1, 65536);
    keyring_ = std::make_shared<Keyring>();

    // The barrier goes in first: the keyring row itself is read through it.
    auto* st = new BarrierState{host.api(), host.self(), cfg_.root_key, keyring_};
    cleanse(cfg_.root_key.data(), cfg_.root_key.size());
    vellum_barrier_v1 b{};
    b.struct_size = sizeof b;
    b.name = "aes-256-gcm keyring (crypto plugin)";
    b.seal = barrier_seal;
    b.unseal = barrier_unseal;
    b.user = st;
    b.user_free = [](void* p) { delete static_cast<BarrierState*>(p); };
    host.check(host.api()->set_barrier(host.self(), &b));  // the host owns st from here

    std::optional<vellum::Value> row;
    bool rekey = cfg_.new_root_key.has_value();
    try {
      row = host.get("keyring");
    } catch (const Error& e) {
      if (!st->root_failed) throw;
      // A rotation that already happened (new_root_key still configured,
      // root_key not yet replaced): the new key opens the keyring.
      if (!cfg_.new_root_key)
        throw Error(VELLUM_ERR_PERMISSION_DENIED,
                    "the root key does not open the keyring: root_key is not the key this data directory was "
                    "created with (or the keyring row is damaged); refusing to start");
      st->root = *cfg_.new_root_key;
      st->root_failed = false;
      try {
        row = host.get("keyring");
      } catch (const Error&) {
        throw Error(VELLUM_ERR_PERMISSION_DENIED,
                    "neither root_key nor new_root_key opens the keyring; refusing to start");
      }
      rekey = false;
      host.warn(
          "the keyring is already sealed with new_root_key: set root_key to it and remove new_root_key");
    }
    if (row) {
      KeyringRecord rec = parse_keyring(row->data);
      cleanse(row->data.data(), row->data.size());
      keyring_->load(rec);
      keyring_row_version_ = row->version;
      rewrap_active_ = rec.rewrap_pending;
      // Root-key rotation: from here the barrier seals the keyring row with
      // the new key; the persist below re-seals it in one atomic write.
      if (rekey) st->root = *cfg_.new_root_key;
      persist(keyring_->reservation(lease_));  // resume counting above what may have been used
      if (rekey) {
        root_rotated_ = true;
        host.warn(
            "root key rotated: the keyring is now sealed with new_root_key; set root_key to it and remove "
            "new_root_key (the old root key no longer opens this data directory)");
      }
      host.info("keyring loaded: current key version " + std::to_string(rec.current) + " of " +
                std::to_string(rec.versions.size()));
    } else {
      KeyringRecord rec;
      rec.current = 1;
      rec.versions.push_back(KeyVersionRecord{1, host.now_ms(), lease_, random_key()});
      persist(rec);
      host.info("new keyring created with key version 1");
    }

    if (cfg_.new_root_key) {  // the barrier holds its own copy
      cleanse(cfg_.new_root_key->data(), cfg_.new_root_key->size());
      cfg_.new_root_key.reset();
    }

    m_version_ = host.metric(VELLUM_METRIC_GAUGE, "keyring_version", "Current data-encryption key version");
    m_used_ = host.metric(VELLUM_METRIC_GAUGE, "current_key_encryptions",
                          "Encryptions under the current key version (over-counts after a restart)");
    m_rotations_ = host.metric(VELLUM_METRIC_COUNTER, "rotations_total", "Keyring rotations");
    m_resealed_ =
        host.metric(VELLUM_METRIC_COUNTER, "rewrap_resealed_total", "Values moved to the current key");
    m_rewrap_pending_ = host.metric(VELLUM_METRIC_GAUGE, "rewrap_pending", "1 while a rewrap is in progress");
    update_metrics();

    transit_store_ = std::make_unique<KvRecords>(this->host(), "keys/");
    transit_ = std::make_unique<Transit>(*transit_store_, [h = this->host()] { return h.now_ms(); });
    chain_store_ = std::make_unique<KvRecords>(this->host(), "chain/");
    chains_ = std::make_unique<KeyChains>(
        *chain_store_, [h = this->host()] { return h.now_ms(); },
        [this](const std::string& user) { return encryption_pems(user); },
        [this](const std::string& kid) -> std::optional<std::string> {
          auto rec = load_pubkey(kid);
          if (!rec || rec->value("use", "") != "encryption") return std::nullopt;
          return rec->value("user_id", "");
        },
        static_cast<int64_t>(cfg_.key_chain_rotate_after_s) * 1000);
    // Sweep for scheduled rotations four times per period, between 1 s and 60 s.
    sweep_every_ticks_ = std::clamp<uint64_t>(cfg_.key_chain_rotate_after_s * 1000 / 4 / kTickMs, 5, 300);
    fill_vtable();
    host.provide(VELLUM_CRYPTO_SERVICE, VELLUM_CRYPTO_MAJOR, VELLUM_CRYPTO_MINOR, &vtable_, this);
  }

  void start() override {
    auto& h = host();
    h.route(
        "GET", "/v1/crypto/status", [this](vellum::Request& req) { status(req); }, 0,
        "Keyring version, encryption counts and rewrap progress (administrators)");
    h.route(
        "POST", "/v1/crypto/keyring/rotate", [this](vellum::Request& req) { rotate_route(req); }, 0,
        "Rotate the storage keyring now and rewrap old values (administrators)");
    if (root_rotated_) {
      // Whoever held the old root key could open the old storage keys (from
      // a backup): move every value to a key the old root never sealed.
      std::lock_guard lk(mu_);
      rotate_locked(nullptr, "root key rotated");
      host().audit("crypto.root.rotate", "crypto/keyring", VELLUM_OUTCOME_SUCCESS, nullptr, "{}");
    }
    timer_ = h.timer(kTickMs, kTickMs, [this] { maintain(); });
    add_transit_routes();
    add_pubkey_routes();
    add_chain_routes();
  }

  void stop() override { timer_.reset(); }

 private:
  static constexpr uint64_t kTickMs = 200;

  // Writes the keyring row (sealed with the root key by the barrier) and, once
  // durable, applies it in memory. Throws on failure; memory stays as it was.
  // Compare-and-set on the row version: a second process on the same data
  // directory cannot silently overwrite the keyring.
  void persist(const KeyringRecord& rec) {
    std::string blob = serialize_keyring(rec);
    try {
      keyring_row_version_ =
          host().put("keyring", blob, keyring_row_version_ ? keyring_row_version_ : VELLUM_VERSION_ABSENT);
    } catch (...) {
      cleanse(blob.data(), blob.size());
      throw;
    }
    cleanse(blob.data(), blob.size());
    keyring_->apply(rec);
  }

  uint32_t rotate_locked(const vellum::Request* req, const char* why) {
    Key k = random_key();
    KeyringRecord rec = keyring_->with_new_version(k, host().now_ms(), lease_);
    cleanse(k.data(), k.size());
    persist(rec);
    rewrap_active_ = true;
    rewrap_cursor_.clear();
    rewrap_resealed_ = 0;
    rewrap_old_found_ = 0;
    ++rotations_;
    publish("crypto.keyring.rotated", nlohmann::json{{"version", rec.current}, {"reason", why}});
    m_rotations_.record(1);
    host().info("keyring rotated to version " + std::to_string(rec.current) + " (" + why +
                "); rewrap started");
    try {
      host().audit("crypto.keyring.rotate", "crypto/keyring", VELLUM_OUTCOME_SUCCESS, req,
                   nlohmann::json{{"version", rec.current}, {"reason", why}}.dump());
    } catch (const Error& e) {
      host().warn(std::string("audit of the keyring rotation failed: ") + e.what());
    }
    update_metrics();
    return rec.current;
  }

  void rewrap_step_locked() {
    vellum_buffer next{};
    uint64_t n = 0;
    int done = 0;
    const auto* api = host().api();
    RewrapTally tally{keyring_->current_version(), 0};
    t_rewrap_tally = &tally;
    vellum_status s = api->barrier_reseal(host().self(), vellum::to_bytes(rewrap_cursor_), cfg_.rewrap_batch,
                                          &next, &n, &done);
    std::string cursor = next.data ? std::string(reinterpret_cast<const char*>(next.data), next.size) : "";
    t_rewrap_tally = nullptr;
    api->free(next.data);
    host().check(s);
    rewrap_old_found_ += tally.old_versions;
    rewrap_cursor_ = std::move(cursor);
    rewrap_resealed_ += n;
    rewrap_resealed_total_ += n;
    m_resealed_.record(static_cast<double>(n));
    if (done) {
      KeyringRecord rec = keyring_->snapshot();
      rec.rewrap_pending = false;
      persist(rec);
      rewrap_active_ = false;
      ++rewrap_passes_;
      host().info("rewrap finished: " + std::to_string(rewrap_resealed_) + " values now under key version " +
                  std::to_string(rec.current) + " (" + std::to_string(rewrap_old_found_) +
                  " were under older versions)");
      publish("crypto.keyring.rewrapped", nlohmann::json{{"version", rec.current},
                                                         {"resealed", rewrap_resealed_},
                                                         {"old_version_values", rewrap_old_found_}});
      if (rewrap_resealed_ >= cfg_.rotate_after_encryptions / 2)
        host().warn(
            "rotate_after_encryptions is close to the number of stored values: every rewrap pass uses "
            "a large share of the new key's budget; raise it");
    }
  }

  void publish(const char* topic, const nlohmann::json& payload) {
    try {
      host().publish(topic, payload.dump());
    } catch (const Error& e) {
      host().warn(std::string("publishing ") + topic + " failed: " + e.what());
    }
  }

  void maintain() {
    if (++ticks_ % sweep_every_ticks_ == 0) {
      try {
        for (const auto& ch : chains_->rotate_due()) report(ch, nullptr, "scheduled");
      } catch (const std::exception& e) {
        host().warn(std::string("key chain rotation sweep failed (retrying): ") + e.what());
      }
    }
    std::lock_guard lk(mu_);
    try {
      const uint32_t cur = keyring_->current_version();
      if (!rewrap_active_ && keyring_->used(cur) >= cfg_.rotate_after_encryptions)
        rotate_locked(nullptr, "rotate_after_encryptions reached");
      const uint32_t now = keyring_->current_version();
      if (keyring_->used(now) + lease_ / 2 >= keyring_->reserved(now)) persist(keyring_->reservation(lease_));
      if (rewrap_active_) rewrap_step_locked();
    } catch (const std::exception& e) {
      host().warn(std::string("keyring maintenance failed (retrying): ") + e.what());
    }
    update_metrics();
  }

  void update_metrics() {
    const uint32_t cur = keyring_->current_version();
    m_version_.record(cur);
    m_used_.record(static_cast<double>(keyring_->used(cur)));
    m_rewrap_pending_.record(rewrap_active_ ? 1 : 0);
  }

  nlohmann::json status_json() {
    std::lock_guard lk(mu_);
    nlohmann::json versions = nlohmann::json::array();
    const KeyringRecord rec = keyring_->snapshot();
    for (const auto& v : rec.versions)
      versions.push_back({{"version", v.version},
                          {"created_ms", v.created_ms},
                          {"encryptions", keyring_->used(v.version)},
                          {"reserved", v.reserved}});
    return {{"keyring_version", rec.current},
            {"versions", versions},
            {"rotate_after_encryptions", cfg_.rotate_after_encryptions},
            {"rotations", rotations_},
            {"rewrap",
             {{"pending", rewrap_active_},
              {"done", !rewrap_active_},
              {"target_version", rec.current},
              {"resealed", rewrap_resealed_},
              {"old_version_values_found", rewrap_old_found_},
              // A finished pass covered every row: none is left under an older version.
              {"values_at_old_versions", rewrap_active_ ? nlohmann::json() : nlohmann::json(0)},
              {"resealed_total", rewrap_resealed_total_},
              {"passes", rewrap_passes_}}}};
  }

  bool admin(vellum::Request& req, const char* action) {
    if (host().authorize(req, action, "crypto/keyring")) return true;
    req.problem(403, "Forbidden", "administrators only");
    return false;
  }

  void status(vellum::Request& req) {
    if (!admin(req, "crypto.status")) return;
    req.json(200, status_json().dump());
  }

  void rotate_route(vellum::Request& req) {
    if (!admin(req, "crypto.keyring.rotate")) return;
    uint32_t v = 0;
    {
      std::lock_guard lk(mu_);
      v = rotate_locked(&req, "requested through the API");
    }
    req.json(200, nlohmann::json{{"keyring_version", v}, {"rewrap", "started"}}.dump());
  }

  // ---------------------------------------------------------------- service
  // Runs f, turning exceptions into a status with a message (no secrets).
  template <class F>
  static vellum_status svc(void* inst, F&& f) noexcept {
    auto* self = static_cast<Crypto*>(inst);
    const auto* api = self->host().api();
    try {
      f(*self);
      return VELLUM_OK;
    } catch (const TransitError& e) {
      api->set_error(self->host().self(), vellum::to_c(e.what()));
      return e.status;
    } catch (const Error& e) {
      api->set_error(self->host().self(), vellum::to_c(e.what()));
      return e.status();
    } catch (const std::exception& e) {
      api->set_error(self->host().self(), vellum::to_c(e.what()));
      return VELLUM_ERR_INTERNAL;
    }
  }
  uint8_t* alloc(size_t n) { return static_cast<uint8_t*>(host().api()->alloc(n ? n : 1)); }
  void give(const std::string& bytes, vellum_buffer* out) {
    if (!out) throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "missing output buffer");
    uint8_t* p = alloc(bytes.size());
    if (!p) throw TransitError(VELLUM_ERR_LIMIT, "out of memory");
    if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
    *out = vellum_buffer{p, bytes.size()};
  }
  static std::optional<KeyType> type_from_abi(int32_t t) {
    if (t < 1 || t > 4) return std::nullopt;
    return static_cast<KeyType>(t);
  }

  void fill_vtable() {
    vtable_.struct_size = sizeof vtable_;
    vtable_.create_key = [](void* i, vellum_str name, int32_t type, vellum_str owner) noexcept {
      return svc(i, [&](Crypto& c) {
        auto t = type_from_abi(type);
        if (!t) throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "unknown key type");
        c.transit_->create_key(vellum::to_sv(name), *t, vellum::to_sv(owner));
      });
    };
    vtable_.key_info = [](void* i, vellum_str name, vellum_crypto_key_info_v1* out) noexcept {
      return svc(i, [&](Crypto& c) {
        if (!out || out->struct_size < sizeof(uint32_t))
          throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "set out->struct_size");
        auto k = c.transit_->info(vellum::to_sv(name));
        vellum_crypto_key_info_v1 r{};
        r.struct_size = std::min<uint32_t>(out->struct_size, sizeof r);
        r.type = static_cast<int32_t>(k.type);
        r.latest_version = k.latest;
        r.min_decryption_version = k.min_decryption;
        r.min_encryption_version = k.min_encryption;
        r.created_ms = k.created_ms;
        std::memcpy(out, &r, r.struct_size);
      });
    };
    vtable_.rotate = [](void* i, vellum_str name, uint32_t* out) noexcept {
      return svc(i, [&](Crypto& c) {
        uint32_t v = c.transit_->rotate(vellum::to_sv(name));
        if (out) *out = v;
      });
    };
    vtable_.set_min_versions = [](void* i, vellum_str name, uint32_t dec, uint32_t enc) noexcept {
      return svc(i, [&](Crypto& c) { c.transit_->set_min_versions(vellum::to_sv(name), dec, enc); });
    };
    vtable_.encrypt = [](void* i, vellum_str name, uint32_t ver, uint32_t flags, vellum_bytes pt,
                         vellum_bytes ctx, vellum_buffer* out) noexcept {
      return svc(i, [&](Crypto& c) {
        if (!out) throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "missing output buffer");
        if (flags & ~VELLUM_CRYPTO_BINARY)
          throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "unknown encrypt flags");
        auto o = c.transit_->encrypt(vellum::to_sv(name), ver, vellum::to_sv(pt), vellum::to_sv(ctx),
                                     (flags & VELLUM_CRYPTO_BINARY) ? Form::Binary : Form::Text,
                                     [&](size_t n) { return c.alloc(n); });
        *out = vellum_buffer{o.data, o.size};
      });
    };
    vtable_.decrypt = [](void* i, vellum_str name, vellum_str ct, vellum_bytes ctx,
                         vellum_buffer* out) noexcept {
      return svc(i, [&](Crypto& c) {
        if (!out) throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "missing output buffer");
        auto o = c.transit_->decrypt(
            vellum::to_sv(name), vellum::to_sv(ct), vellum::to_sv(ctx), [&](size_t n) { return c.alloc(n); },
            [&](uint8_t* p) { c.host().api()->free(p); });
        *out = vellum_buffer{o.data, o.size};
      });
    };
    vtable_.rewrap = [](void* i, vellum_str name, vellum_str ct, vellum_bytes ctx,
                        vellum_buffer* out) noexcept {
      return svc(i, [&](Crypto& c) {
        c.give(c.transit_->rewrap(vellum::to_sv(name), vellum::to_sv(ct), vellum::to_sv(ctx)), out);
      });
    };
    vtable_.generate_data_key = [](void* i, vellum_str name, uint32_t bits, vellum_bytes ctx,
                                   vellum_buffer* wrapped, vellum_buffer* plain) noexcept {
      return svc(i, [&](Crypto& c) {
        auto dk = c.transit_->generate_data_key(vellum::to_sv(name), bits, vellum::to_sv(ctx), Form::Text);
        c.give(dk.wrapped, wrapped);
        if (plain) c.give(dk.plaintext, plain);
        cleanse(dk.plaintext.data(), dk.plaintext.size());
      });
    };
    vtable_.hmac = [](void* i, vellum_str name, vellum_bytes in, vellum_buffer* out) noexcept {
      return svc(i,
                 [&](Crypto& c) { c.give(c.transit_->hmac(vellum::to_sv(name), vellum::to_sv(in)), out); });
    };
    vtable_.sign = [](void* i, vellum_str name, vellum_bytes in, vellum_buffer* out) noexcept {
      return svc(i,
                 [&](Crypto& c) { c.give(c.transit_->sign(vellum::to_sv(name), vellum::to_sv(in)), out); });
    };
    vtable_.verify = [](void* i, vellum_str name, vellum_bytes in, vellum_str sig, int* valid) noexcept {
      return svc(i, [&](Crypto& c) {
        bool ok = c.transit_->verify(vellum::to_sv(name), vellum::to_sv(in), vellum::to_sv(sig));
        if (valid) *valid = ok ? 1 : 0;
      });
    };
    // minor 1: key chains
    vtable_.team_key_create = [](void* i, vellum_str team, vellum_str owner, int32_t mode) noexcept {
      return svc(i, [&](Crypto& c) {
        KeyChains::CreateSpec s;
        s.id = std::string(vellum::to_sv(team));
        s.owner = std::string(vellum::to_sv(owner));
        s.mode = mode_name(mode);
        c.report(c.chains_->create(s), nullptr, "created");
      });
    };
    vtable_.team_add_member = [](void* i, vellum_str team, vellum_str user) noexcept {
      return svc(i, [&](Crypto& c) {
        const std::string id(vellum::to_sv(team)), u(vellum::to_sv(user));
        c.chains_->add_member(id, u);
        c.audit_chain(nullptr, "crypto.chain.member.add", id, {{"user_id", u}});
      });
    };
    vtable_.team_remove_member = [](void* i, vellum_str team, vellum_str user, uint32_t* out) noexcept {
      return svc(i, [&](Crypto& c) {
        const std::string id(vellum::to_sv(team)), u(vellum::to_sv(user));
        auto ch = c.chains_->remove_member(id, u);
        c.audit_chain(nullptr, "crypto.chain.member.remove", id, {{"user_id", u}});
        c.report(ch, nullptr, "member removed");
        if (out) *out = ch.chain["current_version"].get<uint32_t>();
      });
    };
    vtable_.document_key_create = [](void* i, vellum_str doc, vellum_str team, vellum_str owner,
                                     int32_t mode) noexcept {
      return svc(i, [&](Crypto& c) {
        KeyChains::CreateSpec s;
        s.id = std::string(vellum::to_sv(doc));
        s.kind = "document";
        s.parent = std::string(vellum::to_sv(team));
        s.owner = std::string(vellum::to_sv(owner));
        s.mode = mode_name(mode);
        c.report(c.chains_->create(s), nullptr, "created");
      });
    };
    vtable_.keychain_rotate = [](void* i, vellum_str id, vellum_str reason, uint32_t* out) noexcept {
      return svc(i, [&](Crypto& c) {
        std::string why(vellum::to_sv(reason));
        if (why.empty()) why = "requested";
        auto ch = c.chains_->rotate(vellum::to_sv(id), why);
        c.report(ch, nullptr, why);
        if (out) *out = ch.chain["current_version"].get<uint32_t>();
      });
    };
    vtable_.keychain_info = [](void* i, vellum_str id, vellum_buffer* out) noexcept {
      return svc(i, [&](Crypto& c) { c.give(c.chains_->view(vellum::to_sv(id), "", true).dump(), out); });
    };
  }

  // ---------------------------------------------------------------- HTTP
  using Json = nlohmann::json;

  static Json body_json(vellum::Request& req) {
    auto j = Json::parse(req.body(), nullptr, false);
    if (!j.is_object()) throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "the body must be a JSON object");
    return j;
  }
  static std::string str_field(const Json& j, const char* k, bool required = true) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) {
      if (required) throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, std::string("'") + k + "' is required");
      return {};
    }
    if (!it->is_string())
      throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, std::string("'") + k + "' must be a string");
    return it->get<std::string>();
  }
  static std::string b64_field(const Json& j, const char* k, bool required = true) {
    std::string s = str_field(j, k, required);
    if (s.size() > 2 * kMaxTransitInput)
      throw TransitError(VELLUM_ERR_LIMIT, std::string("'") + k + "' is larger than 1 MiB");
    auto raw = b64decode(s);
    if (!raw) throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, std::string("'") + k + "' is not valid base64");
    return *raw;
  }
  static uint32_t uint_field(const Json& j, const char* k, uint32_t dflt) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) return dflt;
    if (!it->is_number_unsigned() || it->get<uint64_t>() > UINT32_MAX)
      throw TransitError(VELLUM_ERR_INVALID_ARGUMENT,
                         std::string("'") + k + "' must be a non-negative integer");
    return it->get<uint32_t>();
  }

  static Json info_json(const TransitKeyInfo& k) {
    Json vs = Json::array();
    for (const auto& v : k.versions) {
      Json e = {{"version", v.version}, {"created_ms", v.created_ms}};
      if (!v.public_key_pem.empty()) e["public_key"] = v.public_key_pem;
      vs.push_back(e);
    }
    return {{"name", k.name},
            {"type", to_string(k.type)},
            {"owner", k.owner},
            {"created_ms", k.created_ms},
            {"latest_version", k.latest},
            {"min_decryption_version", k.min_decryption},
            {"min_encryption_version", k.min_encryption},
            {"versions", vs}};
  }

  // Answers every failure as problem+json; messages never carry input bytes.
  template <class F>
  void guarded_route(vellum::Request& req, F&& f) {
    try {
      f();
    } catch (const TransitError& e) {
      req.problem(http_status(e.status), "", e.what());
    } catch (const CryptoError& e) {
      host().error(std::string("crypto operation failed: ") + e.what());
      req.problem(500, "", "cryptographic operation failed");
    }
  }

  // The key named in the path, if the caller may use it: otherwise 404, so a
  // caller cannot learn which keys other users have.
  std::string authorized_key(vellum::Request& req, const char* action) {
    std::string name(req.param("name").value_or(""));
    auto k = transit_->info(name);
    if (!host().authorize(req, std::string("crypto.key.") + action, "crypto-key/" + name, k.owner))
      throw TransitError(VELLUM_ERR_NOT_FOUND, "no such key");
    return name;
  }

  void audit(vellum::Request& req, const char* action, const std::string& name, const Json& details) {
    host().audit(action, "crypto-key/" + name, VELLUM_OUTCOME_SUCCESS, &req, details.dump());
  }

  void add_transit_routes() {
    auto& h = host();
    auto route = [&](const char* method, const char* path, const char* summary, auto fn) {
      h.route(
          method, path, [this, fn](vellum::Request& req) { guarded_route(req, [&] { fn(req); }); }, 0,
          summary);
    };
    route("POST", "/v1/crypto/keys", "Create a named key (aes256-gcm, hmac, ed25519, ecdsa-p256)",
          [this](vellum::Request& req) {
            auto j = body_json(req);
            std::string name = str_field(j, "name");
            auto type = key_type_from_string(str_field(j, "type"));
            if (!type)
              throw TransitError(VELLUM_ERR_INVALID_ARGUMENT,
                                 "'type' must be one of aes256-gcm, hmac, ed25519, ecdsa-p256");
            auto who = req.principal();
            auto k = transit_->create_key(name, *type, who.user_id);
            audit(req, "crypto.key.create", name, {{"type", to_string(*type)}});
            req.json(201, info_json(k).dump());
          });
    route("GET", "/v1/crypto/keys/{name}", "Key metadata and public keys", [this](vellum::Request& req) {
      req.json(200, info_json(transit_->info(authorized_key(req, "read"))).dump());
    });
    route("POST", "/v1/crypto/keys/{name}/rotate", "Add a key version", [this](vellum::Request& req) {
      std::string name = authorized_key(req, "rotate");
      uint32_t v = transit_->rotate(name);
      audit(req, "crypto.key.rotate", name, {{"version", v}});
      req.json(200, info_json(transit_->info(name)).dump());
    });
    route("POST", "/v1/crypto/keys/{name}/config", "Set min_decryption_version and min_encryption_version",
          [this](vellum::Request& req) {
            std::string name = authorized_key(req, "config");
            auto j = body_json(req);
            auto cur = transit_->info(name);
            uint32_t dec = uint_field(j, "min_decryption_version", cur.min_decryption);
            uint32_t enc = uint_field(j, "min_encryption_version", cur.min_encryption);
            auto k = transit_->set_min_versions(name, dec, enc);
            audit(req, "crypto.key.config", name,
                  {{"min_decryption_version", dec}, {"min_encryption_version", enc}});
            req.json(200, info_json(k).dump());
          });
    route("POST", "/v1/crypto/encrypt/{name}", "Encrypt base64 plaintext", [this](vellum::Request& req) {
      std::string name = authorized_key(req, "encrypt");
      auto j = body_json(req);
      std::string pt = b64_field(j, "plaintext");
      std::string ctx = b64_field(j, "context", false);
      std::string ct = transit_->encrypt(name, pt, ctx, Form::Text, uint_field(j, "key_version", 0));
      cleanse(pt.data(), pt.size());
      req.json(200, Json{{"ciphertext", ct}}.dump());
    });
    route("POST", "/v1/crypto/decrypt/{name}", "Decrypt to base64 plaintext", [this](vellum::Request& req) {
      std::string name = authorized_key(req, "decrypt");
      auto j = body_json(req);
      std::string pt = transit_->decrypt(name, str_field(j, "ciphertext"), b64_field(j, "context", false));
      std::string out = Json{{"plaintext", b64encode(pt)}}.dump();
      cleanse(pt.data(), pt.size());
      req.json(200, out);
      cleanse(out.data(), out.size());
    });
    route("POST", "/v1/crypto/rewrap/{name}", "Re-encrypt a ciphertext with the latest key version",
          [this](vellum::Request& req) {
            std::string name = authorized_key(req, "rewrap");
            auto j = body_json(req);
            req.json(200, Json{{"ciphertext", transit_->rewrap(name, str_field(j, "ciphertext"),
                                                               b64_field(j, "context", false))}}
                              .dump());
          });
    route("POST", "/v1/crypto/datakey/{kind}/{name}", "Generate a data key: kind = plaintext or wrapped",
          [this](vellum::Request& req) {
            std::string name = authorized_key(req, "datakey");
            const auto kind = req.param("kind").value_or("");
            if (kind != "plaintext" && kind != "wrapped")
              throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "kind must be plaintext or wrapped");
            auto j = body_json(req);
            auto dk = transit_->generate_data_key(name, uint_field(j, "bits", 256),
                                                  b64_field(j, "context", false), Form::Text);
            Json r = {{"ciphertext", dk.wrapped}};
            if (kind == "plaintext") r["plaintext"] = b64encode(dk.plaintext);
            cleanse(dk.plaintext.data(), dk.plaintext.size());
            req.json(200, r.dump());
          });
    route("POST", "/v1/crypto/hmac/{name}", "HMAC-SHA256 of base64 input", [this](vellum::Request& req) {
      std::string name = authorized_key(req, "hmac");
      auto j = body_json(req);
      req.json(200, Json{{"hmac", transit_->hmac(name, b64_field(j, "input"))}}.dump());
    });
    route("POST", "/v1/crypto/sign/{name}", "Sign base64 input (Ed25519 or ECDSA P-256)",
          [this](vellum::Request& req) {
            std::string name = authorized_key(req, "sign");
            auto j = body_json(req);
            req.json(200, Json{{"signature", transit_->sign(name, b64_field(j, "input"))}}.dump());
          });
    route("POST", "/v1/crypto/verify/{name}", "Verify a signature or an HMAC", [this](vellum::Request& req) {
      std::string name = authorized_key(req, "verify");
      auto j = body_json(req);
      std::string sig = j.contains("hmac") ? str_field(j, "hmac") : str_field(j, "signature");
      req.json(200, Json{{"valid", transit_->verify(name, b64_field(j, "input"), sig)}}.dump());
    });
  }

  // ---------------------------------------------------------------- public keys
  // "pub/<key id>" → record; "pubuser/<user id>/<key id>" → "" (index).
  std::optional<Json> load_pubkey(const std::string& id) {
    if (id.size() != 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
    auto v = host().get("pub/" + id);
    if (!v) return std::nullopt;
    auto j = Json::parse(v->data, nullptr, false);
    if (!j.is_object()) throw TransitError(VELLUM_ERR_INTERNAL, "stored public key record is damaged");
    return j;
  }

  void add_pubkey_routes() {
    auto& h = host();
    auto route = [&](const char* method, const char* path, const char* summary, auto fn) {
      h.route(
          method, path, [this, fn](vellum::Request& req) { guarded_route(req, [&] { fn(req); }); }, 0,
          summary);
    };
    route("POST", "/v1/crypto/pubkeys",
          "Publish one of your public keys (PEM SPKI) for encryption or signing",
          [this](vellum::Request& req) {
            auto j = body_json(req);
            PublicKeyInfo info;
            try {
              info = inspect_public_key(str_field(j, "public_key"), str_field(j, "use"), cfg_.min_rsa_bits);
            } catch (const std::invalid_argument& e) {
              throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, e.what());
            }
            const std::string uid(req.principal().user_id);
            Json rec = {{"key_id", info.key_id},  {"user_id", uid},
                        {"type", info.type},      {"bits", info.bits},
                        {"use", info.use},        {"algorithm", info.algorithm},
                        {"public_key", info.pem}, {"created_ms", host().now_ms()}};
            auto txn = host().begin();
            try {
              txn.put("pub/" + info.key_id, rec.dump(), VELLUM_VERSION_ABSENT);
            } catch (const Error& e) {
              if (e.status() == VELLUM_ERR_CONFLICT)
                throw TransitError(VELLUM_ERR_CONFLICT, "this public key is already published");
              throw;
            }
            txn.put("pubuser/" + uid + "/" + info.key_id, "", VELLUM_VERSION_ABSENT);
            txn.commit();
            host().audit("crypto.pubkey.publish", "crypto-pubkey/" + info.key_id, VELLUM_OUTCOME_SUCCESS,
                         &req, Json{{"type", info.type}, {"use", info.use}}.dump());
            req.json(201, rec.dump());
          });
    route("GET", "/v1/crypto/pubkeys/{key_id}", "A published public key (any authenticated user)",
          [this](vellum::Request& req) {
            auto rec = load_pubkey(std::string(req.param("key_id").value_or("")));
            if (!rec) throw TransitError(VELLUM_ERR_NOT_FOUND, "no such public key");
            req.json(200, rec->dump());
          });
    route("GET", "/v1/crypto/users/{user_id}/pubkeys", "A user's published public keys",
          [this](vellum::Request& req) {
            const std::string prefix = "pubuser/" + std::string(req.param("user_id").value_or("")) + "/";
            Json keys = Json::array();
            vellum::Host::ScanOptions o;
            o.prefix = prefix;
            o.limit = 1000;
            host().scan(o, [&](std::string_view k, std::string_view, uint64_t) {
              if (auto rec = load_pubkey(std::string(k.substr(prefix.size())))) keys.push_back(*rec);
              return true;
            });
            req.json(200, Json{{"keys", keys}}.dump());
          });
    route("DELETE", "/v1/crypto/pubkeys/{key_id}", "Withdraw a published public key (owner or administrator)",
          [this](vellum::Request& req) {
            const std::string id(req.param("key_id").value_or(""));
            auto rec = load_pubkey(id);
            const std::string owner = rec ? rec->value("user_id", "") : "";
            if (!rec || !host().authorize(req, "crypto.pubkey.delete", "crypto-pubkey/" + id, owner))
              throw TransitError(VELLUM_ERR_NOT_FOUND, "no such public key");
            auto txn = host().begin();
            txn.erase("pub/" + id);
            txn.erase("pubuser/" + owner + "/" + id);
            txn.commit();
            host().audit("crypto.pubkey.withdraw", "crypto-pubkey/" + id, VELLUM_OUTCOME_SUCCESS, &req);
            req.respond(204, "text/plain", "");
          });
  }

  // ---------------------------------------------------------------- key chains
  static std::string mode_name(int32_t mode) {
    if (mode == VELLUM_CRYPTO_KEYS_MANAGED) return "managed";
    if (mode == VELLUM_CRYPTO_KEYS_E2EE) return "e2ee";
    throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "mode must be VELLUM_CRYPTO_KEYS_MANAGED or _E2EE");
  }

  // PEMs of the encryption keys a user has published.
  std::vector<std::string> encryption_pems(const std::string& user) {
    std::vector<std::string> pems;
    const std::string prefix = "pubuser/" + user + "/";
    vellum::Host::ScanOptions o;
    o.prefix = prefix;
    o.limit = 100;
    host().scan(o, [&](std::string_view k, std::string_view, uint64_t) {
      auto rec = load_pubkey(std::string(k.substr(prefix.size())));
      if (rec && rec->value("use", "") == "encryption") pems.push_back(rec->value("public_key", ""));
      return true;
    });
    return pems;
  }

  void audit_chain(const vellum::Request* req, const char* action, const std::string& id,
                   const Json& details) {
    host().audit(action, "crypto-chain/" + id, VELLUM_OUTCOME_SUCCESS, req, details.dump());
  }

  // Audits and announces every rotation (or "rotation due") a change caused.
  void report(const KeyChains::Change& ch, const vellum::Request* req, const std::string& reason) {
    for (const auto& [id, v] : ch.rotated) {
      audit_chain(req, "crypto.chain.rotate", id, {{"version", v}, {"reason", reason}});
      publish("crypto.chain.rotated", Json{{"id", id}, {"version", v}, {"reason", reason}});
    }
    for (const auto& id : ch.marked_due) {
      audit_chain(req, "crypto.chain.rotation_due", id, {{"reason", reason}});
      publish("crypto.chain.rotation_due", Json{{"id", id}, {"reason", reason}});
    }
  }

  bool chain_manager(vellum::Request& req, const Json& rec) {
    const std::string id = rec["id"];
    return host().authorize(req, "crypto.chain.manage", "crypto-chain/" + id,
                            rec["owner"].get<std::string>());
  }
  bool chain_reader(vellum::Request& req, const std::string& id) {
    const std::string me(req.principal().user_id);
    auto r = chains_->readers(id);
    return std::find(r.begin(), r.end(), me) != r.end();
  }
  // The chain in the path if the caller may see it (else 404: no enumeration).
  Json chain_for(vellum::Request& req, bool* manager = nullptr) {
    const std::string id(req.param("id").value_or(""));
    Json rec = chains_->raw(id);
    const bool m = chain_manager(req, rec);
    if (!m && !chain_reader(req, id)) throw TransitError(VELLUM_ERR_NOT_FOUND, "no such key chain");
    if (manager) *manager = m;
    return rec;
  }
  static std::map<std::string, std::string> wraps_field(const Json& j) {
    std::map<std::string, std::string> out;
    auto it = j.find("wraps");
    if (it == j.end() || it->is_null()) return out;
    if (!it->is_object())
      throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "'wraps' must map user ids to envelopes");
    for (const auto& [u, e] : it->items()) {
      if (!e.is_string())
        throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "'wraps' must map user ids to envelopes (strings)");
      out[u] = e.get<std::string>();
    }
    return out;
  }
  Json chain_view(vellum::Request& req, const std::string& id, bool manager) {
    return chains_->view(id, std::string(req.principal().user_id), manager);
  }

  void add_chain_routes() {
    auto& h = host();
    auto route = [&](const char* method, const char* path, const char* summary, auto fn) {
      h.route(
          method, path, [this, fn](vellum::Request& req) { guarded_route(req, [&] { fn(req); }); }, 0,
          summary);
    };
    route("POST", "/v1/crypto/chains", "Create a key chain (team key or document key), managed or e2ee",
          [this](vellum::Request& req) {
            auto j = body_json(req);
            KeyChains::CreateSpec s;
            s.id = str_field(j, "id");
            s.kind = j.contains("kind") ? str_field(j, "kind") : "team";
            s.mode = j.contains("mode") ? str_field(j, "mode") : "managed";
            s.parent = str_field(j, "parent", false);
            s.owner = std::string(req.principal().user_id);
            if (auto it = j.find("members"); it != j.end() && !it->is_null()) {
              if (!it->is_array())
                throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "'members' must be an array");
              for (const auto& m : *it) {
                if (!m.is_string())
                  throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "'members' must hold user ids");
                s.members.push_back(m.get<std::string>());
              }
            }
            s.rotate_after_ms = static_cast<int64_t>(uint_field(j, "rotate_after_s", 0)) * 1000;
            s.wraps = wraps_field(j);
            s.parent_wrap = str_field(j, "parent_wrap", false);
            // Documents go under a team only by one of its members (or its manager).
            if (!s.parent.empty()) {
              Json parent;
              try {
                parent = chains_->raw(s.parent);
              } catch (const TransitError&) {
                throw TransitError(VELLUM_ERR_NOT_FOUND, "no such key chain (parent)");
              }
              if (!chain_manager(req, parent) && !chain_reader(req, s.parent))
                throw TransitError(VELLUM_ERR_NOT_FOUND, "no such key chain (parent)");
            }
            auto ch = chains_->create(s);
            audit_chain(&req, "crypto.chain.create", s.id, {{"kind", s.kind}, {"mode", s.mode}});
            report(ch, &req, "created");
            req.json(201, ch.chain.dump());
          });
    route("GET", "/v1/crypto/chains/{id}", "A key chain: members, versions, your wraps (all for its owner)",
          [this](vellum::Request& req) {
            bool m = false;
            Json rec = chain_for(req, &m);
            req.json(200, chain_view(req, rec["id"], m).dump());
          });
    route("POST", "/v1/crypto/chains/{id}/members", "Add a member: one wrap of the current key",
          [this](vellum::Request& req) {
            bool m = false;
            Json rec = chain_for(req, &m);
            if (!m)
              throw TransitError(VELLUM_ERR_PERMISSION_DENIED, "only the chain's owner manages members");
            auto j = body_json(req);
            const std::string u = str_field(j, "user_id");
            chains_->add_member(rec["id"].get<std::string>(), u, str_field(j, "wrap", false));
            audit_chain(&req, "crypto.chain.member.add", rec["id"], {{"user_id", u}});
            req.json(200, chain_view(req, rec["id"], true).dump());
          });
    route("DELETE", "/v1/crypto/chains/{id}/members/{user_id}",
          "Remove a member and rotate (managed) or mark the rotation due (e2ee)",
          [this](vellum::Request& req) {
            bool m = false;
            Json rec = chain_for(req, &m);
            if (!m)
              throw TransitError(VELLUM_ERR_PERMISSION_DENIED, "only the chain's owner manages members");
            const std::string id = rec["id"], u(req.param("user_id").value_or(""));
            auto ch = chains_->remove_member(id, u);
            audit_chain(&req, "crypto.chain.member.remove", id, {{"user_id", u}});
            report(ch, &req, "member removed");
            req.json(200, chain_view(req, id, true).dump());
          });
    route("POST", "/v1/crypto/chains/{id}/wraps/{user_id}", "e2ee: upload a member's wrap of the current key",
          [this](vellum::Request& req) {
            Json rec = chain_for(req);
            const std::string id = rec["id"], u(req.param("user_id").value_or(""));
            auto j = body_json(req);
            chains_->put_wrap(id, u, str_field(j, "wrap"));
            audit_chain(&req, "crypto.chain.wrap", id, {{"user_id", u}, {"version", rec["current"]}});
            req.json(200, chain_view(req, id, chain_manager(req, rec)).dump());
          });
    route("POST", "/v1/crypto/chains/{id}/versions",
          "e2ee: upload the next key version (wraps for the remaining members, or parent_wrap)",
          [this](vellum::Request& req) {
            Json rec = chain_for(req);
            const std::string id = rec["id"];
            auto j = body_json(req);
            std::string reason = str_field(j, "reason", false);
            if (reason.empty())
              reason = rec["rotation_due"].is_string() ? rec["rotation_due"].get<std::string>()
                                                       : std::string("requested");
            // The reason goes into the audit log and events: keep it short.
            if (reason.size() > 200)
              throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "'reason' is longer than 200 bytes");
            auto ch = chains_->add_version(id, wraps_field(j), str_field(j, "parent_wrap", false), reason);
            report(ch, &req, reason);
            req.json(200, chain_view(req, id, chain_manager(req, rec)).dump());
          });
    auto rotate = [this](vellum::Request& req, std::string reason) {
      bool m = false;
      Json rec = chain_for(req, &m);
      if (!m) throw TransitError(VELLUM_ERR_PERMISSION_DENIED, "only the chain's owner rotates it");
      const std::string id = rec["id"];
      auto ch = chains_->rotate(id, reason);
      report(ch, &req, reason);
      req.json(200, chain_view(req, id, true).dump());
    };
    route("POST", "/v1/crypto/chains/{id}/rotate", "Rotate a key chain now",
          [rotate](vellum::Request& req) { rotate(req, "requested"); });
    route("POST", "/v1/crypto/chains/{id}/breach",
          "Suspected breach: rotate the chain and every document chain under it",
          [rotate](vellum::Request& req) { rotate(req, "suspected breach"); });

    route("POST", "/v1/crypto/envelopes", "Store an envelope (the server cannot open it)",
          [this](vellum::Request& req) { store_envelope(req); });
    route("GET", "/v1/crypto/envelopes/{id}", "An envelope, for its author and its recipients",
          [this](vellum::Request& req) {
            const std::string id(req.param("id").value_or(""));
            std::optional<vellum::Value> v;
            if (id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos)
              v = host().get("env/" + id);
            if (!v) throw TransitError(VELLUM_ERR_NOT_FOUND, "no such envelope");
            Json rec = Json::parse(v->data, nullptr, false);
            if (!rec.is_object()) throw TransitError(VELLUM_ERR_INTERNAL, "stored envelope is damaged");
            const std::string me(req.principal().user_id);
            bool ok =
                rec["owner"] == me || host().authorize(req, "crypto.envelope.read", "crypto-envelope/" + id,
                                                       rec["owner"].get<std::string>());
            for (const auto& u : rec["users"]) ok = ok || u == me;
            // Team documents: current readers of the chain only, so a removed
            // member loses access to the stored bytes as well as to new keys.
            for (const auto& c : rec["chains"]) {
              if (ok) break;
              try {
                ok = chain_reader(req, c.get<std::string>());
              } catch (const TransitError&) {
              }
            }
            if (!ok) throw TransitError(VELLUM_ERR_NOT_FOUND, "no such envelope");
            req.json(200, rec.dump());
          });
  }

  static constexpr size_t kMaxEnvelope = 4u << 20;  // 4 MiB of JSON (a 1 MiB document is ~1.4 MiB)

  void store_envelope(vellum::Request& req) {
    if (req.body().size() > kMaxEnvelope)
      throw TransitError(VELLUM_ERR_LIMIT, "the envelope is larger than 4 MiB");
    auto j = body_json(req);
    const std::string env = str_field(j, "envelope");
    std::vector<EnvelopeEntry> entries;
    try {
      entries = envelope_inspect(env);
    } catch (const EnvelopeError& e) {
      throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, std::string("malformed envelope: ") + e.what());
    }
    Json users = Json::array(), chains = Json::array();
    for (const auto& e : entries) {
      if (e.alg == kChainWrapAlg) {
        // kid = "chain:<id>:<version>": only the current version of a chain
        // the caller reads, and not while its rotation is due.
        const auto colon = e.kid.rfind(':');
        if (e.kid.rfind("chain:", 0) != 0 || colon <= 6)
          throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "malformed chain key id");
        const std::string cid = e.kid.substr(6, colon - 6);
        Json rec;
        try {
          rec = chains_->raw(cid);
        } catch (const TransitError&) {
          throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "unknown key id (no such key chain)");
        }
        if (!chain_manager(req, rec) && !chain_reader(req, cid))
          throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "unknown key id (no such key chain)");
        if (chain_kid(cid, rec["current"].get<uint32_t>()) != e.kid)
          throw TransitError(VELLUM_ERR_CONFLICT, "the envelope uses a retired key version of '" + cid +
                                                      "': encrypt with the current one");
        if (!rec["rotation_due"].is_null())
          throw TransitError(VELLUM_ERR_CONFLICT, "key chain '" + cid + "' must be rotated first (" +
                                                      rec["rotation_due"].get<std::string>() + ")");
        chains.push_back(cid);
      } else {
        auto pk = load_pubkey(e.kid);
        if (!pk || pk->value("use", "") != "encryption")
          throw TransitError(VELLUM_ERR_INVALID_ARGUMENT, "unknown key id (not a published encryption key)");
        users.push_back(pk->value("user_id", ""));
      }
    }
    const std::string id = hex(host().random(16));
    Json rec = {{"id", id},         {"owner", std::string(req.principal().user_id)},
                {"envelope", env},  {"users", users},
                {"chains", chains}, {"created_ms", host().now_ms()}};
    host().put("env/" + id, rec.dump(), VELLUM_VERSION_ABSENT);
    host().audit("crypto.envelope.store", "crypto-envelope/" + id, VELLUM_OUTCOME_SUCCESS, &req,
                 Json{{"recipients", entries.size()}, {"bytes", env.size()}}.dump());
    req.json(201, Json{{"id", id}}.dump());
  }

  static std::string hex(const std::string& raw) {
    static const char* hx = "0123456789abcdef";
    std::string s;
    for (unsigned char c : raw) {
      s.push_back(hx[c >> 4]);
      s.push_back(hx[c & 15]);
    }
    return s;
  }

  Config cfg_;
  std::unique_ptr<KvRecords> chain_store_;
  std::unique_ptr<KeyChains> chains_;
  uint64_t ticks_ = 0, sweep_every_ticks_ = 5;
  bool root_rotated_ = false;
  std::unique_ptr<KvRecords> transit_store_;
  std::unique_ptr<Transit> transit_;
  vellum_crypto_v1 vtable_{};
  uint64_t lease_ = 1;
  std::shared_ptr<Keyring> keyring_;
  uint64_t keyring_row_version_ = 0;
  std::mutex mu_;  // maintenance: rotation, reservations, rewrap
  bool rewrap_active_ = false;
  std::string rewrap_cursor_;
  uint64_t rewrap_resealed_ = 0, rewrap_resealed_total_ = 0, rewrap_passes_ = 0, rotations_ = 0;
  uint64_t rewrap_old_found_ = 0;  // rows of the current pass found under older key versions
  vellum::Host::Metric m_version_, m_used_, m_rotations_, m_resealed_, m_rewrap_pending_;
  vellum::Handle timer_;
};

}  // namespace

VELLUM_PLUGIN(Crypto)
