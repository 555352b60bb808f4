// The keyring behind the storage barrier: data-encryption key versions, the
// sealed-value format and the root-key seal of the keyring itself.
//
// Sealed value (every value the host stores, except the keyring row):
//
//   offset  size  field
//   0       1     format byte 0x01 (AES-256-GCM, keyring key)
//   1       4     key version, unsigned 32-bit big-endian (>= 1)
//   5       12    random 96-bit nonce
//   17      n     ciphertext (same length as the plaintext)
//   17+n    16    GCM tag
//   AAD = format byte ‖ key version ‖ context, where context is the host's
//   "<namespace>\0<key>": a value cannot be moved to another key, and its
//   header cannot be edited to claim another key version.
//
// The keyring row (context "crypto\0keyring") is sealed with the ROOT key in
// the same layout with format byte 0x02 and version 0, and
//   AAD = "vellum.crypto.keyring.v1" ‖ 0x02 ‖ 00000000 ‖ context,
// so the keyring never depends on itself.
//
// Keyring plaintext (binary, big-endian):
//   "VKR1" ‖ u32 current version ‖ u8 flags (bit 0: a rewrap is pending)
//   ‖ u32 count ‖ count × (u32 version ‖ i64 created_ms ‖ u64 reserved
//   encryptions ‖ 32-byte key)
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "aead.hpp"

namespace vellum::crypto {

constexpr uint8_t kFormatValue = 0x01;
constexpr uint8_t kFormatKeyring = 0x02;
constexpr size_t kHeaderSize = 1 + 4 + kNonceSize;
constexpr size_t kOverhead = kHeaderSize + kTagSize;
constexpr std::string_view kKeyringLabel = "vellum.crypto.keyring.v1";
// The host's context for this plugin's "keyring" key: "<namespace>\0<key>".
inline const std::string kKeyringContext = std::string("crypto") + '\0' + "keyring";

// Why an unseal failed; the message never contains value bytes.
struct UnsealError : CryptoError {
  using CryptoError::CryptoError;
};

// One key version as persisted.
struct KeyVersionRecord {
  uint32_t version = 0;
  int64_t created_ms = 0;
  // Encryptions reserved (persisted ahead of use): after a crash the count
  // resumes from here, so it can only over-count.
  uint64_t reserved = 0;
  Key key{};

  KeyVersionRecord() = default;
  KeyVersionRecord(uint32_t v, int64_t created, uint64_t res, const Key& k)
      : version(v), created_ms(created), reserved(res), key(k) {}
  KeyVersionRecord(const KeyVersionRecord&) = default;
  KeyVersionRecord& operator=(const KeyVersionRecord&) = default;
  ~KeyVersionRecord() { cleanse(key.data(), key.size()); }  // copies of key material do not linger
};

struct KeyringRecord {
  uint32_t current = 0;
  bool rewrap_pending = false;
  std::vector<KeyVersionRecord> versions;  // ascending
};

std::string serialize_keyring(const KeyringRecord& r);
// Throws CryptoError on a malformed record.
KeyringRecord parse_keyring(std::string_view bytes);

// Root-key seal/unseal of the keyring row (format 0x02).
std::string seal_with_root(const Key& root, std::string_view context, std::string_view plaintext);
// Throws UnsealError if the root key does not open it.
std::string unseal_with_root(const Key& root, std::string_view context, std::string_view sealed);

// Thread-safe in-memory keyring. seal/unseal run concurrently; add_version
// and load take an exclusive lock.
class Keyring {
 public:
  Keyring() = default;
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;
  ~Keyring();

  // Replaces the content. Each version's used count starts at its reserved count.
  void load(const KeyringRecord& r);
  bool loaded() const;
  // The persisted form of the current state, with reserved counts as given
  // by the in-memory reservations (see reserve()).
  KeyringRecord snapshot() const;

  // Seals with the current version (format 0x01). Throws CryptoError if empty.
  std::string seal(std::string_view context, std::string_view plaintext);
  // Appends the sealed form to out (for callers that reuse buffers).
  void seal_into(std::string_view context, std::string_view plaintext, std::string& out);
  // Writes the sealed form (plaintext.size() + kOverhead bytes) to out.
  void seal_to(std::string_view context, std::string_view plaintext, uint8_t* out);
  // Throws UnsealError on unknown format or version, truncation, or bad tag.
  std::string unseal(std::string_view context, std::string_view sealed) const;
  // Writes the plaintext (sealed.size() - kOverhead bytes) to out.
  void unseal_to(std::string_view context, std::string_view sealed, uint8_t* out) const;
  // The key version a sealed value names (0 if it is not a format 0x01 value).
  static uint32_t version_of(std::string_view sealed);

  uint32_t current_version() const;
  std::vector<uint32_t> versions() const;
  // Encryptions under a version since it was created (after a restart: at
  // least the true count).
  uint64_t used(uint32_t version) const;
  uint64_t reserved(uint32_t version) const;
  bool rewrap_pending() const;
  // The record with the current version's reservation raised to used + lease.
  KeyringRecord reservation(uint64_t lease) const;
  // The record that adds version current+1 with key `key`, reserved `lease`,
  // as the current version, with a rewrap pending.
  KeyringRecord with_new_version(const Key& key, int64_t now_ms, uint64_t lease) const;
  // Applies a record that is now durable: new versions start with a used
  // count of 0, existing ones keep theirs; reservations, the current version
  // and the rewrap flag are taken from it.
  void apply(const KeyringRecord& persisted);

 private:
  struct Entry {
    KeyVersionRecord rec;
    std::atomic<uint64_t> used{0};
  };
  const Entry* find(uint32_t version) const;
  mutable std::shared_mutex mu_;
  std::map<uint32_t, std::unique_ptr<Entry>> entries_;
  std::atomic<uint32_t> current_{0};
  bool rewrap_pending_ = false;
};

}  // namespace vellum::crypto
