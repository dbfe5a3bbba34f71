// mediasim run SCENARIO: many calls by the scenario's load shape (overridable by flags).
#include <charconv>
#include <cstdio>

#include "core/cli.hpp"
#include "simulator/commands.hpp"
#include "simulator/run_support.hpp"

namespace mediasim::sim {

int cmd_run(Args args) {
    std::string seed;
    std::string scenario_path, shard, duration, out, record_dir, tts_cache;
    int calls = 0, concurrency = 0, threads = 0;
    double rate = -1;
    bool quiet = false;
    TargetFlags tf;
    core::ArgParser p("mediasim run",
                      "Plays a scenario as many calls, by its load shape, against a server.");
    p.positional("SCENARIO", &scenario_path, "the scenario YAML file (see scenarios/README.md)");
    add_target_flags(p, tf);
    p.option("calls", &calls, "N", "total calls (overrides load.calls)", 1)
        .option("concurrency", &concurrency, "C", "calls at once (overrides load.concurrency)", 1)
        .option("rate", &rate, "R", "new calls per second (overrides load.rate)", 0.0)
        .option("duration", &duration, "TIME", "stop starting calls after this long, e.g. 60s")
        .option("out", &out, "DIR", "write summary.json, summary.md, calls.jsonl and *.hlog here")
        .option("record-dir", &record_dir, "DIR", "save each call's audio as WAV here")
        .option("shard", &shard, "I/N", "run shard I (from 0) of N: every N-th call")
        .option("threads", &threads, "N", "worker threads (default: one per core)", 1)
        .option("seed", &seed, "N", "seed for SIDs and random templates (default: random)")
        .option("tts-cache", &tts_cache, "DIR",
                "cache of spoken texts (default: ~/.cache/mediasim)")
        .flag("quiet", &quiet, "no progress lines");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim run: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    auto target = target_from_flags(tf);
    if (!target) {
        std::fprintf(stderr, "mediasim run: %s\n", target.error().to_string().c_str());
        return 2;
    }
    RunRequest req;
    req.target = std::move(*target);
    req.scenario_path = scenario_path;
    req.target.record_dir = record_dir;
    req.out_dir = out;
    req.tts_cache = tts_cache;
    req.threads = threads;
    req.quiet = quiet;
    if (calls > 0) req.calls = calls;
    if (concurrency > 0) req.concurrency = concurrency;
    if (rate >= 0) req.rate = rate;
    if (!duration.empty()) {
        auto d = parse_duration(duration);
        if (!d) {
            std::fprintf(stderr, "mediasim run: --duration: %s\n", d.error().message.c_str());
            return 2;
        }
        req.duration = *d;
    }
    if (!seed.empty()) {
        std::uint64_t s = 0;
        auto [end, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), s);
        if (ec != std::errc() || end != seed.data() + seed.size()) {
            std::fprintf(stderr, "mediasim run: --seed: \"%s\" is not a whole number\n",
                         seed.c_str());
            return 2;
        }
        req.seed = s;
    }
    if (!shard.empty()) {
        int i = -1, n = 0;
        char tail = 0;
        if (std::sscanf(shard.c_str(), "%d/%d%c", &i, &n, &tail) != 2 || n < 1 || i < 0 || i >= n) {
            std::fprintf(stderr,
                         "mediasim run: --shard: \"%s\" is not I/N with 0 <= I < N (example: "
                         "--shard 0/4)\n",
                         shard.c_str());
            return 2;
        }
        req.shard = i;
        req.shards = n;
    }
    std::string cmdline = "mediasim run";
    for (auto* a : args) cmdline += std::string(" ") + a;
    req.command_line = cmdline;
    return run_scenario(req);
}

}  // namespace mediasim::sim
