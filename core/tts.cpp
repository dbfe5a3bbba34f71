#include "core/tts.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/g711.hpp"
#include "core/signature.hpp"
#include "core/wav.hpp"

extern char** environ;

namespace mediasim::core {
namespace {

namespace fs = std::filesystem;

// Runs a program without a shell (its stdout to /dev/null); returns its exit status or -1.
int run_program(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

Result<std::vector<std::uint8_t>> speak_mulaw(std::string_view text, const SpeakOptions& opts) {
    const std::string key = sha256_hex(opts.voice + "\n" + std::string(text)).substr(0, 24);
    fs::path cached;
    if (!opts.cache_dir.empty()) {
        cached = opts.cache_dir / (key + ".wav");
        if (auto w = read_wav(cached); w && w->format.encoding == Encoding::mulaw &&
                                       w->format.sample_rate_hz == 8000 && w->format.channels == 1)
            return std::move(w->data);
    }
    std::error_code ec;
    const fs::path tmp =
        fs::temp_directory_path(ec) / fmt::format("mediasim-tts-{}-{}.wav", ::getpid(), key);
    const int rc =
        run_program({"espeak-ng", "-v", opts.voice, "-w", tmp.string(), std::string(text)});
    if (rc != 0) {
        fs::remove(tmp, ec);
        return make_error(
            rc < 0 ? "cannot run espeak-ng (install it: scripts/setup.sh)"
                   : fmt::format("espeak-ng failed (exit {}) for voice \"{}\"", rc, opts.voice));
    }
    ReadOptions ro;
    ro.sample_rate_hz = 8000;
    ro.downmix = true;
    auto pcm = read_wav_pcm(tmp, ro);
    fs::remove(tmp, ec);
    if (!pcm) return make_error("espeak-ng output: " + pcm.error().to_string());
    std::vector<std::uint8_t> mulaw(pcm->samples.size());
    ulaw_encode(pcm->samples, mulaw.data());
    if (!cached.empty()) {
        fs::create_directories(opts.cache_dir, ec);
        const fs::path part = cached.string() + fmt::format(".{}.part", ::getpid());
        if (write_wav(part, {Encoding::mulaw, 8000, 1}, mulaw)) fs::rename(part, cached, ec);
    }
    return mulaw;
}

}  // namespace mediasim::core
