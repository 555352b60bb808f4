// The plugin's CA, CMS detached signatures and RFC 3161 time-stamps, each
// also checked by `openssl cms -verify`, `openssl verify` and
// `openssl ts -verify`; full signature records and their tampering.
#include <catch2/catch.hpp>

#include <chrono>

#include "evidence.hpp"
#include "harness.hpp"
#include "keys.hpp"
#include "openssl_cli.hpp"
#include "pki.hpp"
#include "statement.hpp"
#include "tsa_client.hpp"

using namespace vellum::signing;
using signing_test::kAll;
using signing_test::openssl;
using signing_test::verify_args;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Pki {
  KeyAndCert ca = make_ca("Vellum test signing CA", now_ms());
  Tsa tsa{make_tsa(ca, "Vellum test TSA", now_ms()), "2.25.1"};
};

Pki& pki() {
  static Pki p;
  return p;
}

// A complete record as the plugin makes it for a server-managed key.
SignatureRecord make_record(Algorithm a, EVP_PKEY* key, const std::string& content, int64_t t) {
  SignatureRecord r;
  r.statement.algorithm = algorithm_name(a);
  r.statement.content_sha256 = sha256_hex(content);
  r.statement.document = "d0c";
  r.statement.intent = "approve";
  r.statement.key_id = key_id(key);
  r.statement.signed_at = rfc3339_ms(t);
  r.statement.signer = "user:alice";
  r.statement.version = 2;
  r.statement_bytes = canonical(r.statement);
  if (EVP_PKEY_up_ref(key) != 1) FAIL("up_ref");
  Signer s(a, Pkey(key));
  r.signature = s.sign(r.statement_bytes);
  r.public_key_pem = pubkey_pem(key);
  Cert cert = issue_signing_cert(pki().ca, key, "user:alice", "alice@example.com", t);
  r.certificate_pem = cert_pem(cert.get());
  if (cms_supported(a)) r.cms = cms_sign_detached(key, cert.get(), r.statement_bytes);
  r.timestamp = pki().tsa.stamp(r.signature, t, "12345678");
  r.key_custody = "server";
  return r;
}

}  // namespace

TEST_CASE("The CA and TSA certificates pass openssl's own checks") {
  vt::TempDir dir;
  vt::write_file(dir / "ca.pem", cert_pem(pki().ca.cert.get()));
  vt::write_file(dir / "tsa.pem", cert_pem(pki().tsa.cert()));
  auto v = openssl({"verify", "-CAfile", dir / "ca.pem", "-purpose", "timestampsign", dir / "tsa.pem"});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
  auto text = openssl({"x509", "-in", dir / "tsa.pem", "-noout", "-ext", "extendedKeyUsage"});
  CHECK(text.out.find("critical") != std::string::npos);
  CHECK(text.out.find("Time Stamping") != std::string::npos);
  CHECK_NOTHROW(check_ca(pki().ca));
  KeyAndCert tsa2 = make_tsa(pki().ca, "t", now_ms());
  CHECK_NOTHROW(check_tsa(tsa2, pki().ca.cert.get()));
  // A user certificate is not a TSA certificate, and a foreign CA is refused.
  KeyAndCert other_ca = make_ca("other", now_ms());
  CHECK_THROWS_AS(check_tsa(tsa2, other_ca.cert.get()), InvalidInput);
  KeyAndCert mismatched{generate_key(Algorithm::EcdsaP256), make_ca("x", now_ms()).cert};
  CHECK_THROWS_AS(check_ca(mismatched), InvalidInput);
}

TEST_CASE("CMS detached signatures verify with openssl cms for every algorithm it supports") {
  for (Algorithm a : kAll) {
    DYNAMIC_SECTION(algorithm_name(a)) {
      if (!cms_supported(a)) {
        // OpenSSL 3.0 itself refuses Ed25519 in CMS, so the plugin omits the form.
        Pkey key = generate_key(a);
        Cert cert = issue_signing_cert(pki().ca, key.get(), "user:alice", "", now_ms());
        CHECK_THROWS_AS(cms_sign_detached(key.get(), cert.get(), "x"), InvalidInput);
        vt::TempDir dir;
        vt::write_file(dir / "key.pem", privkey_pem(key.get()));
        vt::write_file(dir / "cert.pem", cert_pem(cert.get()));
        vt::write_file(dir / "m", "x");
        CHECK(openssl({"cms", "-sign", "-binary", "-in", dir / "m", "-signer", dir / "cert.pem", "-inkey",
                       dir / "key.pem", "-outform", "DER", "-out", dir / "m.p7s"})
                  .exit_code != 0);
        continue;
      }
      vt::TempDir dir;
      Pkey key = generate_key(a, 2048);
      SignatureRecord r = make_record(a, key.get(), "version bytes", now_ms());
      vt::write_file(dir / "ca.pem", cert_pem(pki().ca.cert.get()));
      vt::write_file(dir / "statement.json", r.statement_bytes);
      vt::write_file(dir / "signature.p7s", r.cms);
      vt::write_file(dir / "cert.pem", r.certificate_pem);
      auto cms =
          openssl({"cms", "-verify", "-binary", "-inform", "DER", "-in", dir / "signature.p7s", "-content",
                   dir / "statement.json", "-CAfile", dir / "ca.pem", "-out", dir / "out.bin"});
      INFO(cms.out << cms.err);
      CHECK(cms.exit_code == 0);
      CHECK(cms.err.find("Verification successful") != std::string::npos);
      auto chain = openssl({"verify", "-CAfile", dir / "ca.pem", "-purpose", "smimesign", dir / "cert.pem"});
      CHECK(chain.exit_code == 0);
      CHECK(cms_verify_detached(r.cms, r.statement_bytes, pki().ca.cert.get()).ok);
      // Tampered content: openssl and the plugin both refuse.
      std::string tampered = r.statement_bytes;
      tampered[tampered.find("user:alice") + 5] = 'm';
      vt::write_file(dir / "statement.json", tampered);
      auto bad =
          openssl({"cms", "-verify", "-binary", "-inform", "DER", "-in", dir / "signature.p7s", "-content",
                   dir / "statement.json", "-CAfile", dir / "ca.pem", "-out", dir / "out.bin"});
      CHECK(bad.exit_code != 0);
      CHECK_FALSE(cms_verify_detached(r.cms, tampered, pki().ca.cert.get()).ok);
      // Another CA does not vouch for it.
      KeyAndCert other = make_ca("other", now_ms());
      CHECK_FALSE(cms_verify_detached(r.cms, r.statement_bytes, other.cert.get()).ok);
    }
  }
}

TEST_CASE("Client-held ECDSA and RSA-PSS signatures are wrapped into CMS that openssl accepts") {
  for (Algorithm a : {Algorithm::EcdsaP256, Algorithm::EcdsaSecp256k1, Algorithm::RsaPss}) {
    DYNAMIC_SECTION(algorithm_name(a)) {
      vt::TempDir dir;
      Pkey client = generate_key(a, 2048);  // stands for a key that never leaves the client
      Pkey pub = pubkey_from_pem(pubkey_pem(client.get()));
      Cert cert = issue_signing_cert(pki().ca, pub.get(), "user:bob", "", now_ms());
      const std::string content = "{\"statement\":1}";
      Signer s(a, privkey_from_pem(privkey_pem(client.get())));
      const std::string sig = s.sign(content);
      const std::string cms = cms_wrap_signature(cert.get(), a, content, sig);
      vt::write_file(dir / "ca.pem", cert_pem(pki().ca.cert.get()));
      vt::write_file(dir / "content", content);
      vt::write_file(dir / "sig.p7s", cms);
      auto v = openssl({"cms", "-verify", "-binary", "-inform", "DER", "-in", dir / "sig.p7s", "-content",
                        dir / "content", "-CAfile", dir / "ca.pem", "-out", dir / "out"});
      INFO(v.out << v.err);
      CHECK(v.exit_code == 0);
      CHECK(cms_verify_detached(cms, content, pki().ca.cert.get()).ok);
      CHECK_FALSE(cms_verify_detached(cms, content + " ", pki().ca.cert.get()).ok);
      std::string bad = sig;
      bad[bad.size() - 3] ^= 0x40;
      CHECK_THROWS_AS(cms_wrap_signature(cert.get(), a, content, bad), InvalidInput);
    }
  }
}

TEST_CASE("RFC 3161 tokens from the built-in TSA verify with openssl ts") {
  vt::TempDir dir;
  const int64_t t = 1795000000123;  // an injected clock: genTime is exactly this
  const std::string data = "signature bytes";
  const std::string tsr = pki().tsa.stamp(data, t, "abcdefgh");
  TimestampCheck c = verify_timestamp(tsr, data, pki().ca.cert.get());
  INFO(c.error);
  REQUIRE(c.ok);
  CHECK(c.gen_time_ms == t);
  CHECK_FALSE(c.serial_hex.empty());
  CHECK(pki().tsa.stamp(data, t, "abcdefgh") != tsr);  // fresh serial each time
  vt::write_file(dir / "ca.pem", cert_pem(pki().ca.cert.get()));
  vt::write_file(dir / "data", data);
  vt::write_file(dir / "token.tsr", tsr);
  auto v =
      openssl({"ts", "-verify", "-in", dir / "token.tsr", "-data", dir / "data", "-CAfile", dir / "ca.pem"});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("Verification: OK") != std::string::npos);
  auto text = openssl({"ts", "-reply", "-in", dir / "token.tsr", "-text"});
  CHECK(text.out.find("Nov 18 11:06:40.123 2026 GMT") != std::string::npos);
  CHECK(text.out.find("Policy OID: 2.25.1") != std::string::npos);
  // Other data, or a tampered token, is refused by both.
  vt::write_file(dir / "data", data + "!");
  CHECK(openssl({"ts", "-verify", "-in", dir / "token.tsr", "-data", dir / "data", "-CAfile", dir / "ca.pem"})
            .exit_code != 0);
  CHECK_FALSE(verify_timestamp(tsr, data + "!", pki().ca.cert.get()).ok);
  std::string bad = tsr;
  bad[bad.size() - 10] ^= 0x01;
  CHECK_FALSE(verify_timestamp(bad, data, pki().ca.cert.get()).ok);
  CHECK_FALSE(verify_timestamp("junk", data, pki().ca.cert.get()).ok);
  CHECK_THROWS_AS(Tsa(make_tsa(pki().ca, "t", t), "not an oid"), InvalidInput);
}

TEST_CASE("The TSA answers RFC 3161 queries from any client, and a client checks every reply") {
  vt::TempDir dir;
  const int64_t t = now_ms();
  const std::string data = "bytes to stamp";
  vt::write_file(dir / "data", data);
  vt::write_file(dir / "ca.pem", cert_pem(pki().ca.cert.get()));
  // A query made by the openssl command line, answered by respond().
  for (const char* md : {"-sha256", "-sha512"}) {
    INFO(md);
    REQUIRE(openssl({"ts", "-query", "-data", dir / "data", md, "-cert", "-out", dir / "q.tsq"}).exit_code ==
            0);
    vt::write_file(dir / "r.tsr", pki().tsa.respond(vt::read_file(dir / "q.tsq"), t));
    auto v = openssl(
        {"ts", "-verify", "-in", dir / "r.tsr", "-queryfile", dir / "q.tsq", "-CAfile", dir / "ca.pem"});
    INFO(v.out << v.err);
    CHECK(v.exit_code == 0);
  }
  // SHA-1 is refused the RFC 3161 way: a rejection with badAlg, not an error.
  REQUIRE(openssl({"ts", "-query", "-data", dir / "data", "-sha1", "-out", dir / "q1.tsq"}).exit_code == 0);
  vt::write_file(dir / "r1.tsr", pki().tsa.respond(vt::read_file(dir / "q1.tsq"), t));
  auto text = openssl({"ts", "-reply", "-in", dir / "r1.tsr", "-text"});
  CHECK_THAT(text.out, Catch::Contains("Status: Rejected"));
  CHECK_THAT(text.out, Catch::Contains("unrecognized or unsupported algorithm"));
  CHECK_THROWS_AS(pki().tsa.respond("not DER", t), InvalidInput);
  CHECK_THROWS_AS(pki().tsa.respond(vt::read_file(dir / "q1.tsq") + "x", t), InvalidInput);

  // Our own queries: openssl reads them as a client's.
  const std::string query = make_timestamp_query(data, "nonce-01");
  vt::write_file(dir / "ours.tsq", query);
  auto q = openssl({"ts", "-query", "-in", dir / "ours.tsq", "-text"});
  CHECK_THAT(q.out, Catch::Contains("sha256"));
  CHECK_THAT(q.out, Catch::Contains("Certificate required: yes"));
  CHECK_THAT(q.out, Catch::Contains("0x6E6F6E63652D3031"));  // the nonce

  const std::vector<X509*> anchors{pki().ca.cert.get()};
  TimestampCheck ok = check_timestamp_reply(pki().tsa.respond(query, t), query, anchors);
  INFO(ok.error);
  CHECK(ok.ok);
  CHECK(ok.gen_time_ms == t);
  CHECK_THAT(ok.tsa_subject, Catch::Contains("Vellum test TSA"));
  // A reply to another query: same data but another nonce, or other data.
  auto fails = [&](const std::string& reply, const std::vector<X509*>& trust, const std::string& why) {
    TimestampCheck c = check_timestamp_reply(reply, query, trust);
    INFO(c.error);
    CHECK_FALSE(c.ok);
    CHECK_THAT(c.error, Catch::Contains(why));
  };
  fails(pki().tsa.respond(make_timestamp_query(data, "nonce-02"), t), anchors, "nonce mismatch");
  fails(pki().tsa.respond(make_timestamp_query("other", "nonce-01"), t), anchors, "message imprint mismatch");
  fails(pki().tsa.respond(vt::read_file(dir / "q1.tsq"), t), anchors, "status rejection, badAlg");
  KeyAndCert stranger = make_ca("Stranger CA", t);
  fails(pki().tsa.respond(query, t), {stranger.cert.get()}, "certificate verify error");
  fails("junk", anchors, "not a DER RFC 3161 TimeStampResp");
  std::string flipped = pki().tsa.respond(query, t);
  flipped[flipped.size() - 8] ^= 0x01;
  fails(flipped, anchors, "timestamp verification failed");
  // Several anchors: either CA will do.
  CHECK(check_timestamp_reply(pki().tsa.respond(query, t), query, {stranger.cert.get(), pki().ca.cert.get()})
            .ok);
}

TEST_CASE("PEM bundles of TSA CA certificates") {
  KeyAndCert other = make_ca("Second CA", now_ms());
  auto two = certs_from_pem_bundle(cert_pem(pki().ca.cert.get()) + "\n" + cert_pem(other.cert.get()));
  REQUIRE(two.size() == 2);
  CHECK(X509_cmp(two[1].get(), other.cert.get()) == 0);
  CHECK_THROWS_AS(certs_from_pem_bundle(""), InvalidInput);
  CHECK_THROWS_AS(certs_from_pem_bundle("no certificate here"), InvalidInput);
  std::string broken = cert_pem(other.cert.get());  // a line of its base64 missing: the DER is cut
  const size_t line2 = broken.find('\n', broken.find('\n') + 1) + 1;
  broken.erase(line2, broken.find('\n', line2) + 1 - line2);
  CHECK_THROWS_AS(certs_from_pem_bundle(cert_pem(pki().ca.cert.get()) + broken), InvalidInput);
}

TEST_CASE("External TSA URLs") {
  TsaUrl u = parse_tsa_url("https://tsa.example:8443/stamp?x=1", true);
  CHECK(u.tls);
  CHECK(u.host == "tsa.example");
  CHECK(u.port == "8443");
  CHECK(u.path == "/stamp?x=1");
  TsaUrl plain = parse_tsa_url("http://127.0.0.1/", false);
  CHECK_FALSE(plain.tls);
  CHECK(plain.port == "80");
  CHECK_THROWS_AS(parse_tsa_url("ftp://tsa.example/", false), InvalidInput);
  CHECK_THROWS_AS(parse_tsa_url("tsa.example", false), InvalidInput);
  CHECK_THROWS_AS(parse_tsa_url("https://user:pw@tsa.example/", false), InvalidInput);
  CHECK_THROWS_AS(parse_tsa_url("https://tsa.example/#f", false), InvalidInput);
  CHECK_THROWS_AS(parse_tsa_url("http://tsa.example/", true), InvalidInput);  // a token in the clear
  RemoteTsaOptions o;
  o.url = "https://tsa.example/";
  CHECK_THROWS_AS(RemoteTsa(std::move(o)), InvalidInput);  // no anchors
}

TEST_CASE("Signature records: every part is checked and tampering is caught") {
  const std::string content = "the exact bytes of version 2";
  for (Algorithm a : kAll) {
    DYNAMIC_SECTION(algorithm_name(a)) {
      Pkey key = generate_key(a, 2048);
      SignatureRecord r = make_record(a, key.get(), content, now_ms());
      X509* ca = pki().ca.cert.get();
      SignatureCheck ok = check_record(r, ca, sha256_hex(content));
      INFO(check_to_json(ok).dump());
      CHECK(ok.valid);
      CHECK(ok.signer == "user:alice");
      CHECK(ok.checks["signature"] == true);
      CHECK(ok.checks.value("cms", !cms_supported(a)) == true);
      CHECK(ok.checks["timestamp"] == true);
      CHECK(ok.checks["certificate"] == true);
      // The JSON form survives a round trip.
      SignatureRecord back = record_from_json(record_to_json(r));
      CHECK(check_record(back, ca, sha256_hex(content)).valid);
      // Another document's hash.
      CHECK_FALSE(check_record(r, ca, sha256_hex(content + "x")).valid);
      // Tampered statement (re-canonicalized so it parses): signature, CMS fail.
      SignatureRecord t1 = r;
      t1.statement.version = 3;
      t1.statement_bytes = canonical(t1.statement);
      auto c1 = check_record(t1, ca, std::nullopt);
      CHECK_FALSE(c1.valid);
      CHECK(c1.checks["signature"] == false);
      if (cms_supported(a)) CHECK(c1.checks["cms"] == false);
      // Tampered signature: signature and timestamp (over the signature) fail.
      SignatureRecord t2 = r;
      t2.signature[t2.signature.size() / 2] ^= 0x02;
      auto c2 = check_record(t2, ca, std::nullopt);
      CHECK_FALSE(c2.valid);
      CHECK(c2.checks["signature"] == false);
      CHECK(c2.checks["timestamp"] == false);
      // Tampered timestamp token.
      SignatureRecord t3 = r;
      t3.timestamp[t3.timestamp.size() - 5] ^= 0x01;
      CHECK_FALSE(check_record(t3, ca, std::nullopt).valid);
      // A token for other data (a valid token, wrong imprint).
      SignatureRecord t4 = r;
      t4.timestamp = pki().tsa.stamp("other", now_ms(), "");
      CHECK_FALSE(check_record(t4, ca, std::nullopt).valid);
      // A swapped public key (the attacker's own, whose signature verifies).
      SignatureRecord t5 = make_record(a, generate_key(a, 2048).get(), content, now_ms());
      t5.statement = r.statement;
      t5.statement_bytes = r.statement_bytes;
      auto c5 = check_record(t5, ca, std::nullopt);
      CHECK_FALSE(c5.valid);
      // Certificate from another CA.
      KeyAndCert other = make_ca("other", now_ms());
      SignatureRecord t6 = r;
      t6.certificate_pem = cert_pem(issue_signing_cert(other, key.get(), "user:alice", "", now_ms()).get());
      auto c6 = check_record(t6, ca, std::nullopt);
      CHECK_FALSE(c6.valid);
      CHECK(c6.checks["certificate"] == false);
    }
  }
}
