#include "yupdate.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

namespace vellum::editor::collab {

// ---- lib0 helpers

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

uint64_t utf16_length(std::string_view s) {
  uint64_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xc0) != 0x80) n += 1;  // a lead byte starts a code point
    if (c >= 0xf0) n += 1;           // outside the BMP: a surrogate pair
  }
  return n;
}

void Decoder::skip_any(int depth) {
  if (depth > 64) throw DecodeError("value nests too deeply");
  const uint8_t type = u8();
  switch (type) {
    case 127:  // undefined
    case 126:  // null
    case 121:  // false
    case 120:  // true
      return;
    case 125:
      (void)var_int();
      return;
    case 124:
      (void)bytes(4);
      return;
    case 123:
    case 122:
      (void)bytes(8);
      return;
    case 119:
      (void)var_string();
      return;
    case 118: {
      const uint64_t n = count();
      for (uint64_t i = 0; i < n; ++i) {
        (void)var_string();
        skip_any(depth + 1);
      }
      return;
    }
    case 117: {
      const uint64_t n = count();
      for (uint64_t i = 0; i < n; ++i) skip_any(depth + 1);
      return;
    }
    case 116:
      (void)var_bytes();
      return;
    default:
      throw DecodeError("unknown value type");
  }
}

namespace {

void check_json(std::string_view s) {
  if (!nlohmann::json::accept(s)) throw DecodeError("invalid JSON in content");
}

uint64_t checked_end(uint64_t clock, uint64_t len) {
  if (len == 0) throw DecodeError("empty struct");
  if (len > kMaxSafeInteger - clock) throw DecodeError("clock out of range");
  return clock + len;
}

Id read_id(Decoder& d) {
  Id id;
  id.client = d.var_uint();
  id.clock = d.var_uint();
  return id;
}

void read_content(Decoder& d, Struct& s) {
  const char* start = d.pos();
  switch (s.ref) {
    case kDeleted:
      s.length = d.var_uint();
      break;
    case kJson: {
      const uint64_t n = d.count();
      s.elems.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        auto e = d.var_string();
        if (e != "undefined") check_json(e);
        s.elems.emplace_back(e);
      }
      s.length = n;
      break;
    }
    case kBinary:
      (void)d.var_bytes();
      s.length = 1;
      break;
    case kString:
      s.text = std::string(d.var_string());
      s.length = utf16_length(s.text);
      break;
    case kEmbed:
      check_json(d.var_string());
      s.length = 1;
      break;
    case kFormat:
      (void)d.var_string();
      check_json(d.var_string());
      s.length = 1;
      break;
    case kType: {
      const uint64_t type_ref = d.var_uint();
      if (type_ref > 6) throw DecodeError("unknown type ref");
      if (type_ref == 3 || type_ref == 5) (void)d.var_string();  // XmlElement / XmlHook name
      s.length = 1;
      break;
    }
    case kAny: {
      const uint64_t n = d.count();
      s.elems.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        const char* e = d.pos();
        d.skip_any();
        s.elems.emplace_back(e, static_cast<size_t>(d.pos() - e));
      }
      s.length = n;
      break;
    }
    case kDoc:
      (void)d.var_string();
      d.skip_any();
      s.length = 1;
      break;
    default:
      throw DecodeError("unknown content type");
  }
  if (s.ref == kBinary || s.ref == kEmbed || s.ref == kFormat || s.ref == kType || s.ref == kDoc)
    s.text.assign(start, static_cast<size_t>(d.pos() - start));
}

void write_content(Encoder& e, const Struct& s) {
  switch (s.ref) {
    case kDeleted:
      e.var_uint(s.length);
      break;
    case kJson:
      e.var_uint(s.elems.size());
      for (auto& x : s.elems) e.var_bytes(x);
      break;
    case kString:
      e.var_bytes(s.text);
      break;
    case kAny:
      e.var_uint(s.elems.size());
      for (auto& x : s.elems) e.raw(x);
      break;
    default:
      e.raw(s.text);
  }
}

void write_struct(Encoder& e, const Struct& s) {
  if (s.kind == StructKind::kGc) {
    e.u8(0);
    e.var_uint(s.length);
    return;
  }
  if (s.kind == StructKind::kSkip) {
    e.u8(10);
    e.var_uint(s.length);
    return;
  }
  e.u8(static_cast<uint8_t>(s.ref | (s.has_origin ? 0x80 : 0) | (s.has_right_origin ? 0x40 : 0) |
                            (s.parent_sub_flag ? 0x20 : 0)));
  if (s.has_origin) {
    e.var_uint(s.origin.client);
    e.var_uint(s.origin.clock);
  }
  if (s.has_right_origin) {
    e.var_uint(s.right_origin.client);
    e.var_uint(s.right_origin.clock);
  }
  if (!s.has_origin && !s.has_right_origin) {
    if (s.parent_is_key) {
      e.var_uint(1);
      e.var_bytes(s.parent_key);
    } else {
      e.var_uint(0);
      e.var_uint(s.parent_id.client);
      e.var_uint(s.parent_id.clock);
    }
    if (s.parent_sub_flag) e.var_bytes(s.parent_sub);
  }
  write_content(e, s);
}

// Sorts and unites overlapping or touching ranges (yjs sortAndMergeDeleteSet).
void normalize(std::vector<std::pair<uint64_t, uint64_t>>& r) {
  std::sort(r.begin(), r.end());
  size_t w = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    if (w > 0 && r[w - 1].first + r[w - 1].second >= r[i].first) {
      const uint64_t end = std::max(r[w - 1].first + r[w - 1].second, r[i].first + r[i].second);
      r[w - 1].second = end - r[w - 1].first;
    } else {
      r[w++] = r[i];
    }
  }
  r.resize(w);
}

void write_delete_set(Encoder& e, const DeleteSet& ds) {
  size_t n = 0;
  for (auto& [c, r] : ds)
    if (!r.empty()) ++n;
  e.var_uint(n);
  for (auto it = ds.rbegin(); it != ds.rend(); ++it) {  // highest client first, like yjs
    if (it->second.empty()) continue;
    e.var_uint(it->first);
    e.var_uint(it->second.size());
    for (auto& [clock, len] : it->second) {
      e.var_uint(clock);
      e.var_uint(len);
    }
  }
}

bool mergeable(const Struct& a, const Struct& b) {
  if (a.kind != StructKind::kItem || b.kind != StructKind::kItem) return false;
  if (a.client != b.client || a.end() != b.clock || a.ref != b.ref) return false;
  if (a.ref != kString && a.ref != kJson && a.ref != kAny && a.ref != kDeleted) return false;
  // Map entries (parentSub) replace each other; never fuse them.
  if (a.parent_sub_flag || b.parent_sub_flag) return false;
  if (!b.has_origin || !(b.origin == Id{a.client, a.end() - 1})) return false;
  if (a.has_right_origin != b.has_right_origin) return false;
  return !a.has_right_origin || a.right_origin == b.right_origin;
}

void append_content(Struct& a, Struct&& b) {
  a.length += b.length;
  if (a.ref == kString)
    a.text += b.text;
  else if (a.ref == kJson || a.ref == kAny)
    for (auto& x : b.elems) a.elems.push_back(std::move(x));
}

bool fully_deleted(const DeleteSet& ds, const Struct& s) {
  auto it = ds.find(s.client);
  if (it == ds.end()) return false;
  auto& r = it->second;  // sorted, disjoint
  auto at = std::upper_bound(r.begin(), r.end(), std::make_pair(s.clock, UINT64_MAX));
  if (at == r.begin()) return false;
  --at;
  return at->first + at->second >= s.end();
}

// What Yjs's own garbage collection does to a deleted item: keep its id,
// origins and length, drop its content. Receivers treat children of a
// collected type as collected too (yjs Item.gc, getMissing).
void collect(const DeleteSet& ds, Struct& s) {
  if (s.kind != StructKind::kItem || s.ref == kDeleted || !fully_deleted(ds, s)) return;
  s.ref = kDeleted;
  s.text.clear();
  s.elems.clear();
}

}  // namespace

Struct slice(const Struct& s, uint64_t diff) {
  Struct r;
  r.kind = s.kind;
  r.client = s.client;
  r.clock = s.clock + diff;
  r.length = s.length - diff;
  if (s.kind != StructKind::kItem) return r;
  // The right part of a split item hangs off the left part (yjs sliceStruct).
  r.ref = s.ref;
  r.has_origin = true;
  r.origin = Id{s.client, s.clock + diff - 1};
  r.has_right_origin = s.has_right_origin;
  r.right_origin = s.right_origin;
  r.parent_sub_flag = s.parent_sub_flag;
  r.parent_is_key = s.parent_is_key;
  r.parent_key = s.parent_key;
  r.parent_id = s.parent_id;
  r.parent_sub = s.parent_sub;
  switch (s.ref) {
    case kDeleted:
      break;
    case kJson:
    case kAny:
      r.elems.assign(s.elems.begin() + static_cast<std::ptrdiff_t>(diff), s.elems.end());
      break;
    case kString: {
      // Walk diff UTF-16 units. Splitting a surrogate pair gives U+FFFD on
      // both sides, as ContentString.splice does.
      uint64_t units = 0;
      size_t i = 0;
      while (units < diff && i < s.text.size()) {
        const auto c = static_cast<unsigned char>(s.text[i]);
        const size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (len == 4 && units + 1 == diff) {
          r.text = "\xEF\xBF\xBD" + s.text.substr(i + 4);
          return r;
        }
        units += len == 4 ? 2 : 1;
        i += len;
      }
      r.text = s.text.substr(i);
      break;
    }
    default:
      throw DecodeError("content cannot be split");
  }
  return r;
}

Update decode_update(std::string_view bytes) {
  Decoder d(bytes);
  Update u;
  const uint64_t clients = d.count();
  std::map<uint64_t, bool> seen;
  for (uint64_t c = 0; c < clients; ++c) {
    const uint64_t n = d.count();
    const uint64_t client = d.var_uint();
    if (seen[client]) throw DecodeError("client listed twice");
    seen[client] = true;
    uint64_t clock = d.var_uint();
    for (uint64_t i = 0; i < n; ++i) {
      Struct s;
      s.client = client;
      s.clock = clock;
      const uint8_t info = d.u8();
      if (info == 10) {
        s.kind = StructKind::kSkip;
        s.length = d.var_uint();
      } else if ((info & 0x1f) == 0) {
        s.kind = StructKind::kGc;
        s.length = d.var_uint();
      } else {
        s.kind = StructKind::kItem;
        s.ref = info & 0x1f;
        s.has_origin = info & 0x80;
        s.has_right_origin = info & 0x40;
        s.parent_sub_flag = info & 0x20;
        if (s.has_origin) s.origin = read_id(d);
        if (s.has_right_origin) s.right_origin = read_id(d);
        if (!s.has_origin && !s.has_right_origin) {
          const uint64_t is_key = d.var_uint();
          if (is_key > 1) throw DecodeError("bad parent info");
          s.parent_is_key = is_key == 1;
          if (s.parent_is_key)
            s.parent_key = std::string(d.var_string());
          else
            s.parent_id = read_id(d);
          if (s.parent_sub_flag) s.parent_sub = std::string(d.var_string());
        }
        read_content(d, s);
      }
      clock = checked_end(clock, s.length);
      u.structs.push_back(std::move(s));
    }
  }
  const uint64_t ds_clients = d.count();
  for (uint64_t c = 0; c < ds_clients; ++c) {
    const uint64_t client = d.var_uint();
    const uint64_t n = d.count();
    auto& r = u.ds[client];
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t clock = d.var_uint();
      const uint64_t len = d.var_uint();
      (void)checked_end(clock, len);
      r.emplace_back(clock, len);
    }
    normalize(r);
  }
  if (!d.done()) throw DecodeError("trailing bytes after update");
  return u;
}

std::string encode_update(const Update& u) {
  // Group runs of one client; a client's run starts at its first clock.
  std::vector<std::pair<size_t, size_t>> runs;  // [begin, end) into structs
  for (size_t i = 0; i < u.structs.size();) {
    size_t j = i + 1;
    while (j < u.structs.size() && u.structs[j].client == u.structs[i].client) ++j;
    runs.emplace_back(i, j);
    i = j;
  }
  Encoder e;
  e.var_uint(runs.size());
  for (auto [b, en] : runs) {
    e.var_uint(en - b);
    e.var_uint(u.structs[b].client);
    e.var_uint(u.structs[b].clock);
    for (size_t i = b; i < en; ++i) write_struct(e, u.structs[i]);
  }
  write_delete_set(e, u.ds);
  return e.take();
}

Update merge(std::vector<Update> updates, bool compact) {
  // Collect per client, in update order (stable sort keeps the first
  // update's struct when two start at the same clock).
  std::map<uint64_t, std::vector<Struct>> by_client;
  Update out;
  for (auto& u : updates) {
    for (auto& s : u.structs)
      if (s.kind != StructKind::kSkip) by_client[s.client].push_back(std::move(s));
    for (auto& [c, r] : u.ds) {
      auto& dst = out.ds[c];
      dst.insert(dst.end(), r.begin(), r.end());
    }
  }
  for (auto& [c, r] : out.ds) normalize(r);
  for (auto it = by_client.rbegin(); it != by_client.rend(); ++it) {  // highest client first
    auto& v = it->second;
    std::stable_sort(v.begin(), v.end(), [](const Struct& a, const Struct& b) { return a.clock < b.clock; });
    const size_t first = out.structs.size();
    for (auto& s : v) {
      if (compact) collect(out.ds, s);
      if (out.structs.size() == first) {
        out.structs.push_back(std::move(s));
        continue;
      }
      Struct& last = out.structs.back();
      const uint64_t end = last.end();
      if (s.end() <= end) continue;  // already covered
      if (s.clock > end) {           // a gap: keep the clocks aligned with a skip
        Struct skip;
        skip.kind = StructKind::kSkip;
        skip.client = s.client;
        skip.clock = end;
        skip.length = s.clock - end;
        out.structs.push_back(std::move(skip));
        out.structs.push_back(std::move(s));
        continue;
      }
      Struct next = s.clock < end ? slice(s, end - s.clock) : std::move(s);
      if (compact) collect(out.ds, next);
      if (last.kind == StructKind::kGc && next.kind == StructKind::kGc) {
        last.length += next.length;
      } else if (compact && mergeable(last, next)) {
        append_content(last, std::move(next));
      } else {
        out.structs.push_back(std::move(next));
      }
    }
  }
  return out;
}

std::string merge_updates(const std::vector<std::string_view>& updates, bool compact) {
  std::vector<Update> us;
  us.reserve(updates.size());
  for (auto b : updates) us.push_back(decode_update(b));
  return encode_update(merge(std::move(us), compact));
}

StateVector state_vector(const Update& u) {
  StateVector sv;
  for (size_t i = 0; i < u.structs.size();) {
    const uint64_t client = u.structs[i].client;
    uint64_t clock = 0;
    bool counting = u.structs[i].clock == 0;  // must start at 0
    for (; i < u.structs.size() && u.structs[i].client == client; ++i) {
      if (u.structs[i].kind == StructKind::kSkip) counting = false;
      if (counting) clock = u.structs[i].end();
    }
    if (clock) sv[client] = clock;
  }
  return sv;
}

std::string encode_state_vector(const StateVector& sv) {
  Encoder e;
  e.var_uint(sv.size());
  for (auto it = sv.rbegin(); it != sv.rend(); ++it) {
    e.var_uint(it->first);
    e.var_uint(it->second);
  }
  return e.take();
}

StateVector decode_state_vector(std::string_view bytes) {
  Decoder d(bytes);
  StateVector sv;
  const uint64_t n = d.count();
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t client = d.var_uint();
    sv[client] = d.var_uint();
  }
  if (!d.done()) throw DecodeError("trailing bytes after state vector");
  return sv;
}

Update diff_update(const Update& u, const StateVector& sv) {
  Update out;
  out.ds = u.ds;
  for (size_t i = 0; i < u.structs.size();) {
    const uint64_t client = u.structs[i].client;
    auto it = sv.find(client);
    const uint64_t have = it == sv.end() ? 0 : it->second;
    bool started = false;
    for (; i < u.structs.size() && u.structs[i].client == client; ++i) {
      const Struct& s = u.structs[i];
      if (!started) {
        if (s.kind == StructKind::kSkip || s.end() <= have) continue;
        started = true;
        out.structs.push_back(s.clock < have ? slice(s, have - s.clock) : s);
      } else {
        out.structs.push_back(s);
      }
    }
    // A trailing skip carries nothing.
    while (!out.structs.empty() && out.structs.back().kind == StructKind::kSkip) out.structs.pop_back();
  }
  return out;
}

bool adds_nothing(const Update& u, const StateVector& sv, const DeleteSet& state_ds) {
  for (auto& s : u.structs) {
    if (s.kind == StructKind::kSkip) continue;
    auto it = sv.find(s.client);
    if (it == sv.end() || s.end() > it->second) return false;
  }
  for (auto& [client, ranges] : u.ds) {
    auto it = state_ds.find(client);
    for (auto [clock, len] : ranges) {
      if (it == state_ds.end()) return false;
      // state ranges are sorted and disjoint: find the one that could cover clock.
      auto& have = it->second;
      auto at = std::upper_bound(have.begin(), have.end(), std::make_pair(clock, UINT64_MAX));
      if (at == have.begin()) return false;
      --at;
      if (at->first + at->second < clock + len) return false;
    }
  }
  return true;
}

}  // namespace vellum::editor::collab
