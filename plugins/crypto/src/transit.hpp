// Transit encryption: named keys with versions that never leave the plugin
// (Vault's transit engine, reduced). Used by the "crypto" service and the
// /v1/crypto HTTP API. Formats: see vellum/services/crypto_v1.h.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <vellum/abi.h>

#include "aead.hpp"

namespace vellum::crypto {

enum class KeyType : int32_t { Aes256Gcm = 1, HmacSha256 = 2, Ed25519 = 3, EcdsaP256 = 4 };
std::optional<KeyType> key_type_from_string(
    std::string_view s);  // "aes256-gcm", "hmac", "ed25519", "ecdsa-p256"
std::string_view to_string(KeyType t);

constexpr size_t kMaxTransitInput = size_t{1} << 20;  // 1 MiB
constexpr size_t kMaxContext = 4096;

// A failure with the status the caller should see; messages never contain
// plaintext or key material.
struct TransitError : std::runtime_error {
  TransitError(vellum_status s, const std::string& m) : std::runtime_error(m), status(s) {}
  vellum_status status;
};

// Where key records live (the plugin's KV namespace, or memory in tests).
class TransitStore {
 public:
  virtual ~TransitStore() = default;
  // The record and its version, or nullopt.
  virtual std::optional<std::pair<std::string, uint64_t>> load(std::string_view name) = 0;
  // Compare-and-set (expected 0 = must be absent); throws TransitError(CONFLICT)
  // on a mismatch. Returns the new version.
  virtual uint64_t store(std::string_view name, std::string_view record, uint64_t expected) = 0;
};

// An in-memory store (unit tests, benchmarks).
class MemoryTransitStore : public TransitStore {
 public:
  std::optional<std::pair<std::string, uint64_t>> load(std::string_view name) override;
  uint64_t store(std::string_view name, std::string_view record, uint64_t expected) override;

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, uint64_t>, std::less<>> rows_;
};

struct TransitKeyInfo {
  std::string name;
  KeyType type = KeyType::Aes256Gcm;
  std::string owner;
  int64_t created_ms = 0;
  uint32_t latest = 0, min_decryption = 1, min_encryption = 0;
  struct Version {
    uint32_t version;
    int64_t created_ms;
    std::string public_key_pem;  // signing keys only
  };
  std::vector<Version> versions;
};

enum class Form { Binary, Text };

class Transit {
 public:
  Transit(TransitStore& store, std::function<int64_t()> clock);
  ~Transit();

  static bool valid_name(std::string_view name);

  TransitKeyInfo create_key(std::string_view name, KeyType type, std::string_view owner);
  TransitKeyInfo info(std::string_view name);
  uint32_t rotate(std::string_view name);
  TransitKeyInfo set_min_versions(std::string_view name, uint32_t min_decryption, uint32_t min_encryption);

  // Allocates the output buffer (the service passes host->alloc).
  using Alloc = std::function<uint8_t*(size_t)>;
  using Free = std::function<void(uint8_t*)>;
  struct Out {
    uint8_t* data;
    size_t size;
  };
  // key_version 0 = latest. Binary: "VT\x01" ‖ u8 name length ‖ name ‖ u32 version ‖ nonce ‖ ct ‖ tag.
  Out encrypt(std::string_view name, uint32_t key_version, std::string_view plaintext,
              std::string_view context, Form form, const Alloc& alloc);
  // Accepts either form; the plaintext goes to a buffer from alloc (released
  // with release, wiped, if authentication fails).
  Out decrypt(std::string_view name, std::string_view ciphertext, std::string_view context,
              const Alloc& alloc, const Free& release);
  // Same form as the input, latest version.
  std::string rewrap(std::string_view name, std::string_view ciphertext, std::string_view context);
  struct DataKey {
    std::string wrapped, plaintext;
  };
  DataKey generate_data_key(std::string_view name, uint32_t bits, std::string_view context, Form form);
  std::string hmac(std::string_view name, std::string_view input);
  std::string sign(std::string_view name, std::string_view input);
  bool verify(std::string_view name, std::string_view input, std::string_view signature_or_hmac);

  // Convenience forms returning std::string.
  std::string encrypt(std::string_view name, std::string_view plaintext, std::string_view context = {},
                      Form form = Form::Text, uint32_t key_version = 0);
  std::string decrypt(std::string_view name, std::string_view ciphertext, std::string_view context = {});

  struct State;  // one key: immutable once published

 private:
  std::shared_ptr<const State> get(std::string_view name);
  template <class F>
  std::shared_ptr<const State> mutate(std::string_view name, F&& f);
  void publish(std::shared_ptr<const State> s);

  TransitStore& store_;
  std::function<int64_t()> clock_;
  std::shared_mutex mu_;  // the cache
  std::map<std::string, std::shared_ptr<const State>, std::less<>> cache_;
  std::mutex write_mu_;  // serializes changes to keys
};

}  // namespace vellum::crypto
