/* A plain C plugin that claims ABI major 2: the v1 host must refuse it. */
#include <vellum/abi.h>

static vellum_status create(vellum_plugin* self, const vellum_host_api_v1* host, vellum_str cfg, void** out) {
  (void)self, (void)host, (void)cfg;
  *out = 0;
  return VELLUM_OK;
}
static vellum_status start(void* inst) { (void)inst; return VELLUM_OK; }
static void stop(void* inst) { (void)inst; }
static void destroy(void* inst) { (void)inst; }

VELLUM_EXPORT const vellum_plugin_v1_info* vellum_plugin_v1(void) {
  static vellum_plugin_v1_info info = {sizeof(vellum_plugin_v1_info), 2, 0, 0, "wrongmajor", "1.0.0", "", 0, 0,
                                       0, create, start, stop, destroy};
  return &info;
}
