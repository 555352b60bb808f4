#include "evidence.hpp"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

namespace vellum::signing {

using nlohmann::json;

json record_to_json(const SignatureRecord& r) {
  json j = {{"id", r.id},
            {"statement", r.statement_bytes},
            {"document", r.statement.document},
            {"version", r.statement.version},
            {"content_sha256", r.statement.content_sha256},
            {"signer", r.statement.signer},
            {"intent", r.statement.intent},
            {"signed_at", r.statement.signed_at},
            {"key_id", r.statement.key_id},
            {"algorithm", r.statement.algorithm},
            {"key_custody", r.key_custody},
            {"signature", b64encode(r.signature)},
            {"public_key", r.public_key_pem},
            {"certificate", r.certificate_pem},
            {"timestamp", b64encode(r.timestamp)}};
  if (!r.statement.request.empty()) j["request"] = r.statement.request;
  if (!r.cms.empty()) j["cms"] = b64encode(r.cms);
  return j;
}

SignatureRecord record_from_json(const json& j) {
  if (!j.is_object()) throw InvalidInput("a signature record must be a JSON object");
  auto str = [&](const char* k, bool required) -> std::string {
    auto it = j.find(k);
    if (it == j.end()) {
      if (required) throw InvalidInput(std::string("signature record: missing '") + k + "'");
      return {};
    }
    if (!it->is_string()) throw InvalidInput(std::string("signature record: '") + k + "' must be a string");
    return it->get<std::string>();
  };
  SignatureRecord r;
  r.id = str("id", false);
  r.statement_bytes = str("statement", true);
  r.statement = parse_statement(r.statement_bytes);
  r.signature = b64decode(str("signature", true));
  r.public_key_pem = str("public_key", true);
  r.certificate_pem = str("certificate", false);
  r.cms = b64decode(str("cms", false));
  r.timestamp = b64decode(str("timestamp", false));
  r.key_custody = str("key_custody", false);
  return r;
}

bool cert_chains(X509* cert, X509* ca_cert, std::string* error) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  bool ok = store && ctx && X509_STORE_add_cert(store, ca_cert) == 1 &&
            X509_STORE_CTX_init(ctx, store, cert, nullptr) == 1 &&
            X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN) == 1;
  if (ok) {
    ok = X509_verify_cert(ctx) == 1;
    if (!ok && error) *error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  }
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  ossl_errors();
  return ok;
}

SignatureCheck check_record(const SignatureRecord& r, X509* ca_cert,
                            const std::optional<std::string>& expected) {
  SignatureCheck c;
  const Statement& s = r.statement;
  c.signer = s.signer;
  c.signed_at = s.signed_at;
  c.key_id = s.key_id;
  c.algorithm = s.algorithm;
  c.document = s.document;
  c.version = s.version;
  c.content_sha256 = s.content_sha256;
  auto fail = [&](const char* check, const std::string& why) {
    c.checks[check] = false;
    c.errors.push_back(why);
  };
  if (expected) {
    if (*expected == s.content_sha256)
      c.checks["content"] = true;
    else
      fail("content", "the document's SHA-256 differs from the one in the statement");
  }
  Pkey pub;
  try {
    pub = pubkey_from_pem(r.public_key_pem);
  } catch (const InvalidInput& e) {
    fail("signature", e.what());
  }
  const Algorithm alg = *parse_algorithm(s.algorithm);  // parse_statement checked it
  if (pub) {
    if (key_id(pub.get()) != s.key_id) {
      fail("signature", "the public key's SHA-256 is not the statement's key_id");
    } else {
      bool ok = false;
      try {
        ok = verify_signature(alg, pub.get(), r.statement_bytes, r.signature);
      } catch (const InvalidInput& e) {
        fail("signature", e.what());
      }
      if (ok)
        c.checks["signature"] = true;
      else if (!c.checks.contains("signature"))
        fail("signature", "the signature does not verify over the statement");
    }
  }
  if (!r.certificate_pem.empty() && pub) {
    try {
      Cert cert = cert_from_pem(r.certificate_pem);
      std::string why;
      if (EVP_PKEY_eq(X509_get0_pubkey(cert.get()), pub.get()) != 1)
        fail("certificate", "the certificate is for another key");
      else if (!cert_chains(cert.get(), ca_cert, &why))
        fail("certificate", "the certificate does not chain to the signing CA: " + why);
      else
        c.checks["certificate"] = true;
    } catch (const InvalidInput& e) {
      fail("certificate", e.what());
    }
  } else {
    fail("certificate", "no certificate");
  }
  if (!r.cms.empty()) {
    CmsCheck cms = cms_verify_detached(r.cms, r.statement_bytes, ca_cert);
    if (!cms.ok)
      fail("cms", cms.error);
    else if (cms.signer_key_id != s.key_id)
      fail("cms", "the CMS signer is not the statement's key");
    else
      c.checks["cms"] = true;
  }
  if (r.timestamp.empty()) {
    fail("timestamp", "no timestamp token");
  } else {
    TimestampCheck t = verify_timestamp(r.timestamp, r.signature, ca_cert);
    if (!t.ok) {
      fail("timestamp", t.error);
    } else {
      c.checks["timestamp"] = true;
      c.timestamp_time = rfc3339_ms(t.gen_time_ms);
    }
  }
  c.valid = c.errors.empty();
  return c;
}

json check_to_json(const SignatureCheck& c) {
  json j = {{"valid", c.valid},         {"signer", c.signer},
            {"signed_at", c.signed_at}, {"key_id", c.key_id},
            {"algorithm", c.algorithm}, {"document", c.document},
            {"version", c.version},     {"content_sha256", c.content_sha256},
            {"checks", c.checks},       {"errors", c.errors}};
  if (!c.timestamp_time.empty()) j["timestamp_time"] = c.timestamp_time;
  return j;
}

std::string evidence_readme() {
  return R"(Vellum evidence package (format vellum.evidence.v1)

This JSON file is self-contained. Nothing in it has to be taken on Vellum's word:
each check below uses only the openssl command line and jq. Let N be the
index of a signature (0, 1, ...) and E this file.

1. The document. Compute the SHA-256 of the exact version bytes you hold and
   compare it with the package:
     sha256sum document.bin
     jq -r .document.content_sha256 E
   Every statement names the same hash (jq -r ".signatures[N].content_sha256" E).

2. Trust anchors. ca.pem is the signing CA of the Vellum deployment; obtain
   its fingerprint from the operator by another channel and compare:
     jq -j .ca_certificate E > ca.pem
     openssl x509 -in ca.pem -noout -fingerprint -sha256

3. One signature. Extract the statement (exact bytes, no trailing newline:
   use jq -j), the signature, the public key and the certificate:
     jq -j ".signatures[N].statement" E > statement.json
     jq -r ".signatures[N].signature" E | base64 -d > signature.bin
     jq -j ".signatures[N].public_key" E > pub.pem
     jq -j ".signatures[N].certificate" E > cert.pem
   The statement is canonical JSON (RFC 8785 subset, see
   docs/formats/signature-statement.md); check its content_sha256, document,
   version, signer and signed_at. The key id is the SHA-256 of the public key:
     openssl pkey -pubin -in pub.pem -outform DER | sha256sum
   must equal the statement's key_id. Then, by algorithm:
     ecdsa-p256-sha256, ecdsa-secp256k1-sha256:
       openssl dgst -sha256 -verify pub.pem -signature signature.bin statement.json
     rsa-pss-sha256:
       openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
         -sigopt rsa_mgf1_md:sha256 -verify pub.pem -signature signature.bin statement.json
     ed25519:
       openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in statement.json -sigfile signature.bin
   The certificate binds the key to the signer and chains to the CA:
     openssl verify -CAfile ca.pem -purpose smimesign cert.pem
     openssl x509 -in cert.pem -noout -subject -pubkey   (same key as pub.pem)

4. CMS form (when "cms" is present): the same statement as a detached
   CMS SignedData that carries the signer's certificate:
     jq -r ".signatures[N].cms" E | base64 -d > signature.p7s
     openssl cms -verify -binary -inform DER -in signature.p7s \
       -content statement.json -CAfile ca.pem -out /dev/null

5. Trusted time. Each signature has an RFC 3161 time-stamp token from the
   deployment's time-stamp authority, over SHA-256 of the signature bytes:
     jq -r ".signatures[N].timestamp" E | base64 -d > timestamp.tsr
     openssl ts -verify -in timestamp.tsr -data signature.bin -CAfile ca.pem
     openssl ts -reply -in timestamp.tsr -text     (shows the Time stamp)
   The token proves the signature existed at that time.

6. The request. "request" lists the signers, their answers and the order of
   events as the Vellum signing plugin recorded them; "audit" says whether an
   excerpt of the host's signed audit log is included.
)";
}

}  // namespace vellum::signing
