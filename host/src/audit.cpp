// The tamper-evident audit log (audit.hpp states the design).
//
// Storage (audit.db):
//   records(seq INTEGER PRIMARY KEY, time_ms, actor, action, resource, outcome,
//           body TEXT, prev TEXT, hash TEXT)
//     body: canonical JSON (fixed member order, compact); the other columns
//     duplicate body members for indexed queries and are checked by verify.
//     prev/hash: hex of hash_{n-1} and hash_n = SHA-256(hash_{n-1} ‖ body).
//   checkpoints(id INTEGER PRIMARY KEY, first_seq, last_seq, tree_size, root_hex,
//               time_ms, signed_data TEXT, signature_b64 TEXT, public_key_pem TEXT)
//     The Merkle tree of a checkpoint covers ALL records 1..last_seq (leaf i =
//     body of record i), so tree_size == last_seq and consecutive checkpoints
//     are consistent views of one growing tree (RFC 6962 consistency proofs
//     apply). first_seq is the first record not covered by the previous one.
//   meta(key TEXT PRIMARY KEY, value TEXT)
//     "frontier": the Merkle frontier at the last checkpoint, so a restart does
//     not rehash the whole log. Only the writer trusts it; verify recomputes.
//
// Writes: one write connection owned by whichever thread holds the writer
// role. Appends queue up while a commit is in progress and the next writer
// commits the whole queue in one transaction (group commit), so throughput
// under concurrency is not one fsync per record.
#include "audit.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace vellum::host {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// ---------------------------------------------------------------- crypto
using Hash = std::array<unsigned char, 32>;

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

[[noreturn]] void crypto_fail(const std::string& what) {
  throw std::runtime_error("audit: " + what + ": " + openssl_error());
}

const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // fetched once, kept for the process
  if (!md) crypto_fail("SHA-256 unavailable");
  return md;
}

// SHA-256 over several pieces, with one reusable context per thread.
class Sha256 {
 public:
  Sha256() {
    thread_local MdCtxPtr tl(EVP_MD_CTX_new());
    ctx_ = tl.get();
    if (!ctx_ || EVP_DigestInit_ex2(ctx_, sha256_md(), nullptr) != 1) crypto_fail("SHA-256 init");
  }
  Sha256& add(const void* p, size_t n) {
    if (EVP_DigestUpdate(ctx_, p, n) != 1) crypto_fail("SHA-256 update");
    return *this;
  }
  Sha256& add(std::string_view s) { return add(s.data(), s.size()); }
  Sha256& add(const Hash& h) { return add(h.data(), h.size()); }
  Hash done() {
    Hash out;
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx_, out.data(), &n) != 1 || n != out.size()) crypto_fail("SHA-256 final");
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string to_hex(const unsigned char* p, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 15];
  }
  return s;
}
std::string to_hex(const Hash& h) { return to_hex(h.data(), h.size()); }

bool from_hex(std::string_view s, Hash& out) {
  if (s.size() != 64) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // lower case only: the stored form is canonical
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nib(s[2 * i]), lo = nib(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

// RFC 6962 section 2.1: leaf and interior node hashes.
Hash leaf_hash(std::string_view data) {
  const unsigned char prefix = 0x00;
  return Sha256().add(&prefix, 1).add(data).done();
}
Hash node_hash(const Hash& l, const Hash& r) {
  const unsigned char prefix = 0x01;
  return Sha256().add(&prefix, 1).add(l).add(r).done();
}
Hash chain_hash(const Hash& prev, std::string_view body) { return Sha256().add(prev).add(body).done(); }

// The right edge of an RFC 6962 tree: the roots of its perfect subtrees,
// largest (leftmost) first, one per set bit of the size. The root folds them
// from the right, which is exactly MTH's split at the largest power of two.
struct Frontier {
  uint64_t size = 0;
  std::vector<std::pair<int, Hash>> nodes;  // (height, hash), heights strictly decreasing

  void push(const Hash& leaf) {
    Hash h = leaf;
    int height = 0;
    while (!nodes.empty() && nodes.back().first == height) {
      h = node_hash(nodes.back().second, h);
      nodes.pop_back();
      ++height;
    }
    nodes.emplace_back(height, h);
    ++size;
  }
  Hash root() const {
    if (nodes.empty()) return Sha256().done();  // MTH({}) = SHA-256 of the empty string
    Hash r = nodes.back().second;
    for (size_t i = nodes.size() - 1; i-- > 0;) r = node_hash(nodes[i].second, r);
    return r;
  }
  std::string to_json() const {
    nlohmann::json j;
    j["tree_size"] = size;
    j["nodes"] = nlohmann::json::array();
    for (auto& [h, hash] : nodes) j["nodes"].push_back({h, to_hex(hash)});
    return j.dump();
  }
  static bool from_json(const std::string& s, Frontier& out) {
    auto j = nlohmann::json::parse(s, nullptr, false);
    if (!j.is_object() || !j.contains("tree_size") || !j.contains("nodes")) return false;
    try {
      Frontier f;
      f.size = j.at("tree_size").get<uint64_t>();
      uint64_t covered = 0;
      int last = 64;
      for (auto& n : j.at("nodes")) {
        int h = n.at(0).get<int>();
        Hash hash;
        if (h < 0 || h >= last || !from_hex(n.at(1).get<std::string>(), hash)) return false;
        covered += uint64_t{1} << h;
        last = h;
        f.nodes.emplace_back(h, hash);
      }
      if (covered != f.size) return false;
      out = std::move(f);
      return true;
    } catch (const nlohmann::json::exception&) {
      return false;
    }
  }
};

std::string base64_encode(const unsigned char* p, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

bool base64_decode(std::string_view s, std::string& out) {
  if (s.empty() || s.size() % 4 != 0 || s.size() > (1u << 20)) return false;
  std::string buf(s.size() / 4 * 3, '\0');
  int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                            reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (len < 0) return false;
  size_t pad = s.back() == '=' ? (s[s.size() - 2] == '=' ? 2 : 1) : 0;
  buf.resize(static_cast<size_t>(len) - pad);
  out = std::move(buf);
  return true;
}

std::string pkey_public_pem(EVP_PKEY* k) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), k) != 1) crypto_fail("writing the public key");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// Parses an Ed25519 public key (SPKI PEM); nullptr when it is not one.
PkeyPtr parse_public_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr k(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!k || !EVP_PKEY_is_a(k.get(), "ED25519")) return nullptr;
  return k;
}

PkeyPtr parse_private_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr k(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!k || !EVP_PKEY_is_a(k.get(), "ED25519")) return nullptr;
  return k;
}

std::string ed25519_sign(EVP_PKEY* k, std::string_view data) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned char sig[64];
  size_t len = sizeof sig;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1)
    crypto_fail("signing a checkpoint");
  return base64_encode(sig, len);
}

bool ed25519_verify(EVP_PKEY* k, std::string_view data, std::string_view sig_b64) {
  std::string sig;
  if (!base64_decode(sig_b64, sig) || sig.size() != 64) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, k) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  ERR_clear_error();
  return ok;
}

// ---------------------------------------------------------------- key files
std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("audit: cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Returns the file's content, creating it (mode 0600, fsynced) from make()
// when it does not exist. Written to a temporary name and linked into place,
// so a crash never leaves a partial key and two racing processes agree.
template <class Make>
std::string read_or_create_secret(const std::string& path, Make make) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (st.st_mode & 077) spdlog::warn("audit: {} is readable by group or others; chmod 600 it", path);
    return read_whole_file(path);
  }
  if (errno != ENOENT) throw std::runtime_error("audit: cannot stat " + path + ": " + std::strerror(errno));
  std::string content = make();
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  unsigned char rnd[8];
  if (RAND_bytes(rnd, sizeof rnd) != 1) crypto_fail("random bytes");
  std::string tmp = path + ".tmp-" + to_hex(rnd, sizeof rnd);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("audit: cannot create " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  bool ok = true;
  while (ok && off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("audit: cannot write " + tmp);
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && err != EEXIST)
    throw std::runtime_error("audit: cannot create " + path + ": " + std::strerror(err));
  fsync_dir(p.has_parent_path() ? p.parent_path() : fs::path("."));
  return rc == 0 ? content : read_whole_file(path);  // EEXIST: another process won the race
}

std::string new_hmac_key() {
  std::string k(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32) != 1) crypto_fail("random bytes");
  return k;
}

std::string new_signing_key_pem() {
  PkeyPtr k(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!k) crypto_fail("generating an Ed25519 key");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    crypto_fail("writing the signing key");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// ---------------------------------------------------------------- records
constexpr std::string_view kZeroHashHex = "0000000000000000000000000000000000000000000000000000000000000000";
constexpr std::string_view kCheckpointHeader = "vellum-audit-checkpoint v1\n";

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
    " actor TEXT NOT NULL, action TEXT NOT NULL, resource TEXT NOT NULL, outcome TEXT NOT NULL,"
    " body TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS records_actor ON records (actor, seq);"
    "CREATE INDEX IF NOT EXISTS records_action ON records (action, seq);"
    "CREATE INDEX IF NOT EXISTS records_resource ON records (resource, seq);"
    "CREATE INDEX IF NOT EXISTS records_time ON records (time_ms);"
    "CREATE TABLE IF NOT EXISTS checkpoints (id INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL,"
    " last_seq INTEGER NOT NULL, tree_size INTEGER NOT NULL, root_hex TEXT NOT NULL, time_ms INTEGER NOT "
    "NULL,"
    " signed_data TEXT NOT NULL, signature_b64 TEXT NOT NULL, public_key_pem TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Invalid UTF-8 (from headers, say) is replaced rather than refused: the
// record must still be written.
std::string dump(const ojson& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string sign_text(uint64_t first_seq, uint64_t last_seq, const std::string& root,
                      const std::string& last_hash, int64_t time_ms) {
  std::string s(kCheckpointHeader);
  s += "first_seq=" + std::to_string(first_seq) + "\n";
  s += "last_seq=" + std::to_string(last_seq) + "\n";
  s += "tree_size=" + std::to_string(last_seq) + "\n";
  s += "root=" + root + "\n";
  s += "last_hash=" + last_hash + "\n";
  s += "time_ms=" + std::to_string(time_ms) + "\n";
  return s;
}

// The key=value lines of signed_data; false unless it is exactly the v1 form.
bool parse_signed(const std::string& s, std::map<std::string, std::string>& out) {
  if (s.rfind(kCheckpointHeader, 0) != 0) return false;
  std::istringstream in(s.substr(kCheckpointHeader.size()));
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos || !out.emplace(line.substr(0, eq), line.substr(eq + 1)).second) return false;
  }
  for (const char* k : {"first_seq", "last_seq", "tree_size", "root", "last_hash", "time_ms"})
    if (!out.count(k)) return false;
  return out.size() == 6 && !s.empty() && s.back() == '\n';
}

}  // namespace

namespace {
// MTH(D[lo..hi)) of RFC 6962 §2.1 over precomputed leaf hashes.
Hash subtree_hash(const std::vector<Hash>& leaves, size_t lo, size_t hi) {
  if (hi - lo == 1) return leaves[lo];
  size_t k = 1;
  while (k * 2 < hi - lo) k *= 2;  // the largest power of two below n
  return node_hash(subtree_hash(leaves, lo, lo + k), subtree_hash(leaves, lo + k, hi));
}

// PATH(m, D[lo..hi)) of RFC 6962 §2.1.1: the audit path of leaf m, from the
// leaf's sibling up to the root's children.
void inclusion_path(const std::vector<Hash>& leaves, size_t m, size_t lo, size_t hi, std::vector<Hash>& out) {
  if (hi - lo <= 1) return;
  size_t k = 1;
  while (k * 2 < hi - lo) k *= 2;
  if (m < k) {
    inclusion_path(leaves, m, lo, lo + k, out);
    out.push_back(subtree_hash(leaves, lo + k, hi));
  } else {
    inclusion_path(leaves, m - k, lo + k, hi, out);
    out.push_back(subtree_hash(leaves, lo, lo + k));
  }
}
}  // namespace

namespace audit_detail {
std::string merkle_root_hex(const std::vector<std::string>& leaves) {
  Frontier f;
  for (auto& l : leaves) f.push(leaf_hash(l));
  return to_hex(f.root());
}
std::vector<std::string> inclusion_proof_hex(const std::vector<std::string>& leaves, size_t index) {
  std::vector<Hash> hashes;
  hashes.reserve(leaves.size());
  for (auto& l : leaves) hashes.push_back(leaf_hash(l));
  std::vector<Hash> path;
  inclusion_path(hashes, index, 0, hashes.size(), path);
  std::vector<std::string> out;
  for (auto& h : path) out.push_back(to_hex(h));
  return out;
}
}  // namespace audit_detail

// ---------------------------------------------------------------- AuditLog
struct AuditLog::Impl {
  AuditOptions opt;
  std::string hmac_key;
  PkeyPtr signing_key;
  std::string public_pem;

  // Writer state: touched only by the thread holding the writer role.
  SQLite::Database db;
  SQLite::Statement insert_record;
  uint64_t seq = 0;
  Hash last_hash{};
  Frontier frontier;
  uint64_t cp_last_seq = 0;
  int64_t cp_time_ms = 0;
  bool reload = false;  // a failed commit left the in-memory state uncertain

  // Group commit.
  struct Pending {
    uint64_t seq = 0;
    std::string tail;  // the body after {"v":1,"seq":N,
    int64_t time_ms;
    std::string actor, action, resource, outcome;
    std::exception_ptr error;
    bool done = false;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Pending*> queue;
  bool writing = false;

  // Queries.
  mutable std::mutex read_mu;
  std::unique_ptr<SQLite::Database> reader;

  explicit Impl(AuditOptions o)
      : opt(std::move(o)),
        db(open_db(opt.db_path)),
        insert_record(db,
                      "INSERT INTO records (seq, time_ms, actor, action, resource, outcome, body, prev, hash)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)") {
    fs::path dir = fs::path(opt.db_path).parent_path();
    if (opt.hmac_key_path.empty()) opt.hmac_key_path = (dir / "audit-hmac.key").string();
    if (opt.signing_key_path.empty()) opt.signing_key_path = (dir / "audit-signing.pem").string();
    if (opt.checkpoint_every == 0) opt.checkpoint_every = 1;
    hmac_key = read_or_create_secret(opt.hmac_key_path, new_hmac_key);
    if (hmac_key.size() != 32)
      throw std::runtime_error("audit: " + opt.hmac_key_path + " must hold exactly 32 bytes");
    signing_key = parse_private_pem(read_or_create_secret(opt.signing_key_path, new_signing_key_pem));
    if (!signing_key)
      throw std::runtime_error("audit: " + opt.signing_key_path + " is not an Ed25519 private key (PEM)");
    public_pem = pkey_public_pem(signing_key.get());
    load_state();
    reader =
        std::make_unique<SQLite::Database>(opt.db_path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX, 5000);
  }

  static SQLite::Database open_db(const std::string& path) {
    fs::path p(path);
    if (p.has_parent_path()) fs::create_directories(p.parent_path());
    SQLite::Database d(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX, 5000);
    if (d.execAndGet("PRAGMA journal_mode=WAL").getString() != "wal")
      throw std::runtime_error("audit: cannot enable WAL mode on " + path);
    d.exec("PRAGMA synchronous=FULL");  // every commit is fsynced: an appended record survives power loss
    d.exec(kSchema);
    return d;
  }

  void load_state() {
    seq = 0;
    last_hash = Hash{};
    cp_last_seq = 0;
    cp_time_ms = 0;
    {
      SQLite::Statement st(db, "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1");
      if (st.executeStep()) {
        seq = static_cast<uint64_t>(st.getColumn(0).getInt64());
        if (!from_hex(st.getColumn(1).getString(), last_hash))
          throw std::runtime_error("audit: the hash of the last record (" + std::to_string(seq) +
                                   ") is malformed; run `vellumd audit verify`");
      }
    }
    {
      SQLite::Statement st(
          db, "SELECT last_seq, time_ms, public_key_pem FROM checkpoints ORDER BY id DESC LIMIT 1");
      if (st.executeStep()) {
        cp_last_seq = static_cast<uint64_t>(st.getColumn(0).getInt64());
        cp_time_ms = st.getColumn(1).getInt64();
        if (st.getColumn(2).getString() != public_pem)
          spdlog::warn(
              "audit: {} is not the key that signed the last checkpoint; verification with the old "
              "public key will fail for checkpoints from now on",
              opt.signing_key_path);
      }
    }
    frontier = Frontier{};
    {
      SQLite::Statement st(db, "SELECT value FROM meta WHERE key = 'frontier'");
      Frontier f;
      if (st.executeStep() && Frontier::from_json(st.getColumn(0).getString(), f) && f.size == cp_last_seq &&
          f.size <= seq)
        frontier = std::move(f);
    }
    SQLite::Statement st(db, "SELECT seq, body FROM records WHERE seq > ?1 ORDER BY seq");
    st.bind(1, static_cast<int64_t>(frontier.size));
    while (st.executeStep()) {
      frontier.push(leaf_hash(st.getColumn(1).getString()));
      if (static_cast<uint64_t>(st.getColumn(0).getInt64()) != frontier.size)
        spdlog::error("audit: records are not contiguous at seq {}; run `vellumd audit verify`",
                      frontier.size);
    }
    reload = false;
  }

  Pending prepare(AuditEvent& e, const AuditLog& self) const {
    static const std::set<std::string> kOutcomes = {"success", "failure", "denied"};
    if (e.action.empty()) throw std::runtime_error("audit: an event needs an action");
    if (!kOutcomes.count(e.outcome))
      throw std::runtime_error("audit: outcome must be success, failure or denied, not '" + e.outcome + "'");
    if (e.details.is_null()) e.details = nlohmann::json::object();
    if (!e.details.is_object()) throw std::runtime_error("audit: details must be a JSON object");
    for (auto& ptr : e.sensitive) {
      nlohmann::json::json_pointer p;
      try {
        p = nlohmann::json::json_pointer(ptr);
      } catch (const nlohmann::json::exception&) {
        // Refuse the event: writing it could store the value in the clear.
        throw std::runtime_error("audit: '" + ptr + "' is not a JSON pointer");
      }
      if (p.empty())
        throw std::runtime_error("audit: a sensitive pointer cannot be the whole details object");
      if (!e.details.contains(p)) continue;
      auto& v = e.details[p];
      v = self.hmac(v.is_string() ? v.get_ref<const std::string&>() : v.dump());
    }
    if (opt.hmac_emails && !e.actor_email.empty()) e.actor_email = self.hmac(e.actor_email);
    if (opt.hmac_ips && !e.client_ip.empty()) e.client_ip = self.hmac(e.client_ip);
    if (e.time_ms == 0) e.time_ms = now_ms();

    ojson j;  // the canonical member order (after "v" and "seq", added at commit)
    j["time_ms"] = e.time_ms;
    j["plugin"] = e.plugin;
    j["actor"] = e.actor;
    j["actor_email"] = e.actor_email;
    j["action"] = e.action;
    j["resource"] = e.resource;
    j["outcome"] = e.outcome;
    j["request_id"] = e.request_id;
    j["client_ip"] = e.client_ip;
    j["user_agent"] = e.user_agent;
    // nlohmann::json dumps object members sorted by key: deterministic.
    j["details"] = ojson::parse(e.details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    std::string text = dump(j);
    // The columns must equal the body's members, which went through the same
    // UTF-8 repair: take them from the dumped text.
    auto back = ojson::parse(text);
    Pending p;
    p.tail = text.substr(1);
    p.time_ms = e.time_ms;
    p.actor = back["actor"].get<std::string>();
    p.action = back["action"].get<std::string>();
    p.resource = back["resource"].get<std::string>();
    p.outcome = e.outcome;
    return p;
  }

  // Writes the batch in one transaction; on failure every event in it fails
  // and nothing of it is kept.
  void write_batch(const std::vector<Pending*>& batch) {
    try {
      if (reload) load_state();
      uint64_t s = seq;
      Hash h = last_hash;
      std::vector<Hash> leaves;
      leaves.reserve(batch.size());
      SQLite::Transaction txn(db, SQLite::TransactionBehavior::IMMEDIATE);
      for (Pending* p : batch) {
        ++s;
        std::string body = "{\"v\":1,\"seq\":" + std::to_string(s) + "," + p->tail;
        Hash next = chain_hash(h, body);
        std::string prev_hex = to_hex(h), hash_hex = to_hex(next);
        insert_record.bind(1, static_cast<int64_t>(s));
        insert_record.bind(2, p->time_ms);
        insert_record.bindNoCopy(3, p->actor);
        insert_record.bindNoCopy(4, p->action);
        insert_record.bindNoCopy(5, p->resource);
        insert_record.bindNoCopy(6, p->outcome);
        insert_record.bindNoCopy(7, body);
        insert_record.bindNoCopy(8, prev_hex);
        insert_record.bindNoCopy(9, hash_hex);
        insert_record.exec();
        insert_record.reset();
        leaves.push_back(leaf_hash(body));
        h = next;
        p->seq = s;
      }
      txn.commit();
      seq = s;
      last_hash = h;
      for (auto& l : leaves) frontier.push(l);
    } catch (const std::exception& e) {
      insert_record.tryReset();
      reload = true;
      auto err =
          std::make_exception_ptr(std::runtime_error(std::string("audit: append failed: ") + e.what()));
      for (Pending* p : batch) p->error = err;
      return;
    }
    if (seq - cp_last_seq >= opt.checkpoint_every) {
      try {
        checkpoint_as_writer();
      } catch (const std::exception& e) {
        // The records are durable; the next checkpoint will cover them.
        spdlog::error("audit: checkpoint failed: {}", e.what());
      }
    }
  }

  void checkpoint_as_writer() {
    if (reload) load_state();
    if (seq == cp_last_seq) return;
    int64_t t = std::max(now_ms(), cp_time_ms);
    std::string root = to_hex(frontier.root()), last = to_hex(last_hash);
    std::string text = sign_text(cp_last_seq + 1, seq, root, last, t);
    std::string sig = ed25519_sign(signing_key.get(), text);
    try {
      SQLite::Transaction txn(db, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement ins(
          db,
          "INSERT INTO checkpoints (first_seq, last_seq, tree_size, root_hex, time_ms, signed_data,"
          " signature_b64, public_key_pem) VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7)");
      ins.bind(1, static_cast<int64_t>(cp_last_seq + 1));
      ins.bind(2, static_cast<int64_t>(seq));
      ins.bind(3, root);
      ins.bind(4, t);
      ins.bind(5, text);
      ins.bind(6, sig);
      ins.bind(7, public_pem);
      ins.exec();
      SQLite::Statement meta(db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('frontier', ?1)");
      meta.bind(1, frontier.to_json());
      meta.exec();
      txn.commit();
    } catch (const SQLite::Exception& e) {
      reload = true;  // a failed COMMIT may or may not have reached the disk
      throw std::runtime_error(std::string("audit: checkpoint failed: ") + e.what());
    }
    cp_last_seq = seq;
    cp_time_ms = t;
  }

  // Runs f with the writer role (waiting for a batch in progress).
  template <class F>
  void as_writer(F&& f) {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return !writing; });
    writing = true;
    lk.unlock();
    struct Release {
      Impl* self;
      ~Release() {
        std::lock_guard g(self->mu);
        self->writing = false;
        self->cv.notify_all();
      }
    } release{this};
    f();
  }
};

AuditLog::AuditLog(AuditOptions o) {
  try {
    impl_ = std::make_unique<Impl>(std::move(o));
  } catch (const SQLite::Exception& e) {
    throw std::runtime_error(std::string("audit: cannot open the audit log: ") + e.what());
  } catch (const fs::filesystem_error& e) {
    throw std::runtime_error(std::string("audit: ") + e.what());
  }
}

AuditLog::~AuditLog() = default;

std::string AuditLog::hmac(std::string_view v) const {
  unsigned char out[32];
  size_t len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, impl_->hmac_key.data(), impl_->hmac_key.size(),
                 reinterpret_cast<const unsigned char*>(v.data()), v.size(), out, sizeof out, &len) ||
      len != sizeof out)
    crypto_fail("HMAC-SHA256");
  return "hmac-sha256:" + to_hex(out, len);
}

uint64_t AuditLog::append(AuditEvent e) {
  Impl& m = *impl_;
  Impl::Pending p = m.prepare(e, *this);
  std::unique_lock lk(m.mu);
  m.queue.push_back(&p);
  while (!p.done) {
    if (m.writing) {
      m.cv.wait(lk);
      continue;
    }
    // Become the writer and commit everything queued so far.
    m.writing = true;
    std::vector<Impl::Pending*> batch;
    batch.swap(m.queue);
    lk.unlock();
    m.write_batch(batch);
    lk.lock();
    for (auto* q : batch) q->done = true;
    m.writing = false;
    m.cv.notify_all();
  }
  if (p.error) std::rethrow_exception(p.error);
  return p.seq;
}

void AuditLog::checkpoint() {
  impl_->as_writer([&] { impl_->checkpoint_as_writer(); });
}

void AuditLog::maybe_checkpoint(int64_t now) {
  impl_->as_writer([&] {
    Impl& m = *impl_;
    if (m.seq > m.cp_last_seq && now - m.cp_time_ms >= static_cast<int64_t>(m.opt.checkpoint_interval_ms))
      m.checkpoint_as_writer();
  });
}

std::string AuditLog::public_key_pem() const { return impl_->public_pem; }

uint64_t AuditLog::last_seq() const {
  uint64_t s = 0;
  impl_->as_writer([&] { s = impl_->seq; });
  return s;
}

nlohmann::json AuditLog::query(const Query& q) const {
  uint32_t limit = q.limit == 0 ? 100 : std::min<uint32_t>(q.limit, 1000);
  std::string sql = "SELECT seq, body, prev, hash FROM records WHERE seq > :after";
  if (!q.actor.empty()) sql += " AND actor = :actor";
  if (!q.action.empty()) sql += " AND action = :action";
  if (!q.resource.empty()) sql += " AND resource = :resource";
  if (q.since_ms) sql += " AND time_ms >= :since";
  if (q.until_ms) sql += " AND time_ms <= :until";
  sql += " ORDER BY seq LIMIT :limit";
  nlohmann::json out{{"records", nlohmann::json::array()}, {"next_cursor", nullptr}};
  std::lock_guard lk(impl_->read_mu);
  try {
    SQLite::Statement st(*impl_->reader, sql);
    st.bind(":after", static_cast<int64_t>(std::min<uint64_t>(q.after_seq, INT64_MAX)));
    if (!q.actor.empty()) st.bind(":actor", q.actor);
    if (!q.action.empty()) st.bind(":action", q.action);
    if (!q.resource.empty()) st.bind(":resource", q.resource);
    if (q.since_ms) st.bind(":since", q.since_ms);
    if (q.until_ms) st.bind(":until", q.until_ms);
    st.bind(":limit", static_cast<int64_t>(limit) + 1);  // one more tells whether there is a next page
    uint64_t last = 0;
    while (st.executeStep()) {
      if (out["records"].size() == limit) {
        out["next_cursor"] = last;
        break;
      }
      last = static_cast<uint64_t>(st.getColumn(0).getInt64());
      auto rec = nlohmann::json::parse(st.getColumn(1).getString(), nullptr, false);
      if (!rec.is_object()) rec = nlohmann::json{{"seq", last}, {"corrupt", true}};
      rec["prev"] = st.getColumn(2).getString();
      rec["hash"] = st.getColumn(3).getString();
      out["records"].push_back(std::move(rec));
    }
  } catch (const SQLite::Exception& e) {
    throw std::runtime_error(std::string("audit: query failed: ") + e.what());
  }
  return out;
}

nlohmann::json AuditLog::excerpt(const std::string& resource, uint64_t after_seq, uint32_t limit) {
  if (resource.empty()) throw std::invalid_argument("resource is empty");
  if (limit > 1000) throw std::invalid_argument("limit must be 1..1000");
  if (limit == 0) limit = 100;
  checkpoint();  // so that every record returned is covered by a signature
  nlohmann::json out{{"records", nlohmann::json::array()}, {"more", false}, {"next_after_seq", after_seq}};
  std::lock_guard lk(impl_->read_mu);
  try {
    SQLite::Database& db = *impl_->reader;
    SQLite::Statement cp(db,
                         "SELECT id, tree_size, root_hex, time_ms, signed_data, signature_b64, public_key_pem"
                         " FROM checkpoints ORDER BY id DESC LIMIT 1");
    if (!cp.executeStep()) {
      out["checkpoint"] = nullptr;  // an empty log has nothing to prove
      return out;
    }
    uint64_t tree_size = static_cast<uint64_t>(cp.getColumn(1).getInt64());
    out["checkpoint"] = {{"id", cp.getColumn(0).getInt64()},
                         {"tree_size", tree_size},
                         {"root_hex", cp.getColumn(2).getString()},
                         {"time_ms", cp.getColumn(3).getInt64()},
                         {"signed_data", cp.getColumn(4).getString()},
                         {"signature_b64", cp.getColumn(5).getString()},
                         {"public_key_pem", cp.getColumn(6).getString()}};
    // The records: exact resource, or anything below resource + "/" ('0' is
    // the byte after '/', so the range is one index scan).
    SQLite::Statement st(db,
                         "SELECT seq, body FROM records WHERE seq > ?1 AND seq <= ?2 AND (resource = ?3 OR"
                         " (resource >= ?4 AND resource < ?5)) ORDER BY seq LIMIT ?6");
    st.bind(1, static_cast<int64_t>(std::min<uint64_t>(after_seq, INT64_MAX)));
    st.bind(2, static_cast<int64_t>(tree_size));
    st.bind(3, resource);
    st.bind(4, resource + "/");
    st.bind(5, resource + "0");
    st.bind(6, static_cast<int64_t>(limit) + 1);
    std::vector<std::pair<uint64_t, std::string>> picked;
    while (st.executeStep()) {
      if (picked.size() == limit) {
        out["more"] = true;
        break;
      }
      picked.emplace_back(static_cast<uint64_t>(st.getColumn(0).getInt64()), st.getColumn(1).getString());
    }
    if (!picked.empty()) out["next_after_seq"] = picked.back().first;
    if (picked.empty()) return out;
    // Proofs need every leaf of the checkpoint's tree.
    std::vector<Hash> leaves;
    leaves.reserve(tree_size);
    SQLite::Statement all(db, "SELECT body FROM records WHERE seq <= ?1 ORDER BY seq");
    all.bind(1, static_cast<int64_t>(tree_size));
    while (all.executeStep()) leaves.push_back(leaf_hash(all.getColumn(0).getString()));
    if (leaves.size() != tree_size) throw std::runtime_error("audit: records missing below the checkpoint");
    for (auto& [seq, body] : picked) {
      std::vector<Hash> path;
      inclusion_path(leaves, seq - 1, 0, leaves.size(), path);
      nlohmann::json proof = nlohmann::json::array();
      for (auto& h : path) proof.push_back(to_hex(h));
      out["records"].push_back({{"seq", seq},
                                {"body", body},
                                {"leaf_hash_hex", to_hex(leaves[seq - 1])},
                                {"inclusion_proof", std::move(proof)}});
    }
  } catch (const SQLite::Exception& e) {
    throw std::runtime_error(std::string("audit: excerpt failed: ") + e.what());
  }
  return out;
}

// ---------------------------------------------------------------- verify
namespace {

struct CheckpointRow {
  int64_t id;
  uint64_t first_seq, last_seq, tree_size;
  std::string root_hex;
  int64_t time_ms;
  std::string signed_data, signature_b64, public_key_pem;
};

std::string cp_name(const CheckpointRow& c) {
  return "checkpoint " + std::to_string(c.id) + " (records " + std::to_string(c.first_seq) + ".." +
         std::to_string(c.last_seq) + ")";
}

// Everything about one checkpoint, given the recomputed root and chain hash
// at its last_seq. Returns the problem or "".
std::string check_checkpoint(const CheckpointRow& c, uint64_t prev_last, const std::string& root,
                             const std::string& chain, EVP_PKEY* external) {
  std::map<std::string, std::string> f;
  if (!parse_signed(c.signed_data, f)) return cp_name(c) + ": signed_data is malformed";
  PkeyPtr stored = parse_public_pem(c.public_key_pem);
  if (!stored) return cp_name(c) + ": the stored public key is not an Ed25519 key";
  if (!ed25519_verify(stored.get(), c.signed_data, c.signature_b64))
    return cp_name(c) + ": signature does not verify with the public key stored in the log";
  if (external && !ed25519_verify(external, c.signed_data, c.signature_b64))
    return cp_name(c) + ": signature does not verify with the given public key (signed by another key)";
  auto mismatch = [&](const char* col, const std::string& signed_key, const std::string& value) {
    return f[signed_key] != value ? cp_name(c) + ": column " + col + " does not match the signed data" : "";
  };
  for (auto m :
       {mismatch("first_seq", "first_seq", std::to_string(c.first_seq)),
        mismatch("last_seq", "last_seq", std::to_string(c.last_seq)),
        mismatch("tree_size", "tree_size", std::to_string(c.tree_size)),
        mismatch("root_hex", "root", c.root_hex), mismatch("time_ms", "time_ms", std::to_string(c.time_ms))})
    if (!m.empty()) return m;
  if (c.tree_size != c.last_seq) return cp_name(c) + ": tree_size differs from last_seq";
  if (c.first_seq != prev_last + 1)
    return cp_name(c) + ": first_seq should be " + std::to_string(prev_last + 1) + " (checkpoints removed?)";
  if (f["root"] != root)
    return cp_name(c) + ": the Merkle root of records 1.." + std::to_string(c.last_seq) +
           " differs from the signed one (a record in this range was changed, inserted or removed)";
  if (f["last_hash"] != chain)
    return cp_name(c) + ": the chain hash of record " + std::to_string(c.last_seq) +
           " differs from the signed one";
  return "";
}

}  // namespace

VerifyReport verify_audit(const std::string& db_path, const std::string& public_key_pem_or_empty) {
  VerifyReport rep;
  auto fail = [&](uint64_t seq, std::string msg) {
    rep.ok = false;
    rep.first_bad_seq = seq;
    rep.first_error = std::move(msg);
    return rep;
  };
  PkeyPtr external;
  if (!public_key_pem_or_empty.empty()) {
    external = parse_public_pem(public_key_pem_or_empty);
    if (!external)
      return fail(0, "the given public key is not an Ed25519 public key (SubjectPublicKeyInfo PEM)");
    rep.external_key = true;
  }
  std::error_code ec;
  if (!fs::is_regular_file(db_path, ec)) return fail(0, "no audit log at " + db_path);
  try {
    SQLite::Database db(db_path, SQLite::OPEN_READONLY, 5000);
    // One read transaction: a consistent snapshot while a server appends.
    db.exec("BEGIN");
    std::vector<CheckpointRow> cps;
    {
      SQLite::Statement st(
          db,
          "SELECT id, first_seq, last_seq, tree_size, root_hex, time_ms, signed_data, signature_b64,"
          " public_key_pem FROM checkpoints ORDER BY id");
      while (st.executeStep()) {
        cps.push_back({st.getColumn(0).getInt64(), static_cast<uint64_t>(st.getColumn(1).getInt64()),
                       static_cast<uint64_t>(st.getColumn(2).getInt64()),
                       static_cast<uint64_t>(st.getColumn(3).getInt64()), st.getColumn(4).getString(),
                       st.getColumn(5).getInt64(), st.getColumn(6).getString(), st.getColumn(7).getString(),
                       st.getColumn(8).getString()});
      }
    }
    rep.checkpoints = cps.size();
    for (size_t i = 1; i < cps.size(); ++i)
      if (cps[i].public_key_pem != cps[i - 1].public_key_pem)
        rep.warnings.push_back("checkpoint " + std::to_string(cps[i].id) +
                               " is signed with a different stored key than the one before it");

    SQLite::Statement st(
        db,
        "SELECT seq, time_ms, actor, action, resource, outcome, body, prev, hash FROM records"
        " ORDER BY seq");
    Frontier tree;
    Hash chain{};
    uint64_t expect = 1, prev_cp_last = 0;
    size_t ci = 0;
    while (st.executeStep()) {
      const uint64_t seq = static_cast<uint64_t>(st.getColumn(0).getInt64());
      const std::string where = "record " + std::to_string(expect);
      if (seq != expect)
        return fail(expect, where + " is missing (the next stored record is " + std::to_string(seq) +
                                "): records were deleted");
      const std::string body = st.getColumn(6).getString();
      auto j = nlohmann::json::parse(body, nullptr, false);
      if (!j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned())
        return fail(seq, where + ": body is not a valid record (modified)");
      if (j["seq"].get<uint64_t>() != seq)
        return fail(seq, where + ": body is that of record " + std::to_string(j["seq"].get<uint64_t>()) +
                             " (records reordered or copied)");
      if (st.getColumn(7).getString() != to_hex(chain))
        return fail(seq, where + ": prev is not the hash of record " + std::to_string(seq - 1) +
                             " (the chain is broken: a record was inserted, removed or reordered)");
      Hash h = chain_hash(chain, body);
      if (st.getColumn(8).getString() != to_hex(h))
        return fail(seq, where + ": hash does not match the body (body modified)");
      // The indexed columns must say what the body says.
      auto col_str = [&](int idx, const char* name) -> std::string {
        const auto c = st.getColumn(idx);
        auto it = j.find(name);
        if (c.isNull() || !c.isText() || it == j.end() || !it->is_string() ||
            c.getString() != it->get<std::string>())
          return where + ": column " + name + " does not match the body (column modified)";
        return "";
      };
      {
        const auto t = st.getColumn(1);
        auto it = j.find("time_ms");
        if (!t.isInteger() || it == j.end() || !it->is_number_integer() || it->get<int64_t>() != t.getInt64())
          return fail(seq, where + ": column time_ms does not match the body (column modified)");
      }
      for (auto m :
           {col_str(2, "actor"), col_str(3, "action"), col_str(4, "resource"), col_str(5, "outcome")})
        if (!m.empty()) return fail(seq, m);

      tree.push(leaf_hash(body));
      chain = h;
      for (; ci < cps.size() && cps[ci].last_seq <= seq; ++ci) {
        const auto& c = cps[ci];
        if (c.last_seq < seq || c.last_seq <= prev_cp_last)
          return fail(c.first_seq, cp_name(c) + ": out of order with the checkpoints before it");
        std::string err =
            check_checkpoint(c, prev_cp_last, to_hex(tree.root()), to_hex(chain), external.get());
        if (!err.empty()) return fail(c.first_seq, err);
        prev_cp_last = c.last_seq;
      }
      ++rep.records;
      ++expect;
    }
    if (ci < cps.size()) {
      const auto& c = cps[ci];
      return fail(expect, cp_name(c) + " covers records up to " + std::to_string(c.last_seq) +
                              " but the log ends at " + std::to_string(expect - 1) +
                              ": records were deleted from the tail");
    }
    rep.unsigned_tail = rep.records - prev_cp_last;
    db.exec("COMMIT");
  } catch (const std::exception& e) {
    return fail(0, std::string("cannot read the audit log: ") + e.what());
  }
  if (!rep.external_key && rep.checkpoints)
    rep.warnings.push_back(
        "signatures were checked only against the public key stored in the log; whoever can rewrite the "
        "database can replace that key too. Verify with --public-key FILE holding a copy of the key kept "
        "elsewhere (vellumd audit public-key) for the strong check");
  if (rep.unsigned_tail)
    rep.warnings.push_back(std::to_string(rep.unsigned_tail) +
                           " record(s) after the last checkpoint are protected by the hash chain only");
  rep.ok = true;
  return rep;
}

// ---------------------------------------------------------------- export
namespace {

std::string rfc3339_ms(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

// RFC 5424 header fields: printable US-ASCII without spaces, bounded, "-" if empty.
std::string header_field(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() == max) break;
    out += (c > 32 && c < 127) ? c : '_';
  }
  return out.empty() ? "-" : out;
}

std::string sd_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

std::string local_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "-";
  return header_field(buf, 255);
}

}  // namespace

void export_audit(const std::string& db_path, int64_t since_ms, const std::string& format,
                  std::ostream& out) {
  if (format != "jsonl" && format != "syslog")
    throw std::runtime_error("audit export: format must be jsonl or syslog, not '" + format + "'");
  std::error_code ec;
  if (!fs::is_regular_file(db_path, ec)) throw std::runtime_error("audit export: no audit log at " + db_path);
  const std::string host = format == "syslog" ? local_hostname() : "";
  try {
    SQLite::Database db(db_path, SQLite::OPEN_READONLY, 5000);
    SQLite::Statement st(
        db,
        "SELECT seq, time_ms, action, outcome, body, prev, hash FROM records WHERE time_ms >= ?1"
        " ORDER BY seq");
    st.bind(1, since_ms);
    while (st.executeStep()) {
      std::string body = st.getColumn(4).getString();
      std::string prev = st.getColumn(5).getString(), hash = st.getColumn(6).getString();
      if (body.empty() || body.back() != '}') body = "{\"corrupt\":true}";
      body.pop_back();
      std::string line = body + ",\"prev\":" + ojson(prev).dump() + ",\"hash\":" + ojson(hash).dump() + "}";
      if (format == "jsonl") {
        out << line << '\n';
        continue;
      }
      std::string outcome = st.getColumn(3).getString();
      // Facility 13 (log audit); severity: notice for denied, warning for failure.
      int severity = outcome == "success" ? 6 : outcome == "denied" ? 5 : 4;
      out << '<' << (13 * 8 + severity) << ">1 " << rfc3339_ms(st.getColumn(1).getInt64()) << ' ' << host
          << " vellumd - " << header_field(st.getColumn(2).getString(), 32) << " [vellum@32473 seq=\""
          << st.getColumn(0).getInt64() << "\" outcome=\"" << sd_escape(outcome) << "\" hash=\""
          << sd_escape(hash) << "\"] " << line << '\n';
    }
  } catch (const SQLite::Exception& e) {
    throw std::runtime_error(std::string("audit export: ") + e.what());
  }
  out.flush();
}

}  // namespace vellum::host
