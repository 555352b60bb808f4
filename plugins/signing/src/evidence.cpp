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
                            const std::optional<std::string>& expected,
                            const std::vector<X509*>& extra_tsa_anchors) {
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
    std::vector<X509*> anchors{ca_cert};
    anchors.insert(anchors.end(), extra_tsa_anchors.begin(), extra_tsa_anchors.end());
    TimestampCheck t = verify_timestamp(r.timestamp, r.signature, anchors);
    if (!t.ok) {
      fail("timestamp", t.error);
    } else {
      c.checks["timestamp"] = true;
      c.timestamp_time = rfc3339_ms(t.gen_time_ms);
      c.timestamp_authority = t.tsa_subject;
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
  if (!c.timestamp_authority.empty()) j["timestamp_authority"] = c.timestamp_authority;
  return j;
}

std::string evidence_readme() {
  return R"README(Vellum evidence package (format vellum.evidence.v1)

This JSON file is self-contained. Nothing in it has to be taken on Vellum's word:
each check below uses only the openssl command line, jq and coreutils (and
xxd for the audit log). Let N be the index of a signature (0, 1, ...) and E
this file. Three things come from the operator by another channel: the
fingerprint of the signing CA (step 2), those of any external TSA's CAs
(step 5) and the audit log's public key (step 6).

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

5. Trusted time. Each signature has an RFC 3161 time-stamp token over
   SHA-256 of the signature bytes, from the deployment's time-stamp
   authority (built into Vellum, certified by ca.pem) or from the external
   TSA the operator configured (then "tsa_url" is present).
   tsa_ca_certificates holds the CA certificates a token may chain to: ca.pem
   and, with an external TSA, that TSA's CAs; check their fingerprints out of
   band as in step 2.
     jq -j .tsa_ca_certificates E > tsa-ca.pem
     jq -r ".signatures[N].timestamp" E | base64 -d > timestamp.tsr
     openssl ts -verify -in timestamp.tsr -data signature.bin -CAfile tsa-ca.pem
     openssl ts -reply -in timestamp.tsr -text     (shows the Time stamp)
   The token proves the signature existed at that time.

6. The audit log. "audit" holds the records of the Vellum host's audit log
   about this request (resource audit.request_resource: its creation, each
   signature and decline, earlier evidence downloads) and about the signed
   version (audit.document_resource, plugin "editor": created as, forced to,
   restored into or named). The log is append-only and hash-chained, and the
   host regularly signs a checkpoint (Ed25519) over the RFC 6962 Merkle root
   of all its records. Each record here comes with its inclusion proof
   against such a checkpoint (audit.excerpts[].checkpoint).

   Trust: obtain the audit log's public key from the operator by a channel
   other than this file (on the server: vellumd audit public-key) and save
   it as log.pub. audit.log_public_key is a copy to compare with; by itself
   it proves nothing.

   With this file saved as E and log.pub in the current directory, run the
   following with sh (it needs jq, openssl, xxd, base64, sha256sum, sed and
   cut); it prints "audit: OK" or names what failed:

     # ---- audit check (POSIX sh) ----
     fail() { echo "audit: FAILED: $*" >&2; exit 1; }
     node() { printf '01%s%s' "$1" "$2" | xxd -r -p | sha256sum | cut -c1-64; }
     # RFC 9162 2.1.3.2: does leaf hash $1 at index $2 in a tree of size $3,
     # with its audit path on stdin (one hex hash a line), fold to root $4?
     inclusion() {
       fn=$2; sn=$(($3 - 1)); r=$1
       while read -r p; do
         [ "$sn" -gt 0 ] || return 1
         if [ $((fn % 2)) -eq 1 ] || [ "$fn" -eq "$sn" ]; then
           r=$(node "$p" "$r")
           while [ $((fn % 2)) -eq 0 ] && [ "$fn" -ne 0 ]; do fn=$((fn / 2)); sn=$((sn / 2)); done
         else
           r=$(node "$r" "$p")
         fi
         fn=$((fn / 2)); sn=$((sn / 2))
       done
       [ "$sn" -eq 0 ] && [ "$r" = "$4" ]
     }
     g=0
     while [ "$g" -lt "$(jq '.audit.excerpts | length' E)" ]; do
       X=".audit.excerpts[$g]"
       jq -j "$X.checkpoint.signed_data" E > signed_data
       jq -r "$X.checkpoint.signature_b64" E | base64 -d > checkpoint.sig
       openssl pkeyutl -verify -pubin -inkey log.pub -rawin -in signed_data \
         -sigfile checkpoint.sig > /dev/null || fail "the signature of checkpoint $g"
       root=$(sed -n 's/^root=//p' signed_data)
       size=$(sed -n 's/^tree_size=//p' signed_data)
       i=0
       while [ "$i" -lt "$(jq "$X.records | length" E)" ]; do
         jq -j "$X.records[$i].body" E > record.json
         seq=$(jq -e .seq record.json) || fail "record $i of checkpoint $g is not a record"
         leaf=$( (printf '\000'; cat record.json) | sha256sum | cut -c1-64)
         jq -r "$X.records[$i].inclusion_proof[]" E |
           inclusion "$leaf" $((seq - 1)) "$size" "$root" || fail "record $seq is not in the signed log"
         i=$((i + 1))
       done
       g=$((g + 1))
     done
     jq -e '.request.id as $id | .document as $doc
       | [.audit.excerpts[].records[].body | fromjson
          | select(.resource | endswith("/signing-request/" + $id))] as $log
       | ([$log[] | select(.action == "signing.request.create" and .outcome == "success"
             and .details.version == $doc.version
             and .details.content_sha256 == $doc.content_sha256)] | length == 1)
         and all(.signatures[]; (.statement | fromjson) as $s | .id as $sig
           | $s.request == $id and $s.content_sha256 == $doc.content_sha256
             and ([$log[] | select(.action == "signing.request.sign" and .outcome == "success"
                   and .details.signature == $sig
                   and (($s.signer | startswith("user:") | not)
                        or .actor == ($s.signer | ltrimstr("user:"))))] | length == 1))' \
       E > /dev/null || fail "the records do not say what the package says"
     echo "audit: OK"
     # ---- end of audit check ----

   It checks (a) each checkpoint's Ed25519 signature over its exact
   signed_data; (b) each record: its leaf hash SHA-256(0x00 || body) folded
   along its audit path (node = SHA-256(0x01 || left || right), leaf index
   seq - 1) must reach root= at tree_size= of that signed_data; (c) the
   records say what the package says: one signing.request.create for this
   request naming the document's version and content hash, and for each
   signature, whose statement names this request and hash, one successful
   signing.request.sign naming its id (for Vellum users, by the signer's
   account; external signers have no account and sign with the link).
   Inclusion proves that the log the operator signed holds these exact
   records. It cannot prove that no other record about the request exists:
   the operator checks the whole log with vellumd audit verify. Records
   carry the client IP address and user agent of each step unless the
   operator has them HMAC'd ([audit] hmac_ips).

7. The request. "request" lists the signers, their answers and the order
   of events as the Vellum signing plugin recorded them.
)README";
}

}  // namespace vellum::signing
