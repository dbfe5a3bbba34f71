// End to end on loopback: a real call (webhook → TwiML → <Connect><Stream>) against a peer
// written here with Beast, which checks what Twilio would send and plays a bot: audio, marks,
// a clear. Frame counts, not timings, carry the assertions (the machine is noisy); the only
// time checks are lower bounds (a mark cannot be echoed before its audio has played).
#include "simulator/call.hpp"

#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "core/base64.hpp"
#include "core/form.hpp"
#include "core/ids.hpp"
#include "core/protocol.hpp"
#include "core/signature.hpp"
#include "core/wav.hpp"
#include "net/tls.hpp"
#include "simulator/commands.hpp"

using namespace mediasim;
using namespace mediasim::sim;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kToken = "2b6f0c8a1e9d4f7b8c3a5d6e7f901234";

struct Received {
    Clock::time_point at;
    std::string text;
};

// What the peer saw.
struct PeerLog {
    std::mutex mu;
    std::vector<std::string> problems;  // anything a real Twilio would not have done
    core::Parameters webhook_params;
    std::string webhook_host;
    int webhooks = 0;
    std::vector<core::Parameters> status_events;
    std::vector<std::pair<std::string, core::Parameters>> requests;  // "POST /voice", params
    std::string ws_host, ws_protocol_header;
    bool ws_signature_valid = false;
    std::vector<Received> frames;  // from the simulator, in order
    std::map<std::string, Clock::time_point> marks_sent;
    Clock::time_point clear_sent;
    void problem(std::string p) {
        std::lock_guard lk(mu);
        problems.push_back(std::move(p));
    }
};

// The bot's script, keyed on the inbound chunk count it has received.
struct BotScript {
    bool close_after_start = false;  // close the socket right after `start`
    bool misbehave = false;          // send a binary frame and a wrong streamSid
    bool talk = true;
};

class Peer {
  public:
    Peer(std::string twiml, BotScript script, std::string public_base = {})
        : Peer(std::map<std::string, std::string>{{"/voice", std::move(twiml)}}, script,
               std::move(public_base)) {}
    Peer(std::map<std::string, std::string> docs, BotScript script, std::string public_base = {})
        : docs_(std::move(docs)),
          script_(script),
          acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
        port_ = acceptor_.local_endpoint().port();
        public_base_ = public_base.empty() ? "127.0.0.1:" + std::to_string(port_) : public_base;
        thread_ = std::thread([this] { accept_loop(); });
    }
    ~Peer() {
        stopping_ = true;
        beast::error_code ec;
        {
            // accept() does not return when another thread closes the acceptor: wake it.
            asio::io_context io;
            tcp::socket wake(io);
            wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
        }
        if (thread_.joinable()) thread_.join();
        acceptor_.close(ec);
        {
            std::lock_guard lk(mu_);
            for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
        }
        for (auto& t : workers_) t.join();
    }
    unsigned short port() const { return port_; }
    PeerLog log;

  private:
    void accept_loop() {
        for (;;) {
            tcp::socket s(io_);
            beast::error_code ec;
            acceptor_.accept(s, ec);
            if (ec || stopping_) return;
            auto sock = std::make_shared<tcp::socket>(std::move(s));
            std::lock_guard lk(mu_);
            sockets_.push_back(sock);
            workers_.emplace_back([this, sock] { serve(*sock); });
        }
    }

    std::string twiml(const std::string& path) const {
        auto it = docs_.find(path);
        std::string t = it == docs_.end() ? std::string() : it->second;
        for (auto pos = t.find("{BASE}"); pos != std::string::npos; pos = t.find("{BASE}"))
            t.replace(pos, 6, public_base_);
        return t;
    }

    void serve(tcp::socket& sock) {
        beast::flat_buffer buf;
        http::request<http::string_body> req;
        beast::error_code ec;
        http::read(sock, buf, req, ec);
        if (ec) return;
        const std::string host(req[http::field::host]);
        const std::string url = "http://" + host + std::string(req.target());
        if (websocket::is_upgrade(req)) return serve_ws(sock, req, host);
        auto params = core::form_decode(req.body());
        if (!params) {
            log.problem("form body: " + params.error().to_string());
            return;
        }
        const std::string sig(req["X-Twilio-Signature"]);
        if (!core::validate_signature(kToken, sig, url, *params))
            log.problem("bad signature on " + url);
        if (req.method() == http::verb::post &&
            req[http::field::content_type].find("application/x-www-form-urlencoded") != 0)
            log.problem("content type " + std::string(req[http::field::content_type]));
        const std::string target(req.target());
        const std::string path = target.substr(0, target.find('?'));
        if (req.method() == http::verb::get && target.find('?') != std::string::npos) {
            auto q = core::form_decode(target.substr(target.find('?') + 1));
            if (q) params = std::move(q);
        }
        {
            std::lock_guard lk(log.mu);
            log.requests.emplace_back(std::string(req.method_string()) + " " + path, *params);
        }
        http::response<http::string_body> res{http::status::ok, 11};
        if (docs_.count(path)) {
            std::lock_guard lk(log.mu);
            if (path == "/voice") {
                log.webhook_params = *params;
                log.webhook_host = host;
                ++log.webhooks;
            }
            res.set(http::field::content_type, "text/xml; charset=utf-8");
            res.body() = twiml(path);
        } else if (path == "/status") {
            std::lock_guard lk(log.mu);
            log.status_events.push_back(*params);
            res.set(http::field::content_type, "text/plain");
        } else {
            res.result(http::status::not_found);
        }
        res.prepare_payload();
        http::write(sock, res, ec);
    }

    void send(websocket::stream<tcp::socket&>& ws, const core::ServerMessage& m) {
        ws.text(true);
        ws.write(asio::buffer(core::to_json(m)));
    }

    void send_audio(websocket::stream<tcp::socket&>& ws, const std::string& sid, std::size_t n,
                    std::uint8_t v) {
        std::vector<std::uint8_t> bytes(n, v);
        send(ws, core::ServerMediaMsg{sid, core::base64_encode(bytes)});
    }

    void serve_ws(tcp::socket& sock, const http::request<http::string_body>& req,
                  const std::string& host) {
        {
            std::lock_guard lk(log.mu);
            log.ws_host = host;
            log.ws_protocol_header = std::string(req[http::field::sec_websocket_protocol]);
            log.ws_signature_valid =
                core::validate_signature(kToken, std::string(req["X-Twilio-Signature"]),
                                         "ws://" + host + std::string(req.target()));
        }
        websocket::stream<tcp::socket&> ws(sock);
        beast::error_code ec;
        ws.accept(req, ec);
        if (ec) return log.problem("accept: " + ec.message());
        std::string sid;
        std::uint64_t chunks = 0;
        bool misbehaved = false;
        for (;;) {
            beast::flat_buffer b;
            ws.read(b, ec);
            if (ec) return;  // closed by the simulator (after stop)
            std::string text = beast::buffers_to_string(b.data());
            {
                std::lock_guard lk(log.mu);
                log.frames.push_back({Clock::now(), text});
            }
            auto m = core::parse_twilio_message(text);
            if (!m) {
                log.problem("frame: " + m.error().to_string());
                continue;
            }
            if (auto* s = std::get_if<core::StartMsg>(&m->message)) {
                sid = s->stream_sid;
                if (script_.close_after_start) {
                    ws.close(websocket::close_code::normal, ec);
                    // Drain until the simulator's close reply.
                    while (!ec) ws.read(b, ec);
                    return;
                }
            }
            if (!std::holds_alternative<core::MediaMsg>(m->message)) continue;
            ++chunks;
            if (script_.misbehave && !misbehaved && chunks == 3) {
                misbehaved = true;
                ws.binary(true);
                ws.write(asio::buffer(std::string("\x01\x02")));
                send(ws, core::ClearMsg{"MZ00000000000000000000000000000000"});
            }
            if (!script_.talk) continue;
            auto now = Clock::now();
            if (chunks == 5) {  // 1 s of audio in one message, then a mark
                send_audio(ws, sid, 8000, 0x11);
                send(ws, core::ServerMarkMsg{sid, "m1"});
                std::lock_guard lk(log.mu);
                log.marks_sent["m1"] = now;
            } else if (chunks == 70) {  // 2 s in 160-byte frames, a mark, then a clear 200 ms on
                for (int i = 0; i < 100; ++i) send_audio(ws, sid, 160, 0x22);
                send(ws, core::ServerMarkMsg{sid, "m2"});
                std::lock_guard lk(log.mu);
                log.marks_sent["m2"] = now;
            } else if (chunks == 80) {
                send(ws, core::ClearMsg{sid});
                std::lock_guard lk(log.mu);
                log.clear_sent = now;
            } else if (chunks == 90) {  // nothing queued: echoed at once
                send(ws, core::ServerMarkMsg{sid, "m3"});
                std::lock_guard lk(log.mu);
                log.marks_sent["m3"] = now;
            }
        }
    }

    std::map<std::string, std::string> docs_;
    BotScript script_;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::string public_base_;
    std::thread thread_;
    std::mutex mu_;
    std::vector<std::shared_ptr<tcp::socket>> sockets_;
    std::vector<std::thread> workers_;
    std::atomic<bool> stopping_{false};
};

const char* kConnectTwiml = R"(<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Connect>
    <Stream url="ws://{BASE}/media" name="bot" statusCallback="http://{BASE}/status">
      <Parameter name="tenant" value="42"/>
      <Parameter name="FirstName" value="Jane &amp; Joe"/>
    </Stream>
  </Connect>
  <Say>Goodbye</Say>
</Response>)";

struct CallRun {
    CallReport report;
    WorkerStats stats;
    std::vector<std::string> timeline;
};

std::shared_ptr<const std::vector<std::uint8_t>> caller_audio(std::size_t n) {
    auto v = std::make_shared<std::vector<std::uint8_t>>(n);
    for (std::size_t i = 0; i < n; ++i) (*v)[i] = static_cast<std::uint8_t>(i % 200);
    return v;
}

CallRun run_call(std::shared_ptr<CallConfig> cfg) {
    CallRun run;
    cfg->timeline = [&run](std::chrono::milliseconds t, const std::string& line) {
        run.timeline.push_back(std::to_string(t.count()) + " " + line);
    };
    asio::io_context io;
    bool done = false;
    start_call(io, cfg, 1, 42, &run.stats, [&](CallReport r) {
        run.report = std::move(r);
        done = true;
    });
    io.run_for(60s);
    EXPECT_TRUE(done) << "the call did not end within 60 s";
    return run;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
}

}  // namespace

TEST(Call, FollowsTheTwimlAndStreamsAsTwilioWould) {
    Peer peer(kConnectTwiml, BotScript{});
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/voice";
    cfg->auth_token = kToken;
    cfg->audio = caller_audio(500 * 8);  // 0.5 s: 25 frames
    cfg->dtmf = "12";
    cfg->tail = 2000ms;
    cfg->record = true;
    auto run = run_call(cfg);
    const auto& o = run.report.outcome;
    ASSERT_TRUE(o.completed) << o.first_error << "\n" << joined(run.timeline);
    std::lock_guard lk(peer.log.mu);
    EXPECT_TRUE(peer.log.problems.empty()) << joined(peer.log.problems);

    // The webhook: signed (checked by the peer), with the parameters Twilio sends.
    EXPECT_EQ(peer.log.webhooks, 1);
    std::map<std::string, std::string> wp(peer.log.webhook_params.begin(),
                                          peer.log.webhook_params.end());
    EXPECT_TRUE(core::is_valid_sid(wp["CallSid"], "CA")) << wp["CallSid"];
    EXPECT_TRUE(core::is_valid_sid(wp["AccountSid"], "AC")) << wp["AccountSid"];
    EXPECT_EQ(wp["CallSid"], o.call_sid);
    EXPECT_EQ(wp["CallStatus"], "ringing");
    EXPECT_EQ(wp["Direction"], "inbound");
    EXPECT_EQ(wp["ApiVersion"], "2010-04-01");
    EXPECT_EQ(wp["From"], cfg->from);
    EXPECT_EQ(wp["Caller"], cfg->from);
    EXPECT_EQ(wp["To"], cfg->to);
    EXPECT_EQ(wp["Called"], cfg->to);

    // The upgrade: signed over the stream URL, no subprotocol offered.
    EXPECT_TRUE(peer.log.ws_signature_valid);
    EXPECT_EQ(peer.log.ws_protocol_header, "");

    // The frames: connected, start, media..., dtmf, marks, stop last.
    const auto& frames = peer.log.frames;
    ASSERT_GE(frames.size(), 3u);
    auto first = core::parse_twilio_message(frames[0].text);
    ASSERT_TRUE(first) << first.error().to_string();
    EXPECT_TRUE(std::holds_alternative<core::ConnectedMsg>(first->message));
    EXPECT_EQ(frames[0].text, R"({"event":"connected","protocol":"Call","version":"1.0.0"})");
    auto second = core::parse_twilio_message(frames[1].text);
    ASSERT_TRUE(second);
    const auto& start = std::get<core::StartMsg>(second->message);
    EXPECT_EQ(start.sequence_number, 1u);
    EXPECT_TRUE(core::is_valid_sid(start.stream_sid, "MZ"));
    EXPECT_EQ(start.call_sid, o.call_sid);
    EXPECT_EQ(start.account_sid, wp["AccountSid"]);
    EXPECT_EQ(start.tracks, std::vector<core::Track>{core::Track::inbound});
    EXPECT_EQ(start.custom_parameters,
              (core::Parameters{{"tenant", "42"}, {"FirstName", "Jane & Joe"}}));
    EXPECT_EQ(start.media_format, core::MediaFormat{});

    std::uint64_t seq = 1, chunk = 0;
    std::vector<char> digits;
    std::map<std::string, Clock::time_point> echoes;
    std::vector<std::string> echo_order;
    bool stopped = false;
    for (std::size_t i = 2; i < frames.size(); ++i) {
        auto m = core::parse_twilio_message(frames[i].text);
        ASSERT_TRUE(m) << frames[i].text;
        ASSERT_FALSE(stopped) << "a frame after stop: " << frames[i].text;
        std::visit(
            [&](const auto& msg) {
                using T = std::decay_t<decltype(msg)>;
                if constexpr (std::is_same_v<T, core::ConnectedMsg> ||
                              std::is_same_v<T, core::StartMsg>) {
                    ADD_FAILURE() << "a second connected/start";
                } else {
                    EXPECT_EQ(msg.sequence_number, ++seq) << frames[i].text;
                    EXPECT_EQ(msg.stream_sid, start.stream_sid);
                    if constexpr (std::is_same_v<T, core::MediaMsg>) {
                        ++chunk;
                        EXPECT_EQ(msg.track, core::Track::inbound);
                        EXPECT_EQ(msg.chunk, chunk);
                        EXPECT_EQ(msg.timestamp_ms, chunk * 20);
                        ASSERT_EQ(msg.payload.size(), 216u);
                        std::uint8_t bytes[162];
                        auto n = core::base64_decode(msg.payload, bytes);
                        ASSERT_TRUE(n);
                        ASSERT_EQ(*n, 160u);
                        for (std::size_t k = 0; k < 160; ++k) {
                            std::size_t pos = (chunk - 1) * 160 + k;
                            std::uint8_t want =
                                pos < 4000 ? static_cast<std::uint8_t>(pos % 200) : 0xFF;
                            ASSERT_EQ(bytes[k], want) << "chunk " << chunk << " byte " << k;
                        }
                    } else if constexpr (std::is_same_v<T, core::DtmfMsg>) {
                        EXPECT_EQ(msg.track, "inbound_track");
                        digits.push_back(msg.digit);
                    } else if constexpr (std::is_same_v<T, core::MarkMsg>) {
                        echoes[msg.name] = frames[i].at;
                        echo_order.push_back(msg.name);
                    } else if constexpr (std::is_same_v<T, core::StopMsg>) {
                        EXPECT_EQ(msg.call_sid, o.call_sid);
                        EXPECT_EQ(msg.account_sid, start.account_sid);
                        stopped = true;
                    }
                }
            },
            m->message);
    }
    EXPECT_TRUE(stopped);
    // 25 frames of audio, 2 digits 250 ms apart (25 frames), 2 s of tail (100 frames): the
    // caller hangs up on the deadline, so the count is exact however late the ticks ran.
    EXPECT_EQ(chunk, 150u) << joined(run.timeline);
    EXPECT_EQ(digits, (std::vector<char>{'1', '2'}));

    // Marks: m1 after its 1 s of audio; m2 flushed by the clear; m3 at once (nothing queued).
    EXPECT_EQ(echo_order, (std::vector<std::string>{"m1", "m2", "m3"}));
    ASSERT_TRUE(echoes.count("m1") && echoes.count("m2") && echoes.count("m3"));
    EXPECT_GE(echoes["m1"] - peer.log.marks_sent["m1"], 990ms);
    EXPECT_GE(echoes["m2"], peer.log.clear_sent);
    EXPECT_EQ(run.report.marks_echoed, 3u);
    EXPECT_EQ(run.report.clears, 1u);
    EXPECT_EQ(run.report.violations, 0u);

    // What the bot said, as played: m1's second of 0x11, then part of m2's audio until the clear.
    ASSERT_EQ(run.report.recordings.size(), 1u);
    const auto& rec = run.report.recordings[0];
    EXPECT_EQ(rec.caller_audio.size(), 150u * 160u);
    auto count = [&](std::uint8_t v) {
        return std::count(rec.bot_audio.begin(), rec.bot_audio.end(), v);
    };
    EXPECT_EQ(count(0x11), 8000);
    EXPECT_GT(count(0x22), 0);
    EXPECT_LT(count(0x22), 16000);  // the clear cut it

    // Status callbacks: stream-started then stream-stopped, signed (checked by the peer).
    ASSERT_EQ(peer.log.status_events.size(), 2u);
    std::map<std::string, std::string> s0(peer.log.status_events[0].begin(),
                                          peer.log.status_events[0].end());
    std::map<std::string, std::string> s1(peer.log.status_events[1].begin(),
                                          peer.log.status_events[1].end());
    EXPECT_EQ(s0["StreamEvent"], "stream-started");
    EXPECT_EQ(s1["StreamEvent"], "stream-stopped");
    EXPECT_EQ(s0["StreamSid"], start.stream_sid);
    EXPECT_EQ(s0["StreamName"], "bot");
    EXPECT_EQ(s0["CallSid"], o.call_sid);

    // Metrics went to the worker's statistics.
    auto iv = run.stats.take_interval();
    EXPECT_EQ(iv.metrics[static_cast<int>(Metric::webhook_latency)].total_count(), 1);
    EXPECT_EQ(iv.metrics[static_cast<int>(Metric::connect_time)].total_count(), 1);
    EXPECT_EQ(iv.metrics[static_cast<int>(Metric::pacing_error)].total_count(), 150);
    EXPECT_EQ(iv.metrics[static_cast<int>(Metric::mark_rtt)].total_count(), 3);
    EXPECT_EQ(iv.messages_sent, frames.size());
}

TEST(Call, ConnectToSendsConnectionsElsewhereWhileUrlsAndSignaturesStay) {
    Peer peer(kConnectTwiml, BotScript{.talk = false}, "media.example.test:9443");
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://voice.example.test/voice";
    cfg->auth_token = kToken;
    cfg->tail = 200ms;
    auto net = std::make_shared<NetConfig>();
    auto a = parse_connect_to("voice.example.test:80=127.0.0.1:" + std::to_string(peer.port()));
    auto b = parse_connect_to("media.example.test:9443=127.0.0.1:" + std::to_string(peer.port()));
    ASSERT_TRUE(a && b);
    net->connect_to = {*a, *b};
    cfg->net = net;
    auto run = run_call(cfg);
    EXPECT_TRUE(run.report.outcome.completed) << run.report.outcome.first_error << "\n"
                                              << joined(run.timeline);
    std::lock_guard lk(peer.log.mu);
    EXPECT_TRUE(peer.log.problems.empty()) << joined(peer.log.problems);  // signatures valid
    EXPECT_EQ(peer.log.webhook_host, "voice.example.test");
    EXPECT_EQ(peer.log.ws_host, "media.example.test:9443");
    EXPECT_TRUE(peer.log.ws_signature_valid);
    EXPECT_EQ(peer.log.status_events.size(), 2u);
}

TEST(Call, StreamOptionSkipsTheWebhookAndAServerCloseEndsTheCall) {
    Peer peer("", BotScript{.close_after_start = true});
    auto cfg = std::make_shared<CallConfig>();
    cfg->stream_url = "ws://127.0.0.1:" + std::to_string(peer.port()) + "/media";
    cfg->auth_token = kToken;
    cfg->params = {{"k", "v"}};
    auto run = run_call(cfg);
    EXPECT_TRUE(run.report.outcome.completed) << run.report.outcome.first_error;
    std::lock_guard lk(peer.log.mu);
    EXPECT_EQ(peer.log.webhooks, 0);
    ASSERT_GE(peer.log.frames.size(), 2u);
    auto start = core::parse_twilio_message(peer.log.frames[1].text);
    ASSERT_TRUE(start);
    EXPECT_EQ(std::get<core::StartMsg>(start->message).custom_parameters,
              (core::Parameters{{"k", "v"}}));
    for (const auto& f : peer.log.frames) EXPECT_EQ(f.text.find("\"stop\""), std::string::npos);
    EXPECT_NE(joined(run.timeline).find("closed by the server"), std::string::npos)
        << joined(run.timeline);
}

TEST(Call, ViolationsAreCountedAndFailTheCallWhileTheStreamGoesOn) {
    Peer peer(kConnectTwiml, BotScript{.misbehave = true, .talk = false});
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/voice";
    cfg->auth_token = kToken;
    cfg->tail = 500ms;
    auto run = run_call(cfg);
    const auto& o = run.report.outcome;
    EXPECT_FALSE(o.completed);
    EXPECT_EQ(o.failure, FailureClass::protocol_violation);
    EXPECT_NE(o.first_error.find("binary frame"), std::string::npos) << o.first_error;
    EXPECT_EQ(run.report.violations, 2u);
    EXPECT_EQ(run.report.clears, 0u);  // the clear with a wrong streamSid was dropped
    // The stream went on to the caller's hang-up: 25 frames of tail.
    EXPECT_EQ(run.report.media_sent, 25u);
}

TEST(Call, InvalidTwimlEndsTheCallWithItsPosition) {
    Peer peer("<Response>\n  <Connect><Strem url='wss://x/m'/></Connect>\n</Response>",
              BotScript{});
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/voice";
    cfg->auth_token = kToken;
    auto run = run_call(cfg);
    const auto& o = run.report.outcome;
    EXPECT_FALSE(o.completed);
    EXPECT_EQ(o.failure, FailureClass::twiml_invalid);
    EXPECT_EQ(o.first_error,
              "http://127.0.0.1:" + std::to_string(peer.port()) +
                  "/voice:2:12: <Strem> is not allowed inside <Connect> (error 14300: expected "
                  "<Stream>) (Twilio error 12100)");
}

TEST(Call, AnUnreachableWebhookIsConnectRefused) {
    unsigned short port;
    {
        asio::io_context io;
        tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
        port = a.local_endpoint().port();
    }  // closed: nothing listens there now
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://127.0.0.1:" + std::to_string(port) + "/voice";
    auto run = run_call(cfg);
    EXPECT_FALSE(run.report.outcome.completed);
    EXPECT_EQ(run.report.outcome.failure, FailureClass::connect_refused)
        << run.report.outcome.first_error;
}

TEST(Call, FollowsSayGatherStopRedirectDialAndHangup) {
    Peer peer(
        std::map<std::string, std::string>{
            {"/voice", R"(<Response>
  <Start><Stream name="u" url="ws://{BASE}/media" track="both_tracks"/></Start>
  <Say>Hi</Say>
  <Gather numDigits="2" action="/gathered"><Say>Press two keys</Say></Gather>
  <Say>Nobody pressed anything</Say>
</Response>)"},
            {"/gathered",
             R"(<Response><Stop><Stream name="u"/></Stop><Redirect method="GET">/next?step=2</Redirect></Response>)"},
            {"/next", R"(<Response><Dial action="/dialed">+15551234567</Dial></Response>)"},
            {"/dialed", R"(<Response><Hangup/><Say>not reached</Say></Response>)"},
        },
        BotScript{.talk = false});
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/voice";
    cfg->auth_token = kToken;
    cfg->dtmf = "12";
    cfg->tail = 30s;  // the TwiML ends this call, not the caller
    auto run = run_call(cfg);
    const auto& o = run.report.outcome;
    EXPECT_TRUE(o.completed) << o.first_error << "\n" << joined(run.timeline);
    EXPECT_EQ(o.handoff, "+15551234567");
    std::lock_guard lk(peer.log.mu);
    EXPECT_TRUE(peer.log.problems.empty()) << joined(peer.log.problems);
    std::vector<std::string> order;
    std::map<std::string, std::map<std::string, std::string>> by;
    for (const auto& [what, params] : peer.log.requests) {
        order.push_back(what);
        by[what] = std::map<std::string, std::string>(params.begin(), params.end());
    }
    EXPECT_EQ(order, (std::vector<std::string>{"POST /voice", "POST /gathered", "GET /next",
                                               "POST /dialed"}));
    EXPECT_EQ(by["POST /voice"]["CallStatus"], "ringing");
    EXPECT_EQ(by["POST /gathered"]["CallStatus"], "in-progress");
    EXPECT_EQ(by["POST /gathered"]["Digits"], "12");
    EXPECT_EQ(by["GET /next"]["step"], "2");
    EXPECT_EQ(by["GET /next"]["CallSid"], o.call_sid);
    EXPECT_EQ(by["POST /dialed"]["DialCallStatus"], "completed");
    EXPECT_EQ(run.report.verbs.back(), "<Hangup>");

    // The unidirectional stream: both tracks, chunks counted per track, stopped by <Stop>.
    const auto& frames = peer.log.frames;
    ASSERT_GE(frames.size(), 4u);
    auto start = core::parse_twilio_message(frames[1].text);
    ASSERT_TRUE(start);
    EXPECT_EQ(std::get<core::StartMsg>(start->message).tracks,
              (std::vector<core::Track>{core::Track::inbound, core::Track::outbound}));
    std::uint64_t in = 0, out = 0, seq = 1;
    bool stopped = false;
    for (std::size_t i = 2; i < frames.size(); ++i) {
        auto m = core::parse_twilio_message(frames[i].text);
        ASSERT_TRUE(m);
        if (auto* md = std::get_if<core::MediaMsg>(&m->message)) {
            EXPECT_EQ(md->sequence_number, ++seq);
            auto& c = md->track == core::Track::inbound ? in : out;
            EXPECT_EQ(md->chunk, ++c);
            EXPECT_EQ(md->timestamp_ms, c * 20);
        } else if (auto* st = std::get_if<core::StopMsg>(&m->message)) {
            EXPECT_EQ(st->sequence_number, ++seq);
            stopped = true;
            EXPECT_EQ(i, frames.size() - 1) << "stop is the last frame";
        } else {
            ADD_FAILURE() << "unexpected frame on a unidirectional stream: " << frames[i].text;
        }
    }
    EXPECT_TRUE(stopped);
    EXPECT_EQ(in, out);
    EXPECT_GT(in, 10u);
}

TEST(Call, ParsesConnectToAsCurlDoes) {
    auto c = parse_connect_to("api.example.com:443=127.0.0.1:8443");
    ASSERT_TRUE(c);
    NetConfig net;
    net.connect_to = {*c};
    auto u = core::parse_url("wss://api.example.com/media");
    ASSERT_TRUE(u);
    EXPECT_EQ(connect_target(net, *u), (std::pair<std::string, std::string>{"127.0.0.1", "8443"}));
    EXPECT_EQ(host_header(*u), "api.example.com");
    auto other = core::parse_url("https://api.example.com:8443/x");
    ASSERT_TRUE(other);
    EXPECT_EQ(connect_target(net, *other),
              (std::pair<std::string, std::string>{"api.example.com", "8443"}));
    EXPECT_EQ(host_header(*other), "api.example.com:8443");
    auto any = parse_connect_to(":80=localhost:");
    ASSERT_TRUE(any);
    net.connect_to = {*any};
    auto h = core::parse_url("http://a.test/voice");
    ASSERT_TRUE(h);
    EXPECT_EQ(connect_target(net, *h), (std::pair<std::string, std::string>{"localhost", "80"}));
    EXPECT_EQ(parse_connect_to("nope").error().to_string(),
              "--connect-to: \"nope\": expected HOST:PORT=HOST2:PORT2 (example: --connect-to "
              "api.example.com:443=127.0.0.1:8443)");
    EXPECT_FALSE(parse_connect_to("a:b=c:d"));
}

TEST(Call, CommandRecordsWavsAndExitsZeroOnACleanCall) {
    Peer peer(kConnectTwiml, BotScript{});
    const auto dir = std::filesystem::temp_directory_path() /
                     ("mediasim-call-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    // The caller's audio as PCM16 at 16 kHz: the command converts it to μ-law 8 kHz.
    std::vector<std::uint8_t> pcm(8000 * 2, 0);  // 0.5 s of silence at 16 kHz (PCM16)
    ASSERT_TRUE(
        core::write_wav(dir / "in.wav", core::AudioFormat{core::Encoding::pcm16, 16000, 1}, pcm));
    const std::string webhook = "http://127.0.0.1:" + std::to_string(peer.port()) + "/voice";
    const std::string audio = (dir / "in.wav").string(), rec = (dir / "rec").string();
    std::vector<std::string> args = {"--webhook", webhook, "--auth-token", kToken, "--audio", audio,
                                     "--tail",    "2",     "--record-dir", rec,    "--quiet"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    EXPECT_EQ(cmd_call(std::span<char* const>(argv.data(), argv.size())), 0);
    int bot = 0, caller = 0;
    for (const auto& e : std::filesystem::directory_iterator(rec)) {
        auto name = e.path().filename().string();
        auto wav = core::read_wav(e.path());
        ASSERT_TRUE(wav) << wav.error().to_string();
        EXPECT_EQ(wav->format, (core::AudioFormat{core::Encoding::mulaw, 8000, 1}));
        if (name.find("-bot-bot.wav") != std::string::npos) {
            ++bot;
            EXPECT_EQ(std::count(wav->data.begin(), wav->data.end(), 0x11), 8000);
        }
        if (name.find("-bot-caller.wav") != std::string::npos) {
            ++caller;
            EXPECT_EQ(wav->data.size(), (25u + 100u) * 160u);  // 0.5 s of audio + 2 s of tail
        }
    }
    EXPECT_EQ(bot, 1);
    EXPECT_EQ(caller, 1);
    // Bad usage is exit code 2.
    std::vector<std::string> bad = {"--webhook", webhook, "--stream", "ws://x/y"};
    std::vector<char*> badv;
    for (auto& a : bad) badv.push_back(a.data());
    EXPECT_EQ(cmd_call(std::span<char* const>(badv.data(), badv.size())), 2);
    std::filesystem::remove_all(dir);
}

namespace {

// A self-signed certificate for `host` (PEM files in dir), made with OpenSSL's API.
void make_self_signed(const std::string& host, const std::filesystem::path& cert,
                      const std::filesystem::path& key) {
    EVP_PKEY* pkey = EVP_RSA_gen(2048);
    ASSERT_NE(pkey, nullptr);
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600 * 24);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(host.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
}

// A wss:// endpoint: TLS, the upgrade, then it closes right after `start`.
class TlsPeer {
  public:
    TlsPeer(const std::filesystem::path& cert, const std::filesystem::path& key)
        : ctx_(asio::ssl::context::tls_server),
          acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
        ctx_.use_certificate_chain_file(cert.string());
        ctx_.use_private_key_file(key.string(), asio::ssl::context::pem);
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] { serve_one(); });
    }
    ~TlsPeer() {
        beast::error_code ec;
        stopping_ = true;
        if (!served_) {  // wake the accept
            asio::io_context io;
            tcp::socket wake(io);
            wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
        }
        thread_.join();
    }
    unsigned short port() const { return port_; }
    std::atomic<int> frames{0};
    std::string host;

  private:
    void serve_one() {
        for (;;) {
            tcp::socket s(io_);
            beast::error_code ec;
            acceptor_.accept(s, ec);
            if (ec || stopping_) return;
            beast::ssl_stream<tcp::socket&> tls(s, ctx_);
            tls.handshake(asio::ssl::stream_base::server, ec);
            if (ec) continue;  // the client refused our certificate: wait for the next
            beast::flat_buffer buf;
            http::request<http::string_body> req;
            http::read(tls, buf, req, ec);
            if (ec) continue;
            host = std::string(req[http::field::host]);
            websocket::stream<beast::ssl_stream<tcp::socket&>&> ws(tls);
            ws.accept(req, ec);
            if (ec) continue;
            for (int i = 0; i < 2 && !ec; ++i) {
                beast::flat_buffer b;
                ws.read(b, ec);
                if (!ec) ++frames;
            }
            ws.close(websocket::close_code::normal, ec);
            while (!ec) {
                beast::flat_buffer b;
                ws.read(b, ec);
            }
            served_ = true;
            return;
        }
    }
    asio::io_context io_;
    asio::ssl::context ctx_;
    tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::thread thread_;
    std::atomic<bool> served_{false};
    std::atomic<bool> stopping_{false};
};

}  // namespace

TEST(Call, WssWithTheCertificateCheckedAgainstTheUrlHostEvenWithConnectTo) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("mediasim-call-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    make_self_signed("media.example.test", dir / "cert.pem", dir / "key.pem");
    auto run_with = [&](net::ClientTlsOptions tls, unsigned short port) {
        auto cfg = std::make_shared<CallConfig>();
        cfg->stream_url = "wss://media.example.test/media";
        auto n = std::make_shared<NetConfig>();
        auto ct = parse_connect_to("media.example.test:443=127.0.0.1:" + std::to_string(port));
        EXPECT_TRUE(ct);
        n->connect_to = {*ct};
        auto ctx = net::make_client_tls(tls);
        EXPECT_TRUE(ctx);
        n->tls = *ctx;
        cfg->net = n;
        return run_call(cfg);
    };
    {
        TlsPeer peer(dir / "cert.pem", dir / "key.pem");
        auto run = run_with({.insecure = false, .ca_file = dir / "cert.pem"}, peer.port());
        EXPECT_TRUE(run.report.outcome.completed) << run.report.outcome.first_error << "\n"
                                                  << joined(run.timeline);
        EXPECT_EQ(peer.host, "media.example.test");
        EXPECT_EQ(peer.frames.load(), 2);  // connected, start
    }
    {
        TlsPeer peer(dir / "cert.pem", dir / "key.pem");
        auto run = run_with({.insecure = false, .ca_file = {}}, peer.port());  // system CAs only
        EXPECT_FALSE(run.report.outcome.completed);
        EXPECT_EQ(run.report.outcome.failure, FailureClass::tls) << run.report.outcome.first_error;
    }
    {
        TlsPeer peer(dir / "cert.pem", dir / "key.pem");
        auto run = run_with({.insecure = true, .ca_file = {}}, peer.port());
        EXPECT_TRUE(run.report.outcome.completed) << run.report.outcome.first_error;
    }
    std::filesystem::remove_all(dir);
}

TEST(Call, AScriptedCallerDrivesTheStream) {
    Peer peer(kConnectTwiml, BotScript{});
    auto steps = std::make_shared<std::vector<ScriptStep>>();
    Speech words{"words", std::vector<std::uint8_t>(1600, 0x55)};  // 0.2 s
    WaitStep audio;
    audio.what = WaitStep::For::audio;
    audio.within = 1ms;  // an expectation the bot cannot meet (its audio comes at chunk 70)
    WaitStep mark;
    mark.what = WaitStep::For::mark;
    mark.mark = "m3";
    *steps = {{SpeakStep{words}, 1}, {audio, 2}, {mark, 3}, {DtmfStep{"5"}, 4}, {HangupStep{}, 5}};
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/voice";
    cfg->auth_token = kToken;
    cfg->caller = make_script_caller(steps);
    auto run = run_call(cfg);
    const auto& o = run.report.outcome;
    EXPECT_TRUE(o.completed) << o.first_error << "\n" << joined(run.timeline);
    ASSERT_EQ(o.expectation_failures.size(), 1u) << joined(run.timeline);
    EXPECT_NE(o.expectation_failures[0].find("steps[1]"), std::string::npos)
        << o.expectation_failures[0];
    std::lock_guard lk(peer.log.mu);
    ASSERT_GE(peer.log.frames.size(), 3u);
    // The caller's words went out first, then silence; the digit after m3; stop last.
    std::uint64_t media = 0;
    bool dtmf = false, stopped = false;
    for (std::size_t i = 2; i < peer.log.frames.size(); ++i) {
        auto m = core::parse_twilio_message(peer.log.frames[i].text);
        ASSERT_TRUE(m);
        if (auto* md = std::get_if<core::MediaMsg>(&m->message)) {
            ++media;
            std::uint8_t b[162];
            auto n = core::base64_decode(md->payload, b);
            ASSERT_TRUE(n);
            EXPECT_EQ(b[0], media <= 10 ? 0x55 : 0xFF) << "chunk " << media;
        } else if (auto* d = std::get_if<core::DtmfMsg>(&m->message)) {
            EXPECT_EQ(d->digit, '5');
            dtmf = true;
        } else if (std::holds_alternative<core::StopMsg>(m->message)) {
            stopped = true;
        }
    }
    EXPECT_TRUE(dtmf);
    EXPECT_TRUE(stopped);
    EXPECT_GE(media, 90u);  // m3 is sent at chunk 90
}

TEST(Call, AFailedHandshakeIsAStreamErrorAndTheTwimlGoesOn) {
    unsigned short closed;
    {
        asio::io_context io;
        tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
        closed = a.local_endpoint().port();
    }
    Peer peer("<Response><Connect><Stream url=\"ws://127.0.0.1:" + std::to_string(closed) +
                  "/media\" statusCallback=\"/status\"/></Connect><Say>Sorry</Say></Response>",
              BotScript{});
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/voice";
    cfg->auth_token = kToken;
    auto run = run_call(cfg);
    const auto& o = run.report.outcome;
    EXPECT_FALSE(o.completed);
    EXPECT_EQ(o.failure, FailureClass::connect_refused) << o.first_error;
    EXPECT_EQ(run.report.verbs.back(), "<Say> \"Sorry\"") << joined(run.timeline);
    std::lock_guard lk(peer.log.mu);
    EXPECT_TRUE(peer.log.problems.empty()) << joined(peer.log.problems);
    ASSERT_EQ(peer.log.status_events.size(), 1u);
    std::map<std::string, std::string> ev(peer.log.status_events[0].begin(),
                                          peer.log.status_events[0].end());
    EXPECT_EQ(ev["StreamEvent"], "stream-error");
    EXPECT_NE(ev["StreamError"].find("refused"), std::string::npos) << ev["StreamError"];
}

TEST(Call, AWebhookAnsweringAnErrorStatusFailsTheCall) {
    Peer peer(kConnectTwiml, BotScript{});
    auto cfg = std::make_shared<CallConfig>();
    cfg->webhook_url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/missing";
    cfg->auth_token = kToken;
    auto run = run_call(cfg);
    EXPECT_FALSE(run.report.outcome.completed);
    EXPECT_EQ(run.report.outcome.failure, FailureClass::http_status);
    EXPECT_EQ(run.report.webhook_status, 404);
    EXPECT_EQ(run.report.outcome.first_error,
              "http://127.0.0.1:" + std::to_string(peer.port()) +
                  "/missing answered HTTP 404 (Twilio: error 11200, the call ends)");
}
