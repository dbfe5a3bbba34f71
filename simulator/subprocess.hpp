// A child process whose output goes to a log file: `mediasim demo` starts the reference server
// with it, and end-to-end tests start the real binaries with it. Polling the log file (rather
// than reading a pipe) means a chatty child can never block on a full pipe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace mediasim::sim {

class Subprocess {
  public:
    Subprocess() = default;
    ~Subprocess();  // terminates the child if it still runs
    Subprocess(Subprocess&& other) noexcept;
    Subprocess& operator=(Subprocess&& other) noexcept;

    // Starts argv[0] (looked up in PATH when it has no '/'), stdout and stderr appended to log.
    static core::Result<Subprocess> spawn(const std::vector<std::string>& argv,
                                          const std::filesystem::path& log);

    // Waits until a line of the log contains `needle` and returns that line. Fails when the child
    // exits first or the timeout passes; the error quotes the log's last lines.
    core::Result<std::string> wait_for_line(std::string_view needle,
                                            std::chrono::milliseconds timeout);

    // SIGTERM, then SIGKILL after `grace`. Returns the exit status as the shell shows it
    // (128+N for a signal), or -1 when there was no child.
    int terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));
    // Waits for the child to exit by itself; after `timeout` it is terminated. Returns the exit
    // status as terminate() does.
    int wait(std::chrono::milliseconds timeout);
    // Non-blocking: true while the child runs.
    bool running();
    pid_t pid() const { return pid_; }
    const std::filesystem::path& log() const { return log_; }
    // The last n lines of the log (for error messages).
    std::string tail(int n = 10) const;

  private:
    pid_t pid_ = -1;
    int status_ = -1;
    std::filesystem::path log_;
    std::string name_;
};

}  // namespace mediasim::sim
