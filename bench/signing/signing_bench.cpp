// Sign and verify operations per second of the signing plugin's core
// (vellum::signing::Signer/Verifier, the calls behind every signature the
// plugin makes or checks, over a real ~330-byte canonical statement) next to
// `openssl speed` for the same algorithms, in one run. `openssl speed` has no
// secp256k1 and no RSA-PSS, so a third column measures OpenSSL's EVP API
// directly in-process (EVP_PKEY_sign on a SHA-256 digest with a context set
// up once, as `openssl speed` does; EVP_DigestSign for Ed25519) for every
// algorithm. Every figure is the median of --runs runs; runs of all
// candidates are interleaved so that load from other processes hits them
// alike, and every rate is per second of CPU time, as `openssl speed`
// reports it.
//
//   bench_signing [--runs N] [--seconds S] [--openssl PATH]
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "keys.hpp"
#include "statement.hpp"

using namespace vellum::signing;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// CPU seconds of this thread. `openssl speed` counts operations per second
// of *user CPU time* (unless -elapsed), so on a shared machine wall-clock
// figures would not be comparable; both sides here use CPU time.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double ops_per_second(double seconds, const std::function<void()>& op) {
  for (int i = 0; i < 3; ++i) op();
  uint64_t ops = 0;
  const double start = cpu_seconds();
  double now = start;
  do {
    op();
    ++ops;
    now = cpu_seconds();
  } while (now - start < seconds);
  return static_cast<double>(ops) / (now - start);
}

struct Speed {
  double sign = 0, verify = 0;
};

// `openssl speed -mr rsa2048 ecdsap256 ed25519`: "+F2:i:bits:sign/s:verify/s"
// (RSA), "+F4:i:bits:sign/s:verify/s" (ECDSA), "+F6:i:bits:name:sign/s:verify/s" (EdDSA).
std::map<std::string, Speed> openssl_speed(const std::string& openssl, int seconds) {
  std::map<std::string, Speed> out;
  const std::string cmd =
      openssl + " speed -seconds " + std::to_string(seconds) + " -mr rsa2048 ecdsap256 ed25519 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char line[512];
  while (std::fgets(line, sizeof line, p)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string item;
    while (std::getline(ss, item, ':')) f.push_back(item);
    if (f.size() >= 5 && f[0] == "+F2" && f[2] == "2048")
      out["rsa-pss-sha256"] = {std::atof(f[3].c_str()), std::atof(f[4].c_str())};
    if (f.size() >= 5 && f[0] == "+F4" && f[2] == "256")
      out["ecdsa-p256-sha256"] = {std::atof(f[3].c_str()), std::atof(f[4].c_str())};
    if (f.size() >= 6 && f[0] == "+F6" && f[3] == "Ed25519")
      out["ed25519"] = {std::atof(f[4].c_str()), std::atof(f[5].c_str())};
  }
  pclose(p);
  return out;
}

// OpenSSL's EVP API driven directly, the way `openssl speed` drives it.
struct RawEvp {
  Algorithm alg;
  EVP_PKEY* key;
  EVP_PKEY_CTX* sctx = nullptr;
  EVP_PKEY_CTX* vctx = nullptr;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  unsigned char digest[32];
  unsigned char sig[1024];
  size_t siglen = sizeof sig;
  RawEvp(Algorithm a, EVP_PKEY* k, const std::string& msg) : alg(a), key(k) {
    unsigned int dl = 0;
    EVP_Digest(msg.data(), msg.size(), digest, &dl, EVP_sha256(), nullptr);
    if (a != Algorithm::Ed25519) {
      sctx = EVP_PKEY_CTX_new(key, nullptr);
      vctx = EVP_PKEY_CTX_new(key, nullptr);
      EVP_PKEY_sign_init(sctx);
      EVP_PKEY_verify_init(vctx);
      for (EVP_PKEY_CTX* c : {sctx, vctx}) {
        EVP_PKEY_CTX_set_signature_md(c, EVP_sha256());
        if (a == Algorithm::RsaPss) {
          EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING);
          EVP_PKEY_CTX_set_rsa_pss_saltlen(c, 32);
        }
      }
    }
    sign(msg);
  }
  ~RawEvp() {
    EVP_PKEY_CTX_free(sctx);
    EVP_PKEY_CTX_free(vctx);
    EVP_MD_CTX_free(md);
  }
  void sign(const std::string& msg) {
    siglen = sizeof sig;
    if (alg == Algorithm::Ed25519) {
      EVP_DigestSignInit(md, nullptr, nullptr, nullptr, key);
      EVP_DigestSign(md, sig, &siglen, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
    } else {
      EVP_PKEY_sign(sctx, sig, &siglen, digest, sizeof digest);
    }
  }
  bool verify(const std::string& msg) {
    if (alg == Algorithm::Ed25519) {
      EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, key);
      return EVP_DigestVerify(md, sig, siglen, reinterpret_cast<const unsigned char*>(msg.data()),
                              msg.size()) == 1;
    }
    return EVP_PKEY_verify(vctx, sig, siglen, digest, sizeof digest) == 1;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  double seconds = 1.0;
  std::string openssl = "openssl";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runs")) runs = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::max(0.1, std::atof(argv[i + 1]));
    if (!std::strcmp(argv[i], "--openssl")) openssl = argv[i + 1];
  }
  const Algorithm algs[] = {Algorithm::EcdsaP256, Algorithm::EcdsaSecp256k1, Algorithm::Ed25519,
                            Algorithm::RsaPss};
  struct Row {
    std::vector<double> core_sign, core_verify, raw_sign, raw_verify, speed_sign, speed_verify;
  };
  std::map<std::string, Row> rows;
  for (int run = 0; run < runs; ++run) {
    for (Algorithm a : algs) {
      Pkey key = generate_key(a, 2048);
      Statement s;
      s.algorithm = algorithm_name(a);
      s.content_sha256 = std::string(64, 'a');
      s.document = "0123456789abcdef0123456789abcdef";
      s.intent = "approve";
      s.key_id = key_id(key.get());
      s.request = "fedcba9876543210fedcba9876543210";
      s.signed_at = "2026-11-22T03:04:05.678Z";
      s.signer = "user:0123456789abcdef0123456789abcdef";
      s.version = 7;
      const std::string msg = canonical(s);
      EVP_PKEY_up_ref(key.get());
      Signer signer(a, Pkey(key.get()));
      EVP_PKEY_up_ref(key.get());
      Verifier verifier(a, Pkey(key.get()));
      const std::string sig = signer.sign(msg);
      if (!verifier.verify(msg, sig)) {
        std::fprintf(stderr, "self-check failed for %s\n", algorithm_name(a));
        return 1;
      }
      RawEvp raw(a, key.get(), msg);
      Row& r = rows[algorithm_name(a)];
      r.core_sign.push_back(ops_per_second(seconds, [&] { (void)signer.sign(msg); }));
      r.raw_sign.push_back(ops_per_second(seconds, [&] { raw.sign(msg); }));
      r.core_verify.push_back(ops_per_second(seconds, [&] { (void)verifier.verify(msg, sig); }));
      r.raw_verify.push_back(ops_per_second(seconds, [&] { (void)raw.verify(msg); }));
    }
    for (const auto& [name, sp] : openssl_speed(openssl, std::max(1, static_cast<int>(seconds + 0.5)))) {
      rows[name].speed_sign.push_back(sp.sign);
      rows[name].speed_verify.push_back(sp.verify);
    }
  }
  std::printf(
      "signing core vs OpenSSL, medians of %d runs of %.1f CPU s (ops per CPU second; ratio = core / peer)\n",
      runs, seconds);
  std::printf("%-24s %-6s %12s %12s %7s %14s %7s\n", "algorithm", "op", "core", "EVP direct", "ratio",
              "openssl speed", "ratio");
  for (Algorithm a : algs) {
    const Row& r = rows[algorithm_name(a)];
    for (int op = 0; op < 2; ++op) {
      const double core = median(op ? r.core_verify : r.core_sign);
      const double raw = median(op ? r.raw_verify : r.raw_sign);
      const double sp = median(op ? r.speed_verify : r.speed_sign);
      char spcol[32] = "n/a", spratio[16] = "";
      if (sp > 0) {
        std::snprintf(spcol, sizeof spcol, "%.0f", sp);
        std::snprintf(spratio, sizeof spratio, "%.2f", core / sp);
      }
      std::printf("%-24s %-6s %12.0f %12.0f %7.2f %14s %7s\n", algorithm_name(a), op ? "verify" : "sign",
                  core, raw, core / raw, spcol, spratio);
    }
  }
  std::printf("(rsa-pss-sha256: RSA-2048; `openssl speed rsa2048` measures PKCS#1 v1.5 on a raw digest)\n");
  return 0;
}
