// The realtime server's records, shared by its three protocols
// (collab.cpp: y-websocket, hocuspocus.cpp, e2ee.cpp). Internal to src/collab.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "collab.hpp"

namespace vellum::editor::collab {

// Document ids are lower-case hex (the editor's ids); anything else is unknown.
bool valid_id(std::string_view id);
bool has_scope(std::string_view scopes, std::string_view want);
// Upgrades are GETs, so read-only API tokens get through: they stay viewers.
bool may_write_scope(const vellum::OwnedPrincipal& who);
std::string pad20(uint64_t n);

// Host rooms (fan-out groups), one per document and protocol: each gets the
// framing its clients speak.
inline std::string hocuspocus_room(const std::string& id) { return "h/" + id; }
inline std::string e2ee_room(const std::string& id) { return "x/" + id; }

struct Server::Doc {
  std::string id;
  uint32_t refs = 0;  // members, under Server::mu_
  // Members per protocol, so a relay skips a framing nobody needs.
  std::atomic<uint32_t> yjs_members{0}, hocuspocus_members{0};
  std::string hocuspocus_prefix;  // the document name, as Hocuspocus frames it
  std::mutex mu;                  // everything below
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

struct Server::XDoc {
  std::string id;
  uint32_t refs = 0, inflight = 0;  // under Server::mu_
  std::mutex mu;                    // everything below
  bool loaded = false;
  bool failed = false;        // a commit failed: nothing more is stored through this instance
  uint64_t next_seq = 1;      // the next sequence number to assign
  uint64_t head = 0;          // the newest entry committed and relayed
  uint64_t snapshot_seq = 0;  // what the stored snapshot covers (0: none)
  uint64_t next_peer = 0;
  std::map<uint64_t, std::string> presence;  // peer -> opaque awareness blob, memory only
};

struct Server::Member {
  Proto proto = Proto::kYjs;
  std::string doc_id, resource, owner;
  std::string prefix;  // Hocuspocus: the document name that starts every message
  std::shared_ptr<Doc> doc;
  std::shared_ptr<XDoc> xdoc;
  std::atomic<bool> can_write{false};
  std::atomic<bool> gone{false};  // dropped: late messages for it are ignored
  std::set<uint64_t> clients;     // Yjs awareness client ids, under doc->mu
  // E2EE, under xdoc->mu.
  uint64_t peer = 0;
  bool joined = false;     // in the relay room since its first sync
  uint64_t join_head = 0;  // entries after this come by relay
};

struct Server::Conn {
  Proto proto = Proto::kYjs;
  // Set at open (y-websocket, E2EE) or at the first authentication
  // (Hocuspocus, then under Server::mu_).
  vellum::OwnedPrincipal who;
  bool authenticated = false;  // counted in per_user_, under Server::mu_
  std::atomic<bool> closing{false};
  // Hocuspocus: the documents authenticated on this socket, by id;
  // changed under Server::mu_.
  std::map<std::string, std::shared_ptr<Member>, std::less<>> members;
  // y-websocket and E2EE: the one member (no map node per socket), set
  // before the socket is published in conns_ and never changed.
  std::shared_ptr<Member> single;
  // Every member; under Server::mu_ for Hocuspocus sockets.
  template <class F>
  void each_member(F&& f) const {
    if (single) f(single);
    for (auto& [id, m] : members) f(m);
  }
  // on_message only (never concurrent for one connection).
  double tokens = 0;  // rate limit bucket
  int64_t refill_ms = 0;
  uint32_t failed_auth = 0;
};

struct Server::Queued {
  std::shared_ptr<Doc> doc;    // a Yjs update, or
  std::shared_ptr<XDoc> xdoc;  // an E2EE entry
  uint64_t seq = 0;
  std::string update;
  vellum_conn_id from = 0;
  std::string ack;  // sent to `from` once stored (Hocuspocus sync status, E2EE ack)
};

}  // namespace vellum::editor::collab
