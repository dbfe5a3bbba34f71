#include "simulator/subprocess.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace mediasim::sim {
namespace {

int shell_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

Subprocess::~Subprocess() {
    terminate();
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(other.pid_),
      status_(other.status_),
      log_(std::move(other.log_)),
      name_(std::move(other.name_)) {
    other.pid_ = -1;
}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
    if (this != &other) {
        terminate();
        pid_ = other.pid_;
        status_ = other.status_;
        log_ = std::move(other.log_);
        name_ = std::move(other.name_);
        other.pid_ = -1;
    }
    return *this;
}

core::Result<Subprocess> Subprocess::spawn(const std::vector<std::string>& argv,
                                           const std::filesystem::path& log) {
    if (argv.empty()) return core::make_error("no program to start");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    Subprocess p;
    p.log_ = log;
    p.name_ = argv[0];
    const int rc = argv[0].find('/') == std::string::npos
                       ? posix_spawnp(&p.pid_, args[0], &fa, nullptr, args.data(), environ)
                       : posix_spawn(&p.pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        p.pid_ = -1;
        return core::make_error(fmt::format("cannot start {}: {}", argv[0], std::strerror(rc)));
    }
    return p;
}

bool Subprocess::running() {
    if (pid_ < 0) return false;
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        status_ = shell_status(status);
        pid_ = -1;
        return false;
    }
    return r == 0;
}

std::string Subprocess::tail(int n) const {
    std::ifstream in(log_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::string out;
    const std::size_t from = lines.size() > static_cast<std::size_t>(n) ? lines.size() - n : 0;
    for (std::size_t i = from; i < lines.size(); ++i) out += "    " + lines[i] + "\n";
    return out;
}

core::Result<std::string> Subprocess::wait_for_line(std::string_view needle,
                                                    std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::streamoff offset = 0;
    std::string partial;
    for (;;) {
        std::ifstream in(log_, std::ios::binary);
        if (in) {
            in.seekg(offset);
            std::string chunk((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
            offset += static_cast<std::streamoff>(chunk.size());
            partial += chunk;
            std::size_t nl;
            while ((nl = partial.find('\n')) != std::string::npos) {
                std::string line = partial.substr(0, nl);
                partial.erase(0, nl + 1);
                if (line.find(needle) != std::string::npos) return line;
            }
        }
        if (!running())
            return core::make_error(
                fmt::format("{} exited (status {}) before printing \"{}\"; its "
                            "log {} ends with:\n{}",
                            name_, status_, needle, log_.string(), tail()));
        if (std::chrono::steady_clock::now() > deadline)
            return core::make_error(fmt::format("no \"{}\" in {} after {} ms; it ends with:\n{}",
                                                needle, log_.string(), timeout.count(), tail()));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

int Subprocess::wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() > deadline) return terminate();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
}

int Subprocess::terminate(std::chrono::milliseconds grace) {
    if (pid_ < 0) return status_;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (running()) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            waitpid(pid_, &status, 0);
            status_ = shell_status(status);
            pid_ = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
}

}  // namespace mediasim::sim
