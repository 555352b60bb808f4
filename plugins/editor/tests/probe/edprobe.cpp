// Test-only plugin around the editor's service seams: it consumes the
// "documents" service (routes that describe and read versions), provides
// "entitlements" (refuses storage over a configured size) and
// "export-filter" (stamps exports, refuses CSV), and issues guest sessions.
#include <vellum/sdk.hpp>
#include <vellum/services/documents_v1.h>
#include <vellum/services/entitlements_v1.h>
#include <vellum/services/export_v1.h>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <cstring>
#include <string>

namespace {

using nlohmann::json;

std::string take(const vellum_host_api_v1* api, vellum_buffer b) {
  std::string s(reinterpret_cast<const char*>(b.data), b.size);
  api->free(b.data);
  return s;
}

std::string sha256_hex(const std::string& s) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  static const char* h = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += {h[md[i] >> 4], h[md[i] & 15]};
  return out;
}

class Probe : public vellum::Plugin {
 public:
  static constexpr const char* kName = "edprobe";
  static constexpr const char* kVersion = "0.0.1";
  static constexpr const char* kRequires[] = {VELLUM_DOCUMENTS_SERVICE, nullptr};
  static constexpr const char* kProvides[] = {VELLUM_ENTITLEMENTS_SERVICE, VELLUM_EXPORT_FILTER_SERVICE,
                                              nullptr};
  static constexpr uint32_t kMinMinor = 2;

  Probe(vellum::Host& host, std::string_view config) : Plugin(host) {
    auto c = json::parse(config.empty() ? std::string_view("{}") : config);
    storage_limit_ = c.value("storage_limit", uint64_t{0});
    ent_.struct_size = sizeof ent_;
    ent_.check = [](void* inst, vellum_str, vellum_str feature, uint64_t amount) noexcept -> vellum_status {
      auto* self = static_cast<Probe*>(inst);
      if (vellum::to_sv(feature) == "editor.storage" && self->storage_limit_ &&
          amount > self->storage_limit_) {
        self->host().api()->set_error(self->host().self(), vellum::to_c("storage quota exceeded"));
        return VELLUM_ERR_LIMIT;
      }
      return VELLUM_OK;
    };
    filter_.struct_size = sizeof filter_;
    filter_.filter = [](void* inst, vellum_str, uint64_t version, vellum_str format, vellum_str user,
                        vellum_str, vellum_bytes content, vellum_buffer* out) noexcept -> vellum_status {
      auto* self = static_cast<Probe*>(inst);
      const vellum_host_api_v1* api = self->host().api();
      if (vellum::to_sv(format) == "csv") {
        api->set_error(self->host().self(), vellum::to_c("csv exports are disabled here"));
        return VELLUM_ERR_PERMISSION_DENIED;
      }
      std::string s(vellum::to_sv(content));
      s += "\n[watermark " + std::string(vellum::to_sv(user)) + " v";
      s += std::to_string(version) + "]";
      out->data = static_cast<uint8_t*>(api->alloc(s.size()));
      if (!out->data) return VELLUM_ERR_INTERNAL;
      std::memcpy(out->data, s.data(), s.size());
      out->size = s.size();
      return VELLUM_OK;
    };
    host.provide(VELLUM_ENTITLEMENTS_SERVICE, VELLUM_ENTITLEMENTS_MAJOR, VELLUM_ENTITLEMENTS_MINOR, &ent_,
                 this);
    host.provide(VELLUM_EXPORT_FILTER_SERVICE, VELLUM_EXPORT_FILTER_MAJOR, VELLUM_EXPORT_FILTER_MINOR,
                 &filter_, this);
  }

  void start() override {
    docs_ = host().acquire<vellum_documents_v1>(VELLUM_DOCUMENTS_SERVICE, VELLUM_DOCUMENTS_MAJOR, 0);
    host().route("GET", "/v1/edprobe/docs/{id}", [this](vellum::Request& req) {
      vellum_buffer out{};
      host().check(docs_->describe(docs_.instance(), vellum::to_c(*req.param("id")), &out));
      req.json(200, take(host().api(), out));
    });
    host().route("GET", "/v1/edprobe/docs/{id}/versions/{n}", [this](vellum::Request& req) {
      vellum_buffer content{}, meta{};
      host().check(docs_->read_version(docs_.instance(), vellum::to_c(*req.param("id")),
                                       std::stoull(std::string(*req.param("n"))), &content, &meta));
      const std::string bytes = take(host().api(), content);
      json out = {{"meta", json::parse(take(host().api(), meta))},
                  {"sha256", sha256_hex(bytes)},
                  {"size", bytes.size()}};
      req.json(200, out.dump());
    });
    host().route("POST", "/v1/edprobe/guest", [this](vellum::Request& req) {
      req.json(200,
               json({{"token", host().guest_session_issue("visitor", "view", "Visitor", 600000)}}).dump());
    });
  }
  void stop() override { docs_ = {}; }

 private:
  uint64_t storage_limit_ = 0;
  vellum_entitlements_v1 ent_{};
  vellum_export_filter_v1 filter_{};
  vellum::Service<vellum_documents_v1> docs_;
};

}  // namespace

VELLUM_PLUGIN(Probe)
