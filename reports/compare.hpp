// `mediasim report compare BASE NEW [--max-regression 10%]`: per-metric differences between two
// runs' summary.json, and whether NEW regressed beyond the limit (so CI can gate on performance).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::reports {

struct MetricDelta {
    std::string metric;
    std::string stat;  // "p50", "p90", "p99", "max", or "failed_rate"
    double base = 0;   // ms (failed_rate: percent of started calls)
    double now = 0;
    double change_percent = 0;  // (now - base) / base * 100; +inf when base is 0 and now is not
    bool regressed = false;     // only p99 and failed_rate can regress
};

struct Comparison {
    std::vector<MetricDelta> rows;
    bool regressed = false;
};

// Compares two summary.json texts (schema mediasim.summary/1). Metrics with no values in either
// run are left out. max_regression is a fraction (0.10 = 10%): a p99 or the failed-call rate
// regressed when new > base * (1 + max_regression) (with no failures in BASE, any failure in NEW
// is a regression). `base_name`/`new_name` name the inputs in errors.
core::Result<Comparison> compare_summaries(std::string_view base_json, std::string_view new_json,
                                           double max_regression,
                                           std::string_view base_name = "BASE",
                                           std::string_view new_name = "NEW");

// Reads BASE/summary.json and NEW/summary.json (a path to a summary.json file is accepted too).
core::Result<Comparison> compare_runs(const std::filesystem::path& base,
                                      const std::filesystem::path& now, double max_regression);

// "10%", "10", "0.5%" → 0.10, 0.10, 0.005. Errors say what was expected.
core::Result<double> parse_percent(std::string_view text);

// The table `mediasim report compare` prints.
std::string format_comparison(const Comparison& c, double max_regression);

}  // namespace mediasim::reports
