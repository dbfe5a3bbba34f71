// What `mediasim run` and `mediasim demo` share: load a scenario, apply overrides, run it,
// write and print the summary.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "core/cli.hpp"
#include "core/result.hpp"
#include "simulator/impairment.hpp"
#include "simulator/scenario_call.hpp"

namespace mediasim::sim {

struct RunRequest {
    std::filesystem::path scenario_path;
    Target target;
    std::filesystem::path out_dir;
    std::filesystem::path tts_cache;  // empty: ~/.cache/mediasim/tts (or none without $HOME)
    std::optional<int> calls, concurrency;
    std::optional<double> rate;
    std::optional<std::chrono::milliseconds> duration;
    int shard = 0, shards = 1;
    int threads = 0;
    std::optional<std::uint64_t> seed;  // unset: random (fresh CallSids every run)
    bool quiet = false;
    std::string command_line;
    // Overrides the scenario's arrival with constant (`rate` 0: back to back), for soak.
    bool constant_arrival = false;
    // Passed to the runner (RunOptions::on_interval).
    std::function<void(double, double, const Interval&, std::int64_t)> on_interval;
};

// The flags of every command that plays a scenario against a server (run, soak, capacity):
// --webhook | --stream, --auth-token, --connect-to, --insecure, --ca-file and the network
// impairments (impairment.hpp).
struct TargetFlags {
    Target target;
    ImpairmentFlags impair;
};
void add_target_flags(core::ArgParser& p, TargetFlags& f);
// The target the flags name; an error (to print after the command's name) when they give not
// exactly one of --webhook and --stream, or a bad impairment.
core::Result<Target> target_from_flags(const TargetFlags& f);

// Where spoken texts are cached by default: $XDG_CACHE_HOME/mediasim/tts or
// ~/.cache/mediasim/tts (empty without $HOME).
std::filesystem::path default_tts_cache();

// Returns the exit code: 0 all calls completed and every expectation held, 1 otherwise, 2 for
// bad input (the scenario's errors are printed, every one with file:line:column).
int run_scenario(const RunRequest& req);

}  // namespace mediasim::sim
