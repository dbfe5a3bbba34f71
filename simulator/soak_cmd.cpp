// mediasim soak SCENARIO --duration 1h: calls back to back at a fixed concurrency for a long time,
// and what drifts: response latency, the server's audio jitter, the failure rate and the server's
// memory, per window (default a minute). Writes the run's usual outputs plus soak.jsonl (a line
// per window), soak.json (the drift verdict) and soak.html (the time-series charts).
#include <fmt/format.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/cli.hpp"
#include "reports/html.hpp"
#include "simulator/commands.hpp"
#include "simulator/http_client.hpp"
#include "simulator/run_support.hpp"
#include "simulator/soak.hpp"

namespace mediasim::sim {

std::optional<std::uint64_t> rss_from_proc(int pid) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            std::uint64_t kb = 0;
            std::istringstream ss(line.substr(6));
            if (ss >> kb) return kb * 1024;
        }
    }
    return std::nullopt;
}

std::optional<std::uint64_t> rss_from_metrics(std::string_view text) {
    // process_resident_memory_bytes (the Prometheus client convention) first, else any gauge
    // named *_resident_memory_bytes (mediasim-server: mediasim_server_resident_memory_bytes).
    std::optional<std::uint64_t> fallback;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.empty() || line.front() == '#') continue;
        auto sp = line.find_first_of(" {");
        if (sp == std::string_view::npos) continue;
        std::string_view name = line.substr(0, sp);
        auto vpos = sp;
        if (line[sp] == '{') {
            auto close = line.find('}', sp);
            if (close == std::string_view::npos) continue;
            vpos = line.find(' ', close);
        }
        if (vpos == std::string_view::npos) continue;
        std::string value(line.substr(vpos + 1));
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        if (auto sp2 = value.find(' '); sp2 != std::string::npos) value.resize(sp2);  // timestamp
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || v < 0) continue;
        if (name == "process_resident_memory_bytes") return static_cast<std::uint64_t>(v);
        constexpr std::string_view suffix = "_resident_memory_bytes";
        if (!fallback && name.size() > suffix.size() &&
            name.substr(name.size() - suffix.size()) == suffix)
            fallback = static_cast<std::uint64_t>(v);
    }
    return fallback;
}

std::string SoakWindow::json() const {
    nlohmann::ordered_json j;
    j["window"] = index;
    j["t"] = end_s;
    j["started"] = iv.calls_started;
    j["completed"] = iv.calls_completed;
    j["failed"] = iv.calls_failed;
    const auto ended = iv.calls_completed + iv.calls_failed;
    j["failure_rate"] = ended ? static_cast<double>(iv.calls_failed) / ended : 0.0;
    j["active"] = active;
    auto dist = [&](Metric m) {
        const auto& h = iv.metrics[static_cast<int>(m)];
        nlohmann::ordered_json d;
        d["count"] = h.total_count();
        if (h.total_count() > 0) {
            d["p50"] = h.value_at_percentile(50);
            d["p99"] = h.value_at_percentile(99);
            d["max"] = h.max();
        }
        return d;
    };
    j["response_latency_us"] = dist(Metric::response_latency);
    j["jitter_us"] = dist(Metric::jitter);
    j["pacing_error_us"] = dist(Metric::pacing_error);
    j["webhook_latency_us"] = dist(Metric::webhook_latency);
    if (rss_bytes) j["server_rss_bytes"] = *rss_bytes;
    return j.dump();
}

namespace {

double least_squares_slope(const std::vector<std::pair<double, double>>& pts) {
    if (pts.size() < 2) return 0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (auto [x, y] : pts) {
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    const double n = static_cast<double>(pts.size());
    const double den = n * sxx - sx * sx;
    return den == 0 ? 0 : (n * sxy - sx * sy) / den;
}

}  // namespace

nlohmann::ordered_json soak_verdict(const std::vector<SoakWindow>& windows, double window_s) {
    nlohmann::ordered_json v;
    v["windows"] = windows.size();
    v["window_seconds"] = window_s;
    // The first window is warm-up (the server's pools and caches fill): growth counts after it.
    std::vector<std::pair<double, double>> mem, lat;
    for (std::size_t i = 1; i < windows.size(); ++i) {
        const auto& w = windows[i];
        if (w.rss_bytes) mem.emplace_back(w.end_s / 60.0, static_cast<double>(*w.rss_bytes));
        const auto& h = w.iv.metrics[static_cast<int>(Metric::response_latency)];
        if (h.total_count() > 0)
            lat.emplace_back(w.end_s / 60.0, static_cast<double>(h.value_at_percentile(99)));
    }
    if (!mem.empty()) {
        v["memory_first_bytes"] = mem.front().second;
        v["memory_last_bytes"] = mem.back().second;
        v["memory_slope_bytes_per_minute"] = least_squares_slope(mem);
    }
    if (!lat.empty()) {
        v["response_p99_first_us"] = lat.front().second;
        v["response_p99_last_us"] = lat.back().second;
        v["response_p99_slope_us_per_minute"] = least_squares_slope(lat);
    }
    std::uint64_t failed = 0, ended = 0;
    for (const auto& w : windows) {
        failed += w.iv.calls_failed;
        ended += w.iv.calls_failed + w.iv.calls_completed;
    }
    v["calls_ended"] = ended;
    v["calls_failed"] = failed;
    return v;
}

std::string soak_html(const std::vector<SoakWindow>& windows, const nlohmann::ordered_json& verdict,
                      const std::string& title) {
    using reports::Series;
    const std::string xl = "minutes since start";
    Series mem{"server RSS (MB)", {}}, p50{"p50", {}}, p99{"p99", {}}, jit{"jitter p99", {}},
        fail{"failed calls (%)", {}}, pace{"pacing p99", {}};
    for (const auto& w : windows) {
        const double x = w.end_s / 60.0;
        if (w.rss_bytes) mem.points.emplace_back(x, static_cast<double>(*w.rss_bytes) / 1e6);
        const auto& r = w.iv.metrics[static_cast<int>(Metric::response_latency)];
        if (r.total_count()) {
            p50.points.emplace_back(x, r.value_at_percentile(50) / 1000.0);
            p99.points.emplace_back(x, r.value_at_percentile(99) / 1000.0);
        }
        const auto& j = w.iv.metrics[static_cast<int>(Metric::jitter)];
        if (j.total_count()) jit.points.emplace_back(x, j.value_at_percentile(99) / 1000.0);
        const auto& pe = w.iv.metrics[static_cast<int>(Metric::pacing_error)];
        if (pe.total_count()) pace.points.emplace_back(x, pe.value_at_percentile(99) / 1000.0);
        const auto ended = w.iv.calls_completed + w.iv.calls_failed;
        fail.points.emplace_back(x, ended ? 100.0 * w.iv.calls_failed / ended : 0.0);
    }
    std::string h = reports::html_page_start("Soak: " + title);
    h += "<h1>Soak: " + reports::html_escape(title) +
         "</h1>\n<pre style=\"background:#f4f4f4;padding:1em\">" +
         reports::html_escape(verdict.dump(2)) + "</pre>\n";
    auto chart = [&](std::vector<Series> s, std::string t, std::string yl) {
        reports::ChartOptions o;
        o.title = std::move(t);
        o.x_label = xl;
        o.y_label = std::move(yl);
        h += reports::svg_line_chart(s, o) + "\n";
    };
    if (!mem.points.empty()) chart({mem}, "Server memory per window", "MB");
    chart({p50, p99}, "Response latency per window", "ms");
    chart({jit, pace}, "Server audio jitter and send pacing (p99) per window", "ms");
    chart({fail}, "Failure rate per window", "%");
    h += "<p>Raw data: soak.jsonl (one line per window), soak.json, and the run's summary.json "
         "and report.html.</p></body></html>\n";
    return h;
}

namespace {

// Samples the server's memory every `period` on its own thread (a slow /metrics must not hold
// up the runner).
class MemorySampler {
  public:
    MemorySampler(int pid, std::string metrics_url, std::chrono::milliseconds period)
        : pid_(pid), url_(std::move(metrics_url)), period_(period) {
        if (pid_ > 0 || !url_.empty()) thread_ = std::thread([this] { loop(); });
    }
    ~MemorySampler() {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    // The latest sample (nullopt: none yet, or the last one failed) and the last error.
    std::optional<std::uint64_t> latest() const {
        const auto v = latest_.load();
        return v ? std::optional<std::uint64_t>(v) : std::nullopt;
    }
    std::string error() const {
        std::lock_guard lk(mu_);
        return error_;
    }

  private:
    void loop() {
        std::unique_lock lk(mu_);
        while (!stop_) {
            lk.unlock();
            std::string err;
            std::optional<std::uint64_t> v;
            if (pid_ > 0) {
                v = rss_from_proc(pid_);
                if (!v)
                    err = fmt::format("/proc/{}/status: no VmRSS (has the process ended?)", pid_);
            } else {
                v = fetch(err);
            }
            latest_.store(v.value_or(0));
            lk.lock();
            error_ = err;
            cv_.wait_for(lk, period_, [this] { return stop_; });
        }
    }
    std::optional<std::uint64_t> fetch(std::string& err) {
        auto url = core::parse_url(url_);
        if (!url) {
            err = url.error().to_string();
            return std::nullopt;
        }
        boost::asio::io_context io;
        auto net = std::make_shared<NetConfig>();
        net->request_timeout = std::chrono::milliseconds(5000);
        HttpRequest req;
        req.method = "GET";
        req.url = *url;
        HttpOutcome out;
        http_request(io, net, req, [&](HttpOutcome o) { out = std::move(o); });
        io.run();
        if (!out.ok) {
            err = fmt::format("{}: {}", url_, out.error);
            return std::nullopt;
        }
        if (out.response.status != 200) {
            err = fmt::format("{}: HTTP {}", url_, out.response.status);
            return std::nullopt;
        }
        auto v = rss_from_metrics(out.response.body);
        if (!v) err = fmt::format("{}: no process_resident_memory_bytes in the metrics", url_);
        return v;
    }

    int pid_;
    std::string url_;
    std::chrono::milliseconds period_;
    std::thread thread_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::string error_;
    std::atomic<std::uint64_t> latest_{0};
};

}  // namespace

int cmd_soak(Args args) {
    std::string scenario_path, duration = "1h", window = "1m", out, metrics_url, tts_cache;
    int concurrency = 0, threads = 0, pid = 0;
    double rate = 0;
    TargetFlags tf;
    core::ArgParser p("mediasim soak",
                      "Runs a scenario's calls back to back at a fixed concurrency for a long "
                      "time and reports, per window, response latency, the server's audio "
                      "jitter, the failure rate and the server's memory: growth or not.");
    p.positional("SCENARIO", &scenario_path, "the scenario YAML file (see scenarios/README.md)");
    add_target_flags(p, tf);
    p.option("duration", &duration, "TIME", "how long to keep starting calls (default 1h)")
        .option("concurrency", &concurrency, "C",
                "calls at once (default: the scenario's load.concurrency)", 1)
        .option("rate", &rate, "R",
                "at most this many new calls per second (default 0: back to back)", 0.0)
        .option("window", &window, "TIME", "one soak.jsonl line per window (default 1m)")
        .option("server-pid", &pid, "PID", "sample the server's memory from /proc/PID/status", 1)
        .option("metrics-url", &metrics_url, "URL",
                "sample the server's memory from its Prometheus /metrics "
                "(process_resident_memory_bytes)")
        .option("out", &out, "DIR", "write soak.jsonl, soak.json, soak.html and the run's files")
        .option("threads", &threads, "N", "worker threads (default: one per core)", 1)
        .option("tts-cache", &tts_cache, "DIR",
                "cache of spoken texts (default: ~/.cache/mediasim)");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim soak: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    auto target = target_from_flags(tf);
    if (!target) {
        std::fprintf(stderr, "mediasim soak: %s\n", target.error().to_string().c_str());
        return 2;
    }
    if (pid > 0 && !metrics_url.empty()) {
        std::fprintf(stderr, "mediasim soak: give at most one of --server-pid and --metrics-url\n");
        return 2;
    }
    if (!metrics_url.empty()) {
        if (auto u = core::parse_url(metrics_url); !u) {
            std::fprintf(stderr, "mediasim soak: --metrics-url: %s\n",
                         u.error().to_string().c_str());
            return 2;
        }
    }
    auto dur = parse_duration(duration);
    auto win = parse_duration(window);
    if (!dur || !win || win->count() <= 0) {
        std::fprintf(stderr, "mediasim soak: --%s: \"%s\" is not a duration (example: 30m)\n",
                     !dur ? "duration" : "window", !dur ? duration.c_str() : window.c_str());
        return 2;
    }
    if (pid > 0 && !rss_from_proc(pid)) {
        std::fprintf(stderr, "mediasim soak: --server-pid %d: no such process (or no VmRSS)\n",
                     pid);
        return 2;
    }
    if (out.empty()) out = "soak-out";
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (ec) {
        std::fprintf(stderr, "mediasim soak: --out %s: %s\n", out.c_str(), ec.message().c_str());
        return 2;
    }

    const double window_s = std::chrono::duration<double>(*win).count();
    MemorySampler sampler(
        pid, metrics_url,
        std::min<std::chrono::milliseconds>(std::chrono::milliseconds(5000), *win / 4));
    std::vector<SoakWindow> windows;
    SoakWindow cur;
    std::ofstream jsonl(std::filesystem::path(out) / "soak.jsonl");
    auto close_window = [&](double end_s) {
        cur.end_s = end_s;
        cur.rss_bytes = sampler.latest();
        jsonl << cur.json() << '\n';
        jsonl.flush();
        const auto& r = cur.iv.metrics[static_cast<int>(Metric::response_latency)];
        std::fprintf(stderr,
                     "soak window %zu (%.0f s): %llu ended, %llu failed, response p99 %s, "
                     "server RSS %s\n",
                     cur.index, end_s,
                     static_cast<unsigned long long>(cur.iv.calls_completed + cur.iv.calls_failed),
                     static_cast<unsigned long long>(cur.iv.calls_failed),
                     r.total_count()
                         ? fmt::format("{:.1f} ms", r.value_at_percentile(99) / 1000.0).c_str()
                         : "-",
                     cur.rss_bytes ? fmt::format("{:.1f} MB", *cur.rss_bytes / 1e6).c_str() : "-");
        windows.push_back(cur);
        cur.iv.reset();
        cur.rss_bytes.reset();
        cur.index = windows.size();
    };

    double last_end_s = 0;
    RunRequest req;
    req.target = std::move(*target);
    req.scenario_path = scenario_path;
    req.out_dir = out;
    req.tts_cache = tts_cache;
    req.threads = threads;
    req.quiet = true;
    req.calls = INT_MAX;
    if (concurrency > 0) req.concurrency = concurrency;
    req.rate = rate;
    req.duration = *dur;
    req.constant_arrival = true;
    req.on_interval = [&](double start_s, double len_s, const Interval& iv, std::int64_t active) {
        cur.iv.add(iv);
        cur.active = active;
        const double end_s = start_s + len_s;
        last_end_s = end_s;
        if (end_s >= static_cast<double>(cur.index + 1) * window_s - 1e-3) close_window(end_s);
    };
    std::string cmdline = "mediasim soak";
    for (auto* a : args) cmdline += std::string(" ") + a;
    req.command_line = cmdline;
    std::fprintf(stderr, "mediasim soak: %s for %s, a window every %s\n", scenario_path.c_str(),
                 duration.c_str(), window.c_str());
    const int rc = run_scenario(req);
    if (rc == 2) return 2;
    // The last, partial window, when it has data.
    if (cur.iv.calls_completed + cur.iv.calls_failed + cur.iv.calls_started > 0) {
        close_window(last_end_s);
    }
    auto verdict = soak_verdict(windows, window_s);
    if (auto e = sampler.error(); !e.empty()) verdict["memory_error"] = e;
    std::ofstream(std::filesystem::path(out) / "soak.json") << verdict.dump(2) << '\n';
    std::ofstream(std::filesystem::path(out) / "soak.html")
        << soak_html(windows, verdict, scenario_path);
    std::printf("Soak: %s\n%s\n", (std::filesystem::path(out) / "soak.html").string().c_str(),
                verdict.dump(2).c_str());
    return rc;
}

}  // namespace mediasim::sim
