// mediasim call: one call, as Twilio would make it, with a readable timeline and a summary.
#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "core/cli.hpp"
#include "core/g711.hpp"
#include "core/wav.hpp"
#include "simulator/call.hpp"
#include "simulator/commands.hpp"

namespace mediasim::sim {

namespace {

namespace fs = std::filesystem;

core::Result<std::vector<std::uint8_t>> load_caller_audio(const std::string& path) {
    auto wav = core::read_wav(path);
    if (!wav) return wav.error();
    if (wav->format.encoding == core::Encoding::mulaw && wav->format.sample_rate_hz == 8000 &&
        wav->format.channels == 1)
        return std::move(wav->data);
    core::ReadOptions opts;
    opts.sample_rate_hz = 8000;
    opts.downmix = true;
    auto pcm = core::decode_to_pcm(*wav, opts);
    std::vector<std::uint8_t> out(pcm.samples.size());
    core::ulaw_encode(pcm.samples, out.data());
    return out;
}

void print_metric(const Interval& iv, Metric m, const char* label) {
    const auto& h = iv.metrics[static_cast<int>(m)];
    if (h.total_count() == 0) return;
    if (h.total_count() == 1) {
        std::printf("  %-22s %.1f ms\n", label, static_cast<double>(h.max()) / 1000.0);
        return;
    }
    std::printf("  %-22s n=%lld  p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", label,
                static_cast<long long>(h.total_count()),
                static_cast<double>(h.value_at_percentile(50)) / 1000.0,
                static_cast<double>(h.value_at_percentile(99)) / 1000.0,
                static_cast<double>(h.max()) / 1000.0);
}

}  // namespace

int cmd_call(Args args) {
    std::string webhook, stream, auth_token, audio_path, dtmf, speech, record_dir, ca_file,
        account_sid;
    std::string from = "+14155550100", to = "+15005550006";
    std::vector<std::string> params, connect_to;
    double tail = 2.0, max_duration = 3600.0;
    bool insecure = false, quiet = false;
    core::ArgParser p("call", "make one call as Twilio would: webhook, TwiML, Media Stream");
    p.option("webhook", &webhook, "URL", "the voice webhook to POST (as for an inbound call)")
        .option("stream", &stream, "WS_URL", "skip the webhook: open this Media Stream directly")
        .option("auth-token", &auth_token, "TOKEN",
                "signs requests and the upgrade (default: $TWILIO_AUTH_TOKEN)")
        .option("audio", &audio_path, "FILE.wav",
                "what the caller says (any WAV; sent as μ-law 8 kHz)")
        .option("dtmf", &dtmf, "DIGITS",
                "keys the caller presses (after the audio; 'w' waits 0.5 s)")
        .option("speech", &speech, "TEXT", "what the caller says to a <Gather input=\"speech\">")
        .option("from", &from, "NUMBER", "the caller's number")
        .option("to", &to, "NUMBER", "the number called")
        .option("account-sid", &account_sid, "AC…", "the account (default: a generated AC…)")
        .multi("param", &params, "KEY=VALUE",
               "an extra webhook parameter (with --stream: a customParameter)")
        .option("tail", &tail, "SECONDS", "silence after the audio before the caller hangs up (2)")
        .option("max-duration", &max_duration, "SECONDS", "cut the call after this long (3600)",
                0.1)
        .option("record-dir", &record_dir, "DIR",
                "save what the bot said and the caller's audio as WAV")
        .multi("connect-to", &connect_to, "HOST:PORT=HOST2:PORT2",
               "connect there instead; URLs, Host headers and signatures stay as written")
        .flag("insecure", &insecure, "accept any TLS certificate")
        .option("ca-file", &ca_file, "FILE", "trust this CA (PEM) for https:// and wss://")
        .flag("quiet", &quiet, "print only the summary");
    ImpairmentFlags impair;
    add_impairment_flags(p, impair);
    auto st = p.parse(args);
    if (!st) {
        std::fprintf(stderr, "mediasim call: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::printf("%s", p.help().c_str());
        return 0;
    }
    auto usage = [](const std::string& msg) {
        std::fprintf(stderr, "mediasim call: %s\n", msg.c_str());
        return 2;
    };
    if (webhook.empty() == stream.empty())
        return usage(
            "give either --webhook URL or --stream WS_URL (example: --webhook "
            "http://127.0.0.1:8080/voice)");

    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = webhook;
    cfg->stream_url = stream;
    if (!p.given("auth-token"))
        if (const char* env = std::getenv("TWILIO_AUTH_TOKEN")) auth_token = env;
    cfg->auth_token = auth_token;
    cfg->account_sid = account_sid;
    cfg->from = from;
    cfg->to = to;
    cfg->dtmf = dtmf;
    cfg->speech = speech;
    for (char c : dtmf)
        if (!((c >= '0' && c <= '9') || c == '*' || c == '#' || c == 'w' || c == 'W'))
            return usage(
                fmt::format("--dtmf: '{}' is not a key (use 0-9, *, # and w for a pause)", c));
    for (const auto& kv : params) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            return usage(
                fmt::format("--param: \"{}\" is not KEY=VALUE (example: --param tenant=42)", kv));
        cfg->params.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    cfg->tail = std::chrono::milliseconds(static_cast<std::int64_t>(tail * 1000));
    cfg->max_duration =
        std::chrono::seconds(static_cast<std::int64_t>(std::max(1.0, max_duration)));
    cfg->record = !record_dir.empty();
    if (auto network = impairments_from_flags(impair); !network) {
        return usage(network.error().to_string());
    } else if (network->any()) {
        cfg->impair = std::make_shared<const Impairments>(*network);
    }
    if (!audio_path.empty()) {
        auto audio = load_caller_audio(audio_path);
        if (!audio) return usage("--audio: " + audio.error().to_string());
        cfg->audio = std::make_shared<const std::vector<std::uint8_t>>(std::move(*audio));
    }
    auto net = make_net_config(connect_to, insecure, ca_file);
    if (!net) return usage(net.error().to_string());
    cfg->net = *net;
    if (!quiet)
        cfg->timeline = [](std::chrono::milliseconds t, const std::string& line) {
            std::printf("%8.3f  %s\n", static_cast<double>(t.count()) / 1000.0, line.c_str());
            std::fflush(stdout);
        };

    boost::asio::io_context io;
    WorkerStats stats;
    CallReport report;
    start_call(io, cfg, 1, std::random_device{}(), &stats,
               [&](CallReport r) { report = std::move(r); });
    io.run();

    const auto iv = stats.take_interval();
    const auto& o = report.outcome;
    std::printf("\ncall %s: %s after %.1f s\n", o.call_sid.c_str(),
                o.completed ? "completed" : "FAILED", o.duration_seconds);
    if (!o.completed)
        std::printf("  failure: %s: %s\n", failure_class_name(o.failure), o.first_error.c_str());
    if (!o.handoff.empty()) std::printf("  handed off to %s\n", o.handoff.c_str());
    std::printf(
        "  streams %d, frames sent %llu (media %llu), received %llu, marks echoed %llu, "
        "clears %llu, bot audio %.1f s, violations %llu\n",
        report.streams, static_cast<unsigned long long>(o.frames_sent),
        static_cast<unsigned long long>(report.media_sent),
        static_cast<unsigned long long>(o.frames_received),
        static_cast<unsigned long long>(report.marks_echoed),
        static_cast<unsigned long long>(report.clears),
        static_cast<double>(report.bot_bytes_received) / 8000.0,
        static_cast<unsigned long long>(report.violations));
    print_metric(iv, Metric::webhook_latency, "webhook latency");
    print_metric(iv, Metric::connect_time, "connect time");
    print_metric(iv, Metric::pacing_error, "send pacing error");
    print_metric(iv, Metric::response_latency, "response latency");
    print_metric(iv, Metric::mark_rtt, "mark round trip");
    print_metric(iv, Metric::jitter, "bot audio jitter");
    print_metric(iv, Metric::underrun, "play-out underruns");
    print_metric(iv, Metric::delivery_delay, "impaired delivery");

    if (!record_dir.empty()) {
        std::error_code ec;
        fs::create_directories(record_dir, ec);
        if (ec) {
            std::fprintf(stderr, "mediasim call: --record-dir %s: %s\n", record_dir.c_str(),
                         ec.message().c_str());
            return 1;
        }
        core::AudioFormat fmt8k;  // μ-law 8 kHz mono
        int i = 0;
        for (const auto& rec : report.recordings) {
            ++i;
            std::string base =
                fmt::format("{}-{}", o.call_sid, rec.name.empty() ? rec.stream_sid : rec.name);
            for (auto [suffix, data] :
                 {std::pair{"bot", &rec.bot_audio}, std::pair{"caller", &rec.caller_audio}}) {
                if (data->empty()) continue;
                fs::path path = fs::path(record_dir) / fmt::format("{}-{}.wav", base, suffix);
                auto w = core::write_wav(path, fmt8k, *data);
                if (!w) {
                    std::fprintf(stderr, "mediasim call: %s\n", w.error().to_string().c_str());
                    return 1;
                }
                std::printf("  saved %s (%.1f s)\n", path.string().c_str(),
                            static_cast<double>(data->size()) / 8000.0);
            }
        }
    }
    return o.completed ? 0 : 1;
}

}  // namespace mediasim::sim
