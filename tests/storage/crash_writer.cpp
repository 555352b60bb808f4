// storage_crash_writer <dbpath>: commits key i -> value i, one transaction
// each, and prints "ack <i>" only after commit() returned. The durability test
// SIGKILLs it mid-stream and checks that every acknowledged write survived.
#include <cstdio>
#include <string>

#include "storage/store.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <dbpath>\n", argv[0]);
    return 2;
  }
  try {
    auto store = vellum::host::open_sqlite_store({.path = argv[1]});
    // Bounded so a test that dies without killing us does not leave us running forever.
    for (int i = 0; i < 1000000; ++i) {
      auto txn = store->begin();
      txn->put("crash", "key-" + std::to_string(i), "value-" + std::to_string(i), VELLUM_VERSION_ABSENT);
      txn->commit();
      std::printf("ack %d\n", i);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "storage_crash_writer: %s\n", e.what());
    return 1;
  }
  return 0;
}
