// A TEST plugin that consumes the "crypto" service through the ABI, the way
// another plugin would: POST /v1/test/cryptouser/roundtrip encrypts the body
// in both ciphertext forms, decrypts, rewraps, makes a data key and tries a
// tampered ciphertext, and answers with what it saw (never the key).
// POST /v1/test/cryptouser/chain with "<op> <id> [<arg>]" drives the key-chain
// functions of minor 1 (as the sharing plugin would) and answers
// {"status", "version", "info"}.
#include <vellum/sdk.hpp>
#include <vellum/services/crypto_v1.h>

#include <cstddef>
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
    host().route(
        "POST", "/v1/test/cryptouser/chain", [this](vellum::Request& req) { chain(req); },
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

  void chain(vellum::Request& req) {
    const auto* api = svc_.operator->();
    void* inst = svc_.instance();
    std::string words[3];
    size_t n = 0;
    for (size_t pos = 0; n < 3 && pos < req.body().size();) {
      size_t sp = req.body().find(' ', pos);
      if (sp == std::string_view::npos) sp = req.body().size();
      words[n++] = std::string(req.body().substr(pos, sp - pos));
      pos = sp + 1;
    }
    const std::string &op = words[0], &id = words[1], &arg = words[2];
    // A minor-0 provider has no such functions: check the table's size first.
    if (api->struct_size < offsetof(vellum_crypto_v1, keychain_info) + sizeof api->keychain_info) {
      req.problem(501, "", "crypto service older than 1.1");
      return;
    }
    uint32_t version = 0;
    vellum_status st = VELLUM_ERR_INVALID_ARGUMENT;
    if (op == "create-managed" || op == "create-e2ee")
      st =
          api->team_key_create(inst, vellum::to_c(id), vellum::to_c(arg),
                               op == "create-managed" ? VELLUM_CRYPTO_KEYS_MANAGED : VELLUM_CRYPTO_KEYS_E2EE);
    else if (op == "add")
      st = api->team_add_member(inst, vellum::to_c(id), vellum::to_c(arg));
    else if (op == "remove")
      st = api->team_remove_member(inst, vellum::to_c(id), vellum::to_c(arg), &version);
    else if (op == "rotate")
      st = api->keychain_rotate(inst, vellum::to_c(id), vellum::to_c("suspected breach"), &version);
    else if (op == "document")  // document <doc id> <team id>; owner: the team's
      st = api->document_key_create(inst, vellum::to_c(id), vellum::to_c(arg), vellum::to_c("x"),
                                    VELLUM_CRYPTO_KEYS_MANAGED);
    std::string info = "null";
    vellum_buffer b{};
    if (api->keychain_info(inst, vellum::to_c(id), &b) == VELLUM_OK) info = take(b);
    std::string out = "{\"status\":" + std::to_string(st);
    out += ",\"version\":" + std::to_string(version);
    out += ",\"info\":" + info + "}";
    req.json(200, out);
  }

  vellum::Service<vellum_crypto_v1> svc_;
};

}  // namespace

VELLUM_PLUGIN(CryptoUser)
