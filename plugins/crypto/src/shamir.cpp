#include "shamir.hpp"

#include <openssl/evp.h>

#include <cstring>
#include <set>

#include "aead.hpp"

namespace vellum::crypto {
namespace {

constexpr std::string_view kMagic = "VSS1";
constexpr std::string_view kPrefix = "vellum-share-1:";
constexpr size_t kSetId = 16, kCheck = 8, kHeader = 4 + 1 + 1 + kSetId + kCheck;

std::string check_of(std::string_view set_id, std::string_view secret) {
  std::string in = "vellum.shamir.v1";
  in += set_id;
  in += secret;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  const bool ok = EVP_Digest(in.data(), in.size(), md, &n, EVP_sha256(), nullptr) == 1;
  cleanse(in.data(), in.size());
  if (!ok) throw ShamirError("SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(md), kCheck);
}

}  // namespace

// Russian-peasant multiplication with masks instead of branches.
uint8_t gf256_mul(uint8_t a, uint8_t b) {
  uint8_t p = 0;
  for (int i = 0; i < 8; ++i) {
    p ^= static_cast<uint8_t>(-(b & 1) & a);
    const uint8_t hi = static_cast<uint8_t>(-(a >> 7));
    a = static_cast<uint8_t>((a << 1) ^ (hi & 0x1b));
    b >>= 1;
  }
  return p;
}

// a^254 = a^-1 in GF(2^8): a fixed sequence of multiplications.
uint8_t gf256_inv(uint8_t a) {
  uint8_t r = 1, base = a;
  for (int e = 254; e; e >>= 1) {
    const uint8_t m = gf256_mul(r, base);
    const uint8_t take = static_cast<uint8_t>(-(e & 1));  // e is public
    r = static_cast<uint8_t>((m & take) | (r & ~take));
    base = gf256_mul(base, base);
  }
  return r;
}

std::vector<std::string> shamir_split(std::string_view secret, unsigned k, unsigned n) {
  if (k < 2 || k > n || n > 255) throw ShamirError("need 2 <= k <= n <= 255");
  if (secret.empty() || secret.size() > 1024) throw ShamirError("the secret must be 1 to 1024 bytes");
  uint8_t set_id[kSetId];
  random_bytes(set_id, sizeof set_id);
  const std::string sid(reinterpret_cast<const char*>(set_id), kSetId);
  const std::string check = check_of(sid, secret);
  std::vector<std::string> ys(n, std::string(secret.size(), '\0'));
  std::vector<uint8_t> coeff(k);
  for (size_t i = 0; i < secret.size(); ++i) {
    coeff[0] = static_cast<uint8_t>(secret[i]);
    random_bytes(coeff.data() + 1, k - 1);
    for (unsigned x = 1; x <= n; ++x) {
      uint8_t y = 0;  // Horner: ((c[k-1] x + c[k-2]) x + ...) x + c[0]
      for (unsigned j = k; j-- > 0;)
        y = static_cast<uint8_t>(gf256_mul(y, static_cast<uint8_t>(x)) ^ coeff[j]);
      ys[x - 1][i] = static_cast<char>(y);
    }
  }
  cleanse(coeff.data(), coeff.size());
  std::vector<std::string> out;
  for (unsigned x = 1; x <= n; ++x) {
    std::string s(kMagic);
    s.push_back(static_cast<char>(k));
    s.push_back(static_cast<char>(x));
    s += sid;
    s += check;
    s += ys[x - 1];
    out.push_back(std::string(kPrefix) + b64encode(s));
    cleanse(s.data(), s.size());
    cleanse(ys[x - 1].data(), ys[x - 1].size());
  }
  return out;
}

std::string shamir_combine(const std::vector<std::string>& shares) {
  struct Share {
    uint8_t k, x;
    std::string set_id, check, y;
  };
  std::vector<Share> ss;
  std::set<uint8_t> xs;
  for (const auto& text : shares) {
    std::string_view t(text);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.remove_suffix(1);
    if (t.substr(0, kPrefix.size()) != kPrefix)
      throw ShamirError("not a vellum share (no vellum-share-1: prefix)");
    auto raw = b64decode(t.substr(kPrefix.size()));
    if (!raw || raw->size() <= kHeader || raw->compare(0, 4, kMagic) != 0)
      throw ShamirError("a share is malformed (truncated or not base64)");
    Share s{static_cast<uint8_t>((*raw)[4]), static_cast<uint8_t>((*raw)[5]), raw->substr(6, kSetId),
            raw->substr(6 + kSetId, kCheck), raw->substr(kHeader)};
    cleanse(raw->data(), raw->size());
    if (s.x == 0 || s.k < 2) throw ShamirError("a share is malformed (bad x or k)");
    if (!ss.empty() && (s.set_id != ss[0].set_id || s.k != ss[0].k || s.y.size() != ss[0].y.size()))
      throw ShamirError("the shares come from different splits");
    if (!xs.insert(s.x).second) throw ShamirError("the same share was given twice");
    ss.push_back(std::move(s));
  }
  if (ss.empty()) throw ShamirError("no shares");
  if (ss.size() < ss[0].k) {
    const std::string need = std::to_string(ss[0].k);
    throw ShamirError("this split needs " + need + " shares; got " + std::to_string(ss.size()));
  }
  ss.resize(ss[0].k);  // any k determine the polynomial
  // Lagrange at 0: secret = sum_i y_i * prod_{j != i} x_j / (x_j - x_i); minus is xor.
  std::vector<uint8_t> basis(ss.size());
  for (size_t i = 0; i < ss.size(); ++i) {
    uint8_t num = 1, den = 1;
    for (size_t j = 0; j < ss.size(); ++j) {
      if (i == j) continue;
      num = gf256_mul(num, ss[j].x);
      den = gf256_mul(den, static_cast<uint8_t>(ss[j].x ^ ss[i].x));
    }
    basis[i] = gf256_mul(num, gf256_inv(den));
  }
  std::string secret(ss[0].y.size(), '\0');
  for (size_t b = 0; b < secret.size(); ++b) {
    uint8_t v = 0;
    for (size_t i = 0; i < ss.size(); ++i) v ^= gf256_mul(basis[i], static_cast<uint8_t>(ss[i].y[b]));
    secret[b] = static_cast<char>(v);
  }
  for (auto& s : ss) cleanse(s.y.data(), s.y.size());
  if (check_of(ss[0].set_id, secret) != ss[0].check) {
    cleanse(secret.data(), secret.size());
    throw ShamirError("the shares do not recover the secret (a share is wrong or altered)");
  }
  return secret;
}

}  // namespace vellum::crypto
