// The signing plugin: per-user signing keys, signatures over canonical
// statements of exact document versions, CMS and RFC 3161 time-stamps from a
// CA and TSA built into the plugin, multi-signer requests and evidence
// packages. See ../README.md.
#include <vellum/sdk.hpp>
#include <vellum/services/documents_v1.h>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "audit_proof.hpp"
#include "evidence.hpp"
#include "keys.hpp"
#include "pki.hpp"
#include "statement.hpp"
#include "tsa_client.hpp"
#include "util.hpp"
#include "workflow.hpp"

namespace {

using nlohmann::json;
using vellum::Error;
namespace sg = vellum::signing;

// A UUID-based OID (ITU-T X.667, arc 2.25) minted for this plugin's default
// time-stamp policy; operators with their own policy configure tsa_policy_oid.
constexpr const char* kDefaultPolicy = "2.25.24729656022553241721793170067521492246";
constexpr int64_t kClientClockSkewMs = 5 * 60 * 1000;
constexpr const char* kTokenHeader = "Vellum-Signing-Token";
// A TimeStampReq is ~60 bytes plus optional extensions; anything near this
// is not one.
constexpr size_t kMaxTimestampQueryBytes = 8192;
// Audit excerpts: records per host call, and how many records under the
// document to look through for the signed version's own records.
constexpr uint32_t kAuditPage = 1000;
constexpr int kMaxDocumentAuditPages = 20;

enum class TsaEndpoint { Off, Authenticated, Public };

struct Config {
  std::string ca_cert_file, ca_key_file, tsa_cert_file, tsa_key_file;
  std::string tsa_policy_oid = kDefaultPolicy;
  uint32_t default_rsa_bits = 3072;
  int64_t reminder_interval_ms = 86400000;
  int64_t sweep_interval_ms = 60000;
  // An external TSA instead of the built-in one for new signatures.
  std::string tsa_url, tsa_ca_file, tsa_tls_ca_file, tsa_auth_token;
  int64_t tsa_timeout_seconds = 10;
  // The built-in TSA as an RFC 3161 HTTP endpoint (POST /v1/signing/tsa).
  TsaEndpoint tsa_endpoint = TsaEndpoint::Authenticated;
  int64_t tsa_rate_per_minute = 120;
};

Config parse_config(std::string_view text) {
  json j;
  try {
    j = json::parse(text.empty() ? std::string_view("{}") : text);
  } catch (const json::exception&) {
    throw Error(VELLUM_ERR_INVALID_ARGUMENT, "the configuration is not a JSON object");
  }
  if (!j.is_object()) throw Error(VELLUM_ERR_INVALID_ARGUMENT, "the configuration is not a JSON object");
  Config c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    auto str = [&](std::string& out) {
      if (!it->is_string() || it->get<std::string>().empty())
        throw Error(VELLUM_ERR_INVALID_ARGUMENT, "'" + k + "' must be a non-empty string");
      out = it->get<std::string>();
    };
    auto num = [&](int64_t lo, int64_t hi) {
      if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
        std::string m = "'" + k + "' must be an integer in ";
        m += std::to_string(lo);
        m += "..";
        m += std::to_string(hi);
        throw Error(VELLUM_ERR_INVALID_ARGUMENT, m);
      }
      return it->get<int64_t>();
    };
    if (k == "ca_cert_file")
      str(c.ca_cert_file);
    else if (k == "ca_key_file")
      str(c.ca_key_file);
    else if (k == "tsa_cert_file")
      str(c.tsa_cert_file);
    else if (k == "tsa_key_file")
      str(c.tsa_key_file);
    else if (k == "tsa_policy_oid")
      str(c.tsa_policy_oid);
    else if (k == "default_rsa_bits")
      c.default_rsa_bits = static_cast<uint32_t>(num(sg::kMinRsaBits, sg::kMaxRsaBits));
    else if (k == "reminder_interval_ms")
      c.reminder_interval_ms = num(60000, int64_t{30} * 86400000);
    else if (k == "sweep_interval_ms")
      c.sweep_interval_ms = num(100, 3600000);
    else if (k == "tsa_url")
      str(c.tsa_url);
    else if (k == "tsa_ca_file")
      str(c.tsa_ca_file);
    else if (k == "tsa_tls_ca_file")
      str(c.tsa_tls_ca_file);
    else if (k == "tsa_auth_token")
      str(c.tsa_auth_token);
    else if (k == "tsa_timeout_seconds")
      c.tsa_timeout_seconds = num(1, 120);
    else if (k == "tsa_rate_per_minute")
      c.tsa_rate_per_minute = num(1, 1000000);
    else if (k == "tsa_endpoint") {
      const std::string v = it->is_string() ? it->get<std::string>() : "";
      if (v == "off")
        c.tsa_endpoint = TsaEndpoint::Off;
      else if (v == "authenticated")
        c.tsa_endpoint = TsaEndpoint::Authenticated;
      else if (v == "public")
        c.tsa_endpoint = TsaEndpoint::Public;
      else
        throw Error(VELLUM_ERR_INVALID_ARGUMENT,
                    "'tsa_endpoint' must be \"off\", \"authenticated\" or \"public\"");
    } else
      throw Error(VELLUM_ERR_INVALID_ARGUMENT, "unknown key '" + k + "'");
  }
  if (c.ca_cert_file.empty() != c.ca_key_file.empty())
    throw Error(VELLUM_ERR_INVALID_ARGUMENT, "'ca_cert_file' and 'ca_key_file' go together");
  if (c.tsa_cert_file.empty() != c.tsa_key_file.empty())
    throw Error(VELLUM_ERR_INVALID_ARGUMENT, "'tsa_cert_file' and 'tsa_key_file' go together");
  if (!c.tsa_cert_file.empty() && c.ca_cert_file.empty())
    throw Error(VELLUM_ERR_INVALID_ARGUMENT, "a configured TSA needs the configured CA that issued it");
  if (c.tsa_url.empty() &&
      (!c.tsa_ca_file.empty() || !c.tsa_tls_ca_file.empty() || !c.tsa_auth_token.empty()))
    throw Error(VELLUM_ERR_INVALID_ARGUMENT,
                "'tsa_ca_file', 'tsa_tls_ca_file' and 'tsa_auth_token' are for an external TSA ('tsa_url')");
  if (!c.tsa_url.empty() && c.tsa_ca_file.empty())
    throw Error(VELLUM_ERR_INVALID_ARGUMENT,
                "'tsa_url' needs 'tsa_ca_file': the CA certificates its time-stamp tokens must chain to");
  if (!c.tsa_url.empty()) {
    try {  // the URL's form only: nothing is contacted here
      (void)sg::parse_tsa_url(c.tsa_url, !c.tsa_auth_token.empty());
    } catch (const sg::InvalidInput& e) {
      throw Error(VELLUM_ERR_INVALID_ARGUMENT, e.what());
    }
  }
  return c;
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(VELLUM_ERR_INVALID_ARGUMENT, "cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct HttpProblem {
  int status;
  std::string detail;
};

std::string b64url(std::string_view bytes) {
  std::string s = sg::b64encode(bytes);
  for (auto& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

bool valid_doc_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

bool valid_hex_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A token bucket per caller: `per_minute` requests a minute, in bursts of
// up to that many. Full buckets (callers idle for a minute) are dropped
// once many are tracked, so memory stays bounded by recent callers.
class RateLimiter {
 public:
  explicit RateLimiter(int64_t per_minute) : rate_(static_cast<double>(per_minute)) {}
  // nullopt: allowed (and counted); else how many ms until the next one is.
  std::optional<int64_t> take(const std::string& who, int64_t now_ms) {
    std::lock_guard lk(mu_);
    if (buckets_.size() >= kPruneAt)
      std::erase_if(buckets_, [&](const auto& kv) { return now_ms - kv.second.at_ms >= kMinuteMs; });
    auto [it, fresh] = buckets_.try_emplace(who, Bucket{rate_, now_ms});
    Bucket& b = it->second;
    if (!fresh) {
      const double elapsed = static_cast<double>(std::max<int64_t>(0, now_ms - b.at_ms));
      b.tokens = std::min(rate_, b.tokens + elapsed * rate_ / kMinuteMs);
      b.at_ms = now_ms;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return std::nullopt;
    }
    return static_cast<int64_t>(std::ceil((1 - b.tokens) * kMinuteMs / rate_));
  }

 private:
  static constexpr double kMinuteMs = 60000;
  static constexpr size_t kPruneAt = 10000;
  struct Bucket {
    double tokens;
    int64_t at_ms;
  };
  double rate_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

class Signing : public vellum::Plugin {
 public:
  static constexpr const char* kName = "signing";
  static constexpr const char* kVersion = "0.1.0";
  static constexpr const char* kDescription =
      "Signatures on exact document versions: CMS, RFC 3161 time-stamps, multi-signer requests, evidence";
  static constexpr const char* kRequires[] = {"crypto", "editor", nullptr};
  static constexpr uint32_t kMinMinor = 3;  // audit_excerpt (evidence packages)

  static void validate(std::string_view config) { (void)parse_config(config); }

  Signing(vellum::Host& host, std::string_view config) : Plugin(host), cfg_(parse_config(config)) {}

  void start() override {
    docs_ = host().acquire<vellum_documents_v1>(VELLUM_DOCUMENTS_SERVICE, VELLUM_DOCUMENTS_MAJOR,
                                                VELLUM_DOCUMENTS_MINOR);
    load_pki();
    if (!cfg_.tsa_url.empty()) {
      sg::RemoteTsaOptions o;
      o.url = cfg_.tsa_url;
      o.tls_ca_file = cfg_.tsa_tls_ca_file;
      o.bearer_token = cfg_.tsa_auth_token;
      o.timeout_seconds = static_cast<int>(cfg_.tsa_timeout_seconds);
      o.max_skew_ms = kClientClockSkewMs;
      try {
        o.anchors = sg::certs_from_pem_bundle(read_text_file(cfg_.tsa_ca_file));
      } catch (const sg::InvalidInput& e) {
        throw Error(VELLUM_ERR_INVALID_ARGUMENT, "'tsa_ca_file' " + cfg_.tsa_ca_file + ": " + e.what());
      }
      remote_tsa_ = std::make_unique<sg::RemoteTsa>(std::move(o));
      OPENSSL_cleanse(cfg_.tsa_auth_token.data(), cfg_.tsa_auth_token.size());
      cfg_.tsa_auth_token.clear();
    }
    tsa_ca_pem_ = ca_pem_;
    if (remote_tsa_)
      for (X509* a : remote_tsa_->anchors()) tsa_ca_pem_ += sg::cert_pem(a);
    const uint32_t pub = VELLUM_ROUTE_PUBLIC;
    route("GET", "/v1/signing/ca", "The signing CA and TSA certificates", pub, [this](auto& r) { ca(r); });
    route("POST", "/v1/signing/keys", "Create or register a signing key", 0,
          [this](auto& r) { create_key(r); });
    route("GET", "/v1/signing/keys", "Your signing keys", 0, [this](auto& r) { list_keys(r); });
    route("POST", "/v1/signing/statement", "The statement a client-held key must sign", 0,
          [this](auto& r) { statement(r); });
    route("POST", "/v1/signing/signatures", "Sign a document version", 0,
          [this](auto& r) { sign_direct(r); });
    route("GET", "/v1/signing/signatures/{id}", "One signature with its status", 0,
          [this](auto& r) { get_signature(r); });
    route("GET", "/v1/signing/documents/{doc}/signatures", "Signatures on a document", 0,
          [this](auto& r) { list_signatures(r); });
    route("POST", "/v1/signing/requests", "Create a signing request", 0,
          [this](auto& r) { create_request(r); });
    route("GET", "/v1/signing/requests/{id}", "A signing request", 0, [this](auto& r) { get_request(r); });
    route("POST", "/v1/signing/requests/{id}/sign", "Sign as a requested signer", 0,
          [this](auto& r) { sign_request(r); });
    route("POST", "/v1/signing/requests/{id}/decline", "Decline as a requested signer", 0,
          [this](auto& r) { decline_request(r); });
    route("POST", "/v1/signing/requests/{id}/cancel", "Cancel a signing request (requester)", 0,
          [this](auto& r) { cancel_request(r); });
    route("GET", "/v1/signing/requests/{id}/evidence", "Evidence package of a completed request", 0,
          [this](auto& r) { evidence(r); });
    route("GET", "/v1/signing/invitation", "An external signer's request (one-time link token)", pub,
          [this](auto& r) { invitation(r); });
    route("POST", "/v1/signing/invitation/sign", "Sign as an external signer", pub,
          [this](auto& r) { invitation_answer(r, true); });
    route("POST", "/v1/signing/invitation/decline", "Decline as an external signer", pub,
          [this](auto& r) { invitation_answer(r, false); });
    route("POST", "/v1/signing/verify", "Verify signatures or an evidence package", pub,
          [this](auto& r) { verify(r); });
    if (cfg_.tsa_endpoint != TsaEndpoint::Off)
      route("POST", "/v1/signing/tsa", "RFC 3161 time-stamping (application/timestamp-query)",
            cfg_.tsa_endpoint == TsaEndpoint::Public ? pub : 0, [this](auto& r) { tsa_endpoint(r); });
    sweeper_ = host().timer(static_cast<uint64_t>(cfg_.sweep_interval_ms),
                            static_cast<uint64_t>(cfg_.sweep_interval_ms), [this] { sweep(); });
  }

  void stop() override {
    sweeper_.reset();
    docs_ = {};
    remote_tsa_.reset();
  }

 private:
  using Req = vellum::Request;

  template <class F>
  void route(const char* method, const char* path, const char* summary, uint32_t flags, F&& f) {
    host().route(
        method, path,
        [this, f = std::forward<F>(f)](Req& req) {
          try {
            f(req);
          } catch (const HttpProblem& p) {
            answer_problem(req, p.status, p.detail);
          } catch (const sg::InvalidInput& e) {
            answer_problem(req, 422, e.what());
          } catch (const sg::StateConflict& e) {
            answer_problem(req, 409, e.what());
          } catch (const json::type_error&) {
            // Untrusted JSON (an uploaded package, say) with a member of the wrong type.
            answer_problem(req, 422, "a JSON member has the wrong type");
          }
        },
        flags, summary);
  }
  static void answer_problem(Req& req, int status, const std::string& detail) {
    json body = {{"type", "about:blank"},
                 {"title", vellum::http_reason(status)},
                 {"status", status},
                 {"detail", detail}};
    req.respond(static_cast<uint16_t>(status), "application/problem+json", body.dump());
  }

  // ---- PKI: generated once and kept in storage (behind the barrier), or
  // configured by the operator.
  void load_pki() {
    const int64_t now = host().now_ms();
    sg::KeyAndCert ca;
    if (!cfg_.ca_cert_file.empty()) {
      ca = {sg::privkey_from_pem(read_text_file(cfg_.ca_key_file)),
            sg::cert_from_pem(read_text_file(cfg_.ca_cert_file))};
      sg::check_ca(ca);
    } else {
      ca = stored_pair("pki/ca", [&] { return sg::make_ca("Vellum signing CA", now); });
    }
    sg::KeyAndCert tsa;
    if (!cfg_.tsa_cert_file.empty()) {
      tsa = {sg::privkey_from_pem(read_text_file(cfg_.tsa_key_file)),
             sg::cert_from_pem(read_text_file(cfg_.tsa_cert_file))};
    } else {
      // A generated TSA belongs to one CA; a new CA (configured later) gets a new TSA.
      const std::string key = "pki/tsa/" + sg::key_id(X509_get0_pubkey(ca.cert.get()));
      tsa = stored_pair(key, [&] { return sg::make_tsa(ca, "Vellum time-stamp authority", now); });
    }
    sg::check_tsa(tsa, ca.cert.get());
    ca_pem_ = sg::cert_pem(ca.cert.get());
    tsa_pem_ = sg::cert_pem(tsa.cert.get());
    tsa_ = std::make_unique<sg::Tsa>(std::move(tsa), cfg_.tsa_policy_oid);
    ca_ = std::move(ca);
  }

  template <class Make>
  sg::KeyAndCert stored_pair(const std::string& key, Make make) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (auto v = host().get(key)) {
        json j = json::parse(v->data);
        std::string kp = j.at("key");
        sg::KeyAndCert kc{sg::privkey_from_pem(kp), sg::cert_from_pem(j.at("cert").get<std::string>())};
        OPENSSL_cleanse(kp.data(), kp.size());
        return kc;
      }
      sg::KeyAndCert kc = make();
      json j = {{"key", sg::privkey_pem(kc.key.get())}, {"cert", sg::cert_pem(kc.cert.get())}};
      try {
        host().put(key, j.dump(), VELLUM_VERSION_ABSENT);
        return kc;
      } catch (const Error& e) {
        if (e.status() != VELLUM_ERR_CONFLICT) throw;  // another process won the race: use its pair
      }
    }
    throw Error(VELLUM_ERR_INTERNAL, "could not store " + key);
  }

  // ---- request helpers
  static json body_json(Req& req) {
    try {
      json j = json::parse(req.body());
      if (!j.is_object()) throw HttpProblem{400, "the body must be a JSON object"};
      return j;
    } catch (const json::exception&) {
      throw HttpProblem{400, "the body is not valid JSON"};
    }
  }
  static std::string user_of(Req& req) {
    auto p = req.principal();
    if (p.is_guest()) throw HttpProblem{403, "guest sessions cannot use signing keys or requests"};
    return std::string(p.user_id);
  }
  static std::string str_member(const json& b, const char* k, bool required, size_t max = 4096) {
    auto it = b.find(k);
    if (it == b.end()) {
      if (required) throw HttpProblem{422, std::string("'") + k + "' is required"};
      return {};
    }
    if (!it->is_string() || it->get<std::string>().size() > max)
      throw HttpProblem{422, std::string("'") + k + "' must be a string"};
    return it->get<std::string>();
  }
  std::string new_id() const { return sg::hex(host().random(16)); }
  std::string take(vellum_buffer b) const {
    std::string s(reinterpret_cast<const char*>(b.data), b.size);
    host().api()->free(b.data);
    return s;
  }

  // ---- the documents service
  json describe(const std::string& doc) const {
    if (!valid_doc_id(doc)) throw HttpProblem{404, "no such document"};
    vellum_buffer out{};
    vellum_status s = docs_->describe(docs_.instance(), vellum::to_c(doc), &out);
    if (s == VELLUM_ERR_NOT_FOUND || s == VELLUM_ERR_INVALID_ARGUMENT)
      throw HttpProblem{404, "no such document"};
    host().check(s);
    return json::parse(take(out));
  }
  // The version's exact bytes and their SHA-256 (computed here, not trusted).
  std::pair<std::string, std::string> version_bytes(const std::string& doc, uint64_t version) const {
    vellum_buffer content{};
    vellum_status s = docs_->read_version(docs_.instance(), vellum::to_c(doc), version, &content, nullptr);
    if (s == VELLUM_ERR_NOT_FOUND || s == VELLUM_ERR_INVALID_ARGUMENT)
      throw HttpProblem{404, "no such version"};
    if (s == VELLUM_ERR_UNSUPPORTED)
      throw HttpProblem{409, "this document's content is end-to-end encrypted; the server cannot hash it"};
    host().check(s);
    std::string bytes = take(content);
    std::string h = sg::sha256_hex(bytes);
    return {std::move(bytes), std::move(h)};
  }
  // The document, if the caller may do `action` on it (404 when it may not even read it).
  json authorized_doc(Req& req, const std::string& doc, const char* action) const {
    json d = describe(doc);
    const std::string res = d.value("resource", "document/" + doc), owner = d.value("owner", "");
    if (!host().authorize(req, "read", res, owner)) throw HttpProblem{404, "no such document"};
    if (std::string(action) != "read" && !host().authorize(req, action, res, owner))
      throw HttpProblem{403, std::string("you may not ") + action + " this document"};
    return d;
  }

  // ---- keys
  std::optional<json> load_key(const std::string& user, const std::string& kid) const {
    if (!sg::is_sha256_hex(kid)) return std::nullopt;
    auto v = host().get("key/" + user + "/" + kid);
    if (!v) return std::nullopt;
    return json::parse(v->data);
  }
  static json public_key_json(const json& k) {
    return {{"key_id", k.at("key_id")},           {"algorithm", k.at("algorithm")},
            {"custody", k.at("custody")},         {"public_key", k.at("public_key")},
            {"certificate", k.at("certificate")}, {"created_ms", k.at("created_ms")}};
  }

  void create_key(Req& req) {
    const std::string user = user_of(req);
    json b = body_json(req);
    const auto alg = sg::parse_algorithm(str_member(b, "algorithm", true, 64));
    if (!alg)
      throw HttpProblem{
          422, "'algorithm' must be ecdsa-p256-sha256, ecdsa-secp256k1-sha256, ed25519 or rsa-pss-sha256"};
    const int64_t now = host().now_ms();
    sg::Pkey key;
    std::string custody = "server", private_pem;
    if (b.contains("public_key")) {
      // A client-held key: the client proves possession by signing
      // "vellum.signing.key-registration.v1:<user id>:<key id>".
      custody = "client";
      key = sg::pubkey_from_pem(str_member(b, "public_key", true, 16384));
      sg::check_key(*alg, key.get());
      const std::string proof = sg::b64decode(str_member(b, "proof", true, 4096));
      const std::string challenge =
          "vellum.signing.key-registration.v1:" + user + ":" + sg::key_id(key.get());
      if (!sg::verify_client_signature(*alg, key.get(), challenge, proof))
        throw HttpProblem{422, "'proof' is not a signature of the registration challenge by this key"};
    } else {
      uint32_t bits = cfg_.default_rsa_bits;
      if (auto it = b.find("rsa_bits"); it != b.end()) {
        if (!it->is_number_unsigned()) throw HttpProblem{422, "'rsa_bits' must be an integer"};
        bits = it->get<uint32_t>();
      }
      key = sg::generate_key(*alg, bits);
      private_pem = sg::privkey_pem(key.get());
    }
    const std::string kid = sg::key_id(key.get());
    sg::Cert cert = sg::issue_signing_cert(ca_, key.get(), "user:" + user, "", now);
    json rec = {{"key_id", kid},
                {"algorithm", sg::algorithm_name(*alg)},
                {"custody", custody},
                {"public_key", sg::pubkey_pem(key.get())},
                {"certificate", sg::cert_pem(cert.get())},
                {"created_ms", now}};
    if (!private_pem.empty()) rec["private_key"] = private_pem;
    std::string stored = rec.dump();
    OPENSSL_cleanse(private_pem.data(), private_pem.size());
    try {
      host().put("key/" + user + "/" + kid, stored, VELLUM_VERSION_ABSENT);
    } catch (const Error& e) {
      OPENSSL_cleanse(stored.data(), stored.size());
      if (e.status() == VELLUM_ERR_CONFLICT) throw HttpProblem{409, "this key is already registered"};
      throw;
    }
    OPENSSL_cleanse(stored.data(), stored.size());
    host().audit("signing.key.create", "signing-key/" + kid, VELLUM_OUTCOME_SUCCESS, &req,
                 json({{"algorithm", sg::algorithm_name(*alg)}, {"custody", custody}}).dump());
    req.json(201, public_key_json(rec).dump());
  }

  void list_keys(Req& req) {
    const std::string user = user_of(req);
    json items = json::array();
    vellum::Host::ScanOptions o;
    const std::string prefix = "key/" + user + "/";
    o.prefix = prefix;
    host().scan(o, [&](std::string_view, std::string_view v, uint64_t) {
      items.push_back(public_key_json(json::parse(v)));
      return true;
    });
    req.json(200, json({{"items", items}}).dump());
  }

  void ca(Req& req) {
    json out = {
        {"ca_certificate", ca_pem_},
        {"tsa_certificate", tsa_pem_},
        {"tsa_policy", tsa_->policy()},
        {"tsa_ca_certificates", tsa_ca_pem_},
        {"tsa_url", remote_tsa_ ? json(remote_tsa_->url()) : json(nullptr)},
        {"tsa_endpoint", cfg_.tsa_endpoint == TsaEndpoint::Off ? json(nullptr) : json("/v1/signing/tsa")}};
    req.json(200, out.dump());
  }

  // ---- time-stamps: the built-in TSA, or the external one (tsa_url)
  std::vector<X509*> extra_tsa_anchors() const {
    return remote_tsa_ ? remote_tsa_->anchors() : std::vector<X509*>{};
  }

  // A time-stamp token over data. With an external TSA that fails, the
  // signature fails too (nothing is stored): falling back to the built-in
  // TSA would quietly give weaker evidence than the operator asked for.
  std::string timestamp(std::string_view data, int64_t now) const {
    if (!remote_tsa_) return tsa_->stamp(data, now, host().random(8));
    try {
      return remote_tsa_->stamp(data, host().random(8), now);
    } catch (const sg::TsaUnavailable& e) {
      host().warn(e.what());
      throw HttpProblem{503, std::string(e.what()) + "; nothing was signed, try again later"};
    } catch (const sg::TsaBadReply& e) {
      host().warn(e.what());
      throw HttpProblem{502, std::string(e.what()) + "; nothing was signed"};
    }
  }

  // POST /v1/signing/tsa: RFC 3161 over HTTP (§3.4) for any client, e.g.
  //   openssl ts -query -data f -sha256 -cert -out q.tsq
  //   curl -H 'Content-Type: application/timestamp-query' --data-binary @q.tsq URL -o r.tsr
  // A malformed body gets a problem; a well-formed request the TSA will not
  // grant (another policy, SHA-1) gets an RFC 3161 rejection.
  void tsa_endpoint(Req& req) {
    const auto p = req.principal();
    if (cfg_.tsa_endpoint == TsaEndpoint::Authenticated && p.is_guest())
      throw HttpProblem{403, "guest sessions cannot use the time-stamp authority"};
    auto type = req.header("Content-Type");
    std::string media(type.value_or(""));
    media = media.substr(0, media.find(';'));
    while (!media.empty() && media.back() == ' ') media.pop_back();
    std::transform(media.begin(), media.end(), media.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (media != "application/timestamp-query")
      throw HttpProblem{415,
                        "send a DER TimeStampReq as Content-Type application/timestamp-query (RFC 3161)"};
    if (req.body().size() > kMaxTimestampQueryBytes)
      throw HttpProblem{413,
                        "a TimeStampReq is at most " + std::to_string(kMaxTimestampQueryBytes) + " bytes"};
    const std::string who =
        p.authenticated ? "user:" + std::string(p.user_id) : "ip:" + std::string(p.client_ip);
    if (auto wait_ms = tsa_limiter_.take(who, host().now_ms())) {
      req.set_header("Retry-After", std::to_string((*wait_ms + 999) / 1000));
      throw HttpProblem{429, "too many time-stamp requests; at most " +
                                 std::to_string(cfg_.tsa_rate_per_minute) + " a minute"};
    }
    std::string reply;
    try {
      reply = tsa_->respond(req.body(), host().now_ms());
    } catch (const sg::InvalidInput& e) {
      throw HttpProblem{400, e.what()};
    }
    req.respond(200, "application/timestamp-reply", reply);
  }

  // ---- signing core: statement → signature → CMS → time-stamp → record
  struct SignInput {
    std::string document, request, intent = "approve", signer;
    uint64_t version = 0;
    std::string content_sha256;
    json key;                      // stored key record (custody server or client)
    std::string client_signature;  // raw, for client-held keys
    std::string client_signed_at;
    std::string email;  // external signers: SAN of the one-off certificate
    sg::Pkey one_off;   // external signers with a server-made one-off key
  };

  sg::SignatureRecord make_signature(SignInput& in) {
    const int64_t now = host().now_ms();
    sg::SignatureRecord r;
    r.id = new_id();
    sg::Statement& s = r.statement;
    s.content_sha256 = in.content_sha256;
    s.document = in.document;
    s.version = in.version;
    s.intent = in.intent;
    s.request = in.request;
    s.signer = in.signer;
    sg::Pkey pub;
    sg::Cert cert;
    std::optional<sg::Algorithm> alg;
    if (in.one_off) {
      alg = sg::algorithm_of(in.one_off.get());
      r.key_custody = "server-one-off";
      cert = sg::issue_signing_cert(ca_, in.one_off.get(), in.signer, in.email, now);
      pub = sg::pubkey_from_pem(sg::pubkey_pem(in.one_off.get()));
    } else {
      alg = sg::parse_algorithm(in.key.at("algorithm").get<std::string>());
      r.key_custody = in.key.at("custody");
      pub = sg::pubkey_from_pem(in.key.at("public_key").get<std::string>());
      cert = sg::cert_from_pem(in.key.at("certificate").get<std::string>());
    }
    s.algorithm = sg::algorithm_name(*alg);
    s.key_id = sg::key_id(pub.get());
    r.public_key_pem = sg::pubkey_pem(pub.get());
    r.certificate_pem = sg::cert_pem(cert.get());
    if (r.key_custody == "client") {
      // The client signed a statement with its own time; accept it only
      // within a few minutes of ours (the TSA token states the real time).
      s.signed_at = in.client_signed_at;
      r.statement_bytes = sg::canonical(s);
      const std::string now_text = sg::rfc3339_ms(now),
                        lo = sg::rfc3339_ms(std::max<int64_t>(0, now - kClientClockSkewMs)),
                        hi = sg::rfc3339_ms(now + kClientClockSkewMs);
      if (s.signed_at < lo || s.signed_at > hi)
        throw HttpProblem{422, "'signed_at' must be within 5 minutes of the server's time " + now_text};
      auto sig = sg::verify_client_signature(*alg, pub.get(), r.statement_bytes, in.client_signature);
      if (!sig) throw HttpProblem{422, "the signature does not verify over the statement"};
      r.signature = *sig;
      if (sg::cms_supported(*alg)) r.cms = sg::cms_wrap_signature(cert.get(), *alg, r.statement_bytes, *sig);
    } else {
      s.signed_at = sg::rfc3339_ms(now);
      r.statement_bytes = sg::canonical(s);
      sg::Pkey priv;
      if (in.one_off) {
        priv = std::move(in.one_off);
      } else {
        std::string pem = in.key.at("private_key");
        priv = sg::privkey_from_pem(pem);
        OPENSSL_cleanse(pem.data(), pem.size());
      }
      EVP_PKEY* raw = priv.get();
      if (EVP_PKEY_up_ref(raw) != 1) throw Error(VELLUM_ERR_INTERNAL, "EVP_PKEY_up_ref");
      sg::Signer signer(*alg, sg::Pkey(raw));
      r.signature = signer.sign(r.statement_bytes);
      if (sg::cms_supported(*alg)) r.cms = sg::cms_sign_detached(priv.get(), cert.get(), r.statement_bytes);
    }
    r.timestamp = timestamp(r.signature, now);
    return r;
  }

  static json signature_stored(const sg::SignatureRecord& r, int64_t now) {
    json j = sg::record_to_json(r);
    j["created_ms"] = now;
    return j;
  }

  // The record plus status against the document's current version.
  json with_status(json rec) const {
    std::string status = "valid";
    try {
      json d = describe(rec.at("document"));
      if (d.value("current_version", uint64_t{0}) > rec.at("version").get<uint64_t>())
        status = "document modified since signing";
    } catch (const HttpProblem&) {
      status = "document deleted";
    }
    rec["status"] = status;
    return rec;
  }

  json resolve_key(const std::string& user, const json& b) const {
    const std::string kid = str_member(b, "key_id", true, 64);
    auto k = load_key(user, kid);
    if (!k) throw HttpProblem{404, "no such signing key"};
    return *k;
  }

  void fill_client_parts(SignInput& in, const json& b) const {
    if (in.key.at("custody") != "client") {
      if (b.contains("signature")) throw HttpProblem{422, "'signature' is only for client-held keys"};
      return;
    }
    in.client_signature = sg::b64decode(str_member(b, "signature", true, 8192));
    in.client_signed_at = str_member(b, "signed_at", true, 64);
  }

  uint64_t pick_version(const json& b, const json& d) const {
    if (auto v = b.find("version"); v != b.end()) {
      if (!v->is_number_unsigned() || v->get<uint64_t>() < 1)
        throw HttpProblem{422, "'version' must be >= 1"};
      return v->get<uint64_t>();
    }
    return d.value("current_version", uint64_t{0});
  }

  void statement(Req& req) {
    const std::string user = user_of(req);
    json b = body_json(req);
    SignInput in;
    in.key = resolve_key(user, b);
    in.document = str_member(b, "document", true, 128);
    in.intent = b.contains("intent") ? str_member(b, "intent", true, 64) : "approve";
    in.request = str_member(b, "request", false, 64);
    json d = authorized_doc(req, in.document, "read");
    in.version = pick_version(b, d);
    in.content_sha256 = version_bytes(in.document, in.version).second;
    sg::Statement s;
    s.algorithm = in.key.at("algorithm");
    s.content_sha256 = in.content_sha256;
    s.document = in.document;
    s.version = in.version;
    s.intent = in.intent;
    s.key_id = in.key.at("key_id");
    s.request = in.request;
    s.signer = "user:" + user;
    s.signed_at = sg::rfc3339_ms(host().now_ms());
    const std::string bytes = sg::canonical(s);
    req.json(200, json({{"statement", bytes}, {"signed_at", s.signed_at}, {"version", s.version}}).dump());
  }

  void sign_direct(Req& req) {
    const std::string user = user_of(req);
    json b = body_json(req);
    SignInput in;
    in.document = str_member(b, "document", true, 128);
    json d = authorized_doc(req, in.document, "sign");
    in.version = pick_version(b, d);
    in.key = resolve_key(user, b);
    if (b.contains("intent")) in.intent = str_member(b, "intent", true, 64);
    in.signer = "user:" + user;
    in.content_sha256 = version_bytes(in.document, in.version).second;
    fill_client_parts(in, b);
    sg::SignatureRecord r = make_signature(in);
    const int64_t now = host().now_ms();
    auto txn = host().begin();
    txn.put("sig/" + r.id, signature_stored(r, now).dump(), VELLUM_VERSION_ABSENT);
    txn.put("docsig/" + in.document + "/" + r.id, "", VELLUM_VERSION_ABSENT);
    txn.commit();
    host().audit("signing.signature.create", d.value("resource", "document/" + in.document),
                 VELLUM_OUTCOME_SUCCESS, &req,
                 json({{"signature", r.id}, {"version", in.version}, {"key_id", r.statement.key_id}}).dump());
    req.json(201, with_status(signature_stored(r, now)).dump());
  }

  json load_signature(const std::string& id) const {
    if (!valid_hex_id(id)) throw HttpProblem{404, "no such signature"};
    auto v = host().get("sig/" + id);
    if (!v) throw HttpProblem{404, "no such signature"};
    return json::parse(v->data);
  }

  void get_signature(Req& req) {
    json rec = load_signature(std::string(req.param("id").value_or("")));
    authorized_doc(req, rec.at("document"), "read");
    req.json(200, with_status(rec).dump());
  }

  void list_signatures(Req& req) {
    const std::string doc(req.param("doc").value_or(""));
    authorized_doc(req, doc, "read");
    json items = json::array();
    vellum::Host::ScanOptions o;
    const std::string prefix = "docsig/" + doc + "/";
    o.prefix = prefix;
    o.limit = 10000;
    std::vector<std::string> ids;
    host().scan(o, [&](std::string_view k, std::string_view, uint64_t) {
      ids.emplace_back(k.substr(prefix.size()));
      return true;
    });
    for (const auto& id : ids) items.push_back(with_status(load_signature(id)));
    req.json(200, json({{"items", items}}).dump());
  }

  // ---- requests
  struct Loaded {
    sg::SigningRequest r;
    uint64_t kv_version = 0;
  };
  std::optional<Loaded> load_request(const std::string& id, const vellum::Transaction* txn = nullptr) const {
    if (!valid_hex_id(id)) return std::nullopt;
    auto v = txn ? txn->get("req/" + id) : host().get("req/" + id);
    if (!v) return std::nullopt;
    return Loaded{sg::request_from_json(json::parse(v->data)), v->version};
  }
  json public_request(const sg::SigningRequest& r) const {
    const int64_t now = host().now_ms();
    json j = sg::to_json(r, false);
    j["state"] = sg::effective_state(r, now);
    json aw = json::array();
    if (sg::is_open(r, now))
      for (size_t i : sg::awaiting(r)) aw.push_back(r.signers[i].principal());
    j["awaiting"] = aw;
    return j;
  }
  void publish(const std::string& topic, const sg::SigningRequest& r, json extra = json::object()) {
    extra["id"] = r.id;
    extra["document"] = r.document;
    extra["version"] = r.version;
    extra["requester"] = r.requester;
    try {
      host().publish(topic, extra.dump());
    } catch (const Error& e) {
      host().warn(std::string("event ") + topic + " not published: " + e.what());
    }
  }

  void create_request(Req& req) {
    const std::string user = user_of(req);
    const int64_t now = host().now_ms();
    sg::CreateInput in = sg::parse_create(body_json(req), now);
    json d = authorized_doc(req, in.document, "manage");
    sg::SigningRequest r;
    r.id = new_id();
    r.document = in.document;
    r.version = in.version ? in.version : d.value("current_version", uint64_t{0});
    r.content_sha256 = version_bytes(r.document, r.version).second;
    r.resource = d.value("resource", "document/" + r.document);
    r.owner = d.value("owner", "");
    r.requester = user;
    r.message = in.message;
    r.order = in.order;
    r.deadline_ms = in.deadline_ms;
    r.created_ms = r.updated_ms = now;
    r.signers = in.signers;
    r.history.push_back({now, "created", "user:" + user, ""});
    json invitations = json::array();
    for (size_t i = 0; i < r.signers.size(); ++i) {
      auto& s = r.signers[i];
      if (s.kind != "email") continue;
      // 256-bit one-time link token; only its SHA-256 is stored.
      const std::string token = "vls_" + b64url(host().random(32));
      s.token_hash = sg::sha256_hex(token);
      invitations.push_back({{"email", s.id}, {"token", token}, {"path", "/v1/signing/invitation"}});
    }
    r.intent = in.intent;
    auto txn = host().begin();
    txn.put("req/" + r.id, sg::to_json(r, true).dump(), VELLUM_VERSION_ABSENT);
    txn.put("open/" + r.id, "", VELLUM_VERSION_ABSENT);
    for (size_t i = 0; i < r.signers.size(); ++i)
      if (!r.signers[i].token_hash.empty())
        txn.put("invite/" + r.signers[i].token_hash, json({{"request", r.id}, {"slot", i}}).dump(),
                VELLUM_VERSION_ABSENT);
    txn.commit();
    host().audit("signing.request.create", r.resource + "/signing-request/" + r.id, VELLUM_OUTCOME_SUCCESS,
                 &req,
                 json({{"version", r.version},
                       {"content_sha256", r.content_sha256},
                       {"signers", r.signers.size()},
                       {"order", r.order}})
                     .dump());
    publish("signing.request.created", r, {{"awaiting", public_request(r)["awaiting"]}});
    json out = public_request(r);
    out["invitations"] = invitations;  // shown once: deliver them to the external signers
    req.json(201, out.dump());
  }

  // The request, if the caller is its requester, one of its signers, or may
  // read its document (404 otherwise).
  Loaded visible_request(Req& req, const std::string& user) const {
    auto l = load_request(std::string(req.param("id").value_or("")));
    if (!l) throw HttpProblem{404, "no such signing request"};
    if (l->r.requester == user || sg::find_slot(l->r, "user:" + user)) return *l;
    if (host().authorize(req, "read", l->r.resource + "/signing-request/" + l->r.id, l->r.owner)) return *l;
    throw HttpProblem{404, "no such signing request"};
  }

  void get_request(Req& req) {
    const std::string user = user_of(req);
    req.json(200, public_request(visible_request(req, user).r).dump());
  }

  // Applies a signature or decline to slot inside one transaction; the
  // expensive crypto happened before, so a concurrent change yields 409.
  sg::SigningRequest commit_answer(const std::string& id, size_t slot, const sg::SignatureRecord* sig,
                                   const std::string& reason) {
    const int64_t now = host().now_ms();
    auto txn = host().begin();
    auto l = load_request(id, &txn);
    if (!l) throw HttpProblem{404, "no such signing request"};
    sg::SigningRequest& r = l->r;
    if (sig)
      sg::record_signed(r, slot, sig->id, now);
    else
      sg::record_declined(r, slot, reason, now);
    if (sig) {
      txn.put("sig/" + sig->id, signature_stored(*sig, now).dump(), VELLUM_VERSION_ABSENT);
      txn.put("docsig/" + r.document + "/" + sig->id, "", VELLUM_VERSION_ABSENT);
    }
    txn.put("req/" + r.id, sg::to_json(r, true).dump(), l->kv_version);
    if (r.state != "pending" && r.state != "partial") txn.erase("open/" + r.id);
    txn.commit();
    return r;
  }

  void after_answer(const sg::SigningRequest& r, const std::string& who, bool signed_it) {
    if (!signed_it) {
      publish("signing.request.declined", r, {{"signer", who}});
    } else if (r.state == "complete") {
      publish("signing.request.completed", r);
    } else {
      publish("signing.request.signed", r, {{"signer", who}, {"awaiting", public_request(r)["awaiting"]}});
    }
  }

  void sign_request(Req& req) {
    const std::string user = user_of(req);
    Loaded l = visible_request(req, user);
    auto slot = sg::find_slot(l.r, "user:" + user);
    if (!slot) throw HttpProblem{403, "you are not a signer of this request"};
    sg::check_can_act(l.r, *slot, host().now_ms());
    json b = body_json(req);
    SignInput in;
    in.key = resolve_key(user, b);
    in.document = l.r.document;
    in.version = l.r.version;
    in.request = l.r.id;
    in.signer = "user:" + user;
    in.intent = l.r.intent;
    if (b.contains("intent")) in.intent = str_member(b, "intent", true, 64);
    // The bytes are hashed again: a request names a hash, and the signature
    // must be over the same bytes.
    in.content_sha256 = version_bytes(in.document, in.version).second;
    if (in.content_sha256 != l.r.content_sha256)
      throw HttpProblem{409, "the version's bytes no longer match the request's content hash"};
    fill_client_parts(in, b);
    sg::SignatureRecord sig = make_signature(in);
    sg::SigningRequest r = commit_answer(l.r.id, *slot, &sig, "");
    host().audit("signing.request.sign", r.resource + "/signing-request/" + r.id, VELLUM_OUTCOME_SUCCESS,
                 &req, json({{"signature", sig.id}, {"state", r.state}}).dump());
    after_answer(r, "user:" + user, true);
    json out = public_request(r);
    out["signature"] = with_status(signature_stored(sig, host().now_ms()));
    req.json(200, out.dump());
  }

  void decline_request(Req& req) {
    const std::string user = user_of(req);
    Loaded l = visible_request(req, user);
    auto slot = sg::find_slot(l.r, "user:" + user);
    if (!slot) throw HttpProblem{403, "you are not a signer of this request"};
    json b = body_json(req);
    const std::string why = str_member(b, "reason", true, 2000);
    sg::SigningRequest r = commit_answer(l.r.id, *slot, nullptr, why);
    host().audit("signing.request.decline", r.resource + "/signing-request/" + r.id, VELLUM_OUTCOME_SUCCESS,
                 &req, "{}");
    after_answer(r, "user:" + user, false);
    req.json(200, public_request(r).dump());
  }

  void cancel_request(Req& req) {
    const std::string user = user_of(req);
    Loaded l = visible_request(req, user);
    if (l.r.requester != user &&
        !host().authorize(req, "manage", l.r.resource + "/signing-request/" + l.r.id, l.r.owner))
      throw HttpProblem{403, "only the requester may cancel a signing request"};
    json b = req.body().empty() ? json::object() : body_json(req);
    const std::string why = str_member(b, "reason", false, 2000);
    const int64_t now = host().now_ms();
    auto txn = host().begin();
    auto cur = load_request(l.r.id, &txn);
    if (!cur) throw HttpProblem{404, "no such signing request"};
    sg::record_cancelled(cur->r, "user:" + user, why, now);
    txn.put("req/" + cur->r.id, sg::to_json(cur->r, true).dump(), cur->kv_version);
    txn.erase("open/" + cur->r.id);
    for (const auto& s : cur->r.signers)
      if (!s.token_hash.empty() && !s.token_used) {
        if (txn.get("invite/" + s.token_hash)) txn.erase("invite/" + s.token_hash);
      }
    txn.commit();
    host().audit("signing.request.cancel", cur->r.resource + "/signing-request/" + cur->r.id,
                 VELLUM_OUTCOME_SUCCESS, &req, json({{"reason_given", !why.empty()}}).dump());
    publish("signing.request.cancelled", cur->r);
    req.json(200, public_request(cur->r).dump());
  }

  // The audit log's records about the request, and the document's own
  // records about the signed version (created as it, forced to it,
  // restored into it, named), each with its RFC 6962 inclusion proof,
  // grouped by the signed checkpoint the proofs are against (normally one;
  // more if the log moved on between pages).
  json audit_part(const sg::SigningRequest& r) const {
    const std::string request_resource = r.resource + "/signing-request/" + r.id;
    std::map<int64_t, json> groups;
    std::set<uint64_t> seen;
    size_t request_records = 0, version_records = 0;
    auto collect = [&](const std::string& resource, int max_pages, auto keep, size_t& count) {
      uint64_t after = 0;
      for (int page = 0; page < max_pages; ++page) {
        json x = json::parse(host().audit_excerpt(resource, after, kAuditPage));
        if (!x["checkpoint"].is_object()) return true;
        remember_log_key(x["checkpoint"].value("public_key_pem", ""));
        for (auto& rec : x["records"]) {
          const uint64_t seq = rec.at("seq");
          if (seen.count(seq)) continue;
          if (!keep(json::parse(rec.at("body").get<std::string>(), nullptr, false))) continue;
          seen.insert(seq);
          ++count;
          json& g = groups[x["checkpoint"].at("id").get<int64_t>()];
          if (g.is_null()) g = {{"checkpoint", x["checkpoint"]}, {"records", json::array()}};
          g["records"].push_back(std::move(rec));
        }
        if (!x.value("more", false)) return true;
        after = x.at("next_after_seq");
      }
      return false;
    };
    try {
      collect(
          request_resource, 1000, [](const json&) { return true; }, request_records);
      const bool version_complete = collect(
          r.resource, kMaxDocumentAuditPages,
          [&](const json& b) {
            if (!b.is_object() || b.value("resource", "") != r.resource || b.value("plugin", "") != "editor")
              return false;
            const json d = b.value("details", json::object());
            if (b.value("action", "") == "editor.document.create") return r.version == 1;
            return d.is_object() && d.contains("version") && d["version"] == r.version;
          },
          version_records);
      json excerpts = json::array();
      for (auto& [id, g] : groups) {
        auto& recs = g["records"];
        std::sort(recs.begin(), recs.end(),
                  [](const json& a, const json& b) { return a.at("seq") < b.at("seq"); });
        excerpts.push_back(std::move(g));
      }
      return {{"included", true},
              {"request_resource", request_resource},
              {"document_resource", r.resource},
              {"request_records", request_records},
              {"version_records", version_records},
              {"version_records_complete", version_complete},
              {"log_public_key", log_key()},
              {"excerpts", std::move(excerpts)}};
    } catch (const Error& e) {
      host().error(std::string("evidence: the audit excerpt failed: ") + e.what());
      throw HttpProblem{503, "the audit log cannot be read for the evidence package; try again later"};
    }
  }

  void remember_log_key(const std::string& pem) const {
    if (pem.empty()) return;
    std::lock_guard lk(log_key_mu_);
    log_key_pem_ = pem;
  }
  // The audit log's public key as the host reports it (the newest
  // checkpoint's), "" if unavailable. Asked once (the call may sign a
  // pending checkpoint); a third party gets it from the operator.
  std::string log_key() const {
    {
      std::lock_guard lk(log_key_mu_);
      if (!log_key_pem_.empty()) return log_key_pem_;
    }
    try {
      json x = json::parse(host().audit_excerpt("signing/log-key", 0, 1));
      if (x["checkpoint"].is_object()) remember_log_key(x["checkpoint"].value("public_key_pem", ""));
    } catch (const Error& e) {
      host().warn(std::string("the audit log's public key is unavailable: ") + e.what());
    }
    std::lock_guard lk(log_key_mu_);
    return log_key_pem_;
  }

  void evidence(Req& req) {
    const std::string user = user_of(req);
    Loaded l = visible_request(req, user);
    const sg::SigningRequest& r = l.r;
    if (r.state != "complete") throw HttpProblem{409, "evidence is available once the request is complete"};
    json sigs = json::array();
    for (const auto& s : r.signers) sigs.push_back(load_signature(s.signature_id));
    json pkg = {
        {"format", sg::kEvidenceFormat},
        {"generated_at", sg::rfc3339_ms(host().now_ms())},
        {"document", {{"id", r.document}, {"version", r.version}, {"content_sha256", r.content_sha256}}},
        {"request", public_request(r)},
        {"signatures", sigs},
        {"ca_certificate", ca_pem_},
        {"tsa_certificate", tsa_pem_},
        {"tsa_policy", tsa_->policy()},
        {"tsa_ca_certificates", tsa_ca_pem_},
        {"audit", audit_part(r)},
        {"readme", sg::evidence_readme()}};
    if (remote_tsa_) pkg["tsa_url"] = remote_tsa_->url();
    host().audit("signing.request.evidence", r.resource + "/signing-request/" + r.id, VELLUM_OUTCOME_SUCCESS,
                 &req, "{}");
    std::string cd = "attachment; filename=\"evidence-";
    cd += r.id;
    cd += ".json\"";
    req.set_header("Content-Disposition", cd);
    req.json(200, pkg.dump(2));
  }

  // ---- external signers (one-time link)
  struct Invite {
    std::string hash;
    Loaded l;
    size_t slot = 0;
  };
  Invite load_invite(Req& req) const {
    auto tok = req.header(kTokenHeader);
    if (!tok || tok->size() < 10 || tok->size() > 200)
      throw HttpProblem{404, "no such invitation (send the link token in the Vellum-Signing-Token header)"};
    Invite inv;
    inv.hash = sg::sha256_hex(*tok);
    auto v = host().get("invite/" + inv.hash);
    if (!v) throw HttpProblem{404, "no such invitation, or it was already used"};
    json j = json::parse(v->data);
    auto l = load_request(j.at("request"));
    if (!l) throw HttpProblem{404, "no such invitation"};
    inv.l = std::move(*l);
    inv.slot = j.at("slot");
    if (inv.slot >= inv.l.r.signers.size() || inv.l.r.signers[inv.slot].token_hash != inv.hash ||
        inv.l.r.signers[inv.slot].token_used)
      throw HttpProblem{404, "no such invitation, or it was already used"};
    return inv;
  }

  void invitation(Req& req) {
    Invite inv = load_invite(req);
    const auto& r = inv.l.r;
    auto [bytes, hash] = version_bytes(r.document, r.version);
    json d = describe(r.document);
    json out = {{"request", r.id},
                {"signer", r.signers[inv.slot].principal()},
                {"state", sg::effective_state(r, host().now_ms())},
                {"your_turn", sg::is_open(r, host().now_ms()) &&
                                  [&] {
                                    for (size_t i : sg::awaiting(r))
                                      if (i == inv.slot) return true;
                                    return false;
                                  }()},
                {"message", r.message},
                {"deadline_ms", r.deadline_ms},
                {"document", {{"id", r.document}, {"title", d.value("title", "")}, {"version", r.version}}},
                {"content_sha256", hash},
                {"content", sg::b64encode(bytes)}};
    req.json(200, out.dump());
  }

  void invitation_answer(Req& req, bool sign) {
    Invite inv = load_invite(req);
    const sg::SigningRequest& r0 = inv.l.r;
    const std::string who = r0.signers[inv.slot].principal();
    sg::check_can_act(r0, inv.slot, host().now_ms());
    json b = body_json(req);
    sg::SigningRequest r;
    std::string sig_id;
    if (sign) {
      SignInput in;
      in.document = r0.document;
      in.version = r0.version;
      in.request = r0.id;
      in.signer = who;
      in.email = r0.signers[inv.slot].id;
      in.intent = r0.intent;
      if (b.contains("intent")) in.intent = str_member(b, "intent", true, 64);
      in.content_sha256 = version_bytes(in.document, in.version).second;
      if (in.content_sha256 != r0.content_sha256)
        throw HttpProblem{409, "the version's bytes no longer match the request's content hash"};
      if (b.contains("public_key")) {
        // A key the external signer holds: register it for this signature only.
        sg::Pkey pub = sg::pubkey_from_pem(str_member(b, "public_key", true, 16384));
        const auto alg = sg::algorithm_of(pub.get());
        sg::check_key(alg, pub.get());
        sg::Cert cert = sg::issue_signing_cert(ca_, pub.get(), who, in.email, host().now_ms());
        in.key = {{"algorithm", sg::algorithm_name(alg)},
                  {"custody", "client"},
                  {"public_key", sg::pubkey_pem(pub.get())},
                  {"certificate", sg::cert_pem(cert.get())}};
        fill_client_parts(in, b);
      } else {
        // No key of their own: a one-off server-made key signs and is then
        // forgotten (only its public half and certificate are kept).
        std::string a = b.contains("algorithm") ? str_member(b, "algorithm", true, 64) : "ecdsa-p256-sha256";
        auto alg = sg::parse_algorithm(a);
        if (!alg) throw HttpProblem{422, "unknown 'algorithm'"};
        in.one_off = sg::generate_key(*alg, cfg_.default_rsa_bits);
      }
      sg::SignatureRecord sig = make_signature(in);
      sig_id = sig.id;
      r = commit_answer(r0.id, inv.slot, &sig, "");
    } else {
      r = commit_answer(r0.id, inv.slot, nullptr, str_member(b, "reason", true, 2000));
    }
    // The link is single-use: drop its record (the slot is marked used too).
    try {
      host().erase("invite/" + inv.hash);
    } catch (const Error&) {
    }
    host().audit(sign ? "signing.request.sign" : "signing.request.decline",
                 r.resource + "/signing-request/" + r.id, VELLUM_OUTCOME_SUCCESS, &req,
                 json({{"external", true}, {"signature", sig_id}}).dump());
    after_answer(r, who, sign);
    json out = public_request(r);
    if (!sig_id.empty()) out["signature"] = load_signature(sig_id);
    req.json(200, out.dump());
  }

  // ---- verification API
  void verify(Req& req) {
    json b = body_json(req);
    std::optional<std::string> expected;
    if (b.contains("content")) {
      expected = sg::sha256_hex(sg::b64decode(str_member(b, "content", true, SIZE_MAX)));
    } else if (b.contains("content_sha256")) {
      std::string h = str_member(b, "content_sha256", true, 64);
      if (!sg::is_sha256_hex(h)) throw HttpProblem{422, "'content_sha256' must be 64 lower-case hex digits"};
      expected = h;
    }
    std::vector<json> records;
    json result = json::object();
    if (auto e = b.find("evidence"); e != b.end()) {
      if (!e->is_object() || e->value("format", "") != sg::kEvidenceFormat)
        throw HttpProblem{422, "'evidence' is not a vellum.evidence.v1 package"};
      auto sigs = e->find("signatures");
      if (sigs == e->end() || !sigs->is_array() || sigs->empty())
        throw HttpProblem{422, "'evidence' has no signatures"};
      for (const auto& s : *sigs) records.push_back(s);
      result["ca_matches"] = e->value("ca_certificate", "") == ca_pem_;
      // The audit excerpt: proofs against the checkpoints, with the key the
      // package names; whether that is this deployment's log key is said
      // apart (a package from another deployment has another key).
      if (auto a = e->find("audit"); a != e->end() && a->is_object() && a->value("included", false)) {
        const std::string key = a->value("log_public_key", "");
        json ac = sg::check_audit_excerpts(*a, key);
        ac["log_key_matches"] = !key.empty() && key == log_key();
        result["audit"] = std::move(ac);
      }
      if (!expected && e->contains("document") && (*e)["document"].is_object())
        expected = (*e)["document"].value("content_sha256", "");
    } else if (auto s = b.find("signature"); s != b.end()) {
      records.push_back(*s);
    } else if (auto ss = b.find("signatures"); ss != b.end() && ss->is_array() && !ss->empty()) {
      for (const auto& s : *ss) records.push_back(s);
    } else {
      throw HttpProblem{422, "send 'signature', 'signatures' or 'evidence'"};
    }
    if (records.size() > 100) throw HttpProblem{422, "at most 100 signatures per call"};
    json checks = json::array();
    bool all = true;
    for (const auto& j : records) {
      json c;
      try {
        sg::SignatureRecord r = sg::record_from_json(j);
        c = sg::check_to_json(sg::check_record(r, ca_.cert.get(), expected, extra_tsa_anchors()));
      } catch (const sg::InvalidInput& e) {
        c = {{"valid", false}, {"errors", json::array({e.what()})}};
      }
      all = all && c.value("valid", false);
      checks.push_back(std::move(c));
    }
    result["valid"] = all;
    result["signatures"] = checks;
    if (expected) result["content_sha256"] = *expected;
    req.json(200, result.dump());
  }

  // ---- timer: expiry and reminders
  void sweep() {
    const int64_t now = host().now_ms();
    std::vector<std::string> ids;
    vellum::Host::ScanOptions o;
    o.prefix = "open/";
    o.limit = 10000;
    host().scan(o, [&](std::string_view k, std::string_view, uint64_t) {
      ids.emplace_back(k.substr(5));
      return true;
    });
    for (const auto& id : ids) {
      auto txn = host().begin();
      auto l = load_request(id, &txn);
      if (!l) {
        txn.erase("open/" + id);
        txn.commit();
        continue;
      }
      sg::SigningRequest& r = l->r;
      const std::string st = sg::effective_state(r, now);
      std::string topic;
      if (st == "expired") {
        r.expiry_announced = true;
        r.history.push_back({now, "expired", "", ""});
        txn.erase("open/" + id);
        topic = "signing.request.expired";
      } else if (st == "pending" || st == "partial") {
        if (now - std::max(r.last_reminder_ms, r.created_ms) < cfg_.reminder_interval_ms) continue;
        r.last_reminder_ms = now;
        r.history.push_back({now, "reminded", "", ""});
        topic = "signing.request.reminder";
      } else {
        txn.erase("open/" + id);
        txn.commit();
        continue;
      }
      txn.put("req/" + id, sg::to_json(r, true).dump(), l->kv_version);
      txn.commit();
      if (topic == "signing.request.expired")
        host().audit("signing.request.expire", r.resource + "/signing-request/" + r.id,
                     VELLUM_OUTCOME_SUCCESS, nullptr, "{}");
      json aw = json::array();
      if (topic == "signing.request.reminder")
        for (size_t i : sg::awaiting(r)) aw.push_back(r.signers[i].principal());
      publish(topic, r, {{"awaiting", aw}});
    }
  }

  Config cfg_;
  RateLimiter tsa_limiter_{cfg_.tsa_rate_per_minute};
  vellum::Service<vellum_documents_v1> docs_;
  sg::KeyAndCert ca_;
  std::unique_ptr<sg::Tsa> tsa_;
  std::unique_ptr<sg::RemoteTsa> remote_tsa_;  // tsa_url: new signatures are stamped there
  std::string ca_pem_, tsa_pem_;
  std::string tsa_ca_pem_;  // what time-stamp tokens may chain to: the CA, + tsa_ca_file
  mutable std::mutex log_key_mu_;
  mutable std::string log_key_pem_;  // the audit log's public key, once seen
  vellum::Handle sweeper_;
};

}  // namespace

VELLUM_PLUGIN(Signing)
