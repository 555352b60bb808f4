// RFC 6962 inclusion proofs as the evidence package's README checks them:
// the C++ check and the README's POSIX shell function, both against proofs
// built here from the RFC's recursive definitions (MTH and PATH, §2.1).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "audit_proof.hpp"
#include "evidence.hpp"
#include "harness.hpp"
#include "keys.hpp"
#include "util.hpp"

using namespace vellum::signing;
using nlohmann::json;

namespace {

// The largest power of two smaller than n (n > 1).
size_t split(size_t n) {
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH(D[lo:hi]) of RFC 6962 §2.1.
std::string mth(const std::vector<std::string>& d, size_t lo, size_t hi) {
  if (hi - lo == 1) return merkle_leaf_hash(d[lo]);
  const size_t k = split(hi - lo);
  return merkle_node_hash(mth(d, lo, lo + k), mth(d, lo + k, hi));
}

// PATH(m, D[lo:hi]) of RFC 6962 §2.1.1, sibling first.
std::vector<std::string> path(const std::vector<std::string>& d, size_t m, size_t lo, size_t hi) {
  if (hi - lo == 1) return {};
  const size_t k = split(hi - lo);
  std::vector<std::string> p;
  if (m < k) {
    p = path(d, m, lo, lo + k);
    p.push_back(mth(d, lo + k, hi));
  } else {
    p = path(d, m - k, lo + k, hi);
    p.push_back(mth(d, lo, lo + k));
  }
  return p;
}

std::vector<std::string> bodies(size_t n) {
  std::vector<std::string> d;
  for (size_t i = 0; i < n; ++i) d.push_back("{\"v\":1,\"seq\":" + std::to_string(i + 1) + "}");
  return d;
}

}  // namespace

TEST_CASE("Merkle inclusion proofs verify for every leaf of trees of every shape") {
  for (size_t n = 1; n <= 33; ++n) {
    const auto d = bodies(n);
    const std::string root = mth(d, 0, n);
    for (size_t m = 0; m < n; ++m) {
      INFO("n=" << n << " m=" << m);
      const auto p = path(d, m, 0, n);
      const std::string leaf = merkle_leaf_hash(d[m]);
      CHECK(merkle_inclusion_ok(leaf, m, n, p, root));
      CHECK_FALSE(merkle_inclusion_ok(merkle_leaf_hash(d[m] + " "), m, n, p, root));
      if (m + 1 < n) CHECK_FALSE(merkle_inclusion_ok(leaf, m + 1, n, p, root));
      // (A path may also fold for another tree size where the shapes agree:
      // the size is bound by the signed checkpoint, not by the proof.)
      CHECK_FALSE(merkle_inclusion_ok(leaf, n, n, p, root));
      CHECK_FALSE(merkle_inclusion_ok(leaf, m, n, p, mth(bodies(n + 1), 0, n + 1)));
      auto longer = p;
      longer.push_back(root);
      CHECK_FALSE(merkle_inclusion_ok(leaf, m, n, longer, root));
      if (!p.empty()) {
        auto shorter = p;
        shorter.pop_back();
        CHECK_FALSE(merkle_inclusion_ok(leaf, m, n, shorter, root));
        auto flipped = p;
        flipped[0][0] ^= 1;
        CHECK_FALSE(merkle_inclusion_ok(leaf, m, n, flipped, root));
      }
    }
  }
}

TEST_CASE("The README's shell function folds the same proofs") {
  // The function definitions of the README's audit script, as written there.
  const std::string readme = evidence_readme();
  const size_t a = readme.find("fail() {"), b = readme.find("g=0");
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  std::string script = readme.substr(a, b - a);
  vt::TempDir dir;
  int cases = 0;
  std::string expected;
  for (size_t n : {1, 2, 3, 5, 6, 7, 8, 11}) {
    const auto d = bodies(n);
    const std::string root = hex(mth(d, 0, n)), other_root = hex(mth(bodies(n + 1), 0, n + 1));
    for (size_t m = 0; m < n; ++m) {
      std::string lines;
      for (const auto& h : path(d, m, 0, n)) lines += hex(h) + "\n";
      std::string file = "p";
      file += std::to_string(cases);
      vt::write_file(dir / file, lines);
      auto call = [&](const std::string& leaf_hex, const std::string& root_hex) {
        std::string line = "inclusion ";
        line += leaf_hex;
        line += ' ';
        line += std::to_string(m);
        line += ' ';
        line += std::to_string(n);
        line += ' ';
        line += root_hex;
        line += " < ";
        line += file;
        line += " && echo ok || echo bad\n";
        return line;
      };
      script += call(hex(merkle_leaf_hash(d[m])), root);
      // Another leaf on the same path, or another root, must not fold.
      script += call(hex(merkle_leaf_hash(d[m] + "x")), root);
      script += call(hex(merkle_leaf_hash(d[m])), other_root);
      expected += "ok\nbad\nbad\n";
      ++cases;
    }
  }
  vt::write_file(dir / "check.sh", script);
  auto r = vt::run({"/bin/sh", "-c", "cd '" + dir.path() + "' && sh check.sh"}, std::chrono::seconds(120));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == expected);
}

TEST_CASE("Audit excerpts: checkpoint signatures and proofs are checked") {
  const auto d = bodies(6);
  const std::string root = hex(mth(d, 0, 6));
  Pkey log_key = generate_key(Algorithm::Ed25519);
  const std::string pub = pubkey_pem(log_key.get());
  const std::string signed_data =
      "vellum-audit-checkpoint v1\nfirst_seq=1\nlast_seq=6\ntree_size=6\nroot=" + root +
      "\nlast_hash=" + std::string(64, 'a') + "\ntime_ms=1795000000000\n";
  EVP_PKEY_up_ref(log_key.get());
  Signer signer(Algorithm::Ed25519, Pkey(log_key.get()));
  json records = json::array();
  for (size_t m : {1, 4}) {
    json proof = json::array();
    for (const auto& h : path(d, m, 0, 6)) proof.push_back(hex(h));
    records.push_back({{"seq", m + 1}, {"body", d[m]}, {"inclusion_proof", proof}});
  }
  json audit = {{"included", true},
                {"excerpts", json::array({{{"checkpoint",
                                            {{"id", 3},
                                             {"signed_data", signed_data},
                                             {"signature_b64", b64encode(signer.sign(signed_data))}}},
                                           {"records", records}}})}};
  json ok = check_audit_excerpts(audit, pub);
  INFO(ok.dump());
  CHECK(ok["valid"] == true);
  CHECK(ok["records"] == 2);
  CHECK(ok["checkpoints"] == 1);

  auto cp = parse_checkpoint_text(signed_data);
  REQUIRE(cp);
  CHECK(cp->tree_size == 6);
  CHECK(cp->root_hex == root);
  CHECK(cp->time_ms == 1795000000000);
  CHECK_FALSE(parse_checkpoint_text("tree_size=6\n"));
  CHECK_FALSE(parse_checkpoint_text("root=zz\ntree_size=6\n"));

  json body = audit;  // a record's body changed
  body["excerpts"][0]["records"][1]["body"] = "{\"v\":1,\"seq\":5,\"x\":1}";
  CHECK(check_audit_excerpts(body, pub)["valid"] == false);
  json seq = audit;  // the same body claimed at another place
  seq["excerpts"][0]["records"][1]["body"] = d[2];
  CHECK(check_audit_excerpts(seq, pub)["valid"] == false);
  json text = audit;  // the signed text changed
  std::string sd = signed_data;
  sd.replace(sd.find("tree_size=6"), 11, "tree_size=7");
  text["excerpts"][0]["checkpoint"]["signed_data"] = sd;
  CHECK(check_audit_excerpts(text, pub)["valid"] == false);
  Pkey other = generate_key(Algorithm::Ed25519);  // another log's key
  CHECK(check_audit_excerpts(audit, pubkey_pem(other.get()))["valid"] == false);
  CHECK(check_audit_excerpts(audit, "not a key")["valid"] == false);
  CHECK(check_audit_excerpts(json::object(), pub)["valid"] == false);
  json junk = audit;
  junk["excerpts"][0]["records"][0]["inclusion_proof"] = json::array({"zz"});
  CHECK(check_audit_excerpts(junk, pub)["valid"] == false);
}
