#include "documents_service.hpp"

#include <cstring>

#include "common.hpp"

namespace vellum::editor {

using nlohmann::json;

namespace {

// Hands bytes to the caller in a host-allocated buffer.
void give(const vellum_host_api_v1* api, const std::string& bytes, vellum_buffer* out) {
  out->data = nullptr;
  out->size = 0;
  if (bytes.empty()) return;
  auto* p = static_cast<uint8_t*>(api->alloc(bytes.size()));
  if (!p) throw vellum::Error(VELLUM_ERR_INTERNAL, "out of memory");
  std::memcpy(p, bytes.data(), bytes.size());
  out->data = p;
  out->size = bytes.size();
}

}  // namespace

DocumentsService::DocumentsService(Store& store) : store_(store) {
  vtable_.struct_size = sizeof vtable_;
  vtable_.describe = [](void* inst, vellum_str doc_id, vellum_buffer* out_json) noexcept -> vellum_status {
    auto* self = static_cast<DocumentsService*>(inst);
    vellum::Host& h = self->store_.host();
    return vellum::detail::guarded(h.api(), h.self(), [&] {
      if (!out_json) throw vellum::Error(VELLUM_ERR_INVALID_ARGUMENT, "out_json is required");
      const std::string id(vellum::to_sv(doc_id));
      if (!valid_id(id)) throw vellum::Error(VELLUM_ERR_INVALID_ARGUMENT, "malformed document id");
      auto d = self->store_.doc(id);
      if (!d) throw vellum::Error(VELLUM_ERR_NOT_FOUND, "no such document");
      give(h.api(), self->store_.describe(d->meta).dump(), out_json);
      return VELLUM_OK;
    });
  };
  vtable_.read_version = [](void* inst, vellum_str doc_id, uint64_t version, vellum_buffer* out_content,
                            vellum_buffer* out_meta_json) noexcept -> vellum_status {
    auto* self = static_cast<DocumentsService*>(inst);
    vellum::Host& h = self->store_.host();
    return vellum::detail::guarded(h.api(), h.self(), [&] {
      if (!out_content) throw vellum::Error(VELLUM_ERR_INVALID_ARGUMENT, "out_content is required");
      const std::string id(vellum::to_sv(doc_id));
      if (!valid_id(id)) throw vellum::Error(VELLUM_ERR_INVALID_ARGUMENT, "malformed document id");
      if (version == 0) throw vellum::Error(VELLUM_ERR_INVALID_ARGUMENT, "versions start at 1");
      auto d = self->store_.doc(id);
      if (!d) throw vellum::Error(VELLUM_ERR_NOT_FOUND, "no such document");
      auto v = self->store_.version_meta(id, version);
      if (!v) throw vellum::Error(VELLUM_ERR_NOT_FOUND, "no such version");
      const std::string bytes = self->store_.read_bytes(d->meta, version);
      std::string meta;
      if (out_meta_json) {
        json m = {{"version", (*v)["n"]},
                  {"content_hash", (*v)["content_hash"]},
                  {"author", (*v)["author"]},
                  {"created_ms", (*v)["created_ms"]},
                  {"parent", (*v)["parent"]},
                  {"name", v->value("name", json(nullptr))},
                  {"content_type", (*v)["content_type"]}};
        meta = m.dump();
      }
      give(h.api(), bytes, out_content);
      if (out_meta_json) {
        try {
          give(h.api(), meta, out_meta_json);
        } catch (...) {
          h.api()->free(out_content->data);
          out_content->data = nullptr;
          out_content->size = 0;
          throw;
        }
      }
      return VELLUM_OK;
    });
  };
}

}  // namespace vellum::editor
