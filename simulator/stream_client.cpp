#include "simulator/stream_client.hpp"

#include <fmt/format.h>

#include <poll.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cmath>
#include <cstring>
#include <deque>
#include <optional>

#include "core/base64.hpp"
#include "core/g711.hpp"
#include "core/protocol.hpp"
#include "core/signature.hpp"
#include "simulator/beast_util.hpp"
#include "simulator/playout.hpp"
#include "simulator/ticker.hpp"
#include "simulator/ws_frame.hpp"

namespace mediasim::sim {

const char* to_string(StreamEnd e) {
    switch (e) {
        case StreamEnd::hung_up:
            return "hung up";
        case StreamEnd::server_closed:
            return "closed by the server";
        case StreamEnd::failed:
            return "failed";
    }
    return "?";
}

const char* server_fault_name(ServerFault f) {
    switch (f) {
        case ServerFault::binary_frame:
            return "binary_frame";
        case ServerFault::not_json:
            return "not_json";
        case ServerFault::unknown_event:
            return "unknown_event";
        case ServerFault::bad_field:
            return "bad_field";
        case ServerFault::extra_field:
            return "extra_field";
        case ServerFault::wrong_stream_sid:
            return "wrong_stream_sid";
        case ServerFault::bad_base64:
            return "bad_base64";
        case ServerFault::audio_header:
            return "audio_header";
        case ServerFault::unidirectional:
            return "unidirectional";
    }
    return "?";
}

namespace {

// Which kind of fault a parser diagnostic of a server frame describes.
ServerFault classify_frame_error(const core::Diagnostic& d) {
    if (d.path.empty()) return ServerFault::not_json;
    if (d.path == "event") return ServerFault::unknown_event;
    if (d.path == "streamSid") return ServerFault::wrong_stream_sid;
    if (d.path.ends_with("payload") && d.message.find("base64") != std::string::npos)
        return ServerFault::bad_base64;
    return ServerFault::bad_field;
}

using namespace detail;
namespace websocket = beast::websocket;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kFrameBytes = 160;  // 20 ms of μ-law at 8 kHz
constexpr auto kFrame = 20ms;

std::int64_t micros(Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}
std::int64_t millis(Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

template <class Ws>
class Session : public StreamClient,
                public Ticker::Client,
                public std::enable_shared_from_this<Session<Ws>> {
  public:
    static constexpr bool kTls = !std::is_same_v<Ws, websocket::stream<beast::tcp_stream>>;
    enum class State { idle, connecting, running, stopping, ended };

    template <class... A>
    Session(asio::io_context& io, std::shared_ptr<const NetConfig> net, StreamPlan plan,
            StreamEvents events, WorkerStats* stats, A&&... ws_args)
        : io_(io),
          resolver_(io),
          ws_(std::forward<A>(ws_args)...),
          ticker_(Ticker::of(io)),
          tick_id_(ticker_.add(*this)),
          mark_timer_(io),
          net_(std::move(net)),
          plan_(std::move(plan)),
          events_(std::move(events)),
          stats_(stats),
          playout_(Clock::now(), plan_.record) {}
    ~Session() {
        give_back_phase();
        ticker_.remove(tick_id_);
        if (release_id_) ticker_.remove(*release_id_);
    }

    const StreamPlan& plan() const override { return plan_; }

    void start() override {
        asio::post(io_, [self = this->shared_from_this()] { self->do_connect(); });
    }

    void hang_up() override {
        asio::post(io_, [self = this->shared_from_this()] { self->do_hang_up(); });
    }

    bool verify_ = true;

  private:
    // ---- connection ------------------------------------------------------------------------
    void do_connect() {
        if (state_ != State::idle) return;
        state_ = State::connecting;
        connect_started_ = Clock::now();
        target_ = connect_target(*net_, plan_.url);
        beast::get_lowest_layer(ws_).expires_after(net_->connect_timeout);
        resolver_.async_resolve(
            target_.first, target_.second,
            [self = this->shared_from_this()](error_code ec, tcp::resolver::results_type results) {
                self->on_resolve(ec, std::move(results));
            });
    }

    void on_resolve(error_code ec, tcp::resolver::results_type results) {
        if (ec) return fail(ec, fmt::format("resolve {}", target_.first));
        if (stop_requested_) return fail(asio::error::operation_aborted, "connect");
        beast::get_lowest_layer(ws_).async_connect(
            results, [self = this->shared_from_this()](error_code e, const tcp::endpoint&) {
                self->on_connect(e);
            });
    }

    void on_connect(error_code ec) {
        if (ec) return fail(ec, fmt::format("connect to {}:{}", target_.first, target_.second));
        if (stop_requested_) return fail(asio::error::operation_aborted, "connect");
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
        if (plan_.send_buffer > 0)
            beast::get_lowest_layer(ws_).socket().set_option(
                asio::socket_base::send_buffer_size(plan_.send_buffer), ec);
        if constexpr (kTls) {
            if (!prepare_tls(ws_.next_layer(), plan_.url.host, verify_, ec))
                return fail(ec, "TLS set-up");
            ws_.next_layer().async_handshake(asio::ssl::stream_base::client,
                                             [self = this->shared_from_this()](error_code e) {
                                                 if (e) return self->fail(e, "TLS handshake");
                                                 self->do_upgrade();
                                             });
        } else {
            do_upgrade();
        }
    }

    void do_upgrade() {
        std::string signature;
        if (!plan_.auth_token.empty())
            signature = core::compute_signature(plan_.auth_token, plan_.url.to_string());
        ws_.set_option(websocket::stream_base::decorator([signature](websocket::request_type& req) {
            req.set(beast::http::field::user_agent, "Twilio.TmeWs/1.0");
            if (!signature.empty()) req.set("X-Twilio-Signature", signature);
            // No Sec-WebSocket-Protocol: Twilio offers none and some servers answer none.
        }));
        ws_.async_handshake(
            handshake_res_, host_header(plan_.url),
            plan_.url.target.empty() ? "/" : plan_.url.target,
            [self = this->shared_from_this()](error_code ec) { self->on_upgrade(ec); });
    }

    void on_upgrade(error_code ec) {
        if (ec == websocket::error::upgrade_declined) {
            return end_failed(FailureClass::http_status,
                              fmt::format("WebSocket upgrade of {} answered {} {} instead of 101 "
                                          "(Twilio error 31920)",
                                          plan_.url.to_string(), handshake_res_.result_int(),
                                          std::string(handshake_res_.reason())));
        }
        if (ec) return fail(ec, "WebSocket upgrade");
        if (stop_requested_) return fail(asio::error::operation_aborted, "connect");
        beast::get_lowest_layer(ws_).expires_never();
        websocket::stream_base::timeout opt{};
        opt.handshake_timeout = 5s;  // also bounds the closing handshake
        opt.idle_timeout = websocket::stream_base::none();
        opt.keep_alive_pings = false;
        ws_.set_option(opt);
        ws_.text(true);
        ws_.read_message_max(16 * 1024 * 1024);
        if constexpr (!kTls) {
            // The fast send path writes prebuilt frames with non-blocking write_some; Beast's
            // own writes (a pong, the answer to a close) are announced by the control callback
            // just before Beast makes them, and our writes go through Beast until they are done.
            beast::get_lowest_layer(ws_).socket().non_blocking(true, ec);
            if (ec) return fail(ec, "WebSocket upgrade");
            ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
                if (kind == websocket::frame_type::pong) return;
                if (kind == websocket::frame_type::close) server_closing_ = true;
                enter_beast_writes();
            });
        }

        const auto now = Clock::now();
        if (stats_) stats_->record(Metric::connect_time, micros(now - connect_started_));
        result_.connected = true;
        state_ = State::running;
        log(fmt::format("stream {} connected to {} in {} ms", plan_.stream_sid,
                        plan_.url.to_string(), millis(now - connect_started_)));

        send_json(core::to_json(core::TwilioMessage(core::ConnectedMsg{})));
        core::StartMsg start;
        start.sequence_number = seq_++;
        start.stream_sid = plan_.stream_sid;
        start.account_sid = plan_.account_sid;
        start.call_sid = plan_.call_sid;
        start.tracks.clear();
        if (plan_.inbound) start.tracks.push_back(core::Track::inbound);
        if (plan_.outbound) start.tracks.push_back(core::Track::outbound);
        start.custom_parameters = plan_.custom_parameters;
        send_json(core::to_json(core::TwilioMessage(std::move(start))));
        log(fmt::format("sent connected, start (tracks {}{}{}, {} custom parameter{})",
                        plan_.inbound ? "inbound" : "", plan_.inbound && plan_.outbound ? "+" : "",
                        plan_.outbound ? "outbound" : "", plan_.custom_parameters.size(),
                        plan_.custom_parameters.size() == 1 ? "" : "s"));

        // The caller's timeline, on absolute deadlines from the stream's start: on the ticker's
        // grid (so that streams share wake-ups), in its least-taken phase (ticker.hpp), from up
        // to 0.5 ms before now to 19.5 ms after.
        stream_start_ = ticker_.take_phase(now);
        phase_taken_ = true;
        playout_ = Playout(now, plan_.record);
        const std::size_t audio_bytes = plan_.audio ? plan_.audio->size() : 0;
        audio_frames_ = (audio_bytes + kFrameBytes - 1) / kFrameBytes;
        audio_end_due_ = stream_start_ + kFrame * static_cast<std::int64_t>(audio_frames_);
        auto t = audio_end_due_;
        if (plan_.bidirectional) {
            for (char d : plan_.dtmf) {
                if (d == 'w' || d == 'W') {
                    t += 500ms;
                    continue;
                }
                t += plan_.dtmf_gap;
                dtmf_plan_.push_back({t, d});
            }
        }
        caller_done_at_ = t + plan_.tail;
        if (plan_.caller) caller_ = plan_.caller(stream_start_, stats_);
        next_tick_ = stream_start_ + kFrame;
        if (plan_.impair && plan_.impair->holds_frames()) {
            gate_.emplace(*plan_.impair, stream_start_,
                          plan_.impair->seed ^ std::hash<std::string>{}(plan_.stream_sid));
            releaser_.session = this;
            release_id_ = ticker_.add(releaser_);
        }
        if (plan_.impair && plan_.impair->slow_read.count() > 0) read_timer_.emplace(io_);
        if (plan_.impair && plan_.impair->any())
            log("network impairments: " + plan_.impair->describe());
        if (events_.on_started) events_.on_started();
        do_read();
        ticker_.schedule(tick_id_, next_tick_);
    }

    // ---- sending -----------------------------------------------------------------------------
    // Every message goes out as a prebuilt masked text frame (ws_frame.hpp) written with a
    // non-blocking write_some on the socket; only when the socket cannot take it all does the
    // rest wait for the socket to be writable (async_wait), the frames behind it queued. Through
    // Beast (ws_.async_write) instead: always on wss://, and on ws:// from the moment Beast is
    // about to write a pong or a close answer of its own (its control callback) until that is
    // surely written: the read that carried the ping has completed, or a write of ours queued
    // behind Beast's has. So its frames and ours never interleave.
    struct Out {
        std::string buf;      // kWsHeaderRoom bytes of room, then the JSON text
        std::size_t off = 0;  // once framed: the next byte to write
        bool framed = false;  // header written and payload masked (the raw path)
        std::uint32_t key = 0;
    };

    std::string take_buffer() {
        std::string s;
        if (!free_.empty()) {
            s = std::move(free_.back());
            free_.pop_back();
        }
        s.assign(kWsHeaderRoom, '\0');
        return s;
    }

    void send_json(const std::string& json) {
        std::string buf = take_buffer();
        buf += json;
        send(std::move(buf));
    }

    // buf: take_buffer() with the message appended.
    void send(std::string buf) {
        out_.push_back(Out{std::move(buf)});
        ++result_.frames_sent;
        if (stats_) stats_->message_sent();
        if (!writing_) pump();
    }

    bool raw_writes() const {
        return !kTls && !beast_writes_ && !server_closing_ && !close_started_;
    }

    // Writes what the socket takes now; leaves at most one async operation in flight.
    void pump() {
        if (writing_ || state_ == State::ended) return;
        while (!out_.empty()) {
            if (!raw_writes()) return beast_write();
            Out& o = out_.front();
            if (!o.framed) {
                o.key = mask_keys_.next();
                o.off = frame_client_text(o.buf, o.key);
                o.framed = true;
            }
            error_code ec;
            const std::size_t n = beast::get_lowest_layer(ws_).socket().write_some(
                asio::buffer(o.buf.data() + o.off, o.buf.size() - o.off), ec);
            if (ec && ec != asio::error::would_block && ec != asio::error::try_again)
                return fail(ec, "write frame");
            if (!ec) o.off += n;
            if (o.off < o.buf.size()) return wait_writable();
            done_front();
        }
        if (state_ == State::stopping && stop_sent_) do_close();
    }

    void done_front() {
        free_.push_back(std::move(out_.front().buf));
        out_.pop_front();
    }

    void wait_writable() {
        writing_ = true;
        ++partial_writes_;
        beast::get_lowest_layer(ws_).socket().async_wait(
            tcp::socket::wait_write, [self = this->shared_from_this()](error_code ec) {
                self->writing_ = false;
                if (ec) return self->fail(ec, "write frame");
                self->pump();
            });
    }

    void beast_write() {
        writing_ = true;
        Out& o = out_.front();
        ws_.async_write(
            asio::buffer(o.buf.data() + kWsHeaderRoom, o.buf.size() - kWsHeaderRoom),
            [self = this->shared_from_this(), gen = beast_gen_](error_code ec, std::size_t) {
                self->writing_ = false;
                if (ec) return self->fail(ec, "write frame");
                // Begun after Beast's own frame (which held the write lock first
                // or took it before us), done after it: back to the fast path.
                if (!kTls && gen == self->beast_gen_) self->beast_writes_ = false;
                self->done_front();
                self->pump();
            });
    }

    // Beast is about to write a frame of its own (called from within its read operation).
    // A frame of ours begun on the socket is finished first, right now (waiting at most 5 s
    // for the socket: the server would be reading neither our frames nor its answers); one
    // framed but not begun goes back to plain text for Beast.
    void enter_beast_writes() {
        beast_writes_ = true;
        ++beast_gen_;
        if (out_.empty() || !out_.front().framed) return;
        Out& o = out_.front();
        const std::size_t start = kWsHeaderRoom - header_size(o.buf.size() - kWsHeaderRoom);
        if (o.off == start) {
            mask_payload(o.buf, o.key);
            o.framed = false;
            return;
        }
        auto& sock = beast::get_lowest_layer(ws_).socket();
        const auto began = Clock::now();
        const auto deadline = began + 5s;
        while (o.off < o.buf.size()) {
            error_code ec;
            const std::size_t n =
                sock.write_some(asio::buffer(o.buf.data() + o.off, o.buf.size() - o.off), ec);
            if (!ec) {
                o.off += n;
                continue;
            }
            if (ec != asio::error::would_block && ec != asio::error::try_again)
                return fail(ec, "write frame");
            const auto left = millis(deadline - Clock::now());
            if (left <= 0) return fail(beast::error::timeout, "write frame");
            pollfd p{sock.native_handle(), POLLOUT, 0};
            ::poll(&p, 1, static_cast<int>(left));
        }
        done_front();
        log(
            fmt::format("a frame was half written when Beast had a frame of its own to send: "
                        "finished it first ({} ms)",
                        millis(Clock::now() - began)));
        // The pending async_wait completes later and hands the queue to Beast (pump).
    }

    static std::size_t header_size(std::size_t payload) {
        return payload < 126 ? 6 : payload <= 0xFFFF ? 8 : 14;
    }

    // Ticker::Client: frame chunk_ + 1 is due.
    void on_due(Ticker::TimePoint due) override {
        auto self = this->shared_from_this();
        next_tick_ = due;
        on_tick();
    }

    void on_tick() {
        if (state_ != State::running) return;
        const auto now = Clock::now();
        if (stats_)
            stats_->record(Metric::pacing_error,
                           std::max<std::int64_t>(0, micros(now - next_tick_)));
        ++chunk_;
        const std::uint64_t timestamp_ms = chunk_ * 20;
        if (caller_) {
            const bool bot_playing = plan_.bidirectional && playout_.playing(next_tick_);
            auto f = caller_->next_frame(
                chunk_, bot_playing,
                std::span<std::uint8_t, kFrameBytes>(script_frame_, kFrameBytes));
            if (plan_.bidirectional)
                for (char d : f.dtmf) send_dtmf(d);
            if (f.hangup) {
                --chunk_;
                caller_done_reported_ = true;
                log("the scripted caller hangs up");
                if (events_.on_caller_done) events_.on_caller_done();
                return;
            }
        }
        if (plan_.inbound) {
            std::uint8_t frame[kFrameBytes];
            std::size_t from = (chunk_ - 1) * kFrameBytes;
            std::size_t have = 0;
            if (caller_) {
                std::memcpy(frame, script_frame_, kFrameBytes);
                have = kFrameBytes;
            } else if (plan_.audio && from < plan_.audio->size()) {
                have = std::min(kFrameBytes, plan_.audio->size() - from);
                std::memcpy(frame, plan_.audio->data() + from, have);
            }
            std::memset(frame + have, core::kUlawSilence, kFrameBytes - have);
            if (should_drop(frame)) {
                log(
                    fmt::format("network impairment: connection dropped mid-word at {} ms (no "
                                "stop, no close frame)",
                                chunk_ * 20));
                return end(StreamEnd::hung_up);  // end() closes the socket as it is
            }
            std::string out = take_buffer();
            core::append_media_json(out, plan_.stream_sid, seq_++, core::Track::inbound, chunk_,
                                    timestamp_ms,
                                    std::span<const std::uint8_t>(frame, kFrameBytes));
            produce_media(std::move(out));
            if (plan_.record)
                result_.caller_audio.insert(result_.caller_audio.end(), frame, frame + kFrameBytes);
        }
        if (plan_.outbound) {
            // What Twilio plays to the caller; the emulator synthesises no speech: silence.
            static const std::uint8_t silence[kFrameBytes] = {
#define MEDIASIM_S8 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
#define MEDIASIM_S40 MEDIASIM_S8, MEDIASIM_S8, MEDIASIM_S8, MEDIASIM_S8, MEDIASIM_S8
                MEDIASIM_S40, MEDIASIM_S40, MEDIASIM_S40, MEDIASIM_S40
#undef MEDIASIM_S40
#undef MEDIASIM_S8
            };
            std::string out = take_buffer();
            core::append_media_json(out, plan_.stream_sid, seq_++, core::Track::outbound, chunk_,
                                    timestamp_ms,
                                    std::span<const std::uint8_t>(silence, kFrameBytes));
            produce_media(std::move(out));
        }
        if (chunk_ == audio_frames_ && audio_frames_ > 0)
            log(fmt::format("caller audio ended ({} ms)", audio_frames_ * 20));
        while (!caller_ && dtmf_next_ < dtmf_plan_.size() &&
               dtmf_plan_[dtmf_next_].first <= next_tick_) {
            send_dtmf(dtmf_plan_[dtmf_next_].second);
            ++dtmf_next_;
        }
        advance_playout(now);
        if (!caller_ && !caller_done_reported_ && next_tick_ >= caller_done_at_) {
            caller_done_reported_ = true;
            log("caller is done (audio, digits and tail sent)");
            if (events_.on_caller_done) events_.on_caller_done();
            if (state_ != State::running) return;
        }
        next_tick_ += kFrame;
        ticker_.schedule(tick_id_, next_tick_);
    }

    // ---- the send path's seam: produced at the deadline, released, written ------------------
    // A media frame built at its deadline (on_tick, called by the Ticker when frame chunk_ is
    // due; pacing_error is measured there). With no frame-holding impairment it is released
    // at once; otherwise the FrameGate (impairment.hpp) says when it leaves, in order, and it
    // waits in held_ until a later Ticker deadline of its own (release_id_) comes.
    void produce_media(std::string frame) {
        if (!gate_) return release_media(std::move(frame), next_tick_);
        const auto at = gate_->release(next_tick_);
        if (held_.empty() && at <= Clock::now()) return release_media(std::move(frame), next_tick_);
        held_.push_back(Held{at, next_tick_, std::move(frame)});
        if (held_.size() == 1) schedule_release();
    }

    // The one place where a media frame is released to the network: the fast write path
    // (send) writes it now. delivery_delay: what the impairments made of its deadline.
    void release_media(std::string frame, Clock::time_point due) {
        if (gate_ && stats_) stats_->record(Metric::delivery_delay, micros(Clock::now() - due));
        send(std::move(frame));
        ++result_.media_sent;
    }

    // Releases every held frame whose time has come by `until` (all: time_point::max()).
    void release_held(Clock::time_point until) {
        while (!held_.empty() && held_.front().at <= until && state_ != State::ended) {
            Held h = std::move(held_.front());
            held_.pop_front();
            release_media(std::move(h.frame), h.due);
        }
    }

    // The next held frame's release, on the ticker's grid (rounded up: never early), so that
    // the held frames of many streams share wake-ups as their deadlines do.
    void schedule_release() {
        const auto at = held_.front().at;
        auto on_grid = Ticker::align_down(at);
        if (on_grid < at) on_grid += Ticker::kGrid;
        ticker_.schedule(*release_id_, on_grid);
    }

    void on_release_due() {
        auto self = this->shared_from_this();
        if (state_ != State::running) return;
        release_held(Clock::now());
        if (!held_.empty() && state_ == State::running) schedule_release();
    }

    // drop_at: the first caller frame with speech from then on cuts the connection (mid-word).
    bool should_drop(const std::uint8_t* frame) const {
        if (!plan_.impair || !plan_.impair->drop_at ||
            next_tick_ - stream_start_ < *plan_.impair->drop_at)
            return false;
        std::int64_t sum = 0;
        for (std::size_t i = 0; i < kFrameBytes; ++i)
            sum += std::abs(core::ulaw_to_linear(frame[i]));
        return sum / static_cast<std::int64_t>(kFrameBytes) > 330;  // ≈ -40 dBFS
    }

    void send_dtmf(char digit) {
        core::DtmfMsg d;
        d.sequence_number = seq_++;
        d.stream_sid = plan_.stream_sid;
        d.digit = digit;
        send_json(core::to_json(core::TwilioMessage(d)));
        log(fmt::format("sent dtmf {}", d.digit));
    }

    // ---- receiving ---------------------------------------------------------------------------
    void do_read() {
        ws_.async_read(in_, [self = this->shared_from_this()](error_code ec, std::size_t n) {
            self->on_read(ec, n);
        });
    }

    void on_read(error_code ec, std::size_t) {
        if (ec == websocket::error::closed) return on_server_closed();
        if (ec) return fail(ec, "read frame");
        if (!kTls && beast_writes_ && !server_closing_) {
            // The read that carried a ping has completed, and with it Beast's pong.
            beast_writes_ = false;
            if (!writing_) pump();
        }
        const auto now = Clock::now();
        ++result_.frames_received;
        if (stats_) stats_->message_received();
        if (stop_sent_ && now - stop_sent_at_ > ServerEvidence::kAfterStopGrace) {
            auto& ev = result_.evidence;
            if (ev.after_stop++ == 0)
                ev.first_after_stop = fmt::format("a {} frame of {} bytes {} ms after stop",
                                                  ws_.got_text() ? "text" : "binary", in_.size(),
                                                  millis(now - stop_sent_at_));
        }
        if (!ws_.got_text()) {
            violation(ServerFault::binary_frame,
                      fmt::format("binary frame of {} bytes (Twilio ignores it: warning 31950)",
                                  in_.size()));
        } else {
            auto data = in_.data();
            std::string_view text(static_cast<const char*>(data.data()), data.size());
            handle_frame(now, text);
        }
        in_.consume(in_.size());
        if (state_ != State::running && state_ != State::stopping) return;
        if (plan_.impair && plan_.impair->slow_read.count() > 0) {
            // A slow reader: the server's messages wait in the TCP buffers (backpressure).
            read_timer_->expires_after(plan_.impair->slow_read);
            read_timer_->async_wait([self = this->shared_from_this()](error_code e) {
                if (!e && (self->state_ == State::running || self->state_ == State::stopping))
                    self->do_read();
            });
            return;
        }
        do_read();
    }

    void handle_frame(Clock::time_point now, std::string_view text) {
        ++server_frame_no_;
        switch (parser_.parse_server(text)) {
            case core::FastParser::Kind::media: {
                const auto& m = parser_.server_media();
                if (m.extra_fields) {
                    if (auto p = core::parse_server_message(text))
                        for (const auto& f : p->extra_fields)
                            violation(ServerFault::extra_field,
                                      fmt::format("frame #{} from server: unexpected field \"{}\" "
                                                  "(warning 31951)",
                                                  server_frame_no_, f));
                }
                if (!check_sid(m.stream_sid, "media")) return;
                decoded_.resize(core::base64_decoded_max_size(m.payload.size()));
                auto n = parser_.decode_payload(decoded_.data());
                if (!n) {
                    violation(ServerFault::bad_base64,
                              fmt::format("media #{} from server: {}", server_frame_no_,
                                          n.error().to_string()));
                    return;
                }
                on_media(now, std::span<const std::uint8_t>(decoded_.data(), *n));
                return;
            }
            case core::FastParser::Kind::invalid:
                violation(classify_frame_error(parser_.error()),
                          fmt::format("frame #{} from server: {} (Twilio drops it: warning 31951)",
                                      server_frame_no_, parser_.error().to_string()));
                return;
            case core::FastParser::Kind::other:
                break;
        }
        auto parsed = core::parse_server_message(text);
        if (!parsed) {
            violation(classify_frame_error(parsed.error()),
                      fmt::format("frame #{} from server: {} (Twilio drops it: warning 31951)",
                                  server_frame_no_, parsed.error().to_string()));
            return;
        }
        for (const auto& f : parsed->extra_fields)
            violation(ServerFault::extra_field,
                      fmt::format("frame #{} from server: unexpected field \"{}\" (warning 31951)",
                                  server_frame_no_, f));
        if (auto* mk = std::get_if<core::ServerMarkMsg>(&parsed->message)) {
            if (!check_sid(mk->stream_sid, "mark")) return;
            on_mark(now, mk->name);
        } else if (auto* cl = std::get_if<core::ClearMsg>(&parsed->message)) {
            if (!check_sid(cl->stream_sid, "clear")) return;
            on_clear(now);
        } else if (auto* md = std::get_if<core::ServerMediaMsg>(&parsed->message)) {
            // The fast parser handles media; this path is a fallback.
            if (!check_sid(md->stream_sid, "media")) return;
            decoded_.resize(core::base64_decoded_max_size(md->payload.size()));
            auto n = core::base64_decode(md->payload, decoded_.data());
            if (!n)
                return violation(ServerFault::bad_base64,
                                 fmt::format("media #{} from server: {}", server_frame_no_,
                                             n.error().to_string()));
            on_media(now, std::span<const std::uint8_t>(decoded_.data(), *n));
        }
    }

    bool check_sid(std::string_view sid, const char* what) {
        if (sid == plan_.stream_sid) return true;
        violation(ServerFault::wrong_stream_sid,
                  fmt::format("{} #{} from server: streamSid \"{}\" is not this stream's \"{}\" "
                              "(Twilio drops it: warning 31951)",
                              what, server_frame_no_, sid, plan_.stream_sid));
        return false;
    }

    bool unidirectional_ignore(const char* what) {
        if (plan_.bidirectional) return false;
        if (!warned_unidirectional_)
            violation(
                ServerFault::unidirectional,
                fmt::format("{} #{} from server on a unidirectional <Start> stream: Twilio plays "
                            "and echoes nothing there",
                            what, server_frame_no_));
        else
            ++result_.evidence.faults[static_cast<int>(ServerFault::unidirectional)];
        warned_unidirectional_ = true;
        return true;
    }

    void on_media(Clock::time_point now, std::span<const std::uint8_t> mulaw) {
        if (unidirectional_ignore("media")) return;
        auto& ev = result_.evidence;
        ev.min_payload = ev.media == 0 ? mulaw.size() : std::min(ev.min_payload, mulaw.size());
        ev.max_payload = std::max(ev.max_payload, mulaw.size());
        ++ev.media;
        if (cleared_at_ && now - *cleared_at_ < 300ms)
            ev.audio_after_clear_ms += static_cast<std::int64_t>(mulaw.size()) / 8;
        if (mulaw.size() >= 4 &&
            (std::memcmp(mulaw.data(), "RIFF", 4) == 0 || std::memcmp(mulaw.data(), "ID3", 3) == 0))
            violation(
                ServerFault::audio_header,
                fmt::format("media #{} from server: the payload starts with a {} header; Twilio "
                            "plays it as noise (send headerless μ-law)",
                            server_frame_no_, mulaw[0] == 'R' ? "WAV" : "MP3"));
        if (!first_bot_audio_after_caller_ && audio_frames_ > 0 && now >= audio_end_due_) {
            first_bot_audio_after_caller_ = true;
            const auto latency = now - audio_end_due_;
            if (stats_) stats_->record(Metric::response_latency, micros(latency));
            log(fmt::format("first bot audio {} ms after the caller's words ended",
                            millis(latency)));
        }
        if (cleared_at_ && now - *cleared_at_ < 1s) {
            // Audio still arriving just after a clear: it was in flight or the server kept going.
            leakage_us_ += static_cast<std::int64_t>(mulaw.size()) * 125;
        }
        // RFC 3550 interarrival jitter over the bot's audio (media position as the RTP clock).
        const auto pos = std::chrono::microseconds(static_cast<std::int64_t>(bot_bytes_) * 125);
        auto pushed = playout_.push_audio(now, mulaw);
        ev.max_ahead_ms =
            std::max(ev.max_ahead_ms, static_cast<std::int64_t>(playout_.buffered_bytes(now) / 8));
        if (caller_) caller_->bot_audio(now);
        if (pushed.started_speaking) {
            log(fmt::format("bot audio starts ({} bytes)", mulaw.size()));
            have_transit_ = false;
        }
        const auto transit =
            std::chrono::duration_cast<std::chrono::microseconds>(now - stream_start_) - pos;
        if (have_transit_) {
            double d = std::abs(static_cast<double>((transit - last_transit_).count()));
            jitter_us_ += (d - jitter_us_) / 16.0;
            have_jitter_ = true;
        }
        last_transit_ = transit;
        have_transit_ = true;
        bot_bytes_ += mulaw.size();
        if (pushed.underrun && stats_) stats_->record(Metric::underrun, pushed.underrun->count());
        flush_echoes();
    }

    void on_mark(Clock::time_point now, const std::string& name) {
        if (unidirectional_ignore("mark")) return;
        auto& ev = result_.evidence;
        ++ev.marks;
        const bool pending =
            std::find(pending_marks_.begin(), pending_marks_.end(), name) != pending_marks_.end();
        if ((name.empty() || pending) && ev.bad_mark_names++ == 0)
            ev.first_bad_mark = name.empty()
                                    ? fmt::format("mark #{} has an empty name", server_frame_no_)
                                    : fmt::format(
                                          "mark #{} \"{}\" repeats a pending "
                                          "mark's name: its echo is ambiguous",
                                          server_frame_no_, name);
        pending_marks_.push_back(name);
        playout_.push_mark(now, name);
        if (caller_) caller_->bot_mark(now, name);
        if (!flush_echoes())
            log(fmt::format("mark \"{}\" queued ({} ms of audio ahead)", name,
                            playout_.buffered_bytes(now) / 8));
    }

    void on_clear(Clock::time_point now) {
        if (unidirectional_ignore("clear")) return;
        ++result_.clears;
        ++result_.evidence.clears;
        cleared_at_ = now;
        auto dropped = playout_.clear(now);
        if (caller_) caller_->bot_clear(now);
        log(fmt::format("clear: dropped {} ms of queued bot audio", dropped / 8));
        flush_echoes();
    }

    void advance_playout(Clock::time_point now) {
        if (!plan_.bidirectional) return;
        playout_.advance(now);
        flush_echoes();
    }

    // Sends the echoes that are due; re-arms the mark timer. Returns whether any was sent.
    bool flush_echoes() {
        bool any = false;
        if (state_ != State::running) return false;
        for (auto& e : playout_.take_echoes()) {
            const auto now = Clock::now();
            core::MarkMsg m;
            m.sequence_number = seq_++;
            m.stream_sid = plan_.stream_sid;
            m.name = e.name;
            send_json(core::to_json(core::TwilioMessage(std::move(m))));
            ++result_.marks_echoed;
            if (auto it = std::find(pending_marks_.begin(), pending_marks_.end(), e.name);
                it != pending_marks_.end())
                pending_marks_.erase(it);
            if (stats_) stats_->record(Metric::mark_rtt, micros(now - e.received));
            log(fmt::format("mark \"{}\" echoed{} after {} ms", e.name,
                            e.flushed ? " (flushed by clear)" : "", millis(now - e.received)));
            any = true;
        }
        if (auto due = playout_.next_mark_due()) {
            if (!mark_armed_ || *due != mark_due_) {
                mark_armed_ = true;
                mark_due_ = *due;
                mark_timer_.expires_at(*due);
                mark_timer_.async_wait([self = this->shared_from_this()](error_code ec) {
                    if (ec) return;
                    self->mark_armed_ = false;
                    self->advance_playout(Clock::now());
                });
            }
        }
        return any;
    }

    void violation(ServerFault kind, std::string what) {
        auto& ev = result_.evidence;
        if (ev.faults[static_cast<int>(kind)]++ == 0) ev.first_fault[static_cast<int>(kind)] = what;
        ++result_.violations;
        if (result_.first_violation.empty()) result_.first_violation = what;
        if (result_.violations <= 5) log("protocol violation: " + what);
    }

    // ---- the end -----------------------------------------------------------------------------
    void do_hang_up() {
        stop_requested_ = true;
        if (state_ == State::idle) return end(StreamEnd::hung_up);
        if (state_ == State::connecting) {
            error_code ignored;
            resolver_.cancel();
            beast::get_lowest_layer(ws_).socket().close(ignored);
            return;
        }
        if (state_ != State::running) return;
        state_ = State::stopping;
        ticker_.cancel(tick_id_);
        mark_timer_.cancel();
        if (release_id_) ticker_.cancel(*release_id_);
        release_held(Clock::time_point::max());  // held frames go before the stop
        if (state_ != State::stopping) return;   // a write failed
        if (plan_.bidirectional) playout_.advance(Clock::now());
        core::StopMsg stop;
        stop.sequence_number = seq_++;
        stop.stream_sid = plan_.stream_sid;
        stop.account_sid = plan_.account_sid;
        stop.call_sid = plan_.call_sid;
        stop_sent_ = true;
        stop_sent_at_ = Clock::now();
        send_json(core::to_json(core::TwilioMessage(std::move(stop))));
        log("sent stop");
        // do_close() runs once the write queue has drained (pump).
    }

    void do_close() {
        if (close_started_) return;
        if (plan_.linger_after_stop.count() > 0 && !lingered_) {
            // Keep reading for a while: what the server sends after `stop` is evidence.
            lingered_ = true;
            mark_timer_.expires_after(plan_.linger_after_stop);
            mark_timer_.async_wait([self = this->shared_from_this()](error_code) {
                if (self->state_ == State::stopping) self->do_close();
            });
            return;
        }
        close_started_ = true;
        ws_.async_close(websocket::close_code::normal,
                        [self = this->shared_from_this()](error_code ec) {
                            if (ec && ec != asio::error::operation_aborted &&
                                ec != websocket::error::closed && ec != asio::error::eof)
                                self->log(fmt::format("closing handshake: {}", ec.message()));
                            self->end(StreamEnd::hung_up);
                        });
    }

    void on_server_closed() {
        result_.close_code = static_cast<int>(ws_.reason().code);
        if (state_ == State::stopping) return end(StreamEnd::hung_up);
        log(fmt::format(
            "server closed the stream (close code {}{})", result_.close_code,
            ws_.reason().reason.empty()
                ? std::string()
                : ", \"" + std::string(ws_.reason().reason.data(), ws_.reason().reason.size()) +
                      "\""));
        end(StreamEnd::server_closed);
    }

    void fail(error_code ec, std::string step) {
        if (state_ == State::ended) return;
        if (stop_requested_ && (ec == asio::error::operation_aborted || state_ == State::stopping ||
                                state_ == State::connecting))
            return end(StreamEnd::hung_up);
        if (state_ == State::stopping && close_started_) return end(StreamEnd::hung_up);
        std::string what = ec == beast::error::timeout ? "timed out" : ec.message();
        if (state_ == State::running &&
            (ec == asio::error::eof || ec == asio::error::connection_reset))
            return end_failed(FailureClass::closed_early,
                              fmt::format("{}: the server dropped the connection without a close "
                                          "frame (Twilio error 31903)",
                                          step));
        end_failed(classify(ec), fmt::format("{}: {}", step, what));
    }

    void end_failed(FailureClass cls, std::string message) {
        result_.failure = cls;
        result_.error = std::move(message);
        log("stream error: " + result_.error);
        end(StreamEnd::failed);
    }

    void end(StreamEnd how) {
        if (state_ == State::ended) return;
        state_ = State::ended;
        ticker_.cancel(tick_id_);
        give_back_phase();
        mark_timer_.cancel();
        if (release_id_) ticker_.cancel(*release_id_);
        if (read_timer_) read_timer_->cancel();
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        result_.end = how;
        result_.writes_waited = partial_writes_;
        if (result_.connected)
            result_.duration =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stream_start_);
        if (caller_) {
            result_.caller_failure = caller_->failure();
            result_.expectation_failures = caller_->expectation_failures();
            caller_.reset();
        }
        if (result_.connected && plan_.bidirectional) {
            playout_.advance(Clock::now());
            result_.bot_bytes_received = playout_.bytes_received();
            result_.bot_bytes_played = playout_.bytes_played();
            if (plan_.record) result_.bot_audio = playout_.take_recorded();
            if (stats_ && have_jitter_)
                stats_->record(Metric::jitter, static_cast<std::int64_t>(jitter_us_));
            if (stats_ && leakage_us_ > 0) stats_->record(Metric::leakage, leakage_us_);
        }
        if (events_.on_ended) {
            auto cb = std::move(events_.on_ended);
            events_.on_ended = nullptr;
            cb(std::move(result_));
        }
        events_ = {};  // drop the call's callbacks (and whatever they hold)
    }

    void log(std::string line) {
        if (events_.log) events_.log(std::move(line));
    }

    asio::io_context& io_;
    tcp::resolver resolver_;
    Ws ws_;
    Ticker& ticker_;
    Ticker::Id tick_id_;
    asio::steady_timer mark_timer_;
    // Network impairments (impairment.hpp), set up only when configured: the gate and the
    // frames it holds, released from a Ticker deadline of their own; the slow reads' timer.
    struct Held {
        Clock::time_point at;   // released then
        Clock::time_point due;  // its deadline
        std::string frame;
    };
    struct Releaser : Ticker::Client {
        Session* session = nullptr;
        void on_due(Ticker::TimePoint) override { session->on_release_due(); }
    };
    std::optional<FrameGate> gate_;
    std::deque<Held> held_;
    Releaser releaser_;
    std::optional<Ticker::Id> release_id_;
    std::optional<asio::steady_timer> read_timer_;
    std::shared_ptr<const NetConfig> net_;
    StreamPlan plan_;
    StreamEvents events_;
    WorkerStats* stats_;
    Playout playout_;
    core::FastParser parser_;

    State state_ = State::idle;
    bool stop_requested_ = false;
    bool stop_sent_ = false;
    bool close_started_ = false;
    bool lingered_ = false;
    Clock::time_point stop_sent_at_;
    std::vector<std::string> pending_marks_;  // marks received, not yet echoed
    std::pair<std::string, std::string> target_;
    websocket::response_type handshake_res_;
    Clock::time_point connect_started_;
    Clock::time_point stream_start_;
    bool phase_taken_ = false;  // stream_start_'s phase is held on the ticker
    void give_back_phase() {
        if (phase_taken_) ticker_.release_phase(stream_start_);
        phase_taken_ = false;
    }
    Clock::time_point next_tick_;
    Clock::time_point audio_end_due_;
    Clock::time_point caller_done_at_;
    bool caller_done_reported_ = false;
    std::size_t audio_frames_ = 0;
    std::vector<std::pair<Clock::time_point, char>> dtmf_plan_;
    std::size_t dtmf_next_ = 0;
    std::uint64_t seq_ = 1;    // the next sequenceNumber (start is 1)
    std::uint64_t chunk_ = 0;  // frames sent per track
    std::deque<Out> out_;
    std::vector<std::string> free_;
    MaskKeys mask_keys_;
    bool writing_ = false;         // an async_wait or a Beast write is in flight
    bool beast_writes_ = kTls;     // our frames go through Beast (see enter_beast_writes)
    bool server_closing_ = false;  // the server's close arrived: Beast answers it
    std::uint64_t beast_gen_ = 0;  // Beast's own writes announced so far
    std::uint64_t partial_writes_ = 0;
    beast::flat_buffer in_;
    std::vector<std::uint8_t> decoded_;
    std::uint64_t server_frame_no_ = 0;
    bool warned_unidirectional_ = false;
    bool first_bot_audio_after_caller_ = false;
    std::optional<Clock::time_point> cleared_at_;
    std::int64_t leakage_us_ = 0;
    std::uint64_t bot_bytes_ = 0;
    bool have_transit_ = false;
    bool have_jitter_ = false;
    std::chrono::microseconds last_transit_{0};
    double jitter_us_ = 0;
    bool mark_armed_ = false;
    Clock::time_point mark_due_;
    StreamResult result_;
    std::shared_ptr<CallerSource> caller_;
    std::uint8_t script_frame_[kFrameBytes] = {};
};

}  // namespace

std::shared_ptr<StreamClient> make_stream_client(asio::io_context& io,
                                                 std::shared_ptr<const NetConfig> net,
                                                 StreamPlan plan, StreamEvents events,
                                                 WorkerStats* stats) {
    if (plan.url.is_tls()) {
        using Ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
        auto ctx = net->tls;
        if (!ctx) {
            // Report through the normal path so that the caller sees one on_ended.
            auto fallback = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
            auto copy = std::make_shared<NetConfig>(*net);
            copy->tls = fallback;
            fallback->set_default_verify_paths();
            fallback->set_verify_mode(asio::ssl::verify_peer);
            ctx = fallback;
            net = copy;
        }
        auto s = std::make_shared<Session<Ws>>(io, net, std::move(plan), std::move(events), stats,
                                               io, *ctx);
        s->verify_ = SSL_CTX_get_verify_mode(ctx->native_handle()) != SSL_VERIFY_NONE;
        return s;
    }
    using Ws = websocket::stream<beast::tcp_stream>;
    return std::make_shared<Session<Ws>>(io, std::move(net), std::move(plan), std::move(events),
                                         stats, io);
}

}  // namespace mediasim::sim
