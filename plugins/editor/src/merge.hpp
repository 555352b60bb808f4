// Three-way merge of JSON documents (base, local, remote).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace vellum::editor {

// One overlapping change. A side that deleted the value has nullopt.
struct Conflict {
  std::string pointer;  // RFC 6901, into the base document's shape
  std::optional<nlohmann::json> base, local, remote;
};

// Which side wins an overlapping change; kNone reports it as a conflict.
enum class Prefer { kNone, kLocal, kRemote };

struct MergeResult {
  nlohmann::json merged;
  std::vector<Conflict> conflicts;  // empty when merged is complete
  size_t resolved = 0;              // overlapping changes settled by `prefer`
};

// Changes on only one side are taken; the same change on both sides is taken
// once. Objects merge per member, arrays by aligning both sides with the base
// (longest common subsequence), so insertions at different places merge and
// same-length edits of one element merge inside it. Everything else that
// both sides changed differently is an overlap.
MergeResult merge3(const nlohmann::json& base, const nlohmann::json& local, const nlohmann::json& remote,
                   Prefer prefer = Prefer::kNone);

nlohmann::json conflict_json(const Conflict& c);

}  // namespace vellum::editor
