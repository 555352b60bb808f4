// Realtime collaboration for the editor plugin: the y-websocket protocol on
// /v1/collab/{id}, persistence of every accepted Yjs update (through the
// storage barrier) before it is relayed, compaction of the stored log,
// awareness relay, read-only viewers, revocation on sharing.changed, limits
// and snapshots into the editor's versions. See ../../README.md,
// "Realtime collaboration".
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

namespace vellum::editor::collab {

struct Config {
  uint64_t max_message_bytes = 8 * 1024 * 1024;
  uint32_t max_messages_per_second = 200;  // sustained, per connection
  uint32_t message_burst = 400;            // bucket size
  uint32_t max_connections_per_user = 64;
  uint32_t max_connections_per_document = 256;
  uint64_t max_queued_bytes = 0;  // 0 = the host's [server] ws_max_queued_bytes
  uint32_t compact_after_updates = 500;
};
// Throws std::invalid_argument naming the key (prefixed "collab.").
Config parse_config(const nlohmann::json& j);

// Close codes this server sends (4401 "session ended", 1008 "send queue
// full" and 1009 "message too big" come from the host).
enum CloseCode : uint16_t {
  kCloseMalformed = 4400,
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

  struct Doc;
  struct Conn;

 private:
  void on_open(vellum_conn_id conn, vellum::Request& req);
  void on_message(vellum_conn_id conn, bool binary, std::string_view data);
  void on_close(vellum_conn_id conn);
  void on_sharing_changed(std::string_view payload);
  void snapshot(vellum::Request& req);

  // may_compact: only for a document registered as open (its only writer).
  void load(Doc& d, bool may_compact);
  struct Queued;
  void enqueue(Queued q);
  void commit(std::vector<Queued>& batch);
  void compact(Doc& d);
  std::string current_state(Doc& d);
  std::string state_of(const std::string& id);  // open or not
  bool recheck(Conn& c);

  vellum::Host host_;
  DocDirectory& docs_;
  Config cfg_;
  std::mutex mu_;  // guards docs_, conns_, per_user_; taken before any Doc::mu
  std::map<std::string, std::shared_ptr<Doc>> open_docs_;
  std::map<vellum_conn_id, std::shared_ptr<Conn>> conns_;
  std::map<std::string, uint32_t> per_user_;
  std::mutex qmu_;  // guards queue_ and committing_; never held with another lock
  std::vector<Queued> queue_;
  bool committing_ = false;
  vellum::Handle sharing_sub_, trash_sub_;
  vellum::Host::Metric m_updates_, m_connections_, m_compactions_;
};

}  // namespace vellum::editor::collab
