// The editor plugin: documents (plain text and ProseMirror/Tiptap rich text)
// with immutable versions, each document encrypted under its own data key
// from the crypto service. See ../README.md.
#include <vellum/sdk.hpp>
#include <vellum/services/crypto_v1.h>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.hpp"
#include "doc_crypto.hpp"
#include "validate.hpp"

namespace {

using nlohmann::json;
using vellum::Error;
namespace ed = vellum::editor;

constexpr const char* kTransitKey = "editor";
constexpr size_t kMaxTitle = 512;
constexpr size_t kEnvelopeSlack = 64 * 1024;  // body bytes allowed beyond the content limit
constexpr uint32_t kDefaultPage = 50, kMaxPage = 200;

// An answer other than 2xx, as problem+json with optional extra members.
struct HttpProblem {
  int status;
  std::string detail;
  json extra = json::object();
};

const char* reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 422:
      return "Unprocessable Content";
    default:
      return "Internal Server Error";
  }
}

std::string version_key(const std::string& id, uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(n));
  return "ver/" + id + "/" + buf;
}

std::string hex(std::string_view bytes) {
  static const char* h = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(h[c >> 4]);
    out.push_back(h[c & 15]);
  }
  return out;
}

bool valid_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

class Editor : public vellum::Plugin {
 public:
  static constexpr const char* kName = "editor";
  static constexpr const char* kVersion = "0.1.0";
  static constexpr const char* kDescription = "Encrypted, versioned documents (text and rich text)";
  static constexpr const char* kRequires[] = {"crypto", nullptr};

  static void validate(std::string_view config) {
    try {
      (void)ed::parse_config(config);
    } catch (const std::invalid_argument& e) {
      throw Error(VELLUM_ERR_INVALID_ARGUMENT, e.what());
    }
  }

  Editor(vellum::Host& host, std::string_view config) : Plugin(host) {
    try {
      cfg_ = ed::parse_config(config);
    } catch (const std::invalid_argument& e) {
      throw Error(VELLUM_ERR_INVALID_ARGUMENT, e.what());
    }
  }

  void start() override {
    crypto_ =
        host().acquire<vellum_crypto_v1>(VELLUM_CRYPTO_SERVICE, VELLUM_CRYPTO_MAJOR, VELLUM_CRYPTO_MINOR);
    vellum_status s = crypto_->create_key(crypto_.instance(), vellum::to_c(kTransitKey),
                                          VELLUM_CRYPTO_KEY_AES256_GCM, vellum::to_c(""));
    if (s != VELLUM_OK && s != VELLUM_ERR_CONFLICT) host().check(s);

    route("POST", "/v1/docs", "Create a document", [this](vellum::Request& r) { create(r); });
    route("GET", "/v1/docs", "List your documents", [this](vellum::Request& r) { list(r); });
    route("GET", "/v1/docs/{id}", "Document metadata and current content",
          [this](vellum::Request& r) { get(r); });
    route("PUT", "/v1/docs/{id}", "Save a new version", [this](vellum::Request& r) { save(r); });
    route("DELETE", "/v1/docs/{id}", "Move a document to the trash",
          [this](vellum::Request& r) { trash(r, true); });
    route("POST", "/v1/docs/{id}/restore", "Restore a document from the trash",
          [this](vellum::Request& r) { trash(r, false); });
    route("GET", "/v1/docs/{id}/versions", "List versions", [this](vellum::Request& r) { versions(r); });
    route("GET", "/v1/docs/{id}/versions/{n}", "One version with its content",
          [this](vellum::Request& r) { version(r); });
  }

  void stop() override { crypto_ = {}; }

 private:
  template <class F>
  void route(const char* method, const char* path, const char* summary, F&& f) {
    host().route(
        method, path,
        [this, f = std::forward<F>(f)](vellum::Request& req) {
          try {
            f(req);
          } catch (const HttpProblem& p) {
            json body = p.extra;
            body["type"] = "about:blank";
            body["title"] = reason(p.status);
            body["status"] = p.status;
            body["detail"] = p.detail;
            req.respond(static_cast<uint16_t>(p.status), "application/problem+json", body.dump());
          }
        },
        0, summary);
  }

  // ---- the crypto service
  std::string take(vellum_buffer b) const {
    std::string s(reinterpret_cast<const char*>(b.data), b.size);
    host().api()->free(b.data);
    return s;
  }
  // A fresh document key: {wrapped, raw}.
  std::pair<std::string, std::string> new_key(const std::string& id) const {
    vellum_buffer wrapped{}, raw{};
    host().check(crypto_->generate_data_key(crypto_.instance(), vellum::to_c(kTransitKey), 256,
                                            vellum::to_bytes(id), &wrapped, &raw));
    std::string w = take(wrapped);
    return {std::move(w), take_secret(raw)};
  }
  // Copies a raw key out of a host buffer, wiping the buffer before freeing it.
  std::string take_secret(vellum_buffer b) const {
    std::string s(reinterpret_cast<const char*>(b.data), b.size);
    if (b.size) OPENSSL_cleanse(b.data, b.size);
    host().api()->free(b.data);
    return s;
  }
  // Every key under prefix, in order, past the host's per-scan limit.
  std::vector<std::pair<std::string, std::string>> scan_all(const std::string& prefix,
                                                            std::string start = {}) const {
    std::vector<std::pair<std::string, std::string>> out;
    for (;;) {
      vellum::Host::ScanOptions o;
      o.prefix = prefix;
      o.start = start;
      o.limit = 1000;
      const bool more = host().scan(o, [&](std::string_view k, std::string_view v, uint64_t) {
        out.emplace_back(std::string(k), std::string(v));
        return true;
      });
      if (!more || out.empty()) return out;
      start = out.back().first + std::string(1, '\0');
    }
  }
  std::string unwrap(const std::string& id, const std::string& wrapped) const {
    vellum_buffer raw{};
    host().check(crypto_->decrypt(crypto_.instance(), vellum::to_c(kTransitKey), vellum::to_c(wrapped),
                                  vellum::to_bytes(id), &raw));
    return take_secret(raw);
  }

  // ---- request helpers
  json parse_body(vellum::Request& req) const {
    std::string_view body = req.body();
    if (body.size() > cfg_.max_document_bytes + kEnvelopeSlack)
      throw HttpProblem{413, "request body exceeds max_document_bytes"};
    if (ed::nesting_exceeds(body, 2 * static_cast<size_t>(cfg_.max_depth) + 4))
      throw HttpProblem{422,
                        "content nests deeper than max_depth " + std::to_string(cfg_.max_depth),
                        {{"pointer", "/content"}}};
    try {
      json j = json::parse(body);
      if (!j.is_object()) throw HttpProblem{400, "the body must be a JSON object"};
      return j;
    } catch (const json::exception&) {
      throw HttpProblem{400, "the body is not valid JSON (or not valid UTF-8)"};
    }
  }

  // Validates content for a document type; returns the bytes to encrypt.
  std::string content_bytes(const std::string& type, const json& body) const {
    auto c = body.find("content");
    if (c == body.end()) throw HttpProblem{422, "'content' is required", {{"pointer", "/content"}}};
    std::string bytes;
    if (type == "text") {
      if (!c->is_string()) throw HttpProblem{422, "text content must be a string", {{"pointer", "/content"}}};
      bytes = c->get<std::string>();
    } else {
      if (auto p = ed::validate_richtext(*c, cfg_.max_depth))
        throw HttpProblem{422, p->message, {{"pointer", "/content" + p->pointer}}};
      bytes = c->dump();
    }
    if (bytes.size() > cfg_.max_document_bytes)
      throw HttpProblem{413, "content exceeds max_document_bytes " + std::to_string(cfg_.max_document_bytes)};
    return bytes;
  }

  json content_json(const std::string& type, const std::string& bytes) const {
    if (type == "text") return bytes;
    return json::parse(bytes);
  }

  static json public_meta(const json& m) {
    json out = m;
    out.erase("wrapped_key");
    return out;
  }

  struct Doc {
    json meta;
    uint64_t kv_version = 0;
  };
  // The document named in the path, if the caller may read it (else 404 so
  // nobody learns which ids exist), and may do `action` (else 403).
  Doc load(vellum::Request& req, const char* action) const {
    std::string id(req.param("id").value_or(""));
    if (!valid_id(id)) throw HttpProblem{404, "no such document"};
    auto v = host().get("doc/" + id);
    if (!v) throw HttpProblem{404, "no such document"};
    Doc d{json::parse(v->data), v->version};
    const std::string owner = d.meta["owner"];
    if (!host().authorize(req, "read", "document/" + id, owner)) throw HttpProblem{404, "no such document"};
    if (std::string_view(action) != "read" && !host().authorize(req, action, "document/" + id, owner))
      throw HttpProblem{403, std::string("you may not ") + action + " this document"};
    return d;
  }

  std::string decrypt_version(const json& meta, const json& ver) const {
    const std::string id = meta["id"];
    std::string key = unwrap(id, meta["wrapped_key"]);
    auto sealed = ed::b64decode(ver["ciphertext"].get<std::string>());
    std::optional<std::string> pt;
    if (sealed) pt = ed::open(key, id, ver["n"].get<uint64_t>(), *sealed);
    ed::wipe(key);
    if (!pt) throw Error(VELLUM_ERR_INTERNAL, "document content failed authentication");
    return *pt;
  }

  void event(const char* what, const json& meta, std::string_view actor) const {
    host().publish(std::string("editor.document.") + what, json({{"id", meta["id"]},
                                                                 {"owner", meta["owner"]},
                                                                 {"version", meta["version"]},
                                                                 {"actor", std::string(actor)}})
                                                               .dump());
  }

  // ---- routes
  void create(vellum::Request& req) {
    const auto who = req.principal();
    const std::string user(who.user_id);
    json body = parse_body(req);
    auto t = body.find("type");
    if (t == body.end() || !t->is_string() || (*t != "text" && *t != "richtext"))
      throw HttpProblem{422, "'type' must be \"text\" or \"richtext\"", {{"pointer", "/type"}}};
    const std::string type = *t;
    std::string title = "Untitled";
    if (auto tt = body.find("title"); tt != body.end()) {
      if (!tt->is_string() || tt->get_ref<const std::string&>().size() > kMaxTitle)
        throw HttpProblem{422, "'title' must be a string of at most 512 bytes", {{"pointer", "/title"}}};
      title = *tt;
    }
    const std::string bytes = content_bytes(type, body);
    const std::string id = hex(host().random(16));
    if (!host().authorize(req, "write", "document/" + id, user))
      throw HttpProblem{403, "you may not create documents"};

    auto [wrapped, key] = new_key(id);
    const std::string sealed = ed::seal(key, id, 1, bytes);
    ed::wipe(key);
    const int64_t now = host().now_ms();
    const std::string hash = ed::sha256_hex(bytes);
    json meta = {{"id", id},
                 {"type", type},
                 {"format_version", 1},
                 {"title", title},
                 {"owner", user},
                 {"created_ms", now},
                 {"updated_ms", now},
                 {"version", 1},
                 {"version_count", 1},
                 {"size", bytes.size()},
                 {"content_hash", hash},
                 {"trashed", false},
                 {"wrapped_key", wrapped}};
    json ver = {{"n", 1},
                {"parent", nullptr},
                {"author", user},
                {"created_ms", now},
                {"size", bytes.size()},
                {"content_hash", hash},
                {"ciphertext", ed::b64encode(sealed)}};
    auto txn = host().begin();
    txn.put("doc/" + id, meta.dump(), 0);
    txn.put(version_key(id, 1), ver.dump(), 0);
    txn.put("own/" + user + "/" + id, "", 0);
    txn.commit();
    host().audit("editor.document.create", "document/" + id, VELLUM_OUTCOME_SUCCESS, &req,
                 json({{"type", type}}).dump());
    event("created", meta, user);
    req.json(201, public_meta(meta).dump());
  }

  void list(vellum::Request& req) {
    const std::string user(req.principal().user_id);
    uint32_t limit = kDefaultPage;
    if (auto l = req.query_param("limit")) {
      try {
        const unsigned long v = std::stoul(std::string(*l));
        if (v < 1 || v > kMaxPage) throw std::out_of_range("limit");
        limit = static_cast<uint32_t>(v);
      } catch (const std::exception&) {
        throw HttpProblem{400, "'limit' must be an integer in 1..200"};
      }
    }
    const bool trashed = req.query_param("trashed").value_or("false") == "true";
    std::string cursor(req.query_param("cursor").value_or(""));
    if (!cursor.empty() && !valid_id(cursor)) throw HttpProblem{400, "invalid cursor"};
    const std::string prefix = "own/" + user + "/";
    std::vector<std::string> ids;
    const std::string start = cursor.empty() ? std::string() : prefix + cursor + std::string(1, '\0');
    for (auto& [k, v] : scan_all(prefix, start)) ids.push_back(k.substr(prefix.size()));
    json items = json::array();
    std::string next;
    size_t i = 0;
    for (; i < ids.size() && items.size() < limit; ++i) {
      auto v = host().get("doc/" + ids[i]);
      if (!v) continue;
      json m = json::parse(v->data);
      if (m["trashed"].get<bool>() != trashed) continue;
      if (!host().authorize(req, "read", "document/" + ids[i], m["owner"].get<std::string>())) continue;
      items.push_back(public_meta(m));
    }
    if (i < ids.size() && !items.empty()) next = items.back()["id"];
    json out = {{"items", items}};
    out["next_cursor"] = next.empty() ? json(nullptr) : json(next);
    req.json(200, out.dump());
  }

  void get(vellum::Request& req) {
    Doc d = load(req, "read");
    const std::string id = d.meta["id"];
    auto v = host().get(version_key(id, d.meta["version"].get<uint64_t>()));
    if (!v) throw Error(VELLUM_ERR_INTERNAL, "current version missing");
    json out = public_meta(d.meta);
    out["content"] = content_json(d.meta["type"], decrypt_version(d.meta, json::parse(v->data)));
    req.json(200, out.dump());
  }

  void save(vellum::Request& req) {
    Doc d = load(req, "write");
    const std::string user(req.principal().user_id);
    json body = parse_body(req);
    auto b = body.find("base_version");
    if (b == body.end() || !b->is_number_unsigned())
      throw HttpProblem{422, "'base_version' (a version number) is required", {{"pointer", "/base_version"}}};
    const std::string type = d.meta["type"];
    const std::string bytes = content_bytes(type, body);
    const std::string id = d.meta["id"];
    const uint64_t base = b->get<uint64_t>();

    auto txn = host().begin();
    auto cur = txn.get("doc/" + id);
    if (!cur) throw HttpProblem{404, "no such document"};
    json meta = json::parse(cur->data);
    const uint64_t current = meta["version"];
    if (meta["trashed"].get<bool>())
      throw HttpProblem{409, "the document is in the trash", {{"current_version", current}}};
    if (base != current)
      throw HttpProblem{409,
                        "base_version " + std::to_string(base) + " is stale; the current version is " +
                            std::to_string(current),
                        {{"current_version", current}}};
    const std::string hash = ed::sha256_hex(bytes);
    if (hash == meta["content_hash"]) {  // save if changed: nothing to do
      txn.rollback();
      json out = public_meta(meta);
      out["changed"] = false;
      req.json(200, out.dump());
      return;
    }
    const uint64_t n = current + 1;
    std::string key = unwrap(id, meta["wrapped_key"]);
    const std::string sealed = ed::seal(key, id, n, bytes);
    ed::wipe(key);
    const int64_t now = host().now_ms();
    json ver = {{"n", n},
                {"parent", current},
                {"author", user},
                {"created_ms", now},
                {"size", bytes.size()},
                {"content_hash", hash},
                {"ciphertext", ed::b64encode(sealed)}};
    meta["version"] = n;
    meta["version_count"] = n;
    meta["size"] = bytes.size();
    meta["content_hash"] = hash;
    meta["updated_ms"] = now;
    txn.put(version_key(id, n), ver.dump(), 0);
    txn.put("doc/" + id, meta.dump(), cur->version);
    txn.commit();
    event("updated", meta, user);
    json out = public_meta(meta);
    out["changed"] = true;
    req.json(200, out.dump());
  }

  void trash(vellum::Request& req, bool to_trash) {
    Doc d = load(req, "delete");
    const std::string user(req.principal().user_id);
    json& meta = d.meta;
    const std::string id = meta["id"];
    if (meta["trashed"].get<bool>() == to_trash)
      throw HttpProblem{
          409, to_trash ? "the document is already in the trash" : "the document is not in the trash"};
    meta["trashed"] = to_trash;
    if (to_trash)
      meta["trashed_ms"] = host().now_ms();
    else
      meta.erase("trashed_ms");
    try {
      host().put("doc/" + id, meta.dump(), d.kv_version);
    } catch (const Error& e) {
      if (e.status() == VELLUM_ERR_CONFLICT) throw HttpProblem{409, "the document changed; try again"};
      throw;
    }
    host().audit(to_trash ? "editor.document.delete" : "editor.document.restore", "document/" + id,
                 VELLUM_OUTCOME_SUCCESS, &req);
    event(to_trash ? "deleted" : "restored", meta, user);
    req.json(200, public_meta(meta).dump());
  }

  void versions(vellum::Request& req) {
    Doc d = load(req, "read");
    const std::string id = d.meta["id"];
    json items = json::array();
    for (auto& [k, v] : scan_all("ver/" + id + "/")) {
      json j = json::parse(v);
      j.erase("ciphertext");
      items.push_back(std::move(j));
    }
    req.json(200, json({{"items", items}}).dump());
  }

  void version(vellum::Request& req) {
    Doc d = load(req, "read");
    const std::string id = d.meta["id"];
    uint64_t n = 0;
    try {
      std::string s(req.param("n").value_or(""));
      size_t used = 0;
      n = std::stoull(s, &used);
      if (used != s.size() || s.empty() || s[0] == '-') throw std::invalid_argument("n");
    } catch (const std::exception&) {
      throw HttpProblem{400, "the version must be a positive integer"};
    }
    auto v = n ? host().get(version_key(id, n)) : std::nullopt;
    if (!v) throw HttpProblem{404, "no such version"};
    json ver = json::parse(v->data);
    json out = ver;
    out.erase("ciphertext");
    out["type"] = d.meta["type"];
    out["content"] = content_json(d.meta["type"], decrypt_version(d.meta, ver));
    req.json(200, out.dump());
  }

  ed::Config cfg_;
  vellum::Service<vellum_crypto_v1> crypto_;
};

}  // namespace

VELLUM_PLUGIN(Editor)
