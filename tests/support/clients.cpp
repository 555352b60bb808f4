// Beast-based HTTP and WebSocket clients for tests. TLS connections verify
// the server certificate against the CA file (the dev cert) and 127.0.0.1.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <optional>
#include <stdexcept>

#include "harness.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace vt {
namespace {

void make_ctx(ssl::context& ctx, const std::string& ca_file, const std::string& host) {
  ctx.set_verify_mode(ssl::verify_peer);
  ctx.load_verify_file(ca_file);
  (void)host;
}

template <class Op>
void run_io(net::io_context& io, Op&& start) {
  start();
  io.restart();
  io.run();
}

Response to_response(http::response<http::string_body>& res) {
  Response r;
  r.status = static_cast<int>(res.result_int());
  for (auto& f : res) {
    std::string k(f.name_string());
    for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[k] = std::string(f.value());
  }
  r.body = res.body();
  return r;
}
}  // namespace

struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  bool tls;
  net::io_context io;
  ssl::context ctx{ssl::context::tls_client};
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  size_t connects = 0;
  bool open = false;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*secure) : *plain; }

  void connect() {
    buffer.clear();
    tcp::resolver resolver(io);
    auto eps = resolver.resolve(host, std::to_string(port));
    if (tls) {
      secure.emplace(io, ctx);
      secure->set_verify_callback(ssl::host_name_verification(host));
    } else {
      plain.emplace(io);
    }
    lowest().expires_after(std::chrono::seconds(30));
    lowest().connect(eps);
    if (tls) secure->handshake(ssl::stream_base::client);
    ++connects;
    open = true;
  }

  template <class F>
  auto with_stream(F&& f) {
    if (tls) return f(*secure);
    return f(*plain);
  }
};

HttpClient::HttpClient(const Vellumd& s) : HttpClient(s.host(), s.port(), s.tls(), s.ca_file()) {}

HttpClient::HttpClient(const std::string& host, uint16_t port, bool tls, const std::string& ca_file)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = host;
  impl_->port = port;
  impl_->tls = tls;
  if (tls) make_ctx(impl_->ctx, ca_file, host);
}
HttpClient::~HttpClient() = default;

Response HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                             const std::map<std::string, std::string>& headers) {
  if (!impl_->open) impl_->connect();
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, impl_->host);
  req.set(http::field::user_agent, "vellum-test");
  for (auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  impl_->lowest().expires_after(std::chrono::seconds(30));
  impl_->with_stream([&](auto& s) {
    http::write(s, req);
    return 0;
  });
  return read_response();
}

void HttpClient::send_raw(const std::string& bytes) {
  if (!impl_->open) impl_->connect();
  impl_->with_stream([&](auto& s) {
    net::write(s, net::buffer(bytes));
    return 0;
  });
}

Response HttpClient::read_response() {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  beast::error_code ec;
  impl_->with_stream([&](auto& s) {
    http::read(s, impl_->buffer, parser, ec);
    return 0;
  });
  if (ec) {
    impl_->open = false;
    throw std::runtime_error("HTTP read failed: " + ec.message());
  }
  auto res = parser.release();
  if (!res.keep_alive()) impl_->open = false;
  return to_response(res);
}

bool HttpClient::connection_closed() {
  if (!impl_->open) return true;
  char c;
  beast::error_code ec;
  impl_->with_stream([&](auto& s) {
    s.read_some(net::buffer(&c, 1), ec);
    return 0;
  });
  impl_->open = false;
  return ec == net::error::eof || ec == ssl::error::stream_truncated || ec == net::error::connection_reset ||
         !!ec;
}

size_t HttpClient::connects() const { return impl_->connects; }

// ---------------------------------------------------------------- WebSocket
struct WsClient::Impl {
  net::io_context io;
  ssl::context ctx{ssl::context::tls_client};
  std::optional<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> secure;
  std::optional<websocket::stream<beast::tcp_stream>> plain;
  beast::flat_buffer buffer;
  int close_code = 0;
  std::string close_reason, accepted_protocol;
  bool closed = false;
  template <class F>
  auto with_ws(F&& f) {
    if (secure) return f(*secure);
    return f(*plain);
  }
};

WsClient::WsClient(const Vellumd& s, const std::string& target, const std::string& protocol)
    : impl_(std::make_unique<Impl>()) {
  tcp::resolver resolver(impl_->io);
  auto eps = resolver.resolve(s.host(), std::to_string(s.port()));
  if (s.tls()) {
    make_ctx(impl_->ctx, s.ca_file(), s.host());
    impl_->secure.emplace(impl_->io, impl_->ctx);
    auto& ws = *impl_->secure;
    ws.next_layer().set_verify_callback(ssl::host_name_verification(s.host()));
    beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(ws).connect(eps);
    ws.next_layer().handshake(ssl::stream_base::client);
  } else {
    impl_->plain.emplace(impl_->io);
    beast::get_lowest_layer(*impl_->plain).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(*impl_->plain).connect(eps);
  }
  impl_->with_ws([&](auto& ws) {
    beast::get_lowest_layer(ws).expires_never();
    if (!protocol.empty())
      ws.set_option(websocket::stream_base::decorator([protocol](websocket::request_type& req) {
        req.set(http::field::sec_websocket_protocol, protocol);
      }));
    websocket::response_type res;
    ws.handshake(res, s.host() + ":" + std::to_string(s.port()), target);
    impl_->accepted_protocol = std::string(res[http::field::sec_websocket_protocol]);
    return 0;
  });
}

WsClient::~WsClient() = default;

void WsClient::send(const std::string& text, bool binary) {
  impl_->with_ws([&](auto& ws) {
    ws.binary(binary);
    ws.write(net::buffer(text));
    return 0;
  });
}

std::optional<std::string> WsClient::read(std::chrono::milliseconds timeout) {
  if (impl_->closed) return std::nullopt;
  beast::error_code result;
  bool done = false;
  impl_->buffer.clear();
  impl_->with_ws([&](auto& ws) {
    beast::get_lowest_layer(ws).expires_after(timeout);
    ws.async_read(impl_->buffer, [&](beast::error_code ec, size_t) {
      result = ec;
      done = true;
    });
    impl_->io.restart();
    impl_->io.run();
    beast::get_lowest_layer(ws).expires_never();
    if (ws.reason().code) {
      // The peer's close frame arrived (our reply may still have failed).
      impl_->close_code = ws.reason().code;
      impl_->close_reason = std::string(ws.reason().reason.c_str());
    } else if (result) {
      impl_->close_reason = "connection failed: " + result.message();  // no close frame
    }
    return 0;
  });
  if (result) {
    impl_->closed = true;
    return std::nullopt;
  }
  return beast::buffers_to_string(impl_->buffer.data());
}

int WsClient::close_code() const { return impl_->close_code; }
std::string WsClient::accepted_protocol() const { return impl_->accepted_protocol; }
std::string WsClient::close_reason() const { return impl_->close_reason; }

void WsClient::close() {
  if (impl_->closed) return;
  beast::error_code ec;
  impl_->with_ws([&](auto& ws) {
    ws.close(websocket::close_code::normal, ec);
    return 0;
  });
  impl_->closed = true;
}

int ws_upgrade_status(const Vellumd& s, const std::string& target, std::string* body) {
  // A handshake with a response object captures the refusal's status and body.
  net::io_context io;
  ssl::context ctx{ssl::context::tls_client};
  make_ctx(ctx, s.ca_file(), s.host());
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, ctx);
  tcp::resolver resolver(io);
  beast::get_lowest_layer(ws).connect(resolver.resolve(s.host(), std::to_string(s.port())));
  ws.next_layer().handshake(ssl::stream_base::client);
  websocket::response_type res;
  beast::error_code ec;
  ws.handshake(res, s.host(), target, ec);
  if (body) *body = res.body();
  if (!ec) {
    ws.close(websocket::close_code::normal, ec);
    return 0;
  }
  return static_cast<int>(res.result_int());
}

}  // namespace vt
