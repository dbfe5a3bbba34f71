// What a run measures, how it is gathered without locks on the hot path, and what it writes.
//
// Each worker thread owns a WorkerStats; calls on that worker record into it directly (never a
// histogram per call: a 1 µs..1 h histogram at 3 digits is ~200 KB). Once per interval the
// run's reporter asks every worker (on its own thread) for the interval just ended
// (take_interval), merges them, prints the progress line and appends the interval to the
// HdrHistogram logs. At the end the totals are merged exactly (counts added, never percentiles
// averaged) and written as summary.json.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/histogram.hpp"

namespace mediasim::sim {

enum class Metric : int {
    webhook_latency,   // webhook POST → TwiML received
    connect_time,      // TCP + TLS + WebSocket upgrade
    pacing_error,      // when each frame left vs when it was due (the simulator's own honesty)
    response_latency,  // end of the caller's words → first bot audio, from the scheduled time
    mark_rtt,          // mark received → echoed (its audio played out)
    clear_latency,     // barge-in speech start → clear received
    leakage,           // bot audio (µs of audio) arriving after a clear
    jitter,            // RFC 3550 interarrival jitter of the bot's audio, per call
    underrun,          // gaps in the bot's audio while it was speaking (µs each)
    delivery_delay,    // with network impairments: frame handed to the socket − frame due
};
inline constexpr int kMetricCount = 10;
const char* metric_name(Metric m);         // "response_latency", ...
const char* metric_description(Metric m);  // one line for reports

// Failure classes of a call (issue: every failed call gets one and its first error message).
enum class FailureClass : int {
    none,
    connect_refused,
    tls,
    http_status,
    twiml_invalid,
    protocol_violation,
    timeout,
    closed_early,
    other,
};
inline constexpr int kFailureClassCount = 9;
const char* failure_class_name(FailureClass c);  // "connect refused", ...

// The end of one call, as the runner sees it.
struct CallOutcome {
    std::uint64_t n = 0;  // call number from 1
    std::string call_sid;
    bool completed = false;  // false: failed (see failure)
    FailureClass failure = FailureClass::none;
    std::string first_error;
    std::vector<std::string> expectation_failures;  // e.g. "steps[3]: response 2140 ms > 1500 ms"
    double duration_seconds = 0;
    std::uint64_t frames_sent = 0;
    std::uint64_t frames_received = 0;
    std::string handoff;  // <Dial> target, when the call was handed off
};

struct Interval {
    std::array<core::Histogram, kMetricCount> metrics;
    std::uint64_t calls_started = 0;
    std::uint64_t calls_completed = 0;
    std::uint64_t calls_failed = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_received = 0;
    void add(const Interval& other);
    void reset();
};

class WorkerStats {
  public:
    void record(Metric m, std::int64_t value_us) {
        interval_.metrics[static_cast<int>(m)].record(value_us);
    }
    void call_started() {
        ++interval_.calls_started;
        ++active_;
    }
    void call_ended(const CallOutcome& o);
    void message_sent() { ++interval_.messages_sent; }
    void message_received() { ++interval_.messages_received; }
    std::int64_t active() const { return active_; }

    // Returns the interval so far and starts a new one. Call on the worker's thread.
    Interval take_interval();
    // The same in O(1): returns the interval so far and goes on in `fresh`, which must be
    // reset (the runner's 1 Hz report: the copy and the zeroing of ~2 MB of histograms happen
    // on its thread, not in a gap of the worker's pacing).
    Interval swap_interval(Interval&& fresh);
    // Outcomes of ended calls since the last take (for calls.jsonl). Call on the worker's thread.
    std::vector<CallOutcome> take_outcomes();

  private:
    Interval interval_;
    std::vector<CallOutcome> outcomes_;
    std::int64_t active_ = 0;
};

// Totals of a whole run, and what is written from them.
struct RunTotals {
    Interval all;  // every interval added
    std::array<std::uint64_t, kFailureClassCount> failed_by_class{};
    std::uint64_t expectations_failed = 0;      // calls with at least one missed expectation
    std::vector<CallOutcome> failure_examples;  // the first few per class
    void add_outcome(const CallOutcome& o);
};

struct RunInfo {
    std::string scenario;
    std::string target;  // the webhook or stream URL
    std::string command_line;
    std::string started_at_iso;  // UTC
    double duration_seconds = 0;
    int shard = 0;
    int shards = 1;
};

// summary.json (schema "mediasim.summary/1", documented in simulator/README.md).
std::string summary_json(const RunInfo& info, const RunTotals& totals);
// One line per interval for CI logs, or the live line on a terminal.
std::string progress_line(double elapsed_seconds, std::int64_t active, const RunTotals& totals,
                          const Interval& last, double interval_seconds);

}  // namespace mediasim::sim
