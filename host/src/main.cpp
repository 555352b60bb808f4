// vellumd: serve, check-config, plugins.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <future>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime.hpp"
#include "server.hpp"

using namespace vellum::host;
namespace net = boost::asio;

namespace {

const char* kUsage = R"(usage:
  vellumd [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--ready-file FILE]
      Serve. Without --config, the embedded default (config/vellum.toml) is used.
  vellumd check-config [--config FILE]
      Validate the file and every enabled plugin's table; exit 1 on any error.
  vellumd plugins [--config FILE]
      List the plugins that would load: version, ABI, requires, provides.
  vellumd print-default-config
      Print the embedded default configuration.
  vellumd --version | --help
)";

struct Args {
  std::string command = "serve";
  std::string config, listen, data_dir, ready_file;
};

Args parse_args(int argc, char** argv) {
  Args a;
  int i = 1;
  if (i < argc && argv[i][0] != '-') a.command = argv[i++];
  for (; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    if (k == "--config" || k == "-c")
      a.config = value();
    else if (k == "--listen")
      a.listen = value();
    else if (k == "--data-dir")
      a.data_dir = value();
    else if (k == "--ready-file")
      a.ready_file = value();
    else if (k == "--help" || k == "-h")
      a.command = "help";
    else if (k == "--version")
      a.command = "version";
    else
      throw std::invalid_argument("unknown option " + k);
  }
  return a;
}

Config load(const Args& a) {
  Config c = a.config.empty() ? embedded_default_config() : load_config_file(a.config);
  if (!a.listen.empty()) {
    c.server.listen = a.listen;
    Endpoint e = parse_endpoint(c.server.listen);
    if (!c.server.tls && !is_loopback_host(e.host))
      throw ConfigError("--listen: plain HTTP is allowed only on a loopback address");
  }
  if (!a.data_dir.empty()) c.data_dir = a.data_dir;
  return c;
}

void setup_logging(const LogConfig& lc) {
  auto logger = spdlog::stderr_color_mt("vellumd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(lc.level));
  if (lc.format == "json")
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%v"})");
  else
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ %v");
  spdlog::flush_on(spdlog::level::info);
}

int cmd_check_config(const Args& a) {
  Config c = load(a);
  net::io_context io;
  Runtime rt(c, io);
  rt.load_plugins();
  auto errors = rt.validate_plugin_configs();
  for (auto& e : errors) std::cerr << c.source << ": " << e << "\n";
  if (!errors.empty()) return 1;
  std::cout << c.source << ": OK (" << rt.plugins.size() << " plugin(s) enabled)\n";
  return 0;
}

int cmd_plugins(const Args& a) {
  Config c = load(a);
  net::io_context io;
  Runtime rt(c, io);
  rt.load_plugins();
  std::cout << nlohmann::json::parse(rt.plugins_json()).dump(2) << "\n";
  return 0;
}

int cmd_serve(const Args& a) {
  Config c = load(a);
  setup_logging(c.log);
  spdlog::info("vellumd 0.1.0 (ABI {}.{}) config {}", VELLUM_ABI_MAJOR, VELLUM_ABI_MINOR, c.source);
  unsigned threads = c.server.threads ? c.server.threads : std::max(2u, std::thread::hardware_concurrency());
  net::io_context io(static_cast<int>(threads));
  auto work = net::make_work_guard(io);
  Runtime rt(c, io);
  rt.load_plugins();
  rt.open_storage();
  Server server(rt, io);
  server.listen();

  std::promise<int> stop;
  auto stop_future = stop.get_future();
  std::atomic<bool> stop_set{false};
  auto request_stop = [&](int code) {
    if (!stop_set.exchange(true)) stop.set_value(code);
  };
  net::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) {
      spdlog::info("signal {}: shutting down", sig);
      request_stop(0);
    }
  });

  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i)
    pool.emplace_back([&io] {
      for (;;) {
        try {
          io.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("uncaught exception on an I/O thread: {}", e.what());
        }
      }
    });

  int code = 0;
  try {
    rt.start_plugins();
    if (!a.ready_file.empty()) {
      std::string tmp = a.ready_file + ".tmp";
      std::ofstream(tmp) << server.url() << "\n";
      std::filesystem::rename(tmp, a.ready_file);
    }
    spdlog::info("ready: {}", server.url());
  } catch (const std::exception& e) {
    spdlog::critical("startup failed: {}", e.what());
    request_stop(1);
  }
  code = stop_future.get();
  rt.stopping = true;
  signals.cancel();
  server.shutdown(std::chrono::milliseconds(c.server.shutdown_grace_ms));
  rt.stop_plugins();
  work.reset();
  io.stop();
  for (auto& t : pool) t.join();
  spdlog::info("stopped");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    a = parse_args(argc, argv);
    if (a.command == "help") {
      std::cout << kUsage;
      return 0;
    }
    if (a.command == "version") {
      std::cout << "vellumd 0.1.0 (plugin ABI " << VELLUM_ABI_MAJOR << "." << VELLUM_ABI_MINOR << ")\n";
      return 0;
    }
    if (a.command == "print-default-config") {
      std::cout << embedded_default_config_text();
      return 0;
    }
    if (a.command == "check-config") return cmd_check_config(a);
    if (a.command == "plugins") return cmd_plugins(a);
    if (a.command == "serve") return cmd_serve(a);
    std::cerr << "vellumd: unknown command '" << a.command << "'\n" << kUsage;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "vellumd: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "vellumd: " << e.what() << "\n";
    return 1;
  }
}
