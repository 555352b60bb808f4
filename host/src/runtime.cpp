// Plugin loading and lifecycle, request dispatch, and the host's own routes.
#define BOOST_DLL_USE_STD_FS
#include <boost/dll/shared_library.hpp>

#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime.hpp"

namespace fs = std::filesystem;

namespace vellum::host {

const char* to_string(PluginState s) {
  switch (s) {
    case PluginState::Loaded:
      return "loaded";
    case PluginState::Created:
      return "created";
    case PluginState::Started:
      return "started";
    case PluginState::Stopped:
      return "stopped";
    case PluginState::Failed:
      return "failed";
    case PluginState::Disabled:
      return "disabled";
  }
  return "unknown";
}

// ---------------------------------------------------------------- errors
namespace {
thread_local std::string t_last_error;
thread_local std::string t_plugin_error;
}  // namespace
void set_last_error(std::string msg) { t_last_error = std::move(msg); }
const std::string& last_error() { return t_last_error; }
void set_plugin_error(std::string msg) { t_plugin_error = std::move(msg); }
std::string take_plugin_error() { return std::exchange(t_plugin_error, {}); }

uint16_t http_status_for(vellum_status s) {
  switch (s) {
    case VELLUM_OK:
      return 200;
    case VELLUM_ERR_INVALID_ARGUMENT:
      return 400;
    case VELLUM_ERR_UNAUTHENTICATED:
      return 401;
    case VELLUM_ERR_PERMISSION_DENIED:
      return 403;
    case VELLUM_ERR_NOT_FOUND:
      return 404;
    case VELLUM_ERR_CONFLICT:
    case VELLUM_ERR_STATE:
      return 409;
    case VELLUM_ERR_LIMIT:
      return 429;
    case VELLUM_ERR_UNSUPPORTED:
      return 501;
    case VELLUM_ERR_UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

std::string_view status_name(vellum_status s) {
  switch (s) {
    case VELLUM_OK:
      return "ok";
    case VELLUM_PENDING:
      return "pending";
    case VELLUM_ERR_INVALID_ARGUMENT:
      return "invalid argument";
    case VELLUM_ERR_NOT_FOUND:
      return "not found";
    case VELLUM_ERR_CONFLICT:
      return "conflict";
    case VELLUM_ERR_PERMISSION_DENIED:
      return "permission denied";
    case VELLUM_ERR_UNAUTHENTICATED:
      return "unauthenticated";
    case VELLUM_ERR_UNAVAILABLE:
      return "unavailable";
    case VELLUM_ERR_VERSION:
      return "version mismatch";
    case VELLUM_ERR_LIMIT:
      return "limit exceeded";
    case VELLUM_ERR_UNSUPPORTED:
      return "unsupported";
    case VELLUM_ERR_STATE:
      return "wrong lifecycle state";
    default:
      return "internal error";
  }
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

}  // namespace vellum::host

bool vellum_request::respond(vellum::host::HttpResponse&& r) {
  std::function<void(vellum::host::HttpResponse &&)> done;
  {
    std::lock_guard lk(mu);
    if (responded.exchange(true)) return false;
    done = std::move(complete);
  }
  for (auto& h : resp_headers) r.headers.push_back(h);
  if (done) done(std::move(r));
  return true;
}

namespace vellum::host {

// Libraries stay loaded for the life of the process: anything a plugin handed
// out (function pointers, vtables, static strings) must never dangle.
static std::vector<boost::dll::shared_library>& loaded_libraries() {
  static auto* libs = new std::vector<boost::dll::shared_library>();
  return *libs;
}

static fs::path executable_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : p.parent_path();
}

// The build tree keeps plugins in <build>/plugins; an install in
// <prefix>/lib/vellum/plugins.
static fs::path default_plugin_dir() {
  fs::path exe = executable_dir();
  for (auto candidate : {exe / ".." / "plugins", exe / ".." / VELLUM_PLUGIN_INSTALL_RELDIR}) {
    std::error_code ec;
    if (fs::is_directory(candidate, ec)) return fs::weakly_canonical(candidate);
  }
  return exe / ".." / VELLUM_PLUGIN_INSTALL_RELDIR;
}

Runtime::Runtime(Config c, boost::asio::io_context& i) : cfg(std::move(c)), io(i), timers(i) {
  if (cfg.testing.clock_control) {
    clock = [this] { return system_clock_ms() + clock_offset_ms.load(std::memory_order_relaxed); };
    spdlog::warn("[testing] clock_control is on: administrators can move the clock (never in production)");
  }
  add_host_routes();
  add_identity_routes();
}

Runtime::~Runtime() = default;

static std::vector<std::string> c_list(const char* const* list) {
  std::vector<std::string> out;
  for (size_t i = 0; list && list[i] && i < 256; ++i) out.emplace_back(list[i]);
  return out;
}

void Runtime::load_plugins() {
  fs::path dir = cfg.plugin_dir.empty() ? default_plugin_dir() : fs::path(cfg.plugin_dir);
  std::vector<std::unique_ptr<vellum_plugin>> loaded;
  for (auto& pc : cfg.plugins) {
    if (!pc.enabled) continue;
    auto p = std::make_unique<vellum_plugin>();
    p->rt = this;
    p->config = pc;
    p->name = pc.name;
    fs::path path = pc.path.empty() ? dir / ("vellum_" + pc.name + ".so") : fs::path(pc.path);
    p->path = path.string();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      throw std::runtime_error("plugin '" + pc.name + "': no shared object at " + p->path +
                               "; build it, set [plugins." + pc.name + "].path, or set enabled = false");
    std::string bytes;
    {
      std::ifstream in(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
      if (!in.good() && !in.eof())
        throw std::runtime_error("plugin '" + pc.name + "': cannot read " + p->path);
    }
    p->sha256 = sha256_hex(bytes);
    if (!pc.sha256.empty() && !iequals(pc.sha256, p->sha256))
      throw std::runtime_error("plugin '" + pc.name + "': SHA-256 of " + p->path + " is " + p->sha256 +
                               ", but the config pins " + pc.sha256 +
                               "; refusing to load it. Check where the file came from, then update the pin");
    // A pinned plugin is loaded from an anonymous copy of the bytes just
    // hashed, so a file swapped between check and load cannot slip in.
    fs::path load_path = path;
    int memfd = -1;
    if (!pc.sha256.empty()) {
      memfd = memfd_create(("vellum_" + pc.name).c_str(), MFD_CLOEXEC);
      size_t off = 0;
      while (memfd >= 0 && off < bytes.size()) {
        ssize_t n = ::write(memfd, bytes.data() + off, bytes.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      if (memfd < 0 || off != bytes.size())
        throw std::runtime_error("plugin '" + pc.name + "': cannot stage the verified copy");
      load_path = "/proc/self/fd/" + std::to_string(memfd);
    }
    boost::dll::shared_library lib;
    try {
      lib.load(load_path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    } catch (const std::exception& e) {
      if (memfd >= 0) ::close(memfd);
      throw std::runtime_error("plugin '" + pc.name + "': cannot load " + p->path + ": " + e.what());
    }
    if (memfd >= 0) ::close(memfd);  // the mapping outlives the descriptor
    if (!lib.has(VELLUM_PLUGIN_V1_SYMBOL))
      throw std::runtime_error("plugin '" + pc.name + "': " + p->path + " does not export " +
                               VELLUM_PLUGIN_V1_SYMBOL +
                               "; it is not a Vellum v1 plugin (rebuild it with VELLUM_PLUGIN)");
    auto entry = lib.get<const vellum_plugin_v1_info*()>(VELLUM_PLUGIN_V1_SYMBOL);
    loaded_libraries().push_back(lib);
    const vellum_plugin_v1_info* info = entry();
    const size_t minimal = offsetof(vellum_plugin_v1_info, destroy) + sizeof(info->destroy);
    if (!info || info->struct_size < minimal)
      throw std::runtime_error("plugin '" + pc.name + "': descriptor is missing or truncated");
    if (info->abi_major != VELLUM_ABI_MAJOR)
      throw std::runtime_error("plugin '" + pc.name + "' was built for ABI major " +
                               std::to_string(info->abi_major) + ", this host speaks major " +
                               std::to_string(VELLUM_ABI_MAJOR) + "; rebuild the plugin against this SDK");
    if (info->abi_min_minor > VELLUM_ABI_MINOR)
      throw std::runtime_error("plugin '" + pc.name + "' needs ABI 1." + std::to_string(info->abi_min_minor) +
                               ", this host provides 1." + std::to_string(VELLUM_ABI_MINOR) +
                               "; upgrade vellumd or use an older build of the plugin");
    // Copy what we know; a larger descriptor from a newer SDK keeps its unknown tail to itself.
    std::memcpy(&p->info, info, std::min<size_t>(info->struct_size, sizeof p->info));
    p->info.struct_size = sizeof p->info;
    if (!p->info.name || pc.name != p->info.name)
      throw std::runtime_error(
          "plugin file " + p->path + " calls itself '" + std::string(p->info.name ? p->info.name : "") +
          "' but is configured as [plugins." + pc.name + "]; fix the table name or path");
    if (!p->info.create || !p->info.start || !p->info.stop || !p->info.destroy)
      throw std::runtime_error("plugin '" + pc.name + "': descriptor lacks create/start/stop/destroy");
    p->version = p->info.version ? p->info.version : "";
    p->description = p->info.description ? p->info.description : "";
    p->requires_list = c_list(p->info.requires_list);
    p->provides = c_list(p->info.provides_list);
    loaded.push_back(std::move(p));
  }

  // Order by `requires` (a requirement names a service or a plugin).
  std::map<std::string, vellum_plugin*> provider;
  for (auto& p : loaded) {
    provider[p->name] = p.get();
    for (auto& s : p->provides) {
      auto [it, fresh] = provider.emplace(s, p.get());
      if (!fresh && it->second != p.get())
        throw std::runtime_error("service '" + s + "' is provided by both '" + it->second->name + "' and '" +
                                 p->name + "'; enable only one of them");
    }
  }
  std::vector<std::unique_ptr<vellum_plugin>> ordered;
  std::map<vellum_plugin*, int> mark;  // 1 visiting, 2 done
  std::function<void(vellum_plugin*, std::vector<std::string>&)> visit =
      [&](vellum_plugin* p, std::vector<std::string>& chain) {
        if (mark[p] == 2) return;
        chain.push_back(p->name);
        if (mark[p] == 1) {
          std::string c;
          for (auto& n : chain) c += (c.empty() ? "" : " -> ") + n;
          throw std::runtime_error("plugin dependency cycle: " + c);
        }
        mark[p] = 1;
        for (auto& r : p->requires_list) {
          auto it = provider.find(r);
          if (it == provider.end())
            throw std::runtime_error(
                "plugin '" + p->name + "' requires '" + r +
                "', which no enabled plugin provides; enable the plugin that provides it or disable '" +
                p->name + "'");
          if (it->second != p) visit(it->second, chain);
        }
        mark[p] = 2;
        chain.pop_back();
        for (auto& u : loaded)
          if (u.get() == p) ordered.push_back(std::move(u));
      };
  for (auto& p : loaded) {
    std::vector<std::string> chain;
    if (p) visit(p.get(), chain);
  }
  plugins = std::move(ordered);
}

std::vector<std::string> Runtime::validate_plugin_configs() {
  std::vector<std::string> errors;
  for (auto& p : plugins) {
    if (!p->info.validate_config) continue;
    std::string json = p->config.settings.dump();
    take_plugin_error();
    vellum_status s = p->info.validate_config(p.get(), api(), vellum_str{json.data(), json.size()});
    if (s != VELLUM_OK) {
      std::string msg = take_plugin_error();
      errors.push_back("[plugins." + p->name + "]: " + (msg.empty() ? std::string(status_name(s)) : msg));
    }
  }
  return errors;
}

void Runtime::open_storage() {
  fs::create_directories(cfg.data_dir);
  fs::path db = fs::path(cfg.storage.path).is_absolute() ? fs::path(cfg.storage.path)
                                                         : fs::path(cfg.data_dir) / cfg.storage.path;
  SqliteOptions o;
  o.path = db.string();
  store = open_sqlite_store(o);
  AuditOptions ao;
  ao.db_path = (fs::path(cfg.data_dir) / "audit.db").string();
  ao.hmac_key_path = (fs::path(cfg.data_dir) / "audit-hmac.key").string();
  ao.signing_key_path = (fs::path(cfg.data_dir) / "audit-signing.pem").string();
  ao.checkpoint_every = cfg.audit.checkpoint_every;
  ao.checkpoint_interval_ms = cfg.audit.checkpoint_interval_seconds * 1000;
  ao.hmac_emails = cfg.audit.hmac_emails;
  ao.hmac_ips = cfg.audit.hmac_ips;
  audit = std::make_unique<AuditLog>(std::move(ao));
  identity = std::make_unique<Identity>(*store, cfg.identity, [this] { return clock(); });
  // A WebSocket lives no longer than the session it was opened with.
  identity->on_session_ended(
      [this](const std::string& session_id) { hub.close_session(session_id, 4401, "session ended"); });
  spdlog::info("storage: {} at {}", store->backend_name(), o.path);
}

void Runtime::fail_plugin(vellum_plugin* p, const std::string& why) {
  p->error = why;
  // Unhook first, so no request, event or timer reaches a destroyed instance.
  router.remove_plugin(p);
  bus.unsubscribe_all(p);
  timers.cancel_all(p);
  services.remove_provider(p);
  if (p->created) {
    p->info.destroy(p->instance);
    p->instance = nullptr;
    p->created = false;
  }
  p->state = p->config.required ? PluginState::Failed : PluginState::Disabled;
  p->phase = Phase::Destroyed;
}

void Runtime::start_plugins() {
  std::set<std::string> unavailable;  // names and services of plugins that did not start
  for (auto& up : plugins) {
    vellum_plugin* p = up.get();
    for (auto& r : p->requires_list)
      if (unavailable.count(r)) {
        std::string why = "requires '" + r + "', which did not start";
        fail_plugin(p, why);
        if (p->config.required) throw std::runtime_error("plugin '" + p->name + "' " + why);
        spdlog::error("plugin '{}' disabled: {}", p->name, why);
      }
    if (p->state == PluginState::Disabled) {
      unavailable.insert(p->name);
      for (auto& s : p->provides) unavailable.insert(s);
      continue;
    }
    std::string json = p->config.settings.dump();
    take_plugin_error();
    p->phase = Phase::Creating;
    vellum_status s = p->info.create(p, api(), vellum_str{json.data(), json.size()}, &p->instance);
    if (s == VELLUM_OK) {
      p->created = true;
      p->state = PluginState::Created;
      p->phase = Phase::Starting;
      s = p->info.start(p->instance);
    }
    if (s != VELLUM_OK) {
      std::string msg = take_plugin_error();
      std::string why = std::string(p->state == PluginState::Created ? "start" : "create") + " failed (" +
                        std::string(status_name(s)) + ")" + (msg.empty() ? "" : ": " + msg);
      fail_plugin(p, why);
      if (barrier_owner == p)  // values already sealed by it could not be read back
        throw std::runtime_error("plugin '" + p->name + "', which installed the storage barrier, " + why);
      if (p->config.required)
        throw std::runtime_error("required plugin '" + p->name + "' " + why +
                                 " (set required = false in [plugins." + p->name + "] to serve without it)");
      spdlog::error("optional plugin '{}' disabled: {}", p->name, why);
      unavailable.insert(p->name);
      for (auto& sv : p->provides) unavailable.insert(sv);
      continue;
    }
    p->state = PluginState::Started;
    p->phase = Phase::Running;
    spdlog::info("plugin '{}' {} started (ABI {}.{}+, sha256 {})", p->name, p->version, p->info.abi_major,
                 p->info.abi_min_minor, p->sha256.substr(0, 16));
  }
  if (!store->has_barrier())
    spdlog::warn("no storage barrier installed: data is stored in PLAINTEXT in {}; enable the crypto plugin",
                 cfg.data_dir);
  ready_ = true;
}

void Runtime::stop_plugins() {
  ready_ = false;
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
    vellum_plugin* p = it->get();
    if (p->state != PluginState::Started) continue;
    p->phase = Phase::Stopping;
    router.remove_plugin(p);
    timers.cancel_all(p);
    bus.unsubscribe_all(p);
    p->info.stop(p->instance);  // after unhooking routes, timers and events
    if (!services.wait_unused(p, std::chrono::seconds(5)))
      spdlog::warn("plugin '{}': its services are still in use after stop; destroying it anyway", p->name);
    services.remove_provider(p);
    p->info.destroy(p->instance);
    p->instance = nullptr;
    p->created = false;
    p->state = PluginState::Stopped;
    p->phase = Phase::Destroyed;
    spdlog::info("plugin '{}' stopped", p->name);
  }
  drop_all_pending();  // no plugin is left to answer them
}

BlockingPool::BlockingPool(unsigned threads, size_t max_queued) : max_queued_(max_queued) {
  for (unsigned i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock lk(mu_);
          cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
          if (jobs_.empty()) return;  // stopping and drained
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool BlockingPool::try_post(std::function<void()> job) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || jobs_.size() >= max_queued_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void Runtime::hold_pending(const std::shared_ptr<vellum_request>& r) {
  std::lock_guard lk(pending_mu_);
  // respond() sets `responded` before it calls release_pending(), so a request
  // answered already (from another thread) is never held.
  if (!r->responded) pending_[r.get()] = r;
}
void Runtime::release_pending(vellum_request* r) {
  std::shared_ptr<vellum_request> last;  // destroyed outside the lock
  std::lock_guard lk(pending_mu_);
  auto it = pending_.find(r);
  if (it == pending_.end()) return;
  last = std::move(it->second);
  pending_.erase(it);
}
void Runtime::drop_all_pending() {
  std::unordered_map<vellum_request*, std::shared_ptr<vellum_request>> all;
  std::lock_guard lk(pending_mu_);
  all.swap(pending_);
}

bool Runtime::audit_host(const vellum_request& req, const std::string& action, const std::string& resource,
                         const std::string& outcome, nlohmann::json details) {
  AuditEvent ev;
  ev.actor = req.auth ? req.auth->user.id : "";
  if (req.auth) ev.actor_email = req.auth->user.email;  // stored as an HMAC when [audit] hmac_emails
  ev.action = action;
  ev.resource = resource;
  ev.outcome = outcome == "success" || outcome == "denied" ? outcome : "failure";
  ev.request_id = req.http.request_id;
  ev.client_ip = req.http.client_ip;
  if (const std::string* ua = req.http.header("User-Agent")) ev.user_agent = *ua;
  ev.details = std::move(details);
  ev.sensitive = {"/email"};       // stored as a keyed HMAC, never in the clear
  ev.time_ms = system_clock_ms();  // records carry real time even under [testing] clock_control
  try {
    audit->append(std::move(ev));
    return true;
  } catch (const std::exception& e) {
    spdlog::error("audit append failed for {}: {}", action, e.what());
    if (cfg.audit.fail_closed) const_cast<vellum_request&>(req).audit_failed = true;
    return !cfg.audit.fail_closed;
  }
}

void Runtime::count_plugin_error(vellum_plugin* p) {
  ++p->call_errors;
  metrics.plugin_error(p->name);
}

// ---------------------------------------------------------------- dispatch
void Runtime::handle_http(const std::shared_ptr<vellum_request>& req) {
  auto start = std::chrono::steady_clock::now();
  auto m = router.match(req->http.method, req->http.path);
  std::string route_label = m.route ? m.route->pattern.text : "unmatched";
  auto inner = std::move(req->complete);
  req->complete = [this, start, route_label, method = req->http.method,
                   inner = std::move(inner)](HttpResponse&& r) mutable {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics.observe_request(method, route_label, r.status, secs);
    inner(std::move(r));
  };
  const std::string& rid = req->http.request_id;
  if (!m.route) {
    if (!m.allowed.empty()) {
      auto r = problem_response(405, "", "this route does not accept " + req->http.method, rid);
      std::string allow;
      for (auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a;
      r.headers.emplace_back("Allow", allow);
      req->respond(std::move(r));
    } else {
      req->respond(problem_response(404, "", "no route matches " + req->http.path, rid));
    }
    return;
  }
  req->route = m.route;
  req->params = std::move(m.params);
  resolve_principal(*req, false);
  // A read-only token stays read-only on every route, public ones included.
  if (req->auth && req->auth->session.scope == "read" && req->http.method != "GET" &&
      req->http.method != "HEAD") {
    req->respond(problem_response(403, "", "this API token is read-only", rid));
    return;
  }
  if (!(m.route->flags & VELLUM_ROUTE_PUBLIC)) {
    if (!req->auth) {
      auto r = problem_response(401, "", "authentication required", rid);
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      req->respond(std::move(r));
      return;
    }
    const Session& s = req->auth->session;
    // A guest (share-link visitor) has no account: the host's own account
    // and admin routes are not for it, except to see who it is and leave.
    if (m.route->native && s.kind == "guest" && req->http.path != "/v1/me" &&
        req->http.path != "/v1/auth/logout") {
      req->respond(problem_response(403, "", "a guest session cannot use this route", rid));
      return;
    }
    if (m.route->session_only && s.kind != "session") {
      req->respond(
          problem_response(403, "", "this action needs an interactive session, not an API token", rid));
      return;
    }
    if (m.route->admin_only && !req->auth->user.is_admin()) {
      req->respond(problem_response(403, "", "administrators only", rid));
      return;
    }
  }
  if (m.route->native && m.route->blocking) {
    auto route = m.route;
    bool queued = blocking.try_post([this, req, route, rid] {
      try {
        route->native(*req);
      } catch (const std::exception& e) {
        auto* se = dynamic_cast<const StoreError*>(&e);
        bool busy = se && se->status == VELLUM_ERR_UNAVAILABLE;
        spdlog::error("{} {} failed: {} (request {})", req->http.method, route->pattern.text, e.what(), rid);
        if (!req->responded)
          req->respond(problem_response(busy ? 503 : 500, "",
                                        busy ? "storage is busy; retry" : "internal error", rid));
      }
    });
    if (!queued) {
      auto r =
          problem_response(503, "", "too many requests are waiting for password checks; retry shortly", rid);
      r.headers.emplace_back("Retry-After", "1");
      req->respond(std::move(r));
    }
    return;
  }
  if (m.route->native) {
    try {
      m.route->native(*req);
    } catch (const std::exception& e) {
      // A storage failure must not drop the connection: answer with a problem.
      auto* se = dynamic_cast<const StoreError*>(&e);
      bool busy = se && se->status == VELLUM_ERR_UNAVAILABLE;
      spdlog::error("{} {} failed: {} (request {})", req->http.method, m.route->pattern.text, e.what(), rid);
      if (!req->responded)
        req->respond(
            problem_response(busy ? 503 : 500, "", busy ? "storage is busy; retry" : "internal error", rid));
    }
    return;
  }
  vellum_plugin* p = m.route->plugin;
  take_plugin_error();
  vellum_status s;
  try {
    s = m.route->handler(m.route->user->user, req.get());
  } catch (...) {  // only a plugin that bypasses the SDK can get here
    s = VELLUM_ERR_INTERNAL;
    set_plugin_error("an exception crossed the ABI boundary");
  }
  if (s == VELLUM_PENDING) {
    hold_pending(req);
    return;
  }
  if (s == VELLUM_OK) {
    if (!req->responded) {
      count_plugin_error(p);
      spdlog::error("plugin '{}': {} {} returned without a response (request {})", p->name, req->http.method,
                    m.route->pattern.text, rid);
      req->respond(problem_response(500, "", "the handler did not respond", rid));
    }
    return;
  }
  count_plugin_error(p);
  std::string msg = take_plugin_error();
  uint16_t code = http_status_for(s);
  if (code >= 500) {
    // Internal messages may carry details that are not the client's business.
    spdlog::error("plugin '{}': {} {} failed ({}): {} (request {})", p->name, req->http.method,
                  m.route->pattern.text, status_name(s), msg, rid);
    msg = "the plugin '" + p->name + "' failed; see the server log for request " + rid;
  }
  if (!req->responded) req->respond(problem_response(code, "", msg, rid));
}

std::string Runtime::plugins_json() const {
  nlohmann::json arr = nlohmann::json::array();
  auto svcs = services.list();
  for (auto& p : plugins) {
    nlohmann::json provided = nlohmann::json::array();
    for (auto& s : svcs)
      if (s.provider == p->name)
        provided.push_back(s.name + "@" + std::to_string(s.major) + "." + std::to_string(s.minor));
    arr.push_back({{"name", p->name},
                   {"version", p->version},
                   {"description", p->description},
                   {"abi", std::to_string(p->info.abi_major) + "." + std::to_string(p->info.abi_min_minor)},
                   {"state", to_string(p->state.load())},
                   {"required", p->config.required},
                   {"requires", p->requires_list},
                   {"provides", p->provides},
                   {"services", provided},
                   {"sha256", p->sha256},
                   {"error", p->error.empty() ? nlohmann::json() : nlohmann::json(p->error)}});
  }
  return nlohmann::json(
             {{"host_abi", std::to_string(VELLUM_ABI_MAJOR) + "." + std::to_string(VELLUM_ABI_MINOR)},
              {"plugins", arr}})
      .dump();
}

std::string Runtime::openapi_json() const {
  nlohmann::json paths = nlohmann::json::object();
  auto problem_ref = nlohmann::json{{"$ref", "#/components/responses/Problem"}};
  for (auto& r : router.routes()) {
    nlohmann::json op = nlohmann::json::object();
    if (!r->openapi_json.empty()) {
      auto extra = nlohmann::json::parse(r->openapi_json, nullptr, false);
      if (extra.is_object()) op = extra;
    }
    if (!r->summary.empty() && !op.contains("summary")) op["summary"] = r->summary;
    op["tags"] = {r->plugin ? r->plugin->name : "host"};
    nlohmann::json params = op.value("parameters", nlohmann::json::array());
    for (auto& s : r->pattern.segments)
      if (s.size() > 2 && s.front() == '{')
        params.push_back({{"name", s.substr(1, s.size() - 2)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
    if (!params.empty()) op["parameters"] = params;
    if (!op.contains("responses")) op["responses"] = {{"200", {{"description", "OK"}}}};
    op["responses"]["default"] = problem_ref;
    if (r->flags & VELLUM_ROUTE_PUBLIC) op["security"] = nlohmann::json::array();
    std::string method = r->method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    paths[r->pattern.text][method] = op;
  }
  for (auto& w : router.websockets()) {
    nlohmann::json op = {
        {"summary", w->summary.empty() ? "WebSocket endpoint" : w->summary},
        {"tags", {w->plugin ? w->plugin->name : "host"}},
        {"description", "Upgrade to WebSocket (RFC 6455)."},
        {"responses", {{"101", {{"description", "Switching Protocols"}}}, {"default", problem_ref}}}};
    paths[w->pattern.text]["get"] = op;
  }
  nlohmann::json problem_schema = {{"type", "object"}};
  for (const char* k : {"type", "title", "detail", "request_id"})
    problem_schema["properties"][k] = {{"type", "string"}};
  problem_schema["properties"]["status"] = {{"type", "integer"}};
  nlohmann::json doc;
  doc["openapi"] = "3.1.0";
  doc["info"] = {{"title", "Vellum"}, {"version", "0.1.0"}};
  doc["paths"] = paths;
  doc["components"]["securitySchemes"]["bearer"] = {{"type", "http"}, {"scheme", "bearer"}};
  doc["security"] = nlohmann::json::array({{{"bearer", nlohmann::json::array()}}});  // public routes opt out
  auto& problem = doc["components"]["responses"]["Problem"];
  problem["description"] = "RFC 9457 problem details";
  problem["content"]["application/problem+json"]["schema"] = problem_schema;
  return doc.dump();
}

void Runtime::add_host_routes() {
  auto add = [this](const char* method, const char* path, const char* summary,
                    std::function<void(vellum_request&)> fn) {
    auto r = std::make_shared<RouteEntry>();
    r->method = method;
    r->pattern = PathPattern::parse(path);
    r->flags = VELLUM_ROUTE_PUBLIC;
    r->summary = summary;
    r->native = std::move(fn);
    router.add(r);
  };
  auto json = [](vellum_request& req, uint16_t status, std::string body,
                 std::string type = "application/json") {
    HttpResponse r;
    r.status = status;
    r.content_type = std::move(type);
    r.body = std::move(body);
    req.respond(std::move(r));
  };
  add("GET", "/healthz", "Liveness: the process serves HTTP",
      [json](vellum_request& r) { json(r, 200, R"({"status":"ok"})"); });
  add("GET", "/readyz", "Readiness: every enabled plugin started", [this, json](vellum_request& r) {
    nlohmann::json failed = nlohmann::json::array();
    for (auto& p : plugins)
      if (p->state == PluginState::Disabled) failed.push_back({{"plugin", p->name}, {"error", p->error}});
    if (ready_ && !stopping)
      json(r, 200, nlohmann::json({{"status", "ready"}, {"disabled", failed}}).dump());
    else
      r.respond(problem_response(503, "Not ready", stopping ? "shutting down" : "plugins are starting",
                                 r.http.request_id));
  });
  add("GET", "/metrics", "Prometheus metrics", [this, json](vellum_request& r) {
    json(r, 200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  add("GET", "/v1/plugins", "Loaded plugins, versions, ABI and services",
      [this, json](vellum_request& r) { json(r, 200, plugins_json()); });
  add("GET", "/v1/openapi.json", "OpenAPI document of every registered route",
      [this, json](vellum_request& r) { json(r, 200, openapi_json()); });
}

size_t Runtime::close_ended_websockets() {
  if (!identity) return 0;
  size_t closed = 0;
  for (auto& [user_id, session_id] : hub.sessions()) {
    try {
      if (!identity->find_session(user_id, session_id))
        closed += hub.close_session(session_id, 4401, "session ended");
    } catch (const std::exception& e) {
      spdlog::warn("session check for open WebSockets failed: {}", e.what());  // retried next sweep
      break;
    }
  }
  return closed;
}

}  // namespace vellum::host
