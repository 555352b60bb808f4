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

// Hocuspocus's provider protocol (@hocuspocus/provider and server 3.x,
// types.ts, OutgoingMessage.ts, common/auth.ts): every message starts with
// the document name (varString), then an outer type. Sync, awareness and
// query-awareness continue exactly as y-protocols messages do; the others
// are Hocuspocus's own.
namespace hocuspocus {

enum Type : uint8_t {
  kSync = 0,
  kAwareness = 1,
  kAuth = 2,
  kQueryAwareness = 3,
  kStateless = 5,
  kClose = 7,
  kSyncStatus = 8,
};
// Inner types of kAuth: the client's token, the server's answers.
enum AuthType : uint8_t { kToken = 0, kPermissionDenied = 1, kAuthenticated = 2 };

struct Frame {
  std::string_view name;  // the document name (valid UTF-8)
  uint64_t type = 0;
  std::string_view body;     // after the name: a y-protocols message for kSync/kAwareness/kQueryAwareness
  collab::Message message;   // parsed body for those three types
  std::string_view token;    // kAuth
  std::string_view payload;  // kStateless (valid UTF-8)
};
// Throws DecodeError for truncated input, unknown types, trailing bytes, or
// an auth message that is not a token.
Frame parse(std::string_view data);

// The name prefix every message to a document's provider starts with.
std::string prefix(std::string_view name);
// Messages without the prefix (append them to it).
std::string authenticated(bool read_only);  // scope "readonly" or "read-write"
std::string permission_denied(std::string_view reason);
std::string sync_status(bool applied);
std::string stateless(std::string_view payload);
std::string close(std::string_view reason);

}  // namespace hocuspocus

}  // namespace vellum::editor::collab
