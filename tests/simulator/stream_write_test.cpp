// The stream client's send path over real loopback sockets, against a Beast peer (which
// rejects any frame that is not a valid masked client frame): frames the socket takes only in
// part are completed when it drains, in order and whole; the peer's pings are answered with
// Beast's pongs between our frames, also while one of ours is half written; frames held by
// network impairments are released in order, in bursts, through the same path.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <mutex>
#include <thread>

#include "core/form.hpp"
#include "core/protocol.hpp"
#include "simulator/stream_client.hpp"

using namespace mediasim;
using namespace mediasim::sim;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

// Accepts one WebSocket, does not read for `stall` (with a small receive buffer, so that the
// client's socket fills), then reads everything until the client's close. Pings every
// `ping_every` from the start when non-zero.
class Peer {
  public:
    Peer(std::chrono::milliseconds stall, std::chrono::milliseconds ping_every)
        : acceptor_(io_),
          ws_(io_),
          stall_(io_),
          ping_timer_(io_),
          stall_for_(stall),
          ping_every_(ping_every) {
        acceptor_.open(tcp::v4());
        acceptor_.set_option(asio::socket_base::receive_buffer_size(4096));
        acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port = acceptor_.local_endpoint().port();
        acceptor_.async_accept(ws_.next_layer(), [this](beast::error_code ec) {
            if (ec) return finish("accept: " + ec.message());
            ws_.control_callback([this](websocket::frame_type k, beast::string_view) {
                if (k == websocket::frame_type::pong) ++pongs;
            });
            ws_.read_message_max(1 << 20);
            ws_.async_accept([this](beast::error_code e) {
                if (e) return finish("upgrade: " + e.message());
                if (ping_every_.count() > 0) ping();
                stall_.expires_after(stall_for_);
                stall_.async_wait([this](beast::error_code) { read(); });
            });
        });
        thread_ = std::thread([this] { io_.run_for(60s); });
    }
    ~Peer() {
        io_.stop();
        thread_.join();
    }

    unsigned short port = 0;
    std::atomic<int> pongs{0};
    std::atomic<bool> done{false};
    std::mutex mu;
    std::vector<std::string> messages;                           // text frames, in order
    std::vector<std::chrono::steady_clock::time_point> arrived;  // when each was read
    std::string end;                                             // how the peer's read ended

  private:
    void read() {
        ws_.async_read(buf_, [this](beast::error_code ec, std::size_t) {
            if (ec) return finish(ec == websocket::error::closed ? "closed" : ec.message());
            {
                std::lock_guard lk(mu);
                messages.push_back(beast::buffers_to_string(buf_.data()));
                arrived.push_back(std::chrono::steady_clock::now());
            }
            buf_.consume(buf_.size());
            read();
        });
    }
    void ping() {
        if (done) return;
        ws_.async_ping("are you there", [this](beast::error_code ec) {
            if (ec || done) return;
            ping_timer_.expires_after(ping_every_);
            ping_timer_.async_wait([this](beast::error_code e) {
                if (!e) ping();
            });
        });
    }
    void finish(std::string how) {
        {
            std::lock_guard lk(mu);
            end = std::move(how);
        }
        done = true;
        ping_timer_.cancel();
    }

    asio::io_context io_;
    tcp::acceptor acceptor_;
    websocket::stream<tcp::socket> ws_;
    asio::steady_timer stall_, ping_timer_;
    std::chrono::milliseconds stall_for_, ping_every_;
    beast::flat_buffer buf_;
    std::thread thread_;
};

StreamResult run_stream(Peer& peer, std::chrono::milliseconds talk,
                        std::vector<std::string>* log = nullptr,
                        std::shared_ptr<const Impairments> impair = nullptr) {
    asio::io_context io;
    auto net = std::make_shared<NetConfig>();
    StreamPlan plan;
    plan.url = *core::parse_url("ws://127.0.0.1:" + std::to_string(peer.port) + "/media");
    plan.account_sid = "AC" + std::string(32, 'a');
    plan.call_sid = "CA" + std::string(32, 'b');
    plan.stream_sid = "MZ" + std::string(32, 'c');
    plan.inbound = plan.outbound = true;  // both tracks: twice the bytes
    plan.tail = talk;
    plan.send_buffer = 4096;  // with the peer's small receive buffer: full within a second
    // A start message of 100 KB: the socket takes it only in part, the rest waits.
    plan.custom_parameters = {{"blob", std::string(100'000, 'x')}};
    plan.impair = std::move(impair);
    StreamResult result;
    std::shared_ptr<StreamClient> client;
    StreamEvents ev;
    ev.on_caller_done = [&] { client->hang_up(); };
    ev.log = [&](std::string line) {
        if (log) log->push_back(std::move(line));
    };
    ev.on_ended = [&](StreamResult r) { result = std::move(r); };
    client = make_stream_client(io, net, plan, std::move(ev), nullptr);
    client->start();
    io.run_for(40s);
    client.reset();
    return result;
}

// Every message whole and in order: connected, start, media with consecutive sequence numbers
// and chunks per track, stop.
struct Sent {
    StreamResult result;
    core::Parameters custom_parameters;
};

void expect_intact(Peer& peer, const Sent& r) {
    for (int i = 0; i < 200 && !peer.done; ++i) std::this_thread::sleep_for(10ms);
    std::lock_guard lk(peer.mu);
    EXPECT_EQ(peer.end, "closed");
    ASSERT_GE(peer.messages.size(), 3u);
    EXPECT_EQ(peer.messages.size(), r.result.frames_sent);
    std::uint64_t seq = 0, media = 0, chunk[2] = {0, 0};
    for (std::size_t i = 0; i < peer.messages.size(); ++i) {
        auto parsed = core::parse_twilio_message(peer.messages[i]);
        ASSERT_TRUE(parsed) << "message " << i << ": " << parsed.error().to_string();
        const auto& m = parsed->message;
        if (i == 0) {
            EXPECT_TRUE(std::holds_alternative<core::ConnectedMsg>(m));
            continue;
        }
        if (i == 1) {
            ASSERT_TRUE(std::holds_alternative<core::StartMsg>(m));
            seq = std::get<core::StartMsg>(m).sequence_number;
            EXPECT_EQ(std::get<core::StartMsg>(m).custom_parameters, r.custom_parameters);
            continue;
        }
        if (i + 1 == peer.messages.size()) {
            ASSERT_TRUE(std::holds_alternative<core::StopMsg>(m)) << peer.messages[i];
            EXPECT_EQ(std::get<core::StopMsg>(m).sequence_number, seq + 1);
            continue;
        }
        ASSERT_TRUE(std::holds_alternative<core::MediaMsg>(m)) << peer.messages[i];
        const auto& md = std::get<core::MediaMsg>(m);
        EXPECT_EQ(md.sequence_number, ++seq);
        EXPECT_EQ(md.chunk, ++chunk[static_cast<int>(md.track)]);
        EXPECT_EQ(md.payload.size(), 216u);  // 160 bytes of μ-law in base64
        ++media;
    }
    EXPECT_EQ(media, r.result.media_sent);
    EXPECT_EQ(chunk[0], chunk[1]);
}

}  // namespace

TEST(StreamWrite, AFrameTheSocketTakesInPartIsCompletedWhenItDrains) {
    Peer peer(2s, 0ms);
    const auto r = run_stream(peer, 3s);
    EXPECT_EQ(r.end, StreamEnd::hung_up) << r.error;
    EXPECT_EQ(r.failure, FailureClass::none) << r.error;
    // The peer read nothing for 2 s: the socket filled and frames waited for it.
    EXPECT_GT(r.writes_waited, 0u);
    EXPECT_GT(r.media_sent, 200u);
    expect_intact(peer, {r, {{"blob", std::string(100'000, 'x')}}});
}

TEST(StreamWrite, PingsAreAnsweredBetweenOurFramesEvenWhileOneIsHalfWritten) {
    // Pings every 50 ms, also while the peer is not reading and our frames wait for the
    // socket: a ping then arrives while one of our frames is half written.
    Peer peer(2s, 50ms);
    std::vector<std::string> log;
    const auto r = run_stream(peer, 3s, &log);
    bool finished_first = false;
    for (const auto& l : log) finished_first |= l.find("finished it first") != std::string::npos;
    EXPECT_TRUE(finished_first);
    EXPECT_EQ(r.end, StreamEnd::hung_up) << r.error;
    EXPECT_EQ(r.failure, FailureClass::none) << r.error;
    EXPECT_GT(r.writes_waited, 0u);
    EXPECT_GT(peer.pongs.load(), 20);
    expect_intact(peer, {r, {{"blob", std::string(100'000, 'x')}}});
}

TEST(StreamWrite, FramesHeldByImpairmentsLeaveInOrderInBurstsAndAllBeforeTheStop) {
    // Pauses of 1 s every 1.5 s (at 1.5 s and at 3 s, where the caller hangs up) plus 5 ms of
    // jitter: the ticker produces every frame on time, the gate holds it, the stream releases
    // it from a ticker deadline of its own, the fast path writes it (pings meanwhile).
    auto imp = std::make_shared<Impairments>();
    imp->pause_for = 1000ms;
    imp->pause_every = 1500ms;
    imp->jitter = 5ms;
    imp->distribution = Impairments::Distribution::uniform;
    Peer peer(500ms, 50ms);
    std::vector<std::string> log;
    const auto r = run_stream(peer, 3s, &log, imp);
    EXPECT_EQ(r.end, StreamEnd::hung_up) << r.error;
    EXPECT_EQ(r.failure, FailureClass::none) << r.error;
    // 150 frames per track, those of the last tick held in the pause at 3 s and released
    // before the stop.
    EXPECT_EQ(r.media_sent, 300u);
    bool described = false;
    for (const auto& l : log) described |= l.find("network impairments: jitter 5ms") == 0;
    EXPECT_TRUE(described);
    expect_intact(peer, {r, {{"blob", std::string(100'000, 'x')}}});
    // The pause at 1.5 s: no media for most of a second, then its 50 frames per track at once.
    std::lock_guard lk(peer.mu);
    ASSERT_EQ(peer.arrived.size(), peer.messages.size());
    std::size_t burst_at = 0;
    for (std::size_t i = 3; i + 1 < peer.arrived.size() && !burst_at; ++i)
        if (peer.arrived[i] - peer.arrived[i - 1] > 800ms) burst_at = i;
    ASSERT_GT(burst_at, 0u) << "no gap of a pause between two frames";
    std::size_t in_burst = 0;
    for (std::size_t i = burst_at; i < peer.arrived.size(); ++i)
        if (peer.arrived[i] - peer.arrived[burst_at] < 300ms) ++in_burst;
    EXPECT_GE(in_burst, 80u);
}
