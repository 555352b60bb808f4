// Content validation for editor documents.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vellum::editor {

// The first problem found: a JSON pointer into the content and a message.
struct Problem {
  std::string pointer;
  std::string message;
};

// Checks a rich-text document of ProseMirror/Tiptap shape:
//   {"type":"doc","content":[node...]}; a node is an object with a string
//   "type", optional "content" (array of nodes), optional "attrs" (object),
//   "text" (string, only on nodes of type "text", where it is required and
//   non-empty) and "marks" (array of objects with a string "type").
// Nodes nested deeper than max_depth (the doc is depth 1) are refused.
std::optional<Problem> validate_richtext(const nlohmann::json& doc, uint32_t max_depth);

// A spreadsheet workbook: {"sheets": [{"name", "rows", "cols", "cells":
// {"A1": {"v": scalar, "f": "=SUM(A1:B2)"}}}]}. Cell keys and the
// references inside formulas (also Sheet!A1) must lie inside their sheet.
std::optional<Problem> validate_sheet(const nlohmann::json& workbook);

// A design scene: {"root": id, "nodes": {id: {"type", "parent", "children":
// [ids], "props": {...}}}}. Parent and children must agree, every node must
// reach the root through its parents, and a cycle is refused.
std::optional<Problem> validate_scene(const nlohmann::json& scene);

// Ids of scene nodes added, removed or changed between two scenes (for
// element-level authorization).
std::vector<std::string> changed_nodes(const nlohmann::json& before, const nlohmann::json& after);

struct CellRef {
  uint64_t col, row;  // 1-based
};
std::optional<CellRef> cell_ref(std::string_view a1);

// Dispatches on the document type ("richtext", "sheet", "scene"); text
// content is a plain string and never reaches here.
std::optional<Problem> validate_content(const std::string& type, const nlohmann::json& content,
                                        uint32_t max_depth);

// Checks the structure of an end-to-end encrypted envelope
// (docs/formats/envelope.md): version, algorithms, base64 fields and their
// decoded sizes. The ciphertext itself is opaque to the server.
std::optional<Problem> validate_envelope(const nlohmann::json& envelope);

// True if the JSON text nests arrays/objects deeper than limit (strings are
// skipped). Run before parsing so hostile nesting never reaches the parser.
bool nesting_exceeds(std::string_view json_text, size_t limit);

}  // namespace vellum::editor
