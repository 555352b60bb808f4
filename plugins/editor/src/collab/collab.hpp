// Realtime collaboration for the editor plugin: the y-websocket protocol on
// /v1/collab/{id}, Hocuspocus's multiplexed provider protocol on
// /v1/collab-hocuspocus, and an opaque relay for end-to-end encrypted
// documents on /v1/collab-e2ee/{id}. Every accepted update is stored
// (through the storage barrier) before it is relayed; stored Yjs logs are
// compacted, E2EE logs are replaced by client snapshots; awareness relay,
// read-only viewers, revocation on sharing.changed, limits and snapshots
// into the editor's versions. See ../../README.md, "Realtime collaboration".
#pragma once

#include <vellum/sdk.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "doc_directory.hpp"
#include "protocol.hpp"

namespace vellum::editor::collab {

struct Config {
  uint64_t max_message_bytes = 8 * 1024 * 1024;
  uint32_t max_messages_per_second = 200;  // sustained, per connection
  uint32_t message_burst = 400;            // bucket size
  uint32_t max_connections_per_user = 64;
  uint32_t max_connections_per_document = 256;
  uint64_t max_queued_bytes = 0;  // 0 = the host's [server] ws_max_queued_bytes
  uint32_t compact_after_updates = 500;
  uint32_t max_documents_per_socket = 64;       // Hocuspocus: documents multiplexed on one socket
  uint32_t max_unauthenticated_sockets = 1024;  // Hocuspocus: sockets before their first authentication
  uint32_t e2ee_max_log_entries = 10000;        // E2EE: entries after the snapshot before appends are refused
};
// Throws std::invalid_argument naming the key (prefixed "collab.").
Config parse_config(const nlohmann::json& j);

// Close codes this server sends (4401 "session ended", 1008 "send queue
// full" and 1009 "message too big" come from the host).
enum CloseCode : uint16_t {
  kCloseMalformed = 4400,
  kCloseUnauthorized = 4401,  // Hocuspocus: too many failed authentications
  kCloseForbidden = 4403,
  kCloseGone = 4404,
  kCloseRateLimited = 4429,
  kCloseTooManyForUser = 4430,
  kCloseTooManyForDocument = 4431,
  kCloseStorage = 4500,
};

class Server {
 public:
  // Registers the WebSocket endpoint, the snapshot route and the
  // sharing.changed subscription: construct it in the plugin's start().
  Server(vellum::Host host, DocDirectory& docs, const nlohmann::json& config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  struct Doc;     // a Yjs document (y-websocket and Hocuspocus)
  struct XDoc;    // an end-to-end encrypted document (opaque relay)
  struct Member;  // one document opened on one socket
  struct Conn;    // one socket
  enum class Proto : uint8_t { kYjs, kHocuspocus, kE2ee };

 private:
  // y-websocket, /v1/collab/{id}
  void on_open(vellum_conn_id conn, vellum::Request& req);
  void on_message(vellum_conn_id conn, std::string_view data);
  // Hocuspocus, /v1/collab-hocuspocus (hocuspocus.cpp)
  void hp_on_open(vellum_conn_id conn, vellum::Request& req);
  void hp_on_message(vellum_conn_id conn, std::string_view data);
  void hp_authenticate(vellum_conn_id conn, const std::shared_ptr<Conn>& c, std::string_view name,
                       std::string_view token);
  // E2EE opaque relay, /v1/collab-e2ee/{id} (e2ee.cpp)
  void x_on_open(vellum_conn_id conn, vellum::Request& req);
  void x_on_message(vellum_conn_id conn, std::string_view data);
  void x_sync(vellum_conn_id conn, Member& m, uint64_t after);
  void x_snapshot(vellum_conn_id conn, Member& m, uint64_t ref, uint64_t base, uint64_t covers,
                  std::string_view blob);
  void x_load(XDoc& d);

  // Shared by the three protocols.
  void on_close(vellum_conn_id conn);
  void on_sharing_changed(std::string_view payload);
  void on_trashed(std::string_view payload);
  void snapshot(vellum::Request& req);
  // Opens a socket for one document whose token came with the upgrade
  // (y-websocket, E2EE): the document must exist, be readable and be served
  // by this protocol (404, 409); then the limits. nullptr if refused (the
  // socket is then accepted and closed with the limit's code).
  std::shared_ptr<Member> accept(vellum_conn_id conn, vellum::Request& req, Proto proto);
  // Looks the socket up; nullptr if it is unknown or closing. Applies the
  // rate limit (closing with 4429).
  std::shared_ptr<Conn> admit(vellum_conn_id conn);
  void close(vellum_conn_id conn, Conn& c, uint16_t code, const std::string& reason);
  void close(vellum_conn_id conn, uint16_t code, const std::string& reason);
  // Registers a member of an open document, counting the limits; returns 0
  // or the close code that refuses it. For a new socket (first member or
  // first authentication) also counts the per-user limit.
  uint16_t join(vellum_conn_id conn, const std::shared_ptr<Conn>& c, const std::shared_ptr<Member>& m,
                bool count_user);
  // Removes a member (its socket stays open for Hocuspocus) and clears its
  // awareness. leave_room: false when the host already left every room.
  void drop(vellum_conn_id conn, Conn& c, const std::shared_ptr<Member>& m, bool leave_room);
  // A member that may no longer read, or whose document went to the trash.
  void evict(vellum_conn_id conn, Conn& c, const std::shared_ptr<Member>& m, uint16_t code,
             const std::string& reason);
  bool recheck(const Conn& c, Member& m);
  // Handles one y-protocols message (sync, awareness, query awareness) for
  // a y-websocket or Hocuspocus member. raw: the message bytes.
  void handle_yjs(vellum_conn_id conn, Conn& c, const std::shared_ptr<Member>& m, const Message& msg,
                  std::string_view raw);
  // Sends a y-protocols message to a member, with its document name first for Hocuspocus.
  void send_to(vellum_conn_id conn, const Member& m, std::string_view message);
  // Relays a y-protocols message to every other member of the document, framed for each protocol.
  void relay(Doc& d, std::string_view message, vellum_conn_id except);
  // Loads the document and sends the opening messages.
  void open_yjs(vellum_conn_id conn, const std::shared_ptr<Member>& m);

  // may_compact: only for a document registered as open (its only writer).
  void load(Doc& d, bool may_compact);
  struct Queued;
  // Queues an update for the group commit (inflight must already count it)
  // and returns true if this thread must drain the queue.
  bool push(Queued q);
  void drain();
  void commit(std::vector<Queued>& batch);
  void compact(Doc& d);
  std::string current_state(Doc& d);
  std::string state_of(const std::string& id);  // open or not

  vellum::Host host_;
  DocDirectory& docs_;
  Config cfg_;
  uint64_t sync_page_bytes_;  // E2EE: bytes of entries per sync answer
  // Guards open_docs_, open_xdocs_, conns_, per_user_, unauthenticated_, every Conn::members
  // and Conn::who after open; taken before any Doc::mu or XDoc::mu.
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Doc>> open_docs_;
  std::map<std::string, std::shared_ptr<XDoc>> open_xdocs_;
  std::map<vellum_conn_id, std::shared_ptr<Conn>> conns_;
  std::map<std::string, uint32_t> per_user_;
  uint32_t unauthenticated_ = 0;  // Hocuspocus sockets not yet counted in per_user_
  // Guards queue_ and committing_; may be taken under a Doc::mu or XDoc::mu, never the reverse.
  std::mutex qmu_;
  std::vector<Queued> queue_;
  bool committing_ = false;
  vellum::Handle sharing_sub_, trash_sub_;
  vellum::Host::Metric m_updates_, m_connections_, m_compactions_;
};

}  // namespace vellum::editor::collab
