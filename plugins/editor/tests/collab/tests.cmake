# Tests of the realtime collaboration server (included from src/collab/collab.cmake).
find_package(Catch2 REQUIRED)
include(Catch)

# The wire formats, without a host.
add_executable(collab_unit_tests ${VELLUM_COLLAB_TESTS}/wire_test.cpp)
target_link_libraries(collab_unit_tests PRIVATE vellum_editor_collab vellum_catch_main)
vellum_warnings(collab_unit_tests)
catch_discover_tests(collab_unit_tests TEST_PREFIX "collab." EXTRA_ARGS -w NoTests)

# A command-line front end to the C++ update code, so Node tests can check
# it against yjs itself.
add_executable(collab_ytool ${VELLUM_COLLAB_TESTS}/ytool.cpp)
target_link_libraries(collab_ytool PRIVATE vellum_editor_collab)
vellum_warnings(collab_ytool)

# A policy decision point for tests: grants set over HTTP, sharing.changed published.
vellum_add_plugin(vellum_test_collabpdp NAME collabpdp SOURCES ${VELLUM_COLLAB_TESTS}/pdp_plugin.cpp
  LIBS nlohmann_json::nlohmann_json)

# Real yjs / y-websocket clients (tests/node) against a real vellumd.
add_executable(collab_node_tests ${VELLUM_COLLAB_TESTS}/node_test.cpp)
target_link_libraries(collab_node_tests PRIVATE vellum_catch_main vellum_test_support nlohmann_json::nlohmann_json
  OpenSSL::Crypto)
find_program(VELLUM_NODE node REQUIRED)
target_compile_definitions(collab_node_tests PRIVATE
  VELLUM_NODE="${VELLUM_NODE}"
  VELLUM_COLLAB_NODE_DIR="${PROJECT_SOURCE_DIR}/tests/node"
  VELLUM_COLLAB_YTOOL="$<TARGET_FILE:collab_ytool>")
vellum_warnings(collab_node_tests)
add_dependencies(collab_node_tests vellumd vellum_plugin_crypto vellum_plugin_editor vellum_test_collabpdp
  collab_ytool)
catch_discover_tests(collab_node_tests TEST_PREFIX "collab." EXTRA_ARGS -w NoTests PROPERTIES TIMEOUT 300)
