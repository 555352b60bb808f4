// Keys, statements and raw signatures, each signature also checked by the
// stock openssl command line on exported files.
#include <catch2/catch.hpp>
#include <openssl/ec.h>

#include "harness.hpp"
#include "keys.hpp"
#include "openssl_cli.hpp"
#include "statement.hpp"

using namespace vellum::signing;
using signing_test::kAll;
using signing_test::openssl;
using signing_test::verify_args;

namespace {

Statement sample(const std::string& kid, Algorithm a) {
  Statement s;
  s.algorithm = algorithm_name(a);
  s.content_sha256 = sha256_hex("the exact version bytes");
  s.document = "0123456789abcdef0123456789abcdef";
  s.intent = "approve";
  s.key_id = kid;
  s.signed_at = rfc3339_ms(1795000000123);
  s.signer = "user:u-42";
  s.version = 3;
  return s;
}

}  // namespace

TEST_CASE("Statements are canonical JSON a third party can rebuild") {
  Statement s = sample(std::string(64, 'a'), Algorithm::Ed25519);
  const std::string c = canonical(s);
  CHECK(c == "{\"algorithm\":\"ed25519\",\"content_sha256\":\"" + sha256_hex("the exact version bytes") +
                 "\",\"document\":\"0123456789abcdef0123456789abcdef\",\"intent\":\"approve\",\"key_id\":\"" +
                 std::string(64, 'a') +
                 "\",\"signed_at\":\"2026-11-18T11:06:40.123Z\",\"signer\":\"user:u-42\",\"type\":\"vellum."
                 "signature-"
                 "statement.v1\",\"version\":3}");
  Statement back = parse_statement(c);
  CHECK(canonical(back) == c);
  s.request = "req1";
  CHECK(canonical(s).find(",\"request\":\"req1\",\"signed_at\"") != std::string::npos);
  // Any other spelling of the same content is refused.
  CHECK_THROWS_AS(parse_statement(" " + c), InvalidInput);
  std::string reordered = c;
  reordered.replace(reordered.find("\"version\":3"), 11, "\"version\":3.0");
  CHECK_THROWS_AS(parse_statement(reordered), InvalidInput);
  CHECK_THROWS_AS(parse_statement(c.substr(0, c.size() - 1) + ",\"extra\":\"x\"}"), InvalidInput);
  // JCS string escaping.
  CHECK(jcs_string("a\"b\\c\n\x01\xc3\xa9/") == "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9/\"");
  CHECK_THROWS_AS(jcs_string("\xc3"), InvalidInput);
  CHECK_THROWS_AS(jcs_string("\xed\xa0\x80"), InvalidInput);  // a surrogate
  Statement bad = s;
  bad.signer = "mallory";
  CHECK_THROWS_AS(canonical(bad), InvalidInput);
  bad = s;
  bad.content_sha256 = "ABC";
  CHECK_THROWS_AS(canonical(bad), InvalidInput);
}

TEST_CASE("Each algorithm signs statements that the openssl command line verifies") {
  for (Algorithm a : kAll) {
    DYNAMIC_SECTION(algorithm_name(a)) {
      vt::TempDir dir;
      Pkey key = generate_key(a, 2048);
      const std::string kid = key_id(key.get());
      CHECK(kid == sha256_hex(spki_der(key.get())));
      const std::string pub = pubkey_pem(key.get());
      Signer signer(a, privkey_from_pem(privkey_pem(key.get())));
      const std::string stmt = canonical(sample(kid, a));
      const std::string sig = signer.sign(stmt);
      CHECK(verify_signature(a, pubkey_from_pem(pub).get(), stmt, sig));
      vt::write_file(dir / "pub.pem", pub);
      vt::write_file(dir / "statement.json", stmt);
      vt::write_file(dir / "signature.bin", sig);
      auto ok = openssl(
          verify_args(algorithm_name(a), dir / "pub.pem", dir / "statement.json", dir / "signature.bin"));
      INFO(ok.out << ok.err);
      CHECK(ok.exit_code == 0);
      CHECK(ok.out.find("Verified") != std::string::npos);
      // One changed byte in the statement: both sides refuse.
      std::string tampered = stmt;
      tampered[tampered.find("\"version\":3") + 10] = '4';
      CHECK_FALSE(verify_signature(a, pubkey_from_pem(pub).get(), tampered, sig));
      vt::write_file(dir / "statement.json", tampered);
      auto bad = openssl(
          verify_args(algorithm_name(a), dir / "pub.pem", dir / "statement.json", dir / "signature.bin"));
      CHECK(bad.exit_code != 0);
      // A flipped signature bit.
      std::string badsig = sig;
      badsig[badsig.size() / 2] ^= 0x01;
      CHECK_FALSE(verify_signature(a, pubkey_from_pem(pub).get(), stmt, badsig));
      // Another key of the same algorithm does not verify it.
      Pkey other = generate_key(a, 2048);
      CHECK_FALSE(verify_signature(a, other.get(), stmt, sig));
    }
  }
}

TEST_CASE("RSA below 2048 bits and mismatched key types are refused with a reason") {
  try {
    generate_key(Algorithm::RsaPss, 1024);
    FAIL("1024-bit RSA accepted");
  } catch (const InvalidInput& e) {
    CHECK(std::string(e.what()).find("below 2048 bits") != std::string::npos);
  }
  // A small RSA key made elsewhere (a client-held key) is refused too.
  EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
  REQUIRE(small);
  Pkey holder(small);
  CHECK_THROWS_WITH(check_key(Algorithm::RsaPss, small), Catch::Contains("1024 bits"));
  Pkey p256 = generate_key(Algorithm::EcdsaP256);
  CHECK_THROWS_AS(check_key(Algorithm::EcdsaSecp256k1, p256.get()), InvalidInput);
  CHECK(algorithm_of(p256.get()) == Algorithm::EcdsaP256);
  CHECK_THROWS_AS(pubkey_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
                  InvalidInput);
  CHECK(parse_algorithm("rsa-pss-sha256") == Algorithm::RsaPss);
  CHECK_FALSE(parse_algorithm("rsa-512").has_value());
}

TEST_CASE("WebCrypto P1363 ECDSA signatures convert to the DER form openssl checks") {
  Pkey key = generate_key(Algorithm::EcdsaP256);
  Signer s(Algorithm::EcdsaP256, privkey_from_pem(privkey_pem(key.get())));
  const std::string der = s.sign("message");
  // DER → r ‖ s by hand through OpenSSL, then back.
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  REQUIRE(sig);
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  CHECK_FALSE(verify_signature(Algorithm::EcdsaP256, key.get(), "message", raw));
  CHECK(verify_signature(Algorithm::EcdsaP256, key.get(), "message", ecdsa_p1363_to_der(raw)));
  CHECK(verify_client_signature(Algorithm::EcdsaP256, key.get(), "message", raw) == der);
  CHECK(verify_client_signature(Algorithm::EcdsaP256, key.get(), "message", der) == der);
  CHECK_FALSE(verify_client_signature(Algorithm::EcdsaP256, key.get(), "other", raw).has_value());
}

TEST_CASE("Encodings reject malformed input") {
  CHECK(b64decode(b64encode(std::string("\x00\x01\xff", 3))) == std::string("\x00\x01\xff", 3));
  CHECK_THROWS_AS(b64decode("abc"), InvalidInput);
  CHECK_THROWS_AS(b64decode("a=bc"), InvalidInput);
  CHECK_THROWS_AS(b64decode("ab!c"), InvalidInput);
  CHECK(unhex("00ff") == std::string("\x00\xff", 2));
  CHECK_THROWS_AS(unhex("0g"), InvalidInput);
  CHECK(rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
}
