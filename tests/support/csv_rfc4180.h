// Test support: a strict RFC 4180 CSV reader, so tests check what qfae writes the way a
// spreadsheet or Python's csv module reads it (quoted fields may hold commas, quotes, newlines).
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace qfae::test {

// Records of `text`; throws std::runtime_error on a quote inside an unquoted field, text after a
// closing quote, or an unterminated quoted field.
inline std::vector<std::vector<std::string>> parse_csv_rfc4180(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;    // this field began with a quote
  bool in_quotes = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        in_quotes = false;
      }
      continue;
    }
    if (c == ',' || c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      if (c == '\r') ++i;
      row.push_back(field);
      field.clear();
      quoted = false;
      if (c != ',') {
        rows.push_back(row);
        row.clear();
      }
    } else if (quoted) {
      throw std::runtime_error("text after a closing quote at byte " + std::to_string(i));
    } else if (c == '"') {
      if (!field.empty()) {
        throw std::runtime_error("quote inside a field at byte " + std::to_string(i));
      }
      quoted = in_quotes = true;
    } else {
      field += c;
    }
  }
  if (in_quotes) throw std::runtime_error("unterminated quoted field");
  if (!field.empty() || quoted || !row.empty()) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace qfae::test
