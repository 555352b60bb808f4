// vellumd configuration: one TOML file, validated strictly (unknown keys are
// errors naming their path). Plugin tables keep their own keys as JSON for the
// plugin to validate.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "identity.hpp"

namespace vellum::host {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8443";
  bool tls = true;                  // plain HTTP only when tls = false, and only on loopback
  std::string cert_file, key_file;  // empty: a self-signed dev cert in the data dir
  unsigned threads = 0;             // 0: one per core, at least 2
  uint64_t max_header_bytes = 16 * 1024;
  uint64_t max_body_bytes = 8 * 1024 * 1024;
  uint64_t read_timeout_ms = 15000;  // to receive one whole request once it started
  uint64_t idle_timeout_ms = 60000;  // keep-alive idle between requests
  uint64_t handler_timeout_ms = 30000;
  uint64_t shutdown_grace_ms = 10000;
  uint64_t ws_max_message_bytes = 1024 * 1024;
  uint64_t ws_max_queued_bytes = 8 * 1024 * 1024;
  uint64_t ws_idle_timeout_ms = 120000;
};

struct StorageConfig {
  std::string backend = "sqlite";
  std::string path = "vellum.db";  // relative to the data dir
};

struct LogConfig {
  std::string level = "info";
  std::string format = "text";  // text | json
};

struct AuditConfig {
  bool fail_closed = false;
  bool hmac_emails = true;                    // store e-mail addresses in audit records as HMAC-SHA256
  bool hmac_ips = false;                      // likewise client IPs
  uint64_t checkpoint_every = 1000;           // records between signed checkpoints
  uint64_t checkpoint_interval_seconds = 60;  // and at most this long between them
};

// For integration tests only: lets an administrator move the host clock
// forward (POST /v1/admin/clock) to test expiries without sleeping.
struct TestingConfig {
  bool clock_control = false;
};

struct PluginConfig {
  std::string name;
  bool enabled = true;
  bool required = true;  // a required plugin that fails to start stops the host
  std::string path;      // explicit shared object; default <plugin dir>/vellum_<name>.so
  std::string sha256;    // optional pin of the file's SHA-256 (hex)
  nlohmann::json settings = nlohmann::json::object();  // plugin-specific keys, secrets resolved
};

struct Config {
  std::string source;  // file name or "<embedded default>"
  std::string data_dir = "./data";
  ServerConfig server;
  StorageConfig storage;
  LogConfig log;
  AuditConfig audit;
  IdentityConfig identity;
  TestingConfig testing;
  std::string plugin_dir;  // empty: next to the executable
  std::vector<PluginConfig> plugins;
};

// Parse and validate. Throws ConfigError with "<source>: <key path>: <problem>".
Config parse_config(std::string_view toml_text, const std::string& source);
Config load_config_file(const std::filesystem::path& path);
// The compiled-in copy of config/vellum.toml.
Config embedded_default_config();
std::string_view embedded_default_config_text();

// "host:port" → parts; throws ConfigError.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};
Endpoint parse_endpoint(const std::string& listen);
bool is_loopback_host(const std::string& host);

}  // namespace vellum::host
