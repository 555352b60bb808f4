// The editor plugin: folders and documents (plain text, rich text, sheets,
// scenes, end-to-end encrypted blobs) with immutable versions, each document
// encrypted under its own data key from the crypto service. See ../README.md.
#include <vellum/sdk.hpp>
#include <vellum/services/crypto_v1.h>
#include <vellum/services/documents_v1.h>

#include <stdexcept>
#include <string>

#include "api.hpp"
#include "collab/collab.hpp"
#include "config.hpp"
#include "documents_service.hpp"
#include "store.hpp"

namespace {

using vellum::Error;
namespace ed = vellum::editor;

constexpr const char* kTransitKey = "editor";

ed::Config parse(std::string_view config) {
  try {
    ed::Config cfg = ed::parse_config(config);
    (void)vellum::editor::collab::parse_config(cfg.collab);  // check-config sees realtime keys too
    return cfg;
  } catch (const std::invalid_argument& e) {
    throw Error(VELLUM_ERR_INVALID_ARGUMENT, e.what());
  }
}

class Editor : public vellum::Plugin {
 public:
  static constexpr const char* kName = "editor";
  static constexpr const char* kVersion = "0.2.0";
  static constexpr const char* kDescription = "Encrypted, versioned documents and folders";
  static constexpr const char* kRequires[] = {"crypto", nullptr};
  static constexpr const char* kProvides[] = {VELLUM_DOCUMENTS_SERVICE, nullptr};
  // Realtime sockets re-check rights with authorize_principal (ABI 1.2);
  // Hocuspocus providers authenticate in a message (ws_authenticate, 1.4).
  static constexpr uint32_t kMinMinor = 4;

  static void validate(std::string_view config) { (void)parse(config); }

  Editor(vellum::Host& host, std::string_view config)
      : Plugin(host), cfg_(parse(config)), store_(host, cfg_), documents_(store_), api_(store_) {}

  void start() override {
    store_.attach(
        host().acquire<vellum_crypto_v1>(VELLUM_CRYPTO_SERVICE, VELLUM_CRYPTO_MAJOR, VELLUM_CRYPTO_MINOR));
    ensure_transit_key();
    host().provide(VELLUM_DOCUMENTS_SERVICE, VELLUM_DOCUMENTS_MAJOR, VELLUM_DOCUMENTS_MINOR,
                   documents_.vtable(), &documents_);
    api_.register_routes();
    collab_ = std::make_unique<vellum::editor::collab::Server>(host(), store_, cfg_.collab);
  }

  void stop() override {
    collab_.reset();
    store_.detach();
  }

 private:
  // The transit key that wraps every document key: created once, then reused.
  void ensure_transit_key() {
    auto crypto =
        host().acquire<vellum_crypto_v1>(VELLUM_CRYPTO_SERVICE, VELLUM_CRYPTO_MAJOR, VELLUM_CRYPTO_MINOR);
    vellum_status s = crypto->create_key(crypto.instance(), vellum::to_c(kTransitKey),
                                         VELLUM_CRYPTO_KEY_AES256_GCM, vellum::to_c(""));
    if (s != VELLUM_OK && s != VELLUM_ERR_CONFLICT) host().check(s);
  }

  ed::Config cfg_;
  // The document store; also the DocDirectory the realtime server uses.
  ed::Store store_;
  ed::DocumentsService documents_;
  ed::Api api_;
  std::unique_ptr<vellum::editor::collab::Server> collab_;
};

}  // namespace

VELLUM_PLUGIN(Editor)
