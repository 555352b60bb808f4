// Freezes the v1 binary layout: a field that moves breaks every plugin built
// before. New fields go at the end of a struct, and this test gains a line.
#include <catch2/catch.hpp>
#include <cstddef>
#include <vellum/abi.h>

#define AT(T, f, off) static_assert(offsetof(T, f) == (off), #T "." #f " moved")

// x86_64 / aarch64 LP64 layout.
static_assert(sizeof(void*) == 8, "layout checks assume LP64");
AT(vellum_str, size, 8);
AT(vellum_bytes, size, 8);
AT(vellum_buffer, size, 8);
AT(vellum_route_v1, flags, 4);
AT(vellum_route_v1, method, 8);
AT(vellum_route_v1, path, 16);
AT(vellum_route_v1, handler, 24);
AT(vellum_route_v1, user, 32);
AT(vellum_route_v1, user_free, 40);
AT(vellum_route_v1, summary, 48);
AT(vellum_route_v1, openapi_json, 56);
AT(vellum_ws_endpoint_v1, path, 8);
AT(vellum_ws_endpoint_v1, on_open, 16);
AT(vellum_ws_endpoint_v1, on_message, 24);
AT(vellum_ws_endpoint_v1, on_close, 32);
AT(vellum_ws_endpoint_v1, user, 40);
AT(vellum_ws_endpoint_v1, user_free, 48);
AT(vellum_ws_endpoint_v1, summary, 56);
AT(vellum_ws_endpoint_v1, max_queued_bytes, 64);
AT(vellum_ws_endpoint_v1, max_message_bytes, 72);
AT(vellum_service_v1, name, 8);
AT(vellum_service_v1, major, 16);
AT(vellum_service_v1, minor, 20);
AT(vellum_service_v1, vtable, 24);
AT(vellum_service_v1, instance, 32);
AT(vellum_scan_v1, reverse, 4);
AT(vellum_scan_v1, start, 8);
AT(vellum_scan_v1, end, 24);
AT(vellum_scan_v1, prefix, 40);
AT(vellum_scan_v1, limit, 56);
AT(vellum_barrier_v1, name, 8);
AT(vellum_barrier_v1, seal, 16);
AT(vellum_barrier_v1, unseal, 24);
AT(vellum_barrier_v1, user, 32);
AT(vellum_barrier_v1, user_free, 40);
AT(vellum_audit_record_v1, outcome, 4);
AT(vellum_audit_record_v1, action, 8);
AT(vellum_audit_record_v1, resource, 16);
AT(vellum_audit_record_v1, request, 24);
AT(vellum_audit_record_v1, details_json, 32);
AT(vellum_principal_v1, authenticated, 4);
AT(vellum_principal_v1, user_id, 8);
AT(vellum_principal_v1, session_id, 24);
AT(vellum_principal_v1, scopes, 40);
AT(vellum_principal_v1, mfa_verified_at_ms, 56);
AT(vellum_principal_v1, client_ip, 64);
AT(vellum_principal_v1, user_agent, 80);
AT(vellum_principal_v1, request_id, 96);
AT(vellum_principal_v1, email, 112);  // minor 3
AT(vellum_principal_v1, session_created_at_ms, 128);
static_assert(sizeof(vellum_principal_v1) == 136);
AT(vellum_plugin_v1_info, abi_major, 4);
AT(vellum_plugin_v1_info, abi_min_minor, 8);
AT(vellum_plugin_v1_info, name, 16);
AT(vellum_plugin_v1_info, version, 24);
AT(vellum_plugin_v1_info, description, 32);
AT(vellum_plugin_v1_info, requires_list, 40);
AT(vellum_plugin_v1_info, provides_list, 48);
AT(vellum_plugin_v1_info, validate_config, 56);
AT(vellum_plugin_v1_info, create, 64);
AT(vellum_plugin_v1_info, start, 72);
AT(vellum_plugin_v1_info, stop, 80);
AT(vellum_plugin_v1_info, destroy, 88);

// The host table: the order of the minor-0 functions is the contract.
#define H(f, i) AT(vellum_host_api_v1, f, 24 + 8 * (i))
AT(vellum_host_api_v1, abi_major, 4);
AT(vellum_host_api_v1, abi_minor, 8);
AT(vellum_host_api_v1, host_version, 16);
H(alloc, 0);
H(free, 1);
H(set_error, 2);
H(last_error, 3);
H(log, 4);
H(register_route, 5);
H(req_method, 6);
H(req_path, 7);
H(req_query, 8);
H(req_param, 9);
H(req_query_param, 10);
H(req_header, 11);
H(req_body, 12);
H(req_principal, 13);
H(resp_header, 14);
H(respond, 15);
H(respond_problem, 16);
H(register_websocket, 17);
H(ws_send, 18);
H(ws_close, 19);
H(room_join, 20);
H(room_leave, 21);
H(room_broadcast, 22);
H(publish, 23);
H(subscribe, 24);
H(unsubscribe, 25);
H(service_register, 26);
H(service_acquire, 27);
H(service_release, 28);
H(txn_begin, 29);
H(txn_commit, 30);
H(txn_rollback, 31);
H(kv_get, 32);
H(kv_put, 33);
H(kv_delete, 34);
H(kv_scan, 35);
H(set_barrier, 36);
H(audit_append, 37);
H(timer_start, 38);
H(timer_cancel, 39);
H(metric_register, 40);
H(metric_record, 41);
H(random_bytes, 42);
H(now_ms, 43);
H(authorize, 44);
H(barrier_reseal, 45);       // minor 1
H(authorize_principal, 46);  // minor 2
H(guest_session_issue, 47);
H(guest_session_revoke, 48);
H(authorize_ex, 49);  // minor 3
H(audit_excerpt, 50);
H(ws_authenticate, 51);  // minor 4
static_assert(sizeof(vellum_host_api_v1) == 24 + 8 * 52, "host table size changed (minor 4 has 52 entries)");

TEST_CASE("ABI v1.0 layout is frozen", "[abi][unit]") {
  // The static_asserts above are the test; this records the numbers.
  CHECK(VELLUM_ABI_MAJOR == 1);
  CHECK(sizeof(vellum_plugin_v1_info) == 96);
  CHECK(VELLUM_ERR_INTERNAL == -11);
}
