// Export renderers: rich text to HTML and Markdown, sheets to CSV, scenes to
// SVG. Inputs are content that passed validate_content(); every piece of
// user text is escaped for its output format.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace vellum::editor {

std::string richtext_html(const nlohmann::json& doc);
std::string richtext_markdown(const nlohmann::json& doc);
// One sheet as RFC 4180 CSV (CRLF). Cells whose text starts with = + - @ or
// a tab/CR are prefixed with ' so spreadsheet programs do not run them as
// formulas (CSV injection). nullopt if there is no such sheet.
std::optional<std::string> sheet_csv(const nlohmann::json& workbook, const std::string& sheet);
std::string scene_svg(const nlohmann::json& scene);

std::string html_escape(std::string_view s);

}  // namespace vellum::editor
