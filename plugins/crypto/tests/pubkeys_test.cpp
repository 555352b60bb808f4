// Unit tests of the public-key directory's checks: accepted types and uses,
// RSA below 2048 bits refused with the reason, key id = SHA-256 of the SPKI.
#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "pubkeys.hpp"

using vellum::crypto::inspect_public_key;

namespace {
std::string public_pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(b, k) == 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}
std::string private_pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}
struct Key {
  EVP_PKEY* k;
  ~Key() { EVP_PKEY_free(k); }
};
std::string why(const std::string& pem, const std::string& use, unsigned min_bits = 2048) {
  try {
    (void)inspect_public_key(pem, use, min_bits);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("public key ids are the SHA-256 of the SPKI (RFC 8410 example key)", "[crypto][pubkeys]") {
  const std::string pem =
      "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END "
      "PUBLIC "
      "KEY-----\n";
  auto info = inspect_public_key(pem, "signing");
  CHECK(info.type == "ed25519");
  CHECK(info.algorithm == "Ed25519");
  CHECK(info.key_id == "a1e9156054e04fac899ae9f275132cdc07a5dbc4ea2c2ad3a1ffc6e0d253681f");
  CHECK_THAT(why(pem, "encryption"), Catch::Contains("signing only"));
}

TEST_CASE("RSA below 2048 bits is refused and says why", "[crypto][pubkeys]") {
  Key small{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024})};
  REQUIRE(small.k);
  const std::string reason = why(public_pem(small.k), "encryption");
  CHECK_THAT(reason, Catch::Contains("below 2048 bits"));
  CHECK_THAT(reason, Catch::Contains("RSA-512 was factored in 1999"));
  Key rsa{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})};
  REQUIRE(rsa.k);
  auto info = inspect_public_key(public_pem(rsa.k), "encryption");
  CHECK(info.type == "rsa");
  CHECK(info.bits == 2048);
  CHECK(info.algorithm == "RSA-OAEP-256");
  CHECK(info.key_id.size() == 64);
  // The server may require more, never less.
  CHECK_THAT(why(public_pem(rsa.k), "encryption", 3072), Catch::Contains("at least 3072"));
  CHECK_THAT(why(public_pem(rsa.k), "signing"), Catch::Contains("encryption (RSA-OAEP-256) only"));
}

TEST_CASE("EC X25519 Ed25519 and secp256k1 keys by use", "[crypto][pubkeys]") {
  Key p256{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
  CHECK(inspect_public_key(public_pem(p256.k), "encryption").algorithm == "ECDH-P256");
  CHECK(inspect_public_key(public_pem(p256.k), "signing").algorithm == "ECDSA-P256-SHA256");
  Key p384{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")};
  CHECK_THAT(why(public_pem(p384.k), "signing"), Catch::Contains("not accepted"));
  Key k1{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1")};
  CHECK(inspect_public_key(public_pem(k1.k), "signing").type == "secp256k1");
  CHECK_THAT(why(public_pem(k1.k), "encryption"), Catch::Contains("signing only"));
  Key x{EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519")};
  CHECK(inspect_public_key(public_pem(x.k), "encryption").algorithm == "X25519");
  CHECK_THAT(why(public_pem(x.k), "signing"), Catch::Contains("encryption"));
  // Same key, same id; a private key is refused outright.
  CHECK(inspect_public_key(public_pem(x.k), "encryption").key_id ==
        inspect_public_key(public_pem(x.k), "encryption").key_id);
  CHECK_THAT(why(private_pem(x.k), "encryption"), Catch::Contains("private key"));
  CHECK_THAT(why("not a key", "encryption"), Catch::Contains("not a PEM public key"));
  CHECK_THAT(why(public_pem(x.k), "decoration"), Catch::Contains("'use'"));
}
