// Per-document content encryption: AES-256-GCM under the document's own data
// key, with AAD binding the ciphertext to its document id and version.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vellum::editor {

// "vellum.editor.v1" ‖ 0x00 ‖ doc_id ‖ 0x00 ‖ version (u64 big-endian).
std::string content_aad(std::string_view doc_id, uint64_t version);

// nonce (12, random) ‖ ciphertext ‖ tag (16). key must be 32 bytes.
std::string seal(std::string_view key, std::string_view doc_id, uint64_t version, std::string_view plaintext);
// nullopt if the key, id, version or bytes do not match.
std::optional<std::string> open(std::string_view key, std::string_view doc_id, uint64_t version,
                                std::string_view sealed);

std::string sha256_hex(std::string_view data);
std::string b64encode(std::string_view data);
std::optional<std::string> b64decode(std::string_view text);
// Overwrites s with zeros (for raw keys) before it is freed.
void wipe(std::string& s) noexcept;

}  // namespace vellum::editor
