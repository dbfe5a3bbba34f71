// mediasim report DIR: renders (again) the HTML report and the Markdown summary of a run.
// mediasim report merge DIR... --out DIR: merges the run directories of shards exactly.
// mediasim report compare BASE NEW [--max-regression 10%]: exits 1 on a regression (CI gate).
// (A run directory named "merge" or "compare" is reached as ./merge.)
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/cli.hpp"
#include "reports/capacity.hpp"
#include "reports/compare.hpp"
#include "reports/html.hpp"
#include "reports/markdown.hpp"
#include "reports/merge.hpp"
#include "simulator/commands.hpp"

namespace mediasim::sim {

namespace {

int report_merge(Args args) {
    std::vector<std::string> dirs;
    std::string out;
    core::ArgParser p("mediasim report merge",
                      "Merges the --out directories of the shards of one run (mediasim run "
                      "--shard I/N) exactly: counts and histograms added, percentiles recomputed; "
                      "writes summary.json, the .hlog logs, calls.jsonl, timeseries.jsonl, "
                      "summary.md and report.html into --out.");
    p.rest("DIR", &dirs, "the --out directories of the shards", 1)
        .option("out", &out, "DIR", "where the merged run directory is written");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim report merge: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    if (out.empty()) {
        std::fprintf(stderr, "mediasim report merge: --out: required (example: --out merged)\n");
        return 2;
    }
    std::vector<std::filesystem::path> inputs(dirs.begin(), dirs.end());
    auto r = reports::merge_runs(inputs, out);
    if (!r) {
        std::fprintf(stderr, "mediasim report merge: %s\n", r.error().to_string().c_str());
        return 2;
    }
    std::printf("%s\n", (r->out / "report.html").string().c_str());
    return 0;
}

int report_compare(Args args) {
    std::string base, now, limit = "10%";
    core::ArgParser p("mediasim report compare",
                      "Prints p50/p90/p99/max (ms) of every metric of two runs and their "
                      "difference; exits 1 when a p99 or the failed-call rate of NEW is worse "
                      "than BASE by more than --max-regression, 0 otherwise, 2 on bad input.");
    p.positional("BASE", &base, "the baseline run directory (or its summary.json)")
        .positional("NEW", &now, "the run directory to judge (or its summary.json)")
        .option("max-regression", &limit, "PERCENT",
                "how much worse a p99 or the failed-call rate may get (default 10%)");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim report compare: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    auto max = reports::parse_percent(limit);
    if (!max) {
        std::fprintf(stderr, "mediasim report compare: --max-regression: %s\n",
                     max.error().to_string().c_str());
        return 2;
    }
    auto c = reports::compare_runs(base, now, *max);
    if (!c) {
        std::fprintf(stderr, "mediasim report compare: %s\n", c.error().to_string().c_str());
        return 2;
    }
    std::fputs(reports::format_comparison(*c, *max).c_str(), stdout);
    return c->regressed ? 1 : 0;
}

}  // namespace

int cmd_report(Args args) {
    if (!args.empty() && std::string_view(args[0]) == "merge") return report_merge(args.subspan(1));
    if (!args.empty() && std::string_view(args[0]) == "compare")
        return report_compare(args.subspan(1));
    std::string dir;
    bool markdown = false;
    core::ArgParser p("mediasim report",
                      "Writes DIR/report.html from a run's --out directory and prints its path. "
                      "Also: mediasim report merge DIR... --out DIR; "
                      "mediasim report compare BASE NEW [--max-regression 10%].");
    p.positional("DIR", &dir, "the --out directory of mediasim run, demo, check or capacity")
        .flag("markdown", &markdown, "print the Markdown summary instead of writing HTML");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim report: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    if (markdown) {
        std::ifstream in(std::filesystem::path(dir) / "summary.json");
        if (!in) {
            std::fprintf(stderr, "mediasim report: %s/summary.json: cannot read\n", dir.c_str());
            return 2;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        auto md = reports::render_markdown(ss.str());
        if (!md) {
            std::fprintf(stderr, "mediasim report: %s/summary.json: %s\n", dir.c_str(),
                         md.error().to_string().c_str());
            return 2;
        }
        std::fputs(md->c_str(), stdout);
        return 0;
    }
    // The directory of `mediasim capacity --out`: its page is made from capacity.json.
    const bool capacity = !std::filesystem::exists(std::filesystem::path(dir) / "summary.json") &&
                          std::filesystem::exists(std::filesystem::path(dir) / "capacity.json");
    auto out = capacity ? reports::write_capacity_report(dir) : reports::write_html_report(dir);
    if (!out) {
        std::fprintf(stderr, "mediasim report: %s\n", out.error().to_string().c_str());
        return 2;
    }
    std::printf("%s\n", out->string().c_str());
    return 0;
}

}  // namespace mediasim::sim
