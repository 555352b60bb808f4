// The editor's HTTP API (/v1/docs, /v1/folders). See ../README.md.
#pragma once

#include <vellum/sdk.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "store.hpp"

namespace vellum::editor {

class Api {
 public:
  explicit Api(Store& store) : store_(store), host_(store.host()) {}
  // Registers every route; call from start().
  void register_routes();

 private:
  template <class F>
  void route(const char* method, const char* path, const char* summary, F&& f);

  // ---- request helpers
  nlohmann::json parse_body(vellum::Request& req) const;
  std::string content_bytes(const std::string& type, bool e2ee, const nlohmann::json& body,
                            std::string* content_type) const;
  nlohmann::json render(const std::string& type, const std::string& content_type,
                        const std::string& bytes) const;
  std::string user_for_collection(vellum::Request& req) const;  // refuses guests
  // Documents and folders share listing, renaming, moving and the trash.
  struct Kind {
    bool folder;
    const char* noun;        // "document", "folder"
    const char* name_key;    // "title", "name"
    const char* parent_key;  // "folder", "parent"
    const char* tag;         // value in the in/<folder>/ index
    const char* own;         // owner index prefix
  };
  static const Kind kDoc, kFolder;
  std::optional<Record> fetch(const Kind& k, const std::string& id,
                              const vellum::Transaction* txn = nullptr) const;
  Place place(const Kind& k, const nlohmann::json& meta) const;
  nlohmann::json view(const Kind& k, const nlohmann::json& meta) const;
  Record load(vellum::Request& req, const Kind& k, const char* action, const std::string& id) const;
  void list_owned(vellum::Request& req, const Kind& k);
  void rename_move(vellum::Request& req, const Kind& k);
  void set_trash(vellum::Request& req, const Kind& k, bool to_trash);
  Record load_doc(vellum::Request& req, const char* action) const;
  Record load_folder(vellum::Request& req, const char* action, const std::string& id) const;
  size_t page_limit(vellum::Request& req) const;
  std::optional<nlohmann::json> live_lock(const std::string& id) const;
  void event(const std::string& what, const nlohmann::json& meta, std::string_view actor) const;

  // ---- documents
  void create(vellum::Request& req);
  void list_docs(vellum::Request& req) { list_owned(req, kDoc); }
  void get(vellum::Request& req);
  void save(vellum::Request& req);
  std::string merged(const nlohmann::json& meta, uint64_t base, const std::string& local,
                     const std::string& user, nlohmann::json* extra) const;
  void patch_doc(vellum::Request& req) { rename_move(req, kDoc); }
  void restore(vellum::Request& req) { set_trash(req, kDoc, false); }
  void remove(vellum::Request& req);
  void versions(vellum::Request& req);
  void version(vellum::Request& req);
  void name_version(vellum::Request& req);
  void restore_version(vellum::Request& req);
  uint64_t version_param(vellum::Request& req) const;
  void export_doc(vellum::Request& req);
  void check_nodes(vellum::Request& req, const nlohmann::json& meta, const nlohmann::json& next,
                   const std::string& resource) const;
  std::string filter_export(vellum::Request& req, const nlohmann::json& meta, uint64_t version,
                            const std::string& format, const std::string& content_type,
                            const std::string& content) const;
  // ---- locks
  void lock(vellum::Request& req);
  void lock_info(vellum::Request& req);
  void unlock(vellum::Request& req);
  // ---- folders
  void folder_create(vellum::Request& req);
  void list_folders(vellum::Request& req) { list_owned(req, kFolder); }
  void folder_get(vellum::Request& req);
  void folder_items(vellum::Request& req);
  void patch_folder(vellum::Request& req) { rename_move(req, kFolder); }
  void folder_restore(vellum::Request& req) { set_trash(req, kFolder, false); }
  void folder_remove(vellum::Request& req);

  Store& store_;
  vellum::Host& host_;
};

}  // namespace vellum::editor
