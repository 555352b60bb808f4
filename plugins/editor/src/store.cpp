#include "store.hpp"

#include <openssl/crypto.h>

#include <set>

#include "common.hpp"
#include "doc_crypto.hpp"

namespace vellum::editor {

using nlohmann::json;
using vellum::Error;

namespace {
constexpr const char* kTransitKey = "editor";
constexpr size_t kMaxFolderDepth = 64;  // bounds the walk up a folder chain
}  // namespace

std::string Store::version_key(const std::string& id, uint64_t n) { return "ver/" + id + "/" + pad20(n); }
std::string Store::blob_key(const std::string& id, uint64_t n) { return "blob/" + id + "/" + pad20(n); }

std::string Store::take(vellum_buffer b) const {
  std::string s(reinterpret_cast<const char*>(b.data), b.size);
  host_.api()->free(b.data);
  return s;
}

// Copies a raw key out of a host buffer, wiping the buffer before freeing it.
std::string Store::take_secret(vellum_buffer b) const {
  std::string s(reinterpret_cast<const char*>(b.data), b.size);
  if (b.size) OPENSSL_cleanse(b.data, b.size);
  host_.api()->free(b.data);
  return s;
}

std::pair<std::string, std::string> Store::new_key(const std::string& id) const {
  if (!crypto_) throw Error(VELLUM_ERR_UNAVAILABLE, "the editor is not started");
  vellum_buffer wrapped{}, raw{};
  host_.check(crypto_->generate_data_key(crypto_.instance(), vellum::to_c(kTransitKey), 256,
                                         vellum::to_bytes(id), &wrapped, &raw));
  std::string w = take(wrapped);
  return {std::move(w), take_secret(raw)};
}

std::string Store::unwrap(const std::string& id, const std::string& wrapped) const {
  if (!crypto_) throw Error(VELLUM_ERR_UNAVAILABLE, "the editor is not started");
  vellum_buffer raw{};
  host_.check(crypto_->decrypt(crypto_.instance(), vellum::to_c(kTransitKey), vellum::to_c(wrapped),
                               vellum::to_bytes(id), &raw));
  return take_secret(raw);
}

std::optional<Record> Store::doc(const std::string& id, const vellum::Transaction* txn) const {
  if (!valid_id(id)) return std::nullopt;
  auto v = txn ? txn->get(doc_key(id)) : host_.get(doc_key(id));
  if (!v) return std::nullopt;
  return Record{json::parse(v->data), v->version};
}

std::optional<Record> Store::folder(const std::string& id, const vellum::Transaction* txn) const {
  if (!valid_id(id)) return std::nullopt;
  auto v = txn ? txn->get(folder_key(id)) : host_.get(folder_key(id));
  if (!v) return std::nullopt;
  return Record{json::parse(v->data), v->version};
}

std::vector<Record> Store::folder_chain(const std::string& folder_id) const {
  std::vector<Record> up;
  std::set<std::string> seen;
  std::string cur = folder_id;
  while (!cur.empty()) {
    if (up.size() >= kMaxFolderDepth || !seen.insert(cur).second)
      throw Error(VELLUM_ERR_INTERNAL, "folder chain is too deep or cyclic");
    auto f = folder(cur);
    if (!f) throw Error(VELLUM_ERR_INTERNAL, "folder chain is broken");
    const json& parent = f->meta["parent"];
    cur = parent.is_string() ? parent.get<std::string>() : std::string();
    up.push_back(std::move(*f));
  }
  return {up.rbegin(), up.rend()};
}

Place Store::place_of_folder(const std::string& folder_id) const {
  Place p;
  for (const Record& f : folder_chain(folder_id)) {
    if (p.resource.empty() && f.meta.contains("workspace")) {
      p.workspace = f.meta["workspace"];
      p.resource = "workspace/" + p.workspace + "/";
    }
    p.resource += "folder/" + f.meta["id"].get<std::string>() + "/";
    if (f.meta["trashed"].get<bool>()) p.trashed_above = true;
  }
  if (!p.resource.empty()) p.resource.pop_back();
  return p;
}

void Store::for_each(const std::string& prefix,
                     const std::function<void(std::string_view key, std::string_view value)>& fn) const {
  host_.scan_all(prefix, fn);
}

size_t Store::subtree_height(const std::string& folder_id, size_t cap) const {
  std::vector<std::string> level{folder_id};
  size_t height = 0;
  while (!level.empty() && height < cap) {
    ++height;
    std::vector<std::string> next;
    for (const std::string& f : level) {
      const std::string prefix = "in/" + f + "/";
      for_each(prefix, [&](std::string_view k, std::string_view v) {
        if (v == "f") next.emplace_back(k.substr(prefix.size()));
      });
    }
    level = std::move(next);
  }
  return height;
}

Place Store::place_under(const std::string& folder, const std::string& workspace, const std::string& type,
                         const std::string& id) const {
  Place p;
  if (!folder.empty()) {
    p = place_of_folder(folder);
    p.resource += "/";
  } else if (!workspace.empty()) {
    p.workspace = workspace;
    p.resource = "workspace/" + workspace + "/";
  }
  p.resource += type + "/" + id;
  return p;
}

Place Store::place_of_doc(const json& meta) const {
  const json& f = meta["folder"];
  return place_under(f.is_string() ? f.get<std::string>() : std::string(),
                     meta.value("workspace", std::string()), "document", meta["id"].get<std::string>());
}

json Store::create_doc(vellum::Transaction& txn, const std::string& id, const json& fields,
                       const std::string& bytes, const std::string& content_type, const std::string& author) {
  auto [wrapped, key] = new_key(id);
  const std::string sealed = seal(key, id, 1, bytes);
  wipe(key);
  const int64_t now = host_.now_ms();
  const std::string hash = sha256_hex(bytes);
  json meta = fields;
  meta["id"] = id;
  meta["format_version"] = 1;
  meta["owner"] = author;
  meta["created_ms"] = now;
  meta["updated_ms"] = now;
  meta["version"] = 1;
  meta["version_count"] = 1;
  meta["size"] = bytes.size();
  meta["content_hash"] = hash;
  meta["content_type"] = content_type;
  meta["trashed"] = false;
  meta["wrapped_key"] = wrapped;
  json ver = {{"n", 1},
              {"parent", nullptr},
              {"author", author},
              {"created_ms", now},
              {"size", bytes.size()},
              {"content_hash", hash},
              {"content_type", content_type}};
  txn.put(doc_key(id), meta.dump(), VELLUM_VERSION_ABSENT);
  txn.put(version_key(id, 1), ver.dump(), VELLUM_VERSION_ABSENT);
  txn.put(blob_key(id, 1), sealed, VELLUM_VERSION_ABSENT);
  txn.put("own/" + author + "/" + id, "", VELLUM_VERSION_ABSENT);
  const json& folder = meta["folder"];
  if (folder.is_string()) txn.put("in/" + folder.get<std::string>() + "/" + id, "d", VELLUM_VERSION_ABSENT);
  return meta;
}

json Store::append_version(vellum::Transaction& txn, json& meta, uint64_t kv_version,
                           const std::string& bytes, const std::string& content_type,
                           const std::string& author, const json& extra) {
  const std::string id = meta["id"];
  const uint64_t current = meta["version"];
  const uint64_t n = current + 1;
  std::string key = unwrap(id, meta["wrapped_key"]);
  const std::string sealed = seal(key, id, n, bytes);
  wipe(key);
  const int64_t now = host_.now_ms();
  const std::string hash = sha256_hex(bytes);
  json ver = extra;
  ver["n"] = n;
  ver["parent"] = current;
  ver["author"] = author;
  ver["created_ms"] = now;
  ver["size"] = bytes.size();
  ver["content_hash"] = hash;
  ver["content_type"] = content_type;
  meta["version"] = n;
  meta["version_count"] = meta["version_count"].get<uint64_t>() + 1;
  meta["size"] = bytes.size();
  meta["content_hash"] = hash;
  meta["content_type"] = content_type;
  meta["updated_ms"] = now;
  txn.put(version_key(id, n), ver.dump(), VELLUM_VERSION_ABSENT);
  txn.put(blob_key(id, n), sealed, VELLUM_VERSION_ABSENT);
  apply_retention(txn, meta);
  txn.put(doc_key(id), meta.dump(), kv_version);
  return ver;
}

std::optional<json> Store::version_meta(const std::string& id, uint64_t n) const {
  if (n == 0) return std::nullopt;
  auto v = host_.get(version_key(id, n));
  if (!v) return std::nullopt;
  return json::parse(v->data);
}

std::string Store::read_bytes(const json& meta, uint64_t n) const {
  const std::string id = meta["id"];
  auto blob = host_.get(blob_key(id, n));
  if (!blob) throw Error(VELLUM_ERR_NOT_FOUND, "no such version");
  std::string key = unwrap(id, meta["wrapped_key"]);
  auto pt = open(key, id, n, blob->data);
  wipe(key);
  if (!pt) throw Error(VELLUM_ERR_INTERNAL, "document content failed authentication");
  return std::move(*pt);
}

size_t Store::apply_retention(vellum::Transaction& txn, json& meta) {
  const Retention& r = cfg_.retention;
  if (r.keep_last == 0) return 0;  // retention off: keep every version
  const std::string id = meta["id"];
  const uint64_t current = meta["version"];
  const int64_t young = host_.now_ms() - static_cast<int64_t>(r.keep_days) * 86400000;
  // Newest first; the first keep_last versions (the current one included)
  // stay, and so does anything named or younger than keep_days.
  std::vector<uint64_t> doomed;
  size_t seen = 0;
  vellum::Host::ScanOptions o;
  const std::string prefix = "ver/" + id + "/";
  o.prefix = prefix;
  o.reverse = true;
  o.limit = 10000;
  txn.scan(o, [&](std::string_view, std::string_view value, uint64_t) {
    json v = json::parse(value);
    ++seen;
    const uint64_t n = v["n"];
    if (n == current || seen <= r.keep_last) return true;
    if (v.contains("name") || v["created_ms"].get<int64_t>() > young) return true;
    doomed.push_back(n);
    return true;
  });
  for (uint64_t n : doomed) {
    txn.erase(version_key(id, n));
    txn.erase(blob_key(id, n));
  }
  if (!doomed.empty()) meta["version_count"] = meta["version_count"].get<uint64_t>() - doomed.size();
  return doomed.size();
}

void Store::erase_doc(vellum::Transaction& txn, const json& meta) {
  const std::string id = meta["id"];
  // Versions, and the realtime logs (Yjs updates, E2EE entries and snapshot).
  for (const char* p : {"ver/", "blob/", "collab/", "e2ee/"}) txn.erase_all(std::string(p) + id + "/");
  if (txn.get("lock/" + id)) txn.erase("lock/" + id);
  txn.erase("own/" + meta["owner"].get<std::string>() + "/" + id);
  if (meta["folder"].is_string()) txn.erase("in/" + meta["folder"].get<std::string>() + "/" + id);
  txn.erase(doc_key(id));
}

void Store::check_entitlement(const std::string& user, const char* feature, uint64_t amount) const {
  vellum::Service<vellum_entitlements_v1> svc;
  try {
    svc = host_.acquire<vellum_entitlements_v1>(VELLUM_ENTITLEMENTS_SERVICE, VELLUM_ENTITLEMENTS_MAJOR,
                                                VELLUM_ENTITLEMENTS_MINOR);
  } catch (const Error& e) {
    if (e.status() == VELLUM_ERR_NOT_FOUND) return;  // no billing plugin: everything is allowed
    throw;
  }
  const vellum_status s = svc->check(svc.instance(), vellum::to_c(user), vellum::to_c(feature), amount);
  if (s == VELLUM_OK) return;
  if (s == VELLUM_ERR_LIMIT || s == VELLUM_ERR_PERMISSION_DENIED)
    throw HttpProblem{
        403, std::string("your plan does not allow this (") + feature + ")", {{"entitlement", feature}}};
  throw Error(VELLUM_ERR_UNAVAILABLE, "the entitlements service could not decide");
}

json Store::public_meta(const json& meta) const {
  json out = meta;
  out.erase("wrapped_key");
  if (!out.contains("folder")) out["folder"] = nullptr;
  if (!out.contains("e2ee")) out["e2ee"] = false;
  const Place p = place_of_doc(meta);
  out["resource"] = p.resource;
  if (p.trashed_above) out["in_trashed_folder"] = true;
  if (out["e2ee"].get<bool>()) out["unavailable"] = json::array({"merge", "export", "search", "validation"});
  return out;
}

json Store::describe(const json& meta) const {
  const Place p = place_of_doc(meta);
  return {{"id", meta["id"]},
          {"title", meta["title"]},
          {"type", meta["type"]},
          {"owner", meta["owner"]},
          {"resource", p.resource},
          {"current_version", meta["version"]},
          {"content_hash", meta["content_hash"]},
          {"content_type", meta.value("content_type", std::string())},
          {"e2ee", meta.value("e2ee", false)},
          {"trashed", meta["trashed"].get<bool>() || p.trashed_above},
          {"created_ms", meta["created_ms"]},
          {"updated_ms", meta["updated_ms"]}};
}

std::string Store::page(const std::string& prefix, const std::string& cursor, size_t limit,
                        const std::function<bool(const std::string&, std::string_view)>& take) const {
  std::string start = cursor.empty() ? std::string() : prefix + cursor + std::string(1, '\0');
  size_t taken = 0;
  std::string last;
  for (;;) {
    vellum::Host::ScanOptions o;
    o.prefix = prefix;
    o.start = start;
    o.limit = 256;
    std::string last_key;
    bool stopped = false;
    const bool more = host_.scan(o, [&](std::string_view k, std::string_view v, uint64_t) {
      last_key = std::string(k);
      if (taken == limit) {  // one more key exists beyond a full page
        stopped = true;
        return false;
      }
      const std::string suffix(k.substr(prefix.size()));
      if (take(suffix, v)) {
        ++taken;
        last = suffix;
      }
      return true;
    });
    if (stopped) return last;
    if (!more || last_key.empty()) return {};
    start = last_key + std::string(1, '\0');
  }
}

void Store::publish(const std::string& topic, const json& payload) const {
  host_.publish(topic, payload.dump());
}

std::optional<DocInfo> Store::find(const std::string& id) {
  auto d = doc(id);
  if (!d) return std::nullopt;
  const Place p = place_of_doc(d->meta);
  DocInfo info;
  info.id = id;
  info.owner = d->meta["owner"];
  info.resource = p.resource;
  info.type = d->meta["type"];
  info.e2ee = d->meta.value("e2ee", false);
  info.trashed = d->meta["trashed"].get<bool>() || p.trashed_above;
  return info;
}

uint64_t Store::snapshot_version(const std::string& id, const std::string& state, const std::string& author,
                                 const std::string& content_type) {
  if (content_type.empty() || content_type.size() > 128)
    throw Error(VELLUM_ERR_INVALID_ARGUMENT, "content_type must be 1..128 bytes");
  if (state.size() > cfg_.max_document_bytes)
    throw Error(VELLUM_ERR_LIMIT, "snapshot exceeds max_document_bytes");
  auto pre = doc(id);
  if (!pre) throw Error(VELLUM_ERR_NOT_FOUND, "no such document");
  try {
    check_entitlement(pre->meta["owner"], "editor.storage", state.size());
  } catch (const HttpProblem& p) {
    throw Error(VELLUM_ERR_PERMISSION_DENIED, p.detail);
  }
  auto txn = host_.begin();
  auto d = doc(id, &txn);
  if (!d) throw Error(VELLUM_ERR_NOT_FOUND, "no such document");
  if (d->meta["trashed"].get<bool>()) throw Error(VELLUM_ERR_STATE, "the document is in the trash");
  json ver = append_version(txn, d->meta, d->kv_version, state, content_type, author,
                            json({{"source", "realtime"}}));
  txn.commit();
  publish("editor.document.updated", {{"id", id},
                                      {"owner", d->meta["owner"]},
                                      {"version", ver["n"]},
                                      {"size", state.size()},
                                      {"actor", author}});
  return ver["n"].get<uint64_t>();
}

}  // namespace vellum::editor
