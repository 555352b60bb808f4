/* Compiled against tests/fixtures/abi_v1_0.h — the v1.0 header frozen as it
 * first shipped — so every later host must keep loading it. It also checks
 * struct_size handling both ways:
 *  - its descriptor is LARGER than v1.0's (as if from a newer header that
 *    appended fields): the host must accept it and ignore the unknown tail;
 *  - it registers a route with a SMALLER vellum_route_v1 (only up to
 *    user_free, as if from an older header): the host must treat the missing
 *    summary/openapi fields as absent. */
#include "abi_v1_0.h"

#include <stddef.h>
#include <string.h>

static const vellum_host_api_v1* g_host;
static vellum_plugin* g_self;

static vellum_status hello(void* user, vellum_request* req) {
  (void)user;
  static const char body[] = "frozen v1.0 plugin";
  vellum_str ct = {"text/plain", 10};
  vellum_bytes b = {(const uint8_t*)body, sizeof body - 1};
  return g_host->respond(req, 200, ct, b);
}

static vellum_status create(vellum_plugin* self, const vellum_host_api_v1* host, vellum_str cfg, void** out) {
  (void)cfg;
  if (host->struct_size < sizeof(vellum_host_api_v1) || host->abi_major != 1) return VELLUM_ERR_VERSION;
  g_host = host;
  g_self = self;
  *out = &g_host;
  return VELLUM_OK;
}

static vellum_status start(void* inst) {
  (void)inst;
  vellum_route_v1 r;
  memset(&r, 0xAB, sizeof r); /* garbage past struct_size must be ignored */
  r.struct_size = (uint32_t)(offsetof(vellum_route_v1, user_free) + sizeof r.user_free);
  r.flags = VELLUM_ROUTE_PUBLIC;
  r.method = "GET";
  r.path = "/v1/frozen";
  r.handler = hello;
  r.user = 0;
  r.user_free = 0;
  return g_host->register_route(g_self, &r);
}
static void stop(void* inst) { (void)inst; }
static void destroy(void* inst) { (void)inst; }

/* A descriptor from a "newer" header: v1.0's fields, then fields this host does not know. */
struct newer_info {
  vellum_plugin_v1_info base;
  void* future_callback;
  uint64_t future_flags;
};

VELLUM_EXPORT const vellum_plugin_v1_info* vellum_plugin_v1(void) {
  static struct newer_info info;
  info.base.struct_size = sizeof info;
  info.base.abi_major = 1;
  info.base.abi_min_minor = 0;
  info.base.name = "frozen";
  info.base.version = "1.0.0";
  info.base.description = "fixture built against the frozen v1.0 header";
  info.base.create = create;
  info.base.start = start;
  info.base.stop = stop;
  info.base.destroy = destroy;
  info.future_callback = (void*)0x1;
  info.future_flags = ~0ull;
  return &info.base;
}
