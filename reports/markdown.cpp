#include "reports/markdown.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace mediasim::reports {
namespace {

using nlohmann::json;

std::string ms(const json& us) {
    if (!us.is_number()) return "-";
    const double v = us.get<double>() / 1000.0;
    if (v >= 100) return fmt::format("{:.0f}", v);
    if (v >= 10) return fmt::format("{:.1f}", v);
    return fmt::format("{:.2f}", v);
}

// Metrics in the order a reader wants them, with a short label.
struct Row {
    const char* key;
    const char* label;
};
constexpr Row kRows[] = {
    {"response_latency", "response latency (end of caller's words → bot audio)"},
    {"webhook_latency", "webhook latency (POST → TwiML)"},
    {"connect_time", "stream connect (TCP + TLS + upgrade)"},
    {"mark_rtt", "mark round trip (played out → echoed)"},
    {"clear_latency", "barge-in → clear"},
    {"pacing_error", "pacing error (simulator's own send timing)"},
    {"jitter", "bot audio interarrival jitter"},
    {"underrun", "gaps in bot audio"},
    {"leakage", "bot audio after clear"},
    {"delivery_delay", "delivery delay (network impairments: frame released − due)"},
};

}  // namespace

core::Result<std::string> render_markdown(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return core::make_error("summary.json is not a JSON object");
    if (j.value("schema", "") != "mediasim.summary/1")
        return core::make_error(fmt::format("expected \"mediasim.summary/1\", got {}",
                                            j.value("schema", json()).dump()),
                                "schema");
    if (!j.contains("calls") || !j["calls"].is_object())
        return core::make_error("missing or not an object", "calls");
    if (!j.contains("metrics") || !j["metrics"].is_object())
        return core::make_error("missing or not an object", "metrics");

    const json& calls = j["calls"];
    auto num = [](const json& o, const char* k) -> std::uint64_t {
        return o.contains(k) && o[k].is_number_unsigned() ? o[k].get<std::uint64_t>() : 0;
    };
    const auto started = num(calls, "started");
    const auto completed = num(calls, "completed");
    const auto failed = num(calls, "failed");
    const auto expect_failed = num(calls, "expectations_failed");

    std::string out;
    out += fmt::format("## Mediasim run: {}\n\n", j.value("scenario", "(no scenario)"));
    out += fmt::format("Target `{}`, started {}, {:.1f} s", j.value("target", ""),
                       j.value("started_at", ""), j.value("duration_seconds", 0.0));
    if (j.contains("shard") && j["shard"].value("count", 1) > 1)
        out += fmt::format(", shard {}/{}", j["shard"].value("index", 0),
                           j["shard"].value("count", 1));
    out += ".\n\n";

    const bool ok = failed == 0 && expect_failed == 0 && started > 0;
    out += fmt::format(
        "**{}** — {} calls started, {} completed, {} failed, {} with missed "
        "expectations.\n\n",
        ok ? "PASS" : "FAIL", started, completed, failed, expect_failed);
    if (j.contains("messages") && j["messages"].is_object())
        out += fmt::format("Messages: {} sent, {} received.\n\n", num(j["messages"], "sent"),
                           num(j["messages"], "received"));

    out += "| metric | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n";
    out += "|---|---:|---:|---:|---:|---:|---:|\n";
    const json& metrics = j["metrics"];
    for (const auto& r : kRows) {
        if (!metrics.contains(r.key)) continue;
        const json& m = metrics[r.key];
        if (!m.is_object())
            return core::make_error("not an object", fmt::format("metrics.{}", r.key));
        if (m.value("count", 0) == 0) continue;
        out += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", r.label, m.value("count", 0),
                           ms(m.value("p50", json())), ms(m.value("p90", json())),
                           ms(m.value("p99", json())), ms(m.value("p99_9", json())),
                           ms(m.value("max", json())));
    }

    if (calls.contains("failed_by_class") && calls["failed_by_class"].is_object() &&
        !calls["failed_by_class"].empty()) {
        out += "\n**Failures by class**\n\n| class | calls |\n|---|---:|\n";
        for (const auto& [k, v] : calls["failed_by_class"].items())
            out += fmt::format("| {} | {} |\n", k, v.dump());
    }
    if (j.contains("failure_examples") && j["failure_examples"].is_array() &&
        !j["failure_examples"].empty()) {
        out += "\n**Examples**\n\n";
        for (const auto& e : j["failure_examples"])
            out += fmt::format("- call {} `{}` ({}): {}\n", e.value("call", 0),
                               e.value("call_sid", ""), e.value("class", ""), e.value("error", ""));
    }
    return out;
}

}  // namespace mediasim::reports
