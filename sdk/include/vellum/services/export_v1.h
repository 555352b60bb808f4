/*
 * vellum/services/export_v1.h — the export filter ("export-filter" 1.0).
 *
 * The editor plugin renders an export (HTML, Markdown, CSV, SVG, JSON) and,
 * if an enabled plugin provides this service, passes the rendered bytes
 * through filter() before they reach the client. A DRM plugin provides it to
 * watermark or refuse exports. Without a provider, exports go out as
 * rendered.
 *
 * filter() receives:
 *   doc_json     — the documents service's describe() JSON of the document
 *                  (id, title, type, owner, resource, current_version, ...)
 *   version      — the exported version number
 *   format       — "html", "markdown", "csv", "svg" or "json"
 *   user_id      — the principal exporting (may start with "guest:")
 *   content_type — the rendered media type, e.g. "text/html; charset=utf-8"
 *   content      — the rendered bytes
 * and returns:
 *   VELLUM_OK with *out holding the complete bytes to send (allocated with
 *     host->alloc; the editor frees them; they may equal the input), or
 *   VELLUM_ERR_PERMISSION_DENIED to refuse the export (the editor answers
 *     403 "the export was refused by the export filter" and audits a
 *     denial; a set_error message does not reach the editor).
 * Any other status makes the editor answer 503 and send nothing (fail
 * closed: an export that should have been watermarked never leaves
 * unwatermarked).
 */
#ifndef VELLUM_SERVICES_EXPORT_V1_H
#define VELLUM_SERVICES_EXPORT_V1_H

#include "../abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VELLUM_EXPORT_FILTER_SERVICE "export-filter"
#define VELLUM_EXPORT_FILTER_MAJOR 1
#define VELLUM_EXPORT_FILTER_MINOR 0

typedef struct vellum_export_filter_v1 {
  uint32_t struct_size;
  /* OWNERSHIP: inputs borrowed for the call; *out allocated with host->alloc.
   * THREADS: any, concurrently (request handlers). */
  vellum_status (*filter)(void* instance, vellum_str doc_json, uint64_t version, vellum_str format,
                          vellum_str user_id, vellum_str content_type, vellum_bytes content,
                          vellum_buffer* out);
} vellum_export_filter_v1;

#ifdef __cplusplus
}
#endif
#endif
