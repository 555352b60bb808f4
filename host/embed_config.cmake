# Writes the config file into a C++ header as a raw string literal.
file(READ ${IN} content)
string(FIND "${content}" ")vellum\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "config/vellum.toml must not contain the delimiter )vellum\"")
endif()
file(WRITE ${OUT} "#pragma once\nnamespace vellum::host {\ninline constexpr const char kEmbeddedConfig[] = R\"vellum(${content})vellum\";\n}\n")
