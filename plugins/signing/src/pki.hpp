// The plugin's small PKI, all OpenSSL 3: a CA that certifies users' signing
// keys (so a CMS SignedData carries a certificate a verifier can chain to the
// CA), CMS detached signatures over statements, and an RFC 3161 time-stamp
// authority (OpenSSL's TS_RESP_CTX) whose certificate the same CA issues with
// extendedKeyUsage critical timeStamping.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keys.hpp"
#include "util.hpp"

namespace vellum::signing {

struct KeyAndCert {
  Pkey key;
  Cert cert;
};

// A self-signed CA (ECDSA P-256, SHA-256): basicConstraints critical CA:TRUE
// pathlen:0, keyUsage critical keyCertSign cRLSign. Valid for `years` from now.
KeyAndCert make_ca(const std::string& common_name, int64_t now_ms, int years = 20);
// A TSA key and certificate issued by ca: extendedKeyUsage critical
// timeStamping, keyUsage critical digitalSignature nonRepudiation.
KeyAndCert make_tsa(const KeyAndCert& ca, const std::string& common_name, int64_t now_ms, int years = 10);
// Certifies a user's public key: CN = subject (e.g. "user:<id>"), keyUsage
// critical digitalSignature nonRepudiation, extendedKeyUsage emailProtection
// (what `openssl cms -verify` checks by default), an rfc822Name when email
// is non-empty.
Cert issue_signing_cert(const KeyAndCert& ca, EVP_PKEY* pub, const std::string& subject,
                        const std::string& email, int64_t now_ms, int years = 5);

// Throws InvalidInput unless the pair is usable as a CA (configured by an
// operator): key matches certificate, basicConstraints CA:TRUE.
void check_ca(const KeyAndCert& ca);
// Throws InvalidInput unless the pair is usable as a TSA issued by ca.
void check_tsa(const KeyAndCert& tsa, X509* ca_cert);

// Whether this OpenSSL can make and check CMS signatures for a (3.0 has no
// Ed25519 in CMS; Ed25519 signatures then come without the CMS form).
bool cms_supported(Algorithm a);

// CMS SignedData (DER), detached, over content, signed with key (which cert
// certifies): signed attributes contentType, messageDigest, signingTime;
// SHA-256; RSA keys sign RSASSA-PSS. Throws InvalidInput if !cms_supported.
std::string cms_sign_detached(EVP_PKEY* key, X509* cert, std::string_view content);

// A CMS SignedData (DER), detached, built around a signature made elsewhere
// (a client-held key) with NO signed attributes, so the SignerInfo signature
// is the signature over the content itself (RFC 5652 §5.4). The signature
// is checked against cert's key before it is wrapped.
std::string cms_wrap_signature(X509* cert, Algorithm alg, std::string_view content,
                               std::string_view signature);

struct CmsCheck {
  bool ok = false;
  std::string error;
  std::string signer_key_id;  // key id of the certificate that signed
  std::string signer_subject;
};
// Verifies a detached CMS over content against the CA (chain, purpose
// smimesign, signature).
CmsCheck cms_verify_detached(std::string_view cms_der, std::string_view content, X509* ca_cert);

// An RFC 3161 TimeStampReq (DER) for SHA-256(data) with certReq set and the
// nonce (big-endian bytes; empty = none), as `openssl ts -query` makes.
std::string make_timestamp_query(std::string_view data, std::string_view nonce);

// The RFC 3161 authority.
class Tsa {
 public:
  Tsa(KeyAndCert kc, std::string policy_oid);
  // Answers a client's TimeStampReq (DER) as an RFC 3161 server does: a
  // TimeStampResp (DER) that grants (genTime = now_ms, millisecond
  // precision, a random 128-bit serial, ESSCertIDv2 SHA-256, the TSA
  // certificate when certReq is set) or rejects with a failInfo (badAlg for
  // a digest other than SHA-256/384/512, unacceptedPolicy, ...). Throws
  // InvalidInput when query_der is not one DER TimeStampReq.
  std::string respond(std::string_view query_der, int64_t now_ms) const;
  // A granted TimeStampResp (DER) whose token imprints SHA-256(data).
  // nonce: 8 bytes.
  std::string stamp(std::string_view data, int64_t now_ms, std::string_view nonce) const;
  X509* cert() const { return kc_.cert.get(); }
  const std::string& policy() const { return policy_; }

 private:
  KeyAndCert kc_;
  std::string policy_;
};

struct TimestampCheck {
  bool ok = false;
  std::string error;
  int64_t gen_time_ms = 0;
  std::string serial_hex;
  std::string tsa_subject;  // the signing TSA certificate's subject (one line)
};
// Verifies a TimeStampResp over data: status granted, signature by a TSA
// certificate (extendedKeyUsage critical timeStamping) that chains to one
// of the anchors, imprint = SHA-256(data).
TimestampCheck verify_timestamp(std::string_view tsr_der, std::string_view data,
                                const std::vector<X509*>& anchors);
inline TimestampCheck verify_timestamp(std::string_view tsr_der, std::string_view data, X509* ca_cert) {
  return verify_timestamp(tsr_der, data, std::vector<X509*>{ca_cert});
}

// Checks a TSA's reply to our query (make_timestamp_query) as an RFC 3161
// client must: status granted, version, the same imprint and nonce as the
// query, and a token signed by a TSA that chains to one of the anchors.
TimestampCheck check_timestamp_reply(std::string_view reply_der, std::string_view query_der,
                                     const std::vector<X509*>& anchors);

// PEM text holding one or more certificates (a CA bundle); throws
// InvalidInput if there is none or one does not parse.
std::vector<Cert> certs_from_pem_bundle(std::string_view pem);

}  // namespace vellum::signing
