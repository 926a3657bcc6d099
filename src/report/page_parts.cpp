// Shared pieces of the report pages (src/report/page_parts.h).
#include "page_parts.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "qfae/report/html.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::report {

json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw UserError("'" + path + "' is not valid JSON: " + e.what());
  }
}

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

CsvTable read_csv_table(const std::string& path) {
  std::vector<std::vector<std::string>> all;
  try {
    all = parse_csv(read_text_file(path));
  } catch (const UserError& e) {
    throw UserError("'" + path + "': " + e.what());
  }
  if (all.empty()) throw UserError("'" + path + "' is empty (a header row was expected)");
  CsvTable t;
  t.columns = std::move(all.front());
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].size() != t.columns.size()) {
      throw UserError("'" + path + "' row " + std::to_string(i + 1) + " has " +
                      std::to_string(all[i].size()) + " fields; the header has " +
                      std::to_string(t.columns.size()));
    }
    t.rows.push_back(std::move(all[i]));
  }
  return t;
}

std::string key_values(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string s = "<dl class=\"kv\">";
  for (const auto& [k, v] : items) s += "<dt>" + escape(k) + "</dt><dd>" + v + "</dd>";
  return s + "</dl>\n";
}

std::string notes_list(const json& notes) {
  if (!notes.is_array() || notes.empty()) return "";
  std::string s = "<ul class=\"notes\">";
  for (const auto& n : notes)
    s += "<li>" + escape(n.is_string() ? n.get<std::string>() : n.dump()) + "</li>";
  return s + "</ul>\n";
}

std::string gallery_section(const std::string& title) {
  return "<section id=\"gallery-section\"><h2>" + escape(title) +
         "</h2><div class=\"filters\" id=\"gallery-filters\"></div><div class=\"pager\" "
         "id=\"gallery-pager\"></div><div class=\"gallery\" id=\"gallery\"></div>"
         "<noscript><p>The gallery and the table need JavaScript; scores.csv holds every "
         "row.</p></noscript></section>\n";
}

std::string table_section(const std::string& title) {
  return "<section id=\"table-section\"><h2>" + escape(title) +
         "</h2><p class=\"pager\">Click a column's name to sort by it.</p><div class=\"pager\" "
         "id=\"table-pager\"></div><table class=\"rows\" id=\"rows-table\"><thead></thead>"
         "<tbody></tbody></table></section>\n";
}

json rows_data(const CsvTable& table, const std::vector<Filter>& filters) {
  const int path_col = table.column("path");
  // The longest folder prefix ("/a/b/") all paths share.
  std::string prefix;
  if (path_col >= 0 && !table.rows.empty()) {
    prefix = table.rows.front()[path_col];
    prefix = prefix.substr(0, prefix.rfind('/') + 1);
    for (const auto& r : table.rows) {
      const std::string& p = r[path_col];
      size_t n = 0;
      while (n < prefix.size() && n < p.size() && prefix[n] == p[n]) ++n;
      prefix.resize(n);
      prefix = prefix.substr(0, prefix.rfind('/') + 1);
      if (prefix.empty()) break;
    }
  }
  json rows = json::array();
  for (const auto& r : table.rows) {
    json row = r;
    if (path_col >= 0) row[path_col] = r[path_col].substr(prefix.size());
    rows.push_back(std::move(row));
  }
  json fs_json = json::array();
  for (const auto& f : filters) {
    json equals = json::object();
    for (const auto& [k, v] : f.equals) equals[k] = v;
    json j = {{"id", f.id}, {"title", f.title}, {"equals", equals}};
    if (!f.nonempty.empty()) j["nonempty"] = f.nonempty;
    if (!f.disabled.empty()) j["disabled"] = f.disabled;
    fs_json.push_back(j);
  }
  return {{"columns", table.columns}, {"prefix", prefix},   {"rows", rows},
          {"filters", fs_json},       {"gallery_page", 48}, {"table_page", 100}};
}

std::vector<double> scores_where(const CsvTable& table, const std::string& label_column,
                                 const std::string& label) {
  const int s = table.column("score"), l = table.column(label_column);
  std::vector<double> out;
  if (s < 0) return out;
  for (const auto& r : table.rows) {
    if (!label.empty() && (l < 0 || r[l] != label)) continue;
    const double v = cell_number(r[s]);
    if (!std::isnan(v)) out.push_back(v);
  }
  return out;
}

double cell_number(const std::string& text) {
  if (text.empty()) return std::nan("");
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  return *end == '\0' ? v : std::nan("");
}

std::string config_block(const std::string& dir) {
  const fs::path file = fs::path(dir) / "config.yaml";
  if (!fs::exists(file)) return "";
  return collapsed_text("resolved config (config.yaml)", read_text_file(file.string()));
}

std::string write_page(const std::string& dir, const Page& page) {
  const auto path = (fs::path(dir) / "report.html").string();
  write_file_atomic(path, html_document(page));
  return path;
}

std::string relative_href(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace qfae::report
