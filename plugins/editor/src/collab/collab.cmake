# Realtime collaboration (src/collab): the Yjs update format, the
# y-websocket protocol and the server, linked into the editor plugin.
# Included at the end of plugins/editor/CMakeLists.txt.
set(VELLUM_COLLAB_DIR ${CMAKE_CURRENT_LIST_DIR})
add_library(vellum_editor_collab STATIC ${VELLUM_COLLAB_DIR}/yupdate.cpp ${VELLUM_COLLAB_DIR}/protocol.cpp
  ${VELLUM_COLLAB_DIR}/opaque.cpp ${VELLUM_COLLAB_DIR}/collab.cpp ${VELLUM_COLLAB_DIR}/hocuspocus.cpp
  ${VELLUM_COLLAB_DIR}/e2ee.cpp)
target_include_directories(vellum_editor_collab PUBLIC ${VELLUM_COLLAB_DIR} ${VELLUM_COLLAB_DIR}/..)
target_link_libraries(vellum_editor_collab PUBLIC vellum::sdk nlohmann_json::nlohmann_json)
set_target_properties(vellum_editor_collab PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
vellum_warnings(vellum_editor_collab)
target_link_libraries(vellum_plugin_editor PRIVATE vellum_editor_collab)

if(VELLUM_BUILD_TESTS)
  set(VELLUM_COLLAB_TESTS ${CMAKE_CURRENT_LIST_DIR}/../../tests/collab)
  include(${VELLUM_COLLAB_TESTS}/tests.cmake)
endif()
