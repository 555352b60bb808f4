// vellumd: serve, check-config, plugins, admin, audit, explain.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "api_client.hpp"
#include "audit.hpp"
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
  vellumd admin create --email EMAIL [--name NAME] [--password-file FILE] [--config FILE] [--data-dir DIR]
      Create an administrator. The password comes from --password-file, the
      VELLUM_ADMIN_PASSWORD environment variable, or the terminal — never argv.
  vellumd audit verify [--public-key FILE] | audit export [--since T] --format jsonl|syslog | audit public-key
      Check the audit log's hash chain and signed checkpoints; stream it; print the checkpoint key.
  vellumd explain --action A --resource PATH [--user ID] [--owner ID] [--url URL] [--ca FILE]
      Ask a running server's policy decision point why a user may (or may not)
      do A on PATH (the sharing plugin's explain route). The token comes from
      VELLUM_TOKEN, never argv. --url defaults to https://127.0.0.1:8443; --ca
      names the trust anchors (e.g. <data>/tls/dev-cert.pem). Exit 0 permit,
      3 deny, 1 error.
  vellumd print-default-config
      Print the embedded default configuration.
  vellumd --version | --help
)";

struct Args {
  std::string command = "serve";
  std::string config, listen, data_dir, ready_file;
  std::vector<std::string> rest;  // subcommand words and options (admin, audit)
};

Args parse_args(int argc, char** argv) {
  Args a;
  int i = 1;
  if (i < argc && argv[i][0] != '-') a.command = argv[i++];
  bool passthrough = a.command == "admin" || a.command == "audit" || a.command == "explain";
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
    else if (passthrough)
      a.rest.push_back(k);  // the subcommand parses its own words
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

// %j: the message as a JSON string body (quotes, backslashes, control characters escaped).
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static const char* hex = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(c);
      } else if (u < 0x20) {
        const char esc[] = {'\\', 'u', '0', '0', hex[u >> 4], hex[u & 15]};
        dest.append(esc, esc + 6);
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

void setup_logging(const LogConfig& lc) {
  auto logger = spdlog::stderr_color_mt("vellumd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(lc.level));
  if (lc.format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<JsonEscapedMessage>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%j"})");
    spdlog::set_formatter(std::move(f));
  } else
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

std::string read_password_from_tty() {
  if (!isatty(STDIN_FILENO))
    throw std::invalid_argument("no password: use --password-file or VELLUM_ADMIN_PASSWORD");
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  auto ask = [&](const char* prompt) {
    std::cerr << prompt << std::flush;
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::string pw;
    std::getline(std::cin, pw);
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
    return pw;
  };
  std::string a = ask("Password: "), b = ask("Again: ");
  if (a != b) throw std::invalid_argument("the passwords differ");
  return a;
}

int cmd_admin(const Args& a) {
  if (a.rest.empty() || a.rest[0] != "create")
    throw std::invalid_argument("usage: vellumd admin create --email EMAIL");
  std::string email, name, password_file;
  for (size_t i = 1; i < a.rest.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= a.rest.size()) throw std::invalid_argument(a.rest[i] + " needs a value");
      return a.rest[++i];
    };
    if (a.rest[i] == "--email")
      email = value();
    else if (a.rest[i] == "--name")
      name = value();
    else if (a.rest[i] == "--password-file")
      password_file = value();
    else
      throw std::invalid_argument("unknown option " + a.rest[i]);
  }
  if (email.empty()) throw std::invalid_argument("--email is required");
  std::string password;
  if (!password_file.empty()) {
    std::ifstream in(password_file);
    if (!in) throw std::runtime_error("cannot read " + password_file);
    std::getline(in, password);
  } else if (const char* env = std::getenv("VELLUM_ADMIN_PASSWORD")) {
    password = env;
  } else {
    password = read_password_from_tty();
  }
  Config c = load(a);
  spdlog::set_level(spdlog::level::warn);
  net::io_context io;
  Runtime rt(c, io);
  rt.load_plugins();
  rt.open_storage();
  rt.start_plugins();  // so that a storage barrier (crypto) seals what we write
  int code = 0;
  try {
    auto u = rt.identity->create_user(email, name, password, {"admin"});
    std::cout << "created administrator " << u.email << " (" << u.id << ")\n";
    AuditEvent ev;
    ev.actor = "cli";
    ev.action = "admin.user.create";
    ev.resource = "user/" + u.id;
    ev.outcome = "success";
    ev.details = {{"roles", {"admin"}}, {"via", "vellumd admin create"}};
    ev.time_ms = rt.clock();
    try {
      rt.audit->append(std::move(ev));
    } catch (const std::exception& e) {
      std::cerr << "vellumd: warning: the audit record was not written (" << e.what() << ")\n";
    }
  } catch (const AuthError& e) {
    std::cerr << "vellumd: " << e.what() << "\n";
    code = 1;
  }
  rt.stop_plugins();
  return code;
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
  net::signal_set hup(io, SIGHUP);  // no live reload: say so rather than die
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      spdlog::warn("SIGHUP ignored: vellumd does not reload its configuration; restart it to apply changes");
      wait_hup();
    });
  };
  wait_hup();
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) {
      spdlog::info("signal {}: shutting down", sig);
      request_stop(0);
    }
  });

  // Signed audit checkpoints on a timer (and one more at shutdown).
  net::steady_timer checkpoint_timer(io);
  std::function<void()> arm_checkpoint = [&] {
    checkpoint_timer.expires_after(std::chrono::seconds(5));
    checkpoint_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      try {
        rt.audit->maybe_checkpoint(system_clock_ms());  // audit time is real time, whatever [testing] says
      } catch (const std::exception& e) {
        spdlog::error("audit checkpoint failed: {}", e.what());
      }
      arm_checkpoint();
    });
  };
  arm_checkpoint();

  // WebSockets outlive no session: expiry is noticed within one sweep.
  net::steady_timer session_sweep_timer(io);
  std::function<void()> arm_session_sweep = [&] {
    session_sweep_timer.expires_after(std::chrono::seconds(10));
    session_sweep_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      rt.close_ended_websockets();
      arm_session_sweep();
    });
  };
  arm_session_sweep();

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
  checkpoint_timer.cancel();
  session_sweep_timer.cancel();
  hup.cancel();
  server.shutdown(std::chrono::milliseconds(c.server.shutdown_grace_ms));
  rt.stop_plugins();
  try {
    rt.audit->checkpoint();  // sign the records since the last checkpoint
  } catch (const std::exception& e) {
    spdlog::error("audit: final checkpoint failed: {}", e.what());
  }
  work.reset();
  io.stop();
  for (auto& t : pool) t.join();
  spdlog::info("stopped");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  umask(077);  // the database, keys and logs vellumd creates are the operator's alone
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
    if (a.command == "admin") return cmd_admin(a);
    if (a.command == "audit") {
      // Verification needs only the data dir: no plugin, no plugin secret.
      std::string data_dir = !a.data_dir.empty() ? a.data_dir
                             : !a.config.empty() ? load(a).data_dir
                                                 : "./data";
      return run_audit_command(a.rest, data_dir);
    }
    if (a.command == "explain") return run_explain_command(a.rest);
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
