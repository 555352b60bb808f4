// Unit tests of the barrier's crypto: sealed-value format, tamper and swap
// detection, rotation, the keyring record and its root seal, config parsing.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "aead.hpp"
#include "config.hpp"
#include "keyring.hpp"

using namespace vellum::crypto;

namespace {
const std::string kCtx = std::string("docs") + '\0' + "doc-1";
const std::string kOtherCtx = std::string("docs") + '\0' + "doc-2";

KeyringRecord one_version() {
  KeyringRecord r;
  r.current = 1;
  r.versions.push_back(KeyVersionRecord{1, 1000, 16, random_key()});
  return r;
}
}  // namespace

TEST_CASE("seal and unseal round trip at several sizes", "[crypto][barrier]") {
  Keyring kr;
  kr.apply(one_version());
  for (size_t n :
       {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{1000}, size_t{65536}, size_t{1} << 20}) {
    std::string pt(n, '\0');
    for (size_t i = 0; i < n; ++i) pt[i] = static_cast<char>(i * 7 + 3);
    const std::string sealed = kr.seal(kCtx, pt);
    CHECK(sealed.size() == n + kOverhead);
    CHECK(static_cast<uint8_t>(sealed[0]) == kFormatValue);
    CHECK(Keyring::version_of(sealed) == 1);
    if (n >= 16) CHECK(sealed.find(pt.substr(0, 16)) == std::string::npos);
    CHECK(kr.unseal(kCtx, sealed) == pt);
  }
  // Random nonces: the same plaintext seals differently every time.
  CHECK(kr.seal(kCtx, "same") != kr.seal(kCtx, "same"));
}

TEST_CASE("flipping any byte of a sealed value makes unseal fail", "[crypto][barrier]") {
  Keyring kr;
  kr.apply(one_version());
  const std::string sealed = kr.seal(kCtx, "confidential quarterly numbers");
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
      std::string t = sealed;
      t[i] = static_cast<char>(static_cast<uint8_t>(t[i]) ^ bit);
      INFO("byte " << i);
      CHECK_THROWS_AS(kr.unseal(kCtx, t), UnsealError);
    }
  }
  // Truncation anywhere fails too, as does an appended byte.
  for (size_t n = 0; n < sealed.size(); ++n)
    CHECK_THROWS_AS(kr.unseal(kCtx, sealed.substr(0, n)), UnsealError);
  CHECK_THROWS_AS(kr.unseal(kCtx, sealed + "x"), UnsealError);
}

TEST_CASE("a value moved to another key does not unseal", "[crypto][barrier]") {
  Keyring kr;
  kr.apply(one_version());
  const std::string sealed = kr.seal(kCtx, "value of doc-1");
  CHECK_THROWS_AS(kr.unseal(kOtherCtx, sealed), UnsealError);
  CHECK_THROWS_AS(kr.unseal(std::string("other") + '\0' + "doc-1", sealed), UnsealError);
  CHECK_THROWS_AS(kr.unseal("", sealed), UnsealError);
}

TEST_CASE("rotation keeps old versions readable and version swaps fail", "[crypto][barrier]") {
  Keyring kr;
  kr.apply(one_version());
  const std::string v1 = kr.seal(kCtx, "written under version 1");
  kr.apply(kr.with_new_version(random_key(), 2000, 16));
  CHECK(kr.current_version() == 2);
  CHECK(kr.rewrap_pending());
  const std::string v2 = kr.seal(kCtx, "written under version 2");
  CHECK(Keyring::version_of(v1) == 1);
  CHECK(Keyring::version_of(v2) == 2);
  CHECK(kr.unseal(kCtx, v1) == "written under version 1");
  CHECK(kr.unseal(kCtx, v2) == "written under version 2");
  CHECK(kr.used(1) == 1);
  CHECK(kr.used(2) == 1);

  // Relabel a version-1 value as version 2 (and back): the AAD binds the version.
  std::string relabel = v1;
  relabel[4] = 2;
  CHECK_THROWS_AS(kr.unseal(kCtx, relabel), UnsealError);
  relabel = v2;
  relabel[4] = 1;
  CHECK_THROWS_AS(kr.unseal(kCtx, relabel), UnsealError);
}

TEST_CASE("an unknown key version is refused", "[crypto][barrier]") {
  Keyring kr;
  kr.apply(one_version());
  std::string s = kr.seal(kCtx, "x");
  s[4] = 9;
  CHECK_THROWS_WITH(kr.unseal(kCtx, s), Catch::Contains("unknown key version 9"));
  Keyring empty;
  CHECK_FALSE(empty.loaded());
  CHECK_THROWS_AS(empty.seal(kCtx, "x"), CryptoError);
}

TEST_CASE("the keyring record round-trips and rejects damage", "[crypto][keyring]") {
  Keyring kr;
  kr.apply(one_version());
  kr.apply(kr.with_new_version(random_key(), 5, 32));
  for (int i = 0; i < 5; ++i) (void)kr.seal(kCtx, "x");
  const KeyringRecord rec = kr.reservation(32);
  const std::string bytes = serialize_keyring(rec);
  const KeyringRecord back = parse_keyring(bytes);
  REQUIRE(back.versions.size() == 2);
  CHECK(back.current == 2);
  CHECK(back.rewrap_pending);
  CHECK(back.versions[1].reserved == 5 + 32);
  CHECK(back.versions[0].key == rec.versions[0].key);

  // After a restart, counting resumes at the reservation: it can only over-count.
  Keyring restarted;
  restarted.load(back);
  CHECK(restarted.used(2) == 37);
  const std::string old = kr.seal(kCtx, "survives a restart");
  CHECK(restarted.unseal(kCtx, old) == "survives a restart");

  CHECK_THROWS_AS(parse_keyring(bytes.substr(0, bytes.size() - 1)), CryptoError);
  CHECK_THROWS_AS(parse_keyring("XXXX" + bytes.substr(4)), CryptoError);
  std::string bad_current = bytes;
  bad_current[7] = 7;  // names version 7, which it does not hold
  CHECK_THROWS_AS(parse_keyring(bad_current), CryptoError);
}

TEST_CASE("the keyring row is sealed with the root key and bound to its context", "[crypto][keyring]") {
  const Key root = random_key();
  const std::string sealed = seal_with_root(root, kKeyringContext, "keyring bytes");
  CHECK(static_cast<uint8_t>(sealed[0]) == kFormatKeyring);
  CHECK(unseal_with_root(root, kKeyringContext, sealed) == "keyring bytes");
  CHECK_THROWS_WITH(unseal_with_root(random_key(), kKeyringContext, sealed),
                    Catch::Contains("the root key does not open the keyring"));
  CHECK_THROWS_AS(unseal_with_root(root, kCtx, sealed), UnsealError);
  // A data value is not a keyring and vice versa.
  Keyring kr;
  kr.apply(one_version());
  CHECK_THROWS_AS(unseal_with_root(root, kKeyringContext, kr.seal(kKeyringContext, "x")), UnsealError);
  CHECK_THROWS_AS(kr.unseal(kKeyringContext, sealed), UnsealError);
}

TEST_CASE("AES-256-GCM matches the NIST GCM test vector", "[crypto][aead]") {
  // McGrew & Viega GCM spec, test case 14: 256-bit zero key, zero IV, one zero block.
  Key k{};
  const uint8_t iv[12] = {};
  std::string out;
  gcm_seal(k, iv, "", std::string(16, '\0'), out);
  const uint8_t expect[32] = {0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e, 0x07, 0x4e, 0xc5,
                              0xd3, 0xba, 0xf3, 0x9d, 0x18, 0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99,
                              0x6b, 0xf0, 0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19};
  CHECK(out == std::string(reinterpret_cast<const char*>(expect), 32));
  std::string back;
  CHECK(gcm_open(k, iv, "", out, back));
  CHECK(back == std::string(16, '\0'));
}

TEST_CASE("base64 is strict", "[crypto][aead]") {
  CHECK(b64encode("") == "");
  CHECK(b64encode("f") == "Zg==");
  CHECK(b64encode("foobar") == "Zm9vYmFy");
  CHECK(b64decode("Zg==") == std::optional<std::string>("f"));
  CHECK(b64decode("Zm8=") == std::optional<std::string>("fo"));
  CHECK(b64decode("Zm9vYmFy") == std::optional<std::string>("foobar"));
  CHECK_FALSE(b64decode("Zg="));
  CHECK_FALSE(b64decode("Z!=="));
  CHECK_FALSE(b64decode("Zg==Zg=="));
  CHECK_FALSE(b64decode("Zm9v YmFy"));
}

TEST_CASE("config validation names the key and refuses weak settings", "[crypto][config]") {
  const std::string good = b64encode(std::string(32, 'k'));
  auto cfg = parse_config(R"({"root_key":")" + good + R"("})");
  CHECK(cfg.rotate_after_encryptions == (uint64_t{1} << 30));
  CHECK(cfg.rewrap_batch == 500);
  CHECK(cfg.root_key[0] == 'k');
  CHECK_THROWS_WITH(parse_config("{}"), Catch::Contains("root_key is required"));
  CHECK_THROWS_WITH(parse_config(R"({"root_key":")" + b64encode(std::string(16, 'k')) + R"("})"),
                    Catch::Contains("exactly 32 bytes, it decodes to 16"));
  CHECK_THROWS_WITH(parse_config(R"({"root_key":"not base64!"})"), Catch::Contains("not valid base64"));
  CHECK_THROWS_WITH(parse_config(R"({"root_key":")" + good + R"(","rotate_after":5})"),
                    Catch::Contains("unknown key 'rotate_after'"));
  CHECK_THROWS_WITH(parse_config(R"({"root_key":")" + good + R"(","rotate_after_encryptions":4294967297})"),
                    Catch::Contains("at most 2^32"));
  CHECK(parse_config(R"({"root_key":")" + good + R"(","rotate_after_encryptions":4294967296})")
            .rotate_after_encryptions == (uint64_t{1} << 32));
  CHECK_THROWS_WITH(parse_config(R"({"root_key":")" + good + R"(","rewrap_batch":0})"),
                    Catch::Contains("rewrap_batch"));
  CHECK(parse_config(R"({"root_key":")" + good + R"(","min_rsa_bits":3072})").min_rsa_bits == 3072);
  CHECK_THROWS_WITH(parse_config(R"({"root_key":")" + good + R"(","min_rsa_bits":1024})"),
                    Catch::Contains("never below 2048"));
  CHECK_THROWS_WITH(parse_config(R"({"root_key":")" + good + R"(","new_root_key":"c2hvcnQ="})"),
                    Catch::Contains("new_root_key must decode to exactly 32 bytes, it decodes to 5"));
  const std::string other = b64encode(std::string(32, 'n'));
  CHECK(parse_config(R"({"root_key":")" + good + R"(","new_root_key":")" + other + R"("})")
            .new_root_key->at(0) == 'n');
  CHECK_FALSE(parse_config(R"({"root_key":")" + good + R"("})").new_root_key.has_value());
  CHECK(parse_config(R"({"root_key":")" + good + R"(","key_chain_rotate_after_s":60})")
            .key_chain_rotate_after_s == 60);
  CHECK_THROWS_WITH(parse_config(R"({"root_key":")" + good + R"(","key_chain_rotate_after_s":0})"),
                    Catch::Contains("key_chain_rotate_after_s"));
  // The message never echoes the secret.
  try {
    parse_config(R"({"root_key":")" + b64encode(std::string(31, 'k')) + R"("})");
    FAIL("accepted a 31-byte key");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find(b64encode(std::string(31, 'k'))) == std::string::npos);
  }
}
