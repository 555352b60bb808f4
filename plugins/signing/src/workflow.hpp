// Signing requests: who must sign which version, in which order, by when.
// Pure state-machine logic with the time passed in, so tests inject a clock;
// the plugin stores requests as JSON and persists every change with
// compare-and-set.
//
//   pending ──sign──▶ partial ──sign (last)──▶ complete
//      │                 │
//      ├──decline────────┴──▶ declined
//      ├──cancel (requester)─▶ cancelled
//      └──deadline passes────▶ expired (derived from the clock, never stored)
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "util.hpp"

namespace vellum::signing {

// The request is not in a state that allows the action (→ 409).
struct StateConflict : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SignerSlot {
  std::string kind;                // "user" or "email"
  std::string id;                  // user id or e-mail address
  std::string status = "pending";  // pending | signed | declined
  std::string signature_id;
  std::string reason;  // decline reason
  int64_t at_ms = 0;
  std::string token_hash;  // e-mail signers: hex SHA-256 of the one-time link token
  bool token_used = false;
  std::string principal() const { return kind + ":" + id; }  // "user:<id>" / "email:<addr>"
};

struct HistoryEntry {
  int64_t at_ms = 0;
  std::string event;  // created | signed | declined | cancelled | reminded | expired
  std::string actor;
  std::string detail;
};

struct SigningRequest {
  std::string id, document, resource, owner, content_sha256, requester, message;
  uint64_t version = 0;
  std::string order = "parallel";  // parallel | sequential
  std::string intent = "approve";  // the statements' intent unless a signer names another
  int64_t deadline_ms = 0, created_ms = 0, updated_ms = 0, closed_ms = 0;
  std::string state = "pending";  // stored: pending | partial | complete | declined | cancelled
  std::string cancel_reason;
  bool expiry_announced = false;
  int64_t last_reminder_ms = 0;
  std::vector<SignerSlot> signers;
  std::vector<HistoryEntry> history;
};

nlohmann::json to_json(const SigningRequest& r, bool with_secrets);
SigningRequest request_from_json(const nlohmann::json& j);

// The state as of now: "expired" once the deadline has passed on an open
// request.
std::string effective_state(const SigningRequest& r, int64_t now_ms);
bool is_open(const SigningRequest& r, int64_t now_ms);

// Parsed creation input (validated; throws InvalidInput naming the member).
struct CreateInput {
  std::string document;
  uint64_t version = 0;  // 0 = the current version
  std::vector<SignerSlot> signers;
  std::string order = "parallel";
  int64_t deadline_ms = 0;
  std::string message;
  std::string intent = "approve";
};
CreateInput parse_create(const nlohmann::json& body, int64_t now_ms);

// Index of the signer slot for principal ("user:<id>"/"email:<addr>"), if any.
std::optional<size_t> find_slot(const SigningRequest& r, const std::string& principal);
// Throws StateConflict unless slot may act now (open, pending, its turn).
void check_can_act(const SigningRequest& r, size_t slot, int64_t now_ms);
// The slots whose turn it is (all pending ones when parallel).
std::vector<size_t> awaiting(const SigningRequest& r);

void record_signed(SigningRequest& r, size_t slot, const std::string& signature_id, int64_t now_ms);
void record_declined(SigningRequest& r, size_t slot, const std::string& reason, int64_t now_ms);
void record_cancelled(SigningRequest& r, const std::string& actor, const std::string& reason, int64_t now_ms);

}  // namespace vellum::signing
