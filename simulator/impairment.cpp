#include "simulator/impairment.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/cli.hpp"
#include "simulator/scenario.hpp"

namespace mediasim::sim {

std::string Impairments::describe() const {
    std::string s;
    auto add = [&](const std::string& part) {
        if (!s.empty()) s += ", ";
        s += part;
    };
    if (jitter.count() > 0)
        add(fmt::format("jitter {}ms {}", jitter.count(),
                        distribution == Distribution::uniform ? "uniform" : "exponential"));
    if (pause_for.count() > 0)
        add(fmt::format("pause {}ms every {}ms", pause_for.count(), pause_every.count()));
    if (slow_read.count() > 0) add(fmt::format("slow read {}ms", slow_read.count()));
    if (drop_at) add(fmt::format("drop at {}ms", drop_at->count()));
    if (webhook_delay.count() > 0) add(fmt::format("webhook delay {}ms", webhook_delay.count()));
    return s;
}

void Impairments::override_with(const Impairments& o) {
    if (o.jitter.count() > 0) {
        jitter = o.jitter;
        distribution = o.distribution;
    }
    if (o.pause_for.count() > 0) {
        pause_for = o.pause_for;
        pause_every = o.pause_every;
    }
    if (o.slow_read.count() > 0) slow_read = o.slow_read;
    if (o.drop_at) drop_at = o.drop_at;
    if (o.webhook_delay.count() > 0) webhook_delay = o.webhook_delay;
}

core::Status parse_jitter_flag(std::string_view text, Impairments& out) {
    auto colon = text.find(':');
    auto d = parse_duration(text.substr(0, colon));
    if (!d || d->count() <= 0)
        return core::make_error(fmt::format("\"{}\" is not a duration > 0 (example: --jitter "
                                            "40ms or --jitter 40ms:uniform)",
                                            text),
                                "--jitter");
    out.jitter = *d;
    out.distribution = Impairments::Distribution::exponential;
    if (colon != std::string_view::npos) {
        const auto dist = text.substr(colon + 1);
        if (dist == "uniform")
            out.distribution = Impairments::Distribution::uniform;
        else if (dist != "exponential")
            return core::make_error(
                fmt::format("\"{}\": the distribution must be uniform or exponential", dist),
                "--jitter");
    }
    return core::Ok{};
}

core::Status parse_pause_flag(std::string_view text, Impairments& out) {
    auto slash = text.find('/');
    auto bad = [&] {
        return core::make_error(fmt::format("\"{}\" is not FOR/EVERY with FOR < EVERY (example: "
                                            "--pause 1s/10s: a 1 s pause every 10 s)",
                                            text),
                                "--pause");
    };
    if (slash == std::string_view::npos) return bad();
    auto f = parse_duration(text.substr(0, slash));
    auto e = parse_duration(text.substr(slash + 1));
    if (!f || !e || f->count() <= 0 || e->count() <= f->count()) return bad();
    out.pause_for = *f;
    out.pause_every = *e;
    return core::Ok{};
}

void add_impairment_flags(core::ArgParser& p, ImpairmentFlags& f) {
    p.option("jitter", &f.jitter, "MEAN[:DIST]",
             "network impairment: hold each frame a random time (exponential, or :uniform "
             "0..2×MEAN), frames released in order, so in bursts (e.g. 40ms)")
        .option("pause", &f.pause, "FOR/EVERY",
                "network impairment: nothing for FOR, then a burst, every EVERY (e.g. 1s/10s)")
        .option("slow-read", &f.slow_read, "TIME",
                "network impairment: wait this long before each read of the server's messages "
                "(backpressure)")
        .option("drop-at", &f.drop_at, "TIME",
                "network impairment: cut the connection at the first caller speech after TIME "
                "(mid-word; no stop, no close frame)")
        .option("webhook-delay", &f.webhook_delay, "TIME",
                "network impairment: the webhook path is slow by TIME each way");
}

core::Result<Impairments> impairments_from_flags(const ImpairmentFlags& f) {
    Impairments imp;
    if (!f.jitter.empty())
        if (auto st = parse_jitter_flag(f.jitter, imp); !st) return st.error();
    if (!f.pause.empty())
        if (auto st = parse_pause_flag(f.pause, imp); !st) return st.error();
    auto dur = [](const std::string& text, const char* flag,
                  bool zero_ok) -> core::Result<std::chrono::milliseconds> {
        auto d = parse_duration(text);
        if (!d || (!zero_ok && d->count() <= 0))
            return core::make_error(fmt::format("\"{}\" is not a duration{} (example: 500ms, 2s)",
                                                text, zero_ok ? "" : " > 0"),
                                    std::string("--") + flag);
        return *d;
    };
    if (!f.slow_read.empty()) {
        auto d = dur(f.slow_read, "slow-read", false);
        if (!d) return d.error();
        imp.slow_read = *d;
    }
    if (!f.drop_at.empty()) {
        auto d = dur(f.drop_at, "drop-at", true);
        if (!d) return d.error();
        imp.drop_at = *d;
    }
    if (!f.webhook_delay.empty()) {
        auto d = dur(f.webhook_delay, "webhook-delay", false);
        if (!d) return d.error();
        imp.webhook_delay = *d;
    }
    return imp;
}

FrameGate::FrameGate(const Impairments& imp, TimePoint origin, std::uint64_t seed)
    : imp_(imp), origin_(origin), rng_(seed) {}

FrameGate::TimePoint FrameGate::release(TimePoint due) {
    auto at = due;
    if (imp_.pause_for.count() > 0 && imp_.pause_every > imp_.pause_for) {
        // Pauses start at every, 2×every, …; a frame due inside one leaves when it ends.
        const auto since = due - origin_;
        const auto every = std::chrono::duration_cast<Clock::duration>(imp_.pause_every);
        const auto k = since / every;
        const auto start = origin_ + every * k;
        if (k > 0 && due < start + imp_.pause_for) at = start + imp_.pause_for;
    }
    if (imp_.jitter.count() > 0) {
        const double mean_us = static_cast<double>(
            std::chrono::duration_cast<std::chrono::microseconds>(imp_.jitter).count());
        double hold = 0;
        if (imp_.distribution == Impairments::Distribution::uniform) {
            hold = std::uniform_real_distribution<double>(0, 2 * mean_us)(rng_);
        } else {
            hold = std::exponential_distribution<double>(1.0 / mean_us)(rng_);
        }
        at += std::chrono::microseconds(static_cast<std::int64_t>(hold));
    }
    at = std::max(at, last_);  // in order: a held frame holds the ones behind it
    last_ = at;
    return at;
}

}  // namespace mediasim::sim
