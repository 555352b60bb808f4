// Key chains: team keys and document keys with versions (seed 004 §3).
//
// A chain is a current key plus retired versions. Each version of a team key
// (or of a document key shared with individual users) is wrapped per member
// as an envelope (envelope.hpp) addressed to the member's published
// encryption keys; a document key under a team is wrapped by the team key's
// current version (an envelope with one "chain:<team>:<v>" entry). Every
// wrap uses the envelope AAD "vellum.keychain.v1" 0x00 <chain id> 0x00
// <version>, so a wrap cannot be moved to another chain or version.
//
// Two modes:
//  - managed: the server makes the keys (RAND_bytes), keeps them in the chain
//    record (sealed at rest by the storage barrier) and does every wrap;
//  - e2ee: clients make the keys and upload the wraps; the server stores and
//    checks their structure (and that each wrap is addressed to the member's
//    own published keys) but cannot open them.
//
// Rotation (schedule, member removal, suspected breach) makes a new version
// wrapped for the remaining members only and rotates the chains under a team
// too. In e2ee mode the server cannot make the new key: it marks the chain
// "rotation due" and refuses new content for the old version until a member
// uploads the next version.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aead.hpp"
#include "transit.hpp"  // TransitError (status + message)

namespace vellum::crypto {

// Where chain records live: the plugin's KV namespace, or memory in tests.
class ChainStore {
 public:
  virtual ~ChainStore() = default;
  virtual std::optional<std::pair<std::string, uint64_t>> load(std::string_view id) = 0;
  // Compare-and-set (expected 0 = must be absent); throws TransitError(CONFLICT).
  virtual uint64_t store(std::string_view id, std::string_view record, uint64_t expected) = 0;
  virtual std::vector<std::string> list() = 0;
};

class MemoryChainStore : public ChainStore {
 public:
  std::optional<std::pair<std::string, uint64_t>> load(std::string_view id) override;
  uint64_t store(std::string_view id, std::string_view record, uint64_t expected) override;
  std::vector<std::string> list() override;
  // For tests: the raw records (to check what the server holds).
  std::map<std::string, std::pair<std::string, uint64_t>, std::less<>> rows;

 private:
  std::mutex mu_;
};

// The AAD every wrap of (chain, version) is made with.
std::string keychain_aad(std::string_view chain_id, uint32_t version);

class KeyChains {
 public:
  using Json = nlohmann::json;
  // PEMs of the encryption keys user_id has published.
  using PubkeysOf = std::function<std::vector<std::string>(const std::string& user_id)>;
  // Owner (user id) of a published encryption key id, if any.
  using KidOwner = std::function<std::optional<std::string>(const std::string& kid)>;

  KeyChains(ChainStore& store, std::function<int64_t()> clock, PubkeysOf pubkeys, KidOwner kid_owner,
            int64_t default_rotate_after_ms);

  static bool valid_id(std::string_view id);  // [A-Za-z0-9_.-]{1,128}

  struct CreateSpec {
    std::string id, kind = "team", mode = "managed", owner, parent;
    std::vector<std::string> members;  // team / parent-less document chains; the owner is always one
    int64_t rotate_after_ms = 0;       // 0 = the configured default
    // e2ee: version 1 (optional; without it the chain waits for its first key)
    std::map<std::string, std::string> wraps;  // user id -> envelope
    std::string parent_wrap;                   // envelope for "chain:<parent>:<current>"
  };
  // A change and the chains it rotated (or marked due), for audit and events.
  struct Change {
    Json chain;  // the full view of the chain acted on
    std::vector<std::pair<std::string, uint32_t>> rotated;
    std::vector<std::string> marked_due;
  };

  Change create(const CreateSpec& s);
  // managed: the server wraps the current key for the new member's keys (one
  // wrap); e2ee: `wrap` (optional) is the member's envelope of the current key.
  Change add_member(std::string_view id, const std::string& user, const std::string& wrap = {});
  // Removes, then rotates (managed) or marks the rotation due (e2ee).
  Change remove_member(std::string_view id, const std::string& user);
  // managed: new version now; e2ee: marks due. Chains under a team follow.
  Change rotate(std::string_view id, const std::string& reason);
  // e2ee: a member uploads the next version (wraps for members only; a
  // document under a team: parent_wrap for the team's current version).
  Change add_version(std::string_view id, const std::map<std::string, std::string>& wraps,
                     const std::string& parent_wrap, const std::string& reason);
  // e2ee: a wrap of the current version for a member who has none yet.
  Change put_wrap(std::string_view id, const std::string& user, const std::string& wrap);
  // Rotates (or marks) every chain whose current version is older than its period.
  std::vector<Change> rotate_due();

  // The view: metadata, members, versions with wraps (all of them if
  // `full`, else only `viewer`'s), no key material. NOT_FOUND if absent.
  Json view(std::string_view id, const std::string& viewer, bool full);
  Json raw(std::string_view id);  // the record (managed: with secrets); for the plugin's own checks
  // managed only: the key of a version (0 = current).
  Key managed_key(std::string_view id, uint32_t version = 0);
  // Members who may read the chain: its own, or its parent's.
  std::vector<std::string> readers(std::string_view id);

 private:
  struct Loaded {
    Json rec;
    uint64_t row = 0;
  };
  Loaded load(std::string_view id);
  void save(Loaded& l);
  Json new_version(Loaded& l, const std::string& reason);
  void retire_current(Json& rec);
  void check_member_wrap(const std::string& id, uint32_t version, const std::string& user,
                         const std::string& envelope);
  void check_parent_wrap(const Json& rec, const std::string& envelope);
  void cascade(const Json& rec, const std::string& reason, Change& ch);
  Json view_of(const Json& rec, const std::string& viewer, bool full) const;

  ChainStore& store_;
  std::function<int64_t()> clock_;
  PubkeysOf pubkeys_;
  KidOwner kid_owner_;
  int64_t default_rotate_ms_;
  std::recursive_mutex mu_;  // serializes changes (cascades re-enter)
};

}  // namespace vellum::crypto
