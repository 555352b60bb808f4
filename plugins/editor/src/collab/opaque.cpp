#include "opaque.hpp"

#include <initializer_list>

namespace vellum::editor::collab::opaque {

ClientMessage parse_client(std::string_view data) {
  Decoder d(data);
  ClientMessage m;
  m.type = d.var_uint();
  switch (m.type) {
    case kSync:
      m.after = d.var_uint();
      break;
    case kAppend:
      m.ref = d.var_uint();
      m.blob = d.var_bytes();
      if (m.blob.empty()) throw DecodeError("empty blob");
      break;
    case kSnapshot:
      m.ref = d.var_uint();
      m.base = d.var_uint();
      m.covers = d.var_uint();
      m.blob = d.var_bytes();
      if (m.blob.empty()) throw DecodeError("empty blob");
      break;
    case kAwareness:
      m.blob = d.var_bytes();
      break;
    default:
      throw DecodeError("unknown message type");
  }
  d.finish();
  return m;
}

namespace {
std::string numbers(uint64_t type, std::initializer_list<uint64_t> fields) {
  Encoder e;
  e.var_uint(type);
  for (uint64_t f : fields) e.var_uint(f);
  return e.take();
}
std::string with_bytes(uint64_t type, std::initializer_list<uint64_t> fields, std::string_view tail) {
  Encoder e;
  e.var_uint(type);
  for (uint64_t f : fields) e.var_uint(f);
  e.var_bytes(tail);
  return e.take();
}
}  // namespace

std::string welcome(bool writable, uint64_t peer, uint64_t snapshot_seq, uint64_t head_seq) {
  return numbers(kWelcome, {kVersion, writable ? 1u : 0u, peer, snapshot_seq, head_seq});
}
std::string snapshot_data(uint64_t covers_seq, std::string_view blob) {
  return with_bytes(kSnapshotData, {covers_seq}, blob);
}
std::string entry(uint64_t seq, std::string_view blob) { return with_bytes(kEntry, {seq}, blob); }
std::string synced(uint64_t through_seq, uint64_t head_seq, bool more) {
  return numbers(kSynced, {through_seq, head_seq, more ? 1u : 0u});
}
std::string ack(uint64_t ref, uint64_t seq) { return numbers(kAck, {ref, seq}); }
std::string snapshot_ack(uint64_t ref, uint64_t covers_seq) {
  return numbers(kSnapshotAck, {ref, covers_seq});
}
std::string compacted(uint64_t covers_seq) { return numbers(kCompacted, {covers_seq}); }
std::string snapshot_rejected(uint64_t ref, uint64_t snapshot_seq, uint64_t head_seq,
                              std::string_view reason) {
  return with_bytes(kSnapshotRejected, {ref, snapshot_seq, head_seq}, reason);
}
std::string denied(uint64_t ref, DeniedCode code, std::string_view reason) {
  return with_bytes(kDenied, {ref, code}, reason);
}
std::string presence(uint64_t peer, std::string_view blob) { return with_bytes(kPresence, {peer}, blob); }
std::string access(bool writable) { return numbers(kAccess, {writable ? 1u : 0u}); }

std::string snapshot_record(uint64_t covers_seq, std::string_view blob) {
  Encoder e;
  e.var_uint(covers_seq);
  e.raw(blob);
  return e.take();
}

std::pair<uint64_t, std::string_view> parse_snapshot_record(std::string_view record) {
  Decoder d(record);
  const uint64_t covers = d.var_uint();
  return {covers, d.bytes(d.remaining())};
}

}  // namespace vellum::editor::collab::opaque
