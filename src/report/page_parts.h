// Pieces the report pages share (report/*.cpp only): reading the files a page shows, the
// key-value list, the gallery and row table that report.js fills, the data they read.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "qfae/report/html.h"

namespace qfae::report {

// metrics.json and the like; UserError naming the file when it is missing or not JSON.
nlohmann::json read_json_file(const std::string& path);

// A CSV file with a header row; UserError naming the file (and the row) when a row's width differs
// from the header's.
struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  int column(const std::string& name) const;  // -1 when absent
};
CsvTable read_csv_table(const std::string& path);

// <dl class="kv"> of (term, HTML) pairs; the terms are escaped, the values are not.
std::string key_values(const std::vector<std::pair<std::string, std::string>>& items);

// <ul class="notes"> of the strings (escaped); "" when there are none.
std::string notes_list(const nlohmann::json& notes);

// A gallery filter: rows whose columns equal the values (and, if set, whose `nonempty` column is
// not empty). `disabled` (when not empty) says why the filter cannot be used.
struct Filter {
  std::string id, title;
  std::vector<std::pair<std::string, std::string>> equals;
  std::string nonempty;
  std::string disabled;
};

// The gallery and row table sections, and the data report.js builds them from: the table's
// columns and rows as in the CSV, paths written after their common folder ("prefix").
std::string gallery_section(const std::string& title);
std::string table_section(const std::string& title);
nlohmann::json rows_data(const CsvTable& table, const std::vector<Filter>& filters);

// A CSV cell as a number: NaN when it is empty or not entirely a number.
double cell_number(const std::string& text);

// The collapsed "resolved config (config.yaml)" block of the folder's config.yaml; "" when the
// folder has none.
std::string config_block(const std::string& dir);

// Writes <dir>/report.html (atomically) and returns its path.
std::string write_page(const std::string& dir, const Page& page);

// Scores of the rows whose `label_column` equals `label` ("" for any), in row order; empty and
// non-numeric scores are left out.
std::vector<double> scores_where(const CsvTable& table, const std::string& label_column,
                                 const std::string& label);

// A folder-relative link: the path's segments percent-encoded, so that '#', '?', '%' and spaces
// in a name stay part of it.
std::string relative_href(const std::string& path);

}  // namespace qfae::report
