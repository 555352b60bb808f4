#include "workflow.hpp"

#include <algorithm>
#include <cctype>

#include "statement.hpp"

namespace vellum::signing {

using nlohmann::json;

json to_json(const SigningRequest& r, bool with_secrets) {
  json signers = json::array();
  for (const auto& s : r.signers) {
    json j = {{"kind", s.kind}, {"id", s.id}, {"status", s.status}};
    if (!s.signature_id.empty()) j["signature_id"] = s.signature_id;
    if (!s.reason.empty()) j["reason"] = s.reason;
    if (s.at_ms) j["at_ms"] = s.at_ms;
    if (with_secrets && !s.token_hash.empty()) {
      j["token_hash"] = s.token_hash;
      j["token_used"] = s.token_used;
    }
    signers.push_back(std::move(j));
  }
  json history = json::array();
  for (const auto& h : r.history)
    history.push_back({{"at_ms", h.at_ms}, {"event", h.event}, {"actor", h.actor}, {"detail", h.detail}});
  json j = {{"id", r.id},
            {"document", r.document},
            {"version", r.version},
            {"content_sha256", r.content_sha256},
            {"requester", r.requester},
            {"message", r.message},
            {"order", r.order},
            {"intent", r.intent},
            {"deadline_ms", r.deadline_ms},
            {"created_ms", r.created_ms},
            {"updated_ms", r.updated_ms},
            {"state", r.state},
            {"signers", signers},
            {"history", history}};
  if (r.closed_ms) j["closed_ms"] = r.closed_ms;
  if (!r.cancel_reason.empty()) j["cancel_reason"] = r.cancel_reason;
  if (with_secrets) {
    j["resource"] = r.resource;
    j["owner"] = r.owner;
    j["expiry_announced"] = r.expiry_announced;
    j["last_reminder_ms"] = r.last_reminder_ms;
  }
  return j;
}

SigningRequest request_from_json(const json& j) {
  SigningRequest r;
  r.id = j.at("id");
  r.document = j.at("document");
  r.version = j.at("version");
  r.content_sha256 = j.at("content_sha256");
  r.requester = j.at("requester");
  r.message = j.at("message");
  r.order = j.at("order");
  r.intent = j.value("intent", "approve");
  r.deadline_ms = j.at("deadline_ms");
  r.created_ms = j.at("created_ms");
  r.updated_ms = j.at("updated_ms");
  r.state = j.at("state");
  r.closed_ms = j.value("closed_ms", int64_t{0});
  r.cancel_reason = j.value("cancel_reason", "");
  r.resource = j.value("resource", "");
  r.owner = j.value("owner", "");
  r.expiry_announced = j.value("expiry_announced", false);
  r.last_reminder_ms = j.value("last_reminder_ms", int64_t{0});
  for (const auto& s : j.at("signers")) {
    SignerSlot slot;
    slot.kind = s.at("kind");
    slot.id = s.at("id");
    slot.status = s.at("status");
    slot.signature_id = s.value("signature_id", "");
    slot.reason = s.value("reason", "");
    slot.at_ms = s.value("at_ms", int64_t{0});
    slot.token_hash = s.value("token_hash", "");
    slot.token_used = s.value("token_used", false);
    r.signers.push_back(std::move(slot));
  }
  for (const auto& h : j.at("history"))
    r.history.push_back({h.at("at_ms"), h.at("event"), h.at("actor"), h.at("detail")});
  return r;
}

std::string effective_state(const SigningRequest& r, int64_t now_ms) {
  if ((r.state == "pending" || r.state == "partial") && now_ms > r.deadline_ms) return "expired";
  return r.state;
}

bool is_open(const SigningRequest& r, int64_t now_ms) {
  const std::string s = effective_state(r, now_ms);
  return s == "pending" || s == "partial";
}

static bool valid_email(const std::string& e) {
  auto at = e.find('@');
  if (e.size() > 254 || at == 0 || at == std::string::npos || at + 1 >= e.size() ||
      e.find('@', at + 1) != std::string::npos || e.find('.', at) == std::string::npos)
    return false;
  for (unsigned char c : e)
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == ',' || c == ':' || c == '<' || c == '>')
      return false;
  return true;
}

static bool valid_user_id(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

CreateInput parse_create(const json& b, int64_t now_ms) {
  if (!b.is_object()) throw InvalidInput("the body must be a JSON object");
  static const char* known[] = {"document",    "version", "signers", "order",
                                "deadline_ms", "message", "intent"};
  for (auto it = b.begin(); it != b.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) throw InvalidInput("unknown member '" + it.key() + "'");
  }
  CreateInput in;
  auto d = b.find("document");
  if (d == b.end() || !d->is_string() || !valid_user_id(d->get<std::string>()))
    throw InvalidInput("'document' must be a document id");
  in.document = d->get<std::string>();
  if (auto v = b.find("version"); v != b.end()) {
    if (!v->is_number_unsigned() || v->get<uint64_t>() < 1)
      throw InvalidInput("'version' must be an integer >= 1");
    in.version = v->get<uint64_t>();
  }
  auto s = b.find("signers");
  if (s == b.end() || !s->is_array() || s->empty() || s->size() > 50)
    throw InvalidInput("'signers' must be an array of 1 to 50 signers");
  for (size_t i = 0; i < s->size(); ++i) {
    const json& e = (*s)[i];
    const std::string where = "'signers/" + std::to_string(i) + "'";
    if (!e.is_object() || e.size() != 1)
      throw InvalidInput(where + " must be {\"user\": id} or {\"email\": address}");
    SignerSlot slot;
    if (auto u = e.find("user"); u != e.end() && u->is_string() && valid_user_id(u->get<std::string>())) {
      slot.kind = "user";
      slot.id = u->get<std::string>();
    } else if (auto m = e.find("email");
               m != e.end() && m->is_string() && valid_email(m->get<std::string>())) {
      slot.kind = "email";
      slot.id = m->get<std::string>();
      for (auto& c : slot.id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      throw InvalidInput(where + " must be {\"user\": id} or {\"email\": address}");
    }
    for (const auto& prev : in.signers)
      if (prev.principal() == slot.principal()) throw InvalidInput(where + " names a signer twice");
    in.signers.push_back(std::move(slot));
  }
  if (auto o = b.find("order"); o != b.end()) {
    if (!o->is_string() || (*o != "parallel" && *o != "sequential"))
      throw InvalidInput("'order' must be \"parallel\" or \"sequential\"");
    in.order = o->get<std::string>();
  }
  auto dl = b.find("deadline_ms");
  if (dl == b.end() || !dl->is_number_integer()) throw InvalidInput("'deadline_ms' (unix ms) is required");
  in.deadline_ms = dl->get<int64_t>();
  if (in.deadline_ms <= now_ms) throw InvalidInput("'deadline_ms' is not in the future");
  if (in.deadline_ms - now_ms > int64_t{366} * 86400 * 1000)
    throw InvalidInput("'deadline_ms' is more than a year away");
  if (auto m = b.find("message"); m != b.end()) {
    if (!m->is_string() || m->get<std::string>().size() > 4000)
      throw InvalidInput("'message' must be a string of at most 4000 bytes");
    in.message = m->get<std::string>();
  }
  if (auto t = b.find("intent"); t != b.end()) {
    if (!t->is_string() || !valid_intent(t->get<std::string>()))
      throw InvalidInput("'intent' must match [a-z][a-z0-9-]{0,31}");
    in.intent = t->get<std::string>();
  }
  return in;
}

std::optional<size_t> find_slot(const SigningRequest& r, const std::string& principal) {
  for (size_t i = 0; i < r.signers.size(); ++i)
    if (r.signers[i].principal() == principal) return i;
  return std::nullopt;
}

std::vector<size_t> awaiting(const SigningRequest& r) {
  std::vector<size_t> out;
  if (r.state != "pending" && r.state != "partial") return out;
  for (size_t i = 0; i < r.signers.size(); ++i) {
    if (r.signers[i].status != "pending") continue;
    out.push_back(i);
    if (r.order == "sequential") break;  // only the first pending signer's turn
  }
  return out;
}

void check_can_act(const SigningRequest& r, size_t slot, int64_t now_ms) {
  const std::string st = effective_state(r, now_ms);
  if (st != "pending" && st != "partial") throw StateConflict("the signing request is " + st);
  if (slot >= r.signers.size() || r.signers[slot].status != "pending")
    throw StateConflict("this signer has already answered");
  auto turn = awaiting(r);
  if (std::find(turn.begin(), turn.end(), slot) == turn.end())
    throw StateConflict("sequential order: an earlier signer has not signed yet");
}

void record_signed(SigningRequest& r, size_t slot, const std::string& signature_id, int64_t now_ms) {
  check_can_act(r, slot, now_ms);
  auto& s = r.signers[slot];
  s.status = "signed";
  s.signature_id = signature_id;
  s.at_ms = now_ms;
  s.token_used = !s.token_hash.empty() || s.token_used;
  r.updated_ms = now_ms;
  r.history.push_back({now_ms, "signed", s.principal(), signature_id});
  bool all = true;
  for (const auto& x : r.signers) all = all && x.status == "signed";
  r.state = all ? "complete" : "partial";
  if (all) r.closed_ms = now_ms;
}

void record_declined(SigningRequest& r, size_t slot, const std::string& reason, int64_t now_ms) {
  check_can_act(r, slot, now_ms);
  if (reason.empty() || reason.size() > 2000) throw InvalidInput("'reason' must be 1 to 2000 bytes");
  auto& s = r.signers[slot];
  s.status = "declined";
  s.reason = reason;
  s.at_ms = now_ms;
  s.token_used = !s.token_hash.empty() || s.token_used;
  r.state = "declined";
  r.updated_ms = r.closed_ms = now_ms;
  r.history.push_back({now_ms, "declined", s.principal(), reason});
}

void record_cancelled(SigningRequest& r, const std::string& actor, const std::string& reason,
                      int64_t now_ms) {
  const std::string st = effective_state(r, now_ms);
  if (st != "pending" && st != "partial") throw StateConflict("the signing request is " + st);
  if (reason.size() > 2000) throw InvalidInput("'reason' must be at most 2000 bytes");
  r.state = "cancelled";
  r.cancel_reason = reason;
  r.updated_ms = r.closed_ms = now_ms;
  r.history.push_back({now_ms, "cancelled", actor, reason});
}

}  // namespace vellum::signing
