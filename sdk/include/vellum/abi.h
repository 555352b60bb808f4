/*
 * vellum/abi.h — the Vellum plugin ABI, version 1.
 *
 * This header is the single source of truth for the contract between the
 * host (vellumd) and plugins. It is C99 so that any language with a C FFI can
 * implement a plugin; the C++ SDK (vellum/sdk.hpp) is a header-only layer on
 * top of it.
 *
 * Compatibility rules (see docs/abi.md):
 *  - The entry symbol carries the major version in its name (vellum_plugin_v1).
 *    A future major is a new symbol, so one host can load both.
 *  - Within a major, structs and the host function table only grow at the
 *    end. Every struct starts with `struct_size`; a reader copies
 *    min(struct_size, sizeof(own struct)) into a zeroed struct, so a zero in
 *    an appended field means "absent". Larger structs (from newer headers)
 *    are accepted and their unknown tail is ignored.
 *  - A plugin declares the minimum host minor it needs; a host older than
 *    that refuses it with a message naming the plugin.
 *  - Status codes are a closed, append-only set. Unknown codes must be
 *    treated as VELLUM_ERR_INTERNAL.
 *
 * Memory rules:
 *  - Inputs (vellum_str, vellum_bytes, const char*) are borrowed and valid
 *    only for the duration of the call. Whoever keeps data copies it.
 *  - Data handed over for freeing is allocated with host->alloc and freed
 *    with host->free, in both directions.
 *  - Every `void* user` handed to the host comes with a `user_free` callback
 *    (may be NULL) that the host calls exactly once when it drops the pointer.
 *  - No C++ exception, RTTI, STL type or foreign allocator crosses the
 *    boundary.
 *
 * Threading: the host runs handlers on its I/O thread pool. Unless a
 * function says otherwise, every host function is safe to call from any
 * thread, including threads the plugin created. Plugin callbacks may be
 * invoked concurrently from several host threads.
 */
#ifndef VELLUM_ABI_H
#define VELLUM_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VELLUM_ABI_MAJOR 1
/* Minor history (append-only):
 *   0 — initial v1: config, log, routes, websockets, rooms, events,
 *       services, storage + barrier, audit, principal, timers, metrics,
 *       randomness, clock.
 *   1 — barrier_reseal (the barrier owner re-seals stored values, e.g. after
 *       a key rotation).
 *   2 — authorize_principal (re-check a kept principal, e.g. on a long-lived
 *       WebSocket), guest_session_issue / guest_session_revoke (sessions for
 *       visitors who redeem a share link).
 *   3 — principal email and session_created_at_ms; authorize_ex (the
 *       decision with the PDP's reason and obligations); audit_excerpt
 *       (records about a resource with RFC 6962 inclusion proofs against a
 *       signed checkpoint).
 *   4 — ws_authenticate (a WebSocket whose client sends its token in a
 *       message after the upgrade, e.g. Hocuspocus's auth message). */
#define VELLUM_ABI_MINOR 4

#if defined(_WIN32)
#define VELLUM_EXPORT __declspec(dllexport)
#else
#define VELLUM_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------ */
/* Status codes: closed and append-only. Values never change meaning.       */
/* ------------------------------------------------------------------------ */
typedef int32_t vellum_status;

#define VELLUM_OK 0
/* The call was accepted and will complete later (async HTTP handlers). */
#define VELLUM_PENDING 1
#define VELLUM_ERR_INVALID_ARGUMENT -1 /* bad input from the caller (4xx)   */
#define VELLUM_ERR_NOT_FOUND -2        /* no such key/route/service/conn     */
#define VELLUM_ERR_CONFLICT -3         /* CAS version mismatch, duplicate     */
#define VELLUM_ERR_PERMISSION_DENIED -4
#define VELLUM_ERR_UNAUTHENTICATED -5
#define VELLUM_ERR_UNAVAILABLE -6   /* transient: storage busy, stopping   */
#define VELLUM_ERR_VERSION -7       /* ABI/service version not satisfiable */
#define VELLUM_ERR_LIMIT -8         /* size or rate limit exceeded         */
#define VELLUM_ERR_UNSUPPORTED -9   /* feature absent in this host/plugin  */
#define VELLUM_ERR_STATE -10        /* call not allowed in this lifecycle phase */
#define VELLUM_ERR_INTERNAL -11     /* a bug or an unexpected failure      */

/* ------------------------------------------------------------------------ */
/* Borrowed views                                                            */
/* ------------------------------------------------------------------------ */
/* UTF-8 text; not necessarily NUL-terminated. data may be NULL iff size 0. */
typedef struct vellum_str {
  const char* data;
  size_t size;
} vellum_str;

typedef struct vellum_bytes {
  const uint8_t* data;
  size_t size;
} vellum_bytes;

/* A buffer owned by whoever receives it; free data with host->free. */
typedef struct vellum_buffer {
  uint8_t* data;
  size_t size;
} vellum_buffer;

typedef void (*vellum_user_free_fn)(void* user);

/* ------------------------------------------------------------------------ */
/* Opaque handles (owned by the host)                                        */
/* ------------------------------------------------------------------------ */
typedef struct vellum_plugin vellum_plugin;   /* the host's record of one plugin */
typedef struct vellum_request vellum_request; /* one HTTP request in flight       */
typedef struct vellum_txn vellum_txn;         /* one storage transaction          */
typedef uint64_t vellum_conn_id;              /* a WebSocket connection; 0 = none */

/* ------------------------------------------------------------------------ */
/* Logging                                                                    */
/* ------------------------------------------------------------------------ */
#define VELLUM_LOG_TRACE 0
#define VELLUM_LOG_DEBUG 1
#define VELLUM_LOG_INFO 2
#define VELLUM_LOG_WARN 3
#define VELLUM_LOG_ERROR 4

/* ------------------------------------------------------------------------ */
/* HTTP                                                                      */
/* ------------------------------------------------------------------------ */
/* Route flags. */
#define VELLUM_ROUTE_PUBLIC 0x1u /* reachable without an authenticated principal */

/* An HTTP handler. Return VELLUM_OK after host->respond(), or VELLUM_PENDING
 * and call host->respond() later from any thread (exactly once). Returning an
 * error status without responding makes the host answer with the matching
 * problem+json (500 for VELLUM_ERR_INTERNAL) using the message set through
 * host->set_error().
 * OWNERSHIP: req is borrowed; with VELLUM_PENDING it stays valid until
 *   host->respond() returns.
 * THREADS: any host I/O thread; concurrently for different requests. */
typedef vellum_status (*vellum_http_handler_fn)(void* user, vellum_request* req);

typedef struct vellum_route_v1 {
  uint32_t struct_size;
  uint32_t flags;        /* VELLUM_ROUTE_* */
  const char* method;    /* "GET", "POST", "PUT", "PATCH", "DELETE" */
  const char* path;      /* "/v1/docs/{id}"; {name} matches one segment */
  vellum_http_handler_fn handler;
  void* user;
  vellum_user_free_fn user_free;
  const char* summary;   /* one line for the OpenAPI document; may be NULL */
  /* optional OpenAPI operation object (JSON) merged into the document */
  const char* openapi_json;
} vellum_route_v1;

/* ------------------------------------------------------------------------ */
/* WebSocket                                                                 */
/* ------------------------------------------------------------------------ */
/* Called once the upgrade request arrived and before the handshake completes.
 * Return VELLUM_OK to accept; an error status refuses the upgrade with the
 * matching HTTP status. host->conn_* and request accessors may be used on
 * req during the call.
 * OWNERSHIP: req borrowed for the call. THREADS: any host I/O thread. */
typedef vellum_status (*vellum_ws_open_fn)(void* user, vellum_conn_id conn, vellum_request* req);
/* One complete message. binary: 1 binary frame, 0 text frame.
 * OWNERSHIP: data borrowed for the call.
 * THREADS: any host I/O thread; never concurrently for the same conn. */
typedef void (*vellum_ws_message_fn)(void* user, vellum_conn_id conn, int binary, vellum_bytes data);
/* The host closes a connection itself when its session expires or is
 * revoked or logged out (code 4401, reason "session ended"): at once on
 * revocation, otherwise within 30 seconds of expiry.
 * The connection is gone (either side closed or it failed). No further
 * callbacks for conn follow; host->ws_send on it returns NOT_FOUND.
 * THREADS: any host I/O thread; after the last on_message for conn. */
typedef void (*vellum_ws_close_fn)(void* user, vellum_conn_id conn, uint16_t code);

typedef struct vellum_ws_endpoint_v1 {
  uint32_t struct_size;
  uint32_t flags; /* VELLUM_ROUTE_PUBLIC */
  const char* path;
  vellum_ws_open_fn on_open;
  vellum_ws_message_fn on_message;
  vellum_ws_close_fn on_close;
  void* user;
  vellum_user_free_fn user_free;
  const char* summary;
  /* Per-connection outbound queue bound in bytes; a connection whose queue
   * would exceed it is closed with 1008 ("send queue full"). 0 = host default. */
  uint64_t max_queued_bytes;
  /* Largest inbound message accepted; larger ones close with 1009. 0 = host default. */
  uint64_t max_message_bytes;
} vellum_ws_endpoint_v1;

/* ------------------------------------------------------------------------ */
/* Events                                                                     */
/* ------------------------------------------------------------------------ */
/* Topics are dot-separated ("editor.document.created"). Patterns: "*" matches
 * exactly one segment, a final ">" matches one or more trailing segments.
 * OWNERSHIP: topic and payload borrowed for the call.
 * THREADS: delivered synchronously on the publisher's thread, with no host
 *   lock held; keep handlers short or hand work off to a timer. */
typedef void (*vellum_event_fn)(void* user, vellum_str topic, vellum_str payload_json);

/* ------------------------------------------------------------------------ */
/* Services                                                                   */
/* ------------------------------------------------------------------------ */
/* A service is a C struct of function pointers (a vtable, defined in a header
 * under vellum/services/) plus an instance pointer passed as its first
 * argument. Versions: same major required, provider minor >= requested. */
typedef struct vellum_service_v1 {
  uint32_t struct_size;
  const char* name;      /* "crypto", "pdp", ... */
  uint32_t major;
  uint32_t minor;
  const void* vtable;    /* must stay valid until the provider plugin is destroyed */
  void* instance;
} vellum_service_v1;

typedef struct vellum_service_ref vellum_service_ref; /* one acquisition */

/* ------------------------------------------------------------------------ */
/* Storage                                                                    */
/* ------------------------------------------------------------------------ */
/* Each plugin sees its own namespace (its name); keys are arbitrary bytes,
 * ordered bytewise. Every value carries a version: 1 on creation, +1 on each
 * write. Expected versions for compare-and-set: */
#define VELLUM_VERSION_ANY UINT64_MAX /* write unconditionally            */
#define VELLUM_VERSION_ABSENT 0       /* write only if the key is absent   */

/* Return non-zero to continue the scan, 0 to stop.
 * OWNERSHIP: key and value borrowed for the call. THREADS: the caller's. */
typedef int (*vellum_scan_fn)(void* user, vellum_bytes key, vellum_bytes value, uint64_t version);

typedef struct vellum_scan_v1 {
  uint32_t struct_size;
  uint32_t reverse; /* non-zero: descending order */
  vellum_bytes start; /* inclusive lower bound; empty = from the first key   */
  vellum_bytes end;   /* exclusive upper bound; empty = to the last key      */
  vellum_bytes prefix; /* if non-empty, only keys with this prefix           */
  uint32_t limit;     /* 0 = host default (1000); at most 10000            */
} vellum_scan_v1;

/* The storage barrier: a transform applied to every value on its way to and
 * from disk (the crypto plugin installs AES-256-GCM here). The context bytes
 * are "<namespace>\0<key>" so a value cannot be moved between keys unnoticed.
 * OWNERSHIP: inputs borrowed; *out allocated with host->alloc, freed by host.
 * THREADS: any thread, concurrently. */
typedef vellum_status (*vellum_barrier_fn)(void* user, vellum_bytes context, vellum_bytes in,
                                           vellum_buffer* out);
typedef struct vellum_barrier_v1 {
  uint32_t struct_size;
  const char* name; /* shown in logs, e.g. "aes-256-gcm keyring" */
  vellum_barrier_fn seal;
  vellum_barrier_fn unseal;
  void* user;
  vellum_user_free_fn user_free;
} vellum_barrier_v1;

/* ------------------------------------------------------------------------ */
/* Audit and principal                                                        */
/* ------------------------------------------------------------------------ */
#define VELLUM_OUTCOME_SUCCESS 0
#define VELLUM_OUTCOME_FAILURE 1
#define VELLUM_OUTCOME_DENIED 2

typedef struct vellum_audit_record_v1 {
  uint32_t struct_size;
  int32_t outcome;         /* VELLUM_OUTCOME_* */
  const char* action;      /* "editor.document.delete" */
  const char* resource;    /* "document/4f2a..."; may be NULL */
  vellum_request* request; /* actor, IP, request id are taken from it; may be NULL */
  const char* details_json; /* JSON object with event fields; may be NULL */
} vellum_audit_record_v1;

/* The caller of a request. Strings are borrowed from the request and valid
 * while it is. authenticated == 0 means anonymous (only public routes). */
typedef struct vellum_principal_v1 {
  uint32_t struct_size;
  uint32_t authenticated;
  vellum_str user_id;
  vellum_str session_id;   /* or API token id */
  vellum_str scopes;       /* space-separated */
  int64_t mfa_verified_at_ms; /* unix ms of the last MFA check; 0 = never */
  vellum_str client_ip;
  vellum_str user_agent;
  vellum_str request_id;
  /* ---- minor 3 (zero/empty when the host is older) ---- */
  vellum_str email;               /* the account's e-mail, lower-case; empty for guests */
  int64_t session_created_at_ms;  /* when the session (or API token) was issued */
} vellum_principal_v1;

/* ------------------------------------------------------------------------ */
/* Timers and metrics                                                         */
/* ------------------------------------------------------------------------ */
/* THREADS: any host I/O thread; a repeating timer never overlaps itself. */
typedef void (*vellum_timer_fn)(void* user);

#define VELLUM_METRIC_COUNTER 0
#define VELLUM_METRIC_GAUGE 1
#define VELLUM_METRIC_HISTOGRAM 2 /* seconds; default latency buckets */

/* ------------------------------------------------------------------------ */
/* The host function table. APPEND-ONLY: new functions go at the end, tagged */
/* with the minor that added them. Check struct_size before using a field    */
/* newer than the minor you requested.                                       */
/* ------------------------------------------------------------------------ */
typedef struct vellum_host_api_v1 {
  uint32_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t reserved;
  const char* host_version; /* "0.1.0"; static */

  /* ---- memory (minor 0) ---- */
  /* OWNERSHIP: returns memory the caller owns; free with host->free.
   * Returns NULL on failure. THREADS: any. */
  void* (*alloc)(size_t size);
  /* OWNERSHIP: takes ptr (from host->alloc or a host-returned buffer); NULL ok. */
  void (*free)(void* ptr);

  /* ---- errors (minor 0) ---- */
  /* Attach a message to the error status the calling thread is about to
   * return from a plugin callback. Never put secrets or document content in
   * it: the host logs it and may show it to the client.
   * OWNERSHIP: msg copied. THREADS: any; per-thread. */
  void (*set_error)(vellum_plugin* self, vellum_str msg);
  /* The message of the last failed host call on this thread, or of the last
   * set_error on this thread, whichever came later — so after a service
   * call that failed, the consumer reads the provider's reason here.
   * OWNERSHIP: borrowed until the next host call on this thread. */
  vellum_str (*last_error)(vellum_plugin* self);

  /* ---- logging (minor 0) ---- */
  /* OWNERSHIP: msg copied. THREADS: any. */
  void (*log)(vellum_plugin* self, int32_t level, vellum_str msg);

  /* ---- HTTP (minor 0) ---- */
  /* Register a route. Only during start().
   * OWNERSHIP: route and its strings copied; route->user owned by the host
   *   from this call on (user_free called at destroy or on failure).
   * THREADS: the start() thread. Errors: CONFLICT (same method+path), STATE. */
  vellum_status (*register_route)(vellum_plugin* self, const vellum_route_v1* route);
  /* Request accessors. OWNERSHIP: results borrowed, valid while req is.
   * THREADS: any, but not concurrently on the same req. */
  vellum_str (*req_method)(vellum_request* req);
  vellum_str (*req_path)(vellum_request* req);   /* without the query string */
  vellum_str (*req_query)(vellum_request* req);  /* raw query string, no '?' */
  /* Path parameter {name}; found=0 if absent. */
  vellum_str (*req_param)(vellum_request* req, vellum_str name, int* found);
  /* Decoded query parameter; first occurrence; found=0 if absent. */
  vellum_str (*req_query_param)(vellum_request* req, vellum_str name, int* found);
  /* Header, case-insensitive; found=0 if absent. */
  vellum_str (*req_header)(vellum_request* req, vellum_str name, int* found);
  vellum_bytes (*req_body)(vellum_request* req);
  /* Fills *out (set out->struct_size first). */
  vellum_status (*req_principal)(vellum_request* req, vellum_principal_v1* out);
  /* Add a response header before respond(). OWNERSHIP: copied. */
  vellum_status (*resp_header)(vellum_request* req, vellum_str name, vellum_str value);
  /* Send the response; exactly once per request. After it returns, req is
   * invalid if the handler returned VELLUM_PENDING.
   * OWNERSHIP: body copied. THREADS: any (the completion path). */
  vellum_status (*respond)(vellum_request* req, uint16_t status, vellum_str content_type,
                           vellum_bytes body);
  /* Send an RFC 9457 problem+json. OWNERSHIP: strings copied. THREADS: any. */
  vellum_status (*respond_problem)(vellum_request* req, uint16_t status, vellum_str title,
                                   vellum_str detail);

  /* ---- WebSocket (minor 0) ---- */
  /* Only during start(). OWNERSHIP: copied; ep->user owned by host.
   * THREADS: the start() thread. */
  vellum_status (*register_websocket)(vellum_plugin* self, const vellum_ws_endpoint_v1* ep);
  /* Queue a message. NOT_FOUND if conn is closed; LIMIT if its queue
   * overflowed (the connection is then closed with 1008).
   * OWNERSHIP: data copied. THREADS: any. */
  vellum_status (*ws_send)(vellum_plugin* self, vellum_conn_id conn, int binary, vellum_bytes data);
  /* Start a close handshake. OWNERSHIP: reason copied (<= 123 bytes). THREADS: any. */
  vellum_status (*ws_close)(vellum_plugin* self, vellum_conn_id conn, uint16_t code, vellum_str reason);
  /* Rooms: host-side fan-out groups, named per plugin. A connection leaves
   * all rooms when it closes. THREADS: any. */
  vellum_status (*room_join)(vellum_plugin* self, vellum_str room, vellum_conn_id conn);
  vellum_status (*room_leave)(vellum_plugin* self, vellum_str room, vellum_conn_id conn);
  /* Send to every member except `except` (0 = nobody excluded); returns the
   * number of recipients in *count (may be NULL).
   * OWNERSHIP: data copied once and shared. THREADS: any. */
  vellum_status (*room_broadcast)(vellum_plugin* self, vellum_str room, int binary, vellum_bytes data,
                                  vellum_conn_id except, uint64_t* count);

  /* ---- events (minor 0) ---- */
  /* OWNERSHIP: copied. THREADS: any; subscribers run on this thread. */
  vellum_status (*publish)(vellum_plugin* self, vellum_str topic, vellum_str payload_json);
  /* OWNERSHIP: pattern copied; user owned by the host (freed on unsubscribe
   * or destroy). *out_id identifies the subscription. THREADS: any. */
  vellum_status (*subscribe)(vellum_plugin* self, vellum_str pattern, vellum_event_fn fn, void* user,
                             vellum_user_free_fn user_free, uint64_t* out_id);
  vellum_status (*unsubscribe)(vellum_plugin* self, uint64_t id);

  /* ---- services (minor 0) ---- */
  /* Provide a service. Only during create() or start(). The name must be
   * listed in the plugin's `provides`. CONFLICT if another plugin provides it.
   * OWNERSHIP: svc copied; vtable and instance stay the provider's.
   * THREADS: the lifecycle thread. */
  vellum_status (*service_register)(vellum_plugin* self, const vellum_service_v1* svc);
  /* Acquire a service with the same major and at least min_minor. Plugins
   * stop in reverse dependency order, so consumers stop (and release) before
   * their providers; a provider is destroyed after its references are
   * released, or after a 5 s grace period with a warning.
   * OWNERSHIP: *out copied out (vtable/instance borrowed until release);
   *   *out_ref must be passed to service_release exactly once.
   * Errors: NOT_FOUND, VERSION. THREADS: any. */
  vellum_status (*service_acquire)(vellum_plugin* self, vellum_str name, uint32_t major,
                                   uint32_t min_minor, vellum_service_v1* out,
                                   vellum_service_ref** out_ref);
  void (*service_release)(vellum_plugin* self, vellum_service_ref* ref);

  /* ---- storage (minor 0) ---- */
  /* Transactions serialize writers. A txn must be committed or rolled back
   * exactly once, and used from one thread at a time (it may move between
   * threads, e.g. across an async handler).
   * OWNERSHIP: *out_txn owned by the caller until commit/rollback.
   * THREADS: any, but a txn is single-threaded. */
  vellum_status (*txn_begin)(vellum_plugin* self, vellum_txn** out_txn);
  /* Durable (fsync'd) when it returns VELLUM_OK. Consumes txn. */
  vellum_status (*txn_commit)(vellum_plugin* self, vellum_txn* txn);
  void (*txn_rollback)(vellum_plugin* self, vellum_txn* txn);
  /* txn may be NULL for a single-operation implicit transaction.
   * OWNERSHIP: key borrowed; *out_value allocated by the host, free with
   *   host->free. out_version may be NULL. NOT_FOUND if absent. */
  vellum_status (*kv_get)(vellum_plugin* self, vellum_txn* txn, vellum_bytes key, vellum_buffer* out_value,
                          uint64_t* out_version);
  /* Compare-and-set write: CONFLICT unless the current version equals
   * expected_version (VELLUM_VERSION_ANY skips the check, VELLUM_VERSION_ABSENT
   * requires the key to be absent). *out_new_version may be NULL. */
  vellum_status (*kv_put)(vellum_plugin* self, vellum_txn* txn, vellum_bytes key, vellum_bytes value,
                          uint64_t expected_version, uint64_t* out_new_version);
  /* NOT_FOUND if absent; CONFLICT on version mismatch. */
  vellum_status (*kv_delete)(vellum_plugin* self, vellum_txn* txn, vellum_bytes key,
                             uint64_t expected_version);
  /* Ordered scan. *out_more is set to 1 if the limit cut the scan short
   * (continue from the last key + "\0"). may be NULL. */
  vellum_status (*kv_scan)(vellum_plugin* self, vellum_txn* txn, const vellum_scan_v1* scan,
                           vellum_scan_fn fn, void* user, int* out_more);
  /* Install the storage barrier. Only during create(), once per host.
   * OWNERSHIP: copied; barrier->user owned by the host.
   * Errors: CONFLICT if one is installed, STATE outside create(). */
  vellum_status (*set_barrier)(vellum_plugin* self, const vellum_barrier_v1* barrier);

  /* ---- audit (minor 0) ---- */
  /* Append a record to the host's hash-chained audit log. UNAVAILABLE when the
   * log cannot be written (with fail-closed on, the caller must then fail).
   * OWNERSHIP: copied. THREADS: any. */
  vellum_status (*audit_append)(vellum_plugin* self, const vellum_audit_record_v1* record);

  /* ---- timers (minor 0) ---- */
  /* Run fn after delay_ms, then every interval_ms if interval_ms > 0.
   * OWNERSHIP: user owned by the host until the timer is cancelled or fires
   *   for the last time. THREADS: any; fn runs on a host I/O thread. */
  vellum_status (*timer_start)(vellum_plugin* self, uint64_t delay_ms, uint64_t interval_ms,
                               vellum_timer_fn fn, void* user, vellum_user_free_fn user_free,
                               uint64_t* out_id);
  /* After it returns, fn is not running and will not run again. Calling it
   * from inside fn for the same timer is allowed. */
  vellum_status (*timer_cancel)(vellum_plugin* self, uint64_t id);

  /* ---- metrics (minor 0) ---- */
  /* Register a metric, exported as vellum_plugin_<plugin>_<name>. Only during
   * create() or start(). name: [a-z_][a-z0-9_]*. THREADS: lifecycle thread. */
  vellum_status (*metric_register)(vellum_plugin* self, int32_t kind, vellum_str name, vellum_str help,
                                   uint64_t* out_id);
  /* counter: add; gauge: set; histogram: observe. THREADS: any. */
  vellum_status (*metric_record)(vellum_plugin* self, uint64_t id, double value);

  /* ---- randomness and time (minor 0) ---- */
  /* Cryptographically secure (OpenSSL RAND_bytes). THREADS: any. */
  vellum_status (*random_bytes)(vellum_plugin* self, uint8_t* out, size_t size);
  /* Unix time in milliseconds from the host clock (the one identity and
   * audit use). */
  int64_t (*now_ms)(vellum_plugin* self);

  /* ---- authorization (minor 0) ---- */
  /* Ask the host's policy decision point whether the request's principal may
   * perform action on resource ("document/<id>"). owner_user_id may be empty.
   * Returns OK, PERMISSION_DENIED or UNAUTHENTICATED.
   * OWNERSHIP: inputs borrowed. THREADS: any. */
  vellum_status (*authorize)(vellum_plugin* self, vellum_request* req, vellum_str action,
                             vellum_str resource, vellum_str owner_user_id);

  /* ---- append new minor-1 functions below this line ---- */

  /* ---- storage barrier maintenance (minor 1) ---- */
  /* Re-seal stored values: the host reads up to `batch` raw rows across ALL
   * namespaces, in (namespace, key) order after the opaque cursor
   * `after_key_cursor` (empty = from the start), unseals each with the
   * installed barrier and seals it again (so it moves to the barrier's
   * current key), all in one store transaction. Row versions do not change,
   * so a plugin's compare-and-set is unaffected; writers that arrive during
   * the batch wait for it and then win (each row is re-put only if its
   * version is still the one read). *out_next_cursor receives the cursor
   * for the next call; *out_done is 1 when no rows remain after it.
   * Only the plugin that installed the barrier may call it
   * (PERMISSION_DENIED otherwise). batch: 1..10000 (0 = 500).
   * Errors: STATE (no storage or no barrier), INTERNAL/UNAVAILABLE from the
   * store or the barrier (the batch is then rolled back).
   * OWNERSHIP: after_key_cursor borrowed; *out_next_cursor allocated with
   *   host->alloc, the caller frees it with host->free (data may be NULL
   *   when size is 0). out_resealed and out_done may be NULL.
   * THREADS: any; batches are serialized with all other writers. Do not
   *   call it from inside the barrier's own seal/unseal. */
  vellum_status (*barrier_reseal)(vellum_plugin* self, vellum_bytes after_key_cursor, uint32_t batch,
                                  vellum_buffer* out_next_cursor, uint64_t* out_resealed, int* out_done);

  /* ---- append new minor-2 functions below this line ---- */

  /* ---- authorization without a request (minor 2) ---- */
  /* The same decision as authorize, for a principal the caller kept — a
   * WebSocket re-checks its user's rights after the open request is gone.
   * who must be a principal the host handed out (user_id, session_id,
   * scopes, mfa_verified_at_ms, client_ip, user_agent copied by the caller);
   * who->authenticated must be 1, else UNAUTHENTICATED. The host also
   * returns UNAUTHENTICATED when who->session_id is no longer a live session
   * (expired, revoked, logged out), so a re-check catches that too.
   * Returns OK, PERMISSION_DENIED or UNAUTHENTICATED.
   * OWNERSHIP: inputs borrowed. THREADS: any; may read storage. */
  vellum_status (*authorize_principal)(vellum_plugin* self, const vellum_principal_v1* who,
                                       vellum_str action, vellum_str resource, vellum_str owner_user_id);

  /* ---- guest sessions (minor 2) ---- */
  /* Issue a session for a visitor who is not a user account, e.g. someone who
   * redeemed a share link. Requests made with the token have a principal with
   * user_id "guest:<plugin name>:<subject>" and scopes "guest <scopes>"; the
   * PDP decides what that principal may do (the plugin that issued it knows
   * what the subject stands for). subject: 1..128 chars of [A-Za-z0-9._:-];
   * scopes: space-separated, at most 1024 bytes; display_name: at most 128
   * bytes (shown in presence lists); ttl_ms: 1 minute .. 30 days. The token
   * ("vlg_" + 256 random bits, base64url) is returned once; the host stores
   * only its SHA-256. Guest sessions have no idle timeout beyond ttl_ms, no
   * MFA, and cannot use the host's account routes.
   * OWNERSHIP: inputs borrowed; *out_token allocated with host->alloc, the
   *   caller frees it with host->free.
   * THREADS: any; writes storage (fsync), so not on a hot path. */
  vellum_status (*guest_session_issue)(vellum_plugin* self, vellum_str subject, vellum_str scopes,
                                       vellum_str display_name, int64_t ttl_ms, vellum_buffer* out_token);
  /* Revoke every guest session this plugin issued for subject. Their open
   * WebSockets are closed by the host (code 4401, "session ended").
   * *out_revoked (may be NULL) receives the count.
   * OWNERSHIP: inputs borrowed. THREADS: any; writes storage. */
  vellum_status (*guest_session_revoke)(vellum_plugin* self, vellum_str subject, uint64_t* out_revoked);

  /* ---- append new minor-3 functions below this line ---- */

  /* ---- authorization with obligations (minor 3) ---- */
  /* The decision of authorize (req != NULL; who ignored) or of
   * authorize_principal (req == NULL, who != NULL), with what the PDP says
   * about it. On OK and on PERMISSION_DENIED, *out_json (may be NULL)
   * receives {"decision": "permit"|"deny", "reason": "...",
   * "obligations": [...]}. Obligations are the PDP's (pdp service 1.1,
   * docs/sharing.md): e.g. {"type": "watermark", "level": "visible"},
   * {"type": "log", "level": "high"}. Without a PDP, or with a PDP older
   * than 1.1, obligations is []. A caller that acts on a permit must honour
   * its obligations or refuse.
   * OWNERSHIP: inputs borrowed; out_json->data allocated with host->alloc,
   *   the caller frees it with host->free.
   * THREADS: any; may read storage. */
  vellum_status (*authorize_ex)(vellum_plugin* self, vellum_request* req, const vellum_principal_v1* who,
                                vellum_str action, vellum_str resource, vellum_str owner_user_id,
                                vellum_buffer* out_json);

  /* ---- audit excerpts (minor 3) ---- */
  /* Audit records whose resource equals `resource` or starts with
   * resource + "/", with seq > after_seq, oldest first, at most `limit`
   * (1..1000; 0 = 100), each with an RFC 6962 inclusion proof against a
   * signed checkpoint, so a third party can check them with the log's public
   * key alone. If records are pending, the host signs a checkpoint first, so
   * every record returned is covered. *out_json receives
   *   {"checkpoint": {"id", "tree_size", "root_hex", "time_ms",
   *                   "signed_data", "signature_b64", "public_key_pem"},
   *    "records": [{"seq", "body", "leaf_hash_hex", "inclusion_proof": [hex]}],
   *    "more": true|false, "next_after_seq": n}
   * where body is the exact canonical JSON string hashed as leaf seq-1
   * (leaf = SHA-256(0x00 || body), node = SHA-256(0x01 || left || right)),
   * and signed_data is the exact text the Ed25519 signature covers.
   * docs/abi.md shows how to check a proof with openssl alone.
   * Errors: INVALID_ARGUMENT (empty resource, limit > 1000), STATE (no
   * audit log), UNAVAILABLE (the log cannot be read or signed).
   * OWNERSHIP: inputs borrowed; out_json->data allocated with host->alloc.
   * THREADS: any; reads the whole log's leaf hashes (O(records)), so call
   *   it for evidence, not per request. */
  vellum_status (*audit_excerpt)(vellum_plugin* self, vellum_str resource, uint64_t after_seq, uint32_t limit,
                                 vellum_buffer* out_json);

  /* ---- in-band WebSocket authentication (minor 4) ---- */
  /* For protocols whose clients send their token in a message after the
   * upgrade (Hocuspocus's auth message), on an endpoint registered with
   * VELLUM_ROUTE_PUBLIC. Looks `token` up as an Authorization: Bearer token
   * would be. If it is valid, binds `conn` to its session, as if the
   * upgrade had carried it: the host closes the connection with 4401 when
   * that session ends. A connection carries at most one session.
   * *out is filled as req_principal would be for a request made with the
   * token (client_ip and user_agent from the upgrade request, request_id
   * empty); its strings point into *out_storage, allocated with
   * host->alloc, which the caller frees with host->free (also on error,
   * where it is empty).
   * Errors: UNAUTHENTICATED (unknown, expired or revoked token; the token
   * is never logged), CONFLICT (conn is bound to another session),
   * NOT_FOUND (conn closed, or another plugin's), INVALID_ARGUMENT.
   * OWNERSHIP: token borrowed. THREADS: any; reads storage. */
  vellum_status (*ws_authenticate)(vellum_plugin* self, vellum_conn_id conn, vellum_str token,
                                   vellum_principal_v1* out, vellum_buffer* out_storage);
} vellum_host_api_v1;

/* ------------------------------------------------------------------------ */
/* The plugin descriptor, returned by the entry symbol.                      */
/* ------------------------------------------------------------------------ */
typedef struct vellum_plugin_v1_info {
  uint32_t struct_size;
  uint32_t abi_major;     /* must be VELLUM_ABI_MAJOR of the host */
  uint32_t abi_min_minor; /* the oldest host minor this plugin works with */
  uint32_t reserved;
  const char* name;       /* [a-z][a-z0-9_-]*, unique */
  const char* version;    /* the plugin's own version, e.g. "1.2.0" */
  const char* description;
  /* NULL-terminated lists; may be NULL. `requires` names services (or plugin
   * names) that must start before this plugin; `provides` names services. */
  const char* const* requires_list;
  const char* const* provides_list;

  /* Validate a config table without side effects (vellumd check-config).
   * May be NULL. Report problems with host->set_error, naming the key.
   * OWNERSHIP: config borrowed. THREADS: the lifecycle thread. */
  vellum_status (*validate_config)(vellum_plugin* self, const vellum_host_api_v1* host,
                                   vellum_str config_json);
  /* Create the instance. Parse config, open resources, register services
   * and the barrier. No routes yet.
   * OWNERSHIP: host table valid for the process lifetime; *out_instance is
   *   the plugin's, passed back to start/stop/destroy.
   * THREADS: the lifecycle thread. */
  vellum_status (*create)(vellum_plugin* self, const vellum_host_api_v1* host, vellum_str config_json,
                          void** out_instance);
  /* Register routes, WebSockets, subscriptions, timers; acquire services. */
  vellum_status (*start)(void* instance);
  /* Stop accepting work; release services. In-flight requests have drained. */
  void (*stop)(void* instance);
  /* Free everything. Called once, after stop (or after a failed create/start). */
  void (*destroy)(void* instance);
} vellum_plugin_v1_info;

/* The one exported symbol: returns a pointer to a static descriptor.
 * OWNERSHIP: the descriptor is the plugin's and lives as long as the library.
 * THREADS: called once, on the lifecycle thread. */
typedef const vellum_plugin_v1_info* (*vellum_plugin_v1_entry_fn)(void);
#define VELLUM_PLUGIN_V1_SYMBOL "vellum_plugin_v1"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* VELLUM_ABI_H */
