// The host's ordered, namespaced key-value store. One interface; SQLite is the
// embedded backend, PostgreSQL can follow without touching plugins (they reach
// storage only through the ABI, which maps onto this interface).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <vellum/abi.h>

namespace vellum::host {

// Thrown by storage operations; `status` is a VELLUM_ERR_* code
// (NOT_FOUND, CONFLICT, UNAVAILABLE, INVALID_ARGUMENT, INTERNAL).
struct StoreError : std::runtime_error {
  StoreError(vellum_status s, const std::string& msg) : std::runtime_error(msg), status(s) {}
  vellum_status status;
};

// The transform every value passes through on its way to and from disk.
// `context` is "<namespace>\0<key>"; implementations bind it as associated data.
class Barrier {
 public:
  virtual ~Barrier() = default;
  virtual std::string name() const = 0;
  virtual std::string seal(std::string_view context, std::string_view plaintext) = 0;
  virtual std::string unseal(std::string_view context, std::string_view sealed) = 0;
};

struct Record {
  std::string value;
  uint64_t version = 0;  // 1 on creation, +1 per write
};

struct ScanOptions {
  std::string start;   // inclusive; empty = first key
  std::string end;     // exclusive; empty = last key
  std::string prefix;  // only keys with this prefix (combined with start/end)
  bool reverse = false;
  uint32_t limit = 1000;  // clamped to [1, 10000]
};

// Return false to stop the scan early.
using ScanFn = std::function<bool(std::string_view key, std::string_view value, uint64_t version)>;

class Transaction {
 public:
  virtual ~Transaction() = default;  // rolls back if neither commit nor rollback ran
  virtual std::optional<Record> get(std::string_view ns, std::string_view key) = 0;
  // expected: VELLUM_VERSION_ANY, VELLUM_VERSION_ABSENT (0) or an exact version.
  // Throws StoreError(CONFLICT) on mismatch. Returns the new version.
  virtual uint64_t put(std::string_view ns, std::string_view key, std::string_view value,
                       uint64_t expected) = 0;
  // Throws NOT_FOUND if absent, CONFLICT on version mismatch.
  virtual void erase(std::string_view ns, std::string_view key, uint64_t expected) = 0;
  // Returns true if the limit cut the scan short.
  virtual bool scan(std::string_view ns, const ScanOptions& opts, const ScanFn& fn) = 0;
  // Durable (fsync'd) when it returns.
  virtual void commit() = 0;
  virtual void rollback() = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  // A read-write transaction. Writers are serialized; readers outside a
  // transaction (get/scan below) are not blocked by them.
  virtual std::unique_ptr<Transaction> begin() = 0;
  // Single reads in their own snapshot.
  virtual std::optional<Record> get(std::string_view ns, std::string_view key) = 0;
  virtual bool scan(std::string_view ns, const ScanOptions& opts, const ScanFn& fn) = 0;
  // Install the barrier before any value is written or read through it.
  virtual void set_barrier(std::shared_ptr<Barrier> barrier) = 0;
  virtual bool has_barrier() const = 0;
  virtual std::string backend_name() const = 0;

  // Re-seals up to `limit` rows of every namespace after `cursor` (opaque;
  // empty = from the first row), in (namespace, key) order, with the current
  // barrier, in one write transaction; versions are kept. Throws
  // StoreError(INVALID_ARGUMENT) on a malformed cursor, (STATE) without a barrier.
  struct ResealBatch {
    std::string next_cursor;
    uint64_t resealed = 0;
    bool done = false;
  };
  virtual ResealBatch reseal(std::string_view cursor, uint32_t limit) = 0;
};

struct SqliteOptions {
  std::string path;               // database file; parent directory must exist
  unsigned read_connections = 4;  // pool for reads outside transactions
  int busy_timeout_ms = 5000;
};

std::unique_ptr<Store> open_sqlite_store(const SqliteOptions& opts);

}  // namespace vellum::host
