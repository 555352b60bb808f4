// The y-websocket message framing (y-protocols sync.js, awareness.js,
// auth.js): an outer varUint type, then the type's payload.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib0.hpp"

namespace vellum::editor::collab {

enum MessageType : uint8_t { kSync = 0, kAwareness = 1, kAuth = 2, kQueryAwareness = 3 };
enum SyncType : uint8_t { kSyncStep1 = 0, kSyncStep2 = 1, kSyncUpdate = 2 };

struct Message {
  uint64_t type = 0;
  uint64_t sync_type = 0;    // for kSync
  std::string_view payload;  // state vector, update or awareness update (borrowed)
};

// Throws DecodeError for truncated input, unknown types or trailing bytes.
Message parse_message(std::string_view data);

std::string sync_step1(std::string_view state_vector);
std::string sync_step2(std::string_view update);
std::string sync_update(std::string_view update);
std::string awareness_message(std::string_view awareness_update);
std::string permission_denied(std::string_view reason);

struct AwarenessEntry {
  uint64_t client = 0, clock = 0;
  std::string_view state;  // JSON text; "null" = removed
};
// Throws DecodeError. The states must be JSON (checked).
std::vector<AwarenessEntry> parse_awareness(std::string_view update);
struct OwnedAwareness {
  uint64_t client = 0, clock = 0;
  std::string state;
};
std::string encode_awareness(const std::vector<OwnedAwareness>& entries);

}  // namespace vellum::editor::collab
