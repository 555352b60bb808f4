/*
 * vellum/services/pdp_v1.h — the policy decision point service ("pdp" 1.0).
 *
 * The host asks exactly one PDP for every host->authorize() call. The sharing
 * plugin provides it; without a provider the host allows only a resource's
 * owner and administrators (deny by default).
 */
#ifndef VELLUM_SERVICES_PDP_V1_H
#define VELLUM_SERVICES_PDP_V1_H

#include "../abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VELLUM_PDP_SERVICE "pdp"
#define VELLUM_PDP_MAJOR 1
/* Minor history: 0 — decide; 1 — decide_ex (decision with obligations). */
#define VELLUM_PDP_MINOR 1

typedef struct vellum_pdp_v1 {
  uint32_t struct_size;
  /* Decide whether `who` may perform `action` ("read", "write", ...) on
   * `resource` ("document/<id>", "document/<id>/node/<id>"). owner_user_id may
   * be empty. Returns VELLUM_OK (permit) or VELLUM_ERR_PERMISSION_DENIED, or an
   * error (the host then denies). A reason may be attached with set_error.
   * OWNERSHIP: all inputs borrowed for the call.
   * THREADS: any, concurrently; must not block on I/O (it runs per request
   *   and per realtime message). */
  vellum_status (*decide)(void* instance, const vellum_principal_v1* who, vellum_str action,
                          vellum_str resource, vellum_str owner_user_id);

  /* ---- minor 1 (check struct_size / the provider's minor before use) ---- */
  /* The same decision as decide, plus what comes with it. *out_json (may be
   * NULL) receives {"decision": "permit"|"deny", "reason": "...",
   * "obligations": [{"type": "watermark", "level": "visible"},
   * {"type": "log", "level": "high"}, {"type": "require_mfa", "max_age_s": 300}]}
   * on OK and on PERMISSION_DENIED; callers must honour the obligations of a
   * permit (watermark exports, log at high level). See docs/sharing.md.
   * OWNERSHIP: inputs borrowed; out_json->data allocated with host->alloc,
   *   the caller frees it with host->free.
   * THREADS: any, concurrently; does not block on I/O. */
  vellum_status (*decide_ex)(void* instance, const vellum_principal_v1* who, vellum_str action,
                             vellum_str resource, vellum_str owner_user_id, vellum_buffer* out_json);
} vellum_pdp_v1;

#ifdef __cplusplus
}
#endif
#endif
