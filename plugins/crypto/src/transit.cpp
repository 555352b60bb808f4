#include "transit.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace vellum::crypto {

namespace {

constexpr std::string_view kTextPrefix = "vellum:v1:";
constexpr std::string_view kBinaryMagic = "VT\x01";
constexpr std::string_view kAadLabel = "vellum.transit.v1";

TransitError bad(const std::string& m) { return TransitError(VELLUM_ERR_INVALID_ARGUMENT, m); }

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};

std::string pkey_to_der(EVP_PKEY* k) {
  unsigned char* buf = nullptr;
  const int n = i2d_PrivateKey(k, &buf);
  if (n <= 0) throw CryptoError("cannot encode a private key");
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_clear_free(buf, static_cast<size_t>(n));
  return out;
}

std::shared_ptr<EVP_PKEY> pkey_from_der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EVP_PKEY* k = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));
  if (!k) throw CryptoError("cannot decode a stored private key");
  return std::shared_ptr<EVP_PKEY>(k, PkeyFree{});
}

std::string public_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), k) != 1) throw CryptoError("cannot encode a public key");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

void put_u32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

std::string aad_for(std::string_view name, uint32_t version, std::string_view context) {
  std::string a(kAadLabel);
  a.push_back('\0');
  a += name;
  a.push_back('\0');
  put_u32(a, version);
  a += context;
  return a;
}

// "vellum:v1:<name>:<version>:<base64>" → (name, version, payload bytes)
struct Parsed {
  std::string name;
  uint32_t version;
  std::string payload;
};

std::optional<uint32_t> parse_version(std::string_view s) {
  if (s.empty() || s.size() > 10 || s[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0 || v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

Parsed parse_text(std::string_view s, const char* what) {
  if (s.substr(0, kTextPrefix.size()) != kTextPrefix)
    throw bad(std::string(what) + " is not of the form vellum:v1:<key>:<version>:<base64>");
  s.remove_prefix(kTextPrefix.size());
  const size_t a = s.find(':');
  const size_t b = a == std::string_view::npos ? a : s.find(':', a + 1);
  if (b == std::string_view::npos)
    throw bad(std::string(what) + " is not of the form vellum:v1:<key>:<version>:<base64>");
  Parsed p;
  p.name = std::string(s.substr(0, a));
  auto v = parse_version(s.substr(a + 1, b - a - 1));
  if (!v) throw bad(std::string(what) + " has a malformed key version");
  p.version = *v;
  if (s.size() - b - 1 > 2 * kMaxTransitInput)
    throw TransitError(VELLUM_ERR_LIMIT, std::string(what) + " is too large");
  auto raw = b64decode(s.substr(b + 1));
  if (!raw) throw bad(std::string(what) + " is not valid base64");
  p.payload = std::move(*raw);
  return p;
}

std::string text_form(std::string_view name, uint32_t version, std::string_view payload) {
  return std::string(kTextPrefix) + std::string(name) + ":" + std::to_string(version) + ":" +
         b64encode(payload);
}

}  // namespace

std::optional<KeyType> key_type_from_string(std::string_view s) {
  if (s == "aes256-gcm") return KeyType::Aes256Gcm;
  if (s == "hmac") return KeyType::HmacSha256;
  if (s == "ed25519") return KeyType::Ed25519;
  if (s == "ecdsa-p256") return KeyType::EcdsaP256;
  return std::nullopt;
}

std::string_view to_string(KeyType t) {
  switch (t) {
    case KeyType::Aes256Gcm:
      return "aes256-gcm";
    case KeyType::HmacSha256:
      return "hmac";
    case KeyType::Ed25519:
      return "ed25519";
    case KeyType::EcdsaP256:
      return "ecdsa-p256";
  }
  return "unknown";
}

// ---------------------------------------------------------------- memory store
std::optional<std::pair<std::string, uint64_t>> MemoryTransitStore::load(std::string_view name) {
  std::lock_guard lk(mu_);
  auto it = rows_.find(name);
  if (it == rows_.end()) return std::nullopt;
  return it->second;
}

uint64_t MemoryTransitStore::store(std::string_view name, std::string_view record, uint64_t expected) {
  std::lock_guard lk(mu_);
  auto it = rows_.find(name);
  const uint64_t current = it == rows_.end() ? 0 : it->second.second;
  if (current != expected) throw TransitError(VELLUM_ERR_CONFLICT, "key record changed concurrently");
  rows_[std::string(name)] = {std::string(record), current + 1};
  return current + 1;
}

// ---------------------------------------------------------------- key state
struct Transit::State {
  struct Version {
    uint32_t version = 0;
    int64_t created_ms = 0;
    Key sym{};                       // AES / HMAC
    std::shared_ptr<EVP_PKEY> pkey;  // Ed25519 / ECDSA
  };
  std::string name;
  KeyType type = KeyType::Aes256Gcm;
  std::string owner;
  int64_t created_ms = 0;
  uint32_t min_decryption = 1, min_encryption = 0;
  std::map<uint32_t, Version> versions;
  uint64_t row_version = 0;

  ~State() {
    for (auto& [n, v] : versions) cleanse(v.sym.data(), v.sym.size());
  }
  uint32_t latest() const { return versions.empty() ? 0 : versions.rbegin()->first; }
  bool symmetric() const { return type == KeyType::Aes256Gcm || type == KeyType::HmacSha256; }

  Version make_version(uint32_t n, int64_t now) const {
    Version v;
    v.version = n;
    v.created_ms = now;
    if (symmetric()) {
      v.sym = random_key();
    } else {
      EVP_PKEY* k = type == KeyType::Ed25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                             : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      if (!k) throw CryptoError("key generation failed");
      v.pkey = std::shared_ptr<EVP_PKEY>(k, PkeyFree{});
    }
    return v;
  }

  std::string serialize() const {
    nlohmann::json vs = nlohmann::json::array();
    for (const auto& [n, v] : versions) {
      std::string secret = symmetric()
                               ? std::string(reinterpret_cast<const char*>(v.sym.data()), v.sym.size())
                               : pkey_to_der(v.pkey.get());
      vs.push_back({{"version", n}, {"created_ms", v.created_ms}, {"key", b64encode(secret)}});
      cleanse(secret.data(), secret.size());
    }
    nlohmann::json j = {{"type", to_string(type)},
                        {"owner", owner},
                        {"created_ms", created_ms},
                        {"min_decryption_version", min_decryption},
                        {"min_encryption_version", min_encryption},
                        {"versions", vs}};
    std::string out = j.dump();
    for (auto& v : j["versions"]) {
      auto& k = v["key"].get_ref<std::string&>();
      cleanse(k.data(), k.size());
    }
    return out;
  }

  static std::shared_ptr<State> parse(std::string_view name, std::string_view record, uint64_t row_version) {
    auto j = nlohmann::json::parse(record, nullptr, false);
    auto s = std::make_shared<State>();
    try {
      s->name = std::string(name);
      auto t = key_type_from_string(j.at("type").get<std::string>());
      if (!t) throw CryptoError("unknown key type");
      s->type = *t;
      s->owner = j.at("owner").get<std::string>();
      s->created_ms = j.at("created_ms").get<int64_t>();
      s->min_decryption = j.at("min_decryption_version").get<uint32_t>();
      s->min_encryption = j.at("min_encryption_version").get<uint32_t>();
      s->row_version = row_version;
      for (auto& v : j.at("versions")) {
        Version ver;
        ver.version = v.at("version").get<uint32_t>();
        ver.created_ms = v.at("created_ms").get<int64_t>();
        auto& k = v.at("key").get_ref<std::string&>();
        auto raw = b64decode(k);
        cleanse(k.data(), k.size());
        if (!raw) throw CryptoError("bad key encoding");
        if (s->symmetric()) {
          if (raw->size() != 32) throw CryptoError("bad key length");
          std::memcpy(ver.sym.data(), raw->data(), 32);
        } else {
          ver.pkey = pkey_from_der(*raw);
        }
        cleanse(raw->data(), raw->size());
        s->versions.emplace(ver.version, std::move(ver));
      }
    } catch (const nlohmann::json::exception&) {
      throw TransitError(VELLUM_ERR_INTERNAL, "stored key record is damaged");
    } catch (const CryptoError& e) {
      throw TransitError(VELLUM_ERR_INTERNAL, std::string("stored key record is damaged: ") + e.what());
    }
    if (s->versions.empty()) throw TransitError(VELLUM_ERR_INTERNAL, "stored key record has no versions");
    return s;
  }

  const Version& version_for_decrypt(uint32_t n) const {
    if (n < min_decryption)
      throw bad("key version " + std::to_string(n) + " is below min_decryption_version " +
                std::to_string(min_decryption));
    auto it = versions.find(n);
    if (it == versions.end()) throw bad("key version " + std::to_string(n) + " does not exist");
    return it->second;
  }
  const Version& version_for_encrypt(uint32_t n) const {
    if (n == 0) return versions.rbegin()->second;
    if (n < std::max(min_encryption, min_decryption))
      throw bad("key version " + std::to_string(n) + " is below the minimum allowed for encryption");
    auto it = versions.find(n);
    if (it == versions.end()) throw bad("key version " + std::to_string(n) + " does not exist");
    return it->second;
  }
  void require(KeyType t, const char* op) const {
    if (type != t)
      throw bad(std::string("key '") + name + "' is of type " + std::string(to_string(type)) + ", " + op +
                " needs " + std::string(to_string(t)));
  }
  void require_signing(const char* op) const {
    if (type != KeyType::Ed25519 && type != KeyType::EcdsaP256)
      throw bad(std::string("key '") + name + "' is of type " + std::string(to_string(type)) + ", " + op +
                " needs ed25519 or ecdsa-p256");
  }

  TransitKeyInfo info() const {
    TransitKeyInfo i;
    i.name = name;
    i.type = type;
    i.owner = owner;
    i.created_ms = created_ms;
    i.latest = latest();
    i.min_decryption = min_decryption;
    i.min_encryption = min_encryption;
    for (const auto& [n, v] : versions)
      i.versions.push_back({n, v.created_ms, v.pkey ? public_pem(v.pkey.get()) : std::string()});
    return i;
  }
};

// ---------------------------------------------------------------- Transit
Transit::Transit(TransitStore& store, std::function<int64_t()> clock)
    : store_(store), clock_(std::move(clock)) {}
Transit::~Transit() = default;

bool Transit::valid_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::shared_ptr<const Transit::State> Transit::get(std::string_view name) {
  if (!valid_name(name)) throw bad("key names are 1-64 characters of A-Z a-z 0-9 - _");
  {
    std::shared_lock lk(mu_);
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
  }
  auto row = store_.load(name);
  if (!row) throw TransitError(VELLUM_ERR_NOT_FOUND, "no such key");
  std::shared_ptr<const State> s = State::parse(name, row->first, row->second);
  cleanse(row->first.data(), row->first.size());
  std::unique_lock lk(mu_);
  auto [it, fresh] = cache_.emplace(std::string(name), s);
  return it->second;
}

void Transit::publish(std::shared_ptr<const State> s) {
  std::unique_lock lk(mu_);
  cache_[s->name] = std::move(s);
}

template <class F>
std::shared_ptr<const Transit::State> Transit::mutate(std::string_view name, F&& f) {
  std::lock_guard wl(write_mu_);
  auto cur = get(name);
  auto next = std::make_shared<State>(*cur);
  f(*next);
  std::string rec = next->serialize();
  try {
    next->row_version = store_.store(name, rec, cur->row_version);
  } catch (...) {
    cleanse(rec.data(), rec.size());
    throw;
  }
  cleanse(rec.data(), rec.size());
  publish(next);
  return next;
}

TransitKeyInfo Transit::create_key(std::string_view name, KeyType type, std::string_view owner) {
  if (!valid_name(name)) throw bad("key names are 1-64 characters of A-Z a-z 0-9 - _");
  std::lock_guard wl(write_mu_);
  auto s = std::make_shared<State>();
  s->name = std::string(name);
  s->type = type;
  s->owner = std::string(owner);
  s->created_ms = clock_();
  s->versions.emplace(1, s->make_version(1, s->created_ms));
  std::string rec = s->serialize();
  try {
    s->row_version = store_.store(name, rec, 0);
  } catch (const TransitError& e) {
    cleanse(rec.data(), rec.size());
    if (e.status == VELLUM_ERR_CONFLICT)
      throw TransitError(VELLUM_ERR_CONFLICT, "a key with this name exists");
    throw;
  } catch (...) {
    cleanse(rec.data(), rec.size());
    throw;
  }
  cleanse(rec.data(), rec.size());
  publish(s);
  return s->info();
}

TransitKeyInfo Transit::info(std::string_view name) { return get(name)->info(); }

uint32_t Transit::rotate(std::string_view name) {
  auto s = mutate(name, [&](State& st) {
    const uint32_t n = st.latest() + 1;
    if (n == 0) throw bad("the key has run out of versions");
    st.versions.emplace(n, st.make_version(n, clock_()));
  });
  return s->latest();
}

TransitKeyInfo Transit::set_min_versions(std::string_view name, uint32_t min_dec, uint32_t min_enc) {
  return mutate(name,
                [&](State& st) {
                  if (min_dec < 1 || min_dec > st.latest())
                    throw bad("min_decryption_version must be between 1 and the latest version (" +
                              std::to_string(st.latest()) + ")");
                  if (min_enc != 0 && (min_enc < min_dec || min_enc > st.latest()))
                    throw bad(
                        "min_encryption_version must be 0 (latest) or between min_decryption_version and the "
                        "latest version");
                  st.min_decryption = min_dec;
                  st.min_encryption = min_enc;
                })
      ->info();
}

Transit::Out Transit::encrypt(std::string_view name, uint32_t key_version, std::string_view plaintext,
                              std::string_view context, Form form, const Alloc& alloc) {
  if (plaintext.size() > kMaxTransitInput)
    throw TransitError(VELLUM_ERR_LIMIT, "plaintext is larger than 1 MiB");
  if (context.size() > kMaxContext) throw TransitError(VELLUM_ERR_LIMIT, "context is larger than 4096 bytes");
  auto s = get(name);
  s->require(KeyType::Aes256Gcm, "encrypt");
  const auto& v = s->version_for_encrypt(key_version);
  const std::string aad = aad_for(name, v.version, context);
  const size_t payload = kNonceSize + plaintext.size() + kTagSize;
  if (form == Form::Binary) {
    const size_t head = kBinaryMagic.size() + 1 + name.size() + 4;
    uint8_t* out = alloc(head + payload);
    if (!out) throw TransitError(VELLUM_ERR_LIMIT, "out of memory");
    std::memcpy(out, kBinaryMagic.data(), kBinaryMagic.size());
    out[3] = static_cast<uint8_t>(name.size());
    std::memcpy(out + 4, name.data(), name.size());
    for (int i = 0; i < 4; ++i) out[4 + name.size() + i] = static_cast<uint8_t>(v.version >> (8 * (3 - i)));
    uint8_t* nonce = out + head;
    random_bytes(nonce, kNonceSize);
    gcm_seal_to(v.sym, nonce, aad, plaintext, nonce + kNonceSize);
    return {out, head + payload};
  }
  std::string raw(payload, '\0');
  auto* nonce = reinterpret_cast<uint8_t*>(raw.data());
  random_bytes(nonce, kNonceSize);
  gcm_seal_to(v.sym, nonce, aad, plaintext, nonce + kNonceSize);
  const std::string text = text_form(name, v.version, raw);
  uint8_t* out = alloc(text.size());
  if (!out) throw TransitError(VELLUM_ERR_LIMIT, "out of memory");
  std::memcpy(out, text.data(), text.size());
  return {out, text.size()};
}

Transit::Out Transit::decrypt(std::string_view name, std::string_view ct, std::string_view context,
                              const Alloc& alloc, const Free& release) {
  if (context.size() > kMaxContext) throw TransitError(VELLUM_ERR_LIMIT, "context is larger than 4096 bytes");
  std::string ct_name;
  uint32_t version = 0;
  std::string text_payload;
  std::string_view payload;
  if (ct.substr(0, kBinaryMagic.size()) == kBinaryMagic) {
    if (ct.size() < 4) throw bad("ciphertext is truncated");
    const size_t nlen = static_cast<uint8_t>(ct[3]);
    if (ct.size() < 4 + nlen + 4) throw bad("ciphertext is truncated");
    ct_name = std::string(ct.substr(4, nlen));
    version = get_u32(ct, 4 + nlen);
    payload = ct.substr(8 + nlen);
  } else {
    Parsed p = parse_text(ct, "ciphertext");
    ct_name = std::move(p.name);
    version = p.version;
    text_payload = std::move(p.payload);
    payload = text_payload;
  }
  if (ct_name != name) throw bad("the ciphertext was made with another key");
  if (payload.size() < kNonceSize + kTagSize) throw bad("ciphertext is truncated");
  const size_t n = payload.size() - kNonceSize - kTagSize;
  if (n > kMaxTransitInput) throw TransitError(VELLUM_ERR_LIMIT, "ciphertext is larger than allowed");
  auto s = get(name);
  s->require(KeyType::Aes256Gcm, "decrypt");
  const auto& v = s->version_for_decrypt(version);
  const std::string aad = aad_for(name, version, context);
  uint8_t* out = alloc(n ? n : 1);
  if (!out) throw TransitError(VELLUM_ERR_LIMIT, "out of memory");
  bool ok = false;
  try {
    ok = gcm_open_to(v.sym, reinterpret_cast<const uint8_t*>(payload.data()), aad, payload.substr(kNonceSize),
                     out);
  } catch (...) {
    release(out);
    throw;
  }
  if (!ok) {  // gcm_open_to wiped the unverified output
    release(out);
    throw bad("ciphertext failed authentication (tampered, wrong context or wrong key)");
  }
  return {out, n};
}

std::string Transit::encrypt(std::string_view name, std::string_view plaintext, std::string_view context,
                             Form form, uint32_t key_version) {
  std::string buf;
  auto o = encrypt(name, key_version, plaintext, context, form, [&](size_t n) {
    buf.resize(n);
    return reinterpret_cast<uint8_t*>(buf.data());
  });
  (void)o;
  return buf;
}

std::string Transit::decrypt(std::string_view name, std::string_view ciphertext, std::string_view context) {
  std::string buf;
  auto o = decrypt(
      name, ciphertext, context,
      [&](size_t n) {
        buf.resize(n);
        return reinterpret_cast<uint8_t*>(buf.data());
      },
      [](uint8_t*) {});
  buf.resize(o.size);
  return buf;
}

std::string Transit::rewrap(std::string_view name, std::string_view ciphertext, std::string_view context) {
  std::string pt = decrypt(name, ciphertext, context);
  const Form form = ciphertext.substr(0, kBinaryMagic.size()) == kBinaryMagic ? Form::Binary : Form::Text;
  std::string out = encrypt(name, pt, context, form, 0);
  cleanse(pt.data(), pt.size());
  return out;
}

Transit::DataKey Transit::generate_data_key(std::string_view name, uint32_t bits, std::string_view context,
                                            Form form) {
  if (bits != 128 && bits != 256 && bits != 512) throw bad("bits must be 128, 256 or 512");
  DataKey dk;
  dk.plaintext.resize(bits / 8);
  random_bytes(reinterpret_cast<uint8_t*>(dk.plaintext.data()), dk.plaintext.size());
  dk.wrapped = encrypt(name, dk.plaintext, context, form, 0);
  return dk;
}

std::string Transit::hmac(std::string_view name, std::string_view input) {
  if (input.size() > kMaxTransitInput) throw TransitError(VELLUM_ERR_LIMIT, "input is larger than 1 MiB");
  auto s = get(name);
  s->require(KeyType::HmacSha256, "hmac");
  const auto& v = s->versions.rbegin()->second;
  uint8_t mac[32];
  size_t n = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, v.sym.data(), v.sym.size(),
                 reinterpret_cast<const uint8_t*>(input.data()), input.size(), mac, sizeof mac, &n) ||
      n != sizeof mac)
    throw CryptoError("HMAC-SHA256 failed");
  return text_form(name, v.version, std::string_view(reinterpret_cast<const char*>(mac), n));
}

std::string Transit::sign(std::string_view name, std::string_view input) {
  if (input.size() > kMaxTransitInput) throw TransitError(VELLUM_ERR_LIMIT, "input is larger than 1 MiB");
  auto s = get(name);
  s->require_signing("sign");
  const auto& v = s->versions.rbegin()->second;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  const char* md = s->type == KeyType::Ed25519 ? nullptr : "SHA256";
  if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, v.pkey.get(), nullptr) != 1)
    throw CryptoError("signature setup failed");
  size_t len = 0;
  const auto* in = reinterpret_cast<const uint8_t*>(input.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) throw CryptoError("signing failed");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<uint8_t*>(sig.data()), &len, in, input.size()) != 1)
    throw CryptoError("signing failed");
  sig.resize(len);
  return text_form(name, v.version, sig);
}

bool Transit::verify(std::string_view name, std::string_view input, std::string_view signature) {
  if (input.size() > kMaxTransitInput) throw TransitError(VELLUM_ERR_LIMIT, "input is larger than 1 MiB");
  Parsed p = parse_text(signature, "signature");
  if (p.name != name) throw bad("the signature was made with another key");
  auto s = get(name);
  const auto& v = s->version_for_decrypt(p.version);
  if (s->type == KeyType::HmacSha256) {
    uint8_t mac[32];
    size_t n = 0;
    if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, v.sym.data(), v.sym.size(),
                   reinterpret_cast<const uint8_t*>(input.data()), input.size(), mac, sizeof mac, &n))
      throw CryptoError("HMAC-SHA256 failed");
    return p.payload.size() == n && CRYPTO_memcmp(mac, p.payload.data(), n) == 0;
  }
  s->require_signing("verify");
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  const char* md = s->type == KeyType::Ed25519 ? nullptr : "SHA256";
  if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, v.pkey.get(), nullptr) != 1)
    throw CryptoError("verification setup failed");
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const uint8_t*>(p.payload.data()), p.payload.size(),
                          reinterpret_cast<const uint8_t*>(input.data()), input.size()) == 1;
}

}  // namespace vellum::crypto
