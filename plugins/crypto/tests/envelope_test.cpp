// Unit tests of the multi-recipient envelope: the published test vector,
// round trips for mixed recipients, recipient selection by key id, tampering,
// wrong associated data, the reserved KEM slot.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "aead.hpp"
#include "envelope.hpp"
#include "envelope_vector1.hpp"

using namespace vellum::crypto;

namespace {
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey load_private(const char* pem) {
  BIO* b = BIO_new_mem_buf(pem, -1);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  REQUIRE(k);
  return Pkey(k);
}

std::string failure(const std::function<void()>& f) {
  try {
    f();
  } catch (const EnvelopeError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("envelope test vector 1 decrypts for each recipient", "[crypto][envelope]") {
  using namespace envelope_vector1;
  for (auto [pem, kid] : {std::pair{kX25519Private, kX25519Kid}, std::pair{kP256Private, kP256Kid},
                          std::pair{kRSAPrivate, kRSAKid}}) {
    auto k = load_private(pem);
    CHECK(key_id_of(k.get()) == kid);
    CHECK(envelope_decrypt(kEnvelope, kAad, k.get()) == kPlaintext);
    CHECK_THAT(failure([&] { (void)envelope_decrypt(kEnvelope, "doc-43", k.get()); }),
               Catch::Contains("failed authentication"));
  }
}

TEST_CASE("envelopes round trip to many recipients and pick the entry by key id", "[crypto][envelope]") {
  Pkey x(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  Pkey p(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  Pkey r(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  Pkey outsider(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  const std::string doc(100000, 'd');
  const std::string env = envelope_encrypt(doc, "", {{x.get()}, {p.get()}, {r.get()}});
  CHECK(env.find(b64encode(doc.substr(0, 300))) == std::string::npos);
  for (EVP_PKEY* k : {x.get(), p.get(), r.get()}) CHECK(envelope_decrypt(env, "", k) == doc);
  CHECK_THAT(failure([&] { (void)envelope_decrypt(env, "", outsider.get()); }),
             Catch::Contains("not a recipient"));
  auto j = nlohmann::json::parse(env);
  CHECK(j["recipients"].size() == 3);
  CHECK(j["recipients"][0]["kid"] == key_id_of(x.get()));
  // Content encrypted once: one ciphertext, whatever the number of recipients.
  CHECK(j["content"]["alg"] == "A256GCM");
}

TEST_CASE("tampered envelopes and unsupported keys are refused", "[crypto][envelope]") {
  Pkey x(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  Pkey r(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  const std::string env = envelope_encrypt("secret", "aad", {{x.get()}, {r.get()}});
  auto flip = [](std::string b64) {
    auto raw = b64decode(b64);
    REQUIRE(raw);
    (*raw)[raw->size() / 2] ^= 1;
    return b64encode(*raw);
  };
  auto j = nlohmann::json::parse(env);
  auto t = j;
  t["content"]["ciphertext"] = flip(t["content"]["ciphertext"]);
  CHECK_THAT(failure([&] { (void)envelope_decrypt(t.dump(), "aad", x.get()); }), Catch::Contains("content"));
  t = j;
  t["recipients"][0]["wrapped_key"] = flip(t["recipients"][0]["wrapped_key"]);
  CHECK_THAT(failure([&] { (void)envelope_decrypt(t.dump(), "aad", x.get()); }), Catch::Contains("unwrap"));
  t = j;
  t["recipients"][1]["wrapped_key"] = flip(t["recipients"][1]["wrapped_key"]);
  CHECK_FALSE(failure([&] { (void)envelope_decrypt(t.dump(), "aad", r.get()); }).empty());
  t = j;
  t["recipients"][0]["alg"] = "ECDH-P256+HKDF-SHA256+A256GCM";  // relabel: wrong key type
  CHECK_FALSE(failure([&] { (void)envelope_decrypt(t.dump(), "aad", x.get()); }).empty());
  t = j;
  t["kem"] = {{"alg", "ML-KEM-768+X25519"}};
  CHECK_THAT(failure([&] { (void)envelope_decrypt(t.dump(), "aad", x.get()); }),
             Catch::Contains("post-quantum"));
  CHECK_THAT(failure([&] { (void)envelope_decrypt("{\"vellum_envelope\":2}", "aad", x.get()); }),
             Catch::Contains("not a version 1"));
  CHECK_THAT(failure([&] { (void)envelope_decrypt("not json", "aad", x.get()); }),
             Catch::Contains("not a version 1"));
  Pkey weak(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
  CHECK_THAT(failure([&] { (void)envelope_encrypt("x", "", {{weak.get()}}); }), Catch::Contains("2048"));
  Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  CHECK_THAT(failure([&] { (void)envelope_encrypt("x", "", {{ed.get()}}); }), Catch::Contains("unsupported"));
  CHECK_THAT(failure([&] { (void)envelope_encrypt("x", "", {}); }), Catch::Contains("at least one"));
}
