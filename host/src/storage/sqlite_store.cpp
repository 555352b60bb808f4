// SQLite backend of the host key-value store; store.hpp states the contract.
//
// Layout: one WITHOUT ROWID table keyed by (ns, key) as BLOBs, so SQLite's
// memcmp ordering of blobs gives the bytewise key order scans promise.
// Concurrency: one write connection, used by one Transaction at a time, plus a
// pool of read-only connections; WAL mode lets those readers see the last
// committed snapshot while a writer is active.
#include "storage/store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <limits>
#include <mutex>
#include <vector>

namespace vellum::host {
namespace {

constexpr uint32_t kMaxScanLimit = 10000;

// SQLite's messages name tables and columns, never bound values, so they are
// safe to pass on; no message built here contains key or value bytes.
StoreError sqlite_error(std::string_view op, const SQLite::Exception& e) {
  vellum_status status = VELLUM_ERR_INTERNAL;
  switch (e.getErrorCode() & 0xff) {  // primary code, should extended codes be on
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
      status = VELLUM_ERR_UNAVAILABLE;
      break;
    case SQLITE_TOOBIG:
      status = VELLUM_ERR_INVALID_ARGUMENT;
      break;
  }
  return StoreError(status, "sqlite store: " + std::string(op) + " failed: " + e.what());
}

// Runs f, translating SQLite failures into StoreError.
template <class F>
decltype(auto) guarded(std::string_view op, F&& f) {
  try {
    return f();
  } catch (const SQLite::Exception& e) {
    throw sqlite_error(op, e);
  }
}

StoreError conflict(const std::string& what) {
  return StoreError(VELLUM_ERR_CONFLICT, "sqlite store: version conflict: " + what);
}

// Cached statements are reset after every use so they release their read
// snapshot and can be reused.
struct ResetOnExit {
  SQLite::Statement& st;
  ~ResetOnExit() { st.tryReset(); }
};

// Binds without copying: every caller keeps the bytes alive until the
// statement is reset.
void bind_blob(SQLite::Statement& st, int index, std::string_view bytes) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw StoreError(VELLUM_ERR_INVALID_ARGUMENT, "sqlite store: key or value too large");
  // A null pointer would bind SQL NULL instead of an empty blob.
  static const char kEmpty = 0;
  st.bindNoCopy(index, bytes.empty() ? &kEmpty : bytes.data(), static_cast<int>(bytes.size()));
}

std::string_view blob_view(const SQLite::Column& c) {
  const auto* data = static_cast<const char*>(c.getBlob());  // before getBytes(), as SQLite advises
  return data ? std::string_view(data, static_cast<size_t>(c.getBytes())) : std::string_view();
}

// Runs one direction of the barrier, binding the value to its namespace and key.
template <class F>
std::string through_barrier(Barrier& barrier, const char* verb, std::string_view ns, std::string_view key,
                            F&& f) {
  std::string context;
  context.reserve(ns.size() + 1 + key.size());
  context.append(ns).push_back('\0');
  context.append(key);
  try {
    return f(barrier, std::string_view(context));
  } catch (const StoreError&) {
    throw;
  } catch (const std::exception& e) {
    throw StoreError(VELLUM_ERR_INTERNAL, "sqlite store: barrier '" + barrier.name() + "' failed to " + verb +
                                              " a value: " + e.what());
  }
}

std::string unseal(Barrier& barrier, std::string_view ns, std::string_view key, std::string_view sealed) {
  return through_barrier(barrier, "unseal", ns, key,
                         [&](Barrier& b, std::string_view ctx) { return b.unseal(ctx, sealed); });
}

std::string seal(Barrier& barrier, std::string_view ns, std::string_view key, std::string_view plaintext) {
  return through_barrier(barrier, "seal", ns, key,
                         [&](Barrier& b, std::string_view ctx) { return b.seal(ctx, plaintext); });
}

constexpr const char* kGetSql = "SELECT value, version FROM kv WHERE ns = ?1 AND key = ?2";

std::optional<Record> read_one(SQLite::Statement& st, std::string_view ns, std::string_view key,
                               Barrier* barrier) {
  ResetOnExit reset{st};
  bind_blob(st, 1, ns);
  bind_blob(st, 2, key);
  if (!st.executeStep()) return std::nullopt;
  const std::string_view stored = blob_view(st.getColumn(0));
  Record rec;
  rec.version = static_cast<uint64_t>(st.getColumn(1).getInt64());
  rec.value = barrier ? unseal(*barrier, ns, key, stored) : std::string(stored);
  return rec;
}

// The smallest key greater than every key starting with `prefix`, or none if
// the prefix is empty or all 0xFF (then nothing bounds it from above).
std::optional<std::string> prefix_successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

// std::string compares as unsigned char, i.e. in the same order as SQLite blobs.
bool scan_rows(SQLite::Database& db, std::string_view ns, const ScanOptions& opts, Barrier* barrier,
               const ScanFn& fn) {
  // start/end and the prefix range intersect: the larger lower bound, the smaller upper one.
  const std::string lower = std::max(opts.start, opts.prefix);
  std::optional<std::string> upper;
  if (!opts.end.empty()) upper = opts.end;
  if (auto succ = prefix_successor(opts.prefix); succ && (!upper || *succ < *upper)) upper = std::move(succ);
  if (upper && lower >= *upper) return false;
  const uint32_t limit = std::clamp<uint32_t>(opts.limit, 1, kMaxScanLimit);

  // Prepared per call rather than cached: a callback may start another scan on
  // the same connection while this one is still stepping.
  std::string sql = "SELECT key, value, version FROM kv WHERE ns = ?1 AND key >= ?2";
  if (upper) sql += " AND key < ?3";
  sql += opts.reverse ? " ORDER BY key DESC LIMIT ?4" : " ORDER BY key LIMIT ?4";
  SQLite::Statement st(db, sql);
  bind_blob(st, 1, ns);
  bind_blob(st, 2, lower);
  if (upper) bind_blob(st, 3, *upper);
  st.bind(4, static_cast<int64_t>(limit) + 1);  // one extra row tells whether more exist

  uint32_t delivered = 0;
  while (st.executeStep()) {
    if (delivered == limit) return true;
    ++delivered;
    const std::string_view key = blob_view(st.getColumn(0));
    std::string_view value = blob_view(st.getColumn(1));
    std::string plaintext;
    if (barrier) value = plaintext = unseal(*barrier, ns, key, value);
    if (!fn(key, value, static_cast<uint64_t>(st.getColumn(2).getInt64()))) return false;
  }
  return false;
}

SQLite::Database open_writer(const SqliteOptions& opts) {
  SQLite::Database db(opts.path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
                      opts.busy_timeout_ms);
  if (db.execAndGet("PRAGMA journal_mode=WAL").getString() != "wal")
    throw StoreError(VELLUM_ERR_UNAVAILABLE, "sqlite store: cannot enable WAL mode on " + opts.path);
  // FULL syncs the WAL at every commit, so an acknowledged commit survives
  // power loss, not just a crash of this process.
  db.exec("PRAGMA synchronous=FULL");
  db.exec(
      "CREATE TABLE IF NOT EXISTS kv (ns BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
      " version INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID");
  return db;
}

// The write connection with its cached statements. Used only by the
// Transaction that holds the WriterGate, hence NOMUTEX.
struct WriteConn {
  explicit WriteConn(const SqliteOptions& opts)
      : db(open_writer(opts)),
        get(db, kGetSql),
        version(db, "SELECT version FROM kv WHERE ns = ?1 AND key = ?2"),
        insert(db, "INSERT INTO kv (ns, key, value, version) VALUES (?1, ?2, ?3, ?4)"),
        update(db, "UPDATE kv SET value = ?3, version = ?4 WHERE ns = ?1 AND key = ?2"),
        erase(db, "DELETE FROM kv WHERE ns = ?1 AND key = ?2") {}
  SQLite::Database db;
  SQLite::Statement get, version, insert, update, erase;
};

// A pooled read-only connection; one thread at a time, hence NOMUTEX.
struct ReadConn {
  explicit ReadConn(const SqliteOptions& opts)
      : db(opts.path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX, opts.busy_timeout_ms), get(db, kGetSql) {}
  SQLite::Database db;
  SQLite::Statement get;
};

// Serializes writers. A mutex is not enough: a transaction may be committed on
// a thread other than the one that began it (async handlers). Waiting is
// bounded by the busy timeout, the same patience SQLite shows to writers in
// other processes, so a stuck writer surfaces as UNAVAILABLE instead of a hang.
class WriterGate {
 public:
  explicit WriterGate(int timeout_ms) : timeout_(std::max(timeout_ms, 0)) {}
  void acquire() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout_, [&] { return !busy_; }))
      throw StoreError(VELLUM_ERR_UNAVAILABLE, "sqlite store: timed out waiting for the active writer");
    busy_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    cv_.notify_one();
  }

 private:
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool busy_ = false;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const SqliteOptions& opts) : opts_(opts), writer_(opts), gate_(opts.busy_timeout_ms) {}

  std::unique_ptr<Transaction> begin() override;

  std::optional<Record> get(std::string_view ns, std::string_view key) override {
    const auto barrier = current_barrier();
    return guarded("get", [&] {
      Lease lease(*this);
      return read_one(lease.conn->get, ns, key, barrier.get());
    });
  }

  bool scan(std::string_view ns, const ScanOptions& opts, const ScanFn& fn) override {
    const auto barrier = current_barrier();
    return guarded("scan", [&] {
      Lease lease(*this);
      return scan_rows(lease.conn->db, ns, opts, barrier.get(), fn);
    });
  }

  void set_barrier(std::shared_ptr<Barrier> barrier) override {
    std::lock_guard lock(barrier_mu_);
    barrier_ = std::move(barrier);
  }
  bool has_barrier() const override { return current_barrier() != nullptr; }
  std::string backend_name() const override { return "sqlite"; }
  ResealBatch reseal(std::string_view cursor, uint32_t limit) override;

  std::shared_ptr<Barrier> current_barrier() const {
    std::lock_guard lock(barrier_mu_);
    return barrier_;
  }

  WriteConn& writer() { return writer_; }
  WriterGate& gate() { return gate_; }

 private:
  // Borrows an idle read connection or opens one: never waiting for a free
  // connection means a scan callback may itself read without deadlocking.
  // At most opts_.read_connections stay open while idle.
  struct Lease {
    explicit Lease(SqliteStore& s) : store(s) {
      {
        std::lock_guard lock(s.pool_mu_);
        if (!s.idle_.empty()) {
          conn = std::move(s.idle_.back());
          s.idle_.pop_back();
        }
      }
      if (!conn) conn = std::make_unique<ReadConn>(s.opts_);
    }
    ~Lease() {
      std::lock_guard lock(store.pool_mu_);
      if (store.idle_.size() < store.opts_.read_connections) store.idle_.push_back(std::move(conn));
      // otherwise conn is closed by the member destructor, after the lock is released
    }
    SqliteStore& store;
    std::unique_ptr<ReadConn> conn;
  };

  const SqliteOptions opts_;
  WriteConn writer_;
  WriterGate gate_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<ReadConn>> idle_;
  mutable std::mutex barrier_mu_;
  std::shared_ptr<Barrier> barrier_;
};

class SqliteTransaction final : public Transaction {
 public:
  explicit SqliteTransaction(SqliteStore& store) : store_(store), w_(store.writer()) {
    store_.gate().acquire();
    try {
      // IMMEDIATE takes SQLite's write lock now, so another process holding it
      // fails this begin() rather than a later write in the middle.
      guarded("begin", [&] { w_.db.exec("BEGIN IMMEDIATE"); });
    } catch (...) {
      store_.gate().release();
      throw;
    }
  }

  ~SqliteTransaction() override {
    if (!active_) return;
    try {
      finish(false);
    } catch (...) {  // nothing sensible to do; finish() already released the writer
    }
  }

  std::optional<Record> get(std::string_view ns, std::string_view key) override {
    ensure_active();
    const auto barrier = store_.current_barrier();
    return guarded("get", [&] { return read_one(w_.get, ns, key, barrier.get()); });
  }

  uint64_t put(std::string_view ns, std::string_view key, std::string_view value,
               uint64_t expected) override {
    ensure_active();
    const auto current = current_version(ns, key);
    if (expected == VELLUM_VERSION_ABSENT && current) throw conflict("key already exists");
    if (expected != VELLUM_VERSION_ANY && expected != VELLUM_VERSION_ABSENT && current != expected)
      throw conflict("expected version " + std::to_string(expected) + ", found " +
                     (current ? std::to_string(*current) : std::string("none")));
    std::string sealed;
    if (const auto barrier = store_.current_barrier()) value = sealed = seal(*barrier, ns, key, value);
    const uint64_t next = current ? *current + 1 : 1;
    guarded("put", [&] {
      auto& st = current ? w_.update : w_.insert;
      ResetOnExit reset{st};
      bind_blob(st, 1, ns);
      bind_blob(st, 2, key);
      bind_blob(st, 3, value);
      st.bind(4, static_cast<int64_t>(next));
      st.exec();
    });
    return next;
  }

  void erase(std::string_view ns, std::string_view key, uint64_t expected) override {
    ensure_active();
    const auto current = current_version(ns, key);
    if (!current) throw StoreError(VELLUM_ERR_NOT_FOUND, "sqlite store: erase: no such key");
    if (expected == VELLUM_VERSION_ABSENT) throw conflict("key exists");
    if (expected != VELLUM_VERSION_ANY && expected != *current)
      throw conflict("expected version " + std::to_string(expected) + ", found " + std::to_string(*current));
    guarded("erase", [&] {
      ResetOnExit reset{w_.erase};
      bind_blob(w_.erase, 1, ns);
      bind_blob(w_.erase, 2, key);
      w_.erase.exec();
    });
  }

  bool scan(std::string_view ns, const ScanOptions& opts, const ScanFn& fn) override {
    ensure_active();
    const auto barrier = store_.current_barrier();
    return guarded("scan", [&] { return scan_rows(w_.db, ns, opts, barrier.get(), fn); });
  }

  void commit() override { finish(true); }
  void rollback() override { finish(false); }

 private:
  void ensure_active() const {
    if (!active_) throw StoreError(VELLUM_ERR_INTERNAL, "sqlite store: transaction already finished");
  }

  std::optional<uint64_t> current_version(std::string_view ns, std::string_view key) {
    return guarded("read version", [&]() -> std::optional<uint64_t> {
      ResetOnExit reset{w_.version};
      bind_blob(w_.version, 1, ns);
      bind_blob(w_.version, 2, key);
      if (!w_.version.executeStep()) return std::nullopt;
      return static_cast<uint64_t>(w_.version.getColumn(0).getInt64());
    });
  }

  void finish(bool commit) {
    ensure_active();
    active_ = false;
    // Whatever happens below, the connection ends up outside any transaction
    // and the next writer may proceed.
    struct Release {
      WriterGate& gate;
      ~Release() { gate.release(); }
    } release{store_.gate()};
    sqlite3* handle = w_.db.getHandle();
    // Some errors (IO, disk full) make SQLite roll back on its own.
    const bool open = !sqlite3_get_autocommit(handle);
    if (commit && !open)
      throw StoreError(VELLUM_ERR_UNAVAILABLE,
                       "sqlite store: transaction was rolled back by an earlier error");
    try {
      if (open) w_.db.exec(commit ? "COMMIT" : "ROLLBACK");
    } catch (const SQLite::Exception& e) {
      if (!sqlite3_get_autocommit(handle)) w_.db.tryExec("ROLLBACK");
      throw sqlite_error(commit ? "commit" : "rollback", e);
    }
  }

  SqliteStore& store_;
  WriteConn& w_;
  bool active_ = true;
};

std::unique_ptr<Transaction> SqliteStore::begin() { return std::make_unique<SqliteTransaction>(*this); }

// Cursor: u32 big-endian namespace length, namespace, key (of the last row done).
Store::ResealBatch SqliteStore::reseal(std::string_view cursor, uint32_t limit) {
  const auto barrier = current_barrier();
  if (!barrier) throw StoreError(VELLUM_ERR_STATE, "sqlite store: reseal needs a storage barrier");
  std::string after_ns, after_key;
  const bool from_start = cursor.empty();
  if (!from_start) {
    if (cursor.size() < 4)
      throw StoreError(VELLUM_ERR_INVALID_ARGUMENT, "sqlite store: malformed reseal cursor");
    const auto* b = reinterpret_cast<const unsigned char*>(cursor.data());
    const size_t n = (size_t{b[0]} << 24) | (size_t{b[1]} << 16) | (size_t{b[2]} << 8) | size_t{b[3]};
    if (cursor.size() < 4 + n)
      throw StoreError(VELLUM_ERR_INVALID_ARGUMENT, "sqlite store: malformed reseal cursor");
    after_ns = cursor.substr(4, n);
    after_key = cursor.substr(4 + n);
  }
  limit = std::clamp<uint32_t>(limit, 1, kMaxScanLimit);
  SqliteTransaction txn(*this);  // holds the writer: rows cannot change under the batch
  struct Row {
    std::string ns, key, value;
    int64_t version;
  };
  std::vector<Row> rows;
  bool more = false;
  guarded("reseal scan", [&] {
    SQLite::Statement st(writer_.db,
                         from_start ? "SELECT ns, key, value, version FROM kv ORDER BY ns, key LIMIT ?3"
                                    : "SELECT ns, key, value, version FROM kv WHERE (ns, key) > (?1, ?2) "
                                      "ORDER BY ns, key LIMIT ?3");
    if (!from_start) {
      bind_blob(st, 1, after_ns);
      bind_blob(st, 2, after_key);
    }
    st.bind(3, static_cast<int64_t>(limit) + 1);  // one extra row tells whether more exist
    while (st.executeStep()) {
      if (rows.size() == limit) {
        more = true;
        break;
      }
      rows.push_back(Row{std::string(blob_view(st.getColumn(0))), std::string(blob_view(st.getColumn(1))),
                         std::string(blob_view(st.getColumn(2))), st.getColumn(3).getInt64()});
    }
  });
  ResealBatch out;
  for (auto& r : rows) {
    const std::string sealed = seal(*barrier, r.ns, r.key, unseal(*barrier, r.ns, r.key, r.value));
    guarded("reseal put", [&] {
      SQLite::Statement st(writer_.db,
                           "UPDATE kv SET value = ?3 WHERE ns = ?1 AND key = ?2 AND version = ?4");
      bind_blob(st, 1, r.ns);
      bind_blob(st, 2, r.key);
      bind_blob(st, 3, sealed);
      st.bind(4, r.version);
      out.resealed += static_cast<uint64_t>(st.exec());  // 0 if a writer changed the row: it wins
    });
  }
  txn.commit();
  out.done = !more;
  if (!rows.empty()) {
    const Row& last = rows.back();
    const uint32_t n = static_cast<uint32_t>(last.ns.size());
    out.next_cursor = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                       static_cast<char>(n)};
    out.next_cursor += last.ns;
    out.next_cursor += last.key;
  } else {
    out.next_cursor = std::string(cursor);
  }
  return out;
}

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const SqliteOptions& opts) {
  namespace fs = std::filesystem;
  if (opts.path.empty()) throw StoreError(VELLUM_ERR_INVALID_ARGUMENT, "sqlite store: empty database path");
  const fs::path parent = fs::path(opts.path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw StoreError(VELLUM_ERR_INVALID_ARGUMENT, "sqlite store: directory " + parent.string() +
                                                      " does not exist (database " + opts.path + ")");
  return guarded("open " + opts.path, [&] { return std::make_unique<SqliteStore>(opts); });
}

}  // namespace vellum::host
