#include "pki.hpp"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

namespace vellum::signing {

namespace {

struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct CmsFree {
  void operator()(CMS_ContentInfo* c) const { CMS_ContentInfo_free(c); }
};
using Store = std::unique_ptr<X509_STORE, StoreFree>;
using Cms = std::unique_ptr<CMS_ContentInfo, CmsFree>;

constexpr int64_t kBackdateSeconds = 3600;  // tolerate clock skew between machines

void random_serial(X509* x) {
  BIGNUM* bn = BN_new();
  if (!bn || BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
    BN_free(bn);
    ossl_fail("certificate serial");
  }
  BN_free(bn);
}

void add_ext(X509* issuer, X509* subject, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, subject, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value);
  if (!ext) ossl_fail(std::string("certificate extension ") + OBJ_nid2sn(nid));
  int ok = X509_add_ext(subject, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) ossl_fail("X509_add_ext");
}

Cert new_cert(EVP_PKEY* pub, const std::string& cn, int64_t now_ms, int years) {
  Cert x(X509_new());
  if (!x || X509_set_version(x.get(), 2) != 1) ossl_fail("X509_new");
  random_serial(x.get());
  const time_t now = static_cast<time_t>(now_ms / 1000);
  if (!ASN1_TIME_set(X509_getm_notBefore(x.get()), now - kBackdateSeconds) ||
      !ASN1_TIME_set(X509_getm_notAfter(x.get()), now + static_cast<time_t>(years) * 365 * 86400))
    ossl_fail("certificate validity");
  X509_NAME* name = X509_get_subject_name(x.get());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Vellum"),
                                 -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) != 1)
    ossl_fail("certificate subject");
  if (X509_set_pubkey(x.get(), pub) != 1) ossl_fail("X509_set_pubkey");
  return x;
}

void sign_cert(X509* x, X509* issuer, EVP_PKEY* issuer_key) {
  if (X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1) ossl_fail("issuer name");
  add_ext(issuer, x, NID_subject_key_identifier, "hash");
  add_ext(issuer, x, NID_authority_key_identifier, "keyid:always");
  if (X509_sign(x, issuer_key, EVP_sha256()) <= 0) ossl_fail("X509_sign");
}

Store ca_store(X509* ca_cert) {
  Store s(X509_STORE_new());
  if (!s || X509_STORE_add_cert(s.get(), ca_cert) != 1) ossl_fail("X509_STORE");
  return s;
}

// DER AlgorithmIdentifier of the signature a verify context is set up for
// (OpenSSL computes PSS parameters itself; nothing hand-encoded).
X509_ALGOR* signature_algor(Algorithm alg, EVP_PKEY* pub) {
  EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pub, nullptr);
  if (!pctx || EVP_PKEY_verify_init(pctx) <= 0 || EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) <= 0) {
    EVP_PKEY_CTX_free(pctx);
    ossl_fail("verify init");
  }
  if (alg == Algorithm::RsaPss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                                   EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) <= 0 ||
                                   EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)) {
    EVP_PKEY_CTX_free(pctx);
    ossl_fail("PSS parameters");
  }
  unsigned char buf[256];
  OSSL_PARAM params[2] = {
      OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, buf, sizeof buf),
      OSSL_PARAM_construct_end()};
  if (EVP_PKEY_CTX_get_params(pctx, params) != 1 || !OSSL_PARAM_modified(&params[0])) {
    EVP_PKEY_CTX_free(pctx);
    ossl_fail("signature AlgorithmIdentifier");
  }
  EVP_PKEY_CTX_free(pctx);
  const unsigned char* p = buf;
  X509_ALGOR* a = d2i_X509_ALGOR(nullptr, &p, static_cast<long>(params[0].return_size));
  if (!a) ossl_fail("d2i_X509_ALGOR");
  return a;
}

std::string cms_der(CMS_ContentInfo* cms) {
  unsigned char* p = nullptr;
  int n = i2d_CMS_ContentInfo(cms, &p);
  if (n <= 0) ossl_fail("i2d_CMS_ContentInfo");
  std::string out(reinterpret_cast<char*>(p), static_cast<size_t>(n));
  OPENSSL_free(p);
  return out;
}

int64_t asn1_time_ms(const ASN1_GENERALIZEDTIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  // GeneralizedTime "YYYYMMDDHHMMSS.fffZ": keep the milliseconds.
  const char* s = reinterpret_cast<const char*>(ASN1_STRING_get0_data(t));
  int len = ASN1_STRING_length(t);
  if (len > 15 && s[14] == '.') {
    int frac = 0, digits = 0;
    for (int i = 15; i < len && s[i] >= '0' && s[i] <= '9' && digits < 3; ++i, ++digits)
      frac = frac * 10 + (s[i] - '0');
    while (digits < 3) {
      frac *= 10;
      ++digits;
    }
    ms += frac;
  }
  return ms;
}

}  // namespace

bool cms_supported(Algorithm a) {
  // OpenSSL 3.0's CMS code has no Ed25519 (RFC 8419) signing or verification
  // ("no default digest" / "invalid digest"); 3.2 adds it.
  return a != Algorithm::Ed25519 || OPENSSL_VERSION_NUMBER >= 0x30200000L;
}

KeyAndCert make_ca(const std::string& cn, int64_t now_ms, int years) {
  KeyAndCert kc{generate_key(Algorithm::EcdsaP256), nullptr};
  kc.cert = new_cert(kc.key.get(), cn, now_ms, years);
  add_ext(kc.cert.get(), kc.cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_ext(kc.cert.get(), kc.cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  sign_cert(kc.cert.get(), kc.cert.get(), kc.key.get());
  return kc;
}

KeyAndCert make_tsa(const KeyAndCert& ca, const std::string& cn, int64_t now_ms, int years) {
  KeyAndCert kc{generate_key(Algorithm::EcdsaP256), nullptr};
  kc.cert = new_cert(kc.key.get(), cn, now_ms, years);
  add_ext(ca.cert.get(), kc.cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(ca.cert.get(), kc.cert.get(), NID_key_usage, "critical,digitalSignature,nonRepudiation");
  add_ext(ca.cert.get(), kc.cert.get(), NID_ext_key_usage, "critical,timeStamping");
  sign_cert(kc.cert.get(), ca.cert.get(), ca.key.get());
  return kc;
}

Cert issue_signing_cert(const KeyAndCert& ca, EVP_PKEY* pub, const std::string& subject,
                        const std::string& email, int64_t now_ms, int years) {
  Cert x = new_cert(pub, subject, now_ms, years);
  add_ext(ca.cert.get(), x.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(ca.cert.get(), x.get(), NID_key_usage, "critical,digitalSignature,nonRepudiation");
  add_ext(ca.cert.get(), x.get(), NID_ext_key_usage, "emailProtection");
  if (!email.empty()) {
    for (char c : email)
      if (c == ',' || c == ':' || static_cast<unsigned char>(c) <= 0x20)
        throw InvalidInput("email address not usable in a certificate");
    add_ext(ca.cert.get(), x.get(), NID_subject_alt_name, ("email:" + email).c_str());
  }
  sign_cert(x.get(), ca.cert.get(), ca.key.get());
  return x;
}

void check_ca(const KeyAndCert& ca) {
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    ossl_errors();
    throw InvalidInput("the CA key does not match the CA certificate");
  }
  if (X509_check_ca(ca.cert.get()) < 1)
    throw InvalidInput("the CA certificate is not a CA (basicConstraints)");
}

void check_tsa(const KeyAndCert& tsa, X509* ca_cert) {
  if (X509_check_private_key(tsa.cert.get(), tsa.key.get()) != 1) {
    ossl_errors();
    throw InvalidInput("the TSA key does not match the TSA certificate");
  }
  if (X509_check_purpose(tsa.cert.get(), X509_PURPOSE_TIMESTAMP_SIGN, 0) != 1)
    throw InvalidInput("the TSA certificate lacks extendedKeyUsage critical timeStamping");
  Store s = ca_store(ca_cert);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  bool ok = ctx && X509_STORE_CTX_init(ctx, s.get(), tsa.cert.get(), nullptr) == 1 &&
            X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_TIMESTAMP_SIGN) == 1 && X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  ossl_errors();
  if (!ok) throw InvalidInput("the TSA certificate does not chain to the signing CA");
}

std::string cms_sign_detached(EVP_PKEY* key, X509* cert, std::string_view content) {
  const Algorithm alg = algorithm_of(key);
  if (!cms_supported(alg)) throw InvalidInput("OpenSSL 3.0 cannot make or check CMS signatures with Ed25519");
  const unsigned flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
  Cms cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, flags));
  if (!cms) ossl_fail("CMS_sign");
  CMS_SignerInfo* si = CMS_add1_signer(cms.get(), cert, key, EVP_sha256(), flags | CMS_KEY_PARAM);
  if (!si) ossl_fail("CMS_add1_signer");
  if (alg == Algorithm::RsaPss) {
    EVP_PKEY_CTX* pctx = CMS_SignerInfo_get0_pkey_ctx(si);
    if (!pctx || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
      ossl_fail("CMS RSA-PSS parameters");
  }
  Bio in = mem_bio(content.empty() ? std::string_view("", 0) : content);
  if (CMS_final(cms.get(), in.get(), nullptr, flags) != 1) ossl_fail("CMS_final");
  return cms_der(cms.get());
}

std::string cms_wrap_signature(X509* cert, Algorithm alg, std::string_view content,
                               std::string_view signature) {
  if (!cms_supported(alg)) throw InvalidInput("OpenSSL 3.0 cannot make or check CMS signatures with Ed25519");
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  if (!pub) ossl_fail("certificate key");
  if (!verify_signature(alg, pub, content, signature)) throw InvalidInput("signature does not verify");
  const unsigned flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_NOATTR;
  Cms cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, flags));
  if (!cms) ossl_fail("CMS_sign");
  // CMS_add1_signer only compares the public halves (X509_check_private_key),
  // so the certificate's own key stands in; nothing is signed here.
  CMS_SignerInfo* si = CMS_add1_signer(cms.get(), cert, pub, EVP_sha256(), flags);
  if (!si) ossl_fail("CMS_add1_signer");
  X509_ALGOR* psig = nullptr;
  CMS_SignerInfo_get0_algs(si, nullptr, nullptr, nullptr, &psig);
  if (!psig) ossl_fail("SignerInfo algorithms");
  X509_ALGOR* want = signature_algor(alg, pub);
  const int copied = X509_ALGOR_copy(psig, want);
  X509_ALGOR_free(want);
  if (copied != 1) ossl_fail("X509_ALGOR_copy");
  ASN1_OCTET_STRING* os = CMS_SignerInfo_get0_signature(si);
  if (!os || ASN1_STRING_set(os, signature.data(), static_cast<int>(signature.size())) != 1)
    ossl_fail("SignerInfo signature");
  return cms_der(cms.get());
}

CmsCheck cms_verify_detached(std::string_view der, std::string_view content, X509* ca_cert) {
  CmsCheck r;
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  Cms cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  if (!cms || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    ossl_errors();
    r.error = "not a DER CMS ContentInfo";
    return r;
  }
  Store store = ca_store(ca_cert);
  Bio in = mem_bio(content.empty() ? std::string_view("", 0) : content);
  const int ok = CMS_verify(cms.get(), nullptr, store.get(), in.get(), nullptr, CMS_DETACHED | CMS_BINARY);
  if (ok != 1) {
    std::string e = ossl_errors();
    r.error = "CMS verification failed" + (e.empty() ? std::string() : ": " + e);
    return r;
  }
  STACK_OF(X509)* signers = CMS_get0_signers(cms.get());
  if (signers && sk_X509_num(signers) == 1) {
    X509* s = sk_X509_value(signers, 0);
    r.signer_key_id = key_id(X509_get0_pubkey(s));
    char buf[256];
    X509_NAME_get_text_by_NID(X509_get_subject_name(s), NID_commonName, buf, sizeof buf);
    r.signer_subject = buf;
    r.ok = true;
  } else {
    r.error = "CMS must have exactly one signer";
  }
  sk_X509_free(signers);
  ossl_errors();
  return r;
}

// ---- TSA

Tsa::Tsa(KeyAndCert kc, std::string policy_oid) : kc_(std::move(kc)), policy_(std::move(policy_oid)) {
  ASN1_OBJECT* o = OBJ_txt2obj(policy_.c_str(), 1);
  if (!o) {
    ossl_errors();
    throw InvalidInput("tsa_policy_oid is not a dotted OID");
  }
  ASN1_OBJECT_free(o);
}

namespace {
struct TimeCtx {
  int64_t now_ms;
};
int tsa_time_cb(TS_RESP_CTX*, void* data, long* sec, long* usec) {
  const auto* t = static_cast<const TimeCtx*>(data);
  *sec = static_cast<long>(t->now_ms / 1000);
  *usec = static_cast<long>((t->now_ms % 1000) * 1000);
  return 1;
}
ASN1_INTEGER* tsa_serial_cb(TS_RESP_CTX* ctx, void*) {
  BIGNUM* bn = BN_new();
  ASN1_INTEGER* out = nullptr;
  if (bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1) out = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  if (!out) TS_RESP_CTX_set_status_info(ctx, TS_STATUS_REJECTION, "serial number error");
  return out;
}

struct TsReqFree {
  void operator()(TS_REQ* r) const { TS_REQ_free(r); }
};
struct TsRespFree {
  void operator()(TS_RESP* r) const { TS_RESP_free(r); }
};
struct TsVerifyFree {
  void operator()(TS_VERIFY_CTX* c) const { TS_VERIFY_CTX_free(c); }
};
using TsReq = std::unique_ptr<TS_REQ, TsReqFree>;
using TsResp = std::unique_ptr<TS_RESP, TsRespFree>;
using TsVerify = std::unique_ptr<TS_VERIFY_CTX, TsVerifyFree>;

// Exactly one DER object of the type, or null.
TsReq parse_ts_req(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  TsReq r(d2i_TS_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (r && p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) r.reset();
  ossl_errors();
  return r;
}
TsResp parse_ts_resp(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  TsResp r(d2i_TS_RESP(nullptr, &p, static_cast<long>(der.size())));
  if (r && p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) r.reset();
  ossl_errors();
  return r;
}

// "" if the response grants a token; else what the TSA said (RFC 3161
// §2.4.2 PKIStatusInfo: status, text, failInfo names).
std::string refusal(TS_RESP* resp) {
  const TS_STATUS_INFO* si = TS_RESP_get_status_info(resp);
  const long status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(si));
  if (status == TS_STATUS_GRANTED || status == TS_STATUS_GRANTED_WITH_MODS) return "";
  static const char* const kStatus[] = {"granted", "grantedWithMods",   "rejection",
                                        "waiting", "revocationWarning", "revocationNotification"};
  std::string out = "the TSA did not grant a time-stamp: status ";
  out += status >= 0 && status < 6 ? kStatus[status] : std::to_string(status);
  if (const ASN1_BIT_STRING* fi = TS_STATUS_INFO_get0_failure_info(si)) {
    static const std::pair<int, const char*> kFail[] = {
        {TS_INFO_BAD_ALG, "badAlg"},
        {TS_INFO_BAD_REQUEST, "badRequest"},
        {TS_INFO_BAD_DATA_FORMAT, "badDataFormat"},
        {TS_INFO_TIME_NOT_AVAILABLE, "timeNotAvailable"},
        {TS_INFO_UNACCEPTED_POLICY, "unacceptedPolicy"},
        {TS_INFO_UNACCEPTED_EXTENSION, "unacceptedExtension"},
        {TS_INFO_ADD_INFO_NOT_AVAILABLE, "addInfoNotAvailable"},
        {TS_INFO_SYSTEM_FAILURE, "systemFailure"}};
    for (auto [bit, name] : kFail)
      if (ASN1_BIT_STRING_get_bit(fi, bit)) out += std::string(", ") + name;
  }
  if (const STACK_OF(ASN1_UTF8STRING)* text = TS_STATUS_INFO_get0_text(si))
    for (int i = 0; i < sk_ASN1_UTF8STRING_num(text); ++i) {
      const ASN1_UTF8STRING* t = sk_ASN1_UTF8STRING_value(text, i);
      out += ": ";
      out.append(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t)),
                 static_cast<size_t>(ASN1_STRING_length(t)));
    }
  return out;
}

// Runs TS_RESP_verify_response with the anchors as the trust store and
// reads the token's time, serial and signer on success.
void verify_with(TS_VERIFY_CTX* ctx, TS_RESP* resp, const std::vector<X509*>& anchors, TimestampCheck& r) {
  if (std::string why = refusal(resp); !why.empty()) {
    r.error = why;
    return;
  }
  X509_STORE* store = X509_STORE_new();
  bool ok = store != nullptr;
  for (X509* a : anchors) ok = ok && X509_STORE_add_cert(store, a) == 1;
  if (!ok) {
    X509_STORE_free(store);
    ossl_errors();
    r.error = "timestamp verification setup failed";
    return;
  }
  TS_VERIFY_CTX_set_store(ctx, store);  // the context owns the store from here
  if (TS_RESP_verify_response(ctx, resp) != 1) {
    std::string e = ossl_errors();
    r.error = "timestamp verification failed" + (e.empty() ? std::string() : ": " + e);
    return;
  }
  TS_TST_INFO* info = TS_RESP_get_tst_info(resp);
  r.gen_time_ms = asn1_time_ms(TS_TST_INFO_get_time(info));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(TS_TST_INFO_get_serial(info), nullptr)) {
    char* h = BN_bn2hex(bn);
    r.serial_hex = h ? h : "";
    OPENSSL_free(h);
    BN_free(bn);
  }
  PKCS7* token = TS_RESP_get_token(resp);
  if (STACK_OF(X509)* signers = token ? PKCS7_get0_signers(token, nullptr, 0) : nullptr) {
    if (sk_X509_num(signers) > 0) {
      char* line = X509_NAME_oneline(X509_get_subject_name(sk_X509_value(signers, 0)), nullptr, 0);
      r.tsa_subject = line ? line : "";
      OPENSSL_free(line);
    }
    sk_X509_free(signers);
  }
  ossl_errors();
  r.ok = true;
}
}  // namespace

std::string make_timestamp_query(std::string_view data, std::string_view nonce) {
  TsReq req(TS_REQ_new());
  TS_MSG_IMPRINT* mi = TS_MSG_IMPRINT_new();
  X509_ALGOR* algo = X509_ALGOR_new();
  ASN1_INTEGER* n = nullptr;
  const std::string digest = sha256(data);
  bool ok = req && mi && algo && TS_REQ_set_version(req.get(), 1) == 1 &&
            X509_ALGOR_set0(algo, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, nullptr) == 1 &&
            TS_MSG_IMPRINT_set_algo(mi, algo) == 1 &&
            TS_MSG_IMPRINT_set_msg(mi, reinterpret_cast<unsigned char*>(const_cast<char*>(digest.data())),
                                   static_cast<int>(digest.size())) == 1 &&
            TS_REQ_set_msg_imprint(req.get(), mi) == 1 && TS_REQ_set_cert_req(req.get(), 1) == 1;
  if (ok && !nonce.empty()) {
    BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(nonce.data()),
                           static_cast<int>(nonce.size()), nullptr);
    n = bn ? BN_to_ASN1_INTEGER(bn, nullptr) : nullptr;
    BN_free(bn);
    ok = n && TS_REQ_set_nonce(req.get(), n) == 1;
  }
  X509_ALGOR_free(algo);
  TS_MSG_IMPRINT_free(mi);
  ASN1_INTEGER_free(n);
  unsigned char* der = nullptr;
  const int len = ok ? i2d_TS_REQ(req.get(), &der) : 0;
  if (len <= 0) ossl_fail("TS request");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string Tsa::respond(std::string_view query_der, int64_t now_ms) const {
  // OpenSSL answers undecodable input with a rejection; a caller sending
  // something that is not a TimeStampReq at all gets a plain error instead.
  if (!parse_ts_req(query_der)) throw InvalidInput("the body is not a DER RFC 3161 TimeStampReq");
  Bio reqbio = mem_bio(query_der);
  // TS_RESP_CTX is not thread-safe; one per response keeps concurrent requests apart.
  TS_RESP_CTX* ctx = TS_RESP_CTX_new();
  TimeCtx tctx{now_ms};
  ASN1_OBJECT* policy = OBJ_txt2obj(policy_.c_str(), 1);
  bool ok =
      ctx && policy && TS_RESP_CTX_set_signer_cert(ctx, kc_.cert.get()) == 1 &&
      TS_RESP_CTX_set_signer_key(ctx, kc_.key.get()) == 1 && TS_RESP_CTX_set_def_policy(ctx, policy) == 1 &&
      TS_RESP_CTX_add_md(ctx, EVP_sha256()) == 1 && TS_RESP_CTX_add_md(ctx, EVP_sha384()) == 1 &&
      TS_RESP_CTX_add_md(ctx, EVP_sha512()) == 1 && TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256()) == 1 &&
      TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256()) == 1 &&
      TS_RESP_CTX_set_clock_precision_digits(ctx, 3) == 1 && TS_RESP_CTX_set_accuracy(ctx, 1, 0, 0) == 1;
  ASN1_OBJECT_free(policy);
  TsResp resp;
  if (ok) {
    TS_RESP_CTX_set_time_cb(ctx, tsa_time_cb, &tctx);
    TS_RESP_CTX_set_serial_cb(ctx, tsa_serial_cb, nullptr);
    resp.reset(TS_RESP_create_response(ctx, reqbio.get()));
  }
  TS_RESP_CTX_free(ctx);
  if (!resp) ossl_fail("TS_RESP_create_response");
  unsigned char* der = nullptr;
  const int len = i2d_TS_RESP(resp.get(), &der);
  if (len <= 0) ossl_fail("i2d_TS_RESP");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  ossl_errors();
  return out;
}

std::string Tsa::stamp(std::string_view data, int64_t now_ms, std::string_view nonce) const {
  // Build the RFC 3161 request as a client would, then answer it.
  std::string out = respond(make_timestamp_query(data, nonce), now_ms);
  TsResp resp = parse_ts_resp(out);
  if (!resp ||
      ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp.get()))) != TS_STATUS_GRANTED)
    ossl_fail("the TSA refused to stamp");
  return out;
}

TimestampCheck verify_timestamp(std::string_view tsr_der, std::string_view data,
                                const std::vector<X509*>& anchors) {
  TimestampCheck r;
  TsResp resp = parse_ts_resp(tsr_der);
  if (!resp) {
    r.error = "not a DER TimeStampResp";
    return r;
  }
  TsVerify ctx(TS_VERIFY_CTX_new());
  const std::string digest = sha256(data);
  auto* imprint = static_cast<unsigned char*>(OPENSSL_memdup(digest.data(), digest.size()));
  if (!ctx || !imprint) {
    OPENSSL_free(imprint);
    r.error = "timestamp verification setup failed";
    return r;
  }
  TS_VERIFY_CTX_set_flags(ctx.get(), TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_IMPRINT);
  TS_VERIFY_CTX_set_imprint(ctx.get(), imprint, static_cast<long>(digest.size()));  // the context owns it
  verify_with(ctx.get(), resp.get(), anchors, r);
  return r;
}

TimestampCheck check_timestamp_reply(std::string_view reply_der, std::string_view query_der,
                                     const std::vector<X509*>& anchors) {
  TimestampCheck r;
  TsReq req = parse_ts_req(query_der);
  if (!req) throw InvalidInput("not a DER TimeStampReq");
  TsResp resp = parse_ts_resp(reply_der);
  if (!resp) {
    r.error = "the reply is not a DER RFC 3161 TimeStampResp";
    return r;
  }
  // Version, policy (if asked for), imprint and nonce as in the request,
  // and the signature: everything RFC 3161 §2.4.2 asks a client to check.
  TsVerify ctx(TS_REQ_to_TS_VERIFY_CTX(req.get(), nullptr));
  if (!ctx) {
    ossl_errors();
    r.error = "timestamp verification setup failed";
    return r;
  }
  TS_VERIFY_CTX_add_flags(ctx.get(), TS_VFY_SIGNATURE);
  verify_with(ctx.get(), resp.get(), anchors, r);
  return r;
}

std::vector<Cert> certs_from_pem_bundle(std::string_view pem) {
  std::vector<Cert> out;
  Bio b = mem_bio(pem);
  while (X509* x = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  // The loop ends at the end of the text (PEM "no start line") or at a
  // certificate that does not parse; only the first is fine.
  const unsigned long e = ERR_peek_last_error();
  const bool at_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
  ossl_errors();
  if (!at_end) throw InvalidInput("a certificate in the PEM bundle does not parse");
  if (out.empty()) throw InvalidInput("no PEM certificate found");
  return out;
}

}  // namespace vellum::signing
