// stream_load: a lean load source for the reference server's capacity bench
// (bench/server_capacity.sh, issue 4 §9). It opens N Media Streams to a ws:// endpoint the way
// Twilio does — WebSocket upgrade, `connected`, `start` (the inbound track of a bidirectional
// <Connect><Stream>),
// then one `media` message per 20 ms with 160 μ-law bytes, `stop`, close — and nothing else:
// no TwiML, no scenario, no play-out, no histograms of the server's audio. The messages are the
// simulator's own (core::to_json, core::append_media_json, sim::frame_client_text), so the
// server does exactly the work a `mediasim run` call gives it; the sender costs little more
// than the kernel's TCP (bench/loopback_floor), which leaves this 2-core machine's other
// cycles to the server under test. `mediasim run` remains the tool that checks a server's
// behaviour; this measures how many streams the server sustains.
//
//   stream_load --url ws://HOST:PORT/PATH [--streams N] [--rate R] [--hold SECONDS] [--cpu C]
//               [--audio FILE.wav]
//
// --audio: the caller says this WAV's audio (any rate; converted to 8 kHz μ-law) over and over,
// each stream from its own offset; without it the caller is silent (0xFF).
// One thread (pinned with --cpu), one edge-triggered epoll set, non-blocking sockets. Streams
// start at R per second; each stream's 20 ms timeline is in one of 40 phases (0.5 ms apart,
// dealt in turn) so that frames are spread over the period. What the server sends is read
// and dropped. Each stream runs for --hold seconds of media after `start`. Prints one line of
// key=value pairs: streams started/completed/failed, frames sent, CPU % of a core, µs per frame
// and the pacing error of the sends (each against its deadline) p50/p99/p99.9/max in ms; the
// first failure's reason. Exit 0 when every stream completed, 1 otherwise, 2 for bad usage.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/g711.hpp"
#include "core/ids.hpp"
#include "core/protocol.hpp"
#include "core/wav.hpp"
#include "simulator/ws_frame.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace core = mediasim::core;
namespace sim = mediasim::sim;

constexpr auto kFrame = std::chrono::milliseconds(20);
constexpr auto kGrid = std::chrono::microseconds(500);
constexpr int kPhases = 40;
constexpr std::size_t kFrameBytes = 160;

struct Options {
    std::string host;
    std::string port;
    std::string path;
    int streams = 100;
    double rate = 200;
    double hold_s = 10;
    int cpu = -1;
    std::string audio;
};

[[noreturn]] void usage(const std::string& what) {
    std::fprintf(stderr,
                 "stream_load: %s\nusage: stream_load --url ws://HOST:PORT/PATH [--streams N] "
                 "[--rate R] [--hold SECONDS] [--cpu C] [--audio FILE.wav]\n",
                 what.c_str());
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    std::string url;
    auto value = [&](int& i, std::string_view flag) -> std::string {
        if (i + 1 >= argc) usage(std::string(flag) + " needs a value");
        return argv[++i];
    };
    auto number = [&](int& i, std::string_view flag, double lo) {
        const std::string v = value(i, flag);
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        if (v.empty() || *end || d < lo)
            usage(std::string(flag) + ": \"" + v +
                  "\" is not a number >= " + fmt::format("{}", lo));
        return d;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--url") {
            url = value(i, a);
        } else if (a == "--streams") {
            o.streams = static_cast<int>(number(i, a, 1));
        } else if (a == "--rate") {
            o.rate = number(i, a, 0.1);
        } else if (a == "--hold") {
            o.hold_s = number(i, a, 0.1);
        } else if (a == "--audio") {
            o.audio = value(i, a);
        } else if (a == "--cpu") {
            o.cpu = static_cast<int>(number(i, a, 0));
        } else {
            usage("unknown option \"" + std::string(a) + "\"");
        }
    }
    if (url.empty()) usage("--url is required");
    if (!url.starts_with("ws://"))
        usage("--url \"" + url + "\": only ws:// URLs (the bench runs on loopback)");
    std::string_view rest = std::string_view(url).substr(5);
    const auto slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    o.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    const auto colon = authority.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == authority.size())
        usage("--url \"" + url + "\": give the port (ws://HOST:PORT/PATH)");
    o.host = std::string(authority.substr(0, colon));
    o.port = std::string(authority.substr(colon + 1));
    return o;
}

double thread_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

enum class State { upgrading, running, closing, done, failed };

struct Stream {
    int fd = -1;
    State state = State::upgrading;
    std::string stream_sid;
    std::string call_sid;
    std::string pending;      // bytes not yet taken by the socket (sent before anything newer)
    std::string response;     // the upgrade response, until its end
    Clock::time_point start;  // the media timeline's origin
    Clock::time_point stop_at;
    std::uint64_t seq = 1;
    std::uint64_t chunk = 0;
    std::uint64_t offset = 0;  // where in the audio this stream starts (frames)
};

struct Due {
    Clock::time_point at;
    int stream;
    bool operator>(const Due& o) const { return at > o.at; }
};

class Load {
  public:
    explicit Load(Options o)
        : opt_(std::move(o)), streams_(static_cast<std::size_t>(opt_.streams)) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        if (const int rc = getaddrinfo(opt_.host.c_str(), opt_.port.c_str(), &hints, &addr_);
            rc != 0)
            usage("cannot resolve \"" + opt_.host + ":" + opt_.port + "\": " + gai_strerror(rc));
        ep_ = epoll_create1(0);
        if (opt_.audio.empty()) {
            audio_.assign(kFrameBytes, core::kUlawSilence);
        } else {
            core::ReadOptions ro;
            ro.sample_rate_hz = 8000;
            ro.downmix = true;
            auto pcm = core::read_wav_pcm(opt_.audio, ro);
            if (!pcm) usage("--audio: " + pcm.error().to_string());
            const std::size_t frames = pcm->samples.size() / kFrameBytes;
            if (frames == 0) usage("--audio " + opt_.audio + ": shorter than one 20 ms frame");
            audio_.resize(frames * kFrameBytes);
            core::ulaw_encode(std::span<const std::int16_t>(pcm->samples.data(), audio_.size()),
                              audio_.data());
        }
    }

    int run() {
        const auto t0 = Clock::now();
        int started = 0;
        auto next_start = t0;
        const auto gap = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(1.0 / opt_.rate));
        std::vector<epoll_event> evs(512);
        char buf[65536];
        while (true) {
            const auto now = Clock::now();
            while (started < opt_.streams && now >= next_start) {
                open_stream(started++);
                next_start += gap;
            }
            // Every frame due by now, in deadline order.
            while (!dues_.empty() && dues_.top().at <= Clock::now()) {
                const Due d = dues_.top();
                dues_.pop();
                tick(d);
            }
            if (started == opt_.streams && live_ == 0) break;
            auto wake = dues_.empty() ? now + std::chrono::milliseconds(50) : dues_.top().at;
            if (started < opt_.streams) wake = std::min(wake, next_start);
            const auto left = wake - Clock::now();
            const int timeout_ms =
                left <= Clock::duration::zero()
                    ? 0
                    : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
            // epoll_wait's millisecond timeout, then the rest precisely.
            const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()),
                                     timeout_ms > 1 ? timeout_ms - 1 : 0);
            for (int k = 0; k < n; ++k)
                on_event(static_cast<int>(evs[static_cast<std::size_t>(k)].data.u32),
                         evs[static_cast<std::size_t>(k)].events, buf, sizeof buf);
            if (n == 0) {
                const auto rest = wake - Clock::now();
                if (rest > Clock::duration::zero()) {
                    timespec ts{};
                    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(rest);
                    ts.tv_sec = static_cast<time_t>(ns.count() / 1'000'000'000);
                    ts.tv_nsec = static_cast<long>(ns.count() % 1'000'000'000);
                    nanosleep(&ts, nullptr);
                }
            }
        }
        const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
        report(wall);
        return failed_ == 0 && completed_ == opt_.streams ? 0 : 1;
    }

  private:
    void open_stream(int i) {
        Stream& s = streams_[static_cast<std::size_t>(i)];
        s.stream_sid = sids_.next("MZ");
        s.offset = static_cast<std::uint64_t>(i) * 37;
        s.call_sid = sids_.next("CA");
        s.fd = socket(addr_->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (s.fd < 0) return fail(s, std::string("socket: ") + std::strerror(errno));
        int one = 1;
        setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ++live_;
        if (connect(s.fd, addr_->ai_addr, addr_->ai_addrlen) != 0 && errno != EINPROGRESS)
            return fail(s, std::string("connect: ") + std::strerror(errno));
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev);
        // The upgrade goes out once the connect completes (the first EPOLLOUT); queued here.
        s.pending = "GET " + opt_.path + " HTTP/1.1\r\nHost: " + opt_.host + ":" + opt_.port +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    "User-Agent: TwilioProxy/1.1\r\n\r\n";
    }

    void on_event(int i, std::uint32_t events, char* buf, std::size_t cap) {
        Stream& s = streams_[static_cast<std::size_t>(i)];
        if (s.state == State::done || s.state == State::failed) return;
        if (events & EPOLLOUT) flush(s);
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            while (true) {
                const ssize_t got = recv(s.fd, buf, cap, 0);
                if (got > 0) {
                    if (s.state == State::upgrading)
                        on_upgrade_bytes(i, s,
                                         std::string_view(buf, static_cast<std::size_t>(got)));
                    if (static_cast<std::size_t>(got) < cap) break;
                    continue;
                }
                if (got == 0) {
                    if (s.state == State::closing) return complete(s);
                    return fail(s, "the server closed the connection early");
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (s.state == State::closing) return complete(s);
                return fail(s, std::string("read: ") + std::strerror(errno));
            }
        }
    }

    void on_upgrade_bytes(int i, Stream& s, std::string_view bytes) {
        s.response.append(bytes);
        const auto end = s.response.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (s.response.size() > 16384) fail(s, "the upgrade response has no end");
            return;
        }
        if (!s.response.starts_with("HTTP/1.1 101"))
            return fail(s, "upgrade refused: " + s.response.substr(0, s.response.find("\r\n")));
        s.response.clear();
        s.state = State::running;
        send_json(s, core::to_json(core::TwilioMessage(core::ConnectedMsg{})));
        core::StartMsg start;
        start.sequence_number = s.seq++;
        start.stream_sid = s.stream_sid;
        start.account_sid = "AC00000000000000000000000000000000";
        start.call_sid = s.call_sid;
        start.tracks = {core::Track::inbound};  // a <Connect><Stream>: bidirectional
        start.custom_parameters = {{"load", "stream_load"}};
        send_json(s, core::to_json(core::TwilioMessage(std::move(start))));
        // The timeline in the next phase of the 40, from this 0.5 ms grid point on.
        const auto now = Clock::now();
        const auto since = now.time_since_epoch();
        auto origin = Clock::time_point(since - since % kGrid);
        const int p0 = static_cast<int>((origin.time_since_epoch() / kGrid) % kPhases);
        const int want = next_phase_++ % kPhases;
        origin += ((want - p0 + kPhases) % kPhases) * kGrid;
        s.start = origin;
        s.stop_at = origin + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(opt_.hold_s));
        ++started_media_;
        dues_.push({s.start + kFrame, i});
    }

    void tick(const Due& d) {
        Stream& s = streams_[static_cast<std::size_t>(d.stream)];
        // After our close frame the server closes (its close frame, then EOF); a socket it
        // leaves open is closed by us 2 s later, as Twilio does.
        if (s.state == State::closing) return complete(s);
        if (s.state != State::running) return;
        const auto now = Clock::now();
        if (d.at >= s.stop_at) return finish(s);
        lateness_us_.push_back(
            static_cast<float>(std::chrono::duration<double, std::micro>(now - d.at).count()));
        ++s.chunk;
        out_.assign(sim::kWsHeaderRoom, '\0');
        const std::size_t frames = audio_.size() / kFrameBytes;
        const std::size_t f = (s.chunk + s.offset) % frames;
        core::append_media_json(
            out_, s.stream_sid, s.seq++, core::Track::inbound, s.chunk, s.chunk * 20,
            std::span<const std::uint8_t>(audio_.data() + f * kFrameBytes, kFrameBytes));
        write_frame(s);
        ++frames_;
        dues_.push({d.at + kFrame, d.stream});
    }

    void finish(Stream& s) {
        core::StopMsg stop;
        stop.sequence_number = s.seq++;
        stop.stream_sid = s.stream_sid;
        stop.account_sid = "AC00000000000000000000000000000000";
        stop.call_sid = s.call_sid;
        send_json(s, core::to_json(core::TwilioMessage(std::move(stop))));
        // Twilio closes the socket itself after stop (a close frame, 1000).
        const unsigned char close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8};
        s.pending.append(reinterpret_cast<const char*>(close_frame), sizeof close_frame);
        flush(s);
        if (s.state == State::failed) return;
        s.state = State::closing;
        dues_.push(
            {Clock::now() + std::chrono::seconds(2), static_cast<int>(&s - streams_.data())});
    }

    void complete(Stream& s) {
        if (s.state != State::closing) return;
        s.state = State::done;
        ++completed_;
        close_stream(s);
    }

    void send_json(Stream& s, const std::string& json) {
        out_.assign(sim::kWsHeaderRoom, '\0');
        out_ += json;
        write_frame(s);
    }

    void write_frame(Stream& s) {
        const std::size_t at = sim::frame_client_text(out_, keys_.next());
        if (!s.pending.empty()) {
            s.pending.append(out_, at);
            return flush(s);
        }
        const std::size_t len = out_.size() - at;
        const ssize_t w = send(s.fd, out_.data() + at, len, MSG_NOSIGNAL);
        if (w == static_cast<ssize_t>(len)) return;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return fail(s, std::string("write: ") + std::strerror(errno));
        s.pending.assign(out_, at + static_cast<std::size_t>(std::max<ssize_t>(w, 0)));
    }

    void flush(Stream& s) {
        while (!s.pending.empty()) {
            const ssize_t w = send(s.fd, s.pending.data(), s.pending.size(), MSG_NOSIGNAL);
            if (w > 0) {
                s.pending.erase(0, static_cast<std::size_t>(w));
                continue;
            }
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) return;
            // Before the upgrade the first write is where a failed connect shows.
            return fail(s, std::string(s.state == State::upgrading ? "connect: " : "write: ") +
                               std::strerror(errno));
        }
    }

    void fail(Stream& s, const std::string& why) {
        if (s.state == State::done || s.state == State::failed) return;
        if (first_failure_.empty()) first_failure_ = "stream " + s.stream_sid + ": " + why;
        s.state = State::failed;
        ++failed_;
        close_stream(s);
    }

    void close_stream(Stream& s) {
        if (s.fd >= 0) {
            epoll_ctl(ep_, EPOLL_CTL_DEL, s.fd, nullptr);
            close(s.fd);
            s.fd = -1;
            --live_;
        }
    }

    void report(double wall_s) {
        std::sort(lateness_us_.begin(), lateness_us_.end());
        auto q = [&](double p) {
            if (lateness_us_.empty()) return 0.0;
            return static_cast<double>(lateness_us_[static_cast<std::size_t>(
                       p * static_cast<double>(lateness_us_.size() - 1))]) /
                   1000.0;
        };
        const double cpu = thread_cpu_s();
        std::printf(
            "streams=%d started=%d completed=%d failed=%d frames=%llu cpu_pct=%.1f "
            "us_per_frame=%.2f pacing_p50_ms=%.2f pacing_p99_ms=%.2f pacing_p999_ms=%.2f "
            "pacing_max_ms=%.2f%s%s\n",
            opt_.streams, started_media_, completed_, failed_,
            static_cast<unsigned long long>(frames_), 100.0 * cpu / wall_s,
            frames_ ? cpu * 1e6 / static_cast<double>(frames_) : 0.0, q(0.5), q(0.99), q(0.999),
            q(1.0), first_failure_.empty() ? "" : " first_failure=", first_failure_.c_str());
    }

    Options opt_;
    std::vector<Stream> streams_;
    addrinfo* addr_ = nullptr;
    int ep_ = -1;
    int live_ = 0;
    int started_media_ = 0;
    int completed_ = 0;
    int failed_ = 0;
    int next_phase_ = 0;
    std::uint64_t frames_ = 0;
    std::string out_;
    std::vector<std::uint8_t> audio_;  // whole 20 ms frames of μ-law
    std::vector<float> lateness_us_;
    std::priority_queue<Due, std::vector<Due>, std::greater<>> dues_;
    core::SidGenerator sids_;
    sim::MaskKeys keys_;
    std::string first_failure_;
};

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse(argc, argv);
    if (opt.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(opt.cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
            usage("cannot run on CPU " + std::to_string(opt.cpu));
    }
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < static_cast<rlim_t>(opt.streams + 64))
        usage("the open-file limit (" + std::to_string(rl.rlim_cur) + ") is too low for " +
              std::to_string(opt.streams) + " streams");
    Load load(std::move(opt));
    return load.run();
}
