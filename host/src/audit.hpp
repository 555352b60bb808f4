// The tamper-evident audit log.
//
// It lives in its own SQLite database (<data>/audit.db, WAL, synchronous=FULL),
// outside the key-value store and its storage barrier, so `vellumd audit
// verify` can check it with no plugin loaded. Values that must stay searchable
// but not readable (e-mails, IPs, anything a caller marks sensitive) are
// stored as HMAC-SHA256 under a per-deployment key.
//
// Integrity has two layers:
//  * a hash chain: record n is stored as canonical JSON `body` and
//    hash_n = SHA-256(hash_{n-1} bytes ‖ body_n), hash_0 = 32 zero bytes, so a
//    modified, deleted, inserted or reordered record breaks the chain;
//  * signed checkpoints: every `checkpoint_every` records, every
//    `checkpoint_interval_ms` (via maybe_checkpoint) and at shutdown, an
//    Ed25519 signature over the RFC 6962 Merkle root of ALL records 1..n and
//    the chain hash of record n. A rewritten chain or a truncated tail then
//    contradicts a signature. Records after the last checkpoint are protected
//    by the chain only (truncating them is undetectable until the next one).
//
// The signature is only as strong as the public key it is checked with: the
// log stores its own key for convenience, but whoever can rewrite audit.db can
// replace that too. Keep public_key_pem() elsewhere and verify with it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace vellum::host {

struct AuditOptions {
  std::string db_path;               // <data>/audit.db
  std::string hmac_key_path;         // <data>/audit-hmac.key (32 random bytes, created 0600 on first use)
  std::string signing_key_path;      // <data>/audit-signing.pem (Ed25519 private key PEM, created 0600)
  uint64_t checkpoint_every = 1000;  // records
  uint64_t checkpoint_interval_ms = 60000;  // the host calls maybe_checkpoint() from a timer
  bool hmac_emails = false;                 // [audit] hmac_emails
  bool hmac_ips = false;                    // [audit] hmac_ips
};

struct AuditEvent {
  std::string plugin;       // "" for the host
  std::string actor;        // user id or "" (anonymous)
  std::string actor_email;  // optional; HMAC'd when hmac_emails
  std::string action, resource;
  std::string outcome;                            // "success" | "failure" | "denied"
  std::string request_id, client_ip, user_agent;  // client_ip HMAC'd when hmac_ips
  nlohmann::json details = nlohmann::json::object();
  // JSON pointers into details whose values are replaced by hmac() before
  // anything is written. Passwords, tokens and TOTP secrets never belong in a
  // record; pass them, if at all, only through these pointers.
  std::vector<std::string> sensitive;
  int64_t time_ms = 0;  // 0: now
};

class AuditLog {
 public:
  // Opens (creating if needed) the database and both keys. Throws
  // std::runtime_error when any of them is unusable.
  explicit AuditLog(AuditOptions);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Durable (fsynced) when it returns; returns the record's seq. Thread-safe:
  // concurrent appends are committed together (group commit). Throws
  // std::runtime_error on failure, and then nothing of the event was written.
  uint64_t append(AuditEvent e);
  // "hmac-sha256:<hex>" of v under the deployment key (to search by hash).
  std::string hmac(std::string_view v) const;
  // Signs a checkpoint over all records so far; no-op when none are new.
  void checkpoint();
  // Checkpoints when records are pending and checkpoint_interval_ms has
  // passed since the last checkpoint.
  void maybe_checkpoint(int64_t now_ms);
  std::string public_key_pem() const;  // Ed25519, SubjectPublicKeyInfo PEM

  struct Query {
    std::string actor, action, resource;  // exact match; "" = any
    int64_t since_ms = 0, until_ms = 0;   // time_ms in [since, until]; 0 = unbounded
    uint64_t after_seq = 0;               // cursor
    uint32_t limit = 100;                 // 1..1000 (0 = 100)
  };
  // {"records":[{...body fields, "prev", "hash"}...], "next_cursor": seq | null}
  nlohmann::json query(const Query&) const;

  uint64_t last_seq() const;

  // Records whose resource is `resource` or lies under resource + "/", with
  // seq > after_seq, at most `limit` (0 = 100, max 1000), each with its RFC
  // 6962 inclusion proof against the latest signed checkpoint (signed first
  // if records are pending). The JSON form is abi.h's audit_excerpt. Reads
  // every leaf up to the checkpoint: O(records). Throws
  // std::invalid_argument (bad arguments) or std::runtime_error.
  nlohmann::json excerpt(const std::string& resource, uint64_t after_seq, uint32_t limit);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct VerifyReport {
  bool ok = false;
  uint64_t records = 0, checkpoints = 0;
  std::string first_error;
  uint64_t first_bad_seq = 0;  // 0 when the error is not tied to a record
  // Signatures were checked against an externally supplied key (the strong
  // form); otherwise only against the keys stored in the database.
  bool external_key = false;
  uint64_t unsigned_tail = 0;  // records after the last checkpoint (chain only)
  std::vector<std::string> warnings;
};

// Independent of a running server: opens the database read-only; checks the
// signatures with the keys stored in it and, if given, with this PEM as well.
VerifyReport verify_audit(const std::string& db_path, const std::string& public_key_pem_or_empty);

// Streams records with time_ms >= since_ms. "jsonl": one record per line, the
// stored body with ,"prev":..,"hash":.. spliced in before its final '}' (drop
// those two members to get the hashed bytes back). "syslog": RFC 5424 lines
// `<PRI>1 TIMESTAMP HOSTNAME vellumd - ACTION [vellum@32473 seq=".." outcome=".."
// hash=".."] JSON`. Throws std::runtime_error (bad format, unreadable db).
void export_audit(const std::string& db_path, int64_t since_ms, const std::string& format, std::ostream& out);

// `vellumd audit verify [--public-key FILE] | export [--since ISO8601|unix_ms]
// [--format jsonl|syslog] | public-key`. args are the words after "audit".
// Returns the exit code: 0 ok, 1 verification failed or error, 2 usage.
int run_audit_command(const std::vector<std::string>& args, const std::string& data_dir);
// --since: unix ms, or ISO 8601 YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM] (UTC when
// no offset). Throws std::invalid_argument.
int64_t parse_audit_since(std::string_view s);

namespace audit_detail {
// RFC 6962 Merkle tree hash over the given leaves (exposed for tests), hex.
std::string merkle_root_hex(const std::vector<std::string>& leaves);
// The RFC 6962 audit path of leaves[index], hex, sibling first.
std::vector<std::string> inclusion_proof_hex(const std::vector<std::string>& leaves, size_t index);
}  // namespace audit_detail

}  // namespace vellum::host
