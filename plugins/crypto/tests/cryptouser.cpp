// A TEST plugin that consumes the "crypto" service through the ABI, the way
// another plugin would: POST /v1/test/cryptouser/roundtrip encrypts the body
// in both ciphertext forms, decrypts, rewraps, makes a data key and tries a
// tampered ciphertext, and answers with what it saw (never the key).
#include <vellum/sdk.hpp>
#include <vellum/services/crypto_v1.h>

#include <string>

namespace {

class CryptoUser : public vellum::Plugin {
 public:
  static constexpr const char* kName = "cryptouser";
  static constexpr const char* kVersion = "0.1.0";
  static constexpr const char* kRequires[] = {"crypto", nullptr};

  CryptoUser(vellum::Host& host, std::string_view) : Plugin(host) {}

  void start() override {
    svc_ = host().acquire<vellum_crypto_v1>(VELLUM_CRYPTO_SERVICE, VELLUM_CRYPTO_MAJOR, VELLUM_CRYPTO_MINOR);
    vellum_status s = svc_->create_key(svc_.instance(), vellum::to_c("cryptouser"),
                                       VELLUM_CRYPTO_KEY_AES256_GCM, vellum::to_c(""));
    if (s != VELLUM_OK && s != VELLUM_ERR_CONFLICT) host().check(s);
    host().route(
        "POST", "/v1/test/cryptouser/roundtrip", [this](vellum::Request& req) { roundtrip(req); },
        VELLUM_ROUTE_PUBLIC);
  }
  void stop() override { svc_ = {}; }

 private:
  std::string take(vellum_buffer b) {
    std::string s(reinterpret_cast<const char*>(b.data), b.size);
    host().api()->free(b.data);
    return s;
  }

  void roundtrip(vellum::Request& req) {
    const auto* api = svc_.operator->();
    void* inst = svc_.instance();
    const vellum_str name = vellum::to_c("cryptouser");
    const vellum_bytes pt = vellum::to_bytes(req.body());
    const vellum_bytes ctx = vellum::to_bytes("ctx");
    std::string out = "{";
    for (uint32_t flags : {0u, VELLUM_CRYPTO_BINARY}) {
      vellum_buffer ct{}, back{}, re{};
      host().check(api->encrypt(inst, name, 0, flags, pt, ctx, &ct));
      std::string c = take(ct);
      host().check(api->decrypt(inst, name, vellum::to_c(c), ctx, &back));
      const bool same = take(back) == req.body();
      host().check(api->rewrap(inst, name, vellum::to_c(c), ctx, &re));
      std::string r = take(re);
      std::string tampered = c;
      tampered.back() = static_cast<char>(tampered.back() ^ 1);
      vellum_buffer bad{};
      vellum_status st = api->decrypt(inst, name, vellum::to_c(tampered), ctx, &bad);
      const std::string k = flags ? "binary" : "text";
      out += "\"" + k + "_roundtrip\":" + (same ? "true" : "false") + ",\"" + k +
             "_tampered_status\":" + std::to_string(st) + ",\"" + k + "_rewrapped_prefix\":\"" +
             (flags ? std::string("VT") : r.substr(0, 22)) + "\",\"" + k +
             "_contains_plaintext\":" + (c.find(req.body()) != std::string::npos ? "true" : "false") + ",";
    }
    vellum_buffer wrapped{}, plain{};
    host().check(api->generate_data_key(inst, name, 256, vellum::to_bytes(""), &wrapped, &plain));
    std::string w = take(wrapped), p = take(plain);
    vellum_buffer unwrapped{};
    host().check(api->decrypt(inst, name, vellum::to_c(w), vellum::to_bytes(""), &unwrapped));
    out += "\"datakey_ok\":" + std::string(take(unwrapped) == p && p.size() == 32 ? "true" : "false");
    vellum_crypto_key_info_v1 info{};
    info.struct_size = sizeof info;
    host().check(api->key_info(inst, name, &info));
    out += ",\"latest_version\":" + std::to_string(info.latest_version) + "}";
    req.json(200, out);
  }

  vellum::Service<vellum_crypto_v1> svc_;
};

}  // namespace

VELLUM_PLUGIN(CryptoUser)
