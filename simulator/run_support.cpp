#include "simulator/run_support.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "reports/html.hpp"
#include "reports/markdown.hpp"
#include "simulator/http_client.hpp"

namespace mediasim::sim {
void add_target_flags(core::ArgParser& p, TargetFlags& f) {
    p.option("webhook", &f.target.webhook, "URL",
             "POST the voice webhook here and follow the TwiML")
        .option("stream", &f.target.stream, "WS_URL",
                "open this ws:// or wss:// stream directly (no TwiML)")
        .option("auth-token", &f.target.auth_token, "TOKEN",
                "sign requests with this auth token (default: $TWILIO_AUTH_TOKEN)")
        .multi("connect-to", &f.target.connect_to, "HOST:PORT=HOST2:PORT2",
               "connect there instead (URLs, Host and signatures unchanged)")
        .flag("insecure", &f.target.insecure, "accept any TLS certificate")
        .option("ca-file", &f.target.ca_file, "FILE", "trust this CA certificate (PEM)");
    add_impairment_flags(p, f.impair);
}

core::Result<Target> target_from_flags(const TargetFlags& f) {
    if (f.target.webhook.empty() == f.target.stream.empty())
        return core::make_error("give exactly one of --webhook URL or --stream WS_URL");
    auto network = impairments_from_flags(f.impair);
    if (!network) return network.error();
    // A bad --connect-to or --ca-file is bad usage, before anything runs.
    if (auto net = make_net_config(f.target.connect_to, f.target.insecure, f.target.ca_file); !net)
        return net.error();
    Target t = f.target;
    t.network = *network;
    return t;
}

std::filesystem::path default_tts_cache() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
        return std::filesystem::path(x) / "mediasim" / "tts";
    if (const char* h = std::getenv("HOME"); h && *h)
        return std::filesystem::path(h) / ".cache" / "mediasim" / "tts";
    return {};
}

int run_scenario(const RunRequest& req) {
    LoadOptions lo;
    lo.tts_cache = req.tts_cache.empty() ? default_tts_cache() : req.tts_cache;
    auto loaded = load_scenario(req.scenario_path, lo);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
        std::fprintf(stderr, "mediasim: %zu problem(s) in %s; nothing was run\n",
                     loaded.errors.size(), req.scenario_path.string().c_str());
        return 2;
    }
    auto scenario = std::make_shared<Scenario>(std::move(*loaded.scenario));
    if (req.calls) scenario->load.calls = *req.calls;
    if (req.concurrency) scenario->load.concurrency = *req.concurrency;
    if (req.rate) scenario->load.rate = *req.rate;
    if (req.duration) scenario->load.duration = *req.duration;
    if (req.constant_arrival) scenario->load.arrival = LoadShape::Arrival::constant;
    if (scenario->load.concurrency > scenario->load.calls && !scenario->load.duration)
        scenario->load.concurrency = scenario->load.calls;
    if (req.shards > 1) {
        // Shard i of N plays every N-th call of the whole run.
        const int all = scenario->load.calls;
        scenario->load.calls = all / req.shards + (req.shard < all % req.shards ? 1 : 0);
        if (scenario->load.rate > 0) scenario->load.rate /= req.shards;
    }

    RunOptions opts;
    opts.load = scenario->load;
    opts.threads = req.threads;
    opts.seed = req.seed ? *req.seed : std::random_device{}();
    opts.live = !req.quiet && ::isatty(STDERR_FILENO);
    opts.quiet = req.quiet;
    opts.out_dir = req.out_dir;
    opts.shard = req.shard;
    opts.shards = req.shards;
    opts.info.scenario = scenario->name;
    opts.info.target = req.target.webhook.empty() ? req.target.stream : req.target.webhook;
    opts.info.command_line = req.command_line;
    opts.on_interval = req.on_interval;
    if (!req.target.record_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(req.target.record_dir, ec);
        if (ec) {
            std::fprintf(stderr, "mediasim: --record-dir %s: %s\n",
                         req.target.record_dir.string().c_str(), ec.message().c_str());
            return 2;
        }
    }
    if (!req.quiet)
        std::fprintf(stderr, "mediasim: %s: %d call(s), %d at once, against %s\n",
                     scenario->name.c_str(), opts.load.calls, opts.load.concurrency,
                     opts.info.target.c_str());

    auto result = run_load(opts, make_scenario_starter(scenario, req.target));

    const std::string summary = summary_json(result.info, result.totals);
    auto md = reports::render_markdown(summary);
    if (!md) {
        std::fprintf(stderr, "mediasim: cannot render the summary: %s\n",
                     md.error().to_string().c_str());
        return 1;
    }
    if (!req.quiet) std::printf("\n%s\n", md->c_str());
    if (!req.out_dir.empty()) {
        std::ofstream(req.out_dir / "summary.md") << *md;
        auto html = reports::write_html_report(req.out_dir);
        if (!html)
            std::fprintf(stderr, "mediasim: the HTML report was not written: %s\n",
                         html.error().to_string().c_str());
        else if (!req.quiet)
            std::printf("Report: %s\n", html->string().c_str());
    }
    const auto& all = result.totals.all;
    const bool ok =
        all.calls_failed == 0 && result.totals.expectations_failed == 0 && all.calls_completed > 0;
    return ok ? 0 : 1;
}

}  // namespace mediasim::sim
