// Content validation for editor documents.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

// True if the JSON text nests arrays/objects deeper than limit (strings are
// skipped). Run before parsing so hostile nesting never reaches the parser.
bool nesting_exceeds(std::string_view json_text, size_t limit);

}  // namespace vellum::editor
