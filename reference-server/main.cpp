// mediasim-server: parses flags, builds the configuration, opens the store and serves.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>

#include "core/tts.hpp"
#include "reference-server/http_server.hpp"
#include "reference-server/log.hpp"
#include "reference-server/server_config.hpp"
#include "reference-server/storage.hpp"

int main(int argc, char** argv) {
    using namespace mediasim::server;
    std::optional<std::string> env_token;
    if (const char* t = std::getenv("TWILIO_AUTH_TOKEN")) env_token = t;
    auto cli = parse_command_line(
        std::span<char* const>(argv + 1, static_cast<std::size_t>(argc - 1)), env_token);
    if (!cli) {
        std::fprintf(stderr, "mediasim-server: %s\n", cli.error().to_string().c_str());
        return 2;
    }
    if (cli->help) {
        std::printf("%s", cli->help_text.c_str());
        return 0;
    }
    ServerConfig& config = cli->config;
    Logger log;

    std::error_code ec;
    std::filesystem::create_directories(config.data_dir, ec);
    if (ec) {
        std::fprintf(stderr, "mediasim-server: --data: cannot create \"%s\": %s\n",
                     config.data_dir.c_str(), ec.message().c_str());
        return 1;
    }
    auto storage = Storage::open(config.data_dir);
    if (!storage) {
        std::fprintf(stderr, "mediasim-server: --data: %s\n", storage.error().to_string().c_str());
        return 1;
    }
    if (config.bot.kind == "echo" && !config.bot.greeting.empty()) {
        // Spoken once at start-up (and cached under the data directory), not per call.
        auto greeting = mediasim::core::speak_mulaw(config.bot.greeting,
                                                    {"en-us", config.data_dir / "tts-cache"});
        if (greeting) {
            config.bot.greeting_audio =
                std::make_shared<const std::vector<std::uint8_t>>(std::move(*greeting));
        } else {
            log.warn("greeting_unavailable", {{"error", greeting.error().to_string()}});
        }
    }
    auto server = Server::create(config, storage->get(), log);
    if (!server) {
        std::fprintf(stderr, "mediasim-server: %s\n", server.error().to_string().c_str());
        return 1;
    }
    // Tests and scripts read the port from this line (it matters with --listen HOST:0).
    std::printf("listening on %s\n", (*server)->url().c_str());
    std::fflush(stdout);
    log.info("started", {{"url", (*server)->url()},
                         {"flow", to_string(config.flow)},
                         {"data", config.data_dir.string()},
                         {"signatures", config.auth_token.empty() ? "off" : "on"},
                         {"tls", config.tls.enabled() ? "on" : "off"},
                         {"threads", std::to_string(config.threads)}});
    (*server)->run(/*handle_signals=*/true);
    server->reset();  // every session is closed and its recording finished
    (*storage)->flush();
    log.info("stopped");
    return 0;
}
