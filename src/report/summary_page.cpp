// report.html of a batch evaluation or sweep summary folder (report/summary_page.h).
#include "qfae/report/summary_page.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>

#include "page_parts.h"
#include "qfae/report/html.h"
#include "qfae/report/svg_chart.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::report {
namespace {

// summary.csv's columns that are not metrics.
const char* const kTextColumns[] = {"run", "split", "images", "checkpoint", "results"};

bool is_metric(const std::string& column) {
  for (const char* c : kTextColumns) {
    if (column == c) return false;
  }
  return column != "AUPRO FPR limit";
}

// "-seed<N>" at the end of a run's name (scripts/sweep.sh names runs <name>-seed<N>).
const std::regex& seed_suffix() {
  static const std::regex suffix("-seed([0-9]+)$");
  return suffix;
}

// The seed: metrics.json's "seed", else the N of a name ending in "-seed<N>"; NaN when neither.
double seed_of(const std::string& name, const json& m) {
  if (m.is_object() && m.contains("seed") && m["seed"].is_number()) {
    return m["seed"].get<double>();
  }
  std::smatch match;
  if (std::regex_search(name, match, seed_suffix())) return cell_number(match[1].str());
  return std::nan("");
}

}  // namespace

std::string run_group(const std::string& name) {
  return std::regex_replace(name, seed_suffix(), "");
}

std::string write_summary_page(const std::string& dir_text) {
  const fs::path dir(dir_text);
  const CsvTable t = read_csv_table((dir / "summary.csv").string());
  const int run = t.column("run"), split = t.column("split"), images = t.column("images"),
            checkpoint = t.column("checkpoint"), results = t.column("results");
  std::vector<int> metric_cols;
  for (size_t c = 0; c < t.columns.size(); ++c) {
    if (is_metric(t.columns[c])) metric_cols.push_back(static_cast<int>(c));
  }
  std::string runs =
      "<section id=\"runs-section\"><h2>Runs</h2><table id=\"runs\"><thead><tr>"
      "<th>run</th><th>dataset</th><th class=\"num\">seed</th><th>split</th>"
      "<th class=\"num\">images</th>";
  for (int c : metric_cols) runs += "<th class=\"num\">" + escape(t.columns[c]) + "</th>";
  runs += "<th>checkpoint</th></tr></thead><tbody>";
  std::string means =
      "<section id=\"means-section\"><h2>Mean ± std over seeds</h2><table "
      "id=\"means\"><thead><tr><th>runs</th><th>dataset</th><th>split</th>";
  for (int c : metric_cols) means += "<th class=\"num\">" + escape(t.columns[c]) + "</th>";
  means += "</tr></thead><tbody>";
  // Charts: per metric, one series per group, a point per run at its seed.
  std::map<std::string, std::map<int, Series>> per_metric;  // group -> column -> series
  std::vector<std::string> group_order;
  bool any_mean = false;
  std::map<std::string, std::string> dataset_of;  // group name -> its first run's dataset
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const auto& r = t.rows[i];
    const std::string name = run >= 0 ? r[run] : "";
    const std::string folder = results >= 0 ? r[results] : "";
    if (folder.empty()) {  // a "<group> mean" or "<group> std" row
      const bool mean = name.size() > 5 && name.compare(name.size() - 5, 5, " mean") == 0;
      if (!mean || i + 1 >= t.rows.size()) continue;
      const auto& sd = t.rows[i + 1];
      any_mean = true;
      const std::string group = name.substr(0, name.size() - 5);
      means += "<tr><td>" + escape(group) + "</td><td>" + escape(dataset_of[group]) + "</td><td>" +
               escape(split >= 0 ? r[split] : "") + "</td>";
      for (int c : metric_cols) {
        means +=
            "<td class=\"num\" data-column=\"" + escape(t.columns[c]) + "\">" +
            (r[c].empty() ? "–" : number(cell_number(r[c])) + " ± " + number(cell_number(sd[c]))) +
            "</td>";
      }
      means += "</tr>";
      continue;
    }
    json m;
    const fs::path metrics = dir / folder / "metrics.json";
    if (fs::exists(metrics)) m = read_json_file(metrics.string());
    const double seed = seed_of(name, m);
    const std::string dataset = m.is_object() && m.contains("dataset") &&
                                        m["dataset"].is_object() && m["dataset"].contains("root") &&
                                        m["dataset"]["root"].is_string()
                                    ? m["dataset"]["root"].get<std::string>()
                                    : std::string();
    dataset_of.emplace(run_group(name), dataset);
    const bool has_page = fs::exists(dir / folder / "report.html");
    runs += "<tr data-results=\"" + escape(folder) + "\"><td>";
    runs += has_page ? "<a href=\"" + escape(relative_href(folder + "/report.html")) + "\">" +
                           escape(name) + "</a>"
                     : escape(name);
    runs += "</td><td>" + escape(dataset) + "</td><td class=\"num\">" +
            (std::isfinite(seed) ? number(seed, 0) : "–") + "</td><td>" +
            escape(split >= 0 ? r[split] : "") + "</td><td class=\"num\">" +
            escape(images >= 0 ? r[images] : "") + "</td>";
    for (int c : metric_cols) {
      runs += "<td class=\"num\" data-column=\"" + escape(t.columns[c]) + "\">" +
              number(cell_number(r[c])) + "</td>";
    }
    runs += "<td>" + escape(checkpoint >= 0 ? r[checkpoint] : "") + "</td></tr>";
    const std::string group = run_group(name) + (split >= 0 ? " (" + r[split] + ")" : "");
    if (!per_metric.count(group)) group_order.push_back(group);
    for (int c : metric_cols) {
      auto& s = per_metric[group][c];
      s.label = group;
      s.line = false;
      s.dots = true;
      s.x.push_back(std::isfinite(seed) ? seed : static_cast<double>(s.x.size() + 1));
      s.y.push_back(cell_number(r[c]));
    }
  }
  runs += "</tbody></table></section>\n";
  means += "</tbody></table>";
  if (!any_mean) means += "<p>No configuration has two or more runs here.</p>";
  means += "</section>\n";
  std::string charts =
      "<section id=\"charts-section\"><h2>Each metric across seeds</h2><div "
      "class=\"charts\">";
  for (int c : metric_cols) {
    Chart chart;
    chart.id = "chart-" + std::to_string(c);
    chart.title = t.columns[c];
    chart.x_label = "seed (or run number)";
    chart.y_label = t.columns[c];
    chart.width = 300;
    chart.height = 220;
    bool any = false;
    for (const auto& g : group_order) {
      const auto& s = per_metric[g][c];
      for (double y : s.y) any = any || std::isfinite(y);
      chart.series.push_back(s);
    }
    if (any) charts += svg_chart(chart);
  }
  charts += "</div></section>\n";
  Page page;
  page.title = "qfae summary: " + fs::absolute(dir).lexically_normal().filename().string();
  page.subtitle =
      "summary.csv and summary.md in this folder; each run's page is linked from its "
      "name";
  page.body = means + runs + charts;
  return write_page(dir_text, page);
}

}  // namespace qfae::report
