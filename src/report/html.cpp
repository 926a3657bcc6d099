// HTML escaping, script-safe JSON and the page shell (report/html.h).
#include "qfae/report/html.h"

#include <cmath>
#include <cstdio>

#include "qfae/report/assets.h"

namespace qfae::report {

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string script_json(const nlohmann::json& j) {
  // Invalid UTF-8 (a file name in another encoding) is replaced, not an exception.
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string number(double v, int decimals) {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string html_document(const Page& page) {
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  if (page.refresh_s > 0) {
    html += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(page.refresh_s) + "\">\n";
  }
  html += "<title>" + escape(page.title) + "</title>\n<style>\n";
  html += kReportCss;
  html += "</style>\n</head>\n<body>\n<header><h1>" + escape(page.title) + "</h1>";
  if (!page.subtitle.empty()) html += "<p class=\"subtitle\">" + page.subtitle + "</p>";
  html += "</header>\n<main>\n" + page.body + "</main>\n";
  html += "<footer>Written by qfae " QFAE_VERSION " from the files in this folder.</footer>\n";
  if (!page.data.is_null()) {
    html += "<script id=\"qfae-data\" type=\"application/json\">" + script_json(page.data) +
            "</script>\n<script>\n";
    html += kReportJs;
    html += "</script>\n";
  }
  html += "</body>\n</html>\n";
  return html;
}

std::string collapsed_text(const std::string& title, const std::string& text) {
  return "<details><summary>" + escape(title) + "</summary><pre>" + escape(text) +
         "</pre></details>\n";
}

}  // namespace qfae::report
