// Installs a storage barrier through the ABI. The transform is a TEST
// FIXTURE, not encryption: it reverses the bytes and binds the context, so a
// test can see that values pass through the barrier (nothing readable on
// disk) and that a value moved to another key fails to unseal. Real sealing
// (AES-256-GCM) belongs to the crypto plugin.
#include <vellum/sdk.hpp>

#include <algorithm>
#include <cstring>

namespace {

vellum_status seal(void* user, vellum_bytes context, vellum_bytes in, vellum_buffer* out) {
  auto* api = static_cast<const vellum_host_api_v1*>(user);
  // [u32 context length][context][reversed value]
  size_t n = 4 + context.size + in.size;
  auto* p = static_cast<uint8_t*>(api->alloc(n));
  if (!p) return VELLUM_ERR_LIMIT;
  uint32_t len = static_cast<uint32_t>(context.size);
  std::memcpy(p, &len, 4);
  if (context.size) std::memcpy(p + 4, context.data, context.size);
  for (size_t i = 0; i < in.size; ++i) p[4 + context.size + i] = in.data[in.size - 1 - i];
  *out = vellum_buffer{p, n};
  return VELLUM_OK;
}

vellum_status unseal(void* user, vellum_bytes context, vellum_bytes in, vellum_buffer* out) {
  auto* api = static_cast<const vellum_host_api_v1*>(user);
  uint32_t len = 0;
  if (in.size < 4) return VELLUM_ERR_INVALID_ARGUMENT;
  std::memcpy(&len, in.data, 4);
  if (len != context.size || in.size < 4 + len || std::memcmp(in.data + 4, context.data, len) != 0)
    return VELLUM_ERR_PERMISSION_DENIED;  // sealed for another key
  size_t n = in.size - 4 - len;
  auto* p = static_cast<uint8_t*>(api->alloc(n ? n : 1));
  for (size_t i = 0; i < n; ++i) p[i] = in.data[in.size - 1 - i];
  *out = vellum_buffer{p, n};
  return VELLUM_OK;
}

class Sealer : public vellum::Plugin {
 public:
  static constexpr const char* kName = "sealer";
  static constexpr const char* kVersion = "0.1.0";
  Sealer(vellum::Host& host, std::string_view) : Plugin(host) {
    vellum_barrier_v1 b{};
    b.struct_size = sizeof b;
    b.name = "test reversal (not encryption)";
    b.seal = seal;
    b.unseal = unseal;
    b.user = const_cast<vellum_host_api_v1*>(host.api());
    host.check(host.api()->set_barrier(host.self(), &b));
  }
};
}  // namespace

VELLUM_PLUGIN(Sealer)
