// What the realtime collaboration server (src/collab/) needs from the editor's
// document store, kept narrow so the two halves of the plugin evolve apart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vellum::editor {

struct DocInfo {
  std::string id;
  std::string owner;     // user id
  std::string resource;  // authorization path, docs/authorization.md
  std::string type;      // "text", "richtext", "sheet", "scene", ...
  bool e2ee = false;     // end-to-end: the server only sees opaque blobs
  bool trashed = false;
};

class DocDirectory {
 public:
  virtual ~DocDirectory() = default;
  // nullopt when no such document. THREADS: any; reads storage.
  virtual std::optional<DocInfo> find(const std::string& id) = 0;
  // Store `state` (a Yjs update encoding the whole document, or for an E2EE
  // document the client's encrypted snapshot) as a new immutable version
  // with content type `content_type` ("application/vnd.yjs.update" ...).
  // Returns the new version number. THREADS: any; writes storage.
  virtual uint64_t snapshot_version(const std::string& id, const std::string& state, const std::string& author,
                                    const std::string& content_type) = 0;
};

}  // namespace vellum::editor
