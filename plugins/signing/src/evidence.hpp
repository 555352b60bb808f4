// Signature records, their independent verification, and the evidence
// package (docs/formats/evidence.md). Verification trusts only the CA
// certificate passed in, never the record's own claims: the statement is
// re-parsed in canonical form, the key id recomputed from the public key,
// the certificate chained to the CA, the CMS and the RFC 3161 token checked.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "keys.hpp"
#include "pki.hpp"
#include "statement.hpp"

namespace vellum::signing {

inline constexpr const char* kEvidenceFormat = "vellum.evidence.v1";

// What the record of one signature holds (JSON members of the same names;
// binary values base64).
struct SignatureRecord {
  std::string id;
  Statement statement;
  std::string statement_bytes;  // canonical(statement)
  std::string signature;        // raw bytes
  std::string public_key_pem;
  std::string certificate_pem;
  std::string cms;          // DER; empty when not available (client-held Ed25519)
  std::string timestamp;    // DER TimeStampResp over the signature bytes
  std::string key_custody;  // "server" | "client"
};

nlohmann::json record_to_json(const SignatureRecord& r);
// Throws InvalidInput on a malformed record (not on a bad signature).
SignatureRecord record_from_json(const nlohmann::json& j);

struct SignatureCheck {
  bool valid = false;
  std::vector<std::string> errors;
  nlohmann::json checks = nlohmann::json::object();  // name -> bool
  std::string signer, signed_at, timestamp_time, timestamp_authority, key_id, algorithm, document,
      content_sha256;
  uint64_t version = 0;
};
// expected_sha256: the hash the caller uploaded (or of the uploaded bytes);
// nullopt = no content check. The time-stamp token must chain to ca_cert
// (the built-in TSA) or to one of extra_tsa_anchors (an external TSA's CAs).
SignatureCheck check_record(const SignatureRecord& r, X509* ca_cert,
                            const std::optional<std::string>& expected_sha256,
                            const std::vector<X509*>& extra_tsa_anchors = {});
nlohmann::json check_to_json(const SignatureCheck& c);

// True if cert chains to ca with purpose S/MIME signing and is valid now.
bool cert_chains(X509* cert, X509* ca_cert, std::string* error);

// The README shipped inside every evidence package: how to verify it with
// the openssl command line and jq alone.
std::string evidence_readme();

}  // namespace vellum::signing
