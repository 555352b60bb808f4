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

// The RFC 3161 authority.
class Tsa {
 public:
  Tsa(KeyAndCert kc, std::string policy_oid);
  // A TimeStampResp (DER, status granted) whose token imprints SHA-256(data),
  // with genTime = now_ms (millisecond precision), a random 128-bit serial,
  // the TSA certificate included and ESSCertIDv2 (SHA-256). nonce: 8 bytes.
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
};
// Verifies a TimeStampResp (or bare token ContentInfo) over data with the CA
// as trust anchor: signature, TSA certificate chain and purpose, imprint.
TimestampCheck verify_timestamp(std::string_view tsr_der, std::string_view data, X509* ca_cert);

}  // namespace vellum::signing
