// AES-256-GCM throughput of the crypto plugin next to `openssl speed`, in one
// run: the storage barrier's seal/unseal (Keyring::seal_to/unseal_to, the
// calls the barrier callbacks make, into a freshly allocated buffer as the
// host's alloc gives them) and the transit service's encrypt/decrypt
// (Transit::encrypt/decrypt in binary form, the code behind the "crypto"
// service vtable) at 1 KiB, 64 KiB and 1 MiB; then envelope encryption of a
// 64 KiB document for 1, 10 and 100 recipients (X25519, P-256 and RSA-2048)
// next to `openssl speed ecdhx25519 ecdhp256 rsa2048`. Every figure is the median of
// --runs runs (default 5); the runs of all candidates are interleaved so
// that load from other processes hits them alike, and `openssl speed` runs
// with -elapsed (wall clock, like our figures: its default is CPU time,
// which would flatter it on a loaded machine).
//
//   bench_crypto [--runs N] [--seconds S] [--openssl PATH]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "envelope.hpp"
#include "keyring.hpp"
#include "transit.hpp"

using namespace vellum::crypto;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Bytes per second of op(), run for about `seconds`.
double throughput(size_t bytes, double seconds, const std::function<void()>& op) {
  for (int i = 0; i < 3; ++i) op();  // warm up
  uint64_t ops = 0;
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  auto now = start;
  do {
    for (int i = 0; i < 8; ++i) op();
    ops += 8;
    now = Clock::now();
  } while (now < until);
  return static_cast<double>(ops * bytes) / std::chrono::duration<double>(now - start).count();
}

// `openssl speed -evp aes-256-gcm -bytes n -mr`: the "+F:" line ends in bytes per second.
double openssl_speed(const std::string& openssl, size_t bytes, int seconds) {
  const std::string cmd = openssl + " speed -elapsed -evp aes-256-gcm -bytes " + std::to_string(bytes) +
                          " -seconds " + std::to_string(seconds) + " -mr 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 0;
  char line[512];
  double bps = 0;
  while (fgets(line, sizeof line, p)) {
    if (std::strncmp(line, "+F:", 3) != 0) continue;
    const char* last = std::strrchr(line, ':');
    if (last) bps = std::strtod(last + 1, nullptr);
  }
  pclose(p);
  return bps;
}

// `openssl speed -mr rsa2048 ecdhx25519 ecdhp256`: RSA public ops/s ("+F2:i:bits:sign/s:verify/s")
// and ECDH ops/s ("+F5:i:bits:ops/s:s/op").
struct PkSpeed {
  double rsa2048_public = 0, x25519 = 0, p256 = 0;
};
PkSpeed openssl_pk_speed(const std::string& openssl) {
  PkSpeed r;
  FILE* p = popen(
      (openssl + " speed -elapsed -seconds 1 -mr rsa2048 ecdhx25519 ecdhp256 2>/dev/null").c_str(), "r");
  if (!p) return r;
  char line[512];
  while (fgets(line, sizeof line, p)) {
    std::vector<std::string> f;
    std::string cur;
    for (const char* c = line; *c && *c != '\n'; ++c) {
      if (*c == ':') {
        f.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(*c);
      }
    }
    f.push_back(cur);
    if (f.size() >= 5 && f[0] == "+F2" && f[2] == "2048") r.rsa2048_public = std::atof(f[4].c_str());
    if (f.size() >= 4 && f[0] == "+F5" && f[2] == "253") r.x25519 = std::atof(f[3].c_str());
    if (f.size() >= 4 && f[0] == "+F5" && f[2] == "256") r.p256 = std::atof(f[3].c_str());
  }
  pclose(p);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  double seconds = 0.5;
  std::string openssl = "openssl";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--runs")
      runs = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--seconds")
      seconds = std::max(0.05, std::atof(argv[i + 1]));
    else if (a == "--openssl")
      openssl = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--runs N] [--seconds S] [--openssl PATH]\n", argv[0]);
      return 2;
    }
  }

  Keyring keyring;
  KeyringRecord rec;
  rec.current = 1;
  rec.versions.push_back(KeyVersionRecord{1, 0, 0, random_key()});
  keyring.apply(rec);
  MemoryTransitStore store;
  Transit transit(store, [] { return int64_t{0}; });
  transit.create_key("bench", KeyType::Aes256Gcm, "");
  const std::string ctx = std::string("docs") + '\0' + "document-0001";
  auto alloc = [](size_t n) { return static_cast<uint8_t*>(std::malloc(n ? n : 1)); };
  auto release = [](uint8_t* p) { std::free(p); };

  std::printf("AES-256-GCM throughput, MB/s (10^6 bytes/s), median of %d runs; ratio = / openssl speed\n",
              runs);
  std::printf("%-8s %10s | %10s %6s | %10s %6s | %10s %6s | %10s %6s\n", "size", "openssl", "bar.seal",
              "ratio", "bar.unseal", "ratio", "svc.enc", "ratio", "svc.dec", "ratio");
  for (size_t n : {size_t{1024}, size_t{65536}, size_t{1} << 20}) {
    std::string pt(n, '\0');
    for (size_t i = 0; i < n; ++i) pt[i] = static_cast<char>(i * 31 + 7);
    std::string sealed(n + kOverhead, '\0');
    keyring.seal_to(ctx, pt, reinterpret_cast<uint8_t*>(sealed.data()));
    const std::string svc_ct = transit.encrypt("bench", pt, "", Form::Binary);

    std::vector<double> ossl, seal, unseal, enc, dec;
    for (int r = 0; r < runs; ++r) {
      ossl.push_back(openssl_speed(openssl, n, 1));
      seal.push_back(throughput(n, seconds, [&] {
        uint8_t* out = alloc(n + kOverhead);
        keyring.seal_to(ctx, pt, out);
        release(out);
      }));
      unseal.push_back(throughput(n, seconds, [&] {
        uint8_t* out = alloc(n);
        keyring.unseal_to(ctx, sealed, out);
        release(out);
      }));
      enc.push_back(throughput(n, seconds, [&] {
        auto o = transit.encrypt("bench", 0, pt, "", Form::Binary, alloc);
        release(o.data);
      }));
      dec.push_back(throughput(n, seconds, [&] {
        auto o = transit.decrypt("bench", svc_ct, "", alloc, release);
        release(o.data);
      }));
    }
    const double o = median(ossl);
    auto col = [&](const std::vector<double>& v) {
      const double m = median(v);
      std::printf(" %10.0f %5.0f%% |", m / 1e6, o > 0 ? 100.0 * m / o : 0.0);
    };
    const std::string label =
        n >= (1u << 20) ? std::to_string(n >> 20) + " MiB" : std::to_string(n >> 10) + " KiB";
    std::printf("%-8s %10.0f |", label.c_str(), o / 1e6);
    col(seal);
    col(unseal);
    col(enc);
    col(dec);
    std::printf("\n");
    std::fflush(stdout);
  }
  std::printf(
      "openssl speed -evp aes-256-gcm measures EVP_EncryptUpdate alone (no per-message init, nonce or tag);\n"
      "the plugin figures include a fresh nonce, AAD, the tag and an output allocation per message.\n");

  // Envelopes: a 64 KiB document for 1, 10 and 100 recipients.
  std::vector<EVP_PKEY*> x25519, p256, rsa;
  for (int i = 0; i < 100; ++i) x25519.push_back(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  for (int i = 0; i < 100; ++i) p256.push_back(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  for (int i = 0; i < 10; ++i) rsa.push_back(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  const std::string doc(65536, 'e');
  std::vector<double> pk_x, pk_p, pk_r;
  std::vector<std::vector<double>> env_x(3), env_p(3), env_r(3);
  const int counts[3] = {1, 10, 100};
  for (int r = 0; r < runs; ++r) {
    PkSpeed sp = openssl_pk_speed(openssl);
    pk_x.push_back(sp.x25519);
    pk_p.push_back(sp.p256);
    pk_r.push_back(sp.rsa2048_public);
    for (int c = 0; c < 3; ++c) {
      std::vector<Recipient> tx, tp, tr;
      for (int i = 0; i < counts[c]; ++i) {
        tx.push_back({x25519[static_cast<size_t>(i)]});
        tp.push_back({p256[static_cast<size_t>(i)]});
        tr.push_back({rsa[static_cast<size_t>(i) % rsa.size()]});  // 10 keys reused: the cost is per entry
      }
      env_x[c].push_back(throughput(1, seconds, [&] { (void)envelope_encrypt(doc, "", tx); }));
      env_p[c].push_back(throughput(1, seconds, [&] { (void)envelope_encrypt(doc, "", tp); }));
      env_r[c].push_back(throughput(1, seconds, [&] { (void)envelope_encrypt(doc, "", tr); }));
    }
  }
  const double ox = median(pk_x), op = median(pk_p), orsa = median(pk_r);
  std::printf("\nEnvelope encryption of a 64 KiB document, envelopes/s (median of %d runs)\n", runs);
  std::printf("openssl speed: ecdhx25519 %.0f ops/s, ecdhp256 %.0f ops/s, rsa2048 public %.0f ops/s\n", ox,
              op, orsa);
  std::printf("%-11s %10s %14s %10s %14s %10s %14s\n", "recipients", "X25519", "bound(ecdh/2n)", "P-256",
              "bound(ecdh/2n)", "RSA-2048", "bound(rsa/n)");
  for (int c = 0; c < 3; ++c)
    std::printf("%-11d %10.1f %14.1f %10.1f %14.1f %10.1f %14.1f\n", counts[c], median(env_x[c]),
                ox / (2.0 * counts[c]), median(env_p[c]), op / (2.0 * counts[c]), median(env_r[c]),
                orsa / counts[c]);
  std::printf(
      "bound = OpenSSL's raw rate for the public-key work alone (X25519: ephemeral keygen + ECDH\n"
      "per recipient, about 2 scalar multiplications; RSA: one public-key operation per recipient).\n");
  for (auto* k : x25519) EVP_PKEY_free(k);
  for (auto* k : p256) EVP_PKEY_free(k);
  for (auto* k : rsa) EVP_PKEY_free(k);
  return 0;
}
