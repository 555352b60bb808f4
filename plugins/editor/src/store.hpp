// The editor's document store: documents, folders and immutable versions in
// the plugin's storage namespace, content encrypted under per-document keys
// from the crypto service. Routes, the documents service and the realtime
// server (through DocDirectory) all go through it.
#pragma once

#include <vellum/sdk.hpp>
#include <vellum/services/crypto_v1.h>
#include <vellum/services/entitlements_v1.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "doc_directory.hpp"

namespace vellum::editor {

// A stored record (document or folder metadata) and its row version for
// compare-and-set.
struct Record {
  nlohmann::json meta;
  uint64_t kv_version = 0;
};

// Where an object sits: its authorization path (docs/authorization.md) and
// whether a folder above it is in the trash.
struct Place {
  std::string resource;
  std::string workspace;  // empty when none
  bool trashed_above = false;
};

class Store : public DocDirectory {
 public:
  Store(vellum::Host host, const Config& cfg) : host_(host), cfg_(cfg) {}

  // The crypto service is acquired in start() and released in stop().
  void attach(vellum::Service<vellum_crypto_v1> crypto) { crypto_ = std::move(crypto); }
  void attach_entitlements(vellum::Service<vellum_entitlements_v1> e) { entitlements_ = std::move(e); }
  void detach() {
    crypto_ = {};
    entitlements_ = {};
  }
  const Config& config() const { return cfg_; }
  vellum::Host& host() { return host_; }

  // ---- keys and records
  static std::string doc_key(const std::string& id) { return "doc/" + id; }
  static std::string folder_key(const std::string& id) { return "fld/" + id; }
  static std::string version_key(const std::string& id, uint64_t n);
  static std::string blob_key(const std::string& id, uint64_t n);

  std::optional<Record> doc(const std::string& id, const vellum::Transaction* txn = nullptr) const;
  std::optional<Record> folder(const std::string& id, const vellum::Transaction* txn = nullptr) const;
  // The chain of folder ids from the top folder down to folder_id (inclusive).
  // Throws Error(INTERNAL) on a broken or cyclic chain.
  std::vector<Record> folder_chain(const std::string& folder_id) const;
  Place place_of_folder(const std::string& folder_id) const;
  // Levels of folders from folder_id down (1 = no subfolders); stops
  // counting at `cap`.
  size_t subtree_height(const std::string& folder_id, size_t cap) const;
  // Every key under prefix in order, past the host's per-scan limit.
  void for_each(const std::string& prefix,
                const std::function<void(std::string_view key, std::string_view value)>& fn)
      const;                                             // ".../folder/<folder_id>"
  Place place_of_doc(const nlohmann::json& meta) const;  // ".../document/<id>"
  // Path of a new object placed under `folder` (may be empty) with optional
  // workspace (top level only), plus "/<type>/<id>".
  Place place_under(const std::string& folder, const std::string& workspace, const std::string& type,
                    const std::string& id) const;

  // ---- document keys
  std::pair<std::string, std::string> new_key(const std::string& id) const;  // {wrapped, raw}
  std::string unwrap(const std::string& id, const std::string& wrapped) const;

  // ---- versions
  // Appends version meta["version"] + 1 holding `bytes` inside txn, updates
  // meta (version, size, hash, content type, updated_ms) and writes it with
  // compare-and-set on kv_version. `extra` members go into the version record.
  // Returns the version record.
  nlohmann::json append_version(vellum::Transaction& txn, nlohmann::json& meta, uint64_t kv_version,
                                const std::string& bytes, const std::string& content_type,
                                const std::string& author,
                                const nlohmann::json& extra = nlohmann::json::object());
  // Writes a new document with version 1 inside txn; returns its metadata.
  nlohmann::json create_doc(vellum::Transaction& txn, const std::string& id, const nlohmann::json& fields,
                            const std::string& bytes, const std::string& content_type,
                            const std::string& author);
  // The version record, or nullopt.
  std::optional<nlohmann::json> version_meta(const std::string& id, uint64_t n) const;
  // The exact stored bytes of version n (decrypted); throws Error(INTERNAL)
  // if they fail authentication.
  std::string read_bytes(const nlohmann::json& meta, uint64_t n) const;
  // Deletes versions that retention no longer keeps (never the current one,
  // never a named one); returns how many went. Inside txn.
  size_t apply_retention(vellum::Transaction& txn, nlohmann::json& meta);
  // Removes a document and everything under it inside txn.
  void erase_doc(vellum::Transaction& txn, const nlohmann::json& meta);

  // ---- quotas: asks the entitlements service if one is registered.
  // Throws HttpProblem 403/402-style (see README) when refused.
  void check_entitlement(const std::string& user, const char* what, uint64_t bytes) const;

  // Public view of document metadata (no wrapped key), with resource path.
  nlohmann::json public_meta(const nlohmann::json& meta) const;
  nlohmann::json describe(const nlohmann::json& meta) const;

  // Pages through keys under prefix after cursor (a key suffix), calling
  // take(suffix, value) until it accepted `limit` items. Returns the suffix
  // to continue after, or empty at the end.
  std::string page(const std::string& prefix, const std::string& cursor, size_t limit,
                   const std::function<bool(const std::string& suffix, std::string_view value)>& take) const;

  void publish(const std::string& topic, const nlohmann::json& payload) const;

  // ---- DocDirectory (the realtime server)
  std::optional<DocInfo> find(const std::string& id) override;
  uint64_t snapshot_version(const std::string& id, const std::string& state, const std::string& author,
                            const std::string& content_type) override;

 private:
  std::string take(vellum_buffer b) const;
  std::string take_secret(vellum_buffer b) const;

  vellum::Host host_;
  Config cfg_;
  vellum::Service<vellum_crypto_v1> crypto_;
  vellum::Service<vellum_entitlements_v1> entitlements_;
};

}  // namespace vellum::editor
