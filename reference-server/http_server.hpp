// The reference server's network side: Boost.Beast HTTP and WebSocket on a small pool of
// threads (one io_context per thread, each connection on one of them all its life; no thread per
// call). Plain and TLS connections share the port: the first bytes tell them apart.
//
// Routes:
//   POST /voice            TwiML for the configured flow (also GET, parameters in the query)
//   POST /gather           the <Gather> action: <Say>, then <Dial> to the hand-off number
//   POST /status           stream status callbacks
//   GET  /media[/...]      the Media Streams WebSocket (MediaSession)
//   GET  /healthz, /health "ok"
//   GET  /metrics          Prometheus text
//   GET  /api/calls[/{CallSid}[/transcript|/recording.wav]] (also under /calls)
// With an auth token, the webhooks and the upgrade need a valid X-Twilio-Signature over the
// public URL (403 and a log line otherwise).
//
// Beast stays in http_server.cpp; this header is cheap to include.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "reference-server/log.hpp"
#include "reference-server/metrics.hpp"
#include "reference-server/server_config.hpp"
#include "reference-server/storage.hpp"

namespace mediasim::server {

class Server {
  public:
    // Binds the listening socket (so port() is known) and loads TLS files; starts nothing.
    // storage may be null (nothing is recorded, the calls API answers 503); it and log must
    // outlive the server. speech (transcription, the assistant) may be null; it must outlive
    // the server too.
    static core::Result<std::unique_ptr<Server>> create(ServerConfig config, Storage* storage,
                                                        Logger& log,
                                                        const SpeechServices* speech = nullptr);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;  // the bound port (the real one when 0 was asked for)
    std::string url() const;     // "http://127.0.0.1:PORT" ("http://[::1]:PORT")

    // Serves until stop() (or SIGINT/SIGTERM when handle_signals), on config.threads threads
    // including the caller's. On stop: stops accepting, closes every stream cleanly (their
    // recordings finish), waits up to `drain` for them, then returns.
    void run(bool handle_signals);
    void stop();  // from any thread; idempotent

    const Metrics& metrics() const;

    struct Impl;  // public only so http_server.cpp's sessions can name it

  private:
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace mediasim::server
