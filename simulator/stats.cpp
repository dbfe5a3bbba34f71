#include "simulator/stats.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "reports/summary_fields.hpp"

namespace mediasim::sim {

namespace {

constexpr std::array<const char*, kMetricCount> kNames = {
    "webhook_latency", "connect_time", "pacing_error", "response_latency", "mark_rtt",
    "clear_latency",   "leakage",      "jitter",       "underrun",         "delivery_delay",
};
constexpr std::array<const char*, kMetricCount> kDescriptions = {
    "webhook POST sent → TwiML received",
    "TCP + TLS + WebSocket upgrade",
    "frame sent − frame due (20 ms grid; the simulator's own honesty)",
    "end of the caller's words → first audio from the bot (from the scheduled time)",
    "mark received → echoed once its audio has played",
    "barge-in speech start → clear received",
    "bot audio arriving after a clear (µs of audio)",
    "RFC 3550 interarrival jitter of the bot's audio, per call",
    "gaps in the bot's audio while it was speaking",
    "frame released to the server − frame due, with network impairments (what the server got)",
};
constexpr std::array<const char*, kFailureClassCount> kFailureNames = {
    "none",    "connect refused", "tls",   "http status", "twiml invalid", "protocol violation",
    "timeout", "closed early",    "other",
};
constexpr std::size_t kExamplesPerClass = 5;

}  // namespace

const char* metric_name(Metric m) {
    return kNames[static_cast<int>(m)];
}
const char* metric_description(Metric m) {
    return kDescriptions[static_cast<int>(m)];
}
const char* failure_class_name(FailureClass c) {
    return kFailureNames[static_cast<int>(c)];
}

void Interval::add(const Interval& o) {
    for (int i = 0; i < kMetricCount; ++i) metrics[i].add(o.metrics[i]);
    calls_started += o.calls_started;
    calls_completed += o.calls_completed;
    calls_failed += o.calls_failed;
    messages_sent += o.messages_sent;
    messages_received += o.messages_received;
}

void Interval::reset() {
    for (auto& h : metrics) h.reset();
    calls_started = calls_completed = calls_failed = 0;
    messages_sent = messages_received = 0;
}

void WorkerStats::call_ended(const CallOutcome& o) {
    --active_;
    if (o.completed)
        ++interval_.calls_completed;
    else
        ++interval_.calls_failed;
    outcomes_.push_back(o);
}

Interval WorkerStats::swap_interval(Interval&& fresh) {
    Interval out = std::move(interval_);
    interval_ = std::move(fresh);
    return out;
}

Interval WorkerStats::take_interval() {
    Interval out = interval_;  // copies the histograms; a worker does this once per interval
    interval_.reset();
    return out;
}

std::vector<CallOutcome> WorkerStats::take_outcomes() {
    std::vector<CallOutcome> out;
    out.swap(outcomes_);
    return out;
}

void RunTotals::add_outcome(const CallOutcome& o) {
    if (!o.expectation_failures.empty()) ++expectations_failed;
    if (o.completed) return;
    const auto c = static_cast<int>(o.failure);
    ++failed_by_class[c];
    if (failed_by_class[c] <= kExamplesPerClass) failure_examples.push_back(o);
}

std::string summary_json(const RunInfo& info, const RunTotals& t) {
    using nlohmann::ordered_json;
    ordered_json j;
    j["schema"] = "mediasim.summary/1";
    j["scenario"] = info.scenario;
    j["target"] = info.target;
    j["command_line"] = info.command_line;
    j["started_at"] = info.started_at_iso;
    j["duration_seconds"] = info.duration_seconds;
    j["shard"] = {{"index", info.shard}, {"count", info.shards}};
    ordered_json calls;
    calls["started"] = t.all.calls_started;
    calls["completed"] = t.all.calls_completed;
    calls["failed"] = t.all.calls_failed;
    calls["expectations_failed"] = t.expectations_failed;
    ordered_json by_class = ordered_json::object();
    for (int c = 1; c < kFailureClassCount; ++c)
        if (t.failed_by_class[c]) by_class[kFailureNames[c]] = t.failed_by_class[c];
    calls["failed_by_class"] = by_class;
    j["calls"] = calls;
    j["messages"] = {{"sent", t.all.messages_sent}, {"received", t.all.messages_received}};
    ordered_json metrics = ordered_json::object();
    for (int i = 0; i < kMetricCount; ++i) {
        metrics[kNames[i]] = reports::metric_summary<ordered_json>(t.all.metrics[i]);
    }
    j["metrics"] = metrics;
    ordered_json ex = ordered_json::array();
    for (const auto& o : t.failure_examples)
        ex.push_back({{"call", o.n},
                      {"call_sid", o.call_sid},
                      {"class", kFailureNames[static_cast<int>(o.failure)]},
                      {"error", o.first_error}});
    j["failure_examples"] = ex;
    return j.dump(2) + "\n";
}

std::string progress_line(double elapsed, std::int64_t active, const RunTotals& t,
                          const Interval& last, double interval_seconds) {
    auto ms = [](std::int64_t us) { return static_cast<double>(us) / 1000.0; };
    const auto& pace = last.metrics[static_cast<int>(Metric::pacing_error)];
    const auto& resp = t.all.metrics[static_cast<int>(Metric::response_latency)];
    const double rate =
        interval_seconds > 0
            ? static_cast<double>(last.messages_sent + last.messages_received) / interval_seconds
            : 0.0;
    return fmt::format(
        "{:7.1f}s  active {:5}  completed {:6}  failed {:5}  msg/s {:8.0f}  pacing p99 {:6.2f} ms  "
        "response p99 {}",
        elapsed, active, t.all.calls_completed, t.all.calls_failed, rate,
        ms(pace.value_at_percentile(99)),
        resp.total_count() ? fmt::format("{:.0f} ms", ms(resp.value_at_percentile(99))) : "-");
}

}  // namespace mediasim::sim
