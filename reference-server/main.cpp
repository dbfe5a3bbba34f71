// mediasim-server: parses flags, builds the configuration, opens the store and serves.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>

#include "core/tts.hpp"
#include "reference-server/bot.hpp"
#include "reference-server/http_server.hpp"
#include "reference-server/log.hpp"
#include "reference-server/server_config.hpp"
#include "reference-server/speech.hpp"
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
    if (config.bot.kind != "none" && !config.bot.greeting.empty()) {
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
    // Speech: the transcription pool (engines load in parallel) and the assistant's answers,
    // spoken once here.
    SpeechServices speech;
    std::unique_ptr<TranscriptionService> transcription;
    if (config.transcription.enabled()) {
        const auto& tc = config.transcription;
        TranscriptionService::EngineFactory factory;
        if (tc.engine == "pocketsphinx")
            factory = [dir = tc.model_dir] { return make_pocketsphinx_engine({dir}); };
        else
            factory = [o = tc.openai] { return make_openai_engine(o); };
        TranscriptionOptions to;
        to.workers = tc.workers;
        to.partials = tc.partials;
        to.vad = vad_options(config.bot);
        to.max_utterance_ms = config.bot.max_utterance_ms;
        auto t = TranscriptionService::create(std::move(factory), to);
        if (!t) {
            std::fprintf(stderr, "mediasim-server: transcription: %s\n",
                         t.error().to_string().c_str());
            return 1;
        }
        transcription = std::move(*t);
        speech.transcription = transcription.get();
        speech.hints_by_flow = tc.hints;
        speech.default_flow = to_string(config.flow);
        log.info("transcription", {{"engine", tc.engine},
                                   {"workers", std::to_string(tc.workers)},
                                   {"hints", std::to_string(tc.hints.size())}});
    }
    if (config.bot.kind == "assistant") {
        auto assistant = std::make_shared<const Assistant>(config.bot.rules, config.bot.fallback,
                                                           config.bot.greeting);
        std::vector<std::string> texts = {assistant->fallback()};
        for (const auto& r : assistant->rules()) texts.push_back(r.answer);
        for (const auto& text : texts) {
            if (text.empty() || speech.voice.contains(text)) continue;
            auto audio =
                mediasim::core::speak_mulaw(text, {"en-us", config.data_dir / "tts-cache"});
            if (!audio) {
                std::fprintf(stderr, "mediasim-server: bot: cannot speak \"%s\": %s\n",
                             text.c_str(), audio.error().to_string().c_str());
                return 1;
            }
            speech.voice.emplace(text, std::move(*audio));
        }
        speech.assistant = std::move(assistant);
    }
    auto server = Server::create(config, storage->get(), log, &speech);
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
    server->reset();        // every session is closed and its recording finished
    transcription.reset();  // queued utterances are recognised and stored
    (*storage)->flush();
    log.info("stopped");
    return 0;
}
