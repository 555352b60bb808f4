// The audit part of an evidence package: records of the host's audit log,
// each with an RFC 6962 inclusion proof against a checkpoint the log signed
// with Ed25519 (abi.h audit_excerpt). This checks them as the package's
// README tells a third party to with openssl and a shell function.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vellum::signing {

// RFC 6962 §2.1: leaf = SHA-256(0x00 ‖ body), node = SHA-256(0x01 ‖ l ‖ r); raw 32 bytes.
std::string merkle_leaf_hash(std::string_view body);
std::string merkle_node_hash(std::string_view left, std::string_view right);

// RFC 9162 §2.1.3.2: folds the audit path of the leaf at index in a tree
// of tree_size leaves (hashes raw, sibling first) and compares with root.
bool merkle_inclusion_ok(std::string_view leaf_hash, uint64_t index, uint64_t tree_size,
                         const std::vector<std::string>& path, std::string_view root);

// The root and tree size a checkpoint's signed_data states.
struct CheckpointText {
  std::string root_hex;
  uint64_t tree_size = 0;
  int64_t time_ms = 0;
};
std::optional<CheckpointText> parse_checkpoint_text(std::string_view signed_data);

// Checks package["audit"]: every checkpoint's Ed25519 signature with
// log_public_key_pem over its signed_data, every record's proof against
// the root and tree_size in that signed_data. Returns
// {"valid", "records", "checkpoints", "errors": [...]}.
nlohmann::json check_audit_excerpts(const nlohmann::json& audit, const std::string& log_public_key_pem);

}  // namespace vellum::signing
