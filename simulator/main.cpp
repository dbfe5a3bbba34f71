// mediasim: a Twilio Media Streams simulator. Parses the command name and hands over.
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>

#include "simulator/commands.hpp"

namespace {

struct Command {
    const char* name;
    int (*run)(mediasim::sim::Args);
    const char* summary;
};

constexpr Command kCommands[] = {
    {"demo", mediasim::sim::cmd_demo,
     "start the reference server on loopback, play the default scenario, show the report"},
    {"run", mediasim::sim::cmd_run,
     "play a scenario as many calls (its load shape, or --calls/--concurrency/--rate)"},
    {"convert", mediasim::sim::cmd_convert,
     "convert audio files to and from Twilio's format (μ-law 8 kHz mono WAV)"},
    {"call", mediasim::sim::cmd_call,
     "make one call as Twilio would (webhook, TwiML, Media Stream) and show its timeline"},
    {"check", mediasim::sim::cmd_check,
     "the conformance suite: pass/fail cases for a Media Streams server (JUnit XML for CI)"},
    {"record", mediasim::sim::cmd_record,
     "a recording proxy between Twilio and your server: writes a session file"},
    {"replay", mediasim::sim::cmd_replay,
     "play a recorded session against a server and compare what it does; or write a scenario"},
    {"soak", mediasim::sim::cmd_soak,
     "calls back to back for a long time: latency, jitter, failures and server memory drift"},
    {"report", mediasim::sim::cmd_report,
     "write the HTML report of a run directory (or print its Markdown summary)"},
    {"capacity", mediasim::sim::cmd_capacity,
     "raise the concurrency step by step until an SLO breaks; report the largest that held"},
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: mediasim COMMAND [ARGS...]\n\n"
                 "A load-testing and conformance simulator for Twilio Media Streams.\n\n"
                 "commands:\n");
    for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
    std::fprintf(out, "\n'mediasim COMMAND --help' describes a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    std::string_view cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        usage(stdout);
        return 0;
    }
    if (cmd == "--version") {
        std::printf("mediasim %s\n", MEDIASIM_VERSION);
        return 0;
    }
    for (const auto& c : kCommands)
        if (cmd == c.name)
            return c.run(std::span<char* const>(argv + 2, static_cast<std::size_t>(argc - 2)));
    std::fprintf(stderr, "mediasim: unknown command \"%s\" (see 'mediasim --help')\n", argv[1]);
    return 2;
}
