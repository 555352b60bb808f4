#include "pki.hpp"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/opensslv.h>
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
}  // namespace

std::string Tsa::stamp(std::string_view data, int64_t now_ms, std::string_view nonce) const {
  // Build the RFC 3161 request as a client would, then answer it.
  TS_REQ* req = TS_REQ_new();
  TS_MSG_IMPRINT* mi = TS_MSG_IMPRINT_new();
  X509_ALGOR* algo = X509_ALGOR_new();
  ASN1_INTEGER* n = nullptr;
  const std::string digest = sha256(data);
  bool ok = req && mi && algo && TS_REQ_set_version(req, 1) == 1 &&
            X509_ALGOR_set0(algo, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, nullptr) == 1 &&
            TS_MSG_IMPRINT_set_algo(mi, algo) == 1 &&
            TS_MSG_IMPRINT_set_msg(mi, reinterpret_cast<unsigned char*>(const_cast<char*>(digest.data())),
                                   static_cast<int>(digest.size())) == 1 &&
            TS_REQ_set_msg_imprint(req, mi) == 1 && TS_REQ_set_cert_req(req, 1) == 1;
  if (ok && !nonce.empty()) {
    BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(nonce.data()),
                           static_cast<int>(nonce.size()), nullptr);
    n = bn ? BN_to_ASN1_INTEGER(bn, nullptr) : nullptr;
    BN_free(bn);
    ok = n && TS_REQ_set_nonce(req, n) == 1;
  }
  X509_ALGOR_free(algo);
  TS_MSG_IMPRINT_free(mi);
  ASN1_INTEGER_free(n);
  unsigned char* reqder = nullptr;
  int reqlen = ok ? i2d_TS_REQ(req, &reqder) : 0;
  TS_REQ_free(req);
  if (reqlen <= 0) ossl_fail("TS request");
  Bio reqbio = mem_bio(std::string_view(reinterpret_cast<char*>(reqder), static_cast<size_t>(reqlen)));

  // TS_RESP_CTX is not thread-safe; one per stamp keeps concurrent requests apart.
  TS_RESP_CTX* ctx = TS_RESP_CTX_new();
  TimeCtx tctx{now_ms};
  ASN1_OBJECT* policy = OBJ_txt2obj(policy_.c_str(), 1);
  ok = ctx && policy && TS_RESP_CTX_set_signer_cert(ctx, kc_.cert.get()) == 1 &&
       TS_RESP_CTX_set_signer_key(ctx, kc_.key.get()) == 1 && TS_RESP_CTX_set_def_policy(ctx, policy) == 1 &&
       TS_RESP_CTX_add_md(ctx, EVP_sha256()) == 1 && TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256()) == 1 &&
       TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256()) == 1 &&
       TS_RESP_CTX_set_clock_precision_digits(ctx, 3) == 1 && TS_RESP_CTX_set_accuracy(ctx, 1, 0, 0) == 1;
  ASN1_OBJECT_free(policy);
  TS_RESP* resp = nullptr;
  if (ok) {
    TS_RESP_CTX_set_time_cb(ctx, tsa_time_cb, &tctx);
    TS_RESP_CTX_set_serial_cb(ctx, tsa_serial_cb, nullptr);
    resp = TS_RESP_create_response(ctx, reqbio.get());
  }
  OPENSSL_free(reqder);
  TS_RESP_CTX_free(ctx);
  if (!resp) ossl_fail("TS_RESP_create_response");
  const long status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp)));
  if (status != TS_STATUS_GRANTED) {
    TS_RESP_free(resp);
    ossl_fail("the TSA refused to stamp");
  }
  unsigned char* der = nullptr;
  int len = i2d_TS_RESP(resp, &der);
  TS_RESP_free(resp);
  if (len <= 0) ossl_fail("i2d_TS_RESP");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

TimestampCheck verify_timestamp(std::string_view tsr_der, std::string_view data, X509* ca_cert) {
  TimestampCheck r;
  const auto* p = reinterpret_cast<const unsigned char*>(tsr_der.data());
  TS_RESP* resp = d2i_TS_RESP(nullptr, &p, static_cast<long>(tsr_der.size()));
  if (!resp || p != reinterpret_cast<const unsigned char*>(tsr_der.data()) + tsr_der.size()) {
    TS_RESP_free(resp);
    ossl_errors();
    r.error = "not a DER TimeStampResp";
    return r;
  }
  TS_VERIFY_CTX* ctx = TS_VERIFY_CTX_new();
  X509_STORE* store = X509_STORE_new();
  std::string digest = sha256(data);
  unsigned char* imprint = static_cast<unsigned char*>(OPENSSL_memdup(digest.data(), digest.size()));
  bool ok = ctx && store && imprint && X509_STORE_add_cert(store, ca_cert) == 1;
  if (ok) {
    TS_VERIFY_CTX_set_flags(ctx, TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_IMPRINT);
    TS_VERIFY_CTX_set_store(ctx, store);  // the context owns the store from here
    store = nullptr;
    TS_VERIFY_CTX_set_imprint(ctx, imprint, static_cast<long>(digest.size()));  // and the imprint
    imprint = nullptr;
    ok = TS_RESP_verify_response(ctx, resp) == 1;
    if (!ok) {
      std::string e = ossl_errors();
      r.error = "timestamp verification failed" + (e.empty() ? std::string() : ": " + e);
    }
  } else {
    r.error = "timestamp verification setup failed";
  }
  X509_STORE_free(store);
  OPENSSL_free(imprint);
  TS_VERIFY_CTX_free(ctx);
  if (ok) {
    TS_TST_INFO* info = TS_RESP_get_tst_info(resp);
    r.gen_time_ms = asn1_time_ms(TS_TST_INFO_get_time(info));
    BIGNUM* bn = ASN1_INTEGER_to_BN(TS_TST_INFO_get_serial(info), nullptr);
    if (bn) {
      char* h = BN_bn2hex(bn);
      r.serial_hex = h ? h : "";
      OPENSSL_free(h);
      BN_free(bn);
    }
    r.ok = true;
  }
  TS_RESP_free(resp);
  ossl_errors();
  return r;
}

}  // namespace vellum::signing
