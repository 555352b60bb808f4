/*
 * vellum/services/entitlements_v1.h — quota and plan checks
 * ("entitlements" 1.0).
 *
 * Provided by a billing plugin (none ships yet). Consumers ask before they
 * let a user consume something their plan may limit; without a provider,
 * consumers allow everything. The provider keeps its own usage accounting
 * (e.g. from the consumers' events); this call only answers "may this user
 * add `amount` more of `feature` now?".
 *
 * Features used by the editor plugin:
 *   "editor.documents" — amount 1 per new document (owner = the creator)
 *   "editor.storage"   — amount = bytes of a new version (owner = the
 *                        document's owner, whose storage grows)
 *
 * Return VELLUM_OK to allow; VELLUM_ERR_LIMIT when the quota is used up;
 * VELLUM_ERR_PERMISSION_DENIED when the plan does not include the feature.
 * (A message set with set_error does not reach the consumer: the ABI has no
 * channel for it; the editor answers 403 naming the feature.) Consumers
 * treat any other status as
 * "cannot decide now" and refuse the operation (fail closed, 503).
 */
#ifndef VELLUM_SERVICES_ENTITLEMENTS_V1_H
#define VELLUM_SERVICES_ENTITLEMENTS_V1_H

#include "../abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VELLUM_ENTITLEMENTS_SERVICE "entitlements"
#define VELLUM_ENTITLEMENTS_MAJOR 1
#define VELLUM_ENTITLEMENTS_MINOR 0

typedef struct vellum_entitlements_v1 {
  uint32_t struct_size;
  /* May user_id add `amount` of `feature`?
   * OWNERSHIP: inputs borrowed. THREADS: any, concurrently; must not block
   * on the network (it runs inside request handlers). */
  vellum_status (*check)(void* instance, vellum_str user_id, vellum_str feature, uint64_t amount);
} vellum_entitlements_v1;

#ifdef __cplusplus
}
#endif
#endif
