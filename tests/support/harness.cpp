#include "harness.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace fs = std::filesystem;

namespace vt {

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "vellum-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string build_dir() { return VELLUM_BUILD_DIR; }
std::string plugin_dir() { return build_dir() + "/plugins"; }
std::string vellumd_path() { return build_dir() + "/host/vellumd"; }

static int spawn(const std::vector<std::string>& argv, const std::string& out_file,
                 const std::string& err_file, const std::map<std::string, std::string>& env) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

static int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits up to limit; returns -1 on timeout.
static int wait_for(int pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (true) {
    int r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode(status);
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

RunResult run(const std::vector<std::string>& argv, std::chrono::seconds limit,
              const std::map<std::string, std::string>& env) {
  TempDir d;
  int pid = spawn(argv, d / "out", d / "err", env);
  int code = wait_for(pid, limit);
  if (code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw std::runtime_error("command timed out: " + argv[0]);
  }
  return RunResult{code, read_file(d / "out"), read_file(d / "err")};
}

Vellumd::Vellumd(Options o) {
  std::string cfg = o.config + "\n[plugins]\ndir = \"" + plugin_dir() + "\"\n";
  write_file(dir_ / "vellum.toml", cfg);
  data_dir_ = o.data_dir.empty() ? dir_ / "data" : o.data_dir;
  std::vector<std::string> argv = {vellumd_path(), "--config",     dir_ / "vellum.toml",
                                   "--data-dir",   data_dir_,      "--listen",
                                   "127.0.0.1:0",  "--ready-file", dir_ / "ready"};
  pid_ = spawn(argv, dir_ / "stdout.log", dir_ / "stderr.log", o.env);
  if (o.wait_ready) wait_ready();
}

void Vellumd::wait_listening() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (true) {
    std::string l = log();
    auto at = l.find("listening on ");
    if (at != std::string::npos && l.find('\n', at) != std::string::npos) {
      url_ = l.substr(at + 13, l.find('\n', at) - at - 13);
      break;
    }
    if (!running()) throw std::runtime_error("vellumd exited before listening:\n" + log());
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("vellumd not listening in time:\n" + log());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  tls_ = url_.rfind("https://", 0) == 0;
  port_ = static_cast<uint16_t>(std::stoi(url_.substr(url_.rfind(':') + 1)));
}

void Vellumd::wait_ready() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(dir_ / "ready")) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = decode(status);
      pid_ = -1;
      throw std::runtime_error("vellumd exited with " + std::to_string(status_) + " before ready:\n" + log());
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("vellumd not ready in time:\n" + log());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  url_ = read_file(dir_ / "ready");
  while (!url_.empty() && (url_.back() == '\n')) url_.pop_back();
  tls_ = url_.rfind("https://", 0) == 0;
  port_ = static_cast<uint16_t>(std::stoi(url_.substr(url_.rfind(':') + 1)));
}

Vellumd::~Vellumd() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string Vellumd::log() const { return read_file(dir_ / "stderr.log"); }

int Vellumd::stop(std::chrono::seconds limit) {
  if (pid_ <= 0) return status_;
  kill(pid_, SIGTERM);
  return wait_exit(limit);
}

int Vellumd::wait_exit(std::chrono::seconds limit) {
  if (pid_ <= 0) return status_;
  status_ = wait_for(pid_, limit);
  if (status_ == -1) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    status_ = -2;
  }
  pid_ = -1;
  return status_;
}

void Vellumd::kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int st = 0;
  waitpid(pid_, &st, 0);
  status_ = decode(st);
  pid_ = -1;
}

bool Vellumd::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = decode(st);
    pid_ = -1;
    return false;
  }
  return true;
}

Site::Site(std::string config, const std::string& admin_email, const std::string& admin_password,
           std::map<std::string, std::string> env, const std::string& admin_name)
    : config_(std::move(config)), env_(std::move(env)) {
  write_file(dir_ / "pw", admin_password + "\n");
  write_file(dir_ / "v.toml", config_ + "\n[plugins]\ndir = \"" + plugin_dir() + "\"\n");
  std::vector<std::string> argv = {vellumd_path(),  "admin",           "create",     "--email",
                                   admin_email,     "--password-file", dir_ / "pw",  "--config",
                                   dir_ / "v.toml", "--data-dir",      dir_ / "data"};
  if (!admin_name.empty()) argv.insert(argv.end(), {"--name", admin_name});
  auto r = run(argv, std::chrono::seconds(60), env_);
  if (r.exit_code != 0) throw std::runtime_error("vellumd admin create failed: " + r.err);
}

std::unique_ptr<Vellumd> Site::start(bool wait_ready, const std::map<std::string, std::string>* env) const {
  Vellumd::Options o(config_, wait_ready, env ? *env : env_);
  o.data_dir = dir_ / "data";
  return std::make_unique<Vellumd>(o);
}

std::string Site::db_bytes() const {
  return read_file(dir_ / "data/vellum.db") + read_file(dir_ / "data/vellum.db-wal");
}

Response login_response(HttpClient& c, const std::string& email, const std::string& password,
                        const std::string& code) {
  auto quote = [](const std::string& s) {  // JSON string (test inputs are printable ASCII)
    std::string o = "\"";
    for (char ch : s) o += (ch == '"' || ch == '\\') ? std::string("\\") + ch : std::string(1, ch);
    return o + "\"";
  };
  std::string body = "{\"email\":" + quote(email) + ",\"password\":" + quote(password);
  if (!code.empty()) body += ",\"code\":" + quote(code);
  body += "}";
  auto r = c.request("POST", "/v1/auth/login", body, {{"Content-Type", "application/json"}});
  if (r.status != 200) throw std::runtime_error("login failed (" + std::to_string(r.status) + "): " + r.body);
  return r;
}

std::string login(HttpClient& c, const std::string& email, const std::string& password) {
  std::string body = login_response(c, email, password).body;
  auto at = body.find("\"token\":\"");
  if (at == std::string::npos) throw std::runtime_error("no token in: " + body);
  at += 9;
  return body.substr(at, body.find('"', at) - at);
}

std::map<std::string, std::string> bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

std::string Response::header(const std::string& name) const {
  std::string lower;
  for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  auto it = headers.find(lower);
  return it == headers.end() ? "" : it->second;
}

}  // namespace vt
