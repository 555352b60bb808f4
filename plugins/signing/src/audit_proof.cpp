#include "audit_proof.hpp"

#include <charconv>

#include "keys.hpp"
#include "util.hpp"

namespace vellum::signing {

using nlohmann::json;

std::string merkle_leaf_hash(std::string_view body) {
  std::string in(1, '\0');
  in += body;
  return sha256(in);
}

std::string merkle_node_hash(std::string_view left, std::string_view right) {
  std::string in(1, '\1');
  in += left;
  in += right;
  return sha256(in);
}

bool merkle_inclusion_ok(std::string_view leaf_hash, uint64_t index, uint64_t tree_size,
                         const std::vector<std::string>& path, std::string_view root) {
  if (index >= tree_size) return false;
  uint64_t fn = index, sn = tree_size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : path) {
    if (sn == 0) return false;
    if ((fn & 1) == 1 || fn == sn) {
      r = merkle_node_hash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = merkle_node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

std::optional<CheckpointText> parse_checkpoint_text(std::string_view text) {
  CheckpointText c;
  bool root = false, size = false;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;  // the header line
    std::string_view k = line.substr(0, eq), v = line.substr(eq + 1);
    auto number = [&](auto& out) {
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
      return ec == std::errc() && p == v.data() + v.size();
    };
    if (k == "root") {
      if (root || !is_sha256_hex(v)) return std::nullopt;
      c.root_hex = std::string(v);
      root = true;
    } else if (k == "tree_size") {
      if (size || !number(c.tree_size)) return std::nullopt;
      size = true;
    } else if (k == "time_ms") {
      if (!number(c.time_ms)) return std::nullopt;
    }
  }
  if (!root || !size) return std::nullopt;
  return c;
}

json check_audit_excerpts(const json& audit, const std::string& log_public_key_pem) {
  json errors = json::array();
  size_t records = 0, checkpoints = 0;
  Pkey key;
  try {
    key = pubkey_from_pem(log_public_key_pem);
    check_key(Algorithm::Ed25519, key.get());
  } catch (const InvalidInput&) {
    errors.push_back("the audit log's public key is not an Ed25519 PEM key");
  }
  auto excerpts = audit.is_object() ? audit.find("excerpts") : json::const_iterator();
  if (!audit.is_object() || excerpts == audit.end() || !excerpts->is_array()) {
    errors.push_back("the package has no audit excerpts");
  } else if (key) {
    for (const auto& x : *excerpts) {
      try {
        const json& cp = x.at("checkpoint");
        const std::string signed_data = cp.at("signed_data");
        const std::string sig = b64decode(cp.at("signature_b64").get<std::string>());
        const std::string name = "checkpoint " + std::to_string(cp.value("id", int64_t{0}));
        auto text = parse_checkpoint_text(signed_data);
        if (!text) {
          errors.push_back(name + ": signed_data is malformed");
          continue;
        }
        if (!verify_signature(Algorithm::Ed25519, key.get(), signed_data, sig)) {
          errors.push_back(name + ": the signature does not verify with the audit log's key");
          continue;
        }
        ++checkpoints;
        const std::string root = unhex(text->root_hex);
        for (const auto& rec : x.at("records")) {
          const std::string body = rec.at("body");
          // The index comes from the body itself: the proof binds it.
          const json parsed = json::parse(body, nullptr, false);
          const uint64_t seq = parsed.is_object() ? parsed.value("seq", uint64_t{0}) : 0;
          std::vector<std::string> path;
          for (const auto& h : rec.at("inclusion_proof")) path.push_back(unhex(h.get<std::string>()));
          if (seq == 0 || !merkle_inclusion_ok(merkle_leaf_hash(body), seq - 1, text->tree_size, path, root))
            errors.push_back("record " + std::to_string(seq) + ": not in the tree of " + name);
          else
            ++records;
        }
      } catch (const json::exception&) {
        errors.push_back("an audit excerpt is malformed");
      } catch (const InvalidInput& e) {
        errors.push_back(std::string("an audit excerpt is malformed: ") + e.what());
      }
    }
  }
  return {{"valid", errors.empty()}, {"records", records}, {"checkpoints", checkpoints}, {"errors", errors}};
}

}  // namespace vellum::signing
