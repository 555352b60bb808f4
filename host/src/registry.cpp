// Routing, WebSocket connections and rooms, events and services.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "runtime.hpp"

namespace vellum::host {

// ---------------------------------------------------------------- paths
static std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  if (!p.empty() && p[0] == '/') i = 1;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

PathPattern PathPattern::parse(const std::string& p) {
  if (p.empty() || p[0] != '/') throw std::invalid_argument("path must start with '/'");
  PathPattern pp;
  pp.text = p;
  for (auto seg : split_path(p)) {
    if (seg.find_first_of("?#") != std::string_view::npos) throw std::invalid_argument("path has '?' or '#'");
    bool param = seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
    if (!param && (seg.find('{') != std::string_view::npos || seg.find('}') != std::string_view::npos))
      throw std::invalid_argument("a parameter must be a whole segment: {name}");
    pp.segments.emplace_back(seg);
  }
  return pp;
}

bool PathPattern::match(std::string_view path,
                        std::vector<std::pair<std::string, std::string>>* params) const {
  return match_segments(split_path(path), params);
}

bool PathPattern::match_segments(const std::vector<std::string_view>& segs,
                                 std::vector<std::pair<std::string, std::string>>* params) const {
  if (segs.size() != segments.size()) return false;
  for (size_t i = 0; i < segs.size(); ++i) {
    const std::string& s = segments[i];
    bool param = s.size() >= 2 && s.front() == '{';
    if (param) {
      if (segs[i].empty()) return false;
    } else if (s != segs[i]) {
      return false;
    }
  }
  if (params) {
    params->clear();
    for (size_t i = 0; i < segs.size(); ++i) {
      const std::string& s = segments[i];
      if (s.size() >= 2 && s.front() == '{')
        params->emplace_back(s.substr(1, s.size() - 2), percent_decode(segs[i], false));
    }
  }
  return true;
}

static bool same_shape(const PathPattern& a, const PathPattern& b) {
  if (a.segments.size() != b.segments.size()) return false;
  for (size_t i = 0; i < a.segments.size(); ++i) {
    bool pa = a.segments[i].front() == '{', pb = b.segments[i].front() == '{';
    if (pa != pb || (!pa && a.segments[i] != b.segments[i])) return false;
  }
  return true;
}

void Router::add(std::shared_ptr<RouteEntry> r) {
  std::unique_lock lk(mu_);
  for (auto& e : routes_)
    if (e->method == r->method && same_shape(e->pattern, r->pattern))
      throw std::runtime_error(r->method + " " + r->pattern.text + " is already registered by " +
                               (e->plugin ? "plugin '" + e->plugin->name + "'" : std::string("the host")));
  // Literal segments win over parameters: keep more specific routes first.
  routes_.push_back(std::move(r));
  std::stable_sort(routes_.begin(), routes_.end(), [](auto& a, auto& b) {
    size_t la = 0, lb = 0;
    for (auto& s : a->pattern.segments) la += s.front() != '{';
    for (auto& s : b->pattern.segments) lb += s.front() != '{';
    return la > lb;
  });
}

void Router::add_ws(std::shared_ptr<WsEntry> w) {
  std::unique_lock lk(mu_);
  for (auto& e : ws_)
    if (same_shape(e->pattern, w->pattern))
      throw std::runtime_error("WebSocket " + w->pattern.text + " is already registered");
  ws_.push_back(std::move(w));
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
  std::shared_lock lk(mu_);
  Match m;
  const auto segs = split_path(path);  // once per request, not once per route
  for (auto& r : routes_) {
    if (!r->pattern.match_segments(segs, nullptr)) continue;
    if (r->method == method || (method == "HEAD" && r->method == "GET")) {
      r->pattern.match_segments(segs, &m.params);  // decode parameters for the winner only
      m.route = r;
      return m;
    }
    m.allowed.push_back(r->method);
  }
  return m;
}

std::shared_ptr<WsEntry> Router::match_ws(std::string_view path,
                                          std::vector<std::pair<std::string, std::string>>* params) const {
  std::shared_lock lk(mu_);
  for (auto& w : ws_)
    if (w->pattern.match(path, params)) return w;
  return nullptr;
}

std::vector<std::shared_ptr<RouteEntry>> Router::routes() const {
  std::shared_lock lk(mu_);
  return routes_;
}
std::vector<std::shared_ptr<WsEntry>> Router::websockets() const {
  std::shared_lock lk(mu_);
  return ws_;
}
void Router::remove_plugin(const vellum_plugin* p) {
  std::unique_lock lk(mu_);
  std::erase_if(routes_, [p](auto& r) { return r->plugin == p; });
  std::erase_if(ws_, [p](auto& w) { return w->plugin == p; });
}

// ---------------------------------------------------------------- WebSocket hub
void WsHub::add(vellum_conn_id id, std::weak_ptr<WsConnection> c, vellum_plugin* owner,
                std::string session_id, std::string user_id, std::string client_ip, std::string user_agent) {
  std::lock_guard lk(mu_);
  conns_[id] =
      Conn{std::move(c),         owner, {}, std::move(session_id), std::move(user_id), std::move(client_ip),
           std::move(user_agent)};
}

vellum_status WsHub::bind_session(vellum_conn_id id, const vellum_plugin* owner,
                                  const std::string& session_id, const std::string& user_id,
                                  std::string* client_ip, std::string* user_agent) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.owner != owner) return VELLUM_ERR_NOT_FOUND;
  Conn& c = it->second;
  if (!c.session_id.empty() && c.session_id != session_id) return VELLUM_ERR_CONFLICT;
  c.session_id = session_id;
  c.user_id = user_id;
  *client_ip = c.client_ip;
  *user_agent = c.user_agent;
  return VELLUM_OK;
}

void WsHub::remove(vellum_conn_id id) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  for (auto& room : it->second.rooms) {
    auto r = rooms_.find(room);
    if (r == rooms_.end()) continue;
    r->second.erase(id);
    if (r->second.empty()) rooms_.erase(r);
  }
  conns_.erase(it);
}

std::shared_ptr<WsConnection> WsHub::find(vellum_conn_id id, const vellum_plugin* owner) const {
  std::lock_guard lk(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end() || (owner && it->second.owner != owner)) return nullptr;
  return it->second.conn.lock();
}

static std::string room_key(const vellum_plugin* p, std::string_view room) {
  std::string k = p->name;
  k.push_back('\0');
  k.append(room);
  return k;
}

vellum_status WsHub::join(const vellum_plugin* p, std::string_view room, vellum_conn_id id) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.owner != p) return VELLUM_ERR_NOT_FOUND;
  auto key = room_key(p, room);
  it->second.rooms.insert(key);
  rooms_[key].insert(id);
  return VELLUM_OK;
}

vellum_status WsHub::leave(const vellum_plugin* p, std::string_view room, vellum_conn_id id) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.owner != p) return VELLUM_ERR_NOT_FOUND;
  auto key = room_key(p, room);
  it->second.rooms.erase(key);
  auto r = rooms_.find(key);
  if (r != rooms_.end()) {
    r->second.erase(id);
    if (r->second.empty()) rooms_.erase(r);
  }
  return VELLUM_OK;
}

uint64_t WsHub::broadcast(const vellum_plugin* p, std::string_view room,
                          std::shared_ptr<const std::string> data, bool binary, vellum_conn_id except) {
  std::vector<std::shared_ptr<WsConnection>> targets;
  {
    std::lock_guard lk(mu_);
    auto r = rooms_.find(room_key(p, room));
    if (r == rooms_.end()) return 0;
    targets.reserve(r->second.size());
    for (auto id : r->second) {
      if (id == except) continue;
      auto c = conns_.find(id);
      if (c == conns_.end()) continue;
      if (auto s = c->second.conn.lock()) targets.push_back(std::move(s));
    }
  }
  // Send outside the lock: a full queue closes that connection, which
  // re-enters remove().
  uint64_t n = 0;
  for (auto& t : targets)
    if (t->send(data, binary) == VELLUM_OK) ++n;
  return n;
}

size_t WsHub::size() const {
  std::lock_guard lk(mu_);
  return conns_.size();
}

void WsHub::close_all(uint16_t code, const std::string& reason) {
  std::vector<std::shared_ptr<WsConnection>> all;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, c] : conns_)
      if (auto s = c.conn.lock()) all.push_back(std::move(s));
  }
  for (auto& c : all) c->close(code, reason);
}

size_t WsHub::close_session(const std::string& session_id, uint16_t code, const std::string& reason) {
  if (session_id.empty()) return 0;
  std::vector<std::shared_ptr<WsConnection>> hit;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, c] : conns_)
      if (c.session_id == session_id)
        if (auto s = c.conn.lock()) hit.push_back(std::move(s));
  }
  for (auto& c : hit) c->close(code, reason);  // outside the lock: close may call remove()
  return hit.size();
}

std::vector<std::pair<std::string, std::string>> WsHub::sessions() const {
  std::set<std::pair<std::string, std::string>> seen;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, c] : conns_)
      if (!c.session_id.empty()) seen.emplace(c.user_id, c.session_id);
  }
  return {seen.begin(), seen.end()};
}

// ---------------------------------------------------------------- events
thread_local std::set<const void*> EventBus::t_delivering_;

static bool valid_segment(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

bool EventBus::valid_topic(std::string_view t) {
  if (t.empty() || t.size() > 256) return false;
  size_t i = 0;
  while (true) {
    size_t j = t.find('.', i);
    if (!valid_segment(t.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i)))
      return false;
    if (j == std::string_view::npos) return true;
    i = j + 1;
  }
}

bool EventBus::valid_pattern(std::string_view p) {
  if (p.empty() || p.size() > 256) return false;
  size_t i = 0;
  while (true) {
    size_t j = p.find('.', i);
    auto seg = p.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    bool last = j == std::string_view::npos;
    if (!(seg == "*" || (seg == ">" && last) || valid_segment(seg))) return false;
    if (last) return true;
    i = j + 1;
  }
}

bool EventBus::matches(std::string_view pattern, std::string_view topic) {
  size_t pi = 0, ti = 0;
  while (true) {
    size_t pj = pattern.find('.', pi), tj = topic.find('.', ti);
    auto ps = pattern.substr(pi, pj == std::string_view::npos ? std::string_view::npos : pj - pi);
    if (ti > topic.size()) return false;
    auto ts = topic.substr(ti, tj == std::string_view::npos ? std::string_view::npos : tj - ti);
    if (ps == ">") return !ts.empty();
    if (ps != "*" && ps != ts) return false;
    bool pend = pj == std::string_view::npos, tend = tj == std::string_view::npos;
    if (pend || tend) return pend && tend;
    pi = pj + 1;
    ti = tj + 1;
  }
}

uint64_t EventBus::subscribe(vellum_plugin* p, std::string pattern, vellum_event_fn fn,
                             std::shared_ptr<OwnedUser> user) {
  std::lock_guard lk(mu_);
  auto s = std::make_shared<Sub>();
  s->id = ++last_id_;
  s->plugin = p;
  s->pattern = std::move(pattern);
  s->fn = fn;
  s->user = std::move(user);
  subs_.push_back(s);
  return s->id;
}

// After unsubscribe returns, the handler is not running (unless it is the
// caller itself) and will not run again: the plugin may then be destroyed.
void EventBus::wait_idle(const std::vector<std::shared_ptr<Sub>>& gone) {
  for (auto& s : gone) {
    s->removed = true;
    while (s->in_flight.load() > 0 && !t_delivering_.count(s.get())) std::this_thread::yield();
  }
}

bool EventBus::unsubscribe(const vellum_plugin* p, uint64_t id) {
  std::vector<std::shared_ptr<Sub>> gone;
  {
    std::lock_guard lk(mu_);
    std::erase_if(subs_, [&](auto& s) {
      bool hit = s->id == id && s->plugin == p;
      if (hit) gone.push_back(s);
      return hit;
    });
  }
  wait_idle(gone);
  return !gone.empty();
}

void EventBus::unsubscribe_all(const vellum_plugin* p) {
  std::vector<std::shared_ptr<Sub>> gone;
  {
    std::lock_guard lk(mu_);
    std::erase_if(subs_, [&](auto& s) {
      bool hit = s->plugin == p;
      if (hit) gone.push_back(s);
      return hit;
    });
  }
  wait_idle(gone);
}

size_t EventBus::publish(std::string_view topic, std::string_view payload) {
  std::vector<std::shared_ptr<Sub>> targets;
  {
    std::lock_guard lk(mu_);
    for (auto& s : subs_)
      if (matches(s->pattern, topic)) targets.push_back(s);
  }
  // Delivered without the lock so handlers may publish or subscribe.
  size_t n = 0;
  for (auto& s : targets) {
    ++s->in_flight;
    if (!s->removed) {
      t_delivering_.insert(s.get());
      s->fn(s->user->user, vellum_str{topic.data(), topic.size()},
            vellum_str{payload.data(), payload.size()});
      t_delivering_.erase(s.get());
      ++n;
    }
    --s->in_flight;
  }
  return n;
}

// ---------------------------------------------------------------- services
vellum_status ServiceRegistry::add(vellum_plugin* provider, const vellum_service_v1& svc, std::string* err) {
  std::lock_guard lk(mu_);
  std::string name = svc.name;
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    *err = "service '" + name + "' is already provided by plugin '" + it->second.provider->name +
           "'; enable only one provider";
    return VELLUM_ERR_CONFLICT;
  }
  entries_.emplace(name, Entry{provider, name, svc.major, svc.minor, svc.vtable, svc.instance, 0});
  return VELLUM_OK;
}

vellum_status ServiceRegistry::acquire(vellum_plugin* consumer, std::string_view name, uint32_t major,
                                       uint32_t min_minor, vellum_service_v1* out, vellum_service_ref** ref,
                                       std::string* err) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(std::string(name));
  if (it == entries_.end()) {
    *err = "no plugin provides service '" + std::string(name) + "'";
    return VELLUM_ERR_NOT_FOUND;
  }
  Entry& e = it->second;
  if (e.major != major || e.minor < min_minor) {
    *err = "service '" + e.name + "' is version " + std::to_string(e.major) + "." + std::to_string(e.minor) +
           " (plugin '" + e.provider->name + "'); " + (consumer ? consumer->name : std::string("the host")) +
           " needs " + std::to_string(major) + "." + std::to_string(min_minor) + " or a newer minor";
    return VELLUM_ERR_VERSION;
  }
  vellum_service_v1 full{};
  full.struct_size = sizeof full;
  full.name = e.name.c_str();
  full.major = e.major;
  full.minor = e.minor;
  full.vtable = e.vtable;
  full.instance = e.instance;
  uint32_t n = out->struct_size < sizeof full ? out->struct_size : static_cast<uint32_t>(sizeof full);
  uint32_t caller_size = out->struct_size;
  std::memcpy(out, &full, n);
  out->struct_size = caller_size;
  ++e.refs;
  *ref = new vellum_service_ref{e.name, e.provider, consumer};
  return VELLUM_OK;
}

void ServiceRegistry::release(vellum_service_ref* ref) {
  if (!ref) return;
  {
    std::lock_guard lk(mu_);
    auto it = entries_.find(ref->name);
    if (it != entries_.end() && it->second.provider == ref->provider && it->second.refs > 0)
      --it->second.refs;
  }
  cv_.notify_all();
  delete ref;
}

bool ServiceRegistry::wait_unused(const vellum_plugin* provider, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] {
    for (auto& [n, e] : entries_)
      if (e.provider == provider && e.refs > 0) return false;
    return true;
  });
}

void ServiceRegistry::remove_provider(const vellum_plugin* provider) {
  std::lock_guard lk(mu_);
  std::erase_if(entries_, [&](auto& kv) { return kv.second.provider == provider; });
}

std::vector<ServiceRegistry::Info> ServiceRegistry::list() const {
  std::lock_guard lk(mu_);
  std::vector<Info> out;
  for (auto& [n, e] : entries_) out.push_back(Info{n, e.provider->name, e.major, e.minor, e.refs});
  return out;
}

}  // namespace vellum::host
