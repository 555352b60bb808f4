#include "collab.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "opaque.hpp"
#include "protocol.hpp"
#include "state.hpp"
#include "yupdate.hpp"

namespace vellum::editor::collab {

using nlohmann::json;
using vellum::Error;

namespace {

constexpr size_t kMaxAwarenessClientsPerMember = 32;  // y-websocket uses one per provider
constexpr size_t kFoldPendingAfter = 64;              // in-memory merges, not storage
const std::string kEmptyUpdate("\0\0", 2);

std::string log_key(const std::string& id, uint64_t seq) { return "collab/" + id + "/" + pad20(seq); }

// True if `path` is `scope` or below it, or if `scope` names an object on
// `path` without its ancestors (a publisher that sent "document/<d>" for a
// document inside folders). Whole segments only: "document/a" is not
// "document/ab". Matching too much costs only a re-check.
bool path_within(const std::string& path, const std::string& scope) {
  if (path == scope) return true;
  if (path.rfind(scope + "/", 0) == 0) return true;
  const std::string inner = "/" + scope;
  for (size_t at = path.find(inner); at != std::string::npos; at = path.find(inner, at + 1)) {
    const size_t end = at + inner.size();
    if (end == path.size() || path[end] == '/') return true;
  }
  return false;
}

uint64_t get_uint(const json& j, const char* key, uint64_t def, uint64_t lo, uint64_t hi) {
  auto it = j.find(key);
  if (it == j.end()) return def;
  if (!it->is_number_unsigned() || it->get<uint64_t>() < lo || it->get<uint64_t>() > hi) {
    std::string m = "collab.";
    m += key;
    m += ": expected an integer in " + std::to_string(lo) + "..";
    m += std::to_string(hi);
    throw std::invalid_argument(m);
  }
  return it->get<uint64_t>();
}

}  // namespace

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool has_scope(std::string_view scopes, std::string_view want) {
  size_t i = 0;
  while (i <= scopes.size()) {
    size_t j = scopes.find(' ', i);
    if (j == std::string_view::npos) j = scopes.size();
    if (scopes.substr(i, j - i) == want) return true;
    i = j + 1;
  }
  return false;
}

bool may_write_scope(const vellum::OwnedPrincipal& who) {
  return who.is_guest() || has_scope(who.scopes, "write");
}

std::string pad20(uint64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(n));
  return buf;
}

Config parse_config(const json& j) {
  Config c;
  if (j.is_null()) return c;
  if (!j.is_object()) throw std::invalid_argument("collab: expected a table");
  static const std::set<std::string> known = {
      "max_message_bytes",          "max_messages_per_second",      "message_burst",
      "max_connections_per_user",   "max_connections_per_document", "max_queued_bytes",
      "compact_after_updates",      "max_documents_per_socket",     "e2ee_max_log_entries",
      "max_unauthenticated_sockets"};
  for (auto& [k, v] : j.items())
    if (!known.count(k)) throw std::invalid_argument("collab: unknown key '" + k + "'");
  c.max_message_bytes = get_uint(j, "max_message_bytes", c.max_message_bytes, 1024, 1ull << 30);
  c.max_messages_per_second =
      static_cast<uint32_t>(get_uint(j, "max_messages_per_second", c.max_messages_per_second, 1, 1000000));
  c.message_burst = static_cast<uint32_t>(
      get_uint(j, "message_burst", std::max<uint64_t>(c.message_burst, 2ull * c.max_messages_per_second), 1,
               10000000));
  c.max_connections_per_user =
      static_cast<uint32_t>(get_uint(j, "max_connections_per_user", c.max_connections_per_user, 1, 1000000));
  c.max_connections_per_document = static_cast<uint32_t>(
      get_uint(j, "max_connections_per_document", c.max_connections_per_document, 1, 1000000));
  c.max_queued_bytes = get_uint(j, "max_queued_bytes", c.max_queued_bytes, 0, 1ull << 32);
  if (c.max_queued_bytes != 0 && c.max_queued_bytes < 1024)
    throw std::invalid_argument("collab.max_queued_bytes: expected 0 or at least 1024");
  c.compact_after_updates =
      static_cast<uint32_t>(get_uint(j, "compact_after_updates", c.compact_after_updates, 2, 10000000));
  c.max_documents_per_socket =
      static_cast<uint32_t>(get_uint(j, "max_documents_per_socket", c.max_documents_per_socket, 1, 100000));
  c.max_unauthenticated_sockets = static_cast<uint32_t>(
      get_uint(j, "max_unauthenticated_sockets", c.max_unauthenticated_sockets, 1, 10000000));
  c.e2ee_max_log_entries =
      static_cast<uint32_t>(get_uint(j, "e2ee_max_log_entries", c.e2ee_max_log_entries, 1, 100000000));
  return c;
}

Server::Server(vellum::Host host, DocDirectory& docs, const json& config)
    : host_(host), docs_(docs), cfg_(parse_config(config)) {
  // A sync answer must fit the client's send queue with room for relays.
  sync_page_bytes_ =
      cfg_.max_queued_bytes ? std::max<uint64_t>(cfg_.max_queued_bytes / 4, 1024) : 1024 * 1024;
  m_updates_ = host_.metric(VELLUM_METRIC_COUNTER, "collab_updates_total", "Updates stored and relayed");
  m_connections_ = host_.metric(VELLUM_METRIC_GAUGE, "collab_connections", "Open collaboration WebSockets");
  m_compactions_ = host_.metric(VELLUM_METRIC_COUNTER, "collab_compactions_total", "Stored logs compacted");

  sharing_sub_ = host_.subscribe(
      "sharing.changed", [this](std::string_view, std::string_view payload) { on_sharing_changed(payload); });
  trash_sub_ = host_.subscribe("editor.document.deleted",
                               [this](std::string_view, std::string_view payload) { on_trashed(payload); });

  host_.route(
      "POST", "/v1/collab/{id}/snapshot", [this](vellum::Request& req) { snapshot(req); }, 0,
      "Store the realtime document's current state as a new version");
  host_.route(
      "GET", "/v1/collab/{id}/state",
      [this](vellum::Request& req) {
        std::string id(req.param("id").value_or(""));
        auto info = valid_id(id) ? docs_.find(id) : std::nullopt;
        if (!info || !host_.authorize(req, "read", info->resource, info->owner))
          throw Error(VELLUM_ERR_NOT_FOUND, "no such document");
        if (info->e2ee)
          throw Error(VELLUM_ERR_CONFLICT, "an end-to-end encrypted document has no server-side state");
        req.respond(200, "application/vnd.yjs.update", state_of(id));
      },
      0, "The realtime document's current state as one Yjs update (v1)");

  auto endpoint = [this](const char* path, const char* summary, uint32_t flags,
                         std::function<void(vellum_conn_id, vellum::Request&)> open,
                         std::function<void(vellum_conn_id, std::string_view)> message) {
    vellum::Host::WebSocketHandlers ws;
    ws.summary = summary;
    ws.flags = flags;
    ws.max_message_bytes = cfg_.max_message_bytes;
    ws.max_queued_bytes = cfg_.max_queued_bytes;
    ws.on_open = std::move(open);
    ws.on_message = [message = std::move(message)](vellum_conn_id conn, bool, std::string_view data) {
      message(conn, data);
    };
    ws.on_close = [this](vellum_conn_id conn, uint16_t) { on_close(conn); };
    host_.websocket(path, std::move(ws));
  };
  endpoint(
      "/v1/collab/{id}", "Yjs realtime collaboration (y-websocket protocol)", 0,
      [this](vellum_conn_id conn, vellum::Request& req) { on_open(conn, req); },
      [this](vellum_conn_id conn, std::string_view data) { on_message(conn, data); });
  // Hocuspocus providers authenticate in a message (ABI 1.4 ws_authenticate),
  // so the upgrade itself carries no token.
  endpoint(
      "/v1/collab-hocuspocus", "Yjs realtime collaboration (Hocuspocus provider protocol, multiplexed)",
      VELLUM_ROUTE_PUBLIC, [this](vellum_conn_id conn, vellum::Request& req) { hp_on_open(conn, req); },
      [this](vellum_conn_id conn, std::string_view data) { hp_on_message(conn, data); });
  endpoint(
      "/v1/collab-e2ee/{id}", "End-to-end encrypted realtime collaboration (opaque relay)", 0,
      [this](vellum_conn_id conn, vellum::Request& req) { x_on_open(conn, req); },
      [this](vellum_conn_id conn, std::string_view data) { x_on_message(conn, data); });
}

Server::~Server() {
  sharing_sub_.reset();
  trash_sub_.reset();
}

// ---------------------------------------------------------------- Yjs state

void Server::load(Doc& d, bool may_compact) {
  std::vector<std::string> rows;
  uint64_t last_seq = 0;
  const std::string prefix = "collab/" + d.id + "/";
  host_.scan_all(prefix, [&](std::string_view k, std::string_view v) {
    rows.emplace_back(v);
    last_seq = std::stoull(std::string(k.substr(prefix.size())));
  });
  std::vector<std::string_view> views(rows.begin(), rows.end());
  d.state = rows.empty() ? kEmptyUpdate : views.size() == 1 ? rows[0] : merge_updates(views);
  d.pending.clear();
  d.next_seq = last_seq + 1;
  d.log_entries = rows.size();
  d.loaded = true;
  if (may_compact && d.log_entries >= cfg_.compact_after_updates) compact(d);
}

std::string Server::current_state(Doc& d) {
  if (!d.pending.empty()) {
    std::vector<std::string_view> all;
    all.reserve(d.pending.size() + 1);
    all.emplace_back(d.state);
    for (auto& p : d.pending) all.emplace_back(p);
    d.state = merge_updates(all);
    d.pending.clear();
  }
  return d.state.empty() ? kEmptyUpdate : d.state;
}

void Server::compact(Doc& d) {
  // The merged state replaces every stored row, under the key of the newest
  // one, in one transaction: a crash leaves either the old log or the new row.
  const std::string state = current_state(d);
  const std::string prefix = "collab/" + d.id + "/";
  try {
    auto txn = host_.begin();
    std::vector<std::string> keys;
    std::string start;
    for (;;) {
      vellum::Host::ScanOptions o;
      o.prefix = prefix;
      o.start = start;
      o.limit = 1000;
      const bool more = txn.scan(o, [&](std::string_view k, std::string_view, uint64_t) {
        keys.emplace_back(k);
        return true;
      });
      if (!more || keys.empty()) break;
      start = keys.back() + std::string(1, '\0');
    }
    if (keys.empty()) return;
    for (size_t i = 0; i + 1 < keys.size(); ++i) txn.erase(keys[i]);
    txn.put(keys.back(), state);
    txn.commit();
    d.log_entries = 1;
    m_compactions_.record(1);
  } catch (const Error& e) {
    // The log is still complete; the next update tries again.
    host_.warn(std::string("collab: compaction deferred: ") + e.what());
  }
}

// ---------------------------------------------------------------- sockets and members

std::shared_ptr<Server::Conn> Server::admit(vellum_conn_id conn) {
  std::shared_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = conns_.find(conn);
    if (it == conns_.end()) return nullptr;
    c = it->second;
  }
  if (c->closing) return nullptr;
  // Token bucket: message_burst at once, max_messages_per_second sustained.
  const int64_t now = host_.now_ms();
  if (now > c->refill_ms) {
    c->tokens = std::min<double>(cfg_.message_burst, c->tokens + static_cast<double>(now - c->refill_ms) *
                                                                     cfg_.max_messages_per_second / 1000.0);
    c->refill_ms = now;
  }
  if (c->tokens < 1) {
    close(conn, *c, kCloseRateLimited, "too many messages per second");
    return nullptr;
  }
  c->tokens -= 1;
  return c;
}

void Server::close(vellum_conn_id conn, Conn& c, uint16_t code, const std::string& reason) {
  c.closing = true;
  host_.close(conn, code, reason);
}

void Server::close(vellum_conn_id conn, uint16_t code, const std::string& reason) {
  std::shared_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = conns_.find(conn);
    if (it != conns_.end()) c = it->second;
  }
  if (c) c->closing = true;
  host_.close(conn, code, reason);
}

uint16_t Server::join(vellum_conn_id conn, const std::shared_ptr<Conn>& c, const std::shared_ptr<Member>& m,
                      bool count_user) {
  std::lock_guard<std::mutex> l(mu_);
  if (count_user && per_user_[c->who.user_id] >= cfg_.max_connections_per_user) {
    if (per_user_[c->who.user_id] == 0) per_user_.erase(c->who.user_id);
    return kCloseTooManyForUser;
  }
  uint32_t* refs = nullptr;
  if (m->proto == Proto::kE2ee) {
    auto& d = open_xdocs_[m->doc_id];
    if (!d) {
      d = std::make_shared<XDoc>();
      d->id = m->doc_id;
    }
    m->xdoc = d;
    refs = &d->refs;
  } else {
    auto& d = open_docs_[m->doc_id];
    if (!d) {
      d = std::make_shared<Doc>();
      d->id = m->doc_id;
      d->hocuspocus_prefix = hocuspocus::prefix(m->doc_id);
    }
    m->doc = d;
    refs = &d->refs;
  }
  if (*refs >= cfg_.max_connections_per_document) {
    if (*refs == 0) {
      if (m->xdoc) open_xdocs_.erase(m->doc_id);
      if (m->doc) open_docs_.erase(m->doc_id);
    }
    m->doc.reset();
    m->xdoc.reset();
    return kCloseTooManyForDocument;
  }
  ++*refs;
  if (m->doc) (m->proto == Proto::kYjs ? m->doc->yjs_members : m->doc->hocuspocus_members)++;
  if (count_user) {
    ++per_user_[c->who.user_id];
    if (c->proto == Proto::kHocuspocus) --unauthenticated_;
    c->authenticated = true;
  }
  if (m->proto == Proto::kHocuspocus)
    c->members[m->doc_id] = m;
  else
    c->single = m;
  conns_[conn] = c;
  return 0;
}

void Server::drop(vellum_conn_id conn, Conn& c, const std::shared_ptr<Member>& m, bool leave_room) {
  if (m->gone.exchange(true)) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = c.members.find(m->doc_id);
    if (it != c.members.end() && it->second == m) c.members.erase(it);
  }
  if (m->xdoc) {
    XDoc& d = *m->xdoc;
    if (leave_room) host_.leave(e2ee_room(d.id), conn);
    bool was_present = false;
    {
      std::lock_guard<std::mutex> l(d.mu);
      was_present = d.presence.erase(m->peer) > 0;
    }
    if (was_present) host_.broadcast(e2ee_room(d.id), opaque::presence(m->peer, {}));
  } else {
    Doc& d = *m->doc;
    if (leave_room) host_.leave(m->proto == Proto::kHocuspocus ? hocuspocus_room(d.id) : d.id, conn);
    std::vector<OwnedAwareness> gone;
    {
      std::lock_guard<std::mutex> l(d.mu);
      for (uint64_t client : m->clients) {
        auto it = d.awareness.find(client);
        if (it == d.awareness.end() || it->second.conn != conn) continue;
        // As y-protocols removeAwarenessStates: a newer clock with a null state.
        gone.push_back({client, it->second.clock + 1, "null"});
        d.awareness.erase(it);
      }
    }
    if (!gone.empty()) relay(d, awareness_message(encode_awareness(gone)), 0);
  }
  std::lock_guard<std::mutex> l(mu_);
  if (m->xdoc) {
    if (--m->xdoc->refs == 0 && m->xdoc->inflight == 0) {
      auto it = open_xdocs_.find(m->doc_id);
      if (it != open_xdocs_.end() && it->second == m->xdoc) open_xdocs_.erase(it);
    }
  } else {
    (m->proto == Proto::kYjs ? m->doc->yjs_members : m->doc->hocuspocus_members)--;
    if (--m->doc->refs == 0 && m->doc->inflight == 0) {
      auto it = open_docs_.find(m->doc_id);
      if (it != open_docs_.end() && it->second == m->doc) open_docs_.erase(it);
    }
  }
}

void Server::evict(vellum_conn_id conn, Conn& c, const std::shared_ptr<Member>& m, uint16_t code,
                   const std::string& reason) {
  if (m->proto != Proto::kHocuspocus) return close(conn, c, code, reason);
  // One document of a multiplexed socket: the others stay. The provider
  // learns it from the auth message and Hocuspocus's close message.
  if (m->gone) return;
  drop(conn, c, m, true);
  host_.send(conn, m->prefix + hocuspocus::permission_denied(reason));
  host_.send(conn, m->prefix + hocuspocus::close(reason));
}

void Server::on_close(vellum_conn_id conn) {
  std::shared_ptr<Conn> c;
  size_t open_count = 0;
  std::vector<std::shared_ptr<Member>> members;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = conns_.find(conn);
    if (it == conns_.end()) return;
    c = it->second;
    conns_.erase(it);
    if (c->authenticated && --per_user_[c->who.user_id] == 0) per_user_.erase(c->who.user_id);
    if (!c->authenticated && c->proto == Proto::kHocuspocus) --unauthenticated_;
    open_count = conns_.size();
    c->each_member([&](const std::shared_ptr<Member>& m) { members.push_back(m); });
  }
  m_connections_.record(static_cast<double>(open_count));
  for (auto& m : members) drop(conn, *c, m, false);
}

bool Server::recheck(const Conn& c, Member& m) {
  if (!host_.authorize(c.who, "read", m.resource, m.owner)) return false;
  m.can_write = may_write_scope(c.who) && host_.authorize(c.who, "write", m.resource, m.owner);
  return true;
}

void Server::on_sharing_changed(std::string_view payload) {
  auto j = json::parse(payload, nullptr, false);
  std::string prefix;
  std::set<std::string> subjects;
  if (j.is_object()) {
    if (j.contains("resource") && j["resource"].is_string()) prefix = j["resource"];
    if (j.contains("subjects") && j["subjects"].is_array())
      for (auto& s : j["subjects"])
        if (s.is_string()) subjects.insert(s.get<std::string>());
  }
  struct Affected {
    vellum_conn_id conn;
    std::shared_ptr<Conn> c;
    std::shared_ptr<Member> m;
  };
  std::vector<Affected> affected;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [conn, c] : conns_) {
      if (!c->authenticated || !(subjects.empty() || subjects.count(c->who.user_id))) continue;
      c->each_member([&](const std::shared_ptr<Member>& m) {
        if (prefix.empty() || path_within(m->resource, prefix)) affected.push_back({conn, c, m});
      });
    }
  }
  for (auto& [conn, c, m] : affected) {
    const bool could_write = m->can_write;
    bool keep = false;
    try {
      keep = recheck(*c, *m);
    } catch (const Error& e) {
      host_.warn(std::string("collab: re-check failed, closing: ") + e.what());
    }
    if (!keep) {
      evict(conn, *c, m, kCloseForbidden, "access to the document was revoked");
    } else if (could_write != m->can_write) {
      // Tell clients that can show it; y-websocket has no such message.
      if (m->proto == Proto::kHocuspocus)
        host_.send(conn, m->prefix + hocuspocus::authenticated(!m->can_write));
      else if (m->proto == Proto::kE2ee)
        host_.send(conn, opaque::access(m->can_write));
    }
  }
}

void Server::on_trashed(std::string_view payload) {
  auto j = json::parse(payload, nullptr, false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) return;
  const std::string id = j["id"];
  std::vector<std::tuple<vellum_conn_id, std::shared_ptr<Conn>, std::shared_ptr<Member>>> victims;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [conn, c] : conns_)
      c->each_member([&](const std::shared_ptr<Member>& m) {
        if (m->doc_id == id) victims.emplace_back(conn, c, m);
      });
  }
  for (auto& [conn, c, m] : victims) evict(conn, *c, m, kCloseGone, "the document was moved to the trash");
}

// ---------------------------------------------------------------- Yjs messages (both framings)

void Server::send_to(vellum_conn_id conn, const Member& m, std::string_view message) {
  if (m.prefix.empty()) {
    host_.send(conn, message);
  } else {
    std::string framed;
    framed.reserve(m.prefix.size() + message.size());
    framed.append(m.prefix).append(message);
    host_.send(conn, framed);
  }
}

void Server::relay(Doc& d, std::string_view message, vellum_conn_id except) {
  if (d.yjs_members > 0) host_.broadcast(d.id, message, true, except);
  if (d.hocuspocus_members > 0) {
    std::string framed;
    framed.reserve(d.hocuspocus_prefix.size() + message.size());
    framed.append(d.hocuspocus_prefix).append(message);
    host_.broadcast(hocuspocus_room(d.id), framed, true, except);
  }
}

void Server::open_yjs(vellum_conn_id conn, const std::shared_ptr<Member>& m) {
  Doc& d = *m->doc;
  std::lock_guard<std::mutex> l(d.mu);
  if (!d.loaded) load(d, true);
  // Joining under the document lock: every update applied after this point
  // is relayed to us, everything before is in the state we answer from.
  host_.join(m->proto == Proto::kHocuspocus ? hocuspocus_room(d.id) : d.id, conn);
  // y-websocket's server opens with its sync step 1; Hocuspocus's answers
  // the provider's (handle_yjs).
  if (m->proto == Proto::kYjs) {
    const Update state = decode_update(current_state(d));
    send_to(conn, *m, sync_step1(encode_state_vector(state_vector(state))));
  }
  if (!d.awareness.empty()) {
    std::vector<OwnedAwareness> all;
    for (auto& [client, a] : d.awareness) all.push_back({client, a.clock, a.state});
    send_to(conn, *m, awareness_message(encode_awareness(all)));
  }
}

void Server::handle_yjs(vellum_conn_id conn, Conn& c, const std::shared_ptr<Member>& m, const Message& msg,
                        std::string_view raw) {
  Doc& d = *m->doc;
  const bool hp = m->proto == Proto::kHocuspocus;
  if (msg.type == kSync && msg.sync_type == kSyncStep1) {
    const StateVector sv = decode_state_vector(msg.payload);
    std::string answer, ours;
    {
      std::lock_guard<std::mutex> l(d.mu);
      const std::string state = current_state(d);
      const Update u = decode_update(state);
      answer = sv.empty() ? state : encode_update(diff_update(u, sv));
      if (hp) ours = encode_state_vector(state_vector(u));
    }
    send_to(conn, *m, sync_step2(answer));
    // Hocuspocus's server follows with its own step 1, so the provider sends what we lack.
    if (hp) send_to(conn, *m, sync_step1(ours));
  } else if (msg.type == kSync) {
    const Update u = decode_update(msg.payload);  // validated before anything is stored
    uint64_t seq = 0;
    {
      std::lock_guard<std::mutex> l(d.mu);
      const bool writer = m->can_write;
      if (!writer || msg.sync_type == kSyncStep2) {
        // A sync step 2 after a reconnect usually repeats what we have:
        // neither store it nor refuse a viewer for it.
        const Update state = decode_update(current_state(d));
        if (adds_nothing(u, state_vector(state), state.ds)) {
          if (hp) send_to(conn, *m, hocuspocus::sync_status(true));
          return;
        }
      }
      if (!writer) {
        // Hocuspocus tells a read-only provider with a negative sync status;
        // y-websocket clients get y-protocols' "permission denied".
        send_to(conn, *m,
                hp ? hocuspocus::sync_status(false)
                   : permission_denied("read-only: you may not edit this document"));
        return;
      }
      seq = d.next_seq++;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      ++d.inflight;  // keeps the document open until its updates are relayed
    }
    Queued q{m->doc, nullptr, seq, std::string(msg.payload), conn, {}};
    if (hp) q.ack = m->prefix + hocuspocus::sync_status(true);
    if (push(std::move(q))) drain();
  } else if (msg.type == kAwareness) {
    const auto entries = parse_awareness(msg.payload);
    {
      std::lock_guard<std::mutex> l(d.mu);
      for (auto& e : entries) {
        // y-websocket clients echo every awareness change they apply, with
        // the same clock: only a strictly newer clock (or a first sighting)
        // makes this member the client id's owner, whose drop clears it.
        auto it = d.awareness.find(e.client);
        if (it != d.awareness.end() && e.clock <= it->second.clock) continue;
        if (e.state == "null") {
          if (it != d.awareness.end()) d.awareness.erase(it);
          m->clients.erase(e.client);
          continue;
        }
        if (!m->clients.count(e.client) && m->clients.size() >= kMaxAwarenessClientsPerMember)
          return close(conn, c, kCloseMalformed, "too many awareness clients on one connection");
        auto& a = d.awareness[e.client];
        a.clock = e.clock;
        a.state = std::string(e.state);
        a.conn = conn;
        m->clients.insert(e.client);
      }
    }
    relay(d, raw, conn);
  } else if (msg.type == kQueryAwareness) {
    std::vector<OwnedAwareness> all;
    {
      std::lock_guard<std::mutex> l(d.mu);
      for (auto& [client, a] : d.awareness) all.push_back({client, a.clock, a.state});
    }
    send_to(conn, *m, awareness_message(encode_awareness(all)));
  }
}

// ---------------------------------------------------------------- y-websocket endpoint

std::shared_ptr<Server::Member> Server::accept(vellum_conn_id conn, vellum::Request& req, Proto proto) {
  const std::string id(req.param("id").value_or(""));
  auto info = valid_id(id) ? docs_.find(id) : std::nullopt;
  if (!info || info->trashed) throw Error(VELLUM_ERR_NOT_FOUND, "no such document");
  // A caller who may not read gets the same answer as for a missing id.
  if (!host_.authorize(req, "read", info->resource, info->owner))
    throw Error(VELLUM_ERR_NOT_FOUND, "no such document");
  if (info->e2ee && proto != Proto::kE2ee)
    throw Error(VELLUM_ERR_CONFLICT, "an end-to-end encrypted document is served by /v1/collab-e2ee/{id}");
  if (!info->e2ee && proto == Proto::kE2ee)
    throw Error(VELLUM_ERR_CONFLICT, "not an end-to-end encrypted document: it is served by /v1/collab/{id}");
  auto c = std::make_shared<Conn>();
  c->proto = proto;
  c->who = vellum::OwnedPrincipal(req.principal());
  c->tokens = cfg_.message_burst;
  c->refill_ms = host_.now_ms();
  auto m = std::make_shared<Member>();
  m->proto = proto;
  m->doc_id = id;
  m->resource = info->resource;
  m->owner = info->owner;
  m->can_write = may_write_scope(c->who) && host_.authorize(req, "write", info->resource, info->owner);
  if (uint16_t refuse = join(conn, c, m, true)) {
    // Accept, then close with a code and reason the client can show (a
    // refused upgrade reaches browsers as an anonymous error).
    host_.close(conn, refuse,
                refuse == kCloseTooManyForUser ? "too many connections for this user"
                                               : "too many connections for this document");
    return nullptr;
  }
  std::lock_guard<std::mutex> l(mu_);
  m_connections_.record(static_cast<double>(conns_.size()));
  return m;
}

void Server::on_open(vellum_conn_id conn, vellum::Request& req) {
  auto m = accept(conn, req, Proto::kYjs);
  if (!m) return;
  try {
    open_yjs(conn, m);
  } catch (const std::exception& e) {
    // The connection stays accepted (on_close cleans up): tell the client why.
    host_.error(std::string("collab: cannot load a document: ") + e.what());
    close(conn, kCloseStorage, "the document cannot be loaded");
  }
}

void Server::on_message(vellum_conn_id conn, std::string_view data) {
  auto c = admit(conn);
  if (!c || !c->single) return;
  try {
    handle_yjs(conn, *c, c->single, parse_message(data), data);
  } catch (const DecodeError& e) {
    close(conn, *c, kCloseMalformed, std::string("malformed message: ") + e.what());
  }
}

// ---------------------------------------------------------------- group commit

bool Server::push(Queued q) {
  std::lock_guard<std::mutex> l(qmu_);
  queue_.push_back(std::move(q));
  if (committing_) return false;  // the thread committing now takes it in its next batch
  committing_ = true;
  return true;
}

void Server::drain() {
  // Group commit across documents: the host has one writer, so one
  // transaction (one fsync) carries everything that arrived while the
  // previous one was written. Each update is durable before anyone else sees
  // it; per connection the order is kept (FIFO).
  std::unique_lock<std::mutex> l(qmu_);
  while (!queue_.empty()) {
    std::vector<Queued> batch;
    batch.swap(queue_);
    l.unlock();
    commit(batch);
    l.lock();
  }
  committing_ = false;
}

void Server::commit(std::vector<Queued>& batch) {
  // An E2EE document whose earlier commit failed stores nothing more through
  // this instance: its sequence numbers would leave a gap.
  std::vector<char> skip(batch.size(), 0);
  for (size_t i = 0; i < batch.size(); ++i)
    if (batch[i].xdoc) {
      std::lock_guard<std::mutex> l(batch[i].xdoc->mu);
      skip[i] = batch[i].xdoc->failed;
    }
  bool stored = false;
  try {
    auto txn = host_.begin();
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& q = batch[i];
      if (skip[i]) continue;
      txn.put(q.xdoc ? "e2ee/" + q.xdoc->id + "/log/" + pad20(q.seq) : log_key(q.doc->id, q.seq), q.update,
              VELLUM_VERSION_ABSENT);
    }
    txn.commit();
    stored = true;
  } catch (const Error& e) {
    host_.error(std::string("collab: cannot store updates: ") + e.what());
  }
  std::vector<std::shared_ptr<Doc>> touched;
  std::vector<std::shared_ptr<XDoc>> failed;
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& q = batch[i];
    if (!stored || skip[i]) {
      // The sender resends what we lack when it reconnects (sync step 1, or
      // its unacknowledged E2EE blobs).
      host_.close(q.from, kCloseStorage, "the update could not be stored");
      if (q.xdoc) failed.push_back(q.xdoc);
    } else if (q.xdoc) {
      XDoc& d = *q.xdoc;
      std::lock_guard<std::mutex> l(d.mu);
      d.head = q.seq;
      host_.broadcast(e2ee_room(d.id), opaque::entry(q.seq, q.update), true, q.from);
      host_.send(q.from, q.ack);
    } else {
      Doc& d = *q.doc;
      std::lock_guard<std::mutex> l(d.mu);
      ++d.log_entries;
      relay(d, sync_update(q.update), q.from);
      if (!q.ack.empty()) host_.send(q.from, q.ack);
      d.pending.push_back(std::move(q.update));
      if (touched.empty() || touched.back() != q.doc) touched.push_back(q.doc);
    }
  }
  if (stored) m_updates_.record(static_cast<double>(batch.size()));
  for (auto& x : failed) {
    // Close everyone on it, and let the next opener load it afresh from storage.
    bool first = false;
    {
      std::lock_guard<std::mutex> l(x->mu);
      first = !x->failed;
      x->failed = true;
    }
    if (!first) continue;
    std::vector<vellum_conn_id> victims;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& [conn, c] : conns_)
        c->each_member([&, conn = conn](const std::shared_ptr<Member>& m) {
          if (m->xdoc == x) victims.push_back(conn);
        });
      auto it = open_xdocs_.find(x->id);
      if (it != open_xdocs_.end() && it->second == x) open_xdocs_.erase(it);
    }
    for (auto conn : victims) host_.close(conn, kCloseStorage, "the update could not be stored");
  }
  // Only now is every committed row of these documents in memory, so a
  // compaction cannot drop one.
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (auto& d : touched) {
    std::lock_guard<std::mutex> l(d->mu);
    if (d->pending.size() >= kFoldPendingAfter) (void)current_state(*d);
    if (d->log_entries >= cfg_.compact_after_updates) compact(*d);
  }
  std::lock_guard<std::mutex> l(mu_);
  for (auto& q : batch) {
    if (q.xdoc) {
      if (--q.xdoc->inflight == 0 && q.xdoc->refs == 0) {
        auto it = open_xdocs_.find(q.xdoc->id);
        if (it != open_xdocs_.end() && it->second == q.xdoc) open_xdocs_.erase(it);
      }
    } else if (--q.doc->inflight == 0 && q.doc->refs == 0) {
      auto it = open_docs_.find(q.doc->id);
      if (it != open_docs_.end() && it->second == q.doc) open_docs_.erase(it);
    }
  }
}

// ---------------------------------------------------------------- HTTP routes

std::string Server::state_of(const std::string& id) {
  std::shared_ptr<Doc> d;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = open_docs_.find(id);
    if (it != open_docs_.end()) d = it->second;
  }
  if (!d) {  // not open: read it without keeping it (and without compacting)
    d = std::make_shared<Doc>();
    d->id = id;
  }
  std::lock_guard<std::mutex> l(d->mu);
  if (!d->loaded) load(*d, false);
  return current_state(*d);
}

void Server::snapshot(vellum::Request& req) {
  const std::string id(req.param("id").value_or(""));
  auto info = valid_id(id) ? docs_.find(id) : std::nullopt;
  if (!info || !host_.authorize(req, "read", info->resource, info->owner))
    throw Error(VELLUM_ERR_NOT_FOUND, "no such document");
  if (!has_scope(req.principal().scopes, "write") ||
      !host_.authorize(req, "write", info->resource, info->owner))
    throw Error(VELLUM_ERR_PERMISSION_DENIED, "you may not write this document");
  if (info->trashed) throw Error(VELLUM_ERR_CONFLICT, "the document is in the trash");
  if (info->e2ee) throw Error(VELLUM_ERR_CONFLICT, "end-to-end encrypted documents cannot be snapshot here");
  const std::string state = state_of(id);
  const uint64_t n =
      docs_.snapshot_version(id, state, std::string(req.principal().user_id), "application/vnd.yjs.update");
  req.json(201, json({{"id", id}, {"version", n}, {"bytes", state.size()}}).dump());
}

}  // namespace vellum::editor::collab
