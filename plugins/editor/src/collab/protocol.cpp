#include "protocol.hpp"

#include <nlohmann/json.hpp>

namespace vellum::editor::collab {

Message parse_message(std::string_view data) {
  Decoder d(data);
  Message m;
  m.type = d.var_uint();
  switch (m.type) {
    case kSync:
      m.sync_type = d.var_uint();
      if (m.sync_type > kSyncUpdate) throw DecodeError("unknown sync message type");
      m.payload = d.var_bytes();
      break;
    case kAwareness:
      m.payload = d.var_bytes();
      break;
    case kAuth:
      // Clients have nothing to say here; y-protocols defines only the
      // server's "permission denied".
      throw DecodeError("auth messages are sent by the server only");
    case kQueryAwareness:
      break;
    default:
      throw DecodeError("unknown message type");
  }
  d.finish();
  return m;
}

namespace {
std::string framed(uint64_t type, int64_t sub, std::string_view payload) {
  Encoder e;
  e.var_uint(type);
  if (sub >= 0) e.var_uint(static_cast<uint64_t>(sub));
  e.var_bytes(payload);
  return e.take();
}
}  // namespace

std::string sync_step1(std::string_view sv) { return framed(kSync, kSyncStep1, sv); }
std::string sync_step2(std::string_view u) { return framed(kSync, kSyncStep2, u); }
std::string sync_update(std::string_view u) { return framed(kSync, kSyncUpdate, u); }
std::string awareness_message(std::string_view a) { return framed(kAwareness, -1, a); }
std::string permission_denied(std::string_view reason) { return framed(kAuth, 0, reason); }

std::vector<AwarenessEntry> parse_awareness(std::string_view update) {
  Decoder d(update);
  const uint64_t n = d.count();
  std::vector<AwarenessEntry> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    AwarenessEntry e;
    e.client = d.var_uint();
    e.clock = d.var_uint();
    e.state = d.var_string();
    if (!nlohmann::json::accept(e.state)) throw DecodeError("awareness state is not JSON");
    out.push_back(e);
  }
  if (!d.done()) throw DecodeError("trailing bytes after awareness update");
  return out;
}

std::string encode_awareness(const std::vector<OwnedAwareness>& entries) {
  Encoder e;
  e.var_uint(entries.size());
  for (auto& a : entries) {
    e.var_uint(a.client);
    e.var_uint(a.clock);
    e.var_bytes(a.state);
  }
  return e.take();
}

namespace hocuspocus {

Frame parse(std::string_view data) {
  Decoder d(data);
  Frame f;
  f.name = d.var_string();
  const char* body = d.pos();
  f.body = std::string_view(body, d.remaining());
  f.type = d.var_uint();
  switch (f.type) {
    case kSync:
    case kAwareness:
    case kQueryAwareness:
      f.message = collab::parse_message(f.body);
      return f;
    case kAuth:
      if (d.var_uint() != kToken) throw DecodeError("auth messages from a provider carry a token");
      f.token = d.var_string();
      break;
    case kStateless:
      f.payload = d.var_string();
      break;
    case kClose:
      break;
    default:
      throw DecodeError("unknown message type");
  }
  d.finish();
  return f;
}

std::string prefix(std::string_view name) {
  Encoder e;
  e.var_bytes(name);
  return e.take();
}

std::string authenticated(bool read_only) {
  Encoder e;
  e.var_uint(kAuth);
  e.var_uint(kAuthenticated);
  e.var_bytes(read_only ? "readonly" : "read-write");
  return e.take();
}

std::string permission_denied(std::string_view reason) {
  Encoder e;
  e.var_uint(kAuth);
  e.var_uint(kPermissionDenied);
  e.var_bytes(reason);
  return e.take();
}

std::string sync_status(bool applied) {
  // The provider reads this with readVarInt: 0 and 1 encode the same either way.
  Encoder e;
  e.var_uint(kSyncStatus);
  e.var_uint(applied ? 1 : 0);
  return e.take();
}

std::string stateless(std::string_view payload) {
  Encoder e;
  e.var_uint(kStateless);
  e.var_bytes(payload);
  return e.take();
}

std::string close(std::string_view reason) {
  Encoder e;
  e.var_uint(kClose);
  e.var_bytes(reason);
  return e.take();
}

}  // namespace hocuspocus

}  // namespace vellum::editor::collab
