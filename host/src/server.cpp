#include "server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <vector>
#include <optional>
#include <thread>

#include "runtime.hpp"
#include "tls.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace vellum::host {
namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

std::string new_request_id() {
  unsigned char b[8];
  RAND_bytes(b, sizeof b);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s.push_back(hex[c >> 4]);
    s.push_back(hex[c & 15]);
  }
  return s;
}

// Counts requests being handled, for graceful shutdown.
struct Inflight {
  std::mutex mu;
  std::condition_variable cv;
  size_t n = 0;
  void add() {
    std::lock_guard lk(mu);
    ++n;
  }
  void done() {
    {
      std::lock_guard lk(mu);
      --n;
    }
    cv.notify_all();
  }
};

struct SessionBase {
  virtual ~SessionBase() = default;
  virtual void close_if_idle() = 0;
};

struct Shared {
  Shared(Runtime& r, const ServerConfig& c) : rt(r), cfg(c) {}
  Runtime& rt;
  const ServerConfig& cfg;
  Inflight inflight;
  std::atomic<bool> closing{false};
  std::mutex sessions_mu;
  std::vector<std::weak_ptr<SessionBase>> sessions;  // pruned as it grows
  size_t prune_at = 1024;
};

template <class Stream>
void close_stream(Stream& s) {
  beast::error_code ec;
  beast::get_lowest_layer(s).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(s).close();
}

// ---------------------------------------------------------------- WebSocket
// A FIFO that holds no memory while empty (std::deque allocates a 512-byte
// block up front, which is most of an idle connection's budget).
template <class T>
class SendQueue {
 public:
  bool empty() const { return head_ == items_.size(); }
  T& front() { return items_[head_]; }
  void push_back(T v) { items_.push_back(std::move(v)); }
  void pop_front() {
    items_[head_++] = T{};
    if (empty()) clear();
  }
  void clear() {
    items_.clear();
    head_ = 0;
    if (items_.capacity() > 64) items_.shrink_to_fit();  // a burst's backlog is not kept
  }
  auto begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() { return items_.end(); }

 private:
  std::vector<T> items_;
  size_t head_ = 0;
};

template <class Stream>
class WsSession : public WsConnection, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  WsSession(Shared& sh, Stream&& stream, std::shared_ptr<WsEntry> ep, vellum_conn_id id)
      : sh_(sh), ws_(std::move(stream)), ep_(std::move(ep)), id_(id) {}

  // Runs the plugin's on_open, then completes the handshake.
  void start(http::request<http::string_body> upgrade, const std::shared_ptr<vellum_request>& vreq) {
    auto self = this->shared_from_this();
    const std::string* ua = vreq->http.header("User-Agent");
    sh_.rt.hub.add(id_, self, ep_->plugin, vreq->auth ? vreq->auth->session.id : std::string(),
                   vreq->auth ? vreq->auth->session.user_id : std::string(), vreq->http.client_ip,
                   ua ? *ua : std::string());
    take_plugin_error();
    vellum_status s = VELLUM_OK;
    if (ep_->ep.on_open) s = ep_->ep.on_open(ep_->user->user, id_, vreq.get());
    if (s != VELLUM_OK) {
      sh_.rt.hub.remove(id_);
      std::string msg = take_plugin_error();
      uint16_t code = http_status_for(s);
      if (code < 400) code = 500;
      if (code >= 500) {
        sh_.rt.count_plugin_error(ep_->plugin);
        spdlog::error("plugin '{}': WebSocket open failed: {}", ep_->plugin->name, msg);
        msg = "the plugin refused the connection";
      }
      refuse(problem_response(code, "", msg, vreq->http.request_id), upgrade.version());
      return;
    }
    sh_.rt.metrics.ws_opened();
    opened_ = true;
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t = websocket::stream_base::timeout::suggested(beast::role_type::server);
    t.idle_timeout = std::chrono::milliseconds(sh_.cfg.ws_idle_timeout_ms);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(ep_->max_message_bytes);
    // A browser that sent its token as the subprotocol pair "vellum.bearer, <token>"
    // must see one of its offers echoed, or it drops the connection; never echo the token.
    const std::string* offered = vreq->http.header("Sec-WebSocket-Protocol");
    bool bearer_protocol = offered && offered->find("vellum.bearer") != std::string::npos;
    ws_.set_option(websocket::stream_base::decorator([bearer_protocol](websocket::response_type& res) {
      res.set(http::field::server, "vellum");
      if (bearer_protocol) res.set(http::field::sec_websocket_protocol, "vellum.bearer");
    }));
    ws_.async_accept(upgrade, [self](beast::error_code ec) {
      if (ec) return self->teardown(1006);
      self->accepted_ = true;
      self->do_read();
      self->maybe_write();
    });
  }

  vellum_status send(std::shared_ptr<const std::string> data, bool binary) override {
    if (closed_) {
      set_last_error("connection is closed");
      return VELLUM_ERR_NOT_FOUND;
    }
    uint64_t after = queued_bytes_.fetch_add(data->size()) + data->size();
    if (after > ep_->max_queued_bytes) {
      queued_bytes_.fetch_sub(data->size());
      close_now(1008, "send queue full");
      set_last_error("send queue full; the connection is being closed");
      return VELLUM_ERR_LIMIT;
    }
    net::post(ws_.get_executor(), [self = this->shared_from_this(), data = std::move(data), binary] {
      if (self->closing_) {
        self->queued_bytes_ -= data->size();
        return;
      }
      self->queue_.push_back({data, binary});
      self->maybe_write();
    });
    return VELLUM_OK;
  }

  // Flushes what is queued, then closes.
  void close(uint16_t code, std::string reason) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), code, reason = std::move(reason)] {
      if (self->closing_ || self->close_after_flush_) return;
      self->close_after_flush_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
      self->maybe_write();
    });
  }

 private:
  struct Out {
    std::shared_ptr<const std::string> data;
    bool binary;
  };

  // The upgrade was refused: answer on the HTTP stream the WebSocket wraps.
  void refuse(HttpResponse&& r, unsigned version) {
    closed_ = true;
    auto res =
        std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version);
    res->set(http::field::server, "vellum");
    res->set(http::field::content_type, r.content_type);
    res->keep_alive(false);
    res->body() = std::move(r.body);
    res->prepare_payload();
    beast::get_lowest_layer(ws_).expires_after(std::chrono::milliseconds(sh_.cfg.read_timeout_ms));
    http::async_write(ws_.next_layer(), *res,
                      [self = this->shared_from_this(), res](beast::error_code, size_t) {
                        close_stream(self->ws_.next_layer());
                      });
  }

  void close_now(uint16_t code, std::string reason) {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), code, reason = std::move(reason)] {
      if (self->closing_) return;
      for (auto& o : self->queue_)
        if (&o != &self->queue_.front() || !self->writing_) self->queued_bytes_ -= o.data->size();
      if (self->writing_) {
        auto front = std::move(self->queue_.front());
        self->queue_.clear();
        self->queue_.push_back(std::move(front));
      } else {
        self->queue_.clear();
      }
      self->close_after_flush_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
      self->maybe_write();
    });
  }

  void maybe_write() {
    if (!accepted_ || writing_ || closing_) return;
    if (queue_.empty()) {
      if (close_after_flush_) {
        closing_ = true;
        close_pending_ = true;
        ws_.async_close(*close_after_flush_, [self = this->shared_from_this()](beast::error_code ec) {
          // Our close handshake is over (or failed): now the connection is gone.
          self->close_pending_ = false;
          self->teardown(ec ? 1006 : static_cast<uint16_t>(self->close_after_flush_->code));
        });
      }
      return;
    }
    writing_ = true;
    ws_.binary(queue_.front().binary);
    ws_.async_write(net::buffer(*queue_.front().data),
                    [self = this->shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      self->queued_bytes_ -= self->queue_.front().data->size();
                      self->queue_.pop_front();
                      if (ec) return self->teardown(1006);
                      self->maybe_write();
                    });
  }

  // An idle connection waits in a read of at most one byte: Beast's whole-
  // message read would first reserve 1.5 KiB in buffer_ and hold it while
  // the peer is silent. The rest of the message follows with async_read.
  void do_read() {
    ws_.async_read_some(buffer_, 1, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->read_failed(ec);
      if (self->ws_.is_message_done()) return self->deliver();
      self->ws_.async_read(self->buffer_, [self](beast::error_code ec, size_t) {
        if (ec) return self->read_failed(ec);
        self->deliver();
      });
    });
  }

  void read_failed(beast::error_code ec) {
    if (close_pending_) return;  // the close handler tears down
    uint16_t code = 1006;
    if (ec == websocket::error::closed) code = ws_.reason().code;
    if (ec == websocket::error::message_too_big) code = 1009;
    teardown(code);
  }

  void deliver() {
    auto data = buffer_.cdata();
    if (!closing_ && ep_->ep.on_message)
      ep_->ep.on_message(ep_->user->user, id_, ws_.got_binary() ? 1 : 0,
                         vellum_bytes{static_cast<const uint8_t*>(data.data()), data.size()});
    buffer_.consume(buffer_.size());
    buffer_.shrink_to_fit();  // idle connections keep no read buffer
    do_read();
  }

  void teardown(uint16_t code) {
    if (closed_.exchange(true)) return;
    closing_ = true;
    sh_.rt.hub.remove(id_);
    if (opened_) {
      sh_.rt.metrics.ws_closed();
      if (ep_->ep.on_close) ep_->ep.on_close(ep_->user->user, id_, code ? code : 1005);
    }
    // Beast has already torn the stream down after a close handshake or a
    // protocol failure (and lingers so the peer reads our close frame); only
    // a transport failure leaves a socket for us to close.
    if (code == 1006) {
      beast::error_code ec;
      beast::get_lowest_layer(ws_).socket().close(ec);
    }
  }

  Shared& sh_;
  websocket::stream<Stream> ws_;
  std::shared_ptr<WsEntry> ep_;
  vellum_conn_id id_;
  beast::flat_buffer buffer_;
  SendQueue<Out> queue_;
  std::atomic<uint64_t> queued_bytes_{0};
  std::optional<websocket::close_reason> close_after_flush_;
  bool writing_ = false, accepted_ = false, opened_ = false, close_pending_ = false;
  std::atomic<bool> closing_{false}, closed_{false};
};

// ---------------------------------------------------------------- HTTP
template <class Stream>
class HttpSession : public SessionBase, public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Shared& sh, Stream&& s, std::string client_ip)
      : sh_(sh), stream_(std::move(s)), deadline_(stream_.get_executor()), client_ip_(std::move(client_ip)) {}

  void run() {
    register_session();
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(sh_.cfg.read_timeout_ms));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->finish();
                                beast::get_lowest_layer(self->stream_).expires_never();
                                self->wait_for_request();
                              });
    } else {
      net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->wait_for_request(); });
    }
  }

  // Shutdown: close at once if idle, otherwise after the current response.
  void close_if_idle() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->idle_) {
        self->deadline_.cancel();
        close_stream(self->stream_);
      }
    });
  }

 private:
  void register_session() {
    std::lock_guard lk(sh_.sessions_mu);
    if (sh_.sessions.size() >= sh_.prune_at) {
      std::erase_if(sh_.sessions, [](auto& w) { return w.expired(); });
      sh_.prune_at = std::max<size_t>(1024, sh_.sessions.size() * 2);
    }
    sh_.sessions.push_back(std::static_pointer_cast<SessionBase>(this->shared_from_this()));
  }

  // Phase 1: wait for the first byte under the keep-alive idle timeout.
  void wait_for_request() {
    if (sh_.closing) return finish();
    idle_ = true;
    if (buffer_.size() > 0) return read_request();
    arm(sh_.cfg.idle_timeout_ms);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              self->deadline_.cancel();
                              if (ec || n == 0) return self->finish();
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  // Phase 2: the whole request under the read timeout; a slow client gets 408.
  void read_request() {
    idle_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(sh_.cfg.max_header_bytes));
    parser_->body_limit(sh_.cfg.max_body_bytes);
    timed_out_ = false;
    arm(sh_.cfg.read_timeout_ms);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->deadline_.cancel();
                       self->on_read(ec);
                     });
  }

  void arm(uint64_t ms) {
    deadline_.expires_after(std::chrono::milliseconds(ms));
    deadline_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().cancel(ignored);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (timed_out_) return send_error(problem_response(408, "", "the request was not received in time"));
      if (ec == http::error::header_limit)
        return send_error(problem_response(
            431, "", "request headers exceed " + std::to_string(sh_.cfg.max_header_bytes) + " bytes"));
      if (ec == http::error::body_limit)
        return send_error(problem_response(
            413, "", "request body exceeds " + std::to_string(sh_.cfg.max_body_bytes) + " bytes"));
      if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
          ec == net::error::operation_aborted || ec == ssl::error::stream_truncated)
        return finish();
      return send_error(problem_response(400, "", "malformed HTTP request"));
    }
    auto req = parser_->release();
    auto vreq = std::make_shared<vellum_request>();
    auto& h = vreq->http;
    h.method = std::string(req.method_string());
    std::string_view target = req.target();
    auto q = target.find('?');
    h.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) h.query = std::string(target.substr(q + 1));
    for (auto& f : req) h.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    h.client_ip = client_ip_;
    h.request_id = new_request_id();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == http::verb::head;

    if (websocket::is_upgrade(req)) return upgrade(std::move(req), vreq);
    h.body = std::move(req.body());
    if (h.path.empty() || h.path[0] != '/')
      return send_error(problem_response(400, "", "request target must be a path"));

    sh_.inflight.add();
    auto self = this->shared_from_this();
    vreq->complete = [self](HttpResponse&& r) {
      net::post(self->stream_.get_executor(),
                [self, r = std::move(r)]() mutable { self->write(std::move(r), true); });
    };
    sh_.rt.handle_http(vreq);
    if (!vreq->responded) {
      // An async handler: answer 504 if it takes too long (its late respond() is refused).
      std::weak_ptr<vellum_request> weak = vreq;
      auto timer = std::make_shared<net::steady_timer>(stream_.get_executor());
      timer->expires_after(std::chrono::milliseconds(sh_.cfg.handler_timeout_ms));
      timer->async_wait([weak, timer](beast::error_code ec) {
        if (ec) return;
        if (auto r = weak.lock())
          r->respond(problem_response(504, "", "the handler did not answer in time", r->http.request_id));
      });
      pending_timer_ = timer;
    }
  }

  void upgrade(http::request<http::string_body> req, const std::shared_ptr<vellum_request>& vreq) {
    std::vector<std::pair<std::string, std::string>> params;
    auto ep = sh_.rt.match_ws(vreq->http.path, &params);
    if (!ep)
      return send_error(
          problem_response(404, "", "no WebSocket endpoint at " + vreq->http.path, vreq->http.request_id));
    sh_.rt.resolve_principal(*vreq, true);
    if (!(ep->flags & VELLUM_ROUTE_PUBLIC) && !vreq->auth) {
      auto r = problem_response(401, "", "authentication required", vreq->http.request_id);
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return send_error(std::move(r));
    }
    if (sh_.closing) return send_error(problem_response(503, "", "shutting down", vreq->http.request_id));
    vreq->params = std::move(params);
    auto ws = std::make_shared<WsSession<Stream>>(sh_, std::move(stream_), ep, sh_.rt.hub.next_id());
    moved_ = true;  // the WebSocket owns the stream now (and answers a refusal itself)
    ws->start(std::move(req), vreq);
  }

  void send_error(HttpResponse&& r) {
    keep_alive_ = false;
    sh_.inflight.add();
    write(std::move(r), true);
  }

  void write(HttpResponse&& r, bool counted) {
    if (pending_timer_) pending_timer_->cancel();  // its handler holds the timer until it runs
    pending_timer_.reset();
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status),
                                                                   version_ ? version_ : 11);
    res->set(http::field::server, "vellum");
    if (!r.content_type.empty()) res->set(http::field::content_type, r.content_type);
    res->set("X-Content-Type-Options", "nosniff");
    for (auto& [k, v] : r.headers) res->insert(k, v);
    bool keep = keep_alive_ && !sh_.closing;
    res->keep_alive(keep);
    size_t len = r.body.size();
    if (!head_) res->body() = std::move(r.body);
    res->content_length(len);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(sh_.cfg.read_timeout_ms));
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res, keep, counted](beast::error_code ec, size_t) {
                        beast::get_lowest_layer(self->stream_).expires_never();
                        if (counted) self->sh_.inflight.done();
                        if (ec || !keep) return self->finish();
                        self->wait_for_request();
                      });
  }

  void finish() {
    if (moved_ || finished_) return;
    finished_ = true;
    deadline_.cancel();
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { close_stream(self->stream_); });
    } else {
      close_stream(stream_);
    }
  }

  Shared& sh_;
  Stream stream_;
  net::steady_timer deadline_;
  std::string client_ip_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<net::steady_timer> pending_timer_;
  bool keep_alive_ = true, head_ = false, timed_out_ = false, idle_ = false, moved_ = false,
       finished_ = false;
  unsigned version_ = 11;
};

}  // namespace

// ---------------------------------------------------------------- listener
struct Server::Impl {
  Impl(Runtime& rt, net::io_context& io) : io(io), acceptor(net::make_strand(io)), sh(rt, rt.cfg.server) {}
  net::io_context& io;
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor;
  Shared sh;
  uint16_t port = 0;
  std::string host;

  void accept() {
    acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket sock) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
        spdlog::warn("accept failed: {}", ec.message());
        return accept();
      }
      beast::error_code ignored;
      auto ep = sock.remote_endpoint(ignored);
      std::string ip = ignored ? "" : ep.address().to_string();
      sock.set_option(tcp::no_delay(true), ignored);
      if (tls)
        std::make_shared<HttpSession<TlsStream>>(sh, TlsStream(std::move(sock), *tls), ip)->run();
      else
        std::make_shared<HttpSession<PlainStream>>(sh, PlainStream(std::move(sock)), ip)->run();
      accept();
    });
  }
};

Server::Server(Runtime& rt, net::io_context& io) : impl_(std::make_unique<Impl>(rt, io)) {}
Server::~Server() = default;

void Server::listen() {
  auto& cfg = impl_->sh.cfg;
  Endpoint e = parse_endpoint(cfg.listen);
  if (cfg.tls) {
    TlsFiles files = ensure_tls_files(cfg.cert_file, cfg.key_file, impl_->sh.rt.cfg.data_dir);
    if (files.generated)
      spdlog::warn(
          "generated a self-signed development certificate {} — use a real certificate in production",
          files.cert_file);
    spdlog::info("TLS certificate {} SHA-256 fingerprint {}", files.cert_file, files.fingerprint_sha256);
    impl_->tls.emplace(ssl::context::tls_server);
    auto& ctx = *impl_->tls;
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.use_certificate_chain_file(files.cert_file);
    ctx.use_private_key_file(files.key_file, ssl::context::pem);
  } else {
    spdlog::warn("plain HTTP on {} (loopback only); enable TLS for anything else", cfg.listen);
  }
  std::string host = e.host == "localhost" ? "127.0.0.1" : e.host;
  tcp::endpoint ep(net::ip::make_address(host), e.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  beast::error_code ec;
  a.bind(ep, ec);
  if (ec) throw std::runtime_error("cannot listen on " + cfg.listen + ": " + ec.message());
  a.listen(net::socket_base::max_listen_connections);
  impl_->port = a.local_endpoint().port();
  impl_->host = host;
  impl_->accept();
  spdlog::info("listening on {}", url());
}

uint16_t Server::port() const { return impl_->port; }
std::string Server::url() const {
  std::string h = impl_->host.find(':') != std::string::npos ? "[" + impl_->host + "]" : impl_->host;
  return std::string(impl_->tls ? "https" : "http") + "://" + h + ":" + std::to_string(impl_->port);
}

void Server::shutdown(std::chrono::milliseconds grace) {
  auto& sh = impl_->sh;
  sh.closing = true;
  net::post(impl_->acceptor.get_executor(), [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  std::vector<std::weak_ptr<SessionBase>> sessions;
  {
    std::lock_guard lk(sh.sessions_mu);
    sessions = sh.sessions;
  }
  for (auto& w : sessions)
    if (auto s = w.lock()) s->close_if_idle();
  {
    std::unique_lock lk(sh.inflight.mu);
    if (!sh.inflight.cv.wait_for(lk, grace, [&] { return sh.inflight.n == 0; }))
      spdlog::warn("shutdown: {} request(s) still in flight after the grace period", sh.inflight.n);
  }
  sh.rt.hub.close_all(1001, "server shutting down");
  // Give the close handshakes a moment to reach the clients before the I/O stops.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (sh.rt.hub.size() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

}  // namespace vellum::host
