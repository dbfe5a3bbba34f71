#include "reference-server/http_server.hpp"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/form.hpp"
#include "core/ids.hpp"
#include "core/signature.hpp"
#include "net/tls.hpp"
#include "reference-server/media_session.hpp"
#include "reference-server/twiml_flows.hpp"

namespace mediasim::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = beast::error_code;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

namespace {

constexpr std::size_t kMaxBodyBytes = 64 * 1024;  // Twilio's own TwiML limit
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr auto kDrainTime = std::chrono::seconds(3);

bool is_quiet(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
           ec == websocket::error::closed || ec == beast::error::timeout ||
           ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::ssl::error::stream_truncated;
}

std::string transcription_metrics(const TranscriptionService& t) {
    std::string text;
    const auto add = [&](std::string_view name, std::string_view type, std::string_view help,
                         auto v) {
        text += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, v);
    };
    add("mediasim_server_transcription_queue_depth", "gauge",
        "Utterance chunks waiting for a transcription worker.", t.queue_depth());
    add("mediasim_server_transcription_queued_seconds", "gauge",
        "Audio waiting for a transcription worker, in seconds.", t.queued_seconds());
    add("mediasim_server_transcription_real_time_factor", "gauge",
        "Recognition time over audio time, since start (below 1: faster than real time).",
        t.real_time_factor());
    add("mediasim_server_transcription_audio_seconds_total", "counter",
        "Caller audio recognised, in seconds.", t.audio_seconds());
    add("mediasim_server_transcription_utterances_total", "counter", "Utterances recognised.",
        t.utterances());
    add("mediasim_server_transcription_errors_total", "counter", "Utterances the engine failed on.",
        t.errors());
    add("mediasim_server_transcription_workers", "gauge", "Transcription workers.", t.workers());
    return text;
}

std::string param(const core::Parameters& p, std::string_view name) {
    for (const auto& [k, v] : p)
        if (k == name) return v;
    return {};
}

}  // namespace

// A connection the server can close when it stops.
class Session {
  public:
    virtual ~Session() = default;
    virtual void shutdown() = 0;  // thread-safe: posts onto the session's io_context
};

struct Server::Impl {
    ServerConfig config;
    Storage* storage;
    Logger& log;
    const SpeechServices* speech_services = nullptr;
    Metrics metrics;
    CallDirectory calls;

    // Live sessions, so stop() can close them. Declared before the io_context: sessions still
    // owned by handlers leave the registry when the io_context is destroyed.
    std::mutex sessions_mu;
    std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
    std::atomic<int> ws_sessions{0};

    // One io_context per thread, each run by its own thread (no strands: a connection lives
    // on one context all its life, so its handlers never run concurrently). `ioc` also holds
    // the acceptor, the signals and the timers; accepted connections go round-robin to it
    // and the others.
    asio::io_context ioc{1};
    std::vector<std::unique_ptr<asio::io_context>> more_iocs;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> more_work;
    std::size_t next_ioc = 0;  // on ioc's thread (the acceptor's)
    std::shared_ptr<asio::ssl::context> tls;
    tcp::acceptor acceptor;
    std::uint16_t bound_port = 0;
    std::atomic<bool> stopping{false};
    std::optional<asio::steady_timer> drain_timer;
    std::optional<asio::steady_timer> rate_timer;  // frames/s, once a second
    std::chrono::steady_clock::time_point rate_last;
    std::chrono::steady_clock::time_point drain_deadline;
    asio::executor_work_guard<asio::io_context::executor_type> work;

    Impl(ServerConfig cfg, Storage* st, Logger& lg)
        : config(std::move(cfg)), storage(st), log(lg), acceptor(ioc), work(ioc.get_executor()) {
        for (int i = 1; i < config.threads; ++i) {
            more_iocs.push_back(std::make_unique<asio::io_context>(1));
            more_work.emplace_back(more_iocs.back()->get_executor());
        }
    }

    // The context the next accepted connection lives on.
    asio::io_context& next_context() {
        const std::size_t i = next_ioc++ % (more_iocs.size() + 1);
        return i == 0 ? ioc : *more_iocs[i - 1];
    }
    void stop_all() {
        work.reset();
        for (auto& w : more_work) w.reset();
        ioc.stop();
        for (auto& c : more_iocs) c->stop();
    }

    // A limit was enforced: one log line and one count.
    void limit_reached(Limit l, std::string_view call_sid, std::string_view msg) {
        metrics.limit_hit(l);
        log.warn("limit_reached", {{"call_sid", call_sid}, {"limit", to_string(l)}, {"msg", msg}});
    }

    void add_session(const std::shared_ptr<Session>& s) {
        std::lock_guard lock(sessions_mu);
        sessions.emplace(s.get(), s);
    }
    void remove_session(Session* s) {
        std::lock_guard lock(sessions_mu);
        sessions.erase(s);
    }

    void do_accept();
    void begin_stop();
    void drain_tick();
    void rate_tick();

    // The base URL the outside used: public_url when configured, else the Host header.
    std::string public_base(const Request& req, bool tls_conn, bool websocket) const;
    bool signature_ok(const Request& req, bool tls_conn, bool websocket,
                      const core::Parameters& params, std::string_view what);
    Response handle(const Request& req, bool tls_conn);
    Response voice(const Request& req, bool tls_conn);
    Response gather(const Request& req, bool tls_conn);
    Response status(const Request& req, bool tls_conn);
    Response api(const Request& req, std::string_view rest);
    Response reply(const Request& req, http::status code, std::string body,
                   std::string_view content_type = "text/plain; charset=utf-8");
    // The webhook's parameters (form body for POST, query for GET), or a 400 response.
    std::variant<core::Parameters, Response> webhook_params(const Request& req);
};

namespace {

std::string target_path(std::string_view target) {
    const auto q = target.find('?');
    return std::string(q == std::string_view::npos ? target : target.substr(0, q));
}

bool is_media_path(std::string_view path) {
    return path == "/media" || path.starts_with("/media/");
}

// ---- WebSocket: the media endpoint -----------------------------------------------------------

template <class Stream>
class WsSession final : public Session,
                        public MediaSink,
                        public std::enable_shared_from_this<WsSession<Stream>> {
  public:
    WsSession(Stream&& stream, Server::Impl& srv, std::string path)
        : ws_(std::move(stream)),
          srv_(srv),
          path_(path),
          media_(std::move(path),
                 MediaSessionDeps{srv.storage, srv.metrics, srv.log, srv.config.bot, srv.calls,
                                  srv.speech_services, srv.config.fault},
                 *this) {
        srv_.ws_sessions.fetch_add(1);
    }
    ~WsSession() override {
        media_.on_closed("closed");
        srv_.remove_session(this);
        srv_.ws_sessions.fetch_sub(1);
    }

    void start(Request req) {
        srv_.add_session(this->shared_from_this());
        beast::get_lowest_layer(ws_).expires_never();
        if (const auto sndbuf = srv_.config.limits.socket_send_buffer_bytes; sndbuf > 0) {
            error_code ignored;
            beast::get_lowest_layer(ws_).socket().set_option(
                asio::socket_base::send_buffer_size(static_cast<int>(sndbuf)), ignored);
        }
        websocket::stream_base::timeout t{};
        t.handshake_timeout = std::chrono::seconds(10);
        // The idle timeout is the session's own (arm_idle): Beast's re-arms its timer on every
        // read, a cancelled wait and a new one per 20 ms frame.
        t.idle_timeout = websocket::stream_base::none();
        t.keep_alive_pings = false;
        ws_.set_option(t);
        ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
            res.set(http::field::server, "mediasim-server");
        }));
        ws_.read_message_max(srv_.config.limits.max_message_bytes);
        ws_.async_accept(
            req, beast::bind_front_handler(&WsSession::on_accept, this->shared_from_this()));
    }

    void shutdown() override {
        asio::post(ws_.get_executor(), [self = this->shared_from_this()] {
            self->media_.on_closed("server_stop");
            self->close_soon();
        });
    }

    // MediaSink: called on the connection's thread by the media session.
    void send_text(std::string frame) override {
        if (closing_) return;
        if (out_bytes_ + frame.size() > srv_.config.limits.send_queue_max_bytes) {
            srv_.metrics.frames_dropped_out.fetch_add(1);
            if (!overflow_logged_)
                srv_.limit_reached(
                    Limit::send_queue_full, media_.call_sid(),
                    fmt::format("Twilio is not reading: {} bytes wait to be written; frames to it "
                                "are dropped until the queue drains",
                                out_bytes_));
            overflow_logged_ = true;
            return;
        }
        out_bytes_ += frame.size();
        out_.push_back(std::move(frame));
        out_binary_.push_back(std::exchange(next_binary_, false));
        if (out_.size() == 1) {
            write_progress_ = MediaSession::Clock::now();
            do_write();
        }
    }
    void post(std::function<void()> fn) override {
        asio::post(ws_.get_executor(), [w = this->weak_from_this(), fn = std::move(fn)] {
            if (auto self = w.lock()) fn();
        });
    }

    // --fault hooks (faults.hpp).
    void send_binary(std::string frame) override {
        next_binary_ = true;
        send_text(std::move(frame));
        next_binary_ = false;
    }
    void close_stream(bool abrupt) override {
        if (!abrupt) return close_soon();
        closing_ = true;
        error_code ec;
        beast::get_lowest_layer(ws_).socket().close(ec);
    }
    void after(std::chrono::milliseconds delay, std::function<void()> fn) override {
        auto t = std::make_shared<asio::steady_timer>(ws_.get_executor(), delay);
        t->async_wait([t, weak = this->weak_from_this(), fn = std::move(fn)](error_code ec) {
            if (auto self = weak.lock(); self && !ec && !self->closing_) fn();
        });
    }

  private:
    void on_accept(error_code ec) {
        if (ec) return fail(ec, "websocket accept");
        srv_.metrics.connections_ws.fetch_add(1);
        srv_.log.info("websocket_open", {{"path", path_}});
        last_read_ = MediaSession::Clock::now();
        arm_idle(last_read_ + idle_limit());
        do_read();
    }

    // Twilio sends a frame every 20 ms, silence included: a quiet stream is a dead one. One
    // timer per stream wakes at the last read + the limit, and while frames keep coming it
    // only moves its deadline to there (once per limit, not once per frame).
    std::chrono::seconds idle_limit() const {
        return std::chrono::seconds(srv_.config.limits.idle_timeout_seconds);
    }
    void arm_idle(MediaSession::Clock::time_point at) {
        idle_timer_.expires_at(at);
        idle_timer_.async_wait([w = this->weak_from_this()](error_code ec) {
            if (auto self = w.lock(); self && !ec) self->on_idle_timer();
        });
    }
    void on_idle_timer() {
        if (closing_) return;
        const auto deadline = last_read_ + idle_limit();
        if (MediaSession::Clock::now() < deadline) return arm_idle(deadline);
        idle_expired_ = true;  // the read in flight fails; fail() reports the limit
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
    }

    void do_read() {
        ws_.async_read(in_,
                       beast::bind_front_handler(&WsSession::on_read, this->shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        if (ec) return fail(ec, "read frame");
        const auto arrival = MediaSession::Clock::now();
        last_read_ = arrival;
        // A slow reader: Twilio keeps sending but has not taken our frames for a long time.
        if (!out_.empty() && !closing_ &&
            arrival - write_progress_ >
                std::chrono::seconds(srv_.config.limits.write_timeout_seconds)) {
            srv_.limit_reached(
                Limit::write_timeout, media_.call_sid(),
                fmt::format("no frame to Twilio could be written for {} s ({} bytes queued); "
                            "closing the stream",
                            srv_.config.limits.write_timeout_seconds, out_bytes_));
            media_.on_closed("write_timeout");
            closing_ = true;
            error_code ignored;
            beast::get_lowest_layer(ws_).socket().close(ignored);
            return;
        }
        if (ws_.got_text()) {
            const auto data = in_.cdata();
            media_.on_text(std::string_view(static_cast<const char*>(data.data()), data.size()),
                           arrival);
        } else {
            media_.on_binary(in_.size());
        }
        in_.consume(in_.size());
        do_read();
    }

    void do_write() {
        ws_.text(!out_binary_.front());
        ws_.async_write(asio::buffer(out_.front()),
                        beast::bind_front_handler(&WsSession::on_write, this->shared_from_this()));
    }

    void on_write(error_code ec, std::size_t) {
        if (ec) return fail(ec, "write frame");
        write_progress_ = MediaSession::Clock::now();
        out_bytes_ -= out_.front().size();
        out_.pop_front();
        out_binary_.pop_front();
        if (out_bytes_ == 0) overflow_logged_ = false;
        if (!out_.empty()) return do_write();
        if (close_pending_) do_close();
    }

    // Closes after what is queued has been written (one write or close in flight at a time).
    void close_soon() {
        if (closing_ || close_pending_) return;
        close_pending_ = true;
        if (out_.empty()) do_close();
    }

    void do_close() {
        closing_ = true;
        ws_.async_close(websocket::close_code::going_away,
                        [self = this->shared_from_this()](error_code) {});
    }

    void fail(error_code ec, std::string_view step) {
        if (ec == websocket::error::message_too_big) {
            media_.on_closed("message_too_big");
            return srv_.limit_reached(
                Limit::message_too_big, media_.call_sid(),
                fmt::format("a WebSocket message over {} bytes; closed with 1009",
                            srv_.config.limits.max_message_bytes));
        }
        idle_timer_.cancel();
        if ((idle_expired_ || ec == beast::error::timeout) && !closing_) {
            media_.on_closed("idle_timeout");
            return srv_.limit_reached(Limit::idle_timeout, media_.call_sid(),
                                      fmt::format("nothing received for {} s; stream closed",
                                                  srv_.config.limits.idle_timeout_seconds));
        }
        media_.on_closed(is_quiet(ec) ? "closed" : "error");
        if (is_quiet(ec) || closing_) return;
        srv_.metrics.websocket_errors.fetch_add(1);
        srv_.log.warn("websocket_error", {{"call_sid", media_.call_sid()},
                                          {"path", path_},
                                          {"step", step},
                                          {"error", ec.message()}});
    }

    websocket::stream<Stream> ws_;
    asio::steady_timer idle_timer_{ws_.get_executor()};
    MediaSession::Clock::time_point last_read_;
    bool idle_expired_ = false;
    Server::Impl& srv_;
    std::string path_;
    MediaSession media_;
    beast::flat_buffer in_;
    std::deque<std::string> out_;
    std::deque<bool> out_binary_;  // per queued frame: binary (only --fault binary-frame)
    bool next_binary_ = false;
    std::size_t out_bytes_ = 0;                       // bytes in out_
    MediaSession::Clock::time_point write_progress_;  // last write completed (or queue began)
    bool close_pending_ = false, closing_ = false, overflow_logged_ = false;
};

// ---- HTTP ------------------------------------------------------------------------------------

template <class Stream>
class HttpSession final : public Session, public std::enable_shared_from_this<HttpSession<Stream>> {
  public:
    HttpSession(Stream&& stream, beast::flat_buffer buffer, Server::Impl& srv, bool tls)
        : stream_(std::move(stream)), buffer_(std::move(buffer)), srv_(srv), tls_(tls) {}
    ~HttpSession() override { srv_.remove_session(this); }

    void start() {
        srv_.add_session(this->shared_from_this());
        do_read();
    }

    void shutdown() override {
        asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
            self->stopping_ = true;
            if (!self->busy_) {
                error_code ec;
                beast::get_lowest_layer(self->stream_).socket().close(ec);
            }
        });
    }

  private:
    void do_read() {
        if (stopping_) return;
        parser_.emplace();
        parser_->body_limit(kMaxBodyBytes);
        parser_->header_limit(kMaxHeaderBytes);
        beast::get_lowest_layer(stream_).expires_after(
            std::chrono::seconds(srv_.config.limits.http_timeout_seconds));
        busy_ = false;
        http::async_read(
            stream_, buffer_, *parser_,
            beast::bind_front_handler(&HttpSession::on_read, this->shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        busy_ = true;
        if (ec == http::error::body_limit) {
            srv_.limit_reached(
                Limit::body_too_large, "",
                fmt::format("request body over {} bytes refused with 413", kMaxBodyBytes));
            return send(srv_.reply(Request{}, http::status::payload_too_large,
                                   fmt::format("request body over {} bytes\n", kMaxBodyBytes)),
                        false);
        }
        if (ec == http::error::header_limit) {
            srv_.limit_reached(
                Limit::header_too_large, "",
                fmt::format("request headers over {} bytes refused with 431", kMaxHeaderBytes));
            return send(srv_.reply(Request{}, http::status::request_header_fields_too_large,
                                   fmt::format("request headers over {} bytes\n", kMaxHeaderBytes)),
                        false);
        }
        // A client that began a request and did not finish it in time (an idle keep-alive
        // connection timing out is normal and quiet).
        if (ec == beast::error::timeout && (parser_->got_some() || buffer_.size() > 0)) {
            srv_.limit_reached(Limit::http_timeout, "",
                               fmt::format("request not complete after {} s; connection closed",
                                           srv_.config.limits.http_timeout_seconds));
            return;
        }
        if (ec) return fail(ec, "read request");
        Request req = parser_->release();
        srv_.metrics.http_requests.fetch_add(1);
        const auto path = target_path(req.target());
        if (websocket::is_upgrade(req)) {
            if (!is_media_path(path)) {
                return send(
                    srv_.reply(req, http::status::not_found,
                               fmt::format("no WebSocket endpoint at {} (use /media)\n", path)),
                    false);
            }
            if (srv_.config.fault == Fault::upgrade_refused)
                return send(srv_.reply(req, http::status::forbidden, "--fault upgrade-refused\n"),
                            false);
            if (!srv_.signature_ok(req, tls_, true, {}, "websocket upgrade"))
                return send(srv_.reply(req, http::status::forbidden,
                                       "missing or invalid X-Twilio-Signature\n"),
                            false);
            if (srv_.ws_sessions.load() >= srv_.config.limits.max_streams) {
                const auto path_sid = path.substr(path.rfind('/') + 1);
                srv_.limit_reached(Limit::max_streams,
                                   core::is_valid_sid(path_sid, "CA") ? path_sid : "",
                                   fmt::format("{} streams open; upgrade refused with 503",
                                               srv_.ws_sessions.load()));
                Response r = srv_.reply(req, http::status::service_unavailable,
                                        fmt::format("too many open streams (limit {})\n",
                                                    srv_.config.limits.max_streams));
                r.set(http::field::retry_after, "1");
                return send(std::move(r), false);
            }
            beast::get_lowest_layer(stream_).expires_never();
            std::make_shared<WsSession<Stream>>(std::move(stream_), srv_, path)
                ->start(std::move(req));
            return;
        }
        Response res = srv_.handle(req, tls_);
        const bool keep_alive = res.keep_alive() && !stopping_;
        send(std::move(res), keep_alive);
    }

    void send(Response res, bool keep_alive) {
        res.keep_alive(keep_alive);
        if (res.result_int() >= 400) srv_.metrics.http_errors.fetch_add(1);
        res.prepare_payload();
        auto msg = std::make_shared<Response>(std::move(res));
        http::async_write(stream_, *msg,
                          [self = this->shared_from_this(), msg, keep_alive](
                              error_code ec, std::size_t) { self->on_write(ec, keep_alive); });
    }

    void on_write(error_code ec, bool keep_alive) {
        if (ec) return fail(ec, "write response");
        if (!keep_alive || stopping_) return do_close();
        do_read();
    }

    void do_close() {
        if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
            error_code ec;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        } else {
            beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
            stream_.async_shutdown([self = this->shared_from_this()](error_code) {});
        }
    }

    void fail(error_code ec, std::string_view step) {
        if (is_quiet(ec) || stopping_) return;
        srv_.log.warn("http_error", {{"step", step}, {"error", ec.message()}});
    }

    Stream stream_;
    beast::flat_buffer buffer_;
    Server::Impl& srv_;
    bool tls_;
    bool busy_ = false, stopping_ = false;
    std::optional<http::request_parser<http::string_body>> parser_;
};

// Reads the first bytes: a TLS ClientHello goes to TLS (when configured), anything else to HTTP.
class DetectSession : public std::enable_shared_from_this<DetectSession> {
  public:
    DetectSession(tcp::socket&& socket, Server::Impl& srv)
        : stream_(std::move(socket)), srv_(srv) {}

    void start() {
        if (!srv_.tls) {
            std::make_shared<HttpSession<beast::tcp_stream>>(std::move(stream_), std::move(buffer_),
                                                             srv_, false)
                ->start();
            return;
        }
        stream_.expires_after(std::chrono::seconds(srv_.config.limits.http_timeout_seconds));
        beast::async_detect_ssl(
            stream_, buffer_,
            beast::bind_front_handler(&DetectSession::on_detect, shared_from_this()));
    }

  private:
    void on_detect(error_code ec, bool is_tls) {
        if (ec) return;
        if (!is_tls) {
            std::make_shared<HttpSession<beast::tcp_stream>>(std::move(stream_), std::move(buffer_),
                                                             srv_, false)
                ->start();
            return;
        }
        tls_stream_.emplace(std::move(stream_), *srv_.tls);
        tls_stream_->async_handshake(
            asio::ssl::stream_base::server, buffer_.data(),
            beast::bind_front_handler(&DetectSession::on_handshake, shared_from_this()));
    }

    void on_handshake(error_code ec, std::size_t used) {
        if (ec) {
            srv_.log.warn("tls_handshake_failed", {{"error", ec.message()}});
            return;
        }
        buffer_.consume(used);
        std::make_shared<HttpSession<beast::ssl_stream<beast::tcp_stream>>>(
            std::move(*tls_stream_), std::move(buffer_), srv_, true)
            ->start();
    }

    beast::tcp_stream stream_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls_stream_;
    beast::flat_buffer buffer_;
    Server::Impl& srv_;
};

}  // namespace

// ---- accepting and stopping ------------------------------------------------------------------

void Server::Impl::do_accept() {
    acceptor.async_accept(next_context(), [this](error_code ec, tcp::socket socket) {
        if (stopping.load()) return;
        if (ec) {
            if (ec != asio::error::operation_aborted)
                log.warn("accept_failed", {{"error", ec.message()}});
        } else {
            std::make_shared<DetectSession>(std::move(socket), *this)->start();
        }
        do_accept();
    });
}

void Server::Impl::begin_stop() {
    if (stopping.exchange(true)) return;
    log.info("stopping", {{"active_streams", std::to_string(metrics.streams_active.load())}});
    asio::post(acceptor.get_executor(), [this] {
        error_code ec;
        acceptor.close(ec);
    });
    std::vector<std::shared_ptr<Session>> live;
    {
        std::lock_guard lock(sessions_mu);
        for (auto& [p, w] : sessions)
            if (auto s = w.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) s->shutdown();
    live.clear();
    asio::post(ioc, [this] {
        drain_deadline = std::chrono::steady_clock::now() + kDrainTime;
        drain_timer.emplace(ioc);
        drain_tick();
    });
}

void Server::Impl::rate_tick() {
    const auto now = std::chrono::steady_clock::now();
    metrics.sample_rates(std::chrono::duration<double>(now - rate_last).count());
    rate_last = now;
    rate_timer->expires_after(std::chrono::seconds(1));
    rate_timer->async_wait([this](error_code ec) {
        if (!ec && !stopping.load()) rate_tick();
    });
}

void Server::Impl::drain_tick() {
    if (ws_sessions.load() == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
        if (ws_sessions.load() != 0)
            log.warn("drain_timeout", {{"open_streams", std::to_string(ws_sessions.load())}});
        stop_all();
        return;
    }
    drain_timer->expires_after(std::chrono::milliseconds(20));
    drain_timer->async_wait([this](error_code) { drain_tick(); });
}

// ---- HTTP handlers ---------------------------------------------------------------------------

Response Server::Impl::reply(const Request& req, http::status code, std::string body,
                             std::string_view content_type) {
    Response res{code, req.version() ? req.version() : 11};
    res.set(http::field::server, "mediasim-server");
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    return res;
}

std::string Server::Impl::public_base(const Request& req, bool tls_conn, bool websocket) const {
    std::string base = config.public_url;
    if (base.empty()) {
        const auto host = req[http::field::host];
        base = fmt::format("{}://{}", tls_conn ? "https" : "http",
                           host.empty() ? config.listen.to_string() : std::string(host));
    }
    if (websocket) {
        if (base.starts_with("https://"))
            base = "wss://" + base.substr(8);
        else if (base.starts_with("http://"))
            base = "ws://" + base.substr(7);
    }
    return base;
}

bool Server::Impl::signature_ok(const Request& req, bool tls_conn, bool websocket,
                                const core::Parameters& params, std::string_view what) {
    if (config.auth_token.empty() || config.fault == Fault::no_signature_check) return true;
    const auto sig = req["X-Twilio-Signature"];
    const auto url = public_base(req, tls_conn, websocket) + std::string(req.target());
    if (!sig.empty() && core::validate_signature(config.auth_token, sig, url, params)) return true;
    metrics.signature_rejected.fetch_add(1);
    // An upgrade has no parameters; the call id is usually the last path segment.
    std::string call_sid = param(params, "CallSid");
    if (call_sid.empty() && websocket) {
        const auto path = target_path(req.target());
        const auto last = path.substr(path.rfind('/') + 1);
        if (core::is_valid_sid(last, "CA")) call_sid = last;
    }
    log.warn("signature_rejected",
             {{"call_sid", call_sid},
              {"what", what},
              {"url", url},
              {"why", sig.empty() ? "no X-Twilio-Signature header" : "signature does not match"}});
    return false;
}

std::variant<core::Parameters, Response> Server::Impl::webhook_params(const Request& req) {
    if (req.method() == http::verb::get) {
        const std::string_view target = req.target();
        const auto q = target.find('?');
        if (q == std::string_view::npos) return core::Parameters{};
        auto p = core::form_decode(target.substr(q + 1));
        if (!p)
            return reply(req, http::status::bad_request,
                         fmt::format("bad query string: {}\n", p.error().to_string()));
        return std::move(*p);
    }
    const auto ct = req[http::field::content_type];
    if (!ct.starts_with("application/x-www-form-urlencoded"))
        return reply(req, http::status::bad_request,
                     fmt::format("expected Content-Type application/x-www-form-urlencoded, got "
                                 "\"{}\"\n",
                                 std::string(ct)));
    auto p = core::form_decode(req.body());
    if (!p)
        return reply(req, http::status::bad_request,
                     fmt::format("bad form body: {}\n", p.error().to_string()));
    return std::move(*p);
}

Response Server::Impl::voice(const Request& req, bool tls_conn) {
    auto pv = webhook_params(req);
    if (auto* r = std::get_if<Response>(&pv)) return std::move(*r);
    auto& params = std::get<core::Parameters>(pv);
    if (!signature_ok(req, tls_conn, false,
                      req.method() == http::verb::post ? params : core::Parameters{},
                      "voice webhook"))
        return reply(req, http::status::forbidden, "missing or invalid X-Twilio-Signature\n");
    const auto call_sid = param(params, "CallSid");
    if (call_sid.empty())
        return reply(req, http::status::bad_request, "the voice webhook needs a CallSid\n");
    if (config.fault == Fault::webhook_status)
        return reply(req, http::status::internal_server_error, "--fault webhook-status\n");
    if (config.fault == Fault::webhook_slow) std::this_thread::sleep_for(std::chrono::seconds(2));
    const auto twiml = fault_twiml(
        config.fault, voice_twiml(config.flow, config.twiml,
                                  TwimlContext{public_base(req, tls_conn, false), params}));
    calls.remember(call_sid, config.flow);
    metrics.calls.fetch_add(1);
    log.info("voice", {{"call_sid", call_sid},
                       {"from", param(params, "From")},
                       {"to", param(params, "To")},
                       {"flow", to_string(config.flow)}});
    if (storage) {
        CallInfo info;
        info.call_sid = call_sid;
        info.account_sid = param(params, "AccountSid");
        info.from = param(params, "From");
        info.to = param(params, "To");
        info.direction = param(params, "Direction");
        info.flow = to_string(config.flow);
        info.webhook = params;
        storage->record_call(info);
    }
    return reply(
        req, http::status::ok, twiml,
        config.fault == Fault::webhook_content_type ? "text/plain" : "text/xml; charset=utf-8");
}

Response Server::Impl::gather(const Request& req, bool tls_conn) {
    auto pv = webhook_params(req);
    if (auto* r = std::get_if<Response>(&pv)) return std::move(*r);
    auto& params = std::get<core::Parameters>(pv);
    if (!signature_ok(req, tls_conn, false,
                      req.method() == http::verb::post ? params : core::Parameters{},
                      "gather action"))
        return reply(req, http::status::forbidden, "missing or invalid X-Twilio-Signature\n");
    const auto call_sid = param(params, "CallSid");
    const auto speech = param(params, "SpeechResult");
    const auto digits = param(params, "Digits");
    log.info("gather", {{"call_sid", call_sid}, {"speech", speech}, {"digits", digits}});
    if (storage && !call_sid.empty())
        storage->call_event(call_sid, "gather",
                            fmt::format("SpeechResult={} Digits={}", speech, digits));
    return reply(req, http::status::ok, gather_action_twiml(config.twiml, params),
                 "text/xml; charset=utf-8");
}

Response Server::Impl::status(const Request& req, bool tls_conn) {
    auto pv = webhook_params(req);
    if (auto* r = std::get_if<Response>(&pv)) return std::move(*r);
    auto& params = std::get<core::Parameters>(pv);
    if (!signature_ok(req, tls_conn, false, params, "status callback"))
        return reply(req, http::status::forbidden, "missing or invalid X-Twilio-Signature\n");
    const auto call_sid = param(params, "CallSid");
    const auto event = param(params, "StreamEvent");
    log.info("stream_status", {{"call_sid", call_sid},
                               {"stream_sid", param(params, "StreamSid")},
                               {"event", event},
                               {"error", param(params, "StreamError")}});
    if (storage && !call_sid.empty())
        storage->call_event(call_sid, "stream_status",
                            fmt::format("{} {} {}", event, param(params, "StreamSid"),
                                        param(params, "StreamError")));
    if (config.fault == Fault::status_callback)
        return reply(req, http::status::internal_server_error, "--fault status-callback\n");
    auto res = reply(req, http::status::no_content, "");
    return res;
}

Response Server::Impl::api(const Request& req, std::string_view rest) {
    if (!config.api_token.empty()) {
        const auto auth = req[http::field::authorization];
        if (auth != "Bearer " + config.api_token) {
            Response r = reply(req, http::status::unauthorized, "a bearer token is required\n");
            r.set(http::field::www_authenticate, "Bearer");
            return r;
        }
    }
    if (!storage) return reply(req, http::status::service_unavailable, "no storage\n");
    if (rest.empty() || rest == "/") {
        std::size_t limit = 100;
        const std::string_view target = req.target();
        if (const auto q = target.find('?'); q != std::string_view::npos) {
            if (auto p = core::form_decode(target.substr(q + 1))) {
                const auto l = param(*p, "limit");
                if (!l.empty()) {
                    try {
                        limit = std::clamp<std::size_t>(std::stoul(l), 1, 10'000);
                    } catch (const std::exception&) {
                        return reply(req, http::status::bad_request,
                                     fmt::format("limit: \"{}\" is not a number\n", l));
                    }
                }
            }
        }
        return reply(req, http::status::ok, storage->calls_json(limit), "application/json");
    }
    // /{CallSid}[/transcript|/recording.wav]
    std::string_view r = rest.substr(1);
    const auto slash = r.find('/');
    const std::string sid(r.substr(0, slash));
    const std::string_view sub = slash == std::string_view::npos ? "" : r.substr(slash);
    if (!core::is_valid_sid(sid, "CA"))
        return reply(req, http::status::bad_request,
                     fmt::format("\"{}\" is not a CallSid (CA followed by 32 hex digits)\n", sid));
    if (sub.empty()) {
        auto j = storage->call_json(sid);
        if (!j) return reply(req, http::status::not_found, "no such call\n");
        return reply(req, http::status::ok, std::move(*j), "application/json");
    }
    if (sub == "/transcript") {
        auto t = storage->transcript_text(sid);
        if (!t) return reply(req, http::status::not_found, "no such call\n");
        return reply(req, http::status::ok, std::move(*t));
    }
    if (sub == "/recording.wav") {
        auto p = storage->recording_path(sid);
        if (!p) return reply(req, http::status::not_found, "no recording for this call\n");
        std::ifstream in(*p, std::ios::binary);
        if (!in) return reply(req, http::status::not_found, "recording file is missing\n");
        std::ostringstream ss;
        ss << in.rdbuf();
        return reply(req, http::status::ok, ss.str(), "audio/wav");
    }
    return reply(req, http::status::not_found,
                 fmt::format("unknown call resource \"{}\"\n", std::string(sub)));
}

Response Server::Impl::handle(const Request& req, bool tls_conn) {
    const auto path = target_path(req.target());
    const auto method = req.method();
    const auto allow = [&](std::initializer_list<http::verb> verbs,
                           std::string_view allow_header) -> std::optional<Response> {
        for (auto v : verbs)
            if (v == method) return std::nullopt;
        Response r = reply(req, http::status::method_not_allowed,
                           fmt::format("{} does not take {} (allowed: {})\n", path,
                                       std::string(req.method_string()), allow_header));
        r.set(http::field::allow, allow_header);
        return r;
    };
    if (path == "/voice") {
        if (auto r = allow({http::verb::post, http::verb::get}, "POST, GET")) return std::move(*r);
        return voice(req, tls_conn);
    }
    if (path == "/gather") {
        if (auto r = allow({http::verb::post, http::verb::get}, "POST, GET")) return std::move(*r);
        return gather(req, tls_conn);
    }
    if (path == "/status") {
        if (auto r = allow({http::verb::post}, "POST")) return std::move(*r);
        return status(req, tls_conn);
    }
    if (path == "/healthz" || path == "/health") {
        if (auto r = allow({http::verb::get, http::verb::head}, "GET, HEAD")) return std::move(*r);
        return reply(req, http::status::ok, stopping.load() ? "stopping\n" : "ok\n");
    }
    if (path == "/metrics") {
        if (auto r = allow({http::verb::get}, "GET")) return std::move(*r);
        std::string text = metrics.render();
        if (storage) {
            const auto st = storage->stats();
            const auto add = [&](std::string_view name, std::string_view type,
                                 std::string_view help, std::uint64_t v) {
                text +=
                    fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, v);
            };
            add("mediasim_server_recordings_open", "gauge", "Streams being recorded now.",
                st.open_recordings);
            add("mediasim_server_db_queue_depth", "gauge", "Rows waiting for the SQLite writer.",
                st.db_queue_depth);
            add("mediasim_server_db_rows_written_total", "counter", "Rows written to SQLite.",
                st.db_rows_written);
            add("mediasim_server_storage_errors_total", "counter",
                "SQLite rows refused plus recordings that could not be written.",
                st.db_errors + st.recording_errors);
        }
        if (speech_services && speech_services->transcription)
            text += transcription_metrics(*speech_services->transcription);
        return reply(req, http::status::ok, std::move(text), "text/plain; version=0.0.4");
    }
    for (std::string_view prefix : {"/api/calls", "/calls"}) {
        if (path == prefix || path.starts_with(std::string(prefix) + "/")) {
            if (auto r = allow({http::verb::get}, "GET")) return std::move(*r);
            return api(req, std::string_view(path).substr(prefix.size()));
        }
    }
    if (is_media_path(path))
        return reply(req, http::status::upgrade_required,
                     "the media endpoint speaks WebSocket only (send an Upgrade request)\n");
    return reply(req, http::status::not_found, fmt::format("nothing at {}\n", path));
}

// ---- Server ----------------------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
    if (impl_) {
        impl_->stopping = true;
        impl_->stop_all();
    }
}

core::Result<std::unique_ptr<Server>> Server::create(ServerConfig config, Storage* storage,
                                                     Logger& log, const SpeechServices* speech) {
    if (auto st = validate(config); !st) return st.error();
    auto impl = std::make_unique<Impl>(std::move(config), storage, log);
    impl->speech_services = speech;
    if (impl->config.tls.enabled()) {
        auto ctx = net::make_server_tls({impl->config.tls.cert_file, impl->config.tls.key_file});
        if (!ctx) return ctx.error();
        impl->tls = std::move(*ctx);
    }
    error_code ec;
    const auto addr = asio::ip::make_address(impl->config.listen.host, ec);
    if (ec)
        return core::make_error(
            fmt::format("\"{}\" is not an IP address", impl->config.listen.host), "listen");
    const tcp::endpoint ep(addr, impl->config.listen.port);
    auto& a = impl->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return core::make_error(
            fmt::format("cannot listen on {}: {}", impl->config.listen.to_string(), ec.message()),
            "listen");
    impl->bound_port = a.local_endpoint().port();
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::uint16_t Server::port() const {
    return impl_->bound_port;
}

std::string Server::url() const {
    ListenAddress a = impl_->config.listen;
    a.port = impl_->bound_port;
    return "http://" + a.to_string();
}

const Metrics& Server::metrics() const {
    return impl_->metrics;
}

void Server::stop() {
    asio::post(impl_->ioc, [impl = impl_.get()] { impl->begin_stop(); });
}

void Server::run(bool handle_signals) {
    auto& im = *impl_;
    std::optional<asio::signal_set> signals;
    if (handle_signals) {
        signals.emplace(im.ioc, SIGINT, SIGTERM);
        signals->async_wait([&im](error_code ec, int sig) {
            if (ec) return;
            im.log.info("signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
            im.begin_stop();
        });
    }
    asio::post(im.acceptor.get_executor(), [&im] { im.do_accept(); });
    im.rate_timer.emplace(im.ioc);
    im.rate_last = std::chrono::steady_clock::now();
    asio::post(im.ioc, [&im] { im.rate_tick(); });
    std::vector<std::thread> threads;
    for (auto& c : im.more_iocs) threads.emplace_back([&c] { c->run(); });
    im.ioc.run();
    for (auto& t : threads) t.join();
    if (signals) {
        error_code ec;
        signals->cancel(ec);
    }
}

}  // namespace mediasim::server
