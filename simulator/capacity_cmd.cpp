// mediasim capacity SCENARIO --slo '...': raises the concurrency step by step (each step a run of
// the scenario through the load runner), stops at the first step that breaks the SLO, and
// reports the largest concurrency that held (reports/capacity.* does the search and the output).
#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>

#include "core/cli.hpp"
#include "reports/capacity.hpp"
#include "reports/html.hpp"
#include "reports/markdown.hpp"
#include "simulator/commands.hpp"
#include "simulator/run_support.hpp"
#include "simulator/scenario_call.hpp"

namespace mediasim::sim {

namespace fs = std::filesystem;

namespace {

// "30", "1.5" (seconds) or a duration such as "500ms", "2m".
core::Result<Millis> parse_hold(const std::string& text) {
    double secs = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
    if (!text.empty() && ec == std::errc() && p == text.data() + text.size()) {
        if (!(secs > 0) || secs > 86400)
            return core::make_error(fmt::format(
                "\"{}\": expected a number of seconds above 0 (example: --hold 30)", text));
        return Millis(static_cast<Millis::rep>(secs * 1000));
    }
    auto d = parse_duration(text);
    if (!d || d->count() <= 0)
        return core::make_error(
            fmt::format("\"{}\": expected seconds (30) or a duration (500ms, 2m)", text));
    return *d;
}

}  // namespace

int cmd_capacity(Args args) {
    std::string scenario_path, slo_text, hold_text = "30", out, tts_cache, seed;
    int start = 10, step = 10, max = 1000, threads = 0;
    double rate = 0;
    bool quiet = false;
    TargetFlags tf;
    core::ArgParser p(
        "mediasim capacity",
        "Raises the number of concurrent calls step by step (start, start+step, ... up to max), "
        "each step a run of the scenario that keeps that many calls going for --hold seconds, "
        "stops at the first step that breaks the SLO and reports the largest concurrency that "
        "held. Exit 0 when a concurrency held, 1 when the first step already broke the SLO, 2 "
        "on bad usage or input.");
    p.positional("SCENARIO", &scenario_path, "the scenario YAML file (see scenarios/README.md)");
    add_target_flags(p, tf);
    p.option("slo", &slo_text, "OBJECTIVES",
             "e.g. 'response_p99<1500ms,pacing_p99<2ms,failed<0.1%' (METRIC_STAT<LIMIT: "
             "a summary.json metric or its first word, p50/p90/p99/p99.9/max, us/ms/s; "
             "failed and expectations_failed in % of calls started)")
        .option("start", &start, "N", "concurrency of the first step (default 10)", 1)
        .option("step", &step, "N", "concurrency added at each step (default 10)", 1)
        .option("max", &max, "N", "stop after the step at this concurrency (default 1000)", 1)
        .option("hold", &hold_text, "SECONDS",
                "how long each step keeps starting calls (default 30; also 500ms, 2m)")
        .option("rate", &rate, "R",
                "new calls per second within a step (default 0: as fast as the concurrency "
                "allows)",
                0.0)
        .option("out", &out, "DIR",
                "write capacity.json, report.html and each step's run directory (steps/cN) here")
        .option("threads", &threads, "N", "worker threads (default: one per core)", 1)
        .option("seed", &seed, "N", "seed for SIDs and random templates (default: random)")
        .option("tts-cache", &tts_cache, "DIR",
                "cache of spoken texts (default: ~/.cache/mediasim)")
        .flag("quiet", &quiet, "no progress lines (the table is still printed)");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim capacity: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    auto target = target_from_flags(tf);
    if (!target) {
        std::fprintf(stderr, "mediasim capacity: %s\n", target.error().to_string().c_str());
        return 2;
    }
    if (slo_text.empty()) {
        std::fprintf(stderr,
                     "mediasim capacity: --slo: required (example: --slo "
                     "'response_p99<1500ms,pacing_p99<2ms,failed<0.1%%')\n");
        return 2;
    }
    std::vector<std::string> metrics;
    for (int i = 0; i < kMetricCount; ++i)
        metrics.emplace_back(metric_name(static_cast<Metric>(i)));
    auto slo = reports::parse_slo(slo_text, metrics);
    if (!slo) {
        std::fprintf(stderr, "mediasim capacity: --slo: %s",
                     reports::format_slo_error(slo_text, slo.error()).c_str());
        return 2;
    }
    if (max < start) {
        std::fprintf(stderr, "mediasim capacity: --max %d is below --start %d\n", max, start);
        return 2;
    }
    auto hold = parse_hold(hold_text);
    if (!hold) {
        std::fprintf(stderr, "mediasim capacity: --hold: %s\n", hold.error().message.c_str());
        return 2;
    }
    std::uint64_t base_seed = std::random_device{}();
    if (!seed.empty()) {
        auto [end, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), base_seed);
        if (ec != std::errc() || end != seed.data() + seed.size()) {
            std::fprintf(stderr, "mediasim capacity: --seed: \"%s\" is not a whole number\n",
                         seed.c_str());
            return 2;
        }
    }

    LoadOptions lo;
    lo.tts_cache = tts_cache.empty() ? default_tts_cache() : fs::path(tts_cache);
    auto loaded = load_scenario(scenario_path, lo);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
        std::fprintf(stderr, "mediasim capacity: %zu problem(s) in %s; nothing was run\n",
                     loaded.errors.size(), scenario_path.c_str());
        return 2;
    }
    auto scenario = std::make_shared<Scenario>(std::move(*loaded.scenario));
    const CallStarter starter = make_scenario_starter(scenario, *target);

    std::string cmdline = "mediasim capacity";
    for (auto* a : args) cmdline += std::string(" ") + a;
    reports::CapacityPlan plan;
    plan.start = start;
    plan.step = step;
    plan.max = max;
    plan.hold_seconds = static_cast<double>(hold->count()) / 1000.0;
    plan.scenario = scenario->name;
    plan.target = target->webhook.empty() ? target->stream : target->webhook;
    plan.command_line = cmdline;

    const fs::path out_dir = out;
    if (!out.empty()) {
        std::error_code ec;
        fs::create_directories(out_dir / "steps", ec);
        if (ec) {
            std::fprintf(stderr, "mediasim capacity: --out %s: %s\n", out.c_str(),
                         ec.message().c_str());
            return 2;
        }
    }
    if (!quiet)
        std::fprintf(stderr,
                     "mediasim capacity: %s against %s: from %d by %d up to %d concurrent calls, "
                     "%g s each, SLO %s\n",
                     scenario->name.c_str(), plan.target.c_str(), start, step, max,
                     plan.hold_seconds, slo_text.c_str());

    int step_index = 0;
    auto run_step = [&](int concurrency) -> core::Result<reports::StepRun> {
        RunOptions opts;
        opts.load = scenario->load;
        opts.load.concurrency = concurrency;
        opts.load.calls = INT_MAX;  // the hold ends the step
        opts.load.duration = *hold;
        opts.load.arrival = LoadShape::Arrival::constant;
        opts.load.rate = rate;
        opts.threads = threads;
        // A seed per step: CallSids stay distinct across steps.
        opts.seed = base_seed + static_cast<std::uint64_t>(step_index++) * 0x9E3779B97F4A7C15ULL;
        opts.live = !quiet && ::isatty(STDERR_FILENO);
        opts.quiet = quiet;
        opts.info.scenario = scenario->name;
        opts.info.target = plan.target;
        opts.info.command_line =
            fmt::format("{} (step: {} concurrent calls)", cmdline, concurrency);
        reports::StepRun r;
        if (!out.empty()) {
            r.dir = fmt::format("steps/c{}", concurrency);
            opts.out_dir = out_dir / r.dir;
        }
        if (!quiet)
            std::fprintf(stderr, "mediasim capacity: step: %d concurrent call(s) for %g s\n",
                         concurrency, plan.hold_seconds);
        auto result = run_load(opts, starter);
        r.summary_json = summary_json(result.info, result.totals);
        if (!out.empty()) {
            if (auto md = reports::render_markdown(r.summary_json))
                std::ofstream(opts.out_dir / "summary.md") << *md;
            if (auto html = reports::write_html_report(opts.out_dir); !html)
                std::fprintf(stderr,
                             "mediasim capacity: %s: the step's report was not written: %s\n",
                             r.dir.c_str(), html.error().to_string().c_str());
        }
        return r;
    };

    std::fputs(reports::capacity_table_header(*slo).c_str(), stdout);
    std::fflush(stdout);
    bool saved = true;
    auto after_step = [&](const reports::CapacityResult& r) {
        std::fputs(reports::capacity_table_row(*slo, r.steps.back()).c_str(), stdout);
        std::fflush(stdout);
        if (out.empty()) return;
        // Saved after every step: an interrupted search keeps the steps it finished.
        std::ofstream(out_dir / "capacity.json") << reports::capacity_json(r);
        if (auto html = reports::write_capacity_report(out_dir); !html) {
            std::fprintf(stderr, "mediasim capacity: %s\n", html.error().to_string().c_str());
            saved = false;
        }
    };
    auto result = reports::find_capacity(plan, *slo, run_step, after_step);
    if (!result) {
        std::fprintf(stderr, "mediasim capacity: %s\n", result.error().to_string().c_str());
        return 2;
    }
    std::fputs(reports::capacity_verdict(*result).c_str(), stdout);
    if (!out.empty() && saved)
        std::printf("Report: %s\n", (out_dir / "report.html").string().c_str());
    return result->capacity > 0 ? 0 : 1;
}

}  // namespace mediasim::sim
