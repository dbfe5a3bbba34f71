#include "simulator/runner.hpp"

#include <fmt/format.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "simulator/arrival.hpp"

namespace mediasim::sim {
namespace {

using Clock = std::chrono::steady_clock;

struct Worker {
    boost::asio::io_context io{1};
    WorkerStats stats;
    std::thread thread;
};

std::string iso_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string outcome_json(const CallOutcome& o) {
    nlohmann::ordered_json j;
    j["call"] = o.n;
    j["call_sid"] = o.call_sid;
    j["status"] = o.completed ? "completed" : "failed";
    if (!o.completed) {
        j["class"] = failure_class_name(o.failure);
        j["error"] = o.first_error;
    }
    j["duration_seconds"] = o.duration_seconds;
    j["frames_sent"] = o.frames_sent;
    j["frames_received"] = o.frames_received;
    if (!o.expectation_failures.empty()) j["expectations_failed"] = o.expectation_failures;
    if (!o.handoff.empty()) j["handoff"] = o.handoff;
    return j.dump();
}

// One line of timeseries.jsonl: what the report's time-series charts plot.
std::string timeseries_json(double start_s, double length_s, const Interval& iv,
                            std::int64_t active) {
    nlohmann::ordered_json j;
    j["t"] = start_s + length_s;
    j["length"] = length_s;
    j["active"] = active;
    j["started"] = iv.calls_started;
    j["completed"] = iv.calls_completed;
    j["failed"] = iv.calls_failed;
    j["sent"] = iv.messages_sent;
    j["received"] = iv.messages_received;
    nlohmann::ordered_json p99 = nlohmann::ordered_json::object();
    for (int i = 0; i < kMetricCount; ++i) {
        const auto& h = iv.metrics[i];
        if (h.total_count() > 0)
            p99[metric_name(static_cast<Metric>(i))] = h.value_at_percentile(99);
    }
    j["p99_us"] = p99;
    return j.dump();
}

// Output files of a run: calls.jsonl and one HdrHistogram interval log per metric.
class Outputs {
  public:
    explicit Outputs(const std::filesystem::path& dir, double start_epoch) {
        if (dir.empty()) return;
        std::filesystem::create_directories(dir);
        calls_.open(dir / "calls.jsonl");
        series_.open(dir / "timeseries.jsonl");
        for (int i = 0; i < kMetricCount; ++i) {
            logs_[i] = std::make_unique<std::ofstream>(
                dir / (std::string(metric_name(static_cast<Metric>(i))) + ".hlog"));
            writers_[i] = std::make_unique<core::HistogramLogWriter>(*logs_[i]);
            writers_[i]->write_header(start_epoch,
                                      fmt::format("mediasim {} (microseconds; "
                                                  "Interval_Max in milliseconds)",
                                                  metric_name(static_cast<Metric>(i))));
        }
        enabled_ = true;
    }
    void interval(double start_s, double length_s, const Interval& iv, std::int64_t active) {
        if (!enabled_) return;
        series_ << timeseries_json(start_s, length_s, iv, active) << '\n';
        series_.flush();
        for (int i = 0; i < kMetricCount; ++i) {
            writers_[i]->write_interval(metric_name(static_cast<Metric>(i)), start_s, length_s,
                                        iv.metrics[i]);
            logs_[i]->flush();
        }
    }
    void outcomes(const std::vector<CallOutcome>& os) {
        if (!enabled_) return;
        for (const auto& o : os) calls_ << outcome_json(o) << '\n';
        calls_.flush();
    }

  private:
    bool enabled_ = false;
    std::ofstream calls_;
    std::ofstream series_;
    std::array<std::unique_ptr<std::ofstream>, kMetricCount> logs_;
    std::array<std::unique_ptr<core::HistogramLogWriter>, kMetricCount> writers_;
};

}  // namespace

RunResult run_load(const RunOptions& opts, const CallStarter& start) {
    const int nthreads = opts.threads > 0
                             ? opts.threads
                             : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards;
    for (int i = 0; i < nthreads; ++i) {
        workers.push_back(std::make_unique<Worker>());
        guards.push_back(boost::asio::make_work_guard(workers.back()->io));
    }
    for (auto& w : workers) w->thread = std::thread([&io = w->io] { io.run(); });

    RunResult result;
    result.info = opts.info;
    result.info.started_at_iso = iso_now();
    result.info.shard = opts.shard;
    result.info.shards = opts.shards;
    const double start_epoch =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    Outputs outputs(opts.out_dir, start_epoch);

    std::mutex mu;
    std::condition_variable cv;
    std::int64_t active = 0;  // guarded by mu
    std::uint64_t ended = 0;  // guarded by mu

    // Gathers every worker's interval on its own thread and merges them. Each worker swaps its
    // interval for a zeroed spare (O(1) on its thread); merging and zeroing the returned one
    // for next time happen here.
    std::vector<Interval> spares(workers.size());
    auto gather = [&](Interval& merged, std::vector<CallOutcome>& outcomes) {
        std::vector<std::future<std::pair<Interval, std::vector<CallOutcome>>>> fs;
        for (std::size_t i = 0; i < workers.size(); ++i) {
            auto p =
                std::make_shared<std::promise<std::pair<Interval, std::vector<CallOutcome>>>>();
            fs.push_back(p->get_future());
            auto fresh = std::make_shared<Interval>(std::move(spares[i]));
            boost::asio::post(workers[i]->io, [p, fresh, &w = workers[i]] {
                p->set_value({w->stats.swap_interval(std::move(*fresh)), w->stats.take_outcomes()});
            });
        }
        for (std::size_t i = 0; i < fs.size(); ++i) {
            auto [iv, os] = fs[i].get();
            merged.add(iv);
            iv.reset();
            spares[i] = std::move(iv);
            outcomes.insert(outcomes.end(), std::make_move_iterator(os.begin()),
                            std::make_move_iterator(os.end()));
        }
    };

    const auto t0 = Clock::now();
    auto last_report = t0;
    ArrivalSchedule arrivals(opts.load, opts.seed);
    const std::uint64_t total = static_cast<std::uint64_t>(opts.load.calls);
    std::uint64_t started = 0;
    std::size_t next_worker = 0;
    auto next_due = t0 + arrivals.next();

    auto report = [&](bool final_report) {
        Interval iv;
        std::vector<CallOutcome> os;
        gather(iv, os);
        const auto now = Clock::now();
        const double from = std::chrono::duration<double>(last_report - t0).count();
        const double len = std::chrono::duration<double>(now - last_report).count();
        last_report = now;
        result.totals.all.add(iv);
        for (const auto& o : os) result.totals.add_outcome(o);
        std::int64_t act;
        {
            std::lock_guard lk(mu);
            act = active;
        }
        outputs.interval(from, len, iv, act);
        outputs.outcomes(os);
        if (opts.on_interval) opts.on_interval(from, len, iv, act);
        if (opts.quiet) return;
        const auto line = progress_line(from + len, act, result.totals, iv, len);
        if (opts.live) {
            std::fprintf(stderr, "\r%s%s", line.c_str(), final_report ? "\n" : "");
        } else {
            std::fprintf(stderr, "%s\n", line.c_str());
        }
        std::fflush(stderr);
    };

    while (true) {
        const auto now = Clock::now();
        const bool stop_starting =
            started >= total || (opts.load.duration && now - t0 >= *opts.load.duration);
        {
            std::unique_lock lk(mu);
            if (stop_starting && active == 0) break;
        }
        if (now - last_report >= opts.interval) report(false);
        auto wake = last_report + opts.interval;
        if (!stop_starting) {
            std::unique_lock lk(mu);
            if (active < opts.load.concurrency && now >= next_due) {
                ++active;
                lk.unlock();
                ++started;
                CallSlot slot;
                // Distinct call numbers across shards: shard i of N takes i+1, i+1+N, ...
                slot.n = static_cast<std::uint64_t>(opts.shard) + 1 +
                         (started - 1) * static_cast<std::uint64_t>(opts.shards);
                slot.shard = opts.shard;
                slot.seed = opts.seed ^ (slot.n * 0x9E3779B97F4A7C15ULL);
                // Latencies count from when the call was due; a call that waited for a free
                // slot (the concurrency limit is the client's choice) is due when one freed.
                slot.due = std::max(next_due, now);
                Worker& w = *workers[next_worker++ % workers.size()];
                slot.io = &w.io;
                slot.stats = &w.stats;
                boost::asio::post(w.io, [slot, &start, &mu, &cv, &active, &ended] {
                    slot.stats->call_started();
                    start(slot, [stats = slot.stats, &mu, &cv, &active, &ended](CallOutcome o) {
                        stats->call_ended(o);
                        std::lock_guard lk2(mu);
                        --active;
                        ++ended;
                        cv.notify_all();
                    });
                });
                if (started < total) next_due = t0 + arrivals.next();
                continue;
            }
            if (active < opts.load.concurrency) wake = std::min(wake, next_due);
        }
        std::unique_lock lk(mu);
        cv.wait_until(lk, wake);
    }
    report(true);
    for (auto& g : guards) g.reset();
    for (auto& w : workers) w->thread.join();

    result.info.duration_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!opts.out_dir.empty()) {
        std::ofstream(opts.out_dir / "summary.json") << summary_json(result.info, result.totals);
    }
    return result;
}

}  // namespace mediasim::sim
