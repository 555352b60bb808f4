// vellum/sdk.hpp — header-only C++ layer over vellum/abi.h.
//
//   class Hello : public vellum::Plugin {
//    public:
//     static constexpr const char* kName = "hello";
//     static constexpr const char* kVersion = "1.0.0";
//     Hello(vellum::Host& host, std::string_view config) : Plugin(host) {}
//     void start() override {
//       host().route("GET", "/v1/hello", [](vellum::Request& req) {
//         req.respond(200, "text/plain", "hello");
//       }, VELLUM_ROUTE_PUBLIC);
//     }
//   };
//   VELLUM_PLUGIN(Hello)
//
// Everything that crosses into the host goes through noexcept trampolines:
// a C++ exception thrown by plugin code becomes a status code plus message,
// never an unwind across the C boundary. Host calls that fail throw
// vellum::Error inside plugin code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "abi.h"

namespace vellum {

// An error with an ABI status code. Thrown by SDK wrappers when a host call
// fails; throw it from plugin code to choose the status the host sees
// (INVALID_ARGUMENT → 400, NOT_FOUND → 404, CONFLICT → 409, ...).
class Error : public std::exception {
 public:
  Error(vellum_status status, std::string message) : status_(status), message_(std::move(message)) {}
  vellum_status status() const noexcept { return status_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  vellum_status status_;
  std::string message_;
};

// The standard reason phrase of an HTTP status (RFC 9110), for the "title"
// of a problem+json body a plugin builds itself.
inline const char* http_reason(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 207:
      return "Multi-Status";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 423:
      return "Locked";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status >= 500 ? "Internal Server Error" : status >= 400 ? "Bad Request" : "OK";
  }
}

inline vellum_str to_c(std::string_view s) noexcept { return vellum_str{s.data(), s.size()}; }
inline vellum_bytes to_bytes(std::string_view s) noexcept {
  return vellum_bytes{reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view to_sv(vellum_str s) noexcept {
  return s.size ? std::string_view(s.data, s.size) : std::string_view();
}
inline std::string_view to_sv(vellum_bytes b) noexcept {
  return b.size ? std::string_view(reinterpret_cast<const char*>(b.data), b.size) : std::string_view();
}

namespace detail {
// Runs f, translating any exception into a status code and a host message.
template <class F>
vellum_status guarded(const vellum_host_api_v1* api, vellum_plugin* self, F&& f) noexcept {
  try {
    return f();
  } catch (const Error& e) {
    if (api) api->set_error(self, to_c(e.what()));
    return e.status() == VELLUM_OK ? VELLUM_ERR_INTERNAL : e.status();
  } catch (const std::exception& e) {
    if (api) api->set_error(self, to_c(e.what()));
    return VELLUM_ERR_INTERNAL;
  } catch (...) {
    if (api) api->set_error(self, to_c("unknown exception"));
    return VELLUM_ERR_INTERNAL;
  }
}
// For callbacks whose status nobody reads (events, timers, on_close): a
// failure is logged through the host instead of vanishing.
template <class F>
void guarded_logged(const vellum_host_api_v1* api, vellum_plugin* self, const char* what, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    std::string m = std::string(what) + " failed: " + e.what();
    api->log(self, VELLUM_LOG_ERROR, vellum_str{m.data(), m.size()});
  } catch (...) {
    std::string m = std::string(what) + " failed: unknown exception";
    api->log(self, VELLUM_LOG_ERROR, vellum_str{m.data(), m.size()});
  }
}
template <class T>
void delete_user(void* p) noexcept {
  delete static_cast<T*>(p);
}
}  // namespace detail

class Host;

// The caller of a request; views are valid while the request is.
struct Principal {
  bool authenticated = false;
  std::string_view user_id, session_id, scopes, client_ip, user_agent, request_id;
  int64_t mfa_verified_at_ms = 0;
  std::string_view email;             // ABI minor 3; empty for guests or an older host
  int64_t session_created_at_ms = 0;  // ABI minor 3; 0 from an older host
  // A visitor with a guest session (a redeemed share link), not a user account.
  bool is_guest() const { return user_id.substr(0, 6) == "guest:"; }
};

// A principal that owns its strings: keep one to re-check a long-lived
// connection with Host::authorize(const OwnedPrincipal&, ...).
struct OwnedPrincipal {
  bool authenticated = false;
  std::string user_id, session_id, scopes, client_ip, user_agent, request_id;
  int64_t mfa_verified_at_ms = 0;
  std::string email;
  int64_t session_created_at_ms = 0;
  OwnedPrincipal() = default;
  explicit OwnedPrincipal(const Principal& p)
      : authenticated(p.authenticated),
        user_id(p.user_id),
        session_id(p.session_id),
        scopes(p.scopes),
        client_ip(p.client_ip),
        user_agent(p.user_agent),
        request_id(p.request_id),
        mfa_verified_at_ms(p.mfa_verified_at_ms),
        email(p.email),
        session_created_at_ms(p.session_created_at_ms) {}
  bool is_guest() const { return user_id.rfind("guest:", 0) == 0; }
};

// One HTTP request. Borrowed: valid during the handler, or until respond()
// after defer().
class Request {
 public:
  Request(const vellum_host_api_v1* api, vellum_plugin* self, vellum_request* req) noexcept
      : api_(api), self_(self), req_(req) {}

  std::string_view method() const { return to_sv(api_->req_method(req_)); }
  std::string_view path() const { return to_sv(api_->req_path(req_)); }
  std::string_view query() const { return to_sv(api_->req_query(req_)); }
  std::string_view body() const { return to_sv(api_->req_body(req_)); }
  std::optional<std::string_view> param(std::string_view name) const { return lookup(api_->req_param, name); }
  std::optional<std::string_view> query_param(std::string_view name) const {
    return lookup(api_->req_query_param, name);
  }
  std::optional<std::string_view> header(std::string_view name) const {
    return lookup(api_->req_header, name);
  }
  Principal principal() const {
    vellum_principal_v1 p{};
    p.struct_size = sizeof p;
    check(api_->req_principal(req_, &p));
    return Principal{p.authenticated != 0, to_sv(p.user_id),       to_sv(p.session_id), to_sv(p.scopes),
                     to_sv(p.client_ip),   to_sv(p.user_agent),    to_sv(p.request_id), p.mfa_verified_at_ms,
                     to_sv(p.email),       p.session_created_at_ms};
  }
  void set_header(std::string_view name, std::string_view value) {
    check(api_->resp_header(req_, to_c(name), to_c(value)));
  }
  void respond(uint16_t status, std::string_view content_type, std::string_view body) {
    check(api_->respond(req_, status, to_c(content_type), to_bytes(body)));
  }
  void json(uint16_t status, std::string_view json_text) { respond(status, "application/json", json_text); }
  void problem(uint16_t status, std::string_view title, std::string_view detail = {}) {
    check(api_->respond_problem(req_, status, to_c(title), to_c(detail)));
  }
  // Answer later (from any thread): the handler returns, the request stays
  // open until respond() or problem() is called on this object.
  Request defer() {
    deferred_ = true;
    return *this;
  }
  bool deferred() const noexcept { return deferred_; }
  vellum_request* raw() const noexcept { return req_; }

 private:
  using Lookup = vellum_str (*)(vellum_request*, vellum_str, int*);
  std::optional<std::string_view> lookup(Lookup fn, std::string_view name) const {
    int found = 0;
    vellum_str v = fn(req_, to_c(name), &found);
    if (!found) return std::nullopt;
    return to_sv(v);
  }
  void check(vellum_status s) const {
    if (s != VELLUM_OK) throw Error(s, std::string(to_sv(api_->last_error(self_))));
  }
  const vellum_host_api_v1* api_;
  vellum_plugin* self_;
  vellum_request* req_;
  bool deferred_ = false;
};

// A stored value and its version (for compare-and-set).
struct Value {
  std::string data;
  uint64_t version = 0;
};

// RAII handle that calls `release` once unless moved from.
class Handle {
 public:
  Handle() = default;
  explicit Handle(std::function<void()> release) : release_(std::move(release)) {}
  Handle(Handle&& o) noexcept : release_(std::exchange(o.release_, nullptr)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      release_ = std::exchange(o.release_, nullptr);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  void reset() noexcept {
    if (release_) {
      auto r = std::exchange(release_, nullptr);
      try {
        r();
      } catch (...) {
      }
    }
  }

 private:
  std::function<void()> release_;
};

// An acquired service: T is the service's vtable struct.
template <class T>
class Service {
 public:
  Service() = default;
  Service(const T* vtable, void* instance, Handle h)
      : vtable_(vtable), instance_(instance), handle_(std::move(h)) {}
  const T* operator->() const noexcept { return vtable_; }
  const T& vtable() const noexcept { return *vtable_; }
  void* instance() const noexcept { return instance_; }
  explicit operator bool() const noexcept { return vtable_ != nullptr; }

 private:
  const T* vtable_ = nullptr;
  void* instance_ = nullptr;
  Handle handle_;
};

class Transaction;

// The host, as a plugin sees it. Copyable view; valid for the plugin's life.
class Host {
 public:
  Host(vellum_plugin* self, const vellum_host_api_v1* api) noexcept : self_(self), api_(api) {}
  const vellum_host_api_v1* api() const noexcept { return api_; }
  vellum_plugin* self() const noexcept { return self_; }

  // Throws Error with the host's message unless s is VELLUM_OK.
  void check(vellum_status s) const {
    if (s != VELLUM_OK) throw Error(s, std::string(to_sv(api_->last_error(self_))));
  }

  // ---- logging
  void log(int32_t level, std::string_view msg) const noexcept { api_->log(self_, level, to_c(msg)); }
  void debug(std::string_view m) const noexcept { log(VELLUM_LOG_DEBUG, m); }
  void info(std::string_view m) const noexcept { log(VELLUM_LOG_INFO, m); }
  void warn(std::string_view m) const noexcept { log(VELLUM_LOG_WARN, m); }
  void error(std::string_view m) const noexcept { log(VELLUM_LOG_ERROR, m); }

  // ---- HTTP
  using Handler = std::function<void(Request&)>;
  void route(const char* method, const char* path, Handler handler, uint32_t flags = 0,
             const char* summary = nullptr, const char* openapi_json = nullptr) const {
    struct Ctx {
      Host host;
      Handler fn;
    };
    auto* ctx = new Ctx{*this, std::move(handler)};
    vellum_route_v1 r{};
    r.struct_size = sizeof r;
    r.flags = flags;
    r.method = method;
    r.path = path;
    r.summary = summary;
    r.openapi_json = openapi_json;
    r.user = ctx;
    r.user_free = &detail::delete_user<Ctx>;
    r.handler = [](void* user, vellum_request* raw) noexcept -> vellum_status {
      auto* c = static_cast<Ctx*>(user);
      return detail::guarded(c->host.api_, c->host.self_, [&] {
        Request req(c->host.api_, c->host.self_, raw);
        c->fn(req);
        return req.deferred() ? VELLUM_PENDING : VELLUM_OK;
      });
    };
    check(api_->register_route(self_, &r));  // the host frees ctx on failure
  }

  // ---- WebSocket
  struct WebSocketHandlers {
    std::function<void(vellum_conn_id, Request&)> on_open;  // throw Error to refuse
    std::function<void(vellum_conn_id, bool binary, std::string_view data)> on_message;
    std::function<void(vellum_conn_id, uint16_t code)> on_close;
    uint32_t flags = 0;
    const char* summary = nullptr;
    uint64_t max_queued_bytes = 0;
    uint64_t max_message_bytes = 0;
  };
  void websocket(const char* path, WebSocketHandlers h) const {
    struct Ctx {
      Host host;
      WebSocketHandlers h;
    };
    auto* ctx = new Ctx{*this, std::move(h)};
    vellum_ws_endpoint_v1 ep{};
    ep.struct_size = sizeof ep;
    ep.flags = ctx->h.flags;
    ep.path = path;
    ep.summary = ctx->h.summary;
    ep.max_queued_bytes = ctx->h.max_queued_bytes;
    ep.max_message_bytes = ctx->h.max_message_bytes;
    ep.user = ctx;
    ep.user_free = &detail::delete_user<Ctx>;
    ep.on_open = [](void* user, vellum_conn_id conn, vellum_request* raw) noexcept -> vellum_status {
      auto* c = static_cast<Ctx*>(user);
      return detail::guarded(c->host.api_, c->host.self_, [&] {
        Request req(c->host.api_, c->host.self_, raw);
        if (c->h.on_open) c->h.on_open(conn, req);
        return VELLUM_OK;
      });
    };
    ep.on_message = [](void* user, vellum_conn_id conn, int binary, vellum_bytes data) noexcept {
      auto* c = static_cast<Ctx*>(user);
      vellum_status s = detail::guarded(c->host.api_, c->host.self_, [&] {
        if (c->h.on_message) c->h.on_message(conn, binary != 0, to_sv(data));
        return VELLUM_OK;
      });
      // A handler that failed leaves the connection in an unknown state: close it.
      if (s != VELLUM_OK) c->host.api_->ws_close(c->host.self_, conn, 1011, to_c("internal error"));
    };
    ep.on_close = [](void* user, vellum_conn_id conn, uint16_t code) noexcept {
      auto* c = static_cast<Ctx*>(user);
      detail::guarded_logged(c->host.api_, c->host.self_, "WebSocket on_close", [&] {
        if (c->h.on_close) c->h.on_close(conn, code);
      });
    };
    check(api_->register_websocket(self_, &ep));
  }
  // Returns false if the connection is gone or its queue overflowed.
  bool send(vellum_conn_id conn, std::string_view data, bool binary = true) const noexcept {
    return api_->ws_send(self_, conn, binary ? 1 : 0, to_bytes(data)) == VELLUM_OK;
  }
  void close(vellum_conn_id conn, uint16_t code, std::string_view reason) const noexcept {
    api_->ws_close(self_, conn, code, to_c(reason));
  }
  void join(std::string_view room, vellum_conn_id conn) const {
    check(api_->room_join(self_, to_c(room), conn));
  }
  void leave(std::string_view room, vellum_conn_id conn) const noexcept {
    api_->room_leave(self_, to_c(room), conn);
  }
  uint64_t broadcast(std::string_view room, std::string_view data, bool binary = true,
                     vellum_conn_id except = 0) const {
    uint64_t n = 0;
    check(api_->room_broadcast(self_, to_c(room), binary ? 1 : 0, to_bytes(data), except, &n));
    return n;
  }

  // ---- events
  void publish(std::string_view topic, std::string_view payload_json) const {
    check(api_->publish(self_, to_c(topic), to_c(payload_json)));
  }
  using EventFn = std::function<void(std::string_view topic, std::string_view payload_json)>;
  [[nodiscard]] Handle subscribe(std::string_view pattern, EventFn fn) const {
    struct Ctx {
      Host host;
      EventFn fn;
    };
    auto* ctx = new Ctx{*this, std::move(fn)};
    uint64_t id = 0;
    check(api_->subscribe(
        self_, to_c(pattern),
        [](void* user, vellum_str topic, vellum_str payload) noexcept {
          auto* c = static_cast<Ctx*>(user);
          detail::guarded_logged(c->host.api_, c->host.self_, "event handler",
                                 [&] { c->fn(to_sv(topic), to_sv(payload)); });
        },
        ctx, &detail::delete_user<Ctx>, &id));
    Host h = *this;
    return Handle([h, id] { h.api_->unsubscribe(h.self_, id); });
  }

  // ---- services
  void provide(const char* name, uint32_t major, uint32_t minor, const void* vtable, void* instance) const {
    vellum_service_v1 s{};
    s.struct_size = sizeof s;
    s.name = name;
    s.major = major;
    s.minor = minor;
    s.vtable = vtable;
    s.instance = instance;
    check(api_->service_register(self_, &s));
  }
  template <class T>
  Service<T> acquire(std::string_view name, uint32_t major, uint32_t min_minor) const {
    vellum_service_v1 out{};
    out.struct_size = sizeof out;
    vellum_service_ref* ref = nullptr;
    check(api_->service_acquire(self_, to_c(name), major, min_minor, &out, &ref));
    Host h = *this;
    return Service<T>(static_cast<const T*>(out.vtable), out.instance,
                      Handle([h, ref] { h.api_->service_release(h.self_, ref); }));
  }

  // ---- storage (this plugin's namespace)
  std::optional<Value> get(std::string_view key, vellum_txn* txn = nullptr) const {
    vellum_buffer buf{};
    uint64_t version = 0;
    vellum_status s = api_->kv_get(self_, txn, to_bytes(key), &buf, &version);
    if (s == VELLUM_ERR_NOT_FOUND) return std::nullopt;
    check(s);
    Value v{std::string(reinterpret_cast<const char*>(buf.data), buf.size), version};
    api_->free(buf.data);
    return v;
  }
  uint64_t put(std::string_view key, std::string_view value, uint64_t expected = VELLUM_VERSION_ANY,
               vellum_txn* txn = nullptr) const {
    uint64_t v = 0;
    check(api_->kv_put(self_, txn, to_bytes(key), to_bytes(value), expected, &v));
    return v;
  }
  void erase(std::string_view key, uint64_t expected = VELLUM_VERSION_ANY, vellum_txn* txn = nullptr) const {
    check(api_->kv_delete(self_, txn, to_bytes(key), expected));
  }
  struct ScanOptions {
    std::string_view prefix, start, end;
    uint32_t limit = 0;
    bool reverse = false;
  };
  using ScanFn = std::function<bool(std::string_view key, std::string_view value, uint64_t version)>;
  // Returns true if the limit cut the scan short.
  bool scan(const ScanOptions& o, const ScanFn& fn, vellum_txn* txn = nullptr) const {
    vellum_scan_v1 s{};
    s.struct_size = sizeof s;
    s.reverse = o.reverse ? 1 : 0;
    s.start = to_bytes(o.start);
    s.end = to_bytes(o.end);
    s.prefix = to_bytes(o.prefix);
    s.limit = o.limit;
    struct Ctx {
      const ScanFn* fn;
      std::exception_ptr error;
    } ctx{&fn, nullptr};
    int more = 0;
    vellum_status st = api_->kv_scan(
        self_, txn, &s,
        [](void* user, vellum_bytes k, vellum_bytes v, uint64_t ver) noexcept -> int {
          auto* c = static_cast<Ctx*>(user);
          try {
            return (*c->fn)(to_sv(k), to_sv(v), ver) ? 1 : 0;
          } catch (...) {
            c->error = std::current_exception();
            return 0;
          }
        },
        &ctx, &more);
    if (ctx.error) std::rethrow_exception(ctx.error);
    check(st);
    return more != 0;
  }
  // Every key under prefix, in order, fetched page by page (page_size keys
  // per host call) so no single call holds a large result.
  void scan_all(std::string_view prefix,
                const std::function<void(std::string_view key, std::string_view value)>& fn,
                uint32_t page_size = 1000) const {
    std::string start;  // ScanOptions holds views: the strings live here
    ScanOptions o;
    o.prefix = prefix;
    o.limit = page_size;
    for (;;) {
      std::string last;
      const bool more = scan(o, [&](std::string_view k, std::string_view v, uint64_t) {
        last = std::string(k);
        fn(k, v);
        return true;
      });
      if (!more || last.empty()) return;
      start = last + std::string(1, '\0');  // the next key after the last one seen
      o.start = start;
    }
  }
  inline Transaction begin() const;

  // ---- audit
  void audit(std::string_view action, std::string_view resource, int32_t outcome,
             const Request* req = nullptr, std::string_view details_json = {}) const {
    std::string a(action), r(resource), d(details_json);
    vellum_audit_record_v1 rec{};
    rec.struct_size = sizeof rec;
    rec.outcome = outcome;
    rec.action = a.c_str();
    rec.resource = r.empty() ? nullptr : r.c_str();
    rec.request = req ? req->raw() : nullptr;
    rec.details_json = d.empty() ? nullptr : d.c_str();
    check(api_->audit_append(self_, &rec));
  }

  // ---- authorization
  // True if allowed; false if denied or unauthenticated.
  bool authorize(const Request& req, std::string_view action, std::string_view resource,
                 std::string_view owner_user_id = {}) const {
    vellum_status s = api_->authorize(self_, req.raw(), to_c(action), to_c(resource), to_c(owner_user_id));
    if (s == VELLUM_OK) return true;
    if (s == VELLUM_ERR_PERMISSION_DENIED || s == VELLUM_ERR_UNAUTHENTICATED) return false;
    check(s);
    return false;
  }

  // Re-check a kept principal (ABI minor 2): false if denied, or if the
  // session behind it has ended. Needs a host of minor >= 2 (set kMinMinor).
  bool authorize(const OwnedPrincipal& who, std::string_view action, std::string_view resource,
                 std::string_view owner_user_id = {}) const {
    if (api_->struct_size <
            offsetof(vellum_host_api_v1, authorize_principal) + sizeof api_->authorize_principal ||
        !api_->authorize_principal)
      throw Error(VELLUM_ERR_UNSUPPORTED, "host too old for authorize_principal (needs ABI minor 2)");
    vellum_principal_v1 p = principal_to_c(who);
    vellum_status s = api_->authorize_principal(self_, &p, to_c(action), to_c(resource), to_c(owner_user_id));
    if (s == VELLUM_OK) return true;
    if (s == VELLUM_ERR_PERMISSION_DENIED || s == VELLUM_ERR_UNAUTHENTICATED) return false;
    check(s);
    return false;
  }

  // A decision with the PDP's reason and obligations (ABI minor 3).
  struct Decision {
    bool permit = false;
    bool authenticated = true;  // false: no (live) session; json is then empty
    // {"decision","reason","obligations":[...]}; a permit's obligations
    // must be honoured (docs/sharing.md lists the types).
    std::string json;
  };
  Decision authorize_ex(const Request& req, std::string_view action, std::string_view resource,
                        std::string_view owner_user_id = {}) const {
    return decide_ex(req.raw(), nullptr, action, resource, owner_user_id);
  }
  Decision authorize_ex(const OwnedPrincipal& who, std::string_view action, std::string_view resource,
                        std::string_view owner_user_id = {}) const {
    vellum_principal_v1 p = principal_to_c(who);
    return decide_ex(nullptr, &p, action, resource, owner_user_id);
  }

  // Audit records about `resource` (and everything under resource + "/")
  // with inclusion proofs against a signed checkpoint (ABI minor 3); the
  // JSON text abi.h audit_excerpt describes.
  std::string audit_excerpt(std::string_view resource, uint64_t after_seq = 0, uint32_t limit = 100) const {
    require_minor3(offsetof(vellum_host_api_v1, audit_excerpt) + sizeof api_->audit_excerpt,
                   api_->audit_excerpt != nullptr, "audit_excerpt");
    vellum_buffer out{};
    check(api_->audit_excerpt(self_, to_c(resource), after_seq, limit, &out));
    std::string text(reinterpret_cast<const char*>(out.data), out.size);
    api_->free(out.data);
    return text;
  }

  // ---- in-band WebSocket authentication (ABI minor 4)
  // For a connection to a VELLUM_ROUTE_PUBLIC endpoint whose client sends
  // its token in a message (Hocuspocus's auth message): nullopt if the token
  // is not a live session's; else the principal, and the host binds the
  // connection to that session (closed with 4401 when it ends). Throws
  // Error(VELLUM_ERR_CONFLICT) if the connection is bound to another session.
  std::optional<OwnedPrincipal> ws_authenticate(vellum_conn_id conn, std::string_view token) const {
    if (api_->struct_size < offsetof(vellum_host_api_v1, ws_authenticate) + sizeof api_->ws_authenticate ||
        !api_->ws_authenticate)
      throw Error(VELLUM_ERR_UNSUPPORTED, "host too old for ws_authenticate (needs ABI minor 4)");
    vellum_principal_v1 p{};
    p.struct_size = sizeof p;
    vellum_buffer storage{};
    vellum_status s = api_->ws_authenticate(self_, conn, to_c(token), &p, &storage);
    std::optional<OwnedPrincipal> who;
    if (s == VELLUM_OK)
      who = OwnedPrincipal(Principal{true, to_sv(p.user_id), to_sv(p.session_id), to_sv(p.scopes),
                                     to_sv(p.client_ip), to_sv(p.user_agent), to_sv(p.request_id),
                                     p.mfa_verified_at_ms, to_sv(p.email), p.session_created_at_ms});
    api_->free(storage.data);
    if (s != VELLUM_OK && s != VELLUM_ERR_UNAUTHENTICATED) check(s);
    return who;
  }

  // ---- guest sessions (ABI minor 2)
  // Returns the token (shown once). See abi.h guest_session_issue.
  std::string guest_session_issue(std::string_view subject, std::string_view scopes,
                                  std::string_view display_name, int64_t ttl_ms) const {
    if (api_->struct_size <
            offsetof(vellum_host_api_v1, guest_session_issue) + sizeof api_->guest_session_issue ||
        !api_->guest_session_issue)
      throw Error(VELLUM_ERR_UNSUPPORTED, "host too old for guest sessions (needs ABI minor 2)");
    vellum_buffer out{};
    check(api_->guest_session_issue(self_, to_c(subject), to_c(scopes), to_c(display_name), ttl_ms, &out));
    std::string token(reinterpret_cast<const char*>(out.data), out.size);
    api_->free(out.data);
    return token;
  }
  uint64_t guest_session_revoke(std::string_view subject) const {
    if (api_->struct_size <
            offsetof(vellum_host_api_v1, guest_session_revoke) + sizeof api_->guest_session_revoke ||
        !api_->guest_session_revoke)
      throw Error(VELLUM_ERR_UNSUPPORTED, "host too old for guest sessions (needs ABI minor 2)");
    uint64_t n = 0;
    check(api_->guest_session_revoke(self_, to_c(subject), &n));
    return n;
  }

  // ---- timers
  [[nodiscard]] Handle timer(uint64_t delay_ms, uint64_t interval_ms, std::function<void()> fn) const {
    struct Ctx {
      Host host;
      std::function<void()> fn;
    };
    auto* ctx = new Ctx{*this, std::move(fn)};
    uint64_t id = 0;
    check(api_->timer_start(
        self_, delay_ms, interval_ms,
        [](void* user) noexcept {
          auto* c = static_cast<Ctx*>(user);
          detail::guarded_logged(c->host.api_, c->host.self_, "timer", [&] { c->fn(); });
        },
        ctx, &detail::delete_user<Ctx>, &id));
    Host h = *this;
    return Handle([h, id] { h.api_->timer_cancel(h.self_, id); });
  }

  // ---- metrics
  class Metric {
   public:
    Metric() = default;
    Metric(const vellum_host_api_v1* api, vellum_plugin* self, uint64_t id)
        : api_(api), self_(self), id_(id) {}
    // counter: add v; gauge: set to v; histogram: observe v.
    void record(double v) const noexcept {
      if (api_) api_->metric_record(self_, id_, v);
    }

   private:
    const vellum_host_api_v1* api_ = nullptr;
    vellum_plugin* self_ = nullptr;
    uint64_t id_ = 0;
  };
  Metric metric(int32_t kind, std::string_view name, std::string_view help) const {
    uint64_t id = 0;
    check(api_->metric_register(self_, kind, to_c(name), to_c(help), &id));
    return Metric(api_, self_, id);
  }

  // ---- randomness and time
  std::string random(size_t n) const {
    std::string out(n, '\0');
    check(api_->random_bytes(self_, reinterpret_cast<uint8_t*>(out.data()), n));
    return out;
  }
  int64_t now_ms() const noexcept { return api_->now_ms(self_); }

 private:
  static vellum_principal_v1 principal_to_c(const OwnedPrincipal& who) noexcept {
    vellum_principal_v1 p{};
    p.struct_size = sizeof p;
    p.authenticated = who.authenticated ? 1 : 0;
    p.user_id = vellum::to_c(who.user_id);
    p.session_id = vellum::to_c(who.session_id);
    p.scopes = vellum::to_c(who.scopes);
    p.mfa_verified_at_ms = who.mfa_verified_at_ms;
    p.client_ip = vellum::to_c(who.client_ip);
    p.user_agent = vellum::to_c(who.user_agent);
    p.request_id = vellum::to_c(who.request_id);
    p.email = vellum::to_c(who.email);
    p.session_created_at_ms = who.session_created_at_ms;
    return p;
  }
  void require_minor3(size_t end_offset, bool present, const char* what) const {
    if (api_->struct_size < end_offset || !present)
      throw Error(VELLUM_ERR_UNSUPPORTED, std::string("host too old for ") + what + " (needs ABI minor 3)");
  }
  Decision decide_ex(vellum_request* req, const vellum_principal_v1* who, std::string_view action,
                     std::string_view resource, std::string_view owner_user_id) const {
    require_minor3(offsetof(vellum_host_api_v1, authorize_ex) + sizeof api_->authorize_ex,
                   api_->authorize_ex != nullptr, "authorize_ex");
    vellum_buffer out{};
    vellum_status s =
        api_->authorize_ex(self_, req, who, to_c(action), to_c(resource), to_c(owner_user_id), &out);
    Decision d;
    if (out.data) {
      d.json.assign(reinterpret_cast<const char*>(out.data), out.size);
      api_->free(out.data);
    }
    if (s == VELLUM_OK) {
      d.permit = true;
    } else if (s == VELLUM_ERR_UNAUTHENTICATED) {
      d.authenticated = false;
    } else if (s != VELLUM_ERR_PERMISSION_DENIED) {
      check(s);
    }
    return d;
  }

  vellum_plugin* self_;
  const vellum_host_api_v1* api_;
};

// A storage transaction: commit() or it rolls back when destroyed.
class Transaction {
 public:
  Transaction(const Host& host, vellum_txn* txn) : host_(host), txn_(txn) {}
  Transaction(Transaction&& o) noexcept : host_(o.host_), txn_(std::exchange(o.txn_, nullptr)) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    if (txn_) host_.api()->txn_rollback(host_.self(), txn_);
  }
  std::optional<Value> get(std::string_view key) const { return host_.get(key, live()); }
  uint64_t put(std::string_view key, std::string_view value, uint64_t expected = VELLUM_VERSION_ANY) const {
    return host_.put(key, value, expected, live());
  }
  void erase(std::string_view key, uint64_t expected = VELLUM_VERSION_ANY) const {
    host_.erase(key, expected, live());
  }
  bool scan(const Host::ScanOptions& o, const Host::ScanFn& fn) const { return host_.scan(o, fn, live()); }
  // Erases every key under `prefix` (and before `end`, if given) in pages
  // of 1000, within this transaction.
  void erase_all(std::string_view prefix, std::string_view end = {}) const {
    Host::ScanOptions o;
    o.prefix = prefix;
    o.end = end;
    o.limit = 1000;
    for (;;) {
      std::vector<std::string> keys;
      scan(o, [&](std::string_view k, std::string_view, uint64_t) {
        keys.emplace_back(k);
        return true;
      });
      if (keys.empty()) return;
      for (auto& k : keys) erase(k);
    }
  }
  void commit() { host_.check(host_.api()->txn_commit(host_.self(), std::exchange(txn_, nullptr))); }
  void rollback() noexcept {
    if (txn_) host_.api()->txn_rollback(host_.self(), std::exchange(txn_, nullptr));
  }

 private:
  vellum_txn* live() const {
    if (!txn_) throw Error(VELLUM_ERR_STATE, "transaction already finished");
    return txn_;
  }
  Host host_;
  vellum_txn* txn_;
};

inline Transaction Host::begin() const {
  vellum_txn* t = nullptr;
  check(api_->txn_begin(self_, &t));
  return Transaction(*this, t);
}

// Base class for plugins. Derive, give the class kName and kVersion (and
// optionally kDescription, kRequires, kProvides, kMinMinor and a static
// validate(std::string_view config_json) that throws Error), a constructor
// (Host&, std::string_view config_json), and override start()/stop().
class Plugin {
 public:
  explicit Plugin(Host& host) : host_(host) {}
  virtual ~Plugin() = default;
  virtual void start() {}
  virtual void stop() {}
  Host& host() const noexcept { return host_; }

 private:
  Host& host_;
};

namespace detail {
template <class P>
struct Instance {
  Host host;
  std::unique_ptr<P> plugin;
};

template <class P>
const vellum_plugin_v1_info* make_info() noexcept {
  static const vellum_plugin_v1_info info = [] {
    vellum_plugin_v1_info i{};
    i.struct_size = sizeof i;
    i.abi_major = VELLUM_ABI_MAJOR;
    if constexpr (requires { P::kMinMinor; }) {
      i.abi_min_minor = P::kMinMinor;
    } else {
      i.abi_min_minor = 0;
    }
    i.name = P::kName;
    i.version = P::kVersion;
    if constexpr (requires { P::kDescription; }) i.description = P::kDescription;
    if constexpr (requires { P::kRequires; }) i.requires_list = P::kRequires;
    if constexpr (requires { P::kProvides; }) i.provides_list = P::kProvides;
    if constexpr (requires(std::string_view c) { P::validate(c); }) {
      i.validate_config = [](vellum_plugin* self, const vellum_host_api_v1* api,
                             vellum_str config) noexcept -> vellum_status {
        return guarded(api, self, [&] {
          P::validate(to_sv(config));
          return VELLUM_OK;
        });
      };
    }
    i.create = [](vellum_plugin* self, const vellum_host_api_v1* api, vellum_str config,
                  void** out) noexcept -> vellum_status {
      return guarded(api, self, [&] {
        auto inst = std::make_unique<Instance<P>>(Instance<P>{Host(self, api), nullptr});
        inst->plugin = std::make_unique<P>(inst->host, to_sv(config));
        *out = inst.release();
        return VELLUM_OK;
      });
    };
    i.start = [](void* p) noexcept -> vellum_status {
      auto* inst = static_cast<Instance<P>*>(p);
      return guarded(inst->host.api(), inst->host.self(), [&] {
        inst->plugin->start();
        return VELLUM_OK;
      });
    };
    i.stop = [](void* p) noexcept {
      auto* inst = static_cast<Instance<P>*>(p);
      guarded(inst->host.api(), inst->host.self(), [&] {
        inst->plugin->stop();
        return VELLUM_OK;
      });
    };
    i.destroy = [](void* p) noexcept {
      auto* inst = static_cast<Instance<P>*>(p);
      guarded(inst ? inst->host.api() : nullptr, inst ? inst->host.self() : nullptr, [&] {
        delete inst;
        return VELLUM_OK;
      });
    };
    return i;
  }();
  return &info;
}
}  // namespace detail
}  // namespace vellum

// Generates the plugin's one exported symbol.
#define VELLUM_PLUGIN(PluginClass)                                               \
  extern "C" VELLUM_EXPORT const vellum_plugin_v1_info* vellum_plugin_v1(void) { \
    return ::vellum::detail::make_info<PluginClass>();                           \
  }
