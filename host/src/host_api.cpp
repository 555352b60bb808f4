// The C function table plugins call (vellum_host_api_v1). Each entry checks
// its arguments, translates C++ errors into status codes and never lets an
// exception escape.
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include <vellum/services/pdp_v1.h>

#include "runtime.hpp"

using namespace vellum::host;

struct vellum_txn {
  std::unique_ptr<Transaction> txn;
  vellum_plugin* owner;
};

namespace {

std::string_view sv(vellum_str s) {
  return s.size && s.data ? std::string_view(s.data, s.size) : std::string_view();
}
std::string_view sv(vellum_bytes b) {
  return b.size && b.data ? std::string_view(reinterpret_cast<const char*>(b.data), b.size)
                          : std::string_view();
}
vellum_str cstr(const std::string& s) { return vellum_str{s.data(), s.size()}; }

// The scopes a principal carries, derived from its session (a guest's are
// what the issuing plugin gave it).
const std::string& scopes_of(const vellum::host::Authenticated& a);

// Scopes as plugins see them: "read" or "read write", plus "admin" for administrators.
const std::string kScopesRead = "read", kScopesFull = "read write", kScopesAdminRead = "read admin",
                  kScopesAdminFull = "read write admin";

vellum_status fail(vellum_status s, std::string msg) {
  set_last_error(std::move(msg));
  return s;
}

// Runs f, mapping exceptions to statuses with last_error set.
template <class F>
vellum_status guard(F&& f) noexcept {
  try {
    return f();
  } catch (const StoreError& e) {
    return fail(e.status, e.what());
  } catch (const std::bad_alloc&) {
    return fail(VELLUM_ERR_LIMIT, "out of memory");
  } catch (const std::exception& e) {
    return fail(VELLUM_ERR_INTERNAL, e.what());
  } catch (...) {
    return fail(VELLUM_ERR_INTERNAL, "unknown error");
  }
}

bool valid(const vellum_plugin* p) { return p && p->rt; }
// Storage and audit exist only when serving (not in check-config/plugins).
bool has_storage(const vellum_plugin* p) { return valid(p) && p->rt->store; }

// Struct reads: copy min(size, ours) into a zeroed struct (accept larger).
template <class T>
bool read_struct(const T* in, T& out) {
  if (!in || in->struct_size < sizeof(uint32_t)) return false;
  std::memset(&out, 0, sizeof out);
  std::memcpy(&out, in, std::min<size_t>(in->struct_size, sizeof out));
  return true;
}

bool in_phase(const vellum_plugin* p, std::initializer_list<Phase> phases) {
  for (auto ph : phases)
    if (p->phase.load() == ph) return true;
  return false;
}

// ---- memory
void* h_alloc(size_t n) { return std::malloc(n ? n : 1); }
void h_free(void* p) { std::free(p); }

// ---- errors
void h_set_error(vellum_plugin*, vellum_str msg) {
  try {
    set_plugin_error(std::string(sv(msg)));
    // A service provider's reason reaches its consumer: the consumer reads
    // last_error after the vtable call returns, on this same thread.
    set_last_error(std::string(sv(msg)));
  } catch (...) {
  }
}
vellum_str h_last_error(vellum_plugin*) { return cstr(last_error()); }

// ---- logging
void h_log(vellum_plugin* self, int32_t level, vellum_str msg) {
  if (!valid(self)) return;
  static const spdlog::level::level_enum map[] = {spdlog::level::trace, spdlog::level::debug,
                                                  spdlog::level::info, spdlog::level::warn,
                                                  spdlog::level::err};
  auto lvl = map[std::clamp(level, 0, 4)];
  try {
    // One plugin message is one log line: control characters cannot forge others.
    std::string line(sv(msg));
    for (auto& c : line)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = ' ';
    spdlog::log(lvl, "[{}] {}", self->name, line);
  } catch (...) {
  }
}

// ---- HTTP
vellum_status h_register_route(vellum_plugin* self, const vellum_route_v1* in) {
  // The host owns user from here on, success or not.
  std::shared_ptr<OwnedUser> user = in ? std::make_shared<OwnedUser>(in->user, in->user_free) : nullptr;
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    vellum_route_v1 r;
    if (!read_struct(in, r) || !r.method || !r.path || !r.handler)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "route needs method, path and handler");
    if (!in_phase(self, {Phase::Starting}))
      return fail(VELLUM_ERR_STATE, "routes can be registered only in start()");
    std::string method = r.method;
    static const std::set<std::string> methods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    if (!methods.count(method)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "unsupported method " + method);
    auto e = std::make_shared<RouteEntry>();
    e->method = method;
    try {
      e->pattern = PathPattern::parse(r.path);
    } catch (const std::invalid_argument& ex) {
      return fail(VELLUM_ERR_INVALID_ARGUMENT, std::string("route ") + r.path + ": " + ex.what());
    }
    e->flags = r.flags;
    e->summary = r.summary ? r.summary : "";
    e->openapi_json = r.openapi_json ? r.openapi_json : "";
    if (!e->openapi_json.empty() && !nlohmann::json::accept(e->openapi_json))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "openapi_json is not valid JSON");
    e->plugin = self;
    e->handler = r.handler;
    e->user = user;
    try {
      self->rt->router.add(e);
    } catch (const std::runtime_error& ex) {
      return fail(VELLUM_ERR_CONFLICT, ex.what());
    }
    return VELLUM_OK;
  });
}

vellum_str h_req_method(vellum_request* r) { return r ? cstr(r->http.method) : vellum_str{}; }
vellum_str h_req_path(vellum_request* r) { return r ? cstr(r->http.path) : vellum_str{}; }
vellum_str h_req_query(vellum_request* r) { return r ? cstr(r->http.query) : vellum_str{}; }

vellum_str find_pair(const std::vector<std::pair<std::string, std::string>>& v, std::string_view name,
                     int* found, bool icase) {
  for (auto& [k, val] : v)
    if (icase ? iequals(k, name) : k == name) {
      if (found) *found = 1;
      return cstr(val);
    }
  if (found) *found = 0;
  return vellum_str{};
}

vellum_str h_req_param(vellum_request* r, vellum_str name, int* found) {
  if (!r) return vellum_str{};
  return find_pair(r->params, sv(name), found, false);
}

vellum_str h_req_query_param(vellum_request* r, vellum_str name, int* found) {
  if (!r) return vellum_str{};
  if (!r->query_parsed) {
    std::string_view q = r->http.query;
    while (!q.empty()) {
      auto amp = q.find('&');
      auto part = q.substr(0, amp);
      auto eq = part.find('=');
      r->query_params.emplace_back(
          percent_decode(part.substr(0, eq), true),
          eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1), true));
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    r->query_parsed = true;
  }
  return find_pair(r->query_params, sv(name), found, false);
}

vellum_str h_req_header(vellum_request* r, vellum_str name, int* found) {
  if (!r) return vellum_str{};
  return find_pair(r->http.headers, sv(name), found, true);
}

vellum_bytes h_req_body(vellum_request* r) {
  if (!r) return vellum_bytes{};
  return vellum_bytes{reinterpret_cast<const uint8_t*>(r->http.body.data()), r->http.body.size()};
}

vellum_status h_req_principal(vellum_request* r, vellum_principal_v1* out) {
  if (!r || !out || out->struct_size < sizeof(uint32_t))
    return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
  vellum_principal_v1 p{};
  p.struct_size = sizeof p;
  if (r->auth) {
    p.authenticated = 1;
    p.user_id = cstr(r->auth->user.id);
    p.session_id = cstr(r->auth->session.id);
    p.scopes = cstr(scopes_of(*r->auth));
    p.mfa_verified_at_ms = r->auth->session.mfa_at_ms;
    p.email = cstr(r->auth->user.email);
    p.session_created_at_ms = r->auth->session.created_ms;
  }
  const std::string* ua = r->http.header("User-Agent");
  p.client_ip = cstr(r->http.client_ip);
  p.user_agent = ua ? cstr(*ua) : vellum_str{};
  p.request_id = cstr(r->http.request_id);
  uint32_t caller = out->struct_size;
  std::memcpy(out, &p, std::min<size_t>(caller, sizeof p));
  out->struct_size = caller;
  return VELLUM_OK;
}

vellum_status h_resp_header(vellum_request* r, vellum_str name, vellum_str value) {
  return guard([&] {
    if (!r) return fail(VELLUM_ERR_INVALID_ARGUMENT, "null request");
    auto n = sv(name), v = sv(value);
    auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
    if (n.empty() ||
        std::any_of(n.begin(), n.end(), [&](char c) { return bad(c) || c == ':' || c == ' '; }) ||
        std::any_of(v.begin(), v.end(), bad))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "invalid header name or value");
    std::lock_guard lk(r->mu);
    if (r->responded) return fail(VELLUM_ERR_STATE, "response already sent");
    r->resp_headers.emplace_back(n, v);
    return VELLUM_OK;
  });
}

// Sends the plugin's response, then lets go of a PENDING request (this is
// the plugin's last use of req).
vellum_status finish(vellum_request* req, HttpResponse&& resp) {
  bool sent = req->respond(std::move(resp));
  if (req->route && req->route->plugin) req->route->plugin->rt->release_pending(req);
  if (!sent) return fail(VELLUM_ERR_STATE, "response already sent (or the request timed out)");
  return VELLUM_OK;
}

vellum_status h_respond(vellum_request* req, uint16_t status, vellum_str content_type, vellum_bytes body) {
  return guard([&] {
    if (!req) return fail(VELLUM_ERR_INVALID_ARGUMENT, "null request");
    if (status < 200 || status > 599) return fail(VELLUM_ERR_INVALID_ARGUMENT, "status must be 200..599");
    HttpResponse r;
    r.status = status;
    r.content_type = std::string(sv(content_type));
    if (r.content_type.find_first_of("\r\n") != std::string::npos)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "invalid content type");
    r.body = std::string(sv(body));
    return finish(req, std::move(r));
  });
}

vellum_status h_respond_problem(vellum_request* req, uint16_t status, vellum_str title, vellum_str detail) {
  return guard([&] {
    if (!req) return fail(VELLUM_ERR_INVALID_ARGUMENT, "null request");
    if (status < 400 || status > 599)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "problem status must be 4xx/5xx");
    return finish(req, problem_response(status, sv(title), sv(detail), req->http.request_id));
  });
}

// ---- WebSocket
vellum_status h_register_websocket(vellum_plugin* self, const vellum_ws_endpoint_v1* in) {
  std::shared_ptr<OwnedUser> user = in ? std::make_shared<OwnedUser>(in->user, in->user_free) : nullptr;
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    vellum_ws_endpoint_v1 ep;
    if (!read_struct(in, ep) || !ep.path || !ep.on_message)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "endpoint needs a path and on_message");
    if (!in_phase(self, {Phase::Starting}))
      return fail(VELLUM_ERR_STATE, "WebSockets can be registered only in start()");
    auto w = std::make_shared<WsEntry>();
    try {
      w->pattern = PathPattern::parse(ep.path);
    } catch (const std::invalid_argument& ex) {
      return fail(VELLUM_ERR_INVALID_ARGUMENT, ex.what());
    }
    w->flags = ep.flags;
    w->summary = ep.summary ? ep.summary : "";
    w->plugin = self;
    w->ep = ep;
    w->user = user;
    const auto& s = self->rt->cfg.server;
    w->max_queued_bytes = ep.max_queued_bytes ? ep.max_queued_bytes : s.ws_max_queued_bytes;
    w->max_message_bytes = ep.max_message_bytes ? ep.max_message_bytes : s.ws_max_message_bytes;
    try {
      self->rt->router.add_ws(w);
    } catch (const std::runtime_error& ex) {
      return fail(VELLUM_ERR_CONFLICT, ex.what());
    }
    return VELLUM_OK;
  });
}

vellum_status h_ws_send(vellum_plugin* self, vellum_conn_id conn, int binary, vellum_bytes data) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    auto c = self->rt->hub.find(conn, self);
    if (!c) return fail(VELLUM_ERR_NOT_FOUND, "connection is closed");
    return c->send(std::make_shared<const std::string>(sv(data)), binary != 0);
  });
}

vellum_status h_ws_close(vellum_plugin* self, vellum_conn_id conn, uint16_t code, vellum_str reason) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    // Only codes an endpoint may send (RFC 6455 section 7.4): not 1004-1006, 1015.
    bool sendable =
        (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
    if (!sendable)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "close code " + std::to_string(code) + " cannot be sent");
    auto c = self->rt->hub.find(conn, self);
    if (!c) return fail(VELLUM_ERR_NOT_FOUND, "connection is closed");
    std::string why(sv(reason).substr(0, 123));
    c->close(code, why);
    return VELLUM_OK;
  });
}

vellum_status h_room_join(vellum_plugin* self, vellum_str room, vellum_conn_id conn) {
  return guard([&] {
    if (!valid(self) || room.size == 0) return fail(VELLUM_ERR_INVALID_ARGUMENT, "room name required");
    vellum_status s = self->rt->hub.join(self, sv(room), conn);
    return s == VELLUM_OK ? s : fail(s, "connection is closed");
  });
}
vellum_status h_room_leave(vellum_plugin* self, vellum_str room, vellum_conn_id conn) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    vellum_status s = self->rt->hub.leave(self, sv(room), conn);
    return s == VELLUM_OK ? s : fail(s, "connection is closed");
  });
}
vellum_status h_room_broadcast(vellum_plugin* self, vellum_str room, int binary, vellum_bytes data,
                               vellum_conn_id except, uint64_t* count) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    uint64_t n = self->rt->hub.broadcast(self, sv(room), std::make_shared<const std::string>(sv(data)),
                                         binary != 0, except);
    if (count) *count = n;
    return VELLUM_OK;
  });
}

// ---- events
vellum_status h_publish(vellum_plugin* self, vellum_str topic, vellum_str payload) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    if (!EventBus::valid_topic(sv(topic))) return fail(VELLUM_ERR_INVALID_ARGUMENT, "invalid topic");
    if (!nlohmann::json::accept(sv(payload))) return fail(VELLUM_ERR_INVALID_ARGUMENT, "payload is not JSON");
    self->rt->bus.publish(sv(topic), sv(payload));
    return VELLUM_OK;
  });
}

vellum_status h_subscribe(vellum_plugin* self, vellum_str pattern, vellum_event_fn fn, void* user,
                          vellum_user_free_fn user_free, uint64_t* out_id) {
  auto owned = std::make_shared<OwnedUser>(user, user_free);
  return guard([&] {
    if (!valid(self) || !fn) return fail(VELLUM_ERR_INVALID_ARGUMENT, "handler required");
    if (!EventBus::valid_pattern(sv(pattern)))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "invalid topic pattern");
    uint64_t id = self->rt->bus.subscribe(self, std::string(sv(pattern)), fn, owned);
    if (out_id) *out_id = id;
    return VELLUM_OK;
  });
}

vellum_status h_unsubscribe(vellum_plugin* self, uint64_t id) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    return self->rt->bus.unsubscribe(self, id) ? VELLUM_OK
                                               : fail(VELLUM_ERR_NOT_FOUND, "no such subscription");
  });
}

// ---- services
vellum_status h_service_register(vellum_plugin* self, const vellum_service_v1* in) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    vellum_service_v1 s;
    if (!read_struct(in, s) || !s.name || !s.vtable)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "service needs name and vtable");
    if (!in_phase(self, {Phase::Creating, Phase::Starting}))
      return fail(VELLUM_ERR_STATE, "services can be registered only in create() or start()");
    if (std::find(self->provides.begin(), self->provides.end(), s.name) == self->provides.end())
      return fail(VELLUM_ERR_INVALID_ARGUMENT,
                  std::string("service '") + s.name + "' is not in the plugin's provides list");
    std::string err;
    vellum_status st = self->rt->services.add(self, s, &err);
    return st == VELLUM_OK ? st : fail(st, err);
  });
}

vellum_status h_service_acquire(vellum_plugin* self, vellum_str name, uint32_t major, uint32_t min_minor,
                                vellum_service_v1* out, vellum_service_ref** out_ref) {
  return guard([&] {
    if (!valid(self) || !out || !out_ref || out->struct_size < sizeof(uint32_t))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    std::string err;
    vellum_status st = self->rt->services.acquire(self, sv(name), major, min_minor, out, out_ref, &err);
    return st == VELLUM_OK ? st : fail(st, err);
  });
}

void h_service_release(vellum_plugin* self, vellum_service_ref* ref) {
  if (valid(self) && ref) self->rt->services.release(ref);
}

// ---- storage
vellum_status h_txn_begin(vellum_plugin* self, vellum_txn** out) {
  return guard([&] {
    if (!has_storage(self)) return fail(VELLUM_ERR_STATE, "storage is not open (validate_config?)");
    if (!valid(self) || !out) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    *out = new vellum_txn{self->rt->store->begin(), self};
    return VELLUM_OK;
  });
}
vellum_status h_txn_commit(vellum_plugin* self, vellum_txn* t) {
  std::unique_ptr<vellum_txn> owned(t);
  return guard([&] {
    if (!valid(self) || !t || t->owner != self) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad transaction");
    t->txn->commit();
    return VELLUM_OK;
  });
}
void h_txn_rollback(vellum_plugin*, vellum_txn* t) {
  std::unique_ptr<vellum_txn> owned(t);
  if (t)
    guard([&] {
      t->txn->rollback();
      return VELLUM_OK;
    });
}

bool txn_ok(vellum_plugin* self, vellum_txn* t) { return !t || t->owner == self; }

vellum_status h_kv_get(vellum_plugin* self, vellum_txn* t, vellum_bytes key, vellum_buffer* out,
                       uint64_t* version) {
  return guard([&] {
    if (!has_storage(self)) return fail(VELLUM_ERR_STATE, "storage is not open (validate_config?)");
    if (!valid(self) || !out || !txn_ok(self, t)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    auto rec = t ? t->txn->get(self->name, sv(key)) : self->rt->store->get(self->name, sv(key));
    if (!rec) return fail(VELLUM_ERR_NOT_FOUND, "no such key");
    out->data = static_cast<uint8_t*>(h_alloc(rec->value.size()));
    if (!out->data) return fail(VELLUM_ERR_LIMIT, "out of memory");
    std::memcpy(out->data, rec->value.data(), rec->value.size());
    out->size = rec->value.size();
    if (version) *version = rec->version;
    return VELLUM_OK;
  });
}

// A single write outside a transaction is its own durable transaction.
template <class F>
vellum_status with_txn(vellum_plugin* self, vellum_txn* t, F&& f) {
  if (t) return f(*t->txn);
  auto txn = self->rt->store->begin();
  vellum_status s = f(*txn);
  if (s == VELLUM_OK) txn->commit();
  return s;
}

vellum_status h_kv_put(vellum_plugin* self, vellum_txn* t, vellum_bytes key, vellum_bytes value,
                       uint64_t expected, uint64_t* out_version) {
  return guard([&] {
    if (!has_storage(self)) return fail(VELLUM_ERR_STATE, "storage is not open (validate_config?)");
    if (!valid(self) || !txn_ok(self, t)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    if (key.size == 0 || key.size > 4096) return fail(VELLUM_ERR_INVALID_ARGUMENT, "keys are 1..4096 bytes");
    return with_txn(self, t, [&](Transaction& txn) {
      uint64_t v = txn.put(self->name, sv(key), sv(value), expected);
      if (out_version) *out_version = v;
      return VELLUM_OK;
    });
  });
}

vellum_status h_kv_delete(vellum_plugin* self, vellum_txn* t, vellum_bytes key, uint64_t expected) {
  return guard([&] {
    if (!has_storage(self)) return fail(VELLUM_ERR_STATE, "storage is not open (validate_config?)");
    if (!valid(self) || !txn_ok(self, t)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    return with_txn(self, t, [&](Transaction& txn) {
      txn.erase(self->name, sv(key), expected);
      return VELLUM_OK;
    });
  });
}

vellum_status h_kv_scan(vellum_plugin* self, vellum_txn* t, const vellum_scan_v1* in, vellum_scan_fn fn,
                        void* user, int* out_more) {
  return guard([&] {
    if (!has_storage(self)) return fail(VELLUM_ERR_STATE, "storage is not open (validate_config?)");
    vellum_scan_v1 s;
    if (!valid(self) || !fn || !read_struct(in, s) || !txn_ok(self, t))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    ScanOptions o;
    o.start = std::string(sv(s.start));
    o.end = std::string(sv(s.end));
    o.prefix = std::string(sv(s.prefix));
    o.reverse = s.reverse != 0;
    o.limit = s.limit ? std::min<uint32_t>(s.limit, 10000) : 1000;
    ScanFn cb = [&](std::string_view k, std::string_view v, uint64_t ver) {
      return fn(user, vellum_bytes{reinterpret_cast<const uint8_t*>(k.data()), k.size()},
                vellum_bytes{reinterpret_cast<const uint8_t*>(v.data()), v.size()}, ver) != 0;
    };
    bool more = t ? t->txn->scan(self->name, o, cb) : self->rt->store->scan(self->name, o, cb);
    if (out_more) *out_more = more ? 1 : 0;
    return VELLUM_OK;
  });
}

// Adapts the C barrier to the store's interface.
class PluginBarrier : public Barrier {
 public:
  explicit PluginBarrier(const vellum_barrier_v1& b)
      : b_(b), user_(b.user, b.user_free), name_(b.name ? b.name : "plugin") {}
  std::string name() const override { return name_; }
  std::string seal(std::string_view ctx, std::string_view in) override {
    return call(b_.seal, ctx, in, "seal");
  }
  std::string unseal(std::string_view ctx, std::string_view in) override {
    return call(b_.unseal, ctx, in, "unseal");
  }

 private:
  std::string call(vellum_barrier_fn fn, std::string_view ctx, std::string_view in, const char* what) {
    vellum_buffer out{};
    take_plugin_error();
    vellum_status s = fn(user_.user, vellum_bytes{reinterpret_cast<const uint8_t*>(ctx.data()), ctx.size()},
                         vellum_bytes{reinterpret_cast<const uint8_t*>(in.data()), in.size()}, &out);
    std::unique_ptr<uint8_t, decltype(&h_free)> owned(out.data, &h_free);
    if (s != VELLUM_OK)
      throw StoreError(s == VELLUM_ERR_UNAVAILABLE ? s : VELLUM_ERR_INTERNAL,
                       std::string("storage barrier ") + what + " failed: " + take_plugin_error());
    return std::string(reinterpret_cast<const char*>(out.data), out.size);
  }
  vellum_barrier_v1 b_;
  OwnedUser user_;
  std::string name_;
};

vellum_status h_set_barrier(vellum_plugin* self, const vellum_barrier_v1* in) {
  vellum_barrier_v1 b{};
  bool ok = read_struct(in, b) && b.seal && b.unseal;
  return guard([&] {
    if (!valid(self) || !ok) {
      if (in && in->user_free) in->user_free(in->user);
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "barrier needs seal and unseal");
    }
    auto barrier = std::make_shared<PluginBarrier>(b);  // owns user from here
    if (!in_phase(self, {Phase::Creating}) || !self->rt->store)
      return fail(VELLUM_ERR_STATE, "the barrier can be installed only in create()");
    if (self->rt->barrier_installed.exchange(true))
      return fail(VELLUM_ERR_CONFLICT, "a storage barrier is already installed");
    self->rt->store->set_barrier(barrier);
    self->rt->barrier_owner = self;
    spdlog::info("storage barrier '{}' installed by plugin '{}'", barrier->name(), self->name);
    return VELLUM_OK;
  });
}

// (minor 1) Re-seal a batch of stored values; only the barrier's owner may.
vellum_status h_barrier_reseal(vellum_plugin* self, vellum_bytes cursor, uint32_t batch,
                               vellum_buffer* out_next, uint64_t* out_resealed, int* out_done) {
  return guard([&] {
    if (!valid(self) || !out_next) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    *out_next = vellum_buffer{nullptr, 0};
    if (!has_storage(self)) return fail(VELLUM_ERR_STATE, "storage is not open (validate_config?)");
    if (self->rt->barrier_owner != self)
      return fail(VELLUM_ERR_PERMISSION_DENIED, "only the plugin that installed the barrier may reseal");
    auto r = self->rt->store->reseal(sv(cursor), batch ? std::min<uint32_t>(batch, 10000) : 500);
    if (!r.next_cursor.empty()) {
      out_next->data = static_cast<uint8_t*>(h_alloc(r.next_cursor.size()));
      if (!out_next->data) return fail(VELLUM_ERR_LIMIT, "out of memory");
      std::memcpy(out_next->data, r.next_cursor.data(), r.next_cursor.size());
      out_next->size = r.next_cursor.size();
    }
    if (out_resealed) *out_resealed = r.resealed;
    if (out_done) *out_done = r.done ? 1 : 0;
    return VELLUM_OK;
  });
}

// ---- audit
vellum_status h_audit_append(vellum_plugin* self, const vellum_audit_record_v1* in) {
  return guard([&] {
    vellum_audit_record_v1 r;
    if (!valid(self) || !read_struct(in, r) || !r.action)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "record needs an action");
    if (!self->rt->audit) return fail(VELLUM_ERR_STATE, "the audit log is not open (validate_config?)");
    AuditEvent ev;
    ev.plugin = self->name;
    ev.action = r.action;
    ev.resource = r.resource ? r.resource : "";
    ev.outcome = r.outcome == VELLUM_OUTCOME_SUCCESS  ? "success"
                 : r.outcome == VELLUM_OUTCOME_DENIED ? "denied"
                                                      : "failure";
    if (r.details_json) {
      ev.details = nlohmann::json::parse(r.details_json, nullptr, false);
      if (!ev.details.is_object())
        return fail(VELLUM_ERR_INVALID_ARGUMENT, "details_json must be a JSON object");
    }
    if (r.request) {
      ev.actor = r.request->auth ? r.request->auth->user.id : "";
      ev.request_id = r.request->http.request_id;
      ev.client_ip = r.request->http.client_ip;
      if (const std::string* ua = r.request->http.header("User-Agent")) ev.user_agent = *ua;
    }
    ev.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    try {
      if (!self->rt->audit) throw std::runtime_error("the audit log is not open");
      self->rt->audit->append(std::move(ev));
    } catch (const std::exception& e) {
      spdlog::error("audit append failed for plugin '{}': {}", self->name, e.what());
      return fail(VELLUM_ERR_UNAVAILABLE, "the audit log cannot be written");
    }
    return VELLUM_OK;
  });
}

// ---- timers
vellum_status h_timer_start(vellum_plugin* self, uint64_t delay_ms, uint64_t interval_ms, vellum_timer_fn fn,
                            void* user, vellum_user_free_fn user_free, uint64_t* out_id) {
  auto owned = std::make_shared<OwnedUser>(user, user_free);
  return guard([&] {
    if (!valid(self) || !fn) return fail(VELLUM_ERR_INVALID_ARGUMENT, "timer needs a callback");
    uint64_t id = self->rt->timers.start(self, delay_ms, interval_ms, fn, owned);
    if (out_id) *out_id = id;
    return VELLUM_OK;
  });
}
vellum_status h_timer_cancel(vellum_plugin* self, uint64_t id) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
    return self->rt->timers.cancel(self, id) ? VELLUM_OK : fail(VELLUM_ERR_NOT_FOUND, "no such timer");
  });
}

// ---- metrics
vellum_status h_metric_register(vellum_plugin* self, int32_t kind, vellum_str name, vellum_str help,
                                uint64_t* id) {
  return guard([&] {
    if (!valid(self) || !id) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    if (!in_phase(self, {Phase::Creating, Phase::Starting}))
      return fail(VELLUM_ERR_STATE, "metrics can be registered only in create() or start()");
    std::string err;
    vellum_status s = self->rt->metrics.register_metric(self, kind, sv(name), sv(help), id, &err);
    return s == VELLUM_OK ? s : fail(s, err);
  });
}
vellum_status h_metric_record(vellum_plugin* self, uint64_t id, double v) {
  if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad plugin handle");
  vellum_status s = self->rt->metrics.record(self, id, v);
  return s == VELLUM_OK ? s : fail(s, "unknown metric or invalid value");
}

// ---- randomness, time, authorization
vellum_status h_random_bytes(vellum_plugin*, uint8_t* out, size_t n) {
  if (!out && n) return fail(VELLUM_ERR_INVALID_ARGUMENT, "null buffer");
  if (n > INT32_MAX) return fail(VELLUM_ERR_INVALID_ARGUMENT, "too many bytes");
  return RAND_bytes(out, static_cast<int>(n)) == 1 ? VELLUM_OK
                                                   : fail(VELLUM_ERR_INTERNAL, "RAND_bytes failed");
}

int64_t h_now_ms(vellum_plugin* self) { return valid(self) ? self->rt->clock() : system_clock_ms(); }

const std::string& scopes_of(const vellum::host::Authenticated& a) {
  if (a.session.kind == "guest") return a.session.scope;
  bool read_only = a.session.scope == "read";
  if (a.user.is_admin()) return read_only ? kScopesAdminRead : kScopesAdminFull;
  return read_only ? kScopesRead : kScopesFull;
}

std::string decision_json(bool permit, const std::string& reason) {
  return nlohmann::json{
      {"decision", permit ? "permit" : "deny"}, {"reason", reason}, {"obligations", nlohmann::json::array()}}
      .dump();
}

// One decision: the "pdp" service when a plugin provides it, else the
// resource's owner and administrators only. `who` has been checked. With
// out_json, the PDP's decision JSON (decide_ex, pdp 1.1) or one built here.
vellum_status decide(vellum_plugin* self, const vellum::host::Authenticated& auth,
                     const vellum_principal_v1& who, vellum_str action, vellum_str resource, vellum_str owner,
                     std::string* out_json = nullptr) {
  vellum_service_v1 svc{};
  svc.struct_size = sizeof svc;
  vellum_service_ref* ref = nullptr;
  std::string err;
  if (self->rt->services.acquire(nullptr, VELLUM_PDP_SERVICE, VELLUM_PDP_MAJOR, 0, &svc, &ref, &err) ==
      VELLUM_OK) {
    std::unique_ptr<vellum_service_ref, void (*)(vellum_service_ref*)> hold(ref, [](vellum_service_ref* r) {
      if (r && r->provider) r->provider->rt->services.release(r);
    });
    auto* pdp = static_cast<const vellum_pdp_v1*>(svc.vtable);
    take_plugin_error();
    bool has_ex = svc.minor >= 1 &&
                  pdp->struct_size >= offsetof(vellum_pdp_v1, decide_ex) + sizeof pdp->decide_ex &&
                  pdp->decide_ex;
    vellum_status s;
    std::string text;
    if (out_json && has_ex) {
      vellum_buffer buf{};
      s = pdp->decide_ex(svc.instance, &who, action, resource, owner, &buf);
      if (buf.data) {
        text.assign(reinterpret_cast<const char*>(buf.data), buf.size);
        h_free(buf.data);
      }
    } else {
      s = pdp->decide(svc.instance, &who, action, resource, owner);
    }
    std::string why = s == VELLUM_OK ? std::string() : take_plugin_error();
    if (s != VELLUM_OK && why.empty()) why = "denied by policy";
    if (out_json) {
      auto j = nlohmann::json::parse(text, nullptr, false);
      bool well_formed = j.is_object() && j.contains("decision") && j["decision"].is_string() &&
                         (!j.contains("obligations") || j["obligations"].is_array());
      if (well_formed && (j["decision"] == "permit") != (s == VELLUM_OK)) well_formed = false;
      // A PDP that answers without (valid) JSON still decides; a permit
      // whose obligations cannot be read is not a permit.
      if (!well_formed && s == VELLUM_OK && !text.empty()) {
        *out_json = decision_json(false, "the policy decision point returned malformed obligations");
        return fail(VELLUM_ERR_PERMISSION_DENIED, "the policy decision point returned malformed obligations");
      }
      if (well_formed && !j.contains("obligations")) j["obligations"] = nlohmann::json::array();
      *out_json = well_formed ? j.dump() : decision_json(s == VELLUM_OK, why);
    }
    if (s == VELLUM_OK) return VELLUM_OK;
    return fail(VELLUM_ERR_PERMISSION_DENIED, why);
  }
  std::string why;
  if (auth.user.is_admin() || (owner.size && sv(owner) == auth.user.id)) {
    if (out_json) *out_json = decision_json(true, auth.user.is_admin() ? "administrator" : "owner");
    return VELLUM_OK;
  }
  why = "only the owner or an administrator may do this";
  if (out_json) *out_json = decision_json(false, why);
  return fail(VELLUM_ERR_PERMISSION_DENIED, why);
}

// The decision for a principal a plugin kept. Trust only the session, not
// the caller's copy: user, scopes, e-mail and MFA time come from the live
// session, which must still exist.
vellum_status decide_kept(vellum_plugin* self, const vellum_principal_v1* who, vellum_str action,
                          vellum_str resource, vellum_str owner, std::string* out_json) {
  if (!who || who->struct_size < sizeof(uint32_t) * 2)
    return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
  if (!who->authenticated) return fail(VELLUM_ERR_UNAUTHENTICATED, "authentication required");
  if (!self->rt->identity) return fail(VELLUM_ERR_STATE, "no identity store");
  vellum_principal_v1 in{};
  std::memcpy(&in, who, std::min<size_t>(who->struct_size, sizeof in));
  auto auth = self->rt->identity->find_session(std::string(sv(in.user_id)), std::string(sv(in.session_id)));
  if (!auth) return fail(VELLUM_ERR_UNAUTHENTICATED, "the session has ended");
  vellum_principal_v1 p{};
  p.struct_size = sizeof p;
  p.authenticated = 1;
  p.user_id = cstr(auth->user.id);
  p.session_id = cstr(auth->session.id);
  p.scopes = cstr(scopes_of(*auth));
  p.mfa_verified_at_ms = auth->session.mfa_at_ms;
  p.client_ip = in.client_ip;
  p.user_agent = in.user_agent;
  p.request_id = in.request_id;
  p.email = cstr(auth->user.email);
  p.session_created_at_ms = auth->session.created_ms;
  return decide(self, *auth, p, action, resource, owner, out_json);
}

vellum_status h_authorize_principal(vellum_plugin* self, const vellum_principal_v1* who, vellum_str action,
                                    vellum_str resource, vellum_str owner) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    return decide_kept(self, who, action, resource, owner, nullptr);
  });
}

// Copies bytes into a buffer the caller frees with host->free.
vellum_status hand_over(const std::string& bytes, vellum_buffer* out) {
  auto* data = static_cast<uint8_t*>(h_alloc(bytes.size()));
  if (!data) return fail(VELLUM_ERR_INTERNAL, "out of memory");
  std::memcpy(data, bytes.data(), bytes.size());
  *out = vellum_buffer{data, bytes.size()};
  return VELLUM_OK;
}

// Subjects become part of a user id and of store keys: keep them plain.
bool valid_guest_subject(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

vellum_status h_guest_session_issue(vellum_plugin* self, vellum_str subject, vellum_str scopes,
                                    vellum_str display_name, int64_t ttl_ms, vellum_buffer* out_token) {
  return guard([&] {
    if (!valid(self) || !out_token) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    *out_token = vellum_buffer{};
    if (!valid_guest_subject(sv(subject)))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "subject must be 1..128 characters of [A-Za-z0-9._:-]");
    if (sv(scopes).size() > 1024) return fail(VELLUM_ERR_INVALID_ARGUMENT, "scopes longer than 1024 bytes");
    if (sv(display_name).size() > 128)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "display_name longer than 128 bytes");
    auto bad = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
    if (std::any_of(sv(scopes).begin(), sv(scopes).end(), bad) ||
        std::any_of(sv(display_name).begin(), sv(display_name).end(), bad))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "control characters in scopes or display_name");
    constexpr int64_t kMin = 60'000, kMax = 30LL * 24 * 3600 * 1000;
    if (ttl_ms < kMin || ttl_ms > kMax)
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "ttl_ms must be 1 minute .. 30 days");
    if (!self->rt->identity) return fail(VELLUM_ERR_STATE, "no identity store");
    std::string user_id = "guest:" + self->name + ":";
    user_id += sv(subject);
    auto res = self->rt->identity->issue_guest_session(
        user_id, std::string(sv(scopes)), std::string(sv(display_name)), static_cast<uint64_t>(ttl_ms));
    return hand_over(res.token, out_token);
  });
}

vellum_status h_guest_session_revoke(vellum_plugin* self, vellum_str subject, uint64_t* out_revoked) {
  return guard([&] {
    if (!valid(self)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    if (!valid_guest_subject(sv(subject)))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "subject must be 1..128 characters of [A-Za-z0-9._:-]");
    if (!self->rt->identity) return fail(VELLUM_ERR_STATE, "no identity store");
    std::string user_id = "guest:" + self->name + ":";
    user_id += sv(subject);
    size_t n = self->rt->identity->revoke_guest_sessions(user_id);  // closes their sockets too
    if (out_revoked) *out_revoked = n;
    return VELLUM_OK;
  });
}

vellum_status h_authorize(vellum_plugin* self, vellum_request* req, vellum_str action, vellum_str resource,
                          vellum_str owner) {
  return guard([&] {
    if (!valid(self) || !req) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    if (!req->auth) return fail(VELLUM_ERR_UNAUTHENTICATED, "authentication required");
    vellum_principal_v1 who{};
    who.struct_size = sizeof who;
    h_req_principal(req, &who);
    return decide(self, *req->auth, who, action, resource, owner);
  });
}

vellum_status h_authorize_ex(vellum_plugin* self, vellum_request* req, const vellum_principal_v1* who,
                             vellum_str action, vellum_str resource, vellum_str owner,
                             vellum_buffer* out_json) {
  if (out_json) *out_json = vellum_buffer{};
  return guard([&] {
    if (!valid(self) || (!req && !who)) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    std::string text;
    vellum_status s;
    if (req) {
      if (!req->auth) return fail(VELLUM_ERR_UNAUTHENTICATED, "authentication required");
      vellum_principal_v1 p{};
      p.struct_size = sizeof p;
      h_req_principal(req, &p);
      s = decide(self, *req->auth, p, action, resource, owner, &text);
    } else {
      s = decide_kept(self, who, action, resource, owner, &text);
    }
    if (out_json && (s == VELLUM_OK || s == VELLUM_ERR_PERMISSION_DENIED) && !text.empty()) {
      vellum_status copied = hand_over(text, out_json);
      if (copied != VELLUM_OK) return copied;
    }
    return s;
  });
}

vellum_status h_ws_authenticate(vellum_plugin* self, vellum_conn_id conn, vellum_str token,
                                vellum_principal_v1* out, vellum_buffer* out_storage) {
  if (out_storage) *out_storage = vellum_buffer{};
  return guard([&] {
    if (!valid(self) || !out || !out_storage || out->struct_size < sizeof(uint32_t))
      return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    if (!self->rt->identity) return fail(VELLUM_ERR_STATE, "no identity store");
    if (!self->rt->hub.find(conn, self)) return fail(VELLUM_ERR_NOT_FOUND, "connection is closed");
    auto auth = self->rt->identity->authenticate(std::string(sv(token)));
    if (!auth) return fail(VELLUM_ERR_UNAUTHENTICATED, "invalid or expired token");  // never the token
    std::string client_ip, user_agent;
    vellum_status bound =
        self->rt->hub.bind_session(conn, self, auth->session.id, auth->user.id, &client_ip, &user_agent);
    if (bound == VELLUM_ERR_CONFLICT)
      return fail(bound, "the connection is already authenticated with another session");
    if (bound != VELLUM_OK) return fail(bound, "connection is closed");
    // One allocation holds every string; the principal points into it.
    const std::string& scopes = scopes_of(*auth);
    const std::string* parts[] = {&auth->user.id, &auth->session.id, &scopes,
                                  &client_ip,     &user_agent,       &auth->user.email};
    size_t total = 0;
    for (auto* part : parts) total += part->size();
    auto* data = static_cast<uint8_t*>(h_alloc(total ? total : 1));
    if (!data) return fail(VELLUM_ERR_INTERNAL, "out of memory");
    vellum_str strs[6];
    size_t at = 0;
    for (size_t i = 0; i < 6; ++i) {
      std::memcpy(data + at, parts[i]->data(), parts[i]->size());
      strs[i] = vellum_str{reinterpret_cast<const char*>(data + at), parts[i]->size()};
      at += parts[i]->size();
    }
    *out_storage = vellum_buffer{data, total};
    vellum_principal_v1 p{};
    p.struct_size = sizeof p;
    p.authenticated = 1;
    p.user_id = strs[0];
    p.session_id = strs[1];
    p.scopes = strs[2];
    p.client_ip = strs[3];
    p.user_agent = strs[4];
    p.email = strs[5];
    p.mfa_verified_at_ms = auth->session.mfa_at_ms;
    p.session_created_at_ms = auth->session.created_ms;
    uint32_t caller = out->struct_size;
    std::memcpy(out, &p, std::min<size_t>(caller, sizeof p));
    out->struct_size = caller;
    return VELLUM_OK;
  });
}

vellum_status h_audit_excerpt(vellum_plugin* self, vellum_str resource, uint64_t after_seq, uint32_t limit,
                              vellum_buffer* out_json) {
  if (out_json) *out_json = vellum_buffer{};
  return guard([&] {
    if (!valid(self) || !out_json) return fail(VELLUM_ERR_INVALID_ARGUMENT, "bad arguments");
    if (sv(resource).empty()) return fail(VELLUM_ERR_INVALID_ARGUMENT, "resource is empty");
    if (limit > 1000) return fail(VELLUM_ERR_INVALID_ARGUMENT, "limit must be 1..1000 (0 = 100)");
    if (!self->rt->audit) return fail(VELLUM_ERR_STATE, "the audit log is not open");
    std::string text;
    try {
      text = self->rt->audit->excerpt(std::string(sv(resource)), after_seq, limit).dump();
    } catch (const std::invalid_argument& e) {
      return fail(VELLUM_ERR_INVALID_ARGUMENT, e.what());
    } catch (const std::exception& e) {
      spdlog::error("plugin {}: audit excerpt failed: {}", self->name, e.what());
      return fail(VELLUM_ERR_UNAVAILABLE, "the audit log cannot be read");
    }
    return hand_over(text, out_json);
  });
}

const vellum_host_api_v1 kApi = [] {
  vellum_host_api_v1 a{};
  a.struct_size = sizeof a;
  a.abi_major = VELLUM_ABI_MAJOR;
  a.abi_minor = VELLUM_ABI_MINOR;
  a.host_version = "0.1.0";
  a.alloc = h_alloc;
  a.free = h_free;
  a.set_error = h_set_error;
  a.last_error = h_last_error;
  a.log = h_log;
  a.register_route = h_register_route;
  a.req_method = h_req_method;
  a.req_path = h_req_path;
  a.req_query = h_req_query;
  a.req_param = h_req_param;
  a.req_query_param = h_req_query_param;
  a.req_header = h_req_header;
  a.req_body = h_req_body;
  a.req_principal = h_req_principal;
  a.resp_header = h_resp_header;
  a.respond = h_respond;
  a.respond_problem = h_respond_problem;
  a.register_websocket = h_register_websocket;
  a.ws_send = h_ws_send;
  a.ws_close = h_ws_close;
  a.room_join = h_room_join;
  a.room_leave = h_room_leave;
  a.room_broadcast = h_room_broadcast;
  a.publish = h_publish;
  a.subscribe = h_subscribe;
  a.unsubscribe = h_unsubscribe;
  a.service_register = h_service_register;
  a.service_acquire = h_service_acquire;
  a.service_release = h_service_release;
  a.txn_begin = h_txn_begin;
  a.txn_commit = h_txn_commit;
  a.txn_rollback = h_txn_rollback;
  a.kv_get = h_kv_get;
  a.kv_put = h_kv_put;
  a.kv_delete = h_kv_delete;
  a.kv_scan = h_kv_scan;
  a.set_barrier = h_set_barrier;
  a.audit_append = h_audit_append;
  a.timer_start = h_timer_start;
  a.timer_cancel = h_timer_cancel;
  a.metric_register = h_metric_register;
  a.metric_record = h_metric_record;
  a.random_bytes = h_random_bytes;
  a.now_ms = h_now_ms;
  a.authorize = h_authorize;
  a.barrier_reseal = h_barrier_reseal;            // minor 1
  a.authorize_principal = h_authorize_principal;  // minor 2
  a.guest_session_issue = h_guest_session_issue;
  a.guest_session_revoke = h_guest_session_revoke;
  a.authorize_ex = h_authorize_ex;  // minor 3
  a.audit_excerpt = h_audit_excerpt;
  a.ws_authenticate = h_ws_authenticate;  // minor 4
  return a;
}();

}  // namespace

namespace vellum::host {
const vellum_host_api_v1* Runtime::api() { return &kApi; }
}  // namespace vellum::host
