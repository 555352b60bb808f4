// Unit tests of transit encryption: named keys, versions, both ciphertext
// forms, tamper and swap detection, min versions, data keys, HMAC, signatures.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "transit.hpp"

using namespace vellum::crypto;

namespace {
struct Fixture {
  MemoryTransitStore store;
  int64_t now = 1000;
  Transit t{store, [this] { return now; }};
};

vellum_status status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const TransitError& e) {
    return e.status;
  }
  return VELLUM_OK;
}
}  // namespace

TEST_CASE("transit encrypt and decrypt in text and binary form", "[crypto][transit]") {
  Fixture f;
  auto info = f.t.create_key("docs", KeyType::Aes256Gcm, "user-1");
  CHECK(info.latest == 1);
  CHECK(info.owner == "user-1");
  const std::string ct = f.t.encrypt("docs", "hello transit", "ctx");
  CHECK(ct.rfind("vellum:v1:docs:1:", 0) == 0);
  CHECK(f.t.decrypt("docs", ct, "ctx") == "hello transit");
  const std::string bin = f.t.encrypt("docs", "hello binary", "", Form::Binary);
  CHECK(bin.rfind(std::string("VT\x01\x04"
                              "docs",
                              8),
                  0) == 0);
  CHECK(f.t.decrypt("docs", bin) == "hello binary");
  CHECK(f.t.decrypt("docs", f.t.encrypt("docs", "")) == "");
  // A second Transit over the same store loads the key from its record.
  Transit again(f.store, [] { return int64_t{0}; });
  CHECK(again.decrypt("docs", ct, "ctx") == "hello transit");
}

TEST_CASE("transit refuses tampered truncated and misdirected ciphertexts", "[crypto][transit]") {
  Fixture f;
  f.t.create_key("a", KeyType::Aes256Gcm, "");
  f.t.create_key("b", KeyType::Aes256Gcm, "");
  const std::string bin = f.t.encrypt("a", "secret", "", Form::Binary);
  for (size_t i = 0; i < bin.size(); ++i) {
    std::string t = bin;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    INFO("byte " << i);
    CHECK(status_of([&] { (void)f.t.decrypt("a", t); }) != VELLUM_OK);
  }
  for (size_t n = 0; n < bin.size(); ++n)
    CHECK(status_of([&] { (void)f.t.decrypt("a", bin.substr(0, n)); }) != VELLUM_OK);
  const std::string ct = f.t.encrypt("a", "secret", "ctx-1");
  CHECK(status_of([&] { (void)f.t.decrypt("a", ct, "ctx-2"); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { (void)f.t.decrypt("b", ct, "ctx-1"); }) == VELLUM_ERR_INVALID_ARGUMENT);
  // Relabel the ciphertext as key b: the AAD binds the key name.
  std::string relabeled = ct;
  relabeled[std::string("vellum:v1:").size()] = 'b';
  CHECK(status_of([&] { (void)f.t.decrypt("b", relabeled, "ctx-1"); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { (void)f.t.decrypt("a", "vellum:v1:a:1:!!!!"); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { (void)f.t.decrypt("a", "vellum:v1:a:01:AAAA"); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { (void)f.t.decrypt("a", "garbage"); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { (void)f.t.decrypt("nope", "vellum:v1:nope:1:AAAA"); }) != VELLUM_OK);
  CHECK(status_of([&] { (void)f.t.encrypt("missing", "x"); }) == VELLUM_ERR_NOT_FOUND);
  CHECK(status_of([&] { (void)f.t.encrypt("a", std::string(kMaxTransitInput + 1, 'x')); }) ==
        VELLUM_ERR_LIMIT);
  CHECK(status_of([&] { (void)f.t.create_key("a", KeyType::Aes256Gcm, ""); }) == VELLUM_ERR_CONFLICT);
  CHECK(status_of([&] { (void)f.t.create_key("bad:name", KeyType::Aes256Gcm, ""); }) ==
        VELLUM_ERR_INVALID_ARGUMENT);
}

TEST_CASE("transit rotation rewrap and minimum versions", "[crypto][transit]") {
  Fixture f;
  f.t.create_key("k", KeyType::Aes256Gcm, "");
  const std::string v1 = f.t.encrypt("k", "one");
  CHECK(f.t.rotate("k") == 2);
  const std::string v2 = f.t.encrypt("k", "two");
  CHECK(v2.rfind("vellum:v1:k:2:", 0) == 0);
  CHECK(f.t.decrypt("k", v1) == "one");
  const std::string re = f.t.rewrap("k", v1, "");
  CHECK(re.rfind("vellum:v1:k:2:", 0) == 0);
  CHECK(f.t.decrypt("k", re) == "one");
  // Relabel a v2 ciphertext as v1: the AAD binds the version.
  std::string relabel = v2;
  relabel[std::string("vellum:v1:k:").size()] = '1';
  CHECK(status_of([&] { (void)f.t.decrypt("k", relabel); }) == VELLUM_ERR_INVALID_ARGUMENT);
  f.t.set_min_versions("k", 2, 0);
  CHECK(status_of([&] { (void)f.t.decrypt("k", v1); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(f.t.decrypt("k", v2) == "two");
  CHECK(status_of([&] { (void)f.t.encrypt("k", "x", "", Form::Text, 1); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { f.t.set_min_versions("k", 3, 0); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] { f.t.set_min_versions("k", 2, 1); }) == VELLUM_ERR_INVALID_ARGUMENT);
  CHECK(f.t.info("k").min_decryption == 2);
  CHECK(status_of([&] { (void)f.t.decrypt("k", "vellum:v1:k:9:" + std::string(40, 'A')); }) ==
        VELLUM_ERR_INVALID_ARGUMENT);
}

TEST_CASE("transit data keys hmac and signatures", "[crypto][transit]") {
  Fixture f;
  f.t.create_key("wrap", KeyType::Aes256Gcm, "");
  auto dk = f.t.generate_data_key("wrap", 256, "", Form::Text);
  CHECK(dk.plaintext.size() == 32);
  CHECK(f.t.decrypt("wrap", dk.wrapped) == dk.plaintext);
  CHECK(status_of([&] { (void)f.t.generate_data_key("wrap", 100, "", Form::Text); }) ==
        VELLUM_ERR_INVALID_ARGUMENT);

  f.t.create_key("mac", KeyType::HmacSha256, "");
  const std::string mac = f.t.hmac("mac", "message");
  CHECK(mac.rfind("vellum:v1:mac:1:", 0) == 0);
  CHECK(f.t.verify("mac", "message", mac));
  CHECK_FALSE(f.t.verify("mac", "massage", mac));
  CHECK(status_of([&] { (void)f.t.encrypt("mac", "x"); }) == VELLUM_ERR_INVALID_ARGUMENT);  // wrong key type
  CHECK(status_of([&] { (void)f.t.hmac("wrap", "x"); }) == VELLUM_ERR_INVALID_ARGUMENT);

  for (auto type : {KeyType::Ed25519, KeyType::EcdsaP256}) {
    const std::string name = type == KeyType::Ed25519 ? "ed" : "ec";
    auto info = f.t.create_key(name, type, "");
    REQUIRE(info.versions.size() == 1);
    CHECK(info.versions[0].public_key_pem.find("BEGIN PUBLIC KEY") != std::string::npos);
    const std::string sig = f.t.sign(name, "document hash");
    CHECK(f.t.verify(name, "document hash", sig));
    CHECK_FALSE(f.t.verify(name, "document hasH", sig));
    f.t.rotate(name);
    CHECK(f.t.verify(name, "document hash", sig));  // old versions still verify
    const std::string sig2 = f.t.sign(name, "document hash");
    CHECK(sig2.rfind("vellum:v1:" + name + ":2:", 0) == 0);
    CHECK(status_of([&] { (void)f.t.encrypt(name, "x"); }) == VELLUM_ERR_INVALID_ARGUMENT);
    // Reloaded from the stored record, the key still verifies.
    Transit again(f.store, [] { return int64_t{0}; });
    CHECK(again.verify(name, "document hash", sig2));
  }
  CHECK(status_of([&] { (void)f.t.verify("ed", "x", "vellum:v1:ed:1:%%%%"); }) ==
        VELLUM_ERR_INVALID_ARGUMENT);
}
