// `mediasim report merge DIR... --out DIR`: merges the run directories of the shards of one run
// exactly. Counts are added; each metric's histogram is the sum of every interval of every
// shard's <metric>.hlog (percentiles are recomputed from it, never averaged); the interval logs,
// calls.jsonl and timeseries.jsonl are merged; then summary.md and report.html are written.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/histogram.hpp"
#include "core/result.hpp"

namespace mediasim::reports {

// How many failure examples a merged summary keeps.
inline constexpr std::size_t kMergedFailureExamples = 50;

struct MergeResult {
    std::filesystem::path out;
    std::map<std::string, core::Histogram> metrics;  // merged histogram per metric
    std::string summary_json;                        // what was written as OUT/summary.json
};

// Merges the run directories `inputs` into `out` (created if needed). Errors name the input file
// that was missing or invalid.
core::Result<MergeResult> merge_runs(const std::vector<std::filesystem::path>& inputs,
                                     const std::filesystem::path& out);

// The sum of every interval of one HdrHistogram interval log (an error names the file).
core::Result<core::Histogram> histogram_of_log(const std::filesystem::path& hlog);

}  // namespace mediasim::reports
