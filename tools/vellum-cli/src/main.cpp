// `vellum`: the reference end-to-end-encryption client. Keys are generated
// and used locally; the server gets public keys, envelopes and wrapped keys.
//
// Server and credentials come from the environment: VELLUM_URL
// (https://host:port), VELLUM_TOKEN (from `vellum login`), VELLUM_CA_FILE
// (optional PEM bundle for a private CA), VELLUM_PASSWORD (login only; else
// read from stdin). Secrets are never taken from the command line, where
// other users could read them in the process list.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "aead.hpp"
#include "client.hpp"

namespace {

using vellum::cli::Client;

const char* kUsage =
    "usage: vellum <command> [args]\n"
    "  login EMAIL                         print a session token (password: VELLUM_PASSWORD or stdin)\n"
    "  whoami                              the caller's user id\n"
    "  keygen FILE [x25519|p256|rsa3072|rsa4096]   new private key (mode 0600) in FILE; prints the public "
    "key\n"
    "  publish-key FILE                    publish FILE's public key for encryption; prints the key id\n"
    "  encrypt IN --to USER[,USER...] [--aad TEXT]  encrypt IN for the users' published keys; prints the id\n"
    "  encrypt IN --team TEAM --key FILE [--aad TEXT] encrypt IN with the team's current key\n"
    "  decrypt ID --key FILE [--aad TEXT] [--out OUT] decrypt an envelope (stdout if no --out)\n"
    "  team create TEAM [USER...]          e2ee team key, wrapped for you and the users\n"
    "  team add TEAM USER --key FILE       wrap the current team key for USER\n"
    "  team remove TEAM USER               remove USER and upload a new team key for the others\n"
    "  team show TEAM                      the team key chain (JSON)\n"
    "environment: VELLUM_URL, VELLUM_TOKEN, VELLUM_CA_FILE\n";

std::string env(const char* name, bool required = true) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (required) throw std::runtime_error(std::string(name) + " is not set");
    return "";
  }
  return v;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Args {
  std::vector<std::string> pos;
  std::string to, team, key, aad, out;
};

Args parse(int argc, char** argv, int from) {
  Args a;
  for (int i = from; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(s + " needs a value");
      return argv[++i];
    };
    if (s == "--to")
      a.to = next();
    else if (s == "--team")
      a.team = next();
    else if (s == "--key")
      a.key = next();
    else if (s == "--aad")
      a.aad = next();
    else if (s == "--out")
      a.out = next();
    else if (s.rfind("--", 0) == 0)
      throw std::runtime_error("unknown option " + s);
    else
      a.pos.push_back(s);
  }
  return a;
}

Client client() { return Client(env("VELLUM_URL"), env("VELLUM_TOKEN"), env("VELLUM_CA_FILE", false)); }

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, ',');)
    if (!p.empty()) out.push_back(p);
  return out;
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string cmd = argv[1];
  const Args a = parse(argc, argv, cmd == "team" ? 3 : 2);
  auto need = [&](size_t n) {
    if (a.pos.size() < n) throw std::invalid_argument("missing arguments\n" + std::string(kUsage));
  };
  if (cmd == "login") {
    need(1);
    std::string pw = env("VELLUM_PASSWORD", false);
    if (pw.empty()) std::getline(std::cin, pw);
    std::cout << Client::login(env("VELLUM_URL"), env("VELLUM_CA_FILE", false), a.pos[0], pw) << "\n";
    vellum::crypto::cleanse(pw.data(), pw.size());
  } else if (cmd == "whoami") {
    std::cout << client().whoami() << "\n";
  } else if (cmd == "keygen") {
    need(1);
    auto k = vellum::cli::generate_key(a.pos.size() > 1 ? a.pos[1] : "x25519");
    vellum::cli::save_private_key(k.get(), a.pos[0]);
    std::cout << vellum::cli::public_pem(k.get());
  } else if (cmd == "publish-key") {
    need(1);
    auto k = vellum::cli::load_private_key_file(a.pos[0]);
    std::cout << client().publish_key(k.get()) << "\n";
  } else if (cmd == "encrypt") {
    need(1);
    const std::string pt = read_file(a.pos[0]);
    if (!a.team.empty()) {
      if (a.key.empty())
        throw std::invalid_argument("--team needs --key (your private key opens the team key)");
      auto k = vellum::cli::load_private_key_file(a.key);
      std::cout << client().encrypt_for_team(pt, a.aad, a.team, k.get()) << "\n";
    } else {
      if (a.to.empty()) throw std::invalid_argument("encrypt needs --to USERS or --team TEAM");
      std::cout << client().encrypt_for_users(pt, a.aad, split(a.to)) << "\n";
    }
  } else if (cmd == "decrypt") {
    need(1);
    if (a.key.empty()) throw std::invalid_argument("decrypt needs --key FILE");
    auto k = vellum::cli::load_private_key_file(a.key);
    std::string pt = client().decrypt(a.pos[0], a.aad, k.get());
    if (a.out.empty()) {
      std::cout << pt;
    } else {
      std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
      if (!(f << pt)) throw std::runtime_error("cannot write " + a.out);
    }
    vellum::crypto::cleanse(pt.data(), pt.size());
  } else if (cmd == "team") {
    if (argc < 3) throw std::invalid_argument(kUsage);
    const std::string sub = argv[2];
    need(1);
    auto c = client();
    if (sub == "create") {
      std::cout << c.team_create(a.pos[0], {a.pos.begin() + 1, a.pos.end()}).dump(2) << "\n";
    } else if (sub == "add") {
      need(2);
      if (a.key.empty()) throw std::invalid_argument("team add needs --key FILE");
      auto k = vellum::cli::load_private_key_file(a.key);
      std::cout << c.team_add(a.pos[0], a.pos[1], k.get()).dump(2) << "\n";
    } else if (sub == "remove") {
      need(2);
      std::cout << c.team_remove(a.pos[0], a.pos[1]).dump(2) << "\n";
    } else if (sub == "show") {
      std::cout << c.chain(a.pos[0]).dump(2) << "\n";
    } else {
      throw std::invalid_argument("unknown team command '" + sub + "'\n" + kUsage);
    }
  } else {
    std::cerr << "unknown command '" << cmd << "'\n" << kUsage;
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "vellum: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "vellum: " << e.what() << "\n";
    return 1;
  }
}
