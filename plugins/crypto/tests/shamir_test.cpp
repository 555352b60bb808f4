// Unit tests of Shamir k-of-n sharing: GF(2^8) arithmetic against FIPS-197,
// every k-subset recovers the secret, fewer than k, altered, duplicated and
// mixed shares are refused with the reason.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "aead.hpp"
#include "shamir.hpp"

using namespace vellum::crypto;

TEST_CASE("GF(2^8) multiplication and inverses match the AES field", "[crypto][shamir]") {
  CHECK(gf256_mul(0x57, 0x83) == 0xc1);  // FIPS-197 §4.2
  CHECK(gf256_mul(0x57, 0x13) == 0xfe);  // FIPS-197 §4.2.1
  CHECK(gf256_mul(0x00, 0x9a) == 0x00);
  for (int a = 1; a < 256; ++a) {
    CHECK(gf256_mul(static_cast<uint8_t>(a), gf256_inv(static_cast<uint8_t>(a))) == 1);
    CHECK(gf256_mul(static_cast<uint8_t>(a), 1) == a);
  }
}

TEST_CASE("any k of n shares recover the secret", "[crypto][shamir]") {
  const Key k = random_key();
  const std::string secret(reinterpret_cast<const char*>(k.data()), k.size());
  auto shares = shamir_split(secret, 3, 5);
  REQUIRE(shares.size() == 5);
  for (const auto& s : shares) CHECK(s.rfind("vellum-share-1:", 0) == 0);
  int subsets = 0;
  for (int a = 0; a < 5; ++a)
    for (int b = a + 1; b < 5; ++b)
      for (int c = b + 1; c < 5; ++c) {
        CHECK(shamir_combine({shares[a], shares[b], shares[c]}) == secret);
        ++subsets;
      }
  CHECK(subsets == 10);
  CHECK(shamir_combine(shares) == secret);  // more than k is fine
  // Two splits of the same secret share nothing: fresh coefficients and set id.
  auto again = shamir_split(secret, 3, 5);
  for (int i = 0; i < 5; ++i) CHECK(again[i] != shares[i]);
  // n = k = 255 at the edge of the field, and a 2-of-2.
  auto wide = shamir_split("x", 255, 255);
  CHECK(shamir_combine(wide) == "x");
  auto two = shamir_split(secret, 2, 2);
  CHECK(shamir_combine({two[1], two[0]}) == secret);
}

TEST_CASE("bad share sets are refused with the reason", "[crypto][shamir]") {
  const std::string secret = "root key material, 32 bytes long";
  auto s = shamir_split(secret, 3, 5);
  CHECK_THROWS_WITH(shamir_combine({s[0], s[1]}), Catch::Contains("needs 3 shares; got 2"));
  CHECK_THROWS_WITH(shamir_combine({s[0], s[1], s[1]}), Catch::Contains("twice"));
  auto other = shamir_split(secret, 3, 5);
  CHECK_THROWS_WITH(shamir_combine({s[0], s[1], other[2]}), Catch::Contains("different splits"));
  // Alter one y byte of a share (the last base64 characters encode y).
  auto raw = *b64decode(s[2].substr(15));
  raw.back() = static_cast<char>(raw.back() ^ 1);
  CHECK_THROWS_WITH(shamir_combine({s[0], s[1], "vellum-share-1:" + b64encode(raw)}),
                    Catch::Contains("do not recover"));
  CHECK_THROWS_WITH(shamir_combine({s[0], s[1], s[2].substr(0, 30)}), Catch::Contains("malformed"));
  CHECK_THROWS_WITH(shamir_combine({s[0], s[1], "share-2:AAAA"}), Catch::Contains("prefix"));
  CHECK_THROWS_WITH(shamir_combine({}), Catch::Contains("no shares"));
  CHECK_THROWS_AS(shamir_split(secret, 1, 5), ShamirError);
  CHECK_THROWS_AS(shamir_split(secret, 6, 5), ShamirError);
  CHECK_THROWS_AS(shamir_split(secret, 2, 256), ShamirError);
  CHECK_THROWS_AS(shamir_split("", 2, 3), ShamirError);
}
