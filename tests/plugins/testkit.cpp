// The test plugin: exercises every part of the ABI through the C++ SDK.
#include <vellum/sdk.hpp>

#include "greeter.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

class Testkit : public vellum::Plugin {
 public:
  static constexpr const char* kName = "testkit";
  static constexpr const char* kVersion = "1.0.0";
  static constexpr const char* kDescription = "Exercises the ABI in tests";
  static constexpr const char* kProvides[] = {"greeter", nullptr};

  static void validate(std::string_view config) {
    if (config.find("\"invalid\"") != std::string_view::npos)
      throw vellum::Error(VELLUM_ERR_INVALID_ARGUMENT, "key 'invalid' is not allowed here");
  }

  Testkit(vellum::Host& host, std::string_view config) : Plugin(host), greeting_(config) {
    vtable_.struct_size = sizeof vtable_;
    vtable_.greet = [](void* inst, const char* who, char* out, size_t n) -> int {
      auto* self = static_cast<Testkit*>(inst);
      if (std::string_view(who) == "nobody") {  // a provider's reason, for its consumer to read
        self->host().api()->set_error(self->host().self(), vellum::to_c("there is nobody to greet"));
        return -1;
      }
      std::string s = "hello " + std::string(who) + " (" + std::to_string(++self->greets_) + ")";
      std::snprintf(out, n, "%s", s.c_str());
      return 0;
    };
    host.provide("greeter", 1, 2, &vtable_, this);
    hits_ = host.metric(VELLUM_METRIC_COUNTER, "echo_total", "Echo requests");
  }

  void start() override {
    auto& h = host();
    // "start_delay_ms": N makes start() slow, to observe /readyz while starting.
    if (auto at = greeting_.find("\"start_delay_ms\":"); at != std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(greeting_.substr(at + 17))));
    h.route(
        "GET", "/v1/test/echo",
        [](vellum::Request& req) {
          auto msg = req.query_param("msg").value_or("");
          req.set_header("X-Echo", "1");
          req.respond(200, "text/plain", msg);
        },
        VELLUM_ROUTE_PUBLIC, "Echo the msg query parameter");
    h.route(
        "POST", "/v1/test/echo",
        [this](vellum::Request& req) {
          hits_.record(1);
          req.respond(200, "application/octet-stream", req.body());
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/params/{a}/x/{b}",
        [](vellum::Request& req) {
          req.json(200, "{\"a\":\"" + std::string(*req.param("a")) + "\",\"b\":\"" +
                            std::string(*req.param("b")) + "\"}");
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/throw",
        [](vellum::Request&) -> void { throw std::runtime_error("boom: secret internals"); },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/notfound",
        [](vellum::Request&) -> void { throw vellum::Error(VELLUM_ERR_NOT_FOUND, "no such widget"); },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/noresponse", [](vellum::Request&) {}, VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/async",
        [this](vellum::Request& req) {
          // ?ms=N answers after N ms (default 20); /v1/test/inflight counts open ones.
          int ms = std::stoi(std::string(req.query_param("ms").value_or("20")));
          auto later = req.defer();
          ++inflight_;
          std::thread([this, later, ms]() mutable {
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
            --inflight_;
            later.respond(200, "text/plain", "async done");
          }).detach();
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/inflight",
        [this](vellum::Request& req) {
          req.json(200, "{\"inflight\":" + std::to_string(inflight_.load()) + "}");
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/never", [](vellum::Request& req) { (void)req.defer(); }, VELLUM_ROUTE_PUBLIC);
    h.route("GET", "/v1/test/private",
            [](vellum::Request& req) { req.respond(200, "text/plain", "secret"); });
    h.route(
        "GET", "/v1/test/whoami",
        [](vellum::Request& req) {
          auto p = req.principal();
          req.json(200, std::string("{\"authenticated\":") + (p.authenticated ? "true" : "false") +
                            ",\"ip\":\"" + std::string(p.client_ip) + "\",\"request_id\":\"" +
                            std::string(p.request_id) + "\",\"email\":\"" + std::string(p.email) +
                            "\",\"session_created_at_ms\":" + std::to_string(p.session_created_at_ms) + "}");
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/kv/{key}",
        [this](vellum::Request& req) {
          auto v = host().get(*req.param("key"));
          if (!v) return req.problem(404, "", "no such key");
          req.set_header("X-Version", std::to_string(v->version));
          req.respond(200, "application/octet-stream", v->data);
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "PUT", "/v1/test/kv/{key}",
        [this](vellum::Request& req) {
          uint64_t expected = VELLUM_VERSION_ANY;
          if (auto e = req.query_param("expect")) expected = std::stoull(std::string(*e));
          uint64_t v = host().put(*req.param("key"), req.body(), expected);
          req.json(200, "{\"version\":" + std::to_string(v) + "}");
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "POST", "/v1/test/txn-fail",
        [this](vellum::Request& req) {
          auto txn = host().begin();
          txn.put("txn-key", "written");
          throw vellum::Error(VELLUM_ERR_CONFLICT, "abandoning the transaction");  // txn rolls back
          (void)req;
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "POST", "/v1/test/publish/{topic}",
        [this](vellum::Request& req) {
          host().publish(*req.param("topic"), req.body());
          req.json(200, "{}");
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "GET", "/v1/test/events",
        [this](vellum::Request& req) {
          std::lock_guard lk(mu_);
          req.json(200, "{\"count\":" + std::to_string(events_) + ",\"last\":\"" + last_topic_ + "\"}");
        },
        VELLUM_ROUTE_PUBLIC);
    h.route(
        "POST", "/v1/test/audit",
        [this](vellum::Request& req) {
          std::string resource(req.query_param("resource").value_or("widget/1"));
          host().audit("testkit.poke", resource, VELLUM_OUTCOME_SUCCESS, &req, "{\"n\":1}");
          req.json(200, "{}");
        },
        VELLUM_ROUTE_PUBLIC);
    // ABI 1.3: the decision with its reason and obligations, for the caller.
    h.route("GET", "/v1/test/decide", [this](vellum::Request& req) {
      auto d = host().authorize_ex(req, req.query_param("action").value_or(""),
                                   req.query_param("resource").value_or(""),
                                   req.query_param("owner").value_or(""));
      req.json(200, std::string("{\"permit\":") + (d.permit ? "true" : "false") +
                        ",\"decision\":" + (d.json.empty() ? "null" : d.json) + "}");
    });
    // ABI 1.3: audit records about a resource subtree, with proofs.
    h.route("GET", "/v1/test/audit-excerpt", [this](vellum::Request& req) {
      uint64_t after = std::stoull(std::string(req.query_param("after").value_or("0")));
      uint32_t limit =
          static_cast<uint32_t>(std::stoul(std::string(req.query_param("limit").value_or("100"))));
      req.json(200, host().audit_excerpt(req.query_param("resource").value_or(""), after, limit));
    });
    h.route(
        "GET", "/v1/test/ticks",
        [this](vellum::Request& req) { req.json(200, "{\"ticks\":" + std::to_string(ticks_.load()) + "}"); },
        VELLUM_ROUTE_PUBLIC);
    sub_ = h.subscribe("testkit.>", [this](std::string_view topic, std::string_view) {
      std::lock_guard lk(mu_);
      ++events_;
      last_topic_ = std::string(topic);
    });
    timer_ = h.timer(10, 10, [this] { ++ticks_; });

    vellum::Host::WebSocketHandlers ws;
    ws.flags = VELLUM_ROUTE_PUBLIC;
    ws.max_message_bytes = 64 * 1024;
    ws.on_open = [this](vellum_conn_id conn, vellum::Request& req) {
      if (req.query_param("refuse")) throw vellum::Error(VELLUM_ERR_PERMISSION_DENIED, "refused by request");
      host().send(conn, "welcome", false);
    };
    // "join:<room>", "say:<room>:<text>", "close", "auth:<token>" (ABI 1.4
    // in-band authentication), anything else is echoed.
    ws.on_message = [this](vellum_conn_id conn, bool binary, std::string_view data) {
      auto& h = host();
      if (data.rfind("auth:", 0) == 0) {
        try {
          auto who = h.ws_authenticate(conn, data.substr(5));
          h.send(conn,
                 who ? "authenticated " + who->user_id + " " + who->scopes +
                           (who->client_ip.empty() ? "" : " ip")
                     : std::string("unauthenticated"),
                 false);
        } catch (const vellum::Error& e) {
          h.send(conn, e.status() == VELLUM_ERR_CONFLICT ? "conflict" : "error", false);
        }
      } else if (data.rfind("join:", 0) == 0) {
        h.join(data.substr(5), conn);
        h.send(conn, "joined", false);
      } else if (data.rfind("say:", 0) == 0) {
        auto rest = data.substr(4);
        auto colon = rest.find(':');
        h.broadcast(rest.substr(0, colon), rest.substr(colon + 1), false, conn);
      } else if (data == "close") {
        h.close(conn, 4000, "bye");
      } else if (data == "throw") {
        throw std::runtime_error("handler failure");
      } else {
        h.send(conn, data, binary);
      }
    };
    h.websocket("/v1/test/ws", std::move(ws));

    vellum::Host::WebSocketHandlers priv;  // authenticated callers only
    priv.on_open = [this](vellum_conn_id conn, vellum::Request& req) {
      {
        std::lock_guard lk(mu_);
        principals_[conn] = vellum::OwnedPrincipal(req.principal());
      }
      host().send(conn, "hello " + std::string(req.principal().user_id), false);
    };
    // "recheck <action> <resource> [owner]": ask the PDP again for the
    // principal kept from the open request (ABI 1.2 authorize_principal).
    priv.on_message = [this](vellum_conn_id conn, bool, std::string_view data) {
      if (data.rfind("recheck ", 0) != 0) return;
      std::vector<std::string> words;
      for (size_t at = 8; at <= data.size();) {
        size_t sp = std::min(data.find(' ', at), data.size());
        words.emplace_back(data.substr(at, sp - at));
        at = sp + 1;
      }
      vellum::OwnedPrincipal who;
      {
        std::lock_guard lk(mu_);
        who = principals_[conn];
      }
      if (words.at(0) == "ex") {  // "recheck ex <action> <resource> [owner]": ABI 1.3 authorize_ex
        auto d = host().authorize_ex(who, words.at(1), words.at(2), words.size() > 3 ? words[3] : "");
        host().send(conn, d.authenticated ? d.json : "unauthenticated", false);
        return;
      }
      bool ok = host().authorize(who, words.at(0), words.at(1), words.size() > 2 ? words[2] : "");
      host().send(conn, ok ? "allow" : "deny", false);
    };
    priv.on_close = [this](vellum_conn_id conn, uint16_t) {
      std::lock_guard lk(mu_);
      principals_.erase(conn);
    };
    h.websocket("/v1/test/ws-private", std::move(priv));

    // Guest sessions (ABI 1.2) for the host's tests: issue and revoke.
    h.route("POST", "/v1/test/guest/{subject}", [this](vellum::Request& req) {
      std::string token =
          host().guest_session_issue(*req.param("subject"), "link:test role:viewer", "Visitor", 3600 * 1000);
      req.json(200, "{\"token\":\"" + token + "\"}");
    });
    h.route("DELETE", "/v1/test/guest/{subject}", [this](vellum::Request& req) {
      uint64_t n = host().guest_session_revoke(*req.param("subject"));
      req.json(200, "{\"revoked\":" + std::to_string(n) + "}");
    });
  }

  void stop() override {
    sub_.reset();
    timer_.reset();
  }

 private:
  std::string greeting_;
  greeter_v1 vtable_{};
  std::atomic<int> greets_{0};
  vellum::Host::Metric hits_;
  vellum::Handle sub_, timer_;
  std::mutex mu_;
  std::map<vellum_conn_id, vellum::OwnedPrincipal> principals_;
  int events_ = 0;
  std::string last_topic_;
  std::atomic<int> ticks_{0};
  std::atomic<int> inflight_{0};
};

}  // namespace

VELLUM_PLUGIN(Testkit)
