// The pieces every report page is made of: HTML escaping, JSON that is safe inside a <script>
// element, numbers as the pages print them, and the page shell with its inline style and script.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace qfae::report {

// Text as HTML text or attribute value: & < > " ' become entities; everything else (UTF-8
// included) is kept.
std::string escape(std::string_view text);

// `j` as JSON text that cannot end the <script> element holding it: <, > and & are written as
// \u003c, \u003e, \u0026 (JSON.parse reads them back unchanged).
std::string script_json(const nlohmann::json& j);

// `v` with `decimals` digits after the point; "–" when it is not finite.
std::string number(double v, int decimals = 4);

// What one page holds. The body is HTML already escaped by the caller. `data` (when not null)
// goes into <script id="qfae-data" type="application/json"> for the page's script (gallery and
// table); `refresh_s` > 0 makes the browser reload the page that often (a run still training).
struct Page {
  std::string title;
  std::string subtitle;  // HTML
  std::string body;      // HTML
  nlohmann::json data;
  int refresh_s = 0;
};

// The whole document: no external file but the images the body links to, no network.
std::string html_document(const Page& page);

// <details><summary>title</summary><pre>text</pre></details>, text escaped.
std::string collapsed_text(const std::string& title, const std::string& text);

}  // namespace qfae::report
