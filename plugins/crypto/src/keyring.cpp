#include "keyring.hpp"

#include <cstring>
#include <mutex>

namespace vellum::crypto {
namespace {

void put_u32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_be(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

// format ‖ version (big-endian)
std::string header_aad(uint8_t format, uint32_t version) {
  std::string h;
  h.push_back(static_cast<char>(format));
  put_u32(h, version);
  return h;
}

constexpr std::string_view kKeyringMagic = "VKR1";
constexpr size_t kEntrySize = 4 + 8 + 8 + 32;

}  // namespace

std::string serialize_keyring(const KeyringRecord& r) {
  std::string s(kKeyringMagic);
  put_u32(s, r.current);
  s.push_back(static_cast<char>(r.rewrap_pending ? 1 : 0));
  put_u32(s, static_cast<uint32_t>(r.versions.size()));
  for (const auto& v : r.versions) {
    put_u32(s, v.version);
    put_u64(s, static_cast<uint64_t>(v.created_ms));
    put_u64(s, v.reserved);
    s.append(reinterpret_cast<const char*>(v.key.data()), v.key.size());
  }
  return s;
}

KeyringRecord parse_keyring(std::string_view s) {
  const size_t fixed = kKeyringMagic.size() + 4 + 1 + 4;
  if (s.size() < fixed || s.substr(0, 4) != kKeyringMagic) throw CryptoError("keyring record is malformed");
  KeyringRecord r;
  r.current = static_cast<uint32_t>(get_be(s, 4, 4));
  const uint8_t flags = static_cast<uint8_t>(s[8]);
  if (flags > 1) throw CryptoError("keyring record has unknown flags");
  r.rewrap_pending = flags & 1;
  const uint64_t n = get_be(s, 9, 4);
  if (s.size() != fixed + n * kEntrySize) throw CryptoError("keyring record has a wrong length");
  uint32_t prev = 0;
  bool has_current = false;
  for (uint64_t i = 0; i < n; ++i) {
    const size_t at = fixed + static_cast<size_t>(i) * kEntrySize;
    KeyVersionRecord v;
    v.version = static_cast<uint32_t>(get_be(s, at, 4));
    v.created_ms = static_cast<int64_t>(get_be(s, at + 4, 8));
    v.reserved = get_be(s, at + 12, 8);
    std::memcpy(v.key.data(), s.data() + at + 20, 32);
    if (v.version == 0 || v.version <= prev) throw CryptoError("keyring versions are not ascending");
    prev = v.version;
    has_current |= v.version == r.current;
    r.versions.push_back(v);
  }
  if (!has_current) throw CryptoError("keyring names a current version it does not hold");
  return r;
}

std::string seal_with_root(const Key& root, std::string_view context, std::string_view plaintext) {
  std::string out = header_aad(kFormatKeyring, 0);
  out.resize(kHeaderSize);
  std::array<uint8_t, kNonceSize> nonce;
  random_bytes(nonce.data(), nonce.size());
  std::memcpy(out.data() + 5, nonce.data(), nonce.size());
  std::string aad(kKeyringLabel);
  aad += header_aad(kFormatKeyring, 0);
  aad += context;
  gcm_seal(root, nonce.data(), aad, plaintext, out);  // appends: out may move, hence the copy
  return out;
}

std::string unseal_with_root(const Key& root, std::string_view context, std::string_view sealed) {
  if (sealed.size() < kOverhead || static_cast<uint8_t>(sealed[0]) != kFormatKeyring ||
      get_be(sealed, 1, 4) != 0)
    throw UnsealError("the keyring row is not a root-sealed keyring");
  std::string aad(kKeyringLabel);
  aad += header_aad(kFormatKeyring, 0);
  aad += context;
  std::string out;
  if (!gcm_open(root, reinterpret_cast<const uint8_t*>(sealed.data() + 5), aad, sealed.substr(kHeaderSize),
                out))
    throw UnsealError("the root key does not open the keyring");
  return out;
}

Keyring::~Keyring() {
  for (auto& [v, e] : entries_) cleanse(e->rec.key.data(), e->rec.key.size());
}

void Keyring::load(const KeyringRecord& r) {
  std::unique_lock lk(mu_);
  for (auto& [v, e] : entries_) cleanse(e->rec.key.data(), e->rec.key.size());
  entries_.clear();
  for (const auto& v : r.versions) {
    auto e = std::make_unique<Entry>();
    e->rec = v;
    e->used = v.reserved;  // conservative after a restart: assume the whole reservation was used
    entries_.emplace(v.version, std::move(e));
  }
  rewrap_pending_ = r.rewrap_pending;
  current_ = r.current;
}

void Keyring::apply(const KeyringRecord& r) {
  std::unique_lock lk(mu_);
  for (const auto& v : r.versions) {
    auto it = entries_.find(v.version);
    if (it == entries_.end()) {
      auto e = std::make_unique<Entry>();
      e->rec = v;
      entries_.emplace(v.version, std::move(e));
    } else {
      it->second->rec.reserved = v.reserved;
    }
  }
  rewrap_pending_ = r.rewrap_pending;
  current_ = r.current;
}

bool Keyring::loaded() const { return current_.load() != 0; }

KeyringRecord Keyring::snapshot() const {
  std::shared_lock lk(mu_);
  KeyringRecord r;
  r.current = current_;
  r.rewrap_pending = rewrap_pending_;
  for (const auto& [v, e] : entries_) r.versions.push_back(e->rec);
  return r;
}

KeyringRecord Keyring::reservation(uint64_t lease) const {
  KeyringRecord r = snapshot();
  for (auto& v : r.versions)
    if (v.version == r.current) v.reserved = used(v.version) + lease;
  return r;
}

KeyringRecord Keyring::with_new_version(const Key& key, int64_t now_ms, uint64_t lease) const {
  KeyringRecord r = snapshot();
  if (r.versions.empty()) throw CryptoError("the keyring is not loaded");
  KeyVersionRecord v;
  v.version = r.versions.back().version + 1;
  if (v.version == 0) throw CryptoError("the keyring has run out of versions");
  v.created_ms = now_ms;
  v.reserved = lease;
  v.key = key;
  // The old current version: its count is final, keep what was used.
  for (auto& old : r.versions)
    if (old.version == r.current) old.reserved = std::max(old.reserved, used(old.version));
  r.versions.push_back(v);
  r.current = v.version;
  r.rewrap_pending = true;
  return r;
}

const Keyring::Entry* Keyring::find(uint32_t version) const {
  auto it = entries_.find(version);
  return it == entries_.end() ? nullptr : it->second.get();
}

std::string Keyring::seal(std::string_view context, std::string_view plaintext) {
  std::string out;
  out.reserve(plaintext.size() + kOverhead);
  seal_into(context, plaintext, out);
  return out;
}

void Keyring::seal_into(std::string_view context, std::string_view plaintext, std::string& out) {
  const size_t start = out.size();
  out.resize(start + plaintext.size() + kOverhead);
  seal_to(context, plaintext, reinterpret_cast<uint8_t*>(out.data() + start));
}

void Keyring::seal_to(std::string_view context, std::string_view plaintext, uint8_t* out) {
  std::shared_lock lk(mu_);
  const uint32_t version = current_;
  Entry* e = const_cast<Entry*>(find(version));
  if (!e) throw CryptoError("the keyring is not loaded");
  e->used.fetch_add(1, std::memory_order_relaxed);
  out[0] = kFormatValue;
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<uint8_t>(version >> (8 * (3 - i)));
  random_bytes(out + 5, kNonceSize);
  std::string aad;
  aad.reserve(5 + context.size());
  aad.append(reinterpret_cast<const char*>(out), 5);
  aad += context;
  gcm_seal_to(e->rec.key, out + 5, aad, plaintext, out + kHeaderSize);
}

uint32_t Keyring::version_of(std::string_view sealed) {
  if (sealed.size() < kOverhead || static_cast<uint8_t>(sealed[0]) != kFormatValue) return 0;
  return static_cast<uint32_t>(get_be(sealed, 1, 4));
}

std::string Keyring::unseal(std::string_view context, std::string_view sealed) const {
  if (sealed.size() < kOverhead) throw UnsealError("sealed value is truncated");
  std::string out(sealed.size() - kOverhead, '\0');
  unseal_to(context, sealed, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

void Keyring::unseal_to(std::string_view context, std::string_view sealed, uint8_t* out) const {
  if (sealed.size() < kOverhead) throw UnsealError("sealed value is truncated");
  if (static_cast<uint8_t>(sealed[0]) != kFormatValue)
    throw UnsealError("sealed value has an unknown format");
  const uint32_t version = static_cast<uint32_t>(get_be(sealed, 1, 4));
  std::shared_lock lk(mu_);
  const Entry* e = find(version);
  if (!e) throw UnsealError("sealed value names unknown key version " + std::to_string(version));
  std::string aad;
  aad.reserve(5 + context.size());
  aad.append(sealed.data(), 5);
  aad += context;
  if (!gcm_open_to(e->rec.key, reinterpret_cast<const uint8_t*>(sealed.data() + 5), aad,
                   sealed.substr(kHeaderSize), out))
    throw UnsealError("sealed value failed authentication (tampered, or moved from another key)");
}

uint32_t Keyring::current_version() const { return current_.load(); }

std::vector<uint32_t> Keyring::versions() const {
  std::shared_lock lk(mu_);
  std::vector<uint32_t> v;
  for (const auto& [k, e] : entries_) v.push_back(k);
  return v;
}

uint64_t Keyring::used(uint32_t version) const {
  std::shared_lock lk(mu_);
  const Entry* e = find(version);
  return e ? e->used.load(std::memory_order_relaxed) : 0;
}

uint64_t Keyring::reserved(uint32_t version) const {
  std::shared_lock lk(mu_);
  const Entry* e = find(version);
  return e ? e->rec.reserved : 0;
}

bool Keyring::rewrap_pending() const {
  std::shared_lock lk(mu_);
  return rewrap_pending_;
}

}  // namespace vellum::crypto
