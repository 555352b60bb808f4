#include "config.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <stdexcept>
#include <string>

namespace vellum::crypto {

namespace {

// Base64 of exactly 32 bytes; messages name the key, never the value.
Key parse_root_key(const std::string& name, const nlohmann::json& v) {
  if (!v.is_string())
    throw std::invalid_argument(name + " must be a string: base64 of 32 bytes, e.g. " + name +
                                " = { env = \"VELLUM_ROOT_KEY\" }");
  std::string s = v.get<std::string>();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  auto raw = b64decode(s);
  cleanse(s.data(), s.size());
  if (!raw)
    throw std::invalid_argument(name + " is not valid base64 (generate one with: openssl rand -base64 32)");
  if (raw->size() != 32) {
    const std::string n = std::to_string(raw->size());
    cleanse(raw->data(), raw->size());
    throw std::invalid_argument(name + " must decode to exactly 32 bytes, it decodes to " + n +
                                " (generate one with: openssl rand -base64 32)");
  }
  Key k;
  std::memcpy(k.data(), raw->data(), 32);
  cleanse(raw->data(), raw->size());
  return k;
}

}  // namespace

Config parse_config(std::string_view text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) throw std::invalid_argument("the plugin table is not a JSON object");
  Config c;
  bool has_root = false;
  for (const auto& [k, v] : j.items()) {
    if (k == "root_key" || k == "new_root_key") {
      Key key = parse_root_key(k, v);
      if (k == "root_key") {
        c.root_key = key;
        has_root = true;
      } else {
        c.new_root_key = key;
      }
      cleanse(key.data(), key.size());
    } else if (k == "rotate_after_encryptions") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1)
        throw std::invalid_argument("rotate_after_encryptions must be a positive integer");
      const auto n = v.get<uint64_t>();
      if (n > (uint64_t{1} << 32))
        throw std::invalid_argument(
            "rotate_after_encryptions must be at most 2^32 (4294967296): AES-GCM with random 96-bit nonces "
            "must not be used for more encryptions under one key");
      c.rotate_after_encryptions = n;
    } else if (k == "rewrap_batch") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 10000)
        throw std::invalid_argument("rewrap_batch must be an integer from 1 to 10000");
      c.rewrap_batch = v.get<uint32_t>();
    } else if (k == "min_rsa_bits") {
      if (!v.is_number_integer() ||
          (v.get<int64_t>() != 2048 && v.get<int64_t>() != 3072 && v.get<int64_t>() != 4096))
        throw std::invalid_argument("min_rsa_bits must be 2048, 3072 or 4096 (never below 2048)");
      c.min_rsa_bits = v.get<unsigned>();
    } else if (k == "key_chain_rotate_after_s") {
      // Ten years at most: a longer period is "never", which defeats scheduled rotation.
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 315360000)
        throw std::invalid_argument(
            "key_chain_rotate_after_s must be an integer from 1 to 315360000 seconds");
      c.key_chain_rotate_after_s = v.get<uint64_t>();
    } else {
      throw std::invalid_argument(
          "unknown key '" + k +
          "' (known: root_key, new_root_key, rotate_after_encryptions, rewrap_batch, min_rsa_bits, "
          "key_chain_rotate_after_s)");
    }
  }
  if (c.new_root_key && *c.new_root_key == c.root_key)
    throw std::invalid_argument(
        "new_root_key is the same as root_key: generate a new one (openssl rand -base64 32)");
  if (!has_root)
    throw std::invalid_argument(
        "root_key is required: base64 of 32 bytes, e.g. root_key = { env = \"VELLUM_ROOT_KEY\" } or { file = "
        "\"/etc/vellum/root.key\" }");
  return c;
}

}  // namespace vellum::crypto
