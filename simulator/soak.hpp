// mediasim soak: per-window figures of a long run and the drift verdict (soak_cmd.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "simulator/stats.hpp"

namespace mediasim::sim {

// One soak window: every interval that ended in it, merged exactly.
struct SoakWindow {
    std::size_t index = 0;  // from 0
    double end_s = 0;       // seconds since the run began
    Interval iv;
    std::int64_t active = 0;                 // calls active at its end
    std::optional<std::uint64_t> rss_bytes;  // the server's memory at its end, when sampled
    std::string json() const;                // its soak.jsonl line
};

// VmRSS of a process in bytes (nullopt: no such process).
std::optional<std::uint64_t> rss_from_proc(int pid);
// process_resident_memory_bytes from Prometheus text (else a *_resident_memory_bytes gauge).
std::optional<std::uint64_t> rss_from_metrics(std::string_view text);

// soak.json: memory and p99 response latency first/last/least-squares slope per minute (the
// first window is warm-up and left out), calls ended and failed.
nlohmann::ordered_json soak_verdict(const std::vector<SoakWindow>& windows, double window_s);
std::string soak_html(const std::vector<SoakWindow>& windows, const nlohmann::ordered_json& verdict,
                      const std::string& title);

}  // namespace mediasim::sim
