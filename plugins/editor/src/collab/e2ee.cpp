// The opaque relay for end-to-end encrypted documents on
// /v1/collab-e2ee/{id} (protocol: opaque.hpp and ../../README.md). The
// server numbers, stores and relays ciphertext blobs it never parses; a
// client compacts by uploading an encrypted snapshot that replaces the log
// up to a sequence number, accepted only on top of the snapshot it was
// built on (compare-and-set), so two compactors cannot lose an entry.
//
// Storage: e2ee/<id>/log/<seq, 20 digits> = blob;
//          e2ee/<id>/snapshot = varUint covers_seq ‖ blob.
#include <string>

#include "collab.hpp"
#include "opaque.hpp"
#include "state.hpp"

namespace vellum::editor::collab {

using vellum::Error;

namespace {

constexpr size_t kMaxPresenceBytes = 64 * 1024;  // one peer's awareness blob, kept in memory

std::string log_prefix(const std::string& id) { return "e2ee/" + id + "/log/"; }
std::string snapshot_key(const std::string& id) { return "e2ee/" + id + "/snapshot"; }

}  // namespace

void Server::x_load(XDoc& d) {
  uint64_t last = 0;
  const std::string prefix = log_prefix(d.id);
  vellum::Host::ScanOptions o;
  o.prefix = prefix;
  o.reverse = true;
  o.limit = 1;
  host_.scan(o, [&](std::string_view k, std::string_view, uint64_t) {
    last = std::stoull(std::string(k.substr(prefix.size())));
    return false;
  });
  uint64_t covers = 0;
  if (auto rec = host_.get(snapshot_key(d.id))) covers = opaque::parse_snapshot_record(rec->data).first;
  // Entries up to the snapshot may all have been replaced by it.
  d.head = std::max(last, covers);
  d.next_seq = d.head + 1;
  d.snapshot_seq = covers;
  d.loaded = true;
}

void Server::x_on_open(vellum_conn_id conn, vellum::Request& req) {
  auto m = accept(conn, req, Proto::kE2ee);
  if (!m) return;
  try {
    XDoc& d = *m->xdoc;
    std::lock_guard<std::mutex> l(d.mu);
    if (!d.loaded) x_load(d);
    if (d.failed) throw Error(VELLUM_ERR_UNAVAILABLE, "an earlier commit failed");
    m->peer = ++d.next_peer;
    host_.send(conn, opaque::welcome(m->can_write, m->peer, d.snapshot_seq, d.head));
  } catch (const std::exception& e) {
    host_.error(std::string("collab: cannot load an end-to-end encrypted document: ") + e.what());
    close(conn, kCloseStorage, "the document cannot be loaded");
  }
}

void Server::x_on_message(vellum_conn_id conn, std::string_view data) {
  auto c = admit(conn);
  if (!c || !c->single) return;
  const std::shared_ptr<Member>& m = c->single;
  XDoc& d = *m->xdoc;
  try {
    const opaque::ClientMessage msg = opaque::parse_client(data);
    switch (msg.type) {
      case opaque::kSync:
        x_sync(conn, *m, msg.after);
        break;
      case opaque::kAppend: {
        if (!m->can_write)
          return (void)host_.send(
              conn, opaque::denied(msg.ref, opaque::kReadOnly, "read-only: you may not edit this document"));
        {
          std::lock_guard<std::mutex> l(mu_);
          ++d.inflight;  // keeps the document open until the entry is relayed
        }
        bool must_drain = false, full = false, failed = false;
        {
          // Numbered and queued under the document lock, so the queue (and
          // therefore storage and relay) follows sequence order.
          std::lock_guard<std::mutex> l(d.mu);
          if (d.failed)
            failed = true;
          else if (d.next_seq - 1 - d.snapshot_seq >= cfg_.e2ee_max_log_entries)
            full = true;
          else {
            const uint64_t seq = d.next_seq++;
            must_drain =
                push(Queued{nullptr, m->xdoc, seq, std::string(msg.blob), conn, opaque::ack(msg.ref, seq)});
          }
        }
        if (failed || full) {
          std::lock_guard<std::mutex> l(mu_);
          --d.inflight;  // the document stays open: this member holds it
        }
        if (failed) return close(conn, *c, kCloseStorage, "the update could not be stored");
        if (full)
          host_.send(conn, opaque::denied(msg.ref, opaque::kLogFull,
                                          "the log is full: upload a snapshot before appending more"));
        if (must_drain) drain();
        break;
      }
      case opaque::kSnapshot:
        if (!m->can_write)
          return (void)host_.send(
              conn, opaque::denied(msg.ref, opaque::kReadOnly, "read-only: you may not edit this document"));
        x_snapshot(conn, *m, msg.ref, msg.base, msg.covers, msg.blob);
        break;
      case opaque::kAwareness: {
        if (msg.blob.size() > kMaxPresenceBytes)
          return close(conn, *c, kCloseMalformed, "awareness state too large");
        {
          std::lock_guard<std::mutex> l(d.mu);
          if (msg.blob.empty()) {
            if (!d.presence.erase(m->peer)) return;
          } else {
            d.presence[m->peer] = std::string(msg.blob);
          }
        }
        host_.broadcast(e2ee_room(d.id), opaque::presence(m->peer, msg.blob), true, conn);
        break;
      }
    }
  } catch (const DecodeError& e) {
    close(conn, *c, kCloseMalformed, std::string("malformed message: ") + e.what());
  } catch (const Error& e) {
    host_.error(std::string("collab: end-to-end encrypted document: ") + e.what());
    close(conn, *c, kCloseStorage, "the document could not be read or stored");
  }
}

void Server::x_sync(vellum_conn_id conn, Member& m, uint64_t after) {
  XDoc& d = *m.xdoc;
  std::lock_guard<std::mutex> l(d.mu);
  if (!m.joined) {
    // From here on every entry after join_head reaches this socket by relay;
    // sync answers stop at join_head, so nothing arrives twice.
    host_.join(e2ee_room(d.id), conn);
    m.joined = true;
    m.join_head = d.head;
    for (auto& [peer, blob] : d.presence)
      if (peer != m.peer) host_.send(conn, opaque::presence(peer, blob));
  }
  const uint64_t bound = m.join_head;
  uint64_t start = after;
  if (after < d.snapshot_seq) {
    // What the client asks for was replaced: the snapshot, then the tail.
    auto rec = host_.get(snapshot_key(d.id));
    if (!rec) throw Error(VELLUM_ERR_INTERNAL, "the snapshot record is missing");
    const auto [covers, blob] = opaque::parse_snapshot_record(rec->data);
    host_.send(conn, opaque::snapshot_data(covers, blob));
    start = covers;
  }
  // One page of entries (start, bound], bounded in bytes so the answer fits
  // the socket's send queue; the client asks again from `through`.
  uint64_t through = std::max(start, bound);
  bool more = false;
  if (start < bound) {
    const std::string prefix = log_prefix(d.id);
    const std::string end = prefix + pad20(bound + 1);
    std::string from = prefix + pad20(start + 1);
    uint64_t bytes = 0, last_seq = start;
    for (;;) {
      vellum::Host::ScanOptions o;
      o.prefix = prefix;
      o.start = from;
      o.end = end;
      o.limit = 1000;
      std::string last_key;
      const bool cut = host_.scan(o, [&](std::string_view k, std::string_view v, uint64_t) {
        if (bytes > 0 && bytes + v.size() > sync_page_bytes_) {
          more = true;
          return false;
        }
        last_seq = std::stoull(std::string(k.substr(prefix.size())));
        host_.send(conn, opaque::entry(last_seq, v));
        bytes += v.size();
        last_key = std::string(k);
        return true;
      });
      if (more || !cut || last_key.empty()) break;
      from = last_key + std::string(1, '\0');
    }
    if (more) through = last_seq;
  }
  host_.send(conn, opaque::synced(through, bound, more));
}

void Server::x_snapshot(vellum_conn_id conn, Member& m, uint64_t ref, uint64_t base, uint64_t covers,
                        std::string_view blob) {
  XDoc& d = *m.xdoc;
  std::unique_lock<std::mutex> l(d.mu);
  auto reject = [&](std::string_view reason) {
    host_.send(conn, opaque::snapshot_rejected(ref, d.snapshot_seq, d.head, reason));
  };
  // The compare-and-set: a snapshot replaces the one it was built on, and
  // only entries that are stored. A compactor that lost the race rebuilds
  // on top of the newer snapshot (COMPACTED tells it which).
  if (d.failed) return reject("the document cannot be stored now");
  if (base != d.snapshot_seq) return reject("the snapshot was built on an older snapshot");
  if (covers <= d.snapshot_seq) return reject("the snapshot covers nothing new");
  if (covers > d.head) return reject("the snapshot covers entries that are not stored yet");
  {
    // One transaction: the new snapshot and the removal of the entries it
    // covers; a crash leaves the old snapshot and log, or the new ones.
    auto txn = host_.begin();
    auto current = txn.get(snapshot_key(d.id));
    const uint64_t stored = current ? opaque::parse_snapshot_record(current->data).first : 0;
    if (stored != d.snapshot_seq) throw Error(VELLUM_ERR_CONFLICT, "the stored snapshot changed underneath");
    txn.put(snapshot_key(d.id), opaque::snapshot_record(covers, blob),
            current ? current->version : VELLUM_VERSION_ABSENT);
    const std::string prefix = log_prefix(d.id);
    txn.erase_all(prefix, prefix + pad20(covers + 1));
    txn.commit();
  }
  d.snapshot_seq = covers;
  m_compactions_.record(1);
  host_.send(conn, opaque::snapshot_ack(ref, covers));
  host_.broadcast(e2ee_room(d.id), opaque::compacted(covers), true, conn);
}

}  // namespace vellum::editor::collab
