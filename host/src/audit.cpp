// The audit log: append-only, each record hash-chained to the previous one.
// Records live in the store's reserved "vellum.audit" namespace under
// big-endian sequence numbers, so they pass through the storage barrier.
// (Signed checkpoints, HMAC'd fields and `vellumd audit verify` build on this.)
#include <nlohmann/json.hpp>

#include "runtime.hpp"

namespace vellum::host {
namespace {
constexpr std::string_view kNs = "vellum.audit";
std::string seq_key(uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i, seq >>= 8) k[i] = static_cast<char>(seq & 0xff);
  return k;
}
}  // namespace

Audit::Audit(Store& store, bool fail_closed) : store_(store), fail_closed_(fail_closed) {}

void Audit::append(const Record& r, int64_t now_ms) {
  std::lock_guard lk(mu_);
  if (!loaded_) {
    ScanOptions last;
    last.reverse = true;
    last.limit = 1;
    store_.scan(kNs, last, [&](std::string_view, std::string_view value, uint64_t) {
      auto j = nlohmann::json::parse(value);
      seq_ = j.at("seq").get<uint64_t>();
      last_hash_ = j.at("hash").get<std::string>();
      return false;
    });
    if (last_hash_.empty()) last_hash_ = std::string(64, '0');
    loaded_ = true;
  }
  nlohmann::ordered_json j;
  j["seq"] = seq_ + 1;
  j["time_ms"] = now_ms;
  j["plugin"] = r.plugin;
  j["actor"] = r.actor;
  j["action"] = r.action;
  j["resource"] = r.resource;
  j["outcome"] = r.outcome == VELLUM_OUTCOME_SUCCESS  ? "success"
                 : r.outcome == VELLUM_OUTCOME_DENIED ? "denied"
                                                      : "failure";
  j["request_id"] = r.request_id;
  j["client_ip"] = r.client_ip;
  j["details"] = r.details_json.empty() ? nlohmann::ordered_json::object()
                                        : nlohmann::ordered_json::parse(r.details_json);
  j["prev"] = last_hash_;
  std::string body = j.dump();
  std::string hash = sha256_hex(last_hash_ + body);
  j["hash"] = hash;
  auto txn = store_.begin();
  txn->put(kNs, seq_key(seq_ + 1), j.dump(), VELLUM_VERSION_ABSENT);
  txn->commit();
  ++seq_;
  last_hash_ = hash;
}

}  // namespace vellum::host
