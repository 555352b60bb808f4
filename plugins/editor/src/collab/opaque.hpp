// The opaque relay protocol for end-to-end encrypted documents
// (/v1/collab-e2ee/{id}, "vellum-e2ee" version 1): clients send ciphertext
// blobs the server numbers, stores and relays without reading them, and
// compact by uploading an encrypted snapshot that replaces the log up to a
// sequence number. Every message is an outer varUint type and its fields
// in lib0 encoding (varUint numbers, varByteArray blobs, varString text).
// The protocol is specified in ../../README.md, "End-to-end encrypted
// documents".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lib0.hpp"

namespace vellum::editor::collab::opaque {

constexpr uint64_t kVersion = 1;

// Client to server.
enum ClientType : uint8_t {
  kSync = 0,       // after_seq
  kAppend = 1,     // ref, blob
  kSnapshot = 2,   // ref, base_seq, covers_seq, blob
  kAwareness = 3,  // blob (empty: my presence is gone)
};

// Server to client.
enum ServerType : uint8_t {
  kWelcome = 0,           // version, writable, peer, snapshot_seq, head_seq
  kSnapshotData = 1,      // covers_seq, blob
  kEntry = 2,             // seq, blob
  kSynced = 3,            // through_seq, head_seq, more
  kAck = 4,               // ref, seq
  kSnapshotAck = 5,       // ref, covers_seq
  kCompacted = 6,         // covers_seq
  kSnapshotRejected = 7,  // ref, snapshot_seq, head_seq, reason
  kDenied = 8,            // ref, code, reason
  kPresence = 9,          // peer, blob (empty: the peer left)
  kAccess = 10,           // writable
};

// Why an append or snapshot was refused (kDenied).
enum DeniedCode : uint8_t { kReadOnly = 1, kLogFull = 2 };

struct ClientMessage {
  uint64_t type = 0;
  uint64_t after = 0;   // kSync
  uint64_t ref = 0;     // kAppend, kSnapshot: the client's own tag, echoed
  uint64_t base = 0;    // kSnapshot: the snapshot the client believes current
  uint64_t covers = 0;  // kSnapshot
  std::string_view blob;
};
// Throws DecodeError: truncated input, unknown types, trailing bytes, an
// empty append or snapshot blob.
ClientMessage parse_client(std::string_view data);

std::string welcome(bool writable, uint64_t peer, uint64_t snapshot_seq, uint64_t head_seq);
std::string snapshot_data(uint64_t covers_seq, std::string_view blob);
std::string entry(uint64_t seq, std::string_view blob);
std::string synced(uint64_t through_seq, uint64_t head_seq, bool more);
std::string ack(uint64_t ref, uint64_t seq);
std::string snapshot_ack(uint64_t ref, uint64_t covers_seq);
std::string compacted(uint64_t covers_seq);
std::string snapshot_rejected(uint64_t ref, uint64_t snapshot_seq, uint64_t head_seq,
                              std::string_view reason);
std::string denied(uint64_t ref, DeniedCode code, std::string_view reason);
std::string presence(uint64_t peer, std::string_view blob);
std::string access(bool writable);

// The stored snapshot record: varUint covers_seq, then the blob.
std::string snapshot_record(uint64_t covers_seq, std::string_view blob);
// Throws DecodeError if the record is damaged.
std::pair<uint64_t, std::string_view> parse_snapshot_record(std::string_view record);

}  // namespace vellum::editor::collab::opaque
