// The HTML report: one self-contained file (inline SVG charts, inline CSS, nothing fetched) that
// renders offline: the summary, latency percentile distributions on HdrHistogram's log percentile
// axis, time series per interval, failures with examples, and the run's settings.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::reports {

// Renders the report of a run directory (what `mediasim run --out DIR` wrote: summary.json,
// timeseries.jsonl, *.hlog). Missing optional files leave their section out; a missing or
// invalid summary.json is an error naming the file.
core::Result<std::string> render_html_report(const std::filesystem::path& run_dir);

// Writes DIR/report.html; returns its path.
core::Result<std::filesystem::path> write_html_report(const std::filesystem::path& run_dir);

// The chart primitive, public for tests: a line chart as an inline <svg>.
struct Series {
    std::string name;
    std::vector<std::pair<double, double>> points;  // (x, y)
};
struct ChartOptions {
    std::string title;
    std::string x_label;
    std::string y_label;
    bool percentile_x = false;  // x is a percentile 0..100 on the 1/(1-p) log axis
    int width = 720;
    int height = 300;
};
std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& opts);

// Escapes text for HTML element content and attribute values.
std::string html_escape(std::string_view text);

// The start of a report page, up to and including <body>: doctype, title and the reports' shared
// inline style (tables, badges, charts). Other pages (the capacity report) start with it too.
std::string html_page_start(std::string_view title);

}  // namespace mediasim::reports
