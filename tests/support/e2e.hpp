// What the end-to-end tests share: where the built binaries are, reading a file whole, a
// scratch directory, and the reference server started on a free loopback port.
// Header-only; the tests that use ReferenceServer link mediasim::sim (for Subprocess).
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "simulator/subprocess.hpp"

namespace mediasim::test {

namespace fs = std::filesystem;

// build/bin/NAME (or $MEDIASIM_BIN_DIR/NAME).
inline fs::path bin(const char* name) {
    const char* dir = std::getenv("MEDIASIM_BIN_DIR");
    return fs::path(dir ? dir : MEDIASIM_BINARY_DIR "/bin") / name;
}

inline std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A fresh, empty directory under the system's temp dir, named after the test and this process.
inline fs::path fresh_temp_dir(std::string_view prefix) {
    const auto dir = fs::temp_directory_path() / fmt::format("{}_{}", prefix, ::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

// mediasim-server --listen 127.0.0.1:0 --data DIR/server-data EXTRA..., its output in
// DIR/server.log; ready once it printed "listening on http://...".
class ReferenceServer {
  public:
    // Check ok() (an ASSERT in the caller) before use; error() says what went wrong.
    ReferenceServer(const fs::path& dir, std::vector<std::string> extra = {},
                    std::string log_name = "server.log") {
        std::vector<std::string> argv = {bin("mediasim-server").string(), "--listen", "127.0.0.1:0",
                                         "--data", (dir / "server-data").string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto s = sim::Subprocess::spawn(argv, dir / log_name);
        if (!s) {
            error_ = s.error().to_string();
            return;
        }
        proc_.emplace(std::move(*s));
        auto line = proc_->wait_for_line("listening on ", std::chrono::seconds(30));
        if (!line) {
            error_ = line.error().to_string();
            return;
        }
        base_ = line->substr(line->find("http://"));
    }
    bool ok() const { return !base_.empty(); }
    const std::string& error() const { return error_; }
    const std::string& base() const { return base_; }  // "http://127.0.0.1:PORT"
    std::uint16_t port() const {
        return static_cast<std::uint16_t>(std::stoi(base_.substr(base_.rfind(':') + 1)));
    }
    sim::Subprocess& process() { return *proc_; }
    // SIGTERM; the exit status (0 when the server finished cleanly).
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(10)) {
        return proc_ ? proc_->terminate(grace) : -1;
    }
    std::string tail(int n = 20) const { return proc_ ? proc_->tail(n) : error_; }

  private:
    std::optional<sim::Subprocess> proc_;
    std::string base_, error_;
};

}  // namespace mediasim::test
