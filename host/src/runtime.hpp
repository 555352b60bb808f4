// The host runtime: loaded plugins, routing, WebSocket connections and rooms,
// the event bus, the service registry, metrics, timers and audit. Transport
// code (server.cpp) and the C table (host_api.cpp) both drive it; neither the
// runtime nor the table includes Beast.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <vellum/abi.h>

#include "audit.hpp"
#include "config.hpp"
#include "http_types.hpp"
#include "identity.hpp"
#include "storage/store.hpp"

namespace boost::asio {
class io_context;
}

namespace vellum::host {
class Runtime;

// A user pointer with its free callback, freed exactly once.
struct OwnedUser {
  void* user = nullptr;
  vellum_user_free_fn free_fn = nullptr;
  OwnedUser(void* u, vellum_user_free_fn f) : user(u), free_fn(f) {}
  OwnedUser(const OwnedUser&) = delete;
  OwnedUser& operator=(const OwnedUser&) = delete;
  ~OwnedUser() {
    if (free_fn) free_fn(user);
  }
};

enum class PluginState { Loaded, Created, Started, Stopped, Failed, Disabled };
const char* to_string(PluginState s);
enum class Phase { None, Creating, Starting, Running, Stopping, Destroyed };

}  // namespace vellum::host

// The host's record of one plugin (opaque to plugins).
struct vellum_plugin {
  vellum::host::Runtime* rt = nullptr;
  vellum::host::PluginConfig config;
  vellum_plugin_v1_info info{};  // zero-extended copy of the plugin's descriptor
  std::string name, version, description, path, sha256;
  std::vector<std::string> requires_list, provides;
  void* instance = nullptr;
  std::atomic<vellum::host::PluginState> state{vellum::host::PluginState::Loaded};
  std::atomic<vellum::host::Phase> phase{vellum::host::Phase::None};
  bool created = false;  // create() succeeded: destroy() is owed (instance may be NULL)
  std::string error;     // why it failed or was disabled
  std::atomic<uint64_t> call_errors{0};
};

namespace vellum::host {

// ---------------------------------------------------------------- routing
struct PathPattern {
  std::string text;
  std::vector<std::string> segments;               // "{name}" = parameter
  static PathPattern parse(const std::string& p);  // throws std::invalid_argument
  bool match(std::string_view path, std::vector<std::pair<std::string, std::string>>* params) const;
  bool match_segments(const std::vector<std::string_view>& segs,
                      std::vector<std::pair<std::string, std::string>>* params) const;
};

struct RouteEntry {
  std::string method;
  PathPattern pattern;
  uint32_t flags = 0;
  std::string summary, openapi_json;
  vellum_plugin* plugin = nullptr;  // nullptr for host routes
  vellum_http_handler_fn handler = nullptr;
  std::shared_ptr<OwnedUser> user;
  std::function<void(vellum_request&)> native;  // host routes
  bool blocking = false;                        // host routes that hash passwords: run off the I/O threads
  bool admin_only = false;                      // host routes: administrators only
  bool session_only = false;                    // host routes: not with an API token
};

struct WsEntry {
  PathPattern pattern;
  uint32_t flags = 0;
  std::string summary;
  vellum_plugin* plugin = nullptr;
  vellum_ws_endpoint_v1 ep{};
  std::shared_ptr<OwnedUser> user;
  uint64_t max_queued_bytes = 0, max_message_bytes = 0;
};

class Router {
 public:
  void add(std::shared_ptr<RouteEntry> r);  // throws StoreError-like std::runtime_error on conflict
  void add_ws(std::shared_ptr<WsEntry> w);
  struct Match {
    std::shared_ptr<RouteEntry> route;
    std::vector<std::pair<std::string, std::string>> params;
    std::vector<std::string> allowed;  // methods matching the path when the method did not
  };
  Match match(std::string_view method, std::string_view path) const;
  std::shared_ptr<WsEntry> match_ws(std::string_view path,
                                    std::vector<std::pair<std::string, std::string>>* params) const;
  std::vector<std::shared_ptr<RouteEntry>> routes() const;
  std::vector<std::shared_ptr<WsEntry>> websockets() const;
  void remove_plugin(const vellum_plugin* p);

 private:
  mutable std::shared_mutex mu_;
  std::vector<std::shared_ptr<RouteEntry>> routes_;
  std::vector<std::shared_ptr<WsEntry>> ws_;
};

}  // namespace vellum::host

// One HTTP request in flight (opaque to plugins).
struct vellum_request {
  vellum::host::HttpRequest http;
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<std::pair<std::string, std::string>> query_params;
  bool query_parsed = false;
  vellum::host::HeaderList resp_headers;
  std::shared_ptr<vellum::host::RouteEntry> route;
  std::optional<vellum::host::Authenticated> auth;  // the caller, when a valid token came with the request
  // Set by the transport; called exactly once with the response.
  std::function<void(vellum::host::HttpResponse&&)> complete;
  std::atomic<bool> responded{false};
  bool audit_failed = false;  // a host audit record could not be written under fail_closed
  std::mutex mu;
  bool respond(vellum::host::HttpResponse&& r);  // false if already responded
};

struct vellum_service_ref {
  std::string name;
  vellum_plugin* provider = nullptr;
  vellum_plugin* consumer = nullptr;
};

namespace vellum::host {

// ---------------------------------------------------------------- WebSockets
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  // Queue a message; VELLUM_ERR_LIMIT if the queue bound is exceeded (the
  // connection then closes with 1008).
  virtual vellum_status send(std::shared_ptr<const std::string> data, bool binary) = 0;
  virtual void close(uint16_t code, std::string reason) = 0;
};

class WsHub {
 public:
  vellum_conn_id next_id() { return ++last_id_; }
  // session_id/user_id: the session the connection was opened with (empty
  // for public endpoints without a token); it is closed when that ends.
  // client_ip/user_agent: from the upgrade request, for in-band authentication.
  void add(vellum_conn_id id, std::weak_ptr<WsConnection> c, vellum_plugin* owner,
           std::string session_id = {}, std::string user_id = {}, std::string client_ip = {},
           std::string user_agent = {});
  // Binds an open connection of `owner` to a session authenticated in-band
  // (ws_authenticate): NOT_FOUND, CONFLICT if bound to another session, or
  // OK with the upgrade's client_ip and user_agent.
  vellum_status bind_session(vellum_conn_id id, const vellum_plugin* owner, const std::string& session_id,
                             const std::string& user_id, std::string* client_ip, std::string* user_agent);
  void remove(vellum_conn_id id);  // leaves all rooms
  std::shared_ptr<WsConnection> find(vellum_conn_id id, const vellum_plugin* owner) const;
  vellum_status join(const vellum_plugin* p, std::string_view room, vellum_conn_id id);
  vellum_status leave(const vellum_plugin* p, std::string_view room, vellum_conn_id id);
  uint64_t broadcast(const vellum_plugin* p, std::string_view room, std::shared_ptr<const std::string> data,
                     bool binary, vellum_conn_id except);
  size_t size() const;
  void close_all(uint16_t code, const std::string& reason);
  // Close every connection opened with this session; returns how many.
  size_t close_session(const std::string& session_id, uint16_t code, const std::string& reason);
  // The distinct (user id, session id) pairs behind open connections.
  std::vector<std::pair<std::string, std::string>> sessions() const;

 private:
  struct Conn {
    std::weak_ptr<WsConnection> conn;
    vellum_plugin* owner;
    std::set<std::string> rooms;
    std::string session_id, user_id;
    std::string client_ip, user_agent;
  };
  std::atomic<vellum_conn_id> last_id_{0};
  mutable std::mutex mu_;
  std::unordered_map<vellum_conn_id, Conn> conns_;
  std::unordered_map<std::string, std::set<vellum_conn_id>> rooms_;  // "<plugin>\0<room>"
};

// ---------------------------------------------------------------- events
class EventBus {
 public:
  uint64_t subscribe(vellum_plugin* p, std::string pattern, vellum_event_fn fn,
                     std::shared_ptr<OwnedUser> user);
  bool unsubscribe(const vellum_plugin* p, uint64_t id);
  void unsubscribe_all(const vellum_plugin* p);
  size_t publish(std::string_view topic, std::string_view payload);
  static bool valid_topic(std::string_view t);
  static bool valid_pattern(std::string_view p);
  static bool matches(std::string_view pattern, std::string_view topic);

 private:
  struct Sub {
    uint64_t id;
    vellum_plugin* plugin;
    std::string pattern;
    vellum_event_fn fn;
    std::shared_ptr<OwnedUser> user;
    std::atomic<int> in_flight{0};
    std::atomic<bool> removed{false};
  };
  void wait_idle(const std::vector<std::shared_ptr<Sub>>& gone);
  static thread_local std::set<const void*> t_delivering_;  // subscriptions this thread is inside
  std::mutex mu_;
  uint64_t last_id_ = 0;
  std::vector<std::shared_ptr<Sub>> subs_;
};

// ---------------------------------------------------------------- services
class ServiceRegistry {
 public:
  vellum_status add(vellum_plugin* provider, const vellum_service_v1& svc, std::string* err);
  vellum_status acquire(vellum_plugin* consumer, std::string_view name, uint32_t major, uint32_t min_minor,
                        vellum_service_v1* out, vellum_service_ref** ref, std::string* err);
  void release(vellum_service_ref* ref);
  // Blocks until nobody holds a reference to the provider's services (or timeout).
  bool wait_unused(const vellum_plugin* provider, std::chrono::milliseconds timeout);
  void remove_provider(const vellum_plugin* provider);
  struct Info {
    std::string name, provider;
    uint32_t major, minor;
    size_t refs;
  };
  std::vector<Info> list() const;

 private:
  struct Entry {
    vellum_plugin* provider;
    std::string name;
    uint32_t major, minor;
    const void* vtable;
    void* instance;
    size_t refs = 0;
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;
};

// ---------------------------------------------------------------- metrics
class Metrics {
 public:
  Metrics();
  ~Metrics();
  void observe_request(std::string_view method, std::string_view route, uint16_t status, double seconds);
  void ws_opened();
  void ws_closed();
  void plugin_error(std::string_view plugin);
  void auth_throttled();
  vellum_status register_metric(const vellum_plugin* p, int32_t kind, std::string_view name,
                                std::string_view help, uint64_t* id, std::string* err);
  vellum_status record(const vellum_plugin* p, uint64_t id, double v);
  std::string render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------- timers
class Timers {
 public:
  explicit Timers(boost::asio::io_context& io);
  ~Timers();
  uint64_t start(vellum_plugin* p, uint64_t delay_ms, uint64_t interval_ms, vellum_timer_fn fn,
                 std::shared_ptr<OwnedUser> user);
  bool cancel(const vellum_plugin* p, uint64_t id);
  void cancel_all(const vellum_plugin* p);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------- blocking work
// A few threads for deliberately slow work (argon2id), so that a flood of
// logins cannot starve the I/O threads that serve everything else. The queue
// is bounded: when it is full the caller answers 503 at once.
class BlockingPool {
 public:
  BlockingPool(unsigned threads, size_t max_queued);
  ~BlockingPool();  // runs what is queued, then joins
  bool try_post(std::function<void()> job);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  size_t max_queued_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------- runtime
class Runtime {
 public:
  Runtime(Config cfg, boost::asio::io_context& io);
  ~Runtime();
  static const vellum_host_api_v1* api();

  // Load shared objects, check ABI and pins, validate descriptors and order
  // them by `requires`. Throws std::runtime_error naming the plugin and the fix.
  void load_plugins();
  // check-config: ask every loaded plugin to validate its table. Returns errors.
  std::vector<std::string> validate_plugin_configs();
  // Opens storage (and the audit log) — needed before create.
  void open_storage();
  // create + start in dependency order. Throws if a required plugin fails.
  void start_plugins();
  // stop in reverse order, then destroy.
  void stop_plugins();

  void handle_http(const std::shared_ptr<vellum_request>& req);
  // Closes WebSockets whose session has expired or whose user may no longer
  // log in (revocations close them at once; this catches expiry). Returns
  // how many were closed. Called on a timer.
  size_t close_ended_websockets();
  // Sets req.auth from "Authorization: Bearer <token>" (or, for WebSocket
  // upgrades that browsers cannot give headers, the access_token query
  // parameter or a "vellum.bearer, <token>" subprotocol pair).
  void resolve_principal(vellum_request& req, bool websocket);
  // The host's own audit records (identity, admin actions). Returns false if
  // the record could not be written and [audit] fail_closed is on.
  bool audit_host(const vellum_request& req, const std::string& action, const std::string& resource,
                  const std::string& outcome, nlohmann::json details = nlohmann::json::object());
  std::shared_ptr<WsEntry> match_ws(std::string_view path,
                                    std::vector<std::pair<std::string, std::string>>* p) {
    return router.match_ws(path, p);
  }
  bool ready() const { return ready_.load(); }
  std::string plugins_json() const;
  std::string openapi_json() const;

  Config cfg;
  boost::asio::io_context& io;
  std::unique_ptr<Store> store;
  Clock clock = system_clock_ms;
  // [testing] clock_control: how far an administrator moved the clock ahead.
  std::atomic<int64_t> clock_offset_ms{0};
  std::unique_ptr<Identity> identity;
  std::unique_ptr<AuditLog> audit;
  Router router;
  WsHub hub;
  EventBus bus;
  ServiceRegistry services;
  Metrics metrics;
  Timers timers;
  BlockingPool blocking{std::max(1u, std::thread::hardware_concurrency() / 2), 64};
  std::vector<std::unique_ptr<vellum_plugin>> plugins;  // in start order
  std::atomic<bool> barrier_installed{false};
  vellum_plugin* barrier_owner = nullptr;  // its failure is always fatal
  std::atomic<bool> stopping{false};

  // Called for every error status a plugin callback returns.
  void count_plugin_error(vellum_plugin* p);

  // Requests whose handler returned VELLUM_PENDING stay alive here until the
  // plugin calls respond() (even after a 504): the plugin holds a raw pointer.
  // Released for good once plugins are destroyed.
  void hold_pending(const std::shared_ptr<vellum_request>& r);
  void release_pending(vellum_request* r);
  void drop_all_pending();

 private:
  void add_host_routes();
  void add_identity_routes();
  void fail_plugin(vellum_plugin* p, const std::string& why);
  std::atomic<bool> ready_{false};
  std::mutex pending_mu_;
  std::unordered_map<vellum_request*, std::shared_ptr<vellum_request>> pending_;
};

// Maps an ABI status to an HTTP status.
uint16_t http_status_for(vellum_status s);
std::string_view status_name(vellum_status s);

// The calling thread's last host-call error (for host->last_error).
void set_last_error(std::string msg);
const std::string& last_error();
// The message a plugin attached with host->set_error before returning.
void set_plugin_error(std::string msg);
std::string take_plugin_error();

std::string sha256_hex(std::string_view data);

}  // namespace vellum::host
