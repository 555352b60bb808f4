// The Yjs update format, version 1 (yjs src/utils/encoding.js, updates.js):
// per client a run of structs (items, GC ranges, skips) followed by a delete
// set. Implemented here so the server can validate what clients send before
// storing it, compute its state vector, answer a sync step 1 with only what
// the peer lacks, and compact a stored log into one update.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib0.hpp"

namespace vellum::editor::collab {

struct Id {
  uint64_t client = 0, clock = 0;
  bool operator==(const Id&) const = default;
};

enum class StructKind : uint8_t { kGc, kSkip, kItem };

// Content refs (the low 5 bits of an item's info byte).
enum ContentRef : uint8_t {
  kDeleted = 1,
  kJson = 2,
  kBinary = 3,
  kString = 4,
  kEmbed = 5,
  kFormat = 6,
  kType = 7,
  kAny = 8,
  kDoc = 9,
};

struct Struct {
  StructKind kind = StructKind::kGc;
  uint64_t client = 0, clock = 0, length = 0;
  // Items only.
  uint8_t ref = 0;
  bool has_origin = false, has_right_origin = false, parent_sub_flag = false;
  Id origin, right_origin;
  // Written only when the item has neither origin (then parent_sub too).
  bool parent_is_key = false;
  std::string parent_key;
  Id parent_id;
  std::string parent_sub;
  // Content: the UTF-8 text (kString); one entry per element (kJson: JSON
  // text or "undefined"; kAny: the encoded value); the encoded bytes of an
  // unsplittable content (kBinary, kEmbed, kFormat, kType, kDoc). kDeleted
  // needs only `length`.
  std::string text;
  std::vector<std::string> elems;
  uint64_t end() const { return clock + length; }
};

// client -> sorted, non-overlapping [clock, clock + len) ranges.
using DeleteSet = std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>>;
using StateVector = std::map<uint64_t, uint64_t>;

struct Update {
  std::vector<Struct> structs;  // grouped by client, each group in clock order
  DeleteSet ds;
};

// Throws DecodeError unless `bytes` is exactly one well-formed v1 update.
Update decode_update(std::string_view bytes);
std::string encode_update(const Update& u);

// Like Y.mergeUpdates: one update equivalent to applying all of `updates`
// (overlaps removed, gaps kept as skips, delete sets united). With
// compact = true, the content of items the delete set covers entirely is
// dropped (as Yjs's garbage collection does), and adjacent items that Yjs
// itself would merge in a document (same client, consecutive clocks,
// chained origins) become one item, so a long history of keystrokes and
// overwrites compacts to about the size of the visible document.
std::string merge_updates(const std::vector<std::string_view>& updates, bool compact = true);
Update merge(std::vector<Update> updates, bool compact = true);

// Like Y.encodeStateVectorFromUpdate.
StateVector state_vector(const Update& u);
std::string encode_state_vector(const StateVector& sv);
StateVector decode_state_vector(std::string_view bytes);  // throws DecodeError

// Like Y.diffUpdate: the part of `u` a peer at `sv` lacks (the whole delete set).
Update diff_update(const Update& u, const StateVector& sv);

// True if applying `u` to a document whose state is `state` (with state
// vector `sv`) would change nothing: every struct is already there and every
// deletion already known.
bool adds_nothing(const Update& u, const StateVector& sv, const DeleteSet& state_ds);

// The right part of s from `diff` on (0 < diff < s.length).
Struct slice(const Struct& s, uint64_t diff);

}  // namespace vellum::editor::collab
