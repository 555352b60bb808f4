// Integration-test support: real vellumd processes on free loopback ports
// and real HTTP/WebSocket clients (Boost.Beast over TLS, verifying the
// server's certificate).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vt {

// A fresh directory, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);
std::string build_dir();   // the CMake binary dir
std::string plugin_dir();  // where test and first-party plugins are built
std::string vellumd_path();

struct RunResult {
  int exit_code;
  std::string out, err;
};
// Runs a command to completion (argv[0] is a path), with a time limit.
RunResult run(const std::vector<std::string>& argv, std::chrono::seconds limit = std::chrono::seconds(60),
              const std::map<std::string, std::string>& env = {});

// A running vellumd. The config is written to <dir>/vellum.toml; --listen
// 127.0.0.1:0 picks a free port; readiness comes from --ready-file.
class Vellumd {
 public:
  struct Options {
    Options(std::string c, bool wait = true, std::map<std::string, std::string> e = {})
        : config(std::move(c)), wait_ready(wait), env(std::move(e)) {}
    std::string config;  // TOML text ([data] and [plugins].dir are added unless present)
    bool wait_ready = true;
    std::map<std::string, std::string> env;
    std::string data_dir;  // default: <temp dir>/data
  };
  explicit Vellumd(Options o);
  ~Vellumd();  // SIGKILL if still running
  const std::string& url() const { return url_; }
  std::string host() const { return "127.0.0.1"; }
  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  std::string data_dir() const { return data_dir_; }
  std::string ca_file() const { return data_dir_ + "/tls/dev-cert.pem"; }
  bool tls() const { return tls_; }
  std::string log() const;  // stderr so far
  // SIGTERM and wait; returns the exit code (or 128+signal).
  int stop(std::chrono::seconds limit = std::chrono::seconds(30));
  void kill9();
  // Waits for exit (e.g. after a failed start); returns the exit code.
  int wait_exit(std::chrono::seconds limit = std::chrono::seconds(30));
  bool running();
  // For wait_ready = false: wait until the log says the listener is open
  // (url/port then set), or until the ready file exists.
  void wait_listening();
  void wait_ready();

 private:
  TempDir dir_;
  int pid_ = -1;
  int status_ = -1;
  std::string url_;
  std::string data_dir_;
  uint16_t port_ = 0;
  bool tls_ = true;
};

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const;
};

// One keep-alive connection.
class HttpClient {
 public:
  explicit HttpClient(const Vellumd& server);
  HttpClient(const std::string& host, uint16_t port, bool tls, const std::string& ca_file);
  ~HttpClient();
  Response request(const std::string& method, const std::string& target, const std::string& body = "",
                   const std::map<std::string, std::string>& headers = {});
  Response get(const std::string& target) { return request("GET", target); }
  // Raw bytes over the same connection (for malformed or slow requests).
  void send_raw(const std::string& bytes);
  Response read_response();
  bool connection_closed();  // true if the server closed the connection
  size_t connects() const;   // how many TCP connections this client opened

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class WsClient {
 public:
  // protocol: an optional Sec-WebSocket-Protocol header value to offer.
  WsClient(const Vellumd& server, const std::string& target, const std::string& protocol = "");
  std::string accepted_protocol() const;
  ~WsClient();
  void send(const std::string& text, bool binary = false);
  // The next message, or nullopt if the connection closed (then close_code()).
  std::optional<std::string> read(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  int close_code() const;
  std::string close_reason() const;
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A data directory whose first administrator was made with `vellumd admin
// create`, and the config to serve it with. Throws if the bootstrap fails.
class Site {
 public:
  Site(std::string config, const std::string& admin_email, const std::string& admin_password,
       std::map<std::string, std::string> env = {}, const std::string& admin_name = "");
  // vellumd on this data dir; env (e.g. a different root key) replaces the site's if given.
  std::unique_ptr<Vellumd> start(bool wait_ready = true,
                                 const std::map<std::string, std::string>* env = nullptr) const;
  const TempDir& dir() const { return dir_; }
  std::string data_dir() const { return dir_ / "data"; }
  // vellum.db and its WAL, for "nothing readable on disk" checks.
  std::string db_bytes() const;

 private:
  TempDir dir_;
  std::string config_;
  std::map<std::string, std::string> env_;
};

// POST /v1/auth/login; throws unless it answers 200. login() returns the token.
Response login_response(HttpClient& c, const std::string& email, const std::string& password,
                        const std::string& code = "");
std::string login(HttpClient& c, const std::string& email, const std::string& password);
std::map<std::string, std::string> bearer(const std::string& token);

// Connects and upgrades; returns the HTTP status if the upgrade is refused (0 if accepted).
int ws_upgrade_status(const Vellumd& server, const std::string& target, std::string* body = nullptr);

}  // namespace vt
