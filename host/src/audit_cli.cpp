// `vellumd audit ...`: verify, export and print the public key of the audit
// log without a running server and without loading any plugin.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "audit.hpp"

namespace vellum::host {
namespace {
namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: vellumd audit verify [--public-key FILE]\n"
    "       vellumd audit export [--since ISO8601|UNIX_MS] [--format jsonl|syslog]\n"
    "       vellumd audit public-key\n"
    "  (each takes --data-dir DIR or --config FILE to find <data>/audit.db)\n";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

int num(std::string_view s, size_t pos, size_t len) {
  if (pos + len > s.size() || !all_digits(s.substr(pos, len))) throw std::invalid_argument("bad number");
  return std::stoi(std::string(s.substr(pos, len)));
}

}  // namespace

// Unix milliseconds, or ISO 8601: YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]
// (no offset means UTC). Throws std::invalid_argument.
int64_t parse_audit_since(std::string_view s) {
  if (all_digits(s)) return std::stoll(std::string(s));
  auto bad = [&] {
    return std::invalid_argument("--since: '" + std::string(s) + "' is neither unix ms nor ISO 8601");
  };
  try {
    using namespace std::chrono;
    if (s.size() < 10 || s[4] != '-' || s[7] != '-') throw bad();
    year_month_day ymd{year{num(s, 0, 4)}, month{static_cast<unsigned>(num(s, 5, 2))},
                       day{static_cast<unsigned>(num(s, 8, 2))}};
    if (!ymd.ok()) throw bad();
    int64_t ms = duration_cast<milliseconds>(sys_days{ymd}.time_since_epoch()).count();
    size_t i = 10;
    if (i < s.size() && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
      int hh = num(s, i + 1, 2);
      if (i + 3 >= s.size() || s[i + 3] != ':') throw bad();
      int mm = num(s, i + 4, 2), ss = 0, frac = 0;
      i += 6;
      if (i < s.size() && s[i] == ':') {
        ss = num(s, i + 1, 2);
        i += 3;
        if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
          size_t start = ++i;
          while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
          if (i == start) throw bad();
          std::string digits(s.substr(start, std::min<size_t>(i - start, 3)));
          while (digits.size() < 3) digits += '0';
          frac = std::stoi(digits);
        }
      }
      if (hh > 23 || mm > 59 || ss > 60) throw bad();
      ms += ((hh * 60LL + mm) * 60 + ss) * 1000 + frac;
    }
    if (i < s.size()) {
      if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) return ms;
      if ((s[i] != '+' && s[i] != '-') || i + 6 != s.size() || s[i + 3] != ':') throw bad();
      int64_t off = (num(s, i + 1, 2) * 60LL + num(s, i + 4, 2)) * 60000;
      ms += s[i] == '+' ? -off : off;
    }
    return ms;
  } catch (const std::invalid_argument&) {
    throw bad();
  } catch (const std::out_of_range&) {
    throw bad();
  }
}

int run_audit_command(const std::vector<std::string>& argv, const std::string& data_dir) {
  std::vector<std::string> args = argv;
  if (!args.empty() && args[0] == "audit") args.erase(args.begin());
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  std::string public_key_file, since, format = "jsonl";
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& k = args[i];
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    const std::string* v = nullptr;
    if (cmd == "verify" && k == "--public-key" && (v = value())) {
      public_key_file = *v;
    } else if (cmd == "export" && k == "--since" && (v = value())) {
      since = *v;
    } else if (cmd == "export" && k == "--format" && (v = value())) {
      format = *v;
    } else {
      std::cerr << "vellumd audit " << cmd << ": unexpected argument '" << k << "'\n" << kUsage;
      return 2;
    }
  }
  const fs::path dir(data_dir);
  const std::string db = (dir / "audit.db").string();
  try {
    if (cmd == "verify") {
      std::string pem = public_key_file.empty() ? "" : slurp(public_key_file);
      VerifyReport r = verify_audit(db, pem);
      if (!r.ok) {
        std::cout << "audit log " << db << ": VERIFICATION FAILED\n" << r.first_error << "\n";
        if (r.first_bad_seq) std::cout << "first bad record: seq " << r.first_bad_seq << "\n";
        return 1;
      }
      std::cout << "audit log " << db << ": OK, " << r.records << " record(s), " << r.checkpoints
                << " signed checkpoint(s)\n";
      if (r.external_key)
        std::cout << "signatures verified with the public key in " << public_key_file << "\n";
      for (auto& w : r.warnings) std::cout << "note: " << w << "\n";
      return 0;
    }
    if (cmd == "export") {
      if (format != "jsonl" && format != "syslog") {
        std::cerr << "vellumd audit export: --format must be jsonl or syslog\n";
        return 2;
      }
      int64_t since_ms = 0;
      if (!since.empty()) {
        try {
          since_ms = parse_audit_since(since);
        } catch (const std::invalid_argument& e) {
          std::cerr << "vellumd audit export: " << e.what() << "\n";
          return 2;
        }
      }
      export_audit(db, since_ms, format, std::cout);
      return std::cout ? 0 : 1;
    }
    if (cmd == "public-key") {
      // From the private key file, not from audit.db: the copy in the
      // database is exactly what an attacker could have replaced.
      const std::string key_path = (dir / "audit-signing.pem").string();
      if (!fs::exists(key_path)) {
        std::cerr << "vellumd audit public-key: no signing key at " << key_path
                  << " (the server creates it when it first opens the audit log)\n";
        return 1;
      }
      std::string pem = slurp(key_path);
      BIO* in = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
      EVP_PKEY* k = in ? PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr) : nullptr;
      BIO_free(in);
      std::string out;
      if (k && EVP_PKEY_is_a(k, "ED25519")) {
        BIO* mem = BIO_new(BIO_s_mem());
        if (mem && PEM_write_bio_PUBKEY(mem, k) == 1) {
          char* data = nullptr;
          long n = BIO_get_mem_data(mem, &data);
          out.assign(data, static_cast<size_t>(n));
        }
        BIO_free(mem);
      }
      EVP_PKEY_free(k);
      if (out.empty()) {
        std::cerr << "vellumd audit public-key: " << key_path << " is not an Ed25519 private key\n";
        return 1;
      }
      std::cout << out;
      return 0;
    }
    std::cerr << "vellumd audit: unknown command '" << cmd << "'\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "vellumd audit " << cmd << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace vellum::host
