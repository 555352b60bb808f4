/*
 * vellum/services/documents_v1.h — read access to the editor's documents
 * ("documents" 1.0), for plugins that work on exact versions (signing, DRM).
 *
 * Provided by the editor plugin. Callers authorize their own requests with
 * host->authorize on the "resource" path that describe() returns; this
 * service does not check permissions (it has no request).
 *
 * Errors: INVALID_ARGUMENT (malformed id or format), NOT_FOUND (no such
 * document or version), UNSUPPORTED (e.g. export of an end-to-end encrypted
 * document). A message is attached with set_error; it never contains
 * document content.
 *
 * Outputs are allocated with host->alloc; the caller frees them with
 * host->free (also on success with size 0, data may then be NULL).
 */
#ifndef VELLUM_SERVICES_DOCUMENTS_V1_H
#define VELLUM_SERVICES_DOCUMENTS_V1_H

#include "../abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VELLUM_DOCUMENTS_SERVICE "documents"
#define VELLUM_DOCUMENTS_MAJOR 1
#define VELLUM_DOCUMENTS_MINOR 0

typedef struct vellum_documents_v1 {
  uint32_t struct_size;
  /* Metadata of a document as a JSON object:
   *   {"id", "title", "type", "owner", "resource", "current_version",
   *    "content_hash", "e2ee", "trashed", "created_ms", "updated_ms"}
   * "resource" is the authorization path for host->authorize, root first,
   * e.g. "folder/<f1>/folder/<f2>/document/<id>" (docs/authorization.md).
   * OWNERSHIP: doc_id borrowed; *out_json allocated with host->alloc.
   * THREADS: any; reads storage. */
  vellum_status (*describe)(void* instance, vellum_str doc_id, vellum_buffer* out_json);

  /* The exact stored bytes of version `version` (>= 1) — the bytes whose
   * SHA-256 is that version's content_hash — and its metadata as JSON:
   *   {"version", "content_hash", "author", "created_ms", "parent", "name",
   *    "content_type"}
   * out_meta_json may be NULL.
   * OWNERSHIP: doc_id borrowed; outputs allocated with host->alloc.
   * THREADS: any; reads storage. */
  vellum_status (*read_version)(void* instance, vellum_str doc_id, uint64_t version,
                                vellum_buffer* out_content, vellum_buffer* out_meta_json);
} vellum_documents_v1;

#ifdef __cplusplus
}
#endif
#endif
