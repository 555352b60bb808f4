// The HTTP/1.1 + WebSocket server (Boost.Beast, TLS via OpenSSL). The only
// part of the host that includes Beast; everything else sees HttpRequest,
// HttpResponse and WsConnection.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace vellum::host {
class Runtime;

class Server {
 public:
  Server(Runtime& rt, boost::asio::io_context& io);
  ~Server();
  // Bind and start accepting. Throws std::runtime_error.
  void listen();
  uint16_t port() const;
  std::string url() const;
  // Stop accepting, close idle keep-alive connections, wait for in-flight
  // requests (up to grace), then close WebSockets with 1001.
  void shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vellum::host
