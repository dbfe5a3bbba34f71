// The mediasim subcommands. Each takes its arguments (after the command name) and returns the
// process exit code: 0 success, 1 a call failed or an expectation did not hold, 2 bad usage/input.
#pragma once

#include <span>

namespace mediasim::sim {

using Args = std::span<char* const>;

int cmd_convert(Args args);
int cmd_call(Args args);
int cmd_report(Args args);
int cmd_run(Args args);
int cmd_demo(Args args);
int cmd_check(Args args);
int cmd_soak(Args args);
int cmd_record(Args args);
int cmd_replay(Args args);
int cmd_capacity(Args args);

}  // namespace mediasim::sim
