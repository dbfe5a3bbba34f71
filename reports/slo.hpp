// Service-level objectives over a run's summary.json, as `mediasim capacity --slo` takes them:
//   response_p99<1500ms,pacing_p99<2ms,failed<0.1%
// Each clause is METRIC_STAT < LIMIT (or <=). METRIC is a metric of summary.json by its name
// (response_latency) or its first word (response); STAT is p50, p90, p99, p99.9 (or p99_9) or
// max; LIMIT is a number with a unit: us, ms or s. `failed` (calls failed) and
// `expectations_failed` (calls with a missed expectation) are percentages of the calls started:
// failed<0.1%.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::reports {

struct SloClause {
    std::string text;        // as written, without surrounding spaces: "response_p99<1500ms"
    std::string metric;      // the summary.json metric ("response_latency"), or "failed" /
                             // "expectations_failed" for a rate
    std::string stat;        // the summary.json field: "p50", "p90", "p99", "p99_9", "max"; empty
                             // for a rate
    bool inclusive = false;  // <= rather than <
    double limit = 0;        // in `unit`
    std::string unit;        // "us", "ms", "s", or "%" for a rate
    bool rate() const { return stat.empty(); }
    // summary.json's values are µs: value in `unit` = µs / us_per_unit() (1 for a rate).
    double us_per_unit() const;
    std::string name() const;  // what the clause measures: "response_latency p99", "failed"
};

struct Slo {
    std::string text;
    std::vector<SloClause> clauses;
};

// Parses an SLO expression. `metrics` are the names summary.json uses (the simulator's metrics).
// An error's column (1-based, in Diagnostic::column) says where in the expression it went wrong.
core::Result<Slo> parse_slo(std::string_view text, const std::vector<std::string>& metrics);

// The error of parse_slo as two lines for a terminal: the message, then the expression with a
// caret under the column.
std::string format_slo_error(std::string_view text, const core::Diagnostic& error);

struct SloCheck {
    std::optional<double> value;  // in the clause's unit; empty: not measured in this run
    bool held = false;            // value < limit (<= when inclusive); never when not measured
};

struct SloEvaluation {
    std::vector<SloCheck> checks;  // one per clause, in order
    bool held = false;             // every clause held
};

// Evaluates the SLO against a summary.json text (schema mediasim.summary/1). A metric with no
// values in the run, or a rate of a run that started no call, does not hold.
core::Result<SloEvaluation> evaluate_slo(const Slo& slo, std::string_view summary_json);

}  // namespace mediasim::reports
