// The report pages' style sheet and script, src/report/assets/report.{css,js}, compiled in
// (cmake/embed_assets.cmake writes them into a source file at build time).
#pragma once

namespace qfae::report {

extern const char* const kReportCss;
extern const char* const kReportJs;

}  // namespace qfae::report
