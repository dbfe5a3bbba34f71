// mediasim demo: the main job in one command. Starts the reference server on a free loopback
// port, plays the default scenario against it, prints the summary and where everything is.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/cli.hpp"
#include "simulator/commands.hpp"
#include "simulator/run_support.hpp"
#include "simulator/subprocess.hpp"

namespace mediasim::sim {
namespace {

namespace fs = std::filesystem;

fs::path self_dir() {
    std::error_code ec;
    auto p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? fs::path() : p.parent_path();
}

// The shipped scenarios: $MEDIASIM_SCENARIOS, next to the source tree of this build, or
// ./scenarios.
fs::path find_scenarios() {
    if (const char* e = std::getenv("MEDIASIM_SCENARIOS"); e && *e) return e;
    for (fs::path dir = self_dir(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path())
        if (fs::exists(dir / "scenarios" / "conversation.yaml")) return dir / "scenarios";
    return "scenarios";
}

fs::path find_server() {
    if (const char* e = std::getenv("MEDIASIM_SERVER"); e && *e) return e;
    auto next_to_us = self_dir() / "mediasim-server";
    if (fs::exists(next_to_us)) return next_to_us;
    return "mediasim-server";
}

}  // namespace

int cmd_demo(Args args) {
    std::string scenario, out = "demo-out", server_bin;
    int calls = 0, concurrency = 0;
    core::ArgParser p("mediasim demo",
                      "Starts the reference server on loopback, plays the default scenario "
                      "against it and shows the report.");
    p.option("scenario", &scenario, "FILE",
             "play this scenario (default: scenarios/conversation.yaml)")
        .option("out", &out, "DIR", "where the run, the recordings and the server's data go")
        .option("calls", &calls, "N", "calls to play (default: the scenario's)", 1)
        .option("concurrency", &concurrency, "C", "calls at once (default: the scenario's)", 1)
        .option("server", &server_bin, "PATH", "the mediasim-server binary to start");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim demo: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    const fs::path scenario_path =
        scenario.empty() ? find_scenarios() / "conversation.yaml" : fs::path(scenario);
    if (!fs::exists(scenario_path)) {
        std::fprintf(stderr,
                     "mediasim demo: scenario %s not found (set MEDIASIM_SCENARIOS or "
                     "--scenario)\n",
                     scenario_path.string().c_str());
        return 2;
    }
    const fs::path dir = fs::absolute(out);
    std::error_code ec;
    fs::remove_all(dir / "run", ec);
    fs::remove_all(dir / "recordings", ec);
    fs::create_directories(dir / "server-data", ec);
    if (ec) {
        std::fprintf(stderr, "mediasim demo: cannot create %s: %s\n", dir.string().c_str(),
                     ec.message().c_str());
        return 2;
    }
    const fs::path server = server_bin.empty() ? find_server() : fs::path(server_bin);
    const fs::path log = dir / "server.log";
    fs::remove(log, ec);
    std::printf("mediasim demo: starting %s on 127.0.0.1 (log: %s)\n", server.string().c_str(),
                log.string().c_str());
    std::fflush(stdout);
    auto child = Subprocess::spawn(
        {server.string(), "--listen", "127.0.0.1:0", "--data", (dir / "server-data").string()},
        log);
    if (!child) {
        std::fprintf(stderr, "mediasim demo: %s\n", child.error().to_string().c_str());
        return 2;
    }
    auto line = child->wait_for_line("listening on ", std::chrono::seconds(20));
    if (!line) {
        std::fprintf(stderr, "mediasim demo: the reference server did not start: %s\n",
                     line.error().to_string().c_str());
        return 1;
    }
    const auto at = line->find("listening on ");
    std::string base = line->substr(at + 13);
    while (!base.empty() &&
           (base.back() == '/' || std::isspace(static_cast<unsigned char>(base.back()))))
        base.pop_back();
    std::printf("mediasim demo: reference server at %s; playing %s\n\n", base.c_str(),
                scenario_path.string().c_str());
    std::fflush(stdout);

    RunRequest req;
    req.scenario_path = scenario_path;
    req.target.webhook = base + "/voice";
    req.target.record_dir = dir / "recordings";
    req.out_dir = dir / "run";
    if (calls > 0) req.calls = calls;
    if (concurrency > 0) req.concurrency = concurrency;
    req.command_line = "mediasim demo";
    fs::create_directories(req.out_dir, ec);
    const int rc = run_scenario(req);

    const int server_status = child->terminate(std::chrono::seconds(10));
    std::printf(
        "Where things are:\n"
        "  run results    %s/  (summary.json, summary.md, calls.jsonl, *.hlog)\n"
        "  recordings     %s/  (what the bot said, per call, WAV)\n"
        "  server data    %s/  (the server's WAVs and SQLite database)\n"
        "  server log     %s  (exit status %d)\n",
        req.out_dir.string().c_str(), req.target.record_dir.string().c_str(),
        (dir / "server-data").string().c_str(), log.string().c_str(), server_status);
    if (server_status != 0)
        std::fprintf(stderr, "mediasim demo: the reference server exited with status %d\n",
                     server_status);
    return rc != 0 ? rc : (server_status == 0 ? 0 : 1);
}

}  // namespace mediasim::sim
