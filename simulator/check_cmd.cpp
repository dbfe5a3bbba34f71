// mediasim check: the conformance suite against a webhook or a stream URL (simulator/check.hpp).
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "core/cli.hpp"
#include "reports/conformance.hpp"
#include "reports/html.hpp"
#include "reports/markdown.hpp"
#include "simulator/check.hpp"
#include "simulator/commands.hpp"

namespace mediasim::sim {

namespace {

namespace fs = std::filesystem;

std::string now_iso8601() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

bool write_file(const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::binary);
    f << text;
    return static_cast<bool>(f);
}

}  // namespace

int cmd_check(Args args) {
    std::string webhook, stream, auth_token, junit, out_dir, ca_file, stream_mode = "connect";
    std::vector<std::string> cases, connect_to;
    int concurrency = 50, long_duration = 0;
    double webhook_timeout = 15, response_within = 2;
    bool long_call = false, list = false, markdown = false, insecure = false, quiet = false;
    core::ArgParser p("check",
                      "run the conformance suite against a Media Streams server; exit 0 when "
                      "every `must` case passes, 1 when one fails, 2 for bad usage");
    p.option("webhook", &webhook, "URL", "the voice webhook to check (TwiML, then its stream)")
        .option("stream", &stream, "WS_URL", "check a Media Stream endpoint directly")
        .option("stream-mode", &stream_mode, "MODE",
                "with --stream: connect (bidirectional, default) or start (a listen-only "
                "<Start><Stream track=\"both_tracks\">)")
        .option("auth-token", &auth_token, "TOKEN",
                "sign requests; the server is then expected to refuse unsigned ones "
                "(default: $TWILIO_AUTH_TOKEN)")
        .multi("cases", &cases, "GLOB", "run only the cases matching (repeatable; 'media.*')")
        .option("junit", &junit, "FILE", "write JUnit XML (one testcase per case)")
        .option("out", &out_dir, "DIR",
                "write conformance.json, junit.xml, summary.json and report.html")
        .option("concurrency", &concurrency, "N", "behaviour.concurrent: calls at once (50)")
        .flag("long", &long_call, "run behaviour.long_call: one 10-minute call")
        .option("long-duration", &long_duration, "SECONDS",
                "run behaviour.long_call with this duration instead of 600 s", 1)
        .option("webhook-timeout", &webhook_timeout, "SECONDS",
                "webhook.timeout limit (Twilio: 15)", 0.1)
        .option("response-within", &response_within, "SECONDS", "behaviour.response_time limit (2)",
                0.1)
        .multi("connect-to", &connect_to, "HOST:PORT=HOST2:PORT2",
               "connect there instead; URLs, Host headers and signatures stay as written")
        .flag("insecure", &insecure, "accept any TLS certificate")
        .option("ca-file", &ca_file, "FILE", "trust this CA (PEM) for https:// and wss://")
        .flag("list", &list, "list the cases and exit")
        .flag("markdown", &markdown, "with --list: as Markdown (docs/conformance.md)")
        .flag("quiet", &quiet, "print only the table");
    auto st = p.parse(args);
    auto usage = [](const std::string& msg) {
        std::fprintf(stderr, "mediasim check: %s\n", msg.c_str());
        return 2;
    };
    if (!st) return usage(st.error().to_string());
    if (p.help_requested()) {
        std::printf("%s", p.help().c_str());
        return 0;
    }
    if (list) {
        if (markdown) {
            std::printf("%s", catalogue_markdown().c_str());
        } else {
            for (const auto& c : catalogue())
                std::printf("%-34s %-6s %-14s %s\n", c.id, to_string(c.severity), c.spec, c.title);
        }
        return 0;
    }
    if (webhook.empty() == stream.empty())
        return usage(
            "give either --webhook URL or --stream WS_URL (example: --webhook "
            "http://127.0.0.1:8080/voice)");
    if (!webhook.empty()) {
        auto u = core::parse_url(webhook);
        if (!u || (u->scheme != "http" && u->scheme != "https"))
            return usage(
                fmt::format("--webhook: \"{}\" is not an http:// or https:// URL", webhook));
    } else {
        auto u = core::parse_url(stream);
        if (!u || (u->scheme != "ws" && u->scheme != "wss"))
            return usage(fmt::format("--stream: \"{}\" is not a ws:// or wss:// URL", stream));
    }
    if (stream_mode != "connect" && stream_mode != "start")
        return usage(fmt::format("--stream-mode: \"{}\" is not connect or start", stream_mode));
    if (p.given("stream-mode") && stream.empty())
        return usage("--stream-mode goes with --stream (with --webhook the TwiML decides)");
    for (const auto& g : cases) {
        bool any = false;
        for (const auto& c : catalogue()) any |= glob_match(g, c.id);
        if (!any)
            return usage(
                fmt::format("--cases: \"{}\" matches no case (see mediasim check --list)", g));
    }
    if (concurrency < 1) return usage("--concurrency: must be at least 1");
    if (!p.given("auth-token"))
        if (const char* env = std::getenv("TWILIO_AUTH_TOKEN")) auth_token = env;

    CheckOptions o;
    o.webhook_url = webhook;
    o.stream_url = stream;
    o.stream_start = stream_mode == "start";
    o.auth_token = auth_token;
    o.cases = cases;
    o.concurrency = concurrency;
    o.long_call = std::chrono::seconds(long_duration > 0 ? long_duration : long_call ? 600 : 0);
    o.response_within =
        std::chrono::milliseconds(static_cast<std::int64_t>(response_within * 1000));
    auto net = make_net_config(connect_to, insecure, ca_file);
    if (!net) return usage(net.error().to_string());
    (*net)->request_timeout =
        std::chrono::milliseconds(static_cast<std::int64_t>(webhook_timeout * 1000));
    (*net)->connect_timeout = std::min((*net)->connect_timeout, (*net)->request_timeout);
    o.net = *net;
    if (!quiet)
        o.progress = [](const std::string& line) {
            std::fprintf(stderr, "mediasim check: %s\n", line.c_str());
        };
    if (!out_dir.empty()) {
        std::error_code ec;
        fs::create_directories(out_dir, ec);
        if (ec) return usage(fmt::format("--out {}: {}", out_dir, ec.message()));
    }

    std::string command_line = "mediasim check";
    for (const char* a : args) command_line += std::string(" ") + a;
    const std::string started = now_iso8601();
    auto result = run_check(o);
    auto& conf = result.conformance;
    conf.started_at = started;
    conf.command_line = command_line;

    std::printf("%s", reports::conformance_table(conf).c_str());
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    const std::string xml = reports::junit_xml(conf, host);
    int rc = reports::count(conf).must_failed == 0 ? 0 : 1;
    if (!junit.empty() && !write_file(junit, xml)) {
        std::fprintf(stderr, "mediasim check: --junit %s: cannot write\n", junit.c_str());
        rc = rc ? rc : 1;
    }
    if (!out_dir.empty()) {
        const fs::path dir(out_dir);
        RunInfo info;
        info.scenario = "mediasim check";
        info.target = conf.target;
        info.command_line = command_line;
        info.started_at_iso = started;
        info.duration_seconds = conf.duration_seconds;
        const bool ok = write_file(dir / "conformance.json", reports::conformance_json(conf)) &&
                        write_file(dir / "junit.xml", xml) &&
                        write_file(dir / "summary.json", summary_json(info, result.totals));
        if (!ok) {
            std::fprintf(stderr, "mediasim check: --out %s: cannot write\n", out_dir.c_str());
            return rc ? rc : 1;
        }
        auto html = reports::write_html_report(dir);
        if (!html)
            std::fprintf(stderr, "mediasim check: the HTML report was not written: %s\n",
                         html.error().to_string().c_str());
        else if (!quiet)
            std::printf("Report: %s\n", html->string().c_str());
    }
    return rc;
}

}  // namespace mediasim::sim
