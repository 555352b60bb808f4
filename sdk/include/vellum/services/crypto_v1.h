/*
 * vellum/services/crypto_v1.h — the transit encryption service ("crypto" 1.0).
 *
 * Provided by the crypto plugin. Minor 1 appends key chains (team keys and
 * document keys, see the end of the struct); minor-0 callers keep working.
 * Transit part modelled on Vault's transit engine: named
 * keys with versions that never leave the provider. Key names match
 * [A-Za-z0-9_-]{1,64}. Key types: AES-256-GCM (encrypt, decrypt, rewrap,
 * data keys), HMAC-SHA256 (hmac, hmac_verify), Ed25519 and ECDSA P-256 with
 * SHA-256 (sign, verify; DER signatures).
 *
 * Every output carries the key name and version:
 *   "vellum:v1:<name>:<version>:<base64>"
 * For ciphertexts the base64 part is nonce (12) ‖ ciphertext ‖ tag (16), with
 * AAD = "vellum.transit.v1" ‖ 0x00 ‖ name ‖ 0x00 ‖ version (u32 big-endian) ‖
 * context, so neither the key name, the version nor the caller's context can
 * be changed without decryption failing.
 *
 * Errors: INVALID_ARGUMENT (malformed or tampered input, wrong key type, a
 * version below min_decryption_version), NOT_FOUND (no such key), CONFLICT
 * (key exists), LIMIT (input over 1 MiB). A message is attached with
 * set_error; it never contains plaintext or key material.
 *
 * Outputs are allocated with host->alloc; the caller frees them with
 * host->free (also on success with size 0, data may then be NULL).
 */
#ifndef VELLUM_SERVICES_CRYPTO_V1_H
#define VELLUM_SERVICES_CRYPTO_V1_H

#include "../abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VELLUM_CRYPTO_SERVICE "crypto"
#define VELLUM_CRYPTO_MAJOR 1
#define VELLUM_CRYPTO_MINOR 1 /* 1: key chains and team keys (functions at the end) */

#define VELLUM_CRYPTO_KEY_AES256_GCM 1
#define VELLUM_CRYPTO_KEY_HMAC_SHA256 2
#define VELLUM_CRYPTO_KEY_ED25519 3
#define VELLUM_CRYPTO_KEY_ECDSA_P256 4

/* encrypt flags */
#define VELLUM_CRYPTO_BINARY 0x1u /* binary ciphertext instead of the text form */

/* Key-chain modes (minor 1): who holds the keys. */
#define VELLUM_CRYPTO_KEYS_MANAGED 1 /* the server makes, holds and wraps the keys */
#define VELLUM_CRYPTO_KEYS_E2EE 2    /* clients make and wrap the keys; the server cannot open them */

/* Largest plaintext, input or data key accepted (bytes). */
#define VELLUM_CRYPTO_MAX_INPUT (1024u * 1024u)

typedef struct vellum_crypto_key_info_v1 {
  uint32_t struct_size;
  int32_t type;                    /* VELLUM_CRYPTO_KEY_* */
  uint32_t latest_version;         /* >= 1 */
  uint32_t min_decryption_version; /* older versions are refused by decrypt/verify */
  uint32_t min_encryption_version; /* 0 = latest */
  uint32_t reserved;
  int64_t created_ms;
} vellum_crypto_key_info_v1;

typedef struct vellum_crypto_v1 {
  uint32_t struct_size;

  /* Create key `name` of `type` at version 1. owner_user_id (may be empty)
   * is recorded for the HTTP API's authorization. CONFLICT if it exists.
   * OWNERSHIP: inputs borrowed. THREADS: any, concurrently. */
  vellum_status (*create_key)(void* instance, vellum_str name, int32_t type, vellum_str owner_user_id);
  /* Metadata (set out->struct_size first). NOT_FOUND if absent.
   * OWNERSHIP: inputs borrowed. THREADS: any. */
  vellum_status (*key_info)(void* instance, vellum_str name, vellum_crypto_key_info_v1* out);
  /* Add a version; new encryptions use it. *out_version may be NULL.
   * THREADS: any; rotations of one key are serialized. */
  vellum_status (*rotate)(void* instance, vellum_str name, uint32_t* out_version);
  /* Set min_decryption_version (1..latest) and min_encryption_version
   * (0 or min_decryption_version..latest). THREADS: any. */
  vellum_status (*set_min_versions)(void* instance, vellum_str name, uint32_t min_decryption_version,
                                    uint32_t min_encryption_version);

  /* Encrypt with key_version (0 = latest). context is optional associated
   * data the caller must present again to decrypt. flags: 0 for the text
   * form, VELLUM_CRYPTO_BINARY for the binary form (for storing bytes; no
   * base64): "VT" 0x01 ‖ u8 name length ‖ name ‖ u32 version (big-endian) ‖
   * nonce ‖ ciphertext ‖ tag, same AAD as the text form.
   * OWNERSHIP: inputs borrowed; *out_ciphertext host->alloc'ed.
   * THREADS: any, concurrently. */
  vellum_status (*encrypt)(void* instance, vellum_str name, uint32_t key_version, uint32_t flags,
                           vellum_bytes plaintext, vellum_bytes context, vellum_buffer* out_ciphertext);
  /* Accepts either form. The key is named by the ciphertext; `name` must
   * match it.
   * OWNERSHIP: as encrypt. THREADS: any, concurrently. */
  vellum_status (*decrypt)(void* instance, vellum_str name, vellum_str ciphertext, vellum_bytes context,
                           vellum_buffer* out_plaintext);
  /* Decrypt and encrypt again with the latest version, in the same form,
   * without handing out the plaintext. OWNERSHIP: as encrypt. THREADS: any. */
  vellum_status (*rewrap)(void* instance, vellum_str name, vellum_str ciphertext, vellum_bytes context,
                          vellum_buffer* out_ciphertext);
  /* A fresh random data key of `bits` (128, 256 or 512), wrapped (encrypted
   * under `name`) into *out_wrapped and, if out_plaintext is not NULL, also
   * handed out in raw form (the caller wipes and frees it).
   * OWNERSHIP: outputs host->alloc'ed. THREADS: any. */
  vellum_status (*generate_data_key)(void* instance, vellum_str name, uint32_t bits, vellum_bytes context,
                                     vellum_buffer* out_wrapped, vellum_buffer* out_plaintext);

  /* HMAC-SHA256 with the latest version of an HMAC key ("vellum:v1:..."). */
  vellum_status (*hmac)(void* instance, vellum_str name, vellum_bytes input, vellum_buffer* out_hmac);
  /* Sign with the latest version of an Ed25519 or ECDSA P-256 key. */
  vellum_status (*sign)(void* instance, vellum_str name, vellum_bytes input, vellum_buffer* out_signature);
  /* Check an HMAC or a signature made by `name` (any allowed version):
   * *out_valid = 1 if it matches, 0 if not; malformed input is
   * INVALID_ARGUMENT. Comparison is constant-time. THREADS: any. */
  vellum_status (*verify)(void* instance, vellum_str name, vellum_bytes input, vellum_str signature_or_hmac,
                          int* out_valid);

  /* ---- minor 1: key chains (team keys, document keys). A chain is a current
   * key plus retired versions; each version is wrapped per member (an
   * envelope to the member's published encryption keys) or, for a document
   * under a team, by the team key. Chain ids match [A-Za-z0-9_.-]{1,128} and
   * share one namespace with the HTTP API (/v1/crypto/chains). Removing a
   * member rotates: managed chains get a new version at once, wrapped for the
   * remaining members only, and every document chain under the team follows;
   * e2ee chains are marked "rotation due" (the server cannot make their keys)
   * and refuse new content under the old version until a member uploads the
   * next one. Every change is audited (crypto.chain.*). These calls are not
   * authorized per user: the calling plugin decides who may do what.
   * Check struct_size before calling them (a minor-0 provider lacks them). */

  /* Create the team key `team_id` (kind "team") owned by owner_user_id, who is
   * its first member. mode: VELLUM_CRYPTO_KEYS_MANAGED (version 1 now) or
   * VELLUM_CRYPTO_KEYS_E2EE (waits for a client's first version).
   * CONFLICT if the id exists. OWNERSHIP: inputs borrowed. THREADS: any. */
  vellum_status (*team_key_create)(void* instance, vellum_str team_id, vellum_str owner_user_id,
                                   int32_t mode);
  /* Add a member: managed = one wrap of the current key for the member's
   * published encryption keys (none published: listed in
   * members_without_wrap); e2ee = recorded, a member uploads the wrap.
   * CONFLICT if already a member. THREADS: any. */
  vellum_status (*team_add_member)(void* instance, vellum_str team_id, vellum_str user_id);
  /* Remove a member and rotate (see above). *out_version (may be NULL): the
   * current version afterwards (unchanged for e2ee: rotation due).
   * NOT_FOUND if not a member; INVALID_ARGUMENT for the owner. THREADS: any. */
  vellum_status (*team_remove_member)(void* instance, vellum_str team_id, vellum_str user_id,
                                      uint32_t* out_version);
  /* A document key chain `doc_id`, under team_id (empty: owned by
   * owner_user_id alone, members added with team_add_member). A document
   * under a team takes the team's mode. THREADS: any. */
  vellum_status (*document_key_create)(void* instance, vellum_str doc_id, vellum_str team_id,
                                       vellum_str owner_user_id, int32_t mode);
  /* Rotate any chain now; reason e.g. "suspected breach" (audited).
   * *out_version as for team_remove_member. THREADS: any. */
  vellum_status (*keychain_rotate)(void* instance, vellum_str chain_id, vellum_str reason,
                                   uint32_t* out_version);
  /* The chain's JSON view (members, versions with all wraps, rotation_due;
   * never key material) into *out_json (host->alloc'ed). THREADS: any. */
  vellum_status (*keychain_info)(void* instance, vellum_str chain_id, vellum_buffer* out_json);
} vellum_crypto_v1;

#ifdef __cplusplus
}
#endif
#endif
