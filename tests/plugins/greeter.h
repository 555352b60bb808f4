/* The "greeter" test service (1.2): how plugins share a vtable through a header. */
#ifndef VELLUM_TEST_GREETER_H
#define VELLUM_TEST_GREETER_H
#include <stddef.h>
#include <stdint.h>

typedef struct greeter_v1 {
  uint32_t struct_size;
  /* Writes a greeting for `who` into out (NUL-terminated). THREADS: any. */
  int (*greet)(void* instance, const char* who, char* out, size_t out_size);
} greeter_v1;

#endif
