#include "collab.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "protocol.hpp"
#include "yupdate.hpp"

namespace vellum::editor::collab {

using nlohmann::json;
using vellum::Error;

namespace {

constexpr size_t kMaxAwarenessClientsPerConn = 32;  // y-websocket uses one per provider
constexpr size_t kFoldPendingAfter = 64;            // in-memory merges, not storage
const std::string kEmptyUpdate("\0\0", 2);

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string log_key(const std::string& id, uint64_t seq) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
  std::string k = "collab/" + id + "/";
  k += buf;
  return k;
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

Config parse_config(const json& j) {
  Config c;
  if (j.is_null()) return c;
  if (!j.is_object()) throw std::invalid_argument("collab: expected a table");
  static const std::set<std::string> known = {
      "max_message_bytes",        "max_messages_per_second",      "message_burst",
      "max_connections_per_user", "max_connections_per_document", "max_queued_bytes",
      "compact_after_updates"};
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
  return c;
}

struct Server::Doc {
  std::string id;
  uint32_t refs = 0;  // connections, under Server::mu_
  std::mutex mu;      // everything below
  bool loaded = false;
  std::string state;                 // merged update of everything folded so far
  std::vector<std::string> pending;  // accepted since the last fold
  uint64_t next_seq = 1;             // storage key of the next update
  uint64_t log_entries = 0;          // stored rows (updates + compacted state)
  struct Presence {
    uint64_t clock = 0;
    std::string state;
    vellum_conn_id conn = 0;
  };
  std::map<uint64_t, Presence> awareness;
  uint32_t inflight = 0;  // queued for the group commit, under Server::mu_
};

struct Server::Queued {
  std::shared_ptr<Doc> doc;
  uint64_t seq = 0;
  std::string update;
  vellum_conn_id from = 0;
};

struct Server::Conn {
  std::string doc_id, resource, owner;
  std::shared_ptr<Doc> doc;
  vellum::OwnedPrincipal who;
  std::atomic<bool> can_write{false};
  std::atomic<bool> closing{false};
  std::set<uint64_t> clients;  // awareness client ids, under doc->mu
  double tokens = 0;           // rate limit bucket; on_message only (never concurrent per conn)
  int64_t refill_ms = 0;
};

Server::Server(vellum::Host host, DocDirectory& docs, const json& config)
    : host_(host), docs_(docs), cfg_(parse_config(config)) {
  m_updates_ = host_.metric(VELLUM_METRIC_COUNTER, "collab_updates_total", "Yjs updates stored and relayed");
  m_connections_ = host_.metric(VELLUM_METRIC_GAUGE, "collab_connections", "Open collaboration WebSockets");
  m_compactions_ = host_.metric(VELLUM_METRIC_COUNTER, "collab_compactions_total", "Stored logs compacted");

  sharing_sub_ = host_.subscribe(
      "sharing.changed", [this](std::string_view, std::string_view payload) { on_sharing_changed(payload); });
  trash_sub_ = host_.subscribe("editor.document.deleted", [this](std::string_view, std::string_view payload) {
    auto j = json::parse(payload, nullptr, false);
    if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) return;
    const std::string id = j["id"];
    std::vector<vellum_conn_id> victims;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& [conn, c] : conns_)
        if (c->doc_id == id) victims.push_back(conn);
    }
    for (auto conn : victims) host_.close(conn, kCloseGone, "the document was moved to the trash");
  });

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
        req.respond(200, "application/vnd.yjs.update", state_of(id));
      },
      0, "The realtime document's current state as one Yjs update (v1)");

  vellum::Host::WebSocketHandlers ws;
  ws.summary = "Yjs realtime collaboration (y-websocket protocol)";
  ws.max_message_bytes = cfg_.max_message_bytes;
  ws.max_queued_bytes = cfg_.max_queued_bytes;
  ws.on_open = [this](vellum_conn_id conn, vellum::Request& req) { on_open(conn, req); };
  ws.on_message = [this](vellum_conn_id conn, bool binary, std::string_view data) {
    on_message(conn, binary, data);
  };
  ws.on_close = [this](vellum_conn_id conn, uint16_t) { on_close(conn); };
  host_.websocket("/v1/collab/{id}", std::move(ws));
}

Server::~Server() {
  sharing_sub_.reset();
  trash_sub_.reset();
}

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

void Server::on_open(vellum_conn_id conn, vellum::Request& req) {
  const std::string id(req.param("id").value_or(""));
  auto info = valid_id(id) ? docs_.find(id) : std::nullopt;
  if (!info || info->trashed) throw Error(VELLUM_ERR_NOT_FOUND, "no such document");
  // A caller who may not read gets the same answer as for a missing id.
  if (!host_.authorize(req, "read", info->resource, info->owner))
    throw Error(VELLUM_ERR_NOT_FOUND, "no such document");
  if (info->e2ee)
    throw Error(VELLUM_ERR_CONFLICT, "end-to-end encrypted documents are not served by /v1/collab yet");
  const auto p = req.principal();
  auto c = std::make_shared<Conn>();
  c->doc_id = id;
  c->resource = info->resource;
  c->owner = info->owner;
  c->who = vellum::OwnedPrincipal(p);
  // Upgrades are GETs, so read-only API tokens get here: they stay viewers.
  const bool scoped = p.is_guest() || has_scope(p.scopes, "write");
  c->can_write = scoped && host_.authorize(req, "write", info->resource, info->owner);
  c->tokens = cfg_.message_burst;
  c->refill_ms = host_.now_ms();

  uint16_t refuse = 0;
  size_t open_count = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto& d = open_docs_[id];
    if (!d) {
      d = std::make_shared<Doc>();
      d->id = id;
    }
    if (per_user_[c->who.user_id] >= cfg_.max_connections_per_user)
      refuse = kCloseTooManyForUser;
    else if (d->refs >= cfg_.max_connections_per_document)
      refuse = kCloseTooManyForDocument;
    if (refuse) {
      if (d->refs == 0) open_docs_.erase(id);
      if (per_user_[c->who.user_id] == 0) per_user_.erase(c->who.user_id);
    } else {
      ++per_user_[c->who.user_id];
      ++d->refs;
      c->doc = d;
      conns_[conn] = c;
    }
    open_count = conns_.size();
  }
  if (refuse) {
    // Accept, then close with a code and reason the client can show (a
    // refused upgrade reaches browsers as an anonymous error).
    host_.close(conn, refuse,
                refuse == kCloseTooManyForUser ? "too many connections for this user"
                                               : "too many connections for this document");
    return;
  }
  m_connections_.record(static_cast<double>(open_count));
  Doc& d = *c->doc;
  try {
    std::lock_guard<std::mutex> l(d.mu);
    if (!d.loaded) load(d, true);
    // Joining under the document lock: every update applied after this point
    // is broadcast to us, everything before is in the state we answer from.
    host_.join(id, conn);
    const Update state = decode_update(current_state(d));
    host_.send(conn, sync_step1(encode_state_vector(state_vector(state))));
    if (!d.awareness.empty()) {
      std::vector<OwnedAwareness> all;
      for (auto& [client, a] : d.awareness) all.push_back({client, a.clock, a.state});
      host_.send(conn, awareness_message(encode_awareness(all)));
    }
  } catch (const std::exception& e) {
    // The connection stays accepted (on_close cleans up): tell the client why.
    host_.error(std::string("collab: cannot load a document: ") + e.what());
    host_.close(conn, kCloseStorage, "the document cannot be loaded");
  }
}

void Server::enqueue(Queued q) {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++q.doc->inflight;  // keeps the document open until its updates are relayed
  }
  std::unique_lock<std::mutex> l(qmu_);
  queue_.push_back(std::move(q));
  if (committing_) return;  // the thread committing now takes it in its next batch
  // Group commit across documents: the host has one writer, so one
  // transaction (one fsync) carries everything that arrived while the
  // previous one was written. Each update is durable before anyone else sees
  // it; per connection the order is kept (FIFO).
  committing_ = true;
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
  bool stored = false;
  try {
    auto txn = host_.begin();
    for (auto& q : batch) txn.put(log_key(q.doc->id, q.seq), q.update, VELLUM_VERSION_ABSENT);
    txn.commit();
    stored = true;
  } catch (const Error& e) {
    host_.error(std::string("collab: cannot store updates: ") + e.what());
  }
  std::vector<std::shared_ptr<Doc>> touched;
  for (auto& q : batch) {
    Doc& d = *q.doc;
    if (!stored) {
      // The sender resends what we lack when it reconnects (sync step 1).
      host_.close(q.from, kCloseStorage, "the update could not be stored");
    } else {
      std::lock_guard<std::mutex> l(d.mu);
      ++d.log_entries;
      host_.broadcast(d.id, sync_update(q.update), true, q.from);
      d.pending.push_back(std::move(q.update));
    }
    if (touched.empty() || touched.back() != q.doc) touched.push_back(q.doc);
  }
  if (stored) m_updates_.record(static_cast<double>(batch.size()));
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
    if (--q.doc->inflight == 0 && q.doc->refs == 0) {
      auto it = open_docs_.find(q.doc->id);
      if (it != open_docs_.end() && it->second == q.doc) open_docs_.erase(it);
    }
  }
}

void Server::on_message(vellum_conn_id conn, bool, std::string_view data) {
  std::shared_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = conns_.find(conn);
    if (it == conns_.end()) return;
    c = it->second;
  }
  if (c->closing) return;
  auto close = [&](uint16_t code, const std::string& reason) {
    c->closing = true;
    host_.close(conn, code, reason);
  };
  // Token bucket: message_burst at once, max_messages_per_second sustained.
  const int64_t now = host_.now_ms();
  if (now > c->refill_ms) {
    c->tokens = std::min<double>(cfg_.message_burst, c->tokens + static_cast<double>(now - c->refill_ms) *
                                                                     cfg_.max_messages_per_second / 1000.0);
    c->refill_ms = now;
  }
  if (c->tokens < 1) return close(kCloseRateLimited, "too many messages per second");
  c->tokens -= 1;

  Doc& d = *c->doc;
  try {
    const Message m = parse_message(data);
    if (m.type == kSync && m.sync_type == kSyncStep1) {
      const StateVector sv = decode_state_vector(m.payload);
      std::string answer;
      {
        std::lock_guard<std::mutex> l(d.mu);
        const std::string state = current_state(d);
        answer = sv.empty() ? state : encode_update(diff_update(decode_update(state), sv));
      }
      host_.send(conn, sync_step2(answer));
    } else if (m.type == kSync) {
      const Update u = decode_update(m.payload);  // validated before anything is stored
      uint64_t seq = 0;
      {
        std::lock_guard<std::mutex> l(d.mu);
        const bool writer = c->can_write;
        if (!writer || m.sync_type == kSyncStep2) {
          // A sync step 2 after a reconnect usually repeats what we have:
          // neither store it nor refuse a viewer for it.
          const Update state = decode_update(current_state(d));
          if (adds_nothing(u, state_vector(state), state.ds)) return;
        }
        if (!writer) {
          host_.send(conn, permission_denied("read-only: you may not edit this document"));
          return;
        }
        seq = d.next_seq++;
      }
      enqueue(Queued{c->doc, seq, std::string(m.payload), conn});
    } else if (m.type == kAwareness) {
      const auto entries = parse_awareness(m.payload);
      {
        std::lock_guard<std::mutex> l(d.mu);
        for (auto& e : entries) {
          // y-websocket clients echo every awareness change they apply, with
          // the same clock: only a strictly newer clock (or a first sighting)
          // makes this connection the client id's owner, whose drop clears it.
          auto it = d.awareness.find(e.client);
          if (it != d.awareness.end() && e.clock <= it->second.clock) continue;
          if (e.state == "null") {
            if (it != d.awareness.end()) d.awareness.erase(it);
            c->clients.erase(e.client);
            continue;
          }
          if (!c->clients.count(e.client) && c->clients.size() >= kMaxAwarenessClientsPerConn)
            return close(kCloseMalformed, "too many awareness clients on one connection");
          auto& a = d.awareness[e.client];
          a.clock = e.clock;
          a.state = std::string(e.state);
          a.conn = conn;
          c->clients.insert(e.client);
        }
      }
      host_.broadcast(d.id, data, true, conn);
    } else if (m.type == kQueryAwareness) {
      std::vector<OwnedAwareness> all;
      {
        std::lock_guard<std::mutex> l(d.mu);
        for (auto& [client, a] : d.awareness) all.push_back({client, a.clock, a.state});
      }
      host_.send(conn, awareness_message(encode_awareness(all)));
    }
  } catch (const DecodeError& e) {
    close(kCloseMalformed, std::string("malformed message: ") + e.what());
  }
}

void Server::on_close(vellum_conn_id conn) {
  std::shared_ptr<Conn> c;
  size_t open_count = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = conns_.find(conn);
    if (it == conns_.end()) return;
    c = it->second;
    conns_.erase(it);
    if (--per_user_[c->who.user_id] == 0) per_user_.erase(c->who.user_id);
    open_count = conns_.size();
  }
  m_connections_.record(static_cast<double>(open_count));
  Doc& d = *c->doc;
  std::vector<OwnedAwareness> gone;
  {
    std::lock_guard<std::mutex> l(d.mu);
    for (uint64_t client : c->clients) {
      auto it = d.awareness.find(client);
      if (it == d.awareness.end() || it->second.conn != conn) continue;
      // As y-protocols removeAwarenessStates: a newer clock with a null state.
      gone.push_back({client, it->second.clock + 1, "null"});
      d.awareness.erase(it);
    }
  }
  if (!gone.empty()) host_.broadcast(d.id, awareness_message(encode_awareness(gone)));
  std::lock_guard<std::mutex> l(mu_);
  if (--c->doc->refs == 0 && c->doc->inflight == 0) {
    auto it = open_docs_.find(c->doc_id);
    if (it != open_docs_.end() && it->second == c->doc) open_docs_.erase(it);
  }
}

bool Server::recheck(Conn& c) {
  if (!host_.authorize(c.who, "read", c.resource, c.owner)) return false;
  const bool scoped = c.who.is_guest() || has_scope(c.who.scopes, "write");
  c.can_write = scoped && host_.authorize(c.who, "write", c.resource, c.owner);
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
  std::vector<std::pair<vellum_conn_id, std::shared_ptr<Conn>>> affected;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [conn, c] : conns_) {
      const bool in_scope = prefix.empty() || path_within(c->resource, prefix);
      if (in_scope && (subjects.empty() || subjects.count(c->who.user_id))) affected.emplace_back(conn, c);
    }
  }
  for (auto& [conn, c] : affected) {
    bool keep = false;
    try {
      keep = recheck(*c);
    } catch (const Error& e) {
      host_.warn(std::string("collab: re-check failed, closing: ") + e.what());
    }
    if (!keep) {
      c->closing = true;
      host_.close(conn, kCloseForbidden, "access to the document was revoked");
    }
  }
}

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
