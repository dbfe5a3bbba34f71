// Capacity planning (`mediasim capacity`): raise the concurrency step by step, judge each step's
// summary.json by an SLO, stop at the first step that breaks it; the largest concurrency that
// held is the capacity. This file holds the search, capacity.json (schema mediasim.capacity/1),
// the table printed on stdout and the HTML page with a chart of each SLO metric against
// concurrency. Running a step is the caller's (the simulator's runner).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "reports/slo.hpp"

namespace mediasim::reports {

struct CapacityPlan {
    int start = 10;  // first step's concurrency
    int step = 10;   // added at each step
    int max = 1000;  // no step above this
    double hold_seconds = 30;
    // For capacity.json and the report.
    std::string scenario, target, command_line, started_at;
};

struct CapacityStep {
    int concurrency = 0;
    std::string dir;  // the step's run directory, relative to the capacity directory ("" none)
    std::uint64_t started = 0, completed = 0, failed = 0, expectations_failed = 0;
    double duration_seconds = 0;
    SloEvaluation evaluation;
};

struct CapacityResult {
    CapacityPlan plan;
    Slo slo;
    std::vector<CapacityStep> steps;
    int capacity = 0;   // the largest concurrency that held (0: not even plan.start)
    int broken_at = 0;  // the step that broke the SLO (0: none did, up to plan.max)
};

// Runs one step at `concurrency`: returns its summary.json text and its run directory (relative
// to the capacity directory, may be empty), or an error that stops the search.
struct StepRun {
    std::string summary_json;
    std::string dir;
};
using StepRunner = std::function<core::Result<StepRun>(int concurrency)>;

// Steps start, start+step, ... up to max, stopping after the first one that breaks the SLO.
// after_step sees the result so far after every step (to print it and save it as it goes).
core::Result<CapacityResult> find_capacity(
    const CapacityPlan& plan, const Slo& slo, const StepRunner& run_step,
    const std::function<void(const CapacityResult&)>& after_step = {});

// capacity.json (schema "mediasim.capacity/1"; documented in reports/README.md).
std::string capacity_json(const CapacityResult& r);

// The stdout table: a header, then one row per step, then the verdict line.
std::string capacity_table_header(const Slo& slo);
std::string capacity_table_row(const Slo& slo, const CapacityStep& step);
std::string capacity_verdict(const CapacityResult& r);

// The HTML page of a capacity directory (its capacity.json): the verdict, the SLO, a chart of
// each SLO metric against concurrency (with its limit), and the step results linking to each
// step's own report.
core::Result<std::string> render_capacity_report(std::string_view capacity_json_text);
// Writes DIR/report.html from DIR/capacity.json; returns its path.
core::Result<std::filesystem::path> write_capacity_report(const std::filesystem::path& dir);

}  // namespace mediasim::reports
