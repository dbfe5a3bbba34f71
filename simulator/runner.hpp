// The load runner: thousands of calls in one process on a few threads. One io_context per
// worker thread (no thread per call); a scheduler starts calls by the arrival schedule within
// the concurrency limit; a reporter gathers each worker's interval once per second, prints
// progress, and appends HdrHistogram interval logs. Workers share nothing; totals merge at the
// end.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "simulator/scenario.hpp"
#include "simulator/stats.hpp"

namespace boost::asio {
class io_context;
}

namespace mediasim::sim {

// What a call gets from the runner.
struct CallSlot {
    std::uint64_t n = 0;  // call number from 1 (distinct across shards: see RunOptions::shard)
    int shard = 0;
    std::uint64_t seed = 0;
    boost::asio::io_context* io = nullptr;      // the worker's io_context: run everything on it
    WorkerStats* stats = nullptr;               // the worker's statistics: record into it
    std::chrono::steady_clock::time_point due;  // when the call was scheduled to start
};

// Starts one call on slot.io and calls done exactly once, on that io_context, when it ends.
using CallStarter =
    std::function<void(const CallSlot& slot, std::function<void(CallOutcome)> done)>;

struct RunOptions {
    LoadShape load;
    int threads = 0;  // 0: one per core
    std::chrono::milliseconds interval{1000};
    bool live = false;  // a terminal: rewrite one progress line; otherwise a line per interval
    bool quiet = false;
    std::filesystem::path out_dir;  // empty: write nothing
    int shard = 0;
    int shards = 1;
    std::uint64_t seed = 1;
    RunInfo info;  // scenario, target, command line (for summary.json)
    // Called on the runner's thread after every interval is gathered (start and length in
    // seconds since the run began, the merged interval, the calls active): soak windows.
    std::function<void(double start_s, double length_s, const Interval&, std::int64_t active)>
        on_interval;
};

struct RunResult {
    RunTotals totals;
    RunInfo info;
};

RunResult run_load(const RunOptions& opts, const CallStarter& start);

}  // namespace mediasim::sim
