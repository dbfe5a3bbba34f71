// What the end-to-end tests share: where the built binaries are, reading a file whole, a
// scratch directory, a GET on loopback, and the reference server started on a free loopback
// port.
// Header-only; the tests that use ReferenceServer link mediasim::sim (for Subprocess).
#pragma once

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
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

// GET on loopback; returns {status, body}.
inline std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return {0, ""};
    }
    const auto req = fmt::format(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", target, port);
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string in;
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
        in.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    const auto sp = in.find(' ');
    const auto body = in.find("\r\n\r\n");
    if (sp == std::string::npos || body == std::string::npos) return {0, in};
    return {std::stoi(in.substr(sp + 1, 3)), in.substr(body + 4)};
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
