#include "simulator/runner.hpp"
#include "simulator/run_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

using namespace mediasim::sim;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Calls that last `length` on the worker's io_context and record one response latency each;
// every 7th call fails with a timeout. The runner under test is real; only the calls are short.
struct TimedCalls {
    std::chrono::milliseconds length{30};
    std::atomic<int> active{0};
    std::atomic<int> max_active{0};
    std::mutex mu;
    std::set<std::uint64_t> numbers;

    CallStarter starter() {
        return [this](const CallSlot& slot, std::function<void(CallOutcome)> done) {
            const int a = ++active;
            int m = max_active.load();
            while (a > m && !max_active.compare_exchange_weak(m, a)) {
            }
            {
                std::lock_guard lk(mu);
                EXPECT_TRUE(numbers.insert(slot.n).second) << "call number " << slot.n << " reused";
            }
            auto timer = std::make_shared<boost::asio::steady_timer>(*slot.io, length);
            timer->async_wait([this, timer, slot, done = std::move(done)](auto) {
                --active;
                slot.stats->record(Metric::response_latency,
                                   1000 * static_cast<std::int64_t>(slot.n));
                CallOutcome o;
                o.n = slot.n;
                o.call_sid = "CA" + std::to_string(slot.n);
                o.completed = slot.n % 7 != 0;
                if (!o.completed) {
                    o.failure = FailureClass::timeout;
                    o.first_error = "no audio from the bot within 10 s";
                }
                done(std::move(o));
            });
        };
    }
};

fs::path temp_dir(const char* name) {
    auto d = fs::temp_directory_path() / fmt::format("mediasim-{}-{}", name, ::getpid());
    fs::remove_all(d);
    return d;
}

}  // namespace

TEST(Runner, RunsEveryCallWithinTheConcurrencyLimitAndWritesItsOutputs) {
    TimedCalls calls;
    RunOptions opts;
    opts.load.calls = 60;
    opts.load.concurrency = 8;
    opts.threads = 2;
    opts.quiet = true;
    opts.interval = 100ms;
    opts.out_dir = temp_dir("runner");
    opts.info.scenario = "synthetic";
    auto r = run_load(opts, calls.starter());

    EXPECT_EQ(r.totals.all.calls_started, 60u);
    EXPECT_EQ(r.totals.all.calls_completed + r.totals.all.calls_failed, 60u);
    EXPECT_EQ(r.totals.all.calls_failed, 8u);  // 7, 14, ..., 56
    EXPECT_EQ(r.totals.failed_by_class[static_cast<int>(FailureClass::timeout)], 8u);
    EXPECT_LE(calls.max_active.load(), 8);
    EXPECT_GE(calls.max_active.load(), 2);
    const auto& h = r.totals.all.metrics[static_cast<int>(Metric::response_latency)];
    EXPECT_EQ(h.total_count(), 60);
    EXPECT_GE(h.max(), 60000);  // within the histogram's 3 significant digits
    EXPECT_LE(h.max(), 60060);

    auto summary = nlohmann::json::parse(std::ifstream(opts.out_dir / "summary.json"));
    EXPECT_EQ(summary["schema"], "mediasim.summary/1");
    EXPECT_EQ(summary["calls"]["started"], 60);
    EXPECT_EQ(summary["calls"]["failed"], 8);
    EXPECT_EQ(summary["calls"]["failed_by_class"]["timeout"], 8);
    EXPECT_EQ(summary["metrics"]["response_latency"]["count"], 60);
    EXPECT_EQ(summary["failure_examples"].size(), 5u);

    std::ifstream jl(opts.out_dir / "calls.jsonl");
    int lines = 0;
    for (std::string line; std::getline(jl, line); ++lines) {
        auto j = nlohmann::json::parse(line);
        EXPECT_TRUE(j.contains("call_sid"));
    }
    EXPECT_EQ(lines, 60);

    // The time series has a line per interval whose counts add up to the totals.
    std::ifstream ts(opts.out_dir / "timeseries.jsonl");
    std::uint64_t started = 0, failed = 0;
    int ts_lines = 0;
    double last_t = 0;
    for (std::string line; std::getline(ts, line); ++ts_lines) {
        auto j = nlohmann::json::parse(line);
        started += j["started"].get<std::uint64_t>();
        failed += j["failed"].get<std::uint64_t>();
        EXPECT_GT(j["t"].get<double>(), last_t);
        last_t = j["t"].get<double>();
        EXPECT_LE(j["active"].get<int>(), 8);
    }
    EXPECT_GE(ts_lines, 1);
    EXPECT_EQ(started, 60u);
    EXPECT_EQ(failed, 8u);

    // The interval logs hold every recorded value, split over the intervals.
    std::ifstream log(opts.out_dir / "response_latency.hlog");
    auto intervals = mediasim::core::read_histogram_log(log);
    ASSERT_TRUE(intervals) << intervals.error().to_string();
    mediasim::core::Histogram sum;
    for (const auto& iv : *intervals) sum.add(iv.histogram);
    EXPECT_EQ(sum, h);
    fs::remove_all(opts.out_dir);
}

TEST(Runner, ShardsTakeDistinctCallNumbers) {
    std::set<std::uint64_t> all;
    for (int shard = 0; shard < 3; ++shard) {
        TimedCalls calls;
        calls.length = 1ms;
        RunOptions opts;
        opts.load.calls = 10;
        opts.load.concurrency = 10;
        opts.threads = 1;
        opts.quiet = true;
        opts.shard = shard;
        opts.shards = 3;
        run_load(opts, calls.starter());
        for (auto n : calls.numbers) EXPECT_TRUE(all.insert(n).second) << n;
    }
    EXPECT_EQ(all.size(), 30u);
    EXPECT_EQ(*all.begin(), 1u);
    EXPECT_EQ(*all.rbegin(), 30u);
}

TEST(Runner, ConstantRatePacesStarts) {
    TimedCalls calls;
    calls.length = 1ms;
    RunOptions opts;
    opts.load.calls = 5;
    opts.load.concurrency = 5;
    opts.load.rate = 20;  // one every 50 ms: the run takes at least 200 ms
    opts.threads = 1;
    opts.quiet = true;
    auto r = run_load(opts, calls.starter());
    EXPECT_GE(r.info.duration_seconds, 0.2);
    EXPECT_EQ(calls.max_active.load(), 1);
}

TEST(WorkerStats, SwapIntervalHandsOverWhatWasRecordedAndGoesOnInTheFreshOne) {
    WorkerStats s;
    s.record(Metric::pacing_error, 100);
    s.record(Metric::pacing_error, 300);
    s.message_sent();
    Interval first = s.swap_interval(Interval());
    EXPECT_EQ(first.metrics[static_cast<int>(Metric::pacing_error)].total_count(), 2);
    EXPECT_EQ(first.metrics[static_cast<int>(Metric::pacing_error)].max(), 300);
    EXPECT_EQ(first.messages_sent, 1u);
    // The fresh interval is the one recorded into now; the first is not touched again.
    s.record(Metric::pacing_error, 7);
    first.reset();
    Interval second = s.swap_interval(std::move(first));
    EXPECT_EQ(second.metrics[static_cast<int>(Metric::pacing_error)].total_count(), 1);
    EXPECT_EQ(second.metrics[static_cast<int>(Metric::pacing_error)].min(), 7);
    EXPECT_EQ(second.messages_sent, 0u);
    // And the reset one that went back in records from zero.
    s.record(Metric::pacing_error, 9);
    const Interval third = s.take_interval();
    EXPECT_EQ(third.metrics[static_cast<int>(Metric::pacing_error)].total_count(), 1);
    EXPECT_EQ(third.metrics[static_cast<int>(Metric::pacing_error)].min(), 9);
}

TEST(TargetFlags, ABadConnectToOrCaFileIsBadUsageBeforeAnythingRuns) {
    TargetFlags f;
    f.target.stream = "ws://127.0.0.1:9/media";
    f.target.connect_to = {"api.example.com:443=127.0.0.1:8443"};
    EXPECT_TRUE(target_from_flags(f).ok());
    f.target.connect_to = {"bogus"};
    auto bad = target_from_flags(f);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().to_string().find("--connect-to: \"bogus\""), std::string::npos)
        << bad.error().to_string();
    f.target.connect_to.clear();
    f.target.ca_file = "/nonexistent/ca.pem";
    bad = target_from_flags(f);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().to_string().find("/nonexistent/ca.pem"), std::string::npos)
        << bad.error().to_string();
}
