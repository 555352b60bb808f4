#include "keychain.hpp"

#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <set>

#include "envelope.hpp"

namespace vellum::crypto {
namespace {

using Json = nlohmann::json;

TransitError bad(const std::string& m) { return TransitError(VELLUM_ERR_INVALID_ARGUMENT, m); }
TransitError conflict(const std::string& m) { return TransitError(VELLUM_ERR_CONFLICT, m); }

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey pem_public(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                BIO_free);
  EVP_PKEY* k = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!k) throw TransitError(VELLUM_ERR_INTERNAL, "a published public key does not parse");
  return Pkey(k);
}

std::string key_bytes(const Key& k) { return std::string(reinterpret_cast<const char*>(k.data()), k.size()); }

bool has(const Json& arr, const std::string& v) { return std::find(arr.begin(), arr.end(), v) != arr.end(); }

Json& current_version(Json& rec) {
  const uint32_t cur = rec["current"];
  for (auto& v : rec["versions"])
    if (v["version"] == cur) return v;
  throw TransitError(VELLUM_ERR_INTERNAL, "chain record has no current version");
}

}  // namespace

std::optional<std::pair<std::string, uint64_t>> MemoryChainStore::load(std::string_view id) {
  std::lock_guard lk(mu_);
  auto it = rows.find(id);
  if (it == rows.end()) return std::nullopt;
  return it->second;
}
uint64_t MemoryChainStore::store(std::string_view id, std::string_view record, uint64_t expected) {
  std::lock_guard lk(mu_);
  auto it = rows.find(id);
  const uint64_t have = it == rows.end() ? 0 : it->second.second;
  if (have != expected) throw conflict("chain record changed concurrently");
  rows[std::string(id)] = {std::string(record), have + 1};
  return have + 1;
}
std::vector<std::string> MemoryChainStore::list() {
  std::lock_guard lk(mu_);
  std::vector<std::string> ids;
  for (const auto& [k, v] : rows) ids.push_back(k);
  return ids;
}

std::string keychain_aad(std::string_view chain_id, uint32_t version) {
  std::string s = "vellum.keychain.v1";
  s.push_back('\0');
  s += chain_id;
  s.push_back('\0');
  s += std::to_string(version);
  return s;
}

KeyChains::KeyChains(ChainStore& store, std::function<int64_t()> clock, PubkeysOf pubkeys, KidOwner kid_owner,
                     int64_t default_rotate_after_ms)
    : store_(store),
      clock_(std::move(clock)),
      pubkeys_(std::move(pubkeys)),
      kid_owner_(std::move(kid_owner)),
      default_rotate_ms_(default_rotate_after_ms) {}

bool KeyChains::valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

KeyChains::Loaded KeyChains::load(std::string_view id) {
  if (!valid_id(id)) throw TransitError(VELLUM_ERR_NOT_FOUND, "no such key chain");
  auto row = store_.load(id);
  if (!row) throw TransitError(VELLUM_ERR_NOT_FOUND, "no such key chain");
  Loaded l{Json::parse(row->first, nullptr, false), row->second};
  if (!l.rec.is_object()) throw TransitError(VELLUM_ERR_INTERNAL, "stored key chain record is damaged");
  return l;
}

void KeyChains::save(Loaded& l) { l.row = store_.store(l.rec["id"].get<std::string>(), l.rec.dump(), l.row); }

void KeyChains::retire_current(Json& rec) {
  if (rec["current"] == 0) return;
  current_version(rec)["retired_ms"] = clock_();
}

// managed: a fresh key, wrapped for every member with published keys and, for
// a chain under a team, by the team's current key.
Json KeyChains::new_version(Loaded& l, const std::string& reason) {
  Json& rec = l.rec;
  const std::string id = rec["id"];
  const uint32_t v = rec["current"].get<uint32_t>() + 1;
  Key k = random_key();
  const std::string aad = keychain_aad(id, v);
  const std::string kb = key_bytes(k);
  Json ver = {{"version", v}, {"created_ms", clock_()}, {"retired_ms", 0}, {"reason", reason}};
  Json wraps = Json::object();
  for (const auto& m : rec["members"]) {
    std::vector<Pkey> keys;
    std::vector<Recipient> to;
    for (const auto& pem : pubkeys_(m.get<std::string>())) {
      keys.push_back(pem_public(pem));
      to.push_back({keys.back().get()});
    }
    if (!to.empty()) wraps[m.get<std::string>()] = envelope_encrypt(kb, aad, to);
  }
  ver["wraps"] = wraps;
  const std::string parent = rec.value("parent", "");
  if (!parent.empty()) {
    const auto pl = load(parent);
    const uint32_t pv = pl.rec["current"];
    ChainRecipient pr{chain_kid(parent, pv), managed_key(parent, pv)};
    ver["parent_wrap"] = envelope_encrypt(kb, aad, {}, {pr});
    cleanse(pr.key.data(), pr.key.size());
  }
  ver["secret"] = b64encode(kb);
  cleanse(k.data(), k.size());
  retire_current(rec);
  rec["versions"].push_back(ver);
  rec["current"] = v;
  rec["rotation_due"] = nullptr;
  return ver;
}

void KeyChains::check_member_wrap(const std::string& id, uint32_t version, const std::string& user,
                                  const std::string& envelope) {
  std::vector<EnvelopeEntry> entries;
  try {
    entries = envelope_inspect(envelope);
  } catch (const EnvelopeError& e) {
    throw bad("the wrap for " + user + " is not a valid envelope: " + e.what());
  }
  for (const auto& e : entries) {
    if (e.alg == kChainWrapAlg) throw bad("a member's wrap must be addressed to the member's public keys");
    auto owner = kid_owner_(e.kid);
    if (!owner)
      throw bad("the wrap for " + user + " names an unknown key id (not in the public-key directory)");
    if (*owner != user) throw bad("the wrap for " + user + " is addressed to another user's key");
  }
  (void)id;
  (void)version;
}

void KeyChains::check_parent_wrap(const Json& rec, const std::string& envelope) {
  const std::string parent = rec["parent"];
  const auto pl = load(parent);
  if (!pl.rec["rotation_due"].is_null())
    throw conflict("the team key '" + parent + "' must be rotated first (" +
                   pl.rec["rotation_due"].get<std::string>() + ")");
  std::vector<EnvelopeEntry> entries;
  try {
    entries = envelope_inspect(envelope);
  } catch (const EnvelopeError& e) {
    throw bad(std::string("parent_wrap is not a valid envelope: ") + e.what());
  }
  const std::string want = chain_kid(parent, pl.rec["current"].get<uint32_t>());
  if (entries.size() != 1 || entries[0].alg != kChainWrapAlg || entries[0].kid != want)
    throw conflict("parent_wrap must be wrapped by the current team key version only (" + want + ")");
}

// Chains under a team follow its rotation: a removed member still holds the
// old team key, hence every document key it wrapped.
void KeyChains::cascade(const Json& rec, const std::string& reason, Change& ch) {
  for (const auto& c : rec.value("children", Json::array())) {
    Loaded cl;
    try {
      cl = load(c.get<std::string>());
    } catch (const TransitError&) {
      continue;
    }
    if (cl.rec["mode"] == "managed") {
      new_version(cl, reason);
      save(cl);
      ch.rotated.emplace_back(cl.rec["id"], cl.rec["current"]);
    } else {
      cl.rec["rotation_due"] = reason;
      save(cl);
      ch.marked_due.push_back(cl.rec["id"]);
    }
    cascade(cl.rec, reason, ch);
  }
}

KeyChains::Change KeyChains::create(const CreateSpec& s) {
  std::lock_guard lk(mu_);
  if (!valid_id(s.id)) throw bad("chain id must match [A-Za-z0-9_.-]{1,128}");
  if (s.kind != "team" && s.kind != "document") throw bad("kind must be team or document");
  if (s.mode != "managed" && s.mode != "e2ee") throw bad("mode must be managed or e2ee");
  if (s.owner.empty()) throw bad("a chain needs an owner");
  if (s.rotate_after_ms < 0) throw bad("rotate_after_ms must not be negative");
  Loaded parent;
  if (!s.parent.empty()) {
    if (s.kind != "document") throw bad("only document chains have a parent (a team)");
    parent = load(s.parent);
    if (parent.rec["kind"] != "team") throw bad("the parent must be a team key");
    if (parent.rec["mode"] != s.mode) throw bad("a document key has the mode of its team");
    if (!s.members.empty() || !s.wraps.empty())
      throw bad("a document under a team has no members of its own: the team's members read it");
  } else if (!s.parent_wrap.empty()) {
    throw bad("parent_wrap needs a parent");
  }
  if (store_.load(s.id)) throw conflict("a key chain with this id exists");

  Json members = Json::array();
  if (s.parent.empty()) {
    members.push_back(s.owner);
    for (const auto& m : s.members) {
      if (m.empty()) throw bad("member ids must not be empty");
      if (!has(members, m)) members.push_back(m);
    }
  }
  Loaded l;
  l.rec = {{"id", s.id},
           {"kind", s.kind},
           {"mode", s.mode},
           {"owner", s.owner},
           {"parent", s.parent},
           {"members", members},
           {"children", Json::array()},
           {"rotate_after_ms", s.rotate_after_ms ? s.rotate_after_ms : default_rotate_ms_},
           {"created_ms", clock_()},
           {"current", 0},
           {"rotation_due", nullptr},
           {"versions", Json::array()}};
  Change ch;
  if (s.mode == "managed") {
    if (!s.wraps.empty() || !s.parent_wrap.empty())
      throw bad("managed chains are keyed by the server: do not send wraps");
    new_version(l, "created");
    ch.rotated.emplace_back(s.id, 1);
  } else if (!s.wraps.empty() || !s.parent_wrap.empty()) {
    for (const auto& [u, env] : s.wraps) {
      if (!has(members, u)) throw bad("a wrap for " + u + ", who is not a member");
      check_member_wrap(s.id, 1, u, env);
    }
    if (!s.parent.empty()) {
      if (s.parent_wrap.empty()) throw bad("a document under a team needs parent_wrap");
      check_parent_wrap(l.rec, s.parent_wrap);
    }
    Json ver = {{"version", 1}, {"created_ms", clock_()}, {"retired_ms", 0}, {"reason", "created"}};
    ver["wraps"] = s.wraps;
    if (!s.parent.empty()) ver["parent_wrap"] = s.parent_wrap;
    l.rec["versions"].push_back(ver);
    l.rec["current"] = 1;
    ch.rotated.emplace_back(s.id, 1);
  } else {
    l.rec["rotation_due"] = "awaiting the first key version";
  }
  if (!s.parent.empty()) {
    // Register under the team before the chain exists: a dangling child id is
    // skipped by cascades, a child missed by one would keep an old key.
    parent.rec["children"].push_back(s.id);
    save(parent);
  }
  save(l);
  ch.chain = view_of(l.rec, s.owner, true);
  return ch;
}

KeyChains::Change KeyChains::add_member(std::string_view id, const std::string& user,
                                        const std::string& wrap) {
  std::lock_guard lk(mu_);
  Loaded l = load(id);
  if (!l.rec["parent"].get<std::string>().empty())
    throw bad("a document under a team has no members of its own: add the member to the team");
  if (user.empty()) throw bad("user_id is required");
  if (has(l.rec["members"], user)) throw conflict("already a member");
  l.rec["members"].push_back(user);
  const uint32_t cur = l.rec["current"];
  if (l.rec["mode"] == "managed") {
    if (!wrap.empty()) throw bad("managed chains are keyed by the server: do not send wraps");
    std::vector<Pkey> keys;
    std::vector<Recipient> to;
    for (const auto& pem : pubkeys_(user)) {
      keys.push_back(pem_public(pem));
      to.push_back({keys.back().get()});
    }
    if (!to.empty()) {
      Key k = managed_key(id, cur);
      current_version(l.rec)["wraps"][user] = envelope_encrypt(key_bytes(k), keychain_aad(id, cur), to);
      cleanse(k.data(), k.size());
    }
  } else if (!wrap.empty()) {
    if (cur == 0) throw conflict("the chain has no key version yet");
    check_member_wrap(std::string(id), cur, user, wrap);
    current_version(l.rec)["wraps"][user] = wrap;
  }
  save(l);
  return Change{view_of(l.rec, l.rec["owner"], true), {}, {}};
}

KeyChains::Change KeyChains::remove_member(std::string_view id, const std::string& user) {
  std::lock_guard lk(mu_);
  Loaded l = load(id);
  auto& m = l.rec["members"];
  if (!has(m, user)) throw TransitError(VELLUM_ERR_NOT_FOUND, "not a member");
  if (l.rec["owner"] == user) throw bad("the owner cannot be removed from the chain");
  m.erase(std::find(m.begin(), m.end(), user));
  save(l);
  return rotate(id, "member removed");
}

KeyChains::Change KeyChains::rotate(std::string_view id, const std::string& reason) {
  std::lock_guard lk(mu_);
  Loaded l = load(id);
  Change ch;
  if (l.rec["mode"] == "managed") {
    new_version(l, reason);
    save(l);
    ch.rotated.emplace_back(std::string(id), l.rec["current"]);
  } else {
    l.rec["rotation_due"] = reason;
    save(l);
    ch.marked_due.emplace_back(id);
  }
  cascade(l.rec, reason, ch);
  ch.chain = view_of(l.rec, l.rec["owner"], true);
  return ch;
}

KeyChains::Change KeyChains::add_version(std::string_view id, const std::map<std::string, std::string>& wraps,
                                         const std::string& parent_wrap, const std::string& reason) {
  std::lock_guard lk(mu_);
  Loaded l = load(id);
  if (l.rec["mode"] != "e2ee") throw bad("managed chains are rotated by the server (POST .../rotate)");
  const uint32_t v = l.rec["current"].get<uint32_t>() + 1;
  const bool child = !l.rec["parent"].get<std::string>().empty();
  if (child) {
    if (!wraps.empty()) throw bad("a document under a team is wrapped by the team key only (parent_wrap)");
    if (parent_wrap.empty()) throw bad("parent_wrap is required");
    check_parent_wrap(l.rec, parent_wrap);
  } else {
    if (!parent_wrap.empty()) throw bad("parent_wrap needs a parent");
    if (wraps.empty()) throw bad("wraps is required: the new key wrapped for each remaining member");
    for (const auto& [u, env] : wraps) {
      // Removed members get nothing new: only current members may hold a wrap.
      if (!has(l.rec["members"], u)) throw bad("a wrap for " + u + ", who is not a member");
      check_member_wrap(std::string(id), v, u, env);
    }
  }
  Json ver = {{"version", v}, {"created_ms", clock_()}, {"retired_ms", 0}, {"reason", reason}};
  ver["wraps"] = wraps;
  if (child) ver["parent_wrap"] = parent_wrap;
  retire_current(l.rec);
  l.rec["versions"].push_back(ver);
  l.rec["current"] = v;
  l.rec["rotation_due"] = nullptr;
  save(l);
  Change ch;
  ch.rotated.emplace_back(std::string(id), v);
  ch.chain = view_of(l.rec, l.rec["owner"], true);
  return ch;
}

KeyChains::Change KeyChains::put_wrap(std::string_view id, const std::string& user, const std::string& wrap) {
  std::lock_guard lk(mu_);
  Loaded l = load(id);
  if (l.rec["mode"] != "e2ee") throw bad("managed chains are keyed by the server: do not send wraps");
  if (!has(l.rec["members"], user)) throw TransitError(VELLUM_ERR_NOT_FOUND, "not a member");
  const uint32_t cur = l.rec["current"];
  if (cur == 0) throw conflict("the chain has no key version yet");
  check_member_wrap(std::string(id), cur, user, wrap);
  current_version(l.rec)["wraps"][user] = wrap;
  save(l);
  return Change{view_of(l.rec, l.rec["owner"], true), {}, {}};
}

std::vector<KeyChains::Change> KeyChains::rotate_due() {
  std::vector<Change> out;
  const int64_t now = clock_();
  for (const auto& id : store_.list()) {
    std::lock_guard lk(mu_);
    try {
      Loaded l = load(id);
      // Children follow their team's rotation, not a schedule of their own.
      if (!l.rec["parent"].get<std::string>().empty() || l.rec["current"] == 0) continue;
      const int64_t created = current_version(l.rec)["created_ms"];
      if (now - created < l.rec["rotate_after_ms"].get<int64_t>()) continue;
      if (l.rec["mode"] == "e2ee" && !l.rec["rotation_due"].is_null()) continue;
      out.push_back(rotate(id, "scheduled"));
    } catch (const TransitError&) {
      continue;  // deleted or changed concurrently: the next sweep sees it
    }
  }
  return out;
}

Json KeyChains::view_of(const Json& rec, const std::string& viewer, bool full) const {
  Json versions = Json::array();
  std::vector<std::string> pending;
  for (const auto& v : rec["versions"]) {
    Json e = {{"version", v["version"]},
              {"created_ms", v["created_ms"]},
              {"retired_ms", v["retired_ms"]},
              {"reason", v["reason"]},
              {"kid", chain_kid(rec["id"].get<std::string>(), v["version"])}};
    Json w = Json::object();
    for (const auto& [u, env] : v["wraps"].items())
      if (full || u == viewer) w[u] = env;
    e["wraps"] = w;
    if (v.contains("parent_wrap")) e["parent_wrap"] = v["parent_wrap"];
    versions.push_back(e);
  }
  if (rec["current"] != 0 && rec["parent"] == "")
    for (const auto& v : rec["versions"])
      if (v["version"] == rec["current"])
        for (const auto& m : rec["members"])
          if (!v["wraps"].contains(m.get<std::string>())) pending.push_back(m);
  return {{"id", rec["id"]},
          {"kind", rec["kind"]},
          {"mode", rec["mode"]},
          {"owner", rec["owner"]},
          {"parent", rec["parent"]},
          {"members", rec["members"]},
          {"children", rec["children"]},
          {"rotate_after_ms", rec["rotate_after_ms"]},
          {"created_ms", rec["created_ms"]},
          {"current_version", rec["current"]},
          {"rotation_due", rec["rotation_due"]},
          {"members_without_wrap", pending},
          {"versions", versions}};
}

Json KeyChains::view(std::string_view id, const std::string& viewer, bool full) {
  return view_of(load(id).rec, viewer, full);
}

Json KeyChains::raw(std::string_view id) { return load(id).rec; }

Key KeyChains::managed_key(std::string_view id, uint32_t version) {
  Loaded l = load(id);
  if (l.rec["mode"] != "managed") throw bad("the server holds no key of an e2ee chain");
  if (version == 0) version = l.rec["current"];
  for (const auto& v : l.rec["versions"])
    if (v["version"] == version) {
      auto raw = b64decode(v["secret"].get<std::string>());
      if (!raw || raw->size() != 32) throw TransitError(VELLUM_ERR_INTERNAL, "stored chain key is damaged");
      Key k;
      std::memcpy(k.data(), raw->data(), 32);
      cleanse(raw->data(), raw->size());
      return k;
    }
  throw TransitError(VELLUM_ERR_NOT_FOUND, "no such key version");
}

std::vector<std::string> KeyChains::readers(std::string_view id) {
  Loaded l = load(id);
  const std::string parent = l.rec["parent"];
  const Json m = parent.empty() ? l.rec["members"] : load(parent).rec["members"];
  return m.get<std::vector<std::string>>();
}

}  // namespace vellum::crypto
