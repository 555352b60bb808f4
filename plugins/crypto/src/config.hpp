// The crypto plugin's configuration ([plugins.crypto]).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "aead.hpp"

namespace vellum::crypto {

struct Config {
  Key root_key{};
  // Root-key rotation: when set, the keyring is re-sealed under this key at
  // start (and the storage key rotated); afterwards it is the root key.
  std::optional<Key> new_root_key;
  uint64_t rotate_after_encryptions = uint64_t{1} << 30;
  uint32_t rewrap_batch = 500;
  unsigned min_rsa_bits = 2048;               // public-key directory: 2048, 3072 or 4096
  uint64_t key_chain_rotate_after_s = 86400;  // key chains: scheduled rotation period (default 24 h)
};

// Parses and validates the plugin's JSON table. Throws std::invalid_argument
// with a message that names the key (never the secret's value).
Config parse_config(std::string_view json);

}  // namespace vellum::crypto
