// End to end: the real mediasim-server binary on a free loopback port, driven by a Beast client
// the way Twilio drives it (signed webhooks, a signed WebSocket upgrade, a whole stream).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/base64.hpp"
#include "core/form.hpp"
#include "core/g711.hpp"
#include "core/protocol.hpp"
#include "core/signature.hpp"

namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Bytes = std::vector<std::uint8_t>;
using namespace mediasim;

const std::string kToken = "2b6f0c8a1e9d4f7b8c3a5d6e7f901234";
const std::string kAccount = "AC0123456789abcdef0123456789abcdef";
const std::string kStream = "MZ0123456789abcdef0123456789abcdef";

std::string new_call_sid() {
    static std::mt19937_64 rng{std::random_device{}()};
    static const char* hex = "0123456789abcdef";
    std::string s = "CA";
    for (int i = 0; i < 32; ++i) s += hex[rng() % 16];
    return s;
}

class TempDir {
  public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() /
                ("mediasim_server_e2e_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

// The mediasim-server process. Reads "listening on http://127.0.0.1:PORT" from its stdout.
class ServerProcess {
  public:
    explicit ServerProcess(std::vector<std::string> extra) {
        const char* bin_dir = std::getenv("MEDIASIM_BIN_DIR");
        const fs::path bin =
            fs::path(bin_dir ? bin_dir : MEDIASIM_BINARY_DIR "/bin") / "mediasim-server";
        std::vector<std::string> args = {bin.string(), "--listen", "127.0.0.1:0", "--data",
                                         (dir_.path() / "data").string()};
        args.insert(args.end(), extra.begin(), extra.end());
        int out[2];
        if (::pipe(out) != 0) throw std::runtime_error("pipe");
        const auto log = (dir_.path() / "server.log").string();
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (err >= 0) ::dup2(err, 2);
            ::close(out[0]);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        out_fd_ = out[0];
        // Read the first line (bounded: 20 s).
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (line.find('\n') == std::string::npos &&
               std::chrono::steady_clock::now() < deadline) {
            pollfd p{out_fd_, POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0) continue;
            char buf[256];
            const auto n = ::read(out_fd_, buf, sizeof buf);
            if (n <= 0) break;
            line.append(buf, static_cast<std::size_t>(n));
        }
        const std::string prefix = "listening on http://127.0.0.1:";
        if (line.rfind(prefix, 0) == 0)
            port_ = static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
    }
    ~ServerProcess() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (out_fd_ >= 0) ::close(out_fd_);
    }
    std::uint16_t port() const { return port_; }
    std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string log() const {
        std::ifstream in(dir_.path() / "server.log");
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    const fs::path& dir() const { return dir_.path(); }

    // Sends sig and waits (bounded) for the exit; returns the exit status or -1.
    int terminate(int sig = SIGTERM, std::chrono::seconds bound = std::chrono::seconds(20)) {
        ::kill(pid_, sig);
        const auto deadline = std::chrono::steady_clock::now() + bound;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }

  private:
    TempDir dir_;
    pid_t pid_ = -1;
    int out_fd_ = -1;
    std::uint16_t port_ = 0;
    bool exited_ = false;
};

void set_timeouts(tcp::socket& s) {
    timeval tv{15, 0};  // a hang guard, not a timing assertion
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

struct HttpResult {
    int status = 0;
    std::string body;
    std::string content_type;
};

HttpResult http_request(std::uint16_t port, http::verb method, const std::string& target,
                        const std::string& body = {}, const std::string& signature = {},
                        const std::string& content_type = "application/x-www-form-urlencoded") {
    asio::io_context ioc;
    tcp::socket sock(ioc);
    sock.connect({asio::ip::make_address("127.0.0.1"), port});
    set_timeouts(sock);
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    if (!signature.empty()) req.set("X-Twilio-Signature", signature);
    if (!body.empty()) {
        req.set(http::field::content_type, content_type);
        req.body() = body;
    }
    req.prepare_payload();
    http::write(sock, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    return {static_cast<int>(res.result_int()), res.body(),
            std::string(res[http::field::content_type])};
}

core::Parameters voice_params(const std::string& call_sid) {
    return {{"AccountSid", kAccount},  {"ApiVersion", "2010-04-01"}, {"CallSid", call_sid},
            {"CallStatus", "ringing"}, {"Direction", "inbound"},     {"From", "+14155550100"},
            {"To", "+15005550001"}};
}

// POST /voice as Twilio does, signed with the token over the URL it requested.
HttpResult post_signed(const ServerProcess& s, const std::string& path,
                       const core::Parameters& params, const std::string& token = kToken) {
    return http_request(s.port(), http::verb::post, path, core::form_encode(params),
                        core::compute_signature(token, s.base() + path, params));
}

Bytes loud(int i) {
    Bytes b(160);
    for (int n = 0; n < 160; ++n)
        b[static_cast<std::size_t>(n)] = core::linear_to_ulaw(static_cast<std::int16_t>(
            10000 * std::sin(2 * 3.14159265 * 440 * (i * 160 + n) / 8000.0)));
    return b;
}
Bytes silence() {
    return Bytes(160, core::kUlawSilence);
}

// Twilio's end of a media stream.
class TwilioStream {
  public:
    // rcvbuf > 0: a small receive buffer, to play a Twilio that does not read.
    TwilioStream(std::uint16_t port, std::string call_sid, int rcvbuf = 0)
        : ws_(ioc_), call_(std::move(call_sid)) {
        auto& sock = ws_.next_layer();
        sock.open(tcp::v4());
        if (rcvbuf > 0)
            ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sock.connect({asio::ip::make_address("127.0.0.1"), port});
        set_timeouts(sock);
        host_ = "127.0.0.1:" + std::to_string(port);
        target_ = "/media/" + call_;
    }
    std::string url() const { return "ws://" + host_ + target_; }

    // Returns the HTTP status of the upgrade answer (101 when accepted).
    int handshake(const std::string& signature) {
        ws_.set_option(websocket::stream_base::decorator([signature](websocket::request_type& r) {
            if (!signature.empty()) r.set("X-Twilio-Signature", signature);
        }));
        websocket::response_type res;
        beast::error_code ec;
        ws_.handshake(res, host_, target_, ec);
        return static_cast<int>(res.result_int());
    }

    void text(const std::string& frame) {
        ws_.text(true);
        ws_.write(asio::buffer(frame));
    }
    // As text(), but reports a failed write instead of throwing.
    bool try_text(const std::string& frame) {
        beast::error_code ec;
        ws_.text(true);
        ws_.write(asio::buffer(frame), ec);
        return !ec;
    }
    void send(const core::TwilioMessage& m) { text(core::to_json(m)); }
    void connected() { send(core::ConnectedMsg{}); }
    void start() {
        core::StartMsg m;
        m.stream_sid = kStream;
        m.call_sid = call_;
        m.account_sid = kAccount;
        send(m);
    }
    void media(const Bytes& mulaw) {
        std::string f;
        core::append_media_json(f, kStream, ++seq_, core::Track::inbound, ++chunk_, ts_, mulaw);
        ts_ += 20;
        text(f);
    }
    void dtmf(char d) {
        core::DtmfMsg m;
        m.sequence_number = ++seq_;
        m.stream_sid = kStream;
        m.digit = d;
        send(m);
    }
    void mark(const std::string& name) {
        core::MarkMsg m;
        m.sequence_number = ++seq_;
        m.stream_sid = kStream;
        m.name = name;
        send(m);
    }
    void stop() {
        core::StopMsg m;
        m.sequence_number = ++seq_;
        m.stream_sid = kStream;
        m.account_sid = kAccount;
        m.call_sid = call_;
        send(m);
    }
    // Reads server frames until a mark; returns the media bytes and the mark's name.
    std::pair<Bytes, std::string> read_until_mark(int* clears = nullptr) {
        Bytes media;
        for (;;) {
            beast::flat_buffer buf;
            ws_.read(buf);
            EXPECT_TRUE(ws_.got_text());
            auto p = core::parse_server_message(beast::buffers_to_string(buf.data()));
            if (!p) {
                ADD_FAILURE() << p.error().to_string();
                return {media, ""};
            }
            if (auto* m = std::get_if<core::ServerMediaMsg>(&p->message)) {
                EXPECT_EQ(m->stream_sid, kStream);
                Bytes b(core::base64_decoded_max_size(m->payload.size()));
                auto n = core::base64_decode(m->payload, b.data());
                EXPECT_TRUE(n.ok());
                media.insert(media.end(), b.begin(), b.begin() + static_cast<long>(*n));
            } else if (auto* mk = std::get_if<core::ServerMarkMsg>(&p->message)) {
                return {media, mk->name};
            } else if (clears) {
                ++*clears;
            }
        }
    }
    // Reads until the server closes; true when it closed the WebSocket.
    bool read_until_close() {
        beast::error_code ec;
        for (int i = 0; i < 100000 && !ec; ++i) {
            beast::flat_buffer buf;
            ws_.read(buf, ec);
        }
        return ec == websocket::error::closed;
    }
    // The close code the server sent (after read_until_close), 0 when none.
    int close_code() const { return static_cast<int>(ws_.reason().code); }
    void close() {
        beast::error_code ec;
        ws_.close(websocket::close_code::normal, ec);
    }
    std::uint64_t& seq() { return seq_; }

  private:
    asio::io_context ioc_;
    websocket::stream<tcp::socket> ws_;
    std::string call_, host_, target_;
    std::uint64_t seq_ = 1, chunk_ = 0, ts_ = 0;
};

// The value of a Prometheus sample line, e.g. metric("...{reason=\"x\"}").
double metric(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name.size() + 2));
}

// Polls /metrics until name reaches at least want (bounded: 10 s); returns the last value.
double wait_metric(const ServerProcess& s, const std::string& name, double want) {
    double v = -1;
    for (int i = 0; i < 200; ++i) {
        v = metric(http_request(s.port(), http::verb::get, "/metrics").body, name);
        if (v >= want) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return v;
}

std::string write_file(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
    return p.string();
}

TEST(ServerE2E, VoiceWebhookNeedsAValidSignature) {
    ServerProcess s({"--auth-token", kToken});
    ASSERT_NE(s.port(), 0) << s.log();
    const auto call = new_call_sid();
    const auto params = voice_params(call);

    auto ok = post_signed(s, "/voice", params);
    EXPECT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.content_type, "text/xml; charset=utf-8");
    EXPECT_NE(ok.body.find("<Connect><Stream url=\"ws://" + s.base().substr(7) + "/media/" + call),
              std::string::npos)
        << ok.body;
    EXPECT_NE(ok.body.find("<Parameter name=\"caller\" value=\"+14155550100\"/>"),
              std::string::npos);

    auto unsigned_ = http_request(s.port(), http::verb::post, "/voice", core::form_encode(params));
    EXPECT_EQ(unsigned_.status, 403);
    auto wrong = post_signed(s, "/voice", params, "not-the-token");
    EXPECT_EQ(wrong.status, 403);
    // A signature over other parameters does not fit this body.
    auto tampered = http_request(s.port(), http::verb::post, "/voice",
                                 core::form_encode(voice_params(new_call_sid())),
                                 core::compute_signature(kToken, s.base() + "/voice", params));
    EXPECT_EQ(tampered.status, 403);
    EXPECT_NE(s.log().find("signature_rejected"), std::string::npos);

    auto status = post_signed(s, "/status",
                              {{"AccountSid", kAccount},
                               {"CallSid", call},
                               {"StreamEvent", "stream-started"},
                               {"StreamSid", kStream}});
    EXPECT_EQ(status.status, 204);

    // Bad requests get a clear answer.
    EXPECT_EQ(http_request(s.port(), http::verb::get, "/nothing-here").status, 404);
    auto wrong_method = http_request(s.port(), http::verb::get, "/status");
    EXPECT_EQ(wrong_method.status, 405);
    EXPECT_EQ(wrong_method.body, "/status does not take GET (allowed: POST)\n");
    auto bad_type =
        http_request(s.port(), http::verb::post, "/voice", "{}", "x", "application/json");
    EXPECT_EQ(bad_type.status, 400);
    EXPECT_NE(bad_type.body.find("application/x-www-form-urlencoded"), std::string::npos);
    auto bad_form = http_request(s.port(), http::verb::post, "/voice", "CallSid=%zz", "x");
    EXPECT_EQ(bad_form.status, 400);
    EXPECT_NE(bad_form.body.find("bad form body"), std::string::npos) << bad_form.body;
    EXPECT_EQ(http_request(s.port(), http::verb::get, "/healthz").body, "ok\n");

    auto metrics = http_request(s.port(), http::verb::get, "/metrics");
    EXPECT_EQ(metric(metrics.body, "mediasim_server_calls_total"), 1);
    EXPECT_EQ(metric(metrics.body, "mediasim_server_signature_rejected_total"), 3);
    EXPECT_GT(metric(metrics.body, "mediasim_server_resident_memory_bytes"), 0);
    EXPECT_EQ(s.terminate(), 0) << s.log();
}

TEST(ServerE2E, EachFlowAnswersItsTwiml) {
    {
        ServerProcess s({"--flow", "greet", "--public-url", "https://sim.example.com"});
        ASSERT_NE(s.port(), 0) << s.log();
        const auto call = new_call_sid();
        auto r = http_request(s.port(), http::verb::post, "/voice",
                              core::form_encode(voice_params(call)));
        EXPECT_EQ(r.status, 200);
        EXPECT_NE(r.body.find("<Say>"), std::string::npos);
        EXPECT_NE(r.body.find("</Say><Connect><Stream url=\"wss://sim.example.com/media/" + call),
                  std::string::npos)
            << r.body;
        EXPECT_EQ(s.terminate(), 0);
    }
    {
        ServerProcess s({"--flow", "fork"});
        ASSERT_NE(s.port(), 0) << s.log();
        auto r = http_request(s.port(), http::verb::post, "/voice",
                              core::form_encode(voice_params(new_call_sid())));
        EXPECT_NE(r.body.find("<Start><Stream url=\"ws://"), std::string::npos) << r.body;
        EXPECT_NE(r.body.find("track=\"both_tracks\""), std::string::npos);
        EXPECT_NE(r.body.find("statusCallback=\"" + s.base() + "/status\""), std::string::npos);
        EXPECT_NE(r.body.find("<Pause length=\"60\"/>"), std::string::npos);
        EXPECT_EQ(s.terminate(), 0);
    }
    {
        ServerProcess s(
            {"--flow", "gather", "--handoff-number", "+15005550006", "--auth-token", kToken});
        ASSERT_NE(s.port(), 0) << s.log();
        auto params = voice_params(new_call_sid());
        auto r = post_signed(s, "/voice", params);
        EXPECT_NE(r.body.find("<Gather input=\"speech dtmf\" action=\"" + s.base() + "/gather\""),
                  std::string::npos)
            << r.body;
        params.emplace_back("SpeechResult", "I want a human");
        params.emplace_back("Confidence", "0.9");
        auto g = post_signed(s, "/gather", params);
        EXPECT_EQ(g.status, 200);
        EXPECT_NE(g.body.find("<Say>You said: I want a human."), std::string::npos) << g.body;
        EXPECT_NE(g.body.find("<Dial>+15005550006</Dial>"), std::string::npos) << g.body;
        EXPECT_EQ(
            http_request(s.port(), http::verb::post, "/gather", core::form_encode(params)).status,
            403);
        EXPECT_EQ(s.terminate(), 0);
    }
}

TEST(ServerE2E, AWholeStreamIsEchoedAndRecorded) {
    ServerProcess s({"--auth-token", kToken});
    ASSERT_NE(s.port(), 0) << s.log();
    const auto call = new_call_sid();
    ASSERT_EQ(post_signed(s, "/voice", voice_params(call)).status, 200);

    {  // Unsigned and wrongly signed upgrades are refused.
        TwilioStream bare(s.port(), call);
        EXPECT_EQ(bare.handshake(""), 403);
        TwilioStream wrong(s.port(), call);
        EXPECT_EQ(wrong.handshake(core::compute_signature("other", wrong.url())), 403);
    }

    TwilioStream t(s.port(), call);
    ASSERT_EQ(t.handshake(core::compute_signature(kToken, t.url())), 101) << s.log();
    t.connected();
    t.start();
    // The bot speaks first: its greeting (espeak-ng), then the mark "greeting", which Twilio
    // echoes once the greeting has played (answered at once here, before the caller speaks).
    {
        auto [greeting, greeting_mark] = t.read_until_mark();
        EXPECT_EQ(greeting_mark, "greeting");
        EXPECT_GT(greeting.size(), 8000u / 2) << "less than half a second of greeting";
        t.mark("greeting");
    }
    Bytes sent, utterance;
    for (int i = 0; i < 2; ++i) {
        t.media(silence());
        auto f = silence();
        sent.insert(sent.end(), f.begin(), f.end());
    }
    for (int i = 0; i < 10; ++i) {
        const auto f = loud(i);
        utterance.insert(utterance.end(), f.begin(), f.end());
        sent.insert(sent.end(), f.begin(), f.end());
        t.media(f);
    }
    for (int i = 0; i < 26; ++i) {
        t.media(silence());
        auto f = silence();
        sent.insert(sent.end(), f.begin(), f.end());
    }
    auto [echo, mark] = t.read_until_mark();
    EXPECT_EQ(mark, "echo-1");
    EXPECT_EQ(echo, utterance);  // the caller's words, bit-exact
    t.mark("echo-1");

    // Bad frames: counted, logged, and the stream goes on.
    t.text("{not json");
    {
        std::string f;
        core::append_media_json(f, "MZffffffffffffffffffffffffffffffff", t.seq() + 1,
                                core::Track::inbound, 100, 1000, silence());
        t.text(f);
        core::MediaMsg m;
        m.sequence_number = t.seq() + 1;
        m.stream_sid = kStream;
        m.chunk = 100;
        m.payload = "not base64!";
        t.text(core::to_json(core::TwilioMessage{m}));
    }
    t.dtmf('7');
    auto [tone, tone_mark] = t.read_until_mark();
    EXPECT_EQ(tone_mark, "tone-1");
    EXPECT_EQ(tone.size(), 1600u);  // 200 ms
    t.mark("tone-1");
    t.stop();
    t.close();

    auto m = http_request(s.port(), http::verb::get, "/metrics").body;
    EXPECT_EQ(metric(m, "mediasim_server_bad_frames_total{reason=\"invalid_json\"}"), 1) << m;
    EXPECT_EQ(metric(m, "mediasim_server_bad_frames_total{reason=\"wrong_stream_sid\"}"), 1);
    EXPECT_EQ(metric(m, "mediasim_server_bad_frames_total{reason=\"bad_base64\"}"), 1);
    EXPECT_EQ(metric(m, "mediasim_server_bad_frames_total{reason=\"sequence_gap\"}"), 0);
    EXPECT_EQ(metric(m, "mediasim_server_media_frames_in_total"), 38 + 1);  // + wrong streamSid
    EXPECT_EQ(metric(m, "mediasim_server_marks_out_total"), 3);  // greeting, echo-1, tone-1
    EXPECT_EQ(metric(m, "mediasim_server_streams_total"), 1);
    EXPECT_EQ(metric(m, "mediasim_server_dtmf_in_total"), 1);
    EXPECT_EQ(metric(m, "mediasim_server_storage_errors_total"), 0);
    EXPECT_NE(s.log().find("reason=invalid_json"), std::string::npos);

    // The call is in the API, with its recording (storage writes on its own thread: poll).
    HttpResult call_json, wav;
    for (int i = 0; i < 100; ++i) {
        call_json = http_request(s.port(), http::verb::get, "/api/calls/" + call);
        wav = http_request(s.port(), http::verb::get, "/calls/" + call + "/recording.wav");
        if (call_json.status == 200 && wav.status == 200 &&
            call_json.body.find("\"stop\"") != std::string::npos)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(call_json.status, 200) << call_json.body;
    EXPECT_NE(call_json.body.find(kStream), std::string::npos) << call_json.body;
    EXPECT_EQ(wav.status, 200);
    EXPECT_EQ(wav.body.substr(0, 4), "RIFF");
    EXPECT_EQ(http_request(s.port(), http::verb::get, "/api/calls/../../etc/passwd").status, 400);
    auto list = http_request(s.port(), http::verb::get, "/api/calls");
    EXPECT_NE(list.body.find(call), std::string::npos) << list.body;
    EXPECT_EQ(s.terminate(), 0) << s.log();
}

TEST(ServerE2E, SigtermClosesOpenStreamsAndExitsZero) {
    ServerProcess s({});
    ASSERT_NE(s.port(), 0) << s.log();
    const auto call = new_call_sid();
    TwilioStream t(s.port(), call);
    ASSERT_EQ(t.handshake(""), 101);
    t.connected();
    t.start();
    for (int i = 0; i < 50; ++i) t.media(silence());
    // Make sure the server has the stream before the signal.
    for (int i = 0; i < 200; ++i) {
        auto m = http_request(s.port(), http::verb::get, "/metrics").body;
        if (metric(m, "mediasim_server_media_frames_in_total") == 50) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::thread term([&] { EXPECT_EQ(s.terminate(SIGTERM), 0) << s.log(); });
    EXPECT_TRUE(t.read_until_close());  // the server closed the WebSocket itself
    term.join();
    EXPECT_NE(s.log().find("stream_end"), std::string::npos) << s.log();
    EXPECT_NE(s.log().find("how=server_stop"), std::string::npos) << s.log();
}

TEST(ServerE2E, TlsAndPlainShareThePort) {
    TempDir certs;
    const auto cert = (certs.path() / "cert.pem").string();
    const auto key = (certs.path() / "key.pem").string();
    const auto cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        "-keyout " +
        key + " -out " + cert + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl failed";
    ServerProcess s({"--tls-cert", cert, "--tls-key", key});
    ASSERT_NE(s.port(), 0) << s.log();
    EXPECT_EQ(http_request(s.port(), http::verb::get, "/healthz").status, 200);

    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file(cert);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    websocket::stream<beast::ssl_stream<tcp::socket>> ws(ioc, ctx);
    auto& sock = beast::get_lowest_layer(ws);
    sock.connect({asio::ip::make_address("127.0.0.1"), s.port()});
    set_timeouts(sock);
    ws.next_layer().handshake(asio::ssl::stream_base::client);
    ws.handshake("127.0.0.1:" + std::to_string(s.port()), "/media");
    ws.text(true);
    ws.write(asio::buffer(core::to_json(core::ConnectedMsg{})));
    beast::error_code ec;
    ws.close(websocket::close_code::normal, ec);
    EXPECT_EQ(s.terminate(), 0) << s.log();
    EXPECT_EQ(s.log().find("bad_frame"), std::string::npos) << s.log();
}

TEST(ServerE2E, StreamLimitsAreEnforcedWithALogLineAndAMetric) {
    TempDir cfg;
    const auto file = write_file(cfg.path() / "limits.yaml",
                                 "limits:\n  max_streams: 1\n  max_message_bytes: 4096\n"
                                 "  idle_timeout_seconds: 1\n");
    ServerProcess s({"--config", file, "--greeting", ""});
    ASSERT_NE(s.port(), 0) << s.log();
    const auto lim = [](std::string_view l) {
        return "mediasim_server_limit_hits_total{limit=\"" + std::string(l) + "\"}";
    };

    // One stream fills the server; the next upgrade is refused with 503.
    TwilioStream a(s.port(), new_call_sid());
    ASSERT_EQ(a.handshake(""), 101) << s.log();
    a.connected();
    a.start();
    {
        TwilioStream b(s.port(), new_call_sid());
        EXPECT_EQ(b.handshake(""), 503);
    }
    EXPECT_EQ(wait_metric(s, lim("max_streams"), 1), 1);

    // A message over max_message_bytes closes the stream with 1009 (message too big).
    EXPECT_TRUE(a.try_text("{\"event\":\"media\",\"x\":\"" + std::string(5000, 'x') + "\"}"));
    EXPECT_TRUE(a.read_until_close());
    EXPECT_EQ(a.close_code(), 1009);
    EXPECT_EQ(wait_metric(s, lim("message_too_big"), 1), 1);

    // The slot is free again; a stream that then goes quiet is closed after the idle timeout.
    int status = 0;
    std::optional<TwilioStream> c;
    for (int i = 0; i < 100 && status != 101; ++i) {
        c.emplace(s.port(), new_call_sid());
        status = c->handshake("");
        if (status != 101) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(status, 101) << s.log();
    c->connected();
    c->start();
    c->read_until_close();  // returns when the server drops the connection (guard: 15 s)
    EXPECT_EQ(wait_metric(s, lim("idle_timeout"), 1), 1);

    const auto log = s.log();
    for (const char* l : {"limit=max_streams", "limit=message_too_big", "limit=idle_timeout"})
        EXPECT_NE(log.find(l), std::string::npos) << l << "\n" << log;
    EXPECT_EQ(metric(http_request(s.port(), http::verb::get, "/metrics").body,
                     "mediasim_server_streams_active"),
              0);
    EXPECT_EQ(s.terminate(), 0) << s.log();
}

TEST(ServerE2E, ASlowReaderIsCutOffNotWaitedFor) {
    // The bot talks (a long greeting) to a Twilio that never reads: what cannot be written
    // queues up to send_queue_max_bytes, then frames are dropped; a write stuck for
    // write_timeout_seconds closes the stream. The server stays healthy throughout.
    TempDir cfg;
    const auto file = write_file(cfg.path() / "limits.yaml",
                                 "limits:\n  send_queue_max_bytes: 65536\n"
                                 "  write_timeout_seconds: 1\n"
                                 "  socket_send_buffer_bytes: 16384\n");
    std::string greeting;
    for (int i = 0; i < 12; ++i) greeting += "This is a long greeting that nobody reads. ";
    ServerProcess s({"--config", file, "--greeting", greeting});
    ASSERT_NE(s.port(), 0) << s.log();
    TwilioStream t(s.port(), new_call_sid(), /*rcvbuf=*/2048);
    ASSERT_EQ(t.handshake(""), 101) << s.log();
    t.connected();
    t.start();
    // Keep sending as Twilio does (so the idle timeout does not fire) but never read.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    while (std::chrono::steady_clock::now() < until && t.try_text([&] {
        const auto seq = ++t.seq();
        std::string f;
        core::append_media_json(f, kStream, seq, core::Track::inbound, seq - 1, (seq - 2) * 20,
                                silence());
        return f;
    }()))
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(wait_metric(s, "mediasim_server_limit_hits_total{limit=\"write_timeout\"}", 1), 1)
        << s.log();
    const auto m = http_request(s.port(), http::verb::get, "/metrics").body;
    EXPECT_GE(metric(m, "mediasim_server_limit_hits_total{limit=\"send_queue_full\"}"), 1) << m;
    EXPECT_GT(metric(m, "mediasim_server_frames_dropped_total"), 0) << m;
    EXPECT_EQ(http_request(s.port(), http::verb::get, "/healthz").status, 200);
    EXPECT_NE(s.log().find("limit=write_timeout"), std::string::npos) << s.log();
    EXPECT_EQ(s.terminate(), 0) << s.log();
}

TEST(ServerE2E, OversizedRequestsAreRefusedWithTheirStatus) {
    ServerProcess s({});
    ASSERT_NE(s.port(), 0) << s.log();
    EXPECT_EQ(
        http_request(s.port(), http::verb::post, "/voice", std::string(70 * 1024, 'a')).status,
        413);
    {
        asio::io_context ioc;
        tcp::socket sock(ioc);
        sock.connect({asio::ip::make_address("127.0.0.1"), s.port()});
        set_timeouts(sock);
        http::request<http::string_body> req{http::verb::get, "/healthz", 11};
        req.set(http::field::host, "127.0.0.1");
        req.set("X-Padding", std::string(20 * 1024, 'p'));
        http::write(sock, req);
        beast::flat_buffer buf;
        http::response<http::string_body> res;
        http::read(sock, buf, res);
        EXPECT_EQ(res.result_int(), 431u);
    }
    const auto m = http_request(s.port(), http::verb::get, "/metrics").body;
    EXPECT_EQ(metric(m, "mediasim_server_limit_hits_total{limit=\"body_too_large\"}"), 1) << m;
    EXPECT_EQ(metric(m, "mediasim_server_limit_hits_total{limit=\"header_too_large\"}"), 1) << m;
    EXPECT_EQ(s.terminate(), 0) << s.log();
}

}  // namespace
