// Per-document AES-256-GCM: round trip, and the AAD binds id and version.
#include <catch2/catch.hpp>

#include "doc_crypto.hpp"

using namespace vellum::editor;

namespace {
const std::string kKey(32, '\x42');
}

TEST_CASE("document content round trips and is not plaintext", "[editor][crypto]") {
  const std::string pt = "EDITOR-UNIT-MARKER " + std::string(1000, 'z');
  const std::string ct = seal(kKey, "doc-a", 3, pt);
  CHECK(ct.size() == pt.size() + 28);
  CHECK(ct.find("EDITOR-UNIT-MARKER") == std::string::npos);
  CHECK(open(kKey, "doc-a", 3, ct) == std::optional<std::string>(pt));
  CHECK(seal(kKey, "doc-a", 3, pt) != ct);  // fresh nonce each time
  CHECK(open(kKey, "doc-a", 1, seal(kKey, "doc-a", 1, "")) == std::optional<std::string>(""));
}

TEST_CASE("swapping the document id or version fails authentication", "[editor][crypto]") {
  const std::string ct = seal(kKey, "doc-a", 3, "secret");
  CHECK_FALSE(open(kKey, "doc-b", 3, ct));
  CHECK_FALSE(open(kKey, "doc-a", 2, ct));
  CHECK_FALSE(open(std::string(32, '\x43'), "doc-a", 3, ct));
  std::string tampered = ct;
  tampered[14] = static_cast<char>(tampered[14] ^ 1);
  CHECK_FALSE(open(kKey, "doc-a", 3, tampered));
  CHECK_FALSE(open(kKey, "doc-a", 3, ct.substr(0, 20)));
  CHECK(content_aad("a", 1) != content_aad("a", 2));
  CHECK(content_aad("ab", 1) != content_aad("a", 1));
}

TEST_CASE("hashes and base64", "[editor][crypto]") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  for (std::string s : {"", "a", "ab", "abc", "abcd"})
    CHECK(b64decode(b64encode(s)) == std::optional<std::string>(s));
  CHECK(b64encode("ab") == "YWI=");
  CHECK_FALSE(b64decode("abc"));
}
