#include "api.hpp"

#include <vellum/services/export_v1.h>

#include "common.hpp"
#include "doc_crypto.hpp"
#include "export.hpp"
#include "merge.hpp"
#include "validate.hpp"

namespace vellum::editor {

using nlohmann::json;
using vellum::Error;

namespace {

constexpr size_t kMaxTitle = 512;
constexpr size_t kMaxVersionName = 128;
constexpr size_t kEnvelopeSlack = 64 * 1024;  // body bytes allowed beyond the content limit
constexpr size_t kDefaultPage = 50, kMaxPage = 200;
constexpr size_t kMaxFolderDepth = 64;

bool valid_workspace(const std::string& w) {
  if (w.empty() || w.size() > 64) return false;
  for (char c : w)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

// A title or name: a string of 1..max bytes.
std::string name_field(const json& body, const char* key, size_t max, const std::string& fallback) {
  auto it = body.find(key);
  if (it == body.end()) {
    if (fallback.empty())
      throw HttpProblem{422, std::string("'") + key + "' is required", {{"pointer", std::string("/") + key}}};
    return fallback;
  }
  if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
      it->get_ref<const std::string&>().size() > max)
    throw HttpProblem{422,
                      std::string("'") + key + "' must be a string of 1.." + std::to_string(max) + " bytes",
                      {{"pointer", std::string("/") + key}}};
  return *it;
}

bool flag(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end()) return false;
  if (!it->is_boolean())
    throw HttpProblem{
        422, std::string("'") + key + "' must be true or false", {{"pointer", std::string("/") + key}}};
  return it->get<bool>();
}

// The folder member of a body: absent (nullopt), null (top level) or an id.
std::optional<std::string> folder_field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end()) return std::nullopt;
  if (it->is_null()) return std::string();
  if (!it->is_string() || !valid_id(it->get<std::string>()))
    throw HttpProblem{
        422, std::string("'") + key + "' must be a folder id or null", {{"pointer", std::string("/") + key}}};
  return it->get<std::string>();
}

const char* const kTypes[] = {"text", "richtext", "sheet", "scene"};

bool known_type(const std::string& t) {
  for (const char* k : kTypes)
    if (t == k) return true;
  return false;
}

}  // namespace

const Api::Kind Api::kDoc{false, "document", "title", "folder", "d", "own/"};
const Api::Kind Api::kFolder{true, "folder", "name", "parent", "f", "ownf/"};

template <class F>
void Api::route(const char* method, const char* path, const char* summary, F&& f) {
  host_.route(
      method, path,
      [this, f = std::forward<F>(f)](vellum::Request& req) {
        try {
          (this->*f)(req);
        } catch (const HttpProblem& p) {
          json body = p.extra;
          body["type"] = "about:blank";
          body["title"] = vellum::http_reason(p.status);
          body["status"] = p.status;
          body["detail"] = p.detail;
          req.respond(static_cast<uint16_t>(p.status), "application/problem+json", body.dump());
        }
      },
      0, summary);
}

void Api::register_routes() {
  route("POST", "/v1/docs", "Create a document", &Api::create);
  route("GET", "/v1/docs", "List your documents", &Api::list_docs);
  route("GET", "/v1/docs/{id}", "Document metadata and current content", &Api::get);
  route("PUT", "/v1/docs/{id}", "Save a new version", &Api::save);
  route("PATCH", "/v1/docs/{id}", "Rename or move a document", &Api::patch_doc);
  route("DELETE", "/v1/docs/{id}", "Move a document to the trash, or delete it permanently", &Api::remove);
  route("POST", "/v1/docs/{id}/restore", "Restore a document from the trash", &Api::restore);
  route("GET", "/v1/docs/{id}/versions", "List versions", &Api::versions);
  route("GET", "/v1/docs/{id}/versions/{n}", "One version with its content", &Api::version);
  route("PUT", "/v1/docs/{id}/versions/{n}/name", "Name a version", &Api::name_version);
  route("POST", "/v1/docs/{id}/versions/{n}/restore", "Restore a version as a new one",
        &Api::restore_version);
  route("GET", "/v1/docs/{id}/export", "Export a version (html, markdown, csv, svg, json)", &Api::export_doc);
  route("POST", "/v1/docs/{id}/lock", "Acquire or refresh the advisory lock", &Api::lock);
  route("GET", "/v1/docs/{id}/lock", "Who holds the lock", &Api::lock_info);
  route("DELETE", "/v1/docs/{id}/lock", "Release or break the lock", &Api::unlock);
  route("POST", "/v1/folders", "Create a folder", &Api::folder_create);
  route("GET", "/v1/folders", "List your folders", &Api::list_folders);
  route("GET", "/v1/folders/{id}", "Folder metadata", &Api::folder_get);
  route("GET", "/v1/folders/{id}/items", "Folders and documents in a folder", &Api::folder_items);
  route("PATCH", "/v1/folders/{id}", "Rename or move a folder", &Api::patch_folder);
  route("DELETE", "/v1/folders/{id}", "Move a folder to the trash, or delete it permanently",
        &Api::folder_remove);
  route("POST", "/v1/folders/{id}/restore", "Restore a folder from the trash", &Api::folder_restore);
}

// ---------------------------------------------------------------- helpers

json Api::parse_body(vellum::Request& req) const {
  std::string_view body = req.body();
  const Config& cfg = store_.config();
  if (body.size() > cfg.max_document_bytes + kEnvelopeSlack)
    throw HttpProblem{413, "request body exceeds max_document_bytes"};
  if (nesting_exceeds(body, 2 * static_cast<size_t>(cfg.max_depth) + 4))
    throw HttpProblem{422,
                      "content nests deeper than max_depth " + std::to_string(cfg.max_depth),
                      {{"pointer", "/content"}}};
  try {
    json j = json::parse(body.empty() ? std::string_view("{}") : body);
    if (!j.is_object()) throw HttpProblem{400, "the body must be a JSON object"};
    return j;
  } catch (const json::exception&) {
    throw HttpProblem{400, "the body is not valid JSON (or not valid UTF-8)"};
  }
}

std::string Api::content_bytes(const std::string& type, bool e2ee, const json& body,
                               std::string* content_type) const {
  auto c = body.find("content");
  if (c == body.end()) throw HttpProblem{422, "'content' is required", {{"pointer", "/content"}}};
  std::string bytes;
  if (e2ee) {
    if (auto p = validate_envelope(*c))
      throw HttpProblem{422, p->message, {{"pointer", "/content" + p->pointer}}};
    bytes = c->dump();
    *content_type = kEnvelope;
  } else if (type == "text") {
    if (!c->is_string()) throw HttpProblem{422, "text content must be a string", {{"pointer", "/content"}}};
    bytes = c->get<std::string>();
    *content_type = kText;
  } else {
    if (auto p = validate_content(type, *c, store_.config().max_depth))
      throw HttpProblem{422, p->message, {{"pointer", "/content" + p->pointer}}};
    bytes = c->dump();
    *content_type = kJson;
  }
  if (bytes.size() > store_.config().max_document_bytes)
    throw HttpProblem{
        413, "content exceeds max_document_bytes " + std::to_string(store_.config().max_document_bytes)};
  return bytes;
}

json Api::render(const std::string& type, const std::string& content_type, const std::string& bytes) const {
  (void)type;
  if (content_type == kText) return bytes;
  if (is_json_type(content_type) || content_type == kEnvelope) return json::parse(bytes);
  return nullptr;  // binary (a Yjs snapshot): see content_base64
}

std::string Api::user_for_collection(vellum::Request& req) const {
  const auto who = req.principal();
  if (who.is_guest()) throw HttpProblem{403, "guests can only open what was shared with them"};
  return std::string(who.user_id);
}

std::optional<Record> Api::fetch(const Kind& k, const std::string& id, const vellum::Transaction* txn) const {
  return k.folder ? store_.folder(id, txn) : store_.doc(id, txn);
}

Place Api::place(const Kind& k, const json& meta) const {
  return k.folder ? store_.place_of_folder(meta["id"]) : store_.place_of_doc(meta);
}

json Api::view(const Kind& k, const json& meta) const {
  if (!k.folder) return store_.public_meta(meta);
  json out = meta;
  const Place p = store_.place_of_folder(meta["id"]);
  out["resource"] = p.resource;
  if (p.trashed_above) out["in_trashed_folder"] = true;
  return out;
}

// The object named by id, if the caller may read it (else 404 so nobody
// learns which ids exist), and may do `action` (else 403).
Record Api::load(vellum::Request& req, const Kind& k, const char* action, const std::string& id) const {
  auto r = fetch(k, id);
  if (!r) throw HttpProblem{404, std::string("no such ") + k.noun};
  const std::string resource = place(k, r->meta).resource;
  const std::string owner = r->meta["owner"];
  if (!host_.authorize(req, "read", resource, owner))
    throw HttpProblem{404, std::string("no such ") + k.noun};
  if (std::string_view(action) != "read" && !host_.authorize(req, action, resource, owner))
    throw HttpProblem{403, std::string("you may not ") + action + " this " + k.noun};
  return *r;
}

Record Api::load_doc(vellum::Request& req, const char* action) const {
  return load(req, kDoc, action, std::string(req.param("id").value_or("")));
}

Record Api::load_folder(vellum::Request& req, const char* action, const std::string& id) const {
  return load(req, kFolder, action, id);
}

size_t Api::page_limit(vellum::Request& req) const {
  auto l = req.query_param("limit");
  if (!l) return kDefaultPage;
  auto v = parse_u64(*l);
  if (!v || *v < 1 || *v > kMaxPage) throw HttpProblem{400, "'limit' must be an integer in 1..200"};
  return static_cast<size_t>(*v);
}

std::optional<json> Api::live_lock(const std::string& id) const {
  auto v = host_.get("lock/" + id);
  if (!v) return std::nullopt;
  json l = json::parse(v->data);
  if (l["expires_ms"].get<int64_t>() <= host_.now_ms()) return std::nullopt;
  return l;
}

void Api::event(const std::string& what, const json& meta, std::string_view actor) const {
  json p = {{"id", meta["id"]}, {"owner", meta["owner"]}, {"actor", std::string(actor)}};
  if (meta.contains("version")) {
    p["version"] = meta["version"];
    p["size"] = meta["size"];
  }
  store_.publish(what, p);
}

// ---------------------------------------------------------------- documents

void Api::create(vellum::Request& req) {
  const std::string user = user_for_collection(req);
  json body = parse_body(req);
  auto t = body.find("type");
  if (t == body.end() || !t->is_string() || !known_type(*t))
    throw HttpProblem{
        422, "'type' must be one of \"text\", \"richtext\", \"sheet\", \"scene\"", {{"pointer", "/type"}}};
  const std::string type = *t;
  const std::string title = name_field(body, "title", kMaxTitle, "Untitled");
  const bool e2ee = flag(body, "e2ee");
  const std::string folder = folder_field(body, "folder").value_or("");
  std::string workspace;
  if (auto w = body.find("workspace"); w != body.end()) {
    if (!w->is_string() || !valid_workspace(*w))
      throw HttpProblem{422, "'workspace' must be 1..64 of [A-Za-z0-9_-]", {{"pointer", "/workspace"}}};
    if (!folder.empty())
      throw HttpProblem{422,
                        "'workspace' is only for top-level documents (a folder carries its own)",
                        {{"pointer", "/workspace"}}};
    workspace = *w;
  }
  std::string content_type;
  const std::string bytes = content_bytes(type, e2ee, body, &content_type);
  if (!folder.empty()) {
    Record f = load_folder(req, "write", folder);
    if (store_.place_of_folder(folder).trashed_above) throw HttpProblem{409, "the folder is in the trash"};
  }
  const std::string id = hex(host_.random(16));
  const Place place = store_.place_under(folder, workspace, "document", id);
  if (!host_.authorize(req, "write", place.resource, user))
    throw HttpProblem{403, "you may not create documents here"};
  store_.check_entitlement(user, "editor.documents", 1);
  store_.check_entitlement(user, "editor.storage", bytes.size());

  json fields = {{"type", type}, {"title", title}, {"e2ee", e2ee}};
  fields["folder"] = folder.empty() ? json(nullptr) : json(folder);
  if (!workspace.empty()) fields["workspace"] = workspace;
  auto txn = host_.begin();
  if (!folder.empty() && !store_.folder(folder, &txn)) throw HttpProblem{404, "no such folder"};
  json meta = store_.create_doc(txn, id, fields, bytes, content_type, user);
  txn.commit();
  host_.audit("editor.document.create", place.resource, VELLUM_OUTCOME_SUCCESS, &req,
              json({{"type", type}, {"e2ee", e2ee}}).dump());
  event("editor.document.created", meta, user);
  req.json(201, store_.public_meta(meta).dump());
}

void Api::get(vellum::Request& req) {
  Record d = load_doc(req, "read");
  const std::string id = d.meta["id"];
  const uint64_t n = d.meta["version"];
  json out = store_.public_meta(d.meta);
  const std::string bytes = store_.read_bytes(d.meta, n);
  const std::string ct = d.meta["content_type"];
  out["content"] = render(d.meta["type"], ct, bytes);
  if (out["content"].is_null()) out["content_base64"] = b64encode(bytes);
  const auto who = req.principal();
  if (auto l = live_lock(id)) {
    out["lock"] = *l;
    out["read_only"] = (*l)["holder"] != std::string(who.user_id);
  } else {
    out["lock"] = nullptr;
    out["read_only"] = false;
  }
  req.json(200, out.dump());
}

void Api::save(vellum::Request& req) {
  Record d = load_doc(req, "write");
  const std::string user(req.principal().user_id);
  json body = parse_body(req);
  auto b = body.find("base_version");
  if (b == body.end() || !b->is_number_unsigned())
    throw HttpProblem{422, "'base_version' (a version number) is required", {{"pointer", "/base_version"}}};
  const bool force = flag(body, "force");
  const bool release = flag(body, "release_lock");
  const bool want_merge = flag(body, "merge");
  const std::string type = d.meta["type"];
  std::string content_type;
  std::string bytes = content_bytes(type, d.meta.value("e2ee", false), body, &content_type);
  const std::string id = d.meta["id"];
  const uint64_t base = b->get<uint64_t>();
  const Place place = store_.place_of_doc(d.meta);
  if (place.trashed_above) throw HttpProblem{409, "the document's folder is in the trash"};
  auto lock = live_lock(id);
  const bool locked_by_other = lock && (*lock)["holder"] != user;
  if (locked_by_other && !force)
    throw HttpProblem{
        423,
        "the document is locked by another user; open it read-only or save with \"force\": true",
        {{"lock", *lock}}};
  std::string hash = sha256_hex(bytes);
  if (hash != d.meta["content_hash"])
    store_.check_entitlement(d.meta["owner"], "editor.storage", bytes.size());
  if (type == "scene" && content_type == kJson) check_nodes(req, d.meta, json::parse(bytes), place.resource);

  auto txn = host_.begin();
  auto cur = store_.doc(id, &txn);
  if (!cur) throw HttpProblem{404, "no such document"};
  json& meta = cur->meta;
  const uint64_t current = meta["version"];
  if (meta["trashed"].get<bool>())
    throw HttpProblem{409, "the document is in the trash", {{"current_version", current}}};
  json extra = json::object();
  // A forced save is last-write-wins: it replaces whatever is current.
  if (base != current && !force) {
    if (!want_merge)
      throw HttpProblem{409,
                        "base_version " + std::to_string(base) + " is stale; the current version is " +
                            std::to_string(current),
                        {{"current_version", current}}};
    bytes = merged(meta, base, bytes, user, &extra);
    hash = sha256_hex(bytes);
    if (type == "scene") check_nodes(req, meta, json::parse(bytes), place.resource);
  }
  if (release && lock && !locked_by_other) txn.erase("lock/" + id);
  if (hash == meta["content_hash"]) {  // save if changed: no new version
    if (release && lock && !locked_by_other) txn.commit();
    json out = store_.public_meta(meta);
    out["changed"] = false;
    req.json(200, out.dump());
    return;
  }
  if (force && (locked_by_other || base != current)) extra["forced_over"] = current;
  store_.append_version(txn, meta, cur->kv_version, bytes, content_type, user, extra);
  txn.commit();
  if (extra.contains("forced_over"))
    host_.audit("editor.document.force_edit", place.resource, VELLUM_OUTCOME_SUCCESS, &req,
                json({{"over_version", current},
                      {"version", meta["version"]},
                      {"lock_holder", locked_by_other ? (*lock)["holder"] : json(nullptr)}})
                    .dump());
  event("editor.document.updated", meta, user);
  json out = store_.public_meta(meta);
  out["changed"] = true;
  if (extra.contains("merged")) {
    out["merged"] = extra["merged"];
    out["content"] = json::parse(bytes);
  }
  req.json(200, out.dump());
}

// Three-way merge of a stale save: base = the client's base version, local =
// the client's content, remote = the current version.
std::string Api::merged(const json& meta, uint64_t base, const std::string& local, const std::string& user,
                        json* extra) const {
  const uint64_t current = meta["version"];
  if (meta.value("e2ee", false))
    throw HttpProblem{
        409, "merge is unavailable for end-to-end encrypted documents", {{"current_version", current}}};
  if (meta["type"] == "text")
    throw HttpProblem{409, "merge needs a JSON document type", {{"current_version", current}}};
  auto bv = store_.version_meta(meta["id"], base);
  auto rv = store_.version_meta(meta["id"], current);
  if (!bv || base > current)
    throw HttpProblem{409,
                      "the base version no longer exists; reload and reapply your changes",
                      {{"current_version", current}}};
  if ((*bv)["content_type"] != kJson || (*rv)["content_type"] != kJson)
    throw HttpProblem{
        409, "only JSON versions merge (a realtime snapshot is in between)", {{"current_version", current}}};
  Prefer prefer = Prefer::kNone;
  if (store_.config().merge_role_precedence) {
    // owner > editor: the owner's side wins an overlap; equal ranks conflict.
    const bool local_owner = user == meta["owner"];
    const bool remote_owner = (*rv)["author"] == meta["owner"];
    if (local_owner != remote_owner) prefer = local_owner ? Prefer::kLocal : Prefer::kRemote;
  }
  MergeResult m = merge3(json::parse(store_.read_bytes(meta, base)), json::parse(local),
                         json::parse(store_.read_bytes(meta, current)), prefer);
  if (!m.conflicts.empty()) {
    json list = json::array();
    for (size_t i = 0; i < m.conflicts.size() && i < 100; ++i) list.push_back(conflict_json(m.conflicts[i]));
    throw HttpProblem{409,
                      std::to_string(m.conflicts.size()) +
                          " overlapping change(s); resolve them and save on the current version",
                      {{"current_version", current}, {"conflicts", list}}};
  }
  if (auto p = validate_content(meta["type"], m.merged, store_.config().max_depth))
    throw HttpProblem{409,
                      "the merged document is not valid: " + p->message,
                      {{"current_version", current}, {"pointer", "/content" + p->pointer}}};
  std::string out = m.merged.dump();
  if (out.size() > store_.config().max_document_bytes)
    throw HttpProblem{413, "the merged content exceeds max_document_bytes"};
  (*extra)["merged"] = {{"base", base}, {"remote", current}, {"resolved", m.resolved}};
  return out;
}

void Api::remove(vellum::Request& req) {
  if (req.query_param("permanent").value_or("false") != "true") return set_trash(req, kDoc, true);
  Record d = load_doc(req, "delete");
  const std::string user(req.principal().user_id);
  if (!d.meta["trashed"].get<bool>()) throw HttpProblem{409, "move the document to the trash first"};
  const std::string resource = store_.place_of_doc(d.meta).resource;
  // Audit first: a permanent deletion must not happen unrecorded.
  host_.audit("editor.document.purge", resource, VELLUM_OUTCOME_SUCCESS, &req,
              json({{"versions", d.meta["version_count"]}}).dump());
  auto txn = host_.begin();
  auto cur = store_.doc(d.meta["id"], &txn);
  if (!cur || cur->kv_version != d.kv_version)
    throw HttpProblem{409, "the document changed meanwhile; try again"};
  store_.erase_doc(txn, cur->meta);
  txn.commit();
  store_.publish("editor.document.purged",
                 {{"id", d.meta["id"]}, {"owner", d.meta["owner"]}, {"actor", user}});
  req.respond(204, "", "");
}

uint64_t Api::version_param(vellum::Request& req) const {
  auto n = parse_u64(req.param("n").value_or(""));
  if (!n || *n == 0) throw HttpProblem{400, "the version must be a positive integer"};
  return *n;
}

void Api::versions(vellum::Request& req) {
  Record d = load_doc(req, "read");
  const std::string id = d.meta["id"];
  const size_t limit = page_limit(req);
  std::string cursor;
  if (auto c = req.query_param("cursor")) {
    auto n = parse_u64(*c);
    if (!n) throw HttpProblem{400, "invalid cursor"};
    cursor = pad20(*n);
  }
  json items = json::array();
  const std::string next =
      store_.page("ver/" + id + "/", cursor, limit, [&](const std::string&, std::string_view v) {
        items.push_back(json::parse(v));
        return true;
      });
  json out = {{"items", items}};
  out["next_cursor"] = next.empty() ? json(nullptr) : json(std::to_string(parse_u64(next).value_or(0)));
  req.json(200, out.dump());
}

void Api::version(vellum::Request& req) {
  Record d = load_doc(req, "read");
  const std::string id = d.meta["id"];
  const uint64_t n = version_param(req);
  auto v = store_.version_meta(id, n);
  if (!v) throw HttpProblem{404, "no such version"};
  json out = *v;
  out["type"] = d.meta["type"];
  const std::string bytes = store_.read_bytes(d.meta, n);
  out["content"] = render(d.meta["type"], (*v)["content_type"], bytes);
  if (out["content"].is_null()) out["content_base64"] = b64encode(bytes);
  req.json(200, out.dump());
}

void Api::name_version(vellum::Request& req) {
  Record d = load_doc(req, "write");
  const std::string user(req.principal().user_id);
  const std::string id = d.meta["id"];
  const uint64_t n = version_param(req);
  json body = parse_body(req);
  auto nm = body.find("name");
  if (nm == body.end() || !(nm->is_null() || nm->is_string()))
    throw HttpProblem{422, "'name' must be a string or null", {{"pointer", "/name"}}};
  if (nm->is_string() && (nm->get_ref<const std::string&>().empty() ||
                          nm->get_ref<const std::string&>().size() > kMaxVersionName))
    throw HttpProblem{422, "'name' must be 1..128 bytes", {{"pointer", "/name"}}};
  auto txn = host_.begin();
  auto v = txn.get(Store::version_key(id, n));
  if (!v) throw HttpProblem{404, "no such version"};
  json ver = json::parse(v->data);
  if (nm->is_null())
    ver.erase("name");
  else
    ver["name"] = *nm;
  txn.put(Store::version_key(id, n), ver.dump(), v->version);
  txn.commit();
  host_.audit("editor.version.name", store_.place_of_doc(d.meta).resource, VELLUM_OUTCOME_SUCCESS, &req,
              json({{"version", n}, {"named", nm->is_string()}}).dump());
  store_.publish(
      "editor.version.named",
      {{"id", id}, {"owner", d.meta["owner"]}, {"version", n}, {"actor", user}, {"named", nm->is_string()}});
  req.json(200, ver.dump());
}

void Api::restore_version(vellum::Request& req) {
  Record d = load_doc(req, "write");
  const std::string user(req.principal().user_id);
  const std::string id = d.meta["id"];
  const uint64_t n = version_param(req);
  auto v = store_.version_meta(id, n);
  if (!v) throw HttpProblem{404, "no such version"};
  if (auto l = live_lock(id); l && (*l)["holder"] != user)
    throw HttpProblem{423, "the document is locked by another user", {{"lock", *l}}};
  const std::string bytes = store_.read_bytes(d.meta, n);
  store_.check_entitlement(d.meta["owner"], "editor.storage", bytes.size());
  auto txn = host_.begin();
  auto cur = store_.doc(id, &txn);
  if (!cur || cur->kv_version != d.kv_version)
    throw HttpProblem{409, "the document changed meanwhile; try again"};
  if (cur->meta["trashed"].get<bool>()) throw HttpProblem{409, "the document is in the trash"};
  json ver = store_.append_version(txn, cur->meta, cur->kv_version, bytes, (*v)["content_type"], user,
                                   json({{"restored_from", n}}));
  txn.commit();
  host_.audit("editor.version.restore", store_.place_of_doc(cur->meta).resource, VELLUM_OUTCOME_SUCCESS, &req,
              json({{"from", n}, {"version", ver["n"]}}).dump());
  event("editor.document.updated", cur->meta, user);
  json out = store_.public_meta(cur->meta);
  out["restored_from"] = n;
  req.json(200, out.dump());
}

// ---------------------------------------------------------------- locks

void Api::lock(vellum::Request& req) {
  Record d = load_doc(req, "write");
  const std::string user(req.principal().user_id);
  const std::string id = d.meta["id"];
  json body = parse_body(req);
  uint64_t timeout = store_.config().lock_default_s;
  if (auto t = body.find("timeout_seconds"); t != body.end()) {
    if (!t->is_number_unsigned() || t->get<uint64_t>() < 1 || t->get<uint64_t>() > store_.config().lock_max_s)
      throw HttpProblem{
          422,
          "'timeout_seconds' must be an integer in 1.." + std::to_string(store_.config().lock_max_s),
          {{"pointer", "/timeout_seconds"}}};
    timeout = t->get<uint64_t>();
  }
  const int64_t now = host_.now_ms();
  auto txn = host_.begin();
  auto cur = txn.get("lock/" + id);
  json old = cur ? json::parse(cur->data) : json(nullptr);
  const bool live = cur && old["expires_ms"].get<int64_t>() > now;
  if (live && old["holder"] != user)
    throw HttpProblem{409, "the document is locked by another user", {{"lock", old}}};
  json l = {{"holder", user},
            {"acquired_ms", live ? old["acquired_ms"].get<int64_t>() : now},
            {"expires_ms", now + static_cast<int64_t>(timeout) * 1000}};
  txn.put("lock/" + id, l.dump(), cur ? cur->version : VELLUM_VERSION_ABSENT);
  txn.commit();
  if (!live)
    store_.publish(
        "editor.lock.acquired",
        {{"id", id}, {"owner", d.meta["owner"]}, {"actor", user}, {"expires_ms", l["expires_ms"]}});
  req.json(live ? 200 : 201, l.dump());
}

void Api::lock_info(vellum::Request& req) {
  Record d = load_doc(req, "read");
  auto l = live_lock(d.meta["id"]);
  json out = {{"locked", l.has_value()}};
  if (l) out.update(*l);
  req.json(200, out.dump());
}

void Api::unlock(vellum::Request& req) {
  Record d = load_doc(req, "read");
  const std::string user(req.principal().user_id);
  const std::string id = d.meta["id"];
  const bool brk = req.query_param("break").value_or("false") == "true";
  auto l = live_lock(id);
  if (!l) throw HttpProblem{409, "the document is not locked"};
  const bool mine = (*l)["holder"] == user;
  const std::string resource = store_.place_of_doc(d.meta).resource;
  if (!mine) {
    if (!brk)
      throw HttpProblem{409, "the lock is held by another user; break it with ?break=true", {{"lock", *l}}};
    // Breaking someone's lock is for the owner and administrators (manage).
    if (!host_.authorize(req, "manage", resource, d.meta["owner"].get<std::string>())) {
      host_.audit("editor.lock.break", resource, VELLUM_OUTCOME_DENIED, &req);
      throw HttpProblem{403, "only the owner or an administrator may break the lock"};
    }
  } else if (!host_.authorize(req, "write", resource, d.meta["owner"].get<std::string>())) {
    throw HttpProblem{403, "you may not write this document"};
  }
  auto txn = host_.begin();
  if (auto cur = txn.get("lock/" + id)) txn.erase("lock/" + id, cur->version);
  txn.commit();
  if (!mine) {
    host_.audit("editor.lock.break", resource, VELLUM_OUTCOME_SUCCESS, &req,
                json({{"holder", (*l)["holder"]}}).dump());
    store_.publish("editor.lock.broken",
                   {{"id", id}, {"owner", d.meta["owner"]}, {"actor", user}, {"holder", (*l)["holder"]}});
  } else {
    store_.publish("editor.lock.released", {{"id", id}, {"owner", d.meta["owner"]}, {"actor", user}});
  }
  req.respond(204, "", "");
}

// ---------------------------------------------------------------- folders

void Api::folder_create(vellum::Request& req) {
  const std::string user = user_for_collection(req);
  json body = parse_body(req);
  const std::string name = name_field(body, "name", kMaxTitle, "");
  const std::string parent = folder_field(body, "parent").value_or("");
  std::string workspace;
  if (auto w = body.find("workspace"); w != body.end()) {
    if (!w->is_string() || !valid_workspace(*w))
      throw HttpProblem{422, "'workspace' must be 1..64 of [A-Za-z0-9_-]", {{"pointer", "/workspace"}}};
    if (!parent.empty())
      throw HttpProblem{422, "'workspace' is only for top-level folders", {{"pointer", "/workspace"}}};
    workspace = *w;
  }
  if (!parent.empty()) {
    load_folder(req, "write", parent);
    if (store_.folder_chain(parent).size() >= kMaxFolderDepth)
      throw HttpProblem{422, "folders nest at most 64 deep", {{"pointer", "/parent"}}};
    if (store_.place_of_folder(parent).trashed_above)
      throw HttpProblem{409, "the parent folder is in the trash"};
  }
  const std::string id = hex(host_.random(16));
  const Place place = store_.place_under(parent, workspace, "folder", id);
  if (!host_.authorize(req, "write", place.resource, user))
    throw HttpProblem{403, "you may not create folders here"};
  const int64_t now = host_.now_ms();
  json meta = {{"id", id},          {"name", name},      {"owner", user},
               {"created_ms", now}, {"updated_ms", now}, {"trashed", false}};
  meta["parent"] = parent.empty() ? json(nullptr) : json(parent);
  if (!workspace.empty()) meta["workspace"] = workspace;
  auto txn = host_.begin();
  if (!parent.empty() && !store_.folder(parent, &txn)) throw HttpProblem{404, "no such folder"};
  txn.put(Store::folder_key(id), meta.dump(), VELLUM_VERSION_ABSENT);
  txn.put("ownf/" + user + "/" + id, "", VELLUM_VERSION_ABSENT);
  if (!parent.empty()) txn.put("in/" + parent + "/" + id, "f", VELLUM_VERSION_ABSENT);
  txn.commit();
  host_.audit("editor.folder.create", place.resource, VELLUM_OUTCOME_SUCCESS, &req);
  store_.publish("editor.folder.created",
                 {{"id", id}, {"owner", user}, {"actor", user}, {"resource", place.resource}});
  req.json(201, view(kFolder, meta).dump());
}

void Api::folder_get(vellum::Request& req) {
  Record f = load_folder(req, "read", std::string(req.param("id").value_or("")));
  req.json(200, view(kFolder, f.meta).dump());
}

void Api::folder_items(vellum::Request& req) {
  const std::string id(req.param("id").value_or(""));
  load_folder(req, "read", id);
  const size_t limit = page_limit(req);
  const bool trashed = req.query_param("trashed").value_or("false") == "true";
  std::string cursor(req.query_param("cursor").value_or(""));
  if (!cursor.empty() && !valid_id(cursor)) throw HttpProblem{400, "invalid cursor"};
  json items = json::array();
  const std::string next =
      store_.page("in/" + id + "/", cursor, limit, [&](const std::string& child, std::string_view kind) {
        json item;
        if (kind == "f") {
          auto f = store_.folder(child);
          if (!f) return false;
          item = view(kFolder, f->meta);
          item["kind"] = "folder";
        } else {
          auto d = store_.doc(child);
          if (!d) return false;
          item = store_.public_meta(d->meta);
          item["kind"] = "document";
        }
        if (item["trashed"].get<bool>() != trashed) return false;
        if (!host_.authorize(req, "read", item["resource"].get<std::string>(),
                             item["owner"].get<std::string>()))
          return false;
        items.push_back(std::move(item));
        return true;
      });
  json out = {{"items", items}};
  out["next_cursor"] = next.empty() ? json(nullptr) : json(next);
  req.json(200, out.dump());
}

void Api::folder_remove(vellum::Request& req) {
  if (req.query_param("permanent").value_or("false") != "true") return set_trash(req, kFolder, true);
  const std::string id(req.param("id").value_or(""));
  Record f = load_folder(req, "delete", id);
  const std::string user(req.principal().user_id);
  if (!f.meta["trashed"].get<bool>()) throw HttpProblem{409, "move the folder to the trash first"};
  const std::string resource = store_.place_of_folder(id).resource;
  auto txn = host_.begin();
  auto cur = store_.folder(id, &txn);
  if (!cur || cur->kv_version != f.kv_version)
    throw HttpProblem{409, "the folder changed meanwhile; try again"};
  bool empty = true;
  vellum::Host::ScanOptions o;
  const std::string prefix = "in/" + id + "/";
  o.prefix = prefix;
  o.limit = 1;
  txn.scan(o, [&](std::string_view, std::string_view, uint64_t) {
    empty = false;
    return false;
  });
  if (!empty) throw HttpProblem{409, "the folder is not empty; delete or move its contents first"};
  txn.erase(Store::folder_key(id));
  txn.erase("ownf/" + cur->meta["owner"].get<std::string>() + "/" + id);
  if (cur->meta["parent"].is_string()) txn.erase("in/" + cur->meta["parent"].get<std::string>() + "/" + id);
  txn.commit();
  host_.audit("editor.folder.purge", resource, VELLUM_OUTCOME_SUCCESS, &req);
  store_.publish("editor.folder.purged", {{"id", id}, {"owner", cur->meta["owner"]}, {"actor", user}});
  req.respond(204, "", "");
}

// ---------------------------------------------------------------- shared by documents and folders

void Api::list_owned(vellum::Request& req, const Kind& k) {
  const std::string user = user_for_collection(req);
  const size_t limit = page_limit(req);
  const bool trashed = req.query_param("trashed").value_or("false") == "true";
  std::string cursor(req.query_param("cursor").value_or(""));
  if (!cursor.empty() && !valid_id(cursor)) throw HttpProblem{400, "invalid cursor"};
  json items = json::array();
  const std::string next = store_.page(
      std::string(k.own) + user + "/", cursor, limit, [&](const std::string& id, std::string_view) {
        auto r = fetch(k, id);
        if (!r) return false;
        json v = view(k, r->meta);
        const bool in_trash = r->meta["trashed"].get<bool>() || v.value("in_trashed_folder", false);
        if (in_trash != trashed) return false;
        if (!host_.authorize(req, "read", v["resource"].get<std::string>(),
                             r->meta["owner"].get<std::string>()))
          return false;
        items.push_back(std::move(v));
        return true;
      });
  json out = {{"items", items}};
  out["next_cursor"] = next.empty() ? json(nullptr) : json(next);
  req.json(200, out.dump());
}

void Api::rename_move(vellum::Request& req, const Kind& k) {
  const std::string id(req.param("id").value_or(""));
  Record r = load(req, k, "write", id);
  const std::string user(req.principal().user_id);
  json body = parse_body(req);
  const auto target = folder_field(body, k.parent_key);
  std::optional<std::string> name;
  if (body.contains(k.name_key)) name = name_field(body, k.name_key, kMaxTitle, "");
  if (!name && !target)
    throw HttpProblem{
        422, std::string("nothing to change: give '") + k.name_key + "' and/or '" + k.parent_key + "'"};
  const Place from = place(k, r.meta);
  const json& op = r.meta[k.parent_key];
  const std::string old_parent = op.is_string() ? op.get<std::string>() : "";
  const bool moving = target && *target != old_parent;
  if (moving) {
    // Moving changes what the object inherits rights from: it takes manage.
    if (!host_.authorize(req, "manage", from.resource, r.meta["owner"].get<std::string>()))
      throw HttpProblem{403, std::string("you may not move this ") + k.noun};
    if (!target->empty()) {
      load_folder(req, "write", *target);
      const auto chain = store_.folder_chain(*target);
      for (const Record& f : chain) {
        if (f.meta["trashed"].get<bool>()) throw HttpProblem{409, "the target folder is in the trash"};
        if (k.folder && f.meta["id"] == id)
          throw HttpProblem{422,
                            "a folder cannot move into itself or its own subfolder",
                            {{"pointer", std::string("/") + k.parent_key}}};
      }
      // The moved folder brings its subfolders: the deepest must still fit.
      if (k.folder && chain.size() + store_.subtree_height(id, kMaxFolderDepth) > kMaxFolderDepth)
        throw HttpProblem{
            422, "folders nest at most 64 deep", {{"pointer", std::string("/") + k.parent_key}}};
    }
  }
  auto txn = host_.begin();
  auto cur = fetch(k, id, &txn);
  if (!cur || cur->kv_version != r.kv_version)
    throw HttpProblem{409, std::string("the ") + k.noun + " changed meanwhile; try again"};
  json& meta = cur->meta;
  if (name) meta[k.name_key] = *name;
  if (moving) {
    if (!old_parent.empty()) txn.erase("in/" + old_parent + "/" + id);
    if (target->empty()) {
      meta[k.parent_key] = nullptr;
      // Stays inside the workspace it was in.
      if (!from.workspace.empty()) meta["workspace"] = from.workspace;
    } else {
      if (!store_.folder(*target, &txn)) throw HttpProblem{404, "no such folder"};
      meta[k.parent_key] = *target;
      meta.erase("workspace");
      txn.put("in/" + *target + "/" + id, k.tag, VELLUM_VERSION_ABSENT);
    }
  }
  meta["updated_ms"] = host_.now_ms();
  txn.put(k.folder ? Store::folder_key(id) : Store::doc_key(id), meta.dump(), cur->kv_version);
  txn.commit();
  const std::string prefix = std::string("editor.") + k.noun + ".";
  if (moving) {
    const std::string to = place(k, meta).resource;
    host_.audit(prefix + "move", to, VELLUM_OUTCOME_SUCCESS, &req, json({{"from", from.resource}}).dump());
    store_.publish(
        prefix + "moved",
        {{"id", id}, {"owner", meta["owner"]}, {"actor", user}, {"from", from.resource}, {"to", to}});
  }
  if (name) store_.publish(prefix + "renamed", {{"id", id}, {"owner", meta["owner"]}, {"actor", user}});
  req.json(200, view(k, meta).dump());
}

void Api::set_trash(vellum::Request& req, const Kind& k, bool to_trash) {
  const std::string id(req.param("id").value_or(""));
  Record r = load(req, k, "delete", id);
  const std::string user(req.principal().user_id);
  json& meta = r.meta;
  if (meta["trashed"].get<bool>() == to_trash)
    throw HttpProblem{
        409, std::string("the ") + k.noun + (to_trash ? " is already in the trash" : " is not in the trash")};
  meta["trashed"] = to_trash;
  if (to_trash)
    meta["trashed_ms"] = host_.now_ms();
  else
    meta.erase("trashed_ms");
  try {
    host_.put(k.folder ? Store::folder_key(id) : Store::doc_key(id), meta.dump(), r.kv_version);
  } catch (const Error& e) {
    if (e.status() == VELLUM_ERR_CONFLICT)
      throw HttpProblem{409, std::string("the ") + k.noun + " changed; try again"};
    throw;
  }
  const std::string resource = place(k, meta).resource;
  const std::string prefix = std::string("editor.") + k.noun + ".";
  host_.audit(prefix + (to_trash ? "delete" : "restore"), resource, VELLUM_OUTCOME_SUCCESS, &req);
  json p = {{"id", id}, {"owner", meta["owner"]}, {"actor", user}, {"resource", resource}};
  if (!k.folder) p["version"] = meta["version"];
  store_.publish(prefix + (to_trash ? "deleted" : "restored"), p);
  req.json(200, view(k, meta).dump());
}

// ---------------------------------------------------------------- export

void Api::export_doc(vellum::Request& req) {
  Record d = load_doc(req, "export");
  const std::string user(req.principal().user_id);
  const std::string id = d.meta["id"];
  const std::string type = d.meta["type"];
  if (d.meta.value("e2ee", false))
    throw HttpProblem{
        409, "export is unavailable for end-to-end encrypted documents: the server cannot read them"};
  const std::string format(req.query_param("format").value_or("json"));
  uint64_t n = d.meta["version"];
  if (auto v = req.query_param("version")) {
    auto p = parse_u64(*v);
    if (!p || *p == 0) throw HttpProblem{400, "'version' must be a positive integer"};
    n = *p;
  }
  auto ver = store_.version_meta(id, n);
  if (!ver) throw HttpProblem{404, "no such version"};
  const std::string ct = (*ver)["content_type"];
  if (!is_json_type(ct) && ct != kText)
    throw HttpProblem{409,
                      "this version is a realtime snapshot (" + ct + "); only JSON and text versions export"};
  const std::string bytes = store_.read_bytes(d.meta, n);
  std::string out, out_type, ext;
  auto unsupported = [&] {
    return HttpProblem{
        422, "a " + type + " document does not export as '" + format + "'", {{"pointer", "/format"}}};
  };
  if (format == "json") {
    out = ct == kText ? json(bytes).dump() : bytes;
    out_type = "application/json", ext = "json";
  } else if (type == "text") {
    if (format != "html") throw unsupported();
    out = "<pre>" + html_escape(bytes) + "</pre>\n", out_type = "text/html; charset=utf-8", ext = "html";
  } else {
    const json content = json::parse(bytes);
    if (type == "richtext" && format == "html") {
      out = richtext_html(content), out_type = "text/html; charset=utf-8", ext = "html";
    } else if (type == "richtext" && format == "markdown") {
      out = richtext_markdown(content), out_type = "text/markdown; charset=utf-8", ext = "md";
    } else if (type == "sheet" && format == "csv") {
      auto csv = sheet_csv(content, std::string(req.query_param("sheet").value_or("0")));
      if (!csv) throw HttpProblem{404, "no such sheet (give ?sheet= a name or a 0-based index)"};
      out = std::move(*csv), out_type = "text/csv; charset=utf-8", ext = "csv";
    } else if (type == "scene" && format == "svg") {
      out = scene_svg(content), out_type = "image/svg+xml", ext = "svg";
    } else {
      throw unsupported();
    }
  }
  out = filter_export(req, d.meta, n, format, out_type, out);
  host_.audit("editor.document.export", store_.place_of_doc(d.meta).resource, VELLUM_OUTCOME_SUCCESS, &req,
              json({{"format", format}, {"version", n}}).dump());
  req.set_header("Content-Disposition", "attachment; filename=\"" + id + "." + ext + "\"");
  req.set_header("X-Content-Type-Options", "nosniff");
  // An exported HTML or SVG opened from this origin must not run anything.
  req.set_header("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'");
  req.respond(200, out_type, out);
}

std::string Api::filter_export(vellum::Request& req, const json& meta, uint64_t version,
                               const std::string& format, const std::string& content_type,
                               const std::string& content) const {
  vellum::Service<vellum_export_filter_v1> f;
  try {
    f = host_.acquire<vellum_export_filter_v1>(VELLUM_EXPORT_FILTER_SERVICE, VELLUM_EXPORT_FILTER_MAJOR,
                                               VELLUM_EXPORT_FILTER_MINOR);
  } catch (const Error& e) {
    if (e.status() == VELLUM_ERR_NOT_FOUND) return content;  // no filter installed
    throw;
  }
  const std::string doc = store_.describe(meta).dump();
  const std::string user(req.principal().user_id);
  vellum_buffer out{};
  const vellum_status s =
      f->filter(f.instance(), vellum::to_c(doc), version, vellum::to_c(format), vellum::to_c(user),
                vellum::to_c(content_type), vellum::to_bytes(content), &out);
  if (s == VELLUM_ERR_PERMISSION_DENIED) {
    host_.api()->free(out.data);
    host_.audit("editor.document.export", store_.place_of_doc(meta).resource, VELLUM_OUTCOME_DENIED, &req,
                json({{"format", format}, {"version", version}}).dump());
    throw HttpProblem{403, "the export was refused by the export filter"};
  }
  if (s != VELLUM_OK) {
    host_.api()->free(out.data);
    throw Error(VELLUM_ERR_UNAVAILABLE, "the export filter failed");
  }
  std::string result(reinterpret_cast<const char*>(out.data), out.size);
  host_.api()->free(out.data);
  return result;
}

// Element-level permissions: every scene node the save adds, removes or
// changes is checked as ".../document/<d>/node/<n>", so a PDP can grant or
// deny single nodes (with inheritance from the document).
void Api::check_nodes(vellum::Request& req, const json& meta, const json& next,
                      const std::string& resource) const {
  json before = json::object();
  if (meta.value("content_type", std::string()) == kJson)
    before = json::parse(store_.read_bytes(meta, meta["version"]));
  const std::string owner = meta["owner"];
  for (const std::string& node : changed_nodes(before, next))
    if (!host_.authorize(req, "write", resource + "/node/" + node, owner))
      throw HttpProblem{403, "you may not change this node", {{"pointer", "/content/nodes/" + node}}};
}

}  // namespace vellum::editor
