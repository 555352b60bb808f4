#include "merge.hpp"

#include "common.hpp"

#include <set>

namespace vellum::editor {

using nlohmann::json;

namespace {

// Above this many LCS cells an array is treated as one block (bounded
// memory and time for hostile inputs).
constexpr size_t kMaxLcsCells = 4u * 1024 * 1024;  // 16 MiB of table

using Opt = std::optional<json>;

class Merger {
 public:
  explicit Merger(Prefer p) : prefer_(p) {}
  MergeResult result;

  // Merges one value; nullopt means "absent" (deleted).
  Opt merge(const Opt& b, const Opt& l, const Opt& r, const std::string& ptr) {
    if (l == r) return l;
    if (l == b) return r;
    if (r == b) return l;
    if (l && r && l->is_object() && r->is_object() && (!b || b->is_object()))
      return merge_objects(b ? *b : json::object(), *l, *r, ptr);
    if (l && r && b && l->is_array() && r->is_array() && b->is_array()) return merge_arrays(*b, *l, *r, ptr);
    return overlap(b, l, r, ptr);
  }

 private:
  Opt overlap(const Opt& b, const Opt& l, const Opt& r, const std::string& ptr) {
    if (prefer_ == Prefer::kLocal) {
      ++result.resolved;
      return l;
    }
    if (prefer_ == Prefer::kRemote) {
      ++result.resolved;
      return r;
    }
    result.conflicts.push_back({ptr, b, l, r});
    return l;  // stands in the tree while a conflict is recorded: the caller refuses the merge
  }

  json merge_objects(const json& b, const json& l, const json& r, const std::string& ptr) {
    std::set<std::string> keys;
    for (const json* o : {&b, &l, &r})
      for (const auto& [k, v] : o->items()) {
        (void)v;
        keys.insert(k);
      }
    json out = json::object();
    for (const std::string& k : keys) {
      auto get = [&](const json& o) -> Opt {
        auto it = o.find(k);
        return it == o.end() ? Opt() : Opt(*it);
      };
      if (Opt v = merge(get(b), get(l), get(r), ptr + "/" + pointer_escape(k))) out[k] = std::move(*v);
    }
    return out;
  }

  // Indices of base elements matched in `side` (-1 if none), by LCS.
  static std::vector<long> align(const json& base, const json& side) {
    const size_t n = base.size(), m = side.size();
    std::vector<long> match(n, -1);
    if (n * m > kMaxLcsCells) return match;
    std::vector<std::vector<uint32_t>> t(n + 1, std::vector<uint32_t>(m + 1, 0));
    for (size_t i = n; i-- > 0;)
      for (size_t j = m; j-- > 0;)
        t[i][j] = base[i] == side[j] ? t[i + 1][j + 1] + 1 : std::max(t[i + 1][j], t[i][j + 1]);
    size_t i = 0, j = 0;
    while (i < n && j < m) {
      if (base[i] == side[j]) {
        match[i++] = static_cast<long>(j++);
      } else if (t[i + 1][j] >= t[i][j + 1]) {
        ++i;
      } else {
        ++j;
      }
    }
    return match;
  }

  static json slice(const json& a, size_t from, size_t to) {
    json out = json::array();
    for (size_t i = from; i < to; ++i) out.push_back(a[i]);
    return out;
  }

  json merge_arrays(const json& b, const json& l, const json& r, const std::string& ptr) {
    const auto ml = align(b, l), mr = align(b, r);
    json out = json::array();
    size_t bi = 0, li = 0, ri = 0;
    // Walk from one stable element (unchanged in base, local and remote) to
    // the next; the blocks in between are merged as units.
    for (size_t k = 0; k <= b.size(); ++k) {
      const bool stable = k == b.size() || (ml[k] >= 0 && mr[k] >= 0);
      if (!stable) continue;
      const size_t le = k == b.size() ? l.size() : static_cast<size_t>(ml[k]);
      const size_t re = k == b.size() ? r.size() : static_cast<size_t>(mr[k]);
      const json B = slice(b, bi, k), L = slice(l, li, le), R = slice(r, ri, re);
      const std::string at = ptr + "/" + std::to_string(bi);
      if (L == R || L == B) {
        for (auto& x : R) out.push_back(x);
      } else if (R == B) {
        for (auto& x : L) out.push_back(x);
      } else if (B.size() == L.size() && B.size() == R.size()) {
        for (size_t x = 0; x < B.size(); ++x)
          if (Opt v = merge(B[x], L[x], R[x], ptr + "/" + std::to_string(bi + x)))
            out.push_back(std::move(*v));
      } else if (Opt v = overlap(Opt(B), Opt(L), Opt(R), at)) {
        for (auto& x : *v) out.push_back(x);
      }
      if (k < b.size()) out.push_back(b[k]);
      bi = k + 1, li = le + 1, ri = re + 1;
    }
    return out;
  }

  Prefer prefer_;
};

}  // namespace

MergeResult merge3(const json& base, const json& local, const json& remote, Prefer prefer) {
  Merger m(prefer);
  Opt v = m.merge(base, local, remote, "");
  m.result.merged = v ? *v : json();
  return std::move(m.result);
}

json conflict_json(const Conflict& c) {
  json j = {{"pointer", c.pointer}};
  for (auto [name, v] :
       {std::pair{"base", &c.base}, std::pair{"local", &c.local}, std::pair{"remote", &c.remote}}) {
    if (*v)
      j[name] = **v;
    else
      j[std::string(name) + "_absent"] = true;
  }
  return j;
}

}  // namespace vellum::editor
