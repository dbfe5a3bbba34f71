// loopback_floor: what the transport alone costs this machine for N concurrent Twilio-like
// streams over loopback TCP, so that the simulator's and the server's per-frame costs can be
// read against a floor (bench/README.md, "The loopback floor").
//
// One process, two threads, each pinned to its own CPU: a sender that owns N client sockets
// and writes one masked WebSocket text frame of a real `media` message (the bytes
// `mediasim run` sends, 300-odd) to each every 20 ms, on absolute deadlines spread evenly over
// the period (one wake-up per 0.5 ms grid slot, as the simulator's ticker); and a receiver that
// owns the N accepted sockets in one edge-triggered epoll set and reads whatever arrives. No
// WebSocket parsing, no JSON, no storage: only the system calls and the kernel's TCP work that
// any sender and any receiver of this traffic must do. Each thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID) over the measured window, per frame, is the floor; and the
// sender's pacing error (each send against its deadline, as `mediasim run` measures its own)
// is the floor of what a sender that sleeps between deadlines gets from this machine.
//
//   loopback_floor [--streams N] [--seconds S] [--sender-cpu C] [--receiver-cpu C] [--echo]
//                  [--delayed-ack]
//
// --echo: the receiver also writes each frame it reads back on the same socket and the sender
// reads them (the echo bot's traffic: both directions). --delayed-ack: the receiver turns
// TCP_QUICKACK off after each read (Linux acknowledges every small segment of a one-way flow
// at once otherwise).
#include <arpa/inet.h>
#include <fcntl.h>
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
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    int streams = 1000;
    double seconds = 10;
    int sender_cpu = 1;
    int receiver_cpu = 0;
    bool echo = false;
    bool delayed_ack = false;
};

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "loopback_floor: %s\n", what.c_str());
    std::exit(2);
}

[[noreturn]] void die_errno(const std::string& what) {
    die(what + ": " + std::strerror(errno));
}

Options parse(int argc, char** argv) {
    Options o;
    auto number = [&](int& i, std::string_view flag) {
        if (i + 1 >= argc) die(std::string(flag) + " needs a value");
        char* end = nullptr;
        const double v = std::strtod(argv[++i], &end);
        if (!end || *end || v < 0) die(std::string(flag) + ": \"" + argv[i] + "\" is not a number");
        return v;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--streams") {
            o.streams = static_cast<int>(number(i, a));
        } else if (a == "--seconds") {
            o.seconds = number(i, a);
        } else if (a == "--sender-cpu") {
            o.sender_cpu = static_cast<int>(number(i, a));
        } else if (a == "--receiver-cpu") {
            o.receiver_cpu = static_cast<int>(number(i, a));
        } else if (a == "--echo") {
            o.echo = true;
        } else if (a == "--delayed-ack") {
            o.delayed_ack = true;
        } else {
            die("unknown option \"" + std::string(a) +
                "\" (usage: loopback_floor [--streams N] [--seconds S] [--sender-cpu C] "
                "[--receiver-cpu C] [--echo] [--delayed-ack])");
        }
    }
    if (o.streams < 1) die("--streams must be at least 1");
    return o;
}

void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        die("cannot pin a thread to CPU " + std::to_string(cpu));
}

double thread_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void nonblocking_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// A masked client text frame holding a media message as `mediasim run` sends it.
std::string media_frame() {
    std::string payload =
        R"({"event":"media","sequenceNumber":"1234","streamSid":"MZ0123456789abcdef0123456789abcdef",)"
        R"("media":{"track":"inbound","chunk":"1233","timestamp":"24660","payload":")";
    for (int i = 0; i < 160 / 3 * 4 + 4; ++i) payload += "/";  // base64 of 160 bytes: 216 chars
    payload.resize(payload.size() - 4);
    payload += "/w==\"}}";
    std::string f;
    f += static_cast<char>(0x81);  // FIN, text
    if (payload.size() < 126) {
        f += static_cast<char>(0x80 | payload.size());
    } else {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>(payload.size() >> 8);
        f += static_cast<char>(payload.size() & 0xFF);
    }
    const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    for (unsigned char k : key) f += static_cast<char>(k);
    for (std::size_t i = 0; i < payload.size(); ++i)
        f += static_cast<char>(static_cast<unsigned char>(payload[i]) ^ key[i % 4]);
    return f;
}

// An edge-triggered epoll set reading fds; each event carries its fd's index.
int epoll_of(const std::vector<int>& fds) {
    const int ep = epoll_create1(0);
    if (ep < 0) die_errno("epoll_create1");
    for (std::size_t i = 0; i < fds.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    return ep;
}

struct Result {
    double cpu_s = 0;
    std::uint64_t frames = 0;  // written (sender) or read (receiver) in the window
    std::uint64_t bytes = 0;
    std::uint64_t syscalls = 0;
};

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse(argc, argv);
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < static_cast<rlim_t>(2 * opt.streams + 64)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < static_cast<rlim_t>(2 * opt.streams + 64))
            die("the open-file limit (" + std::to_string(rl.rlim_cur) + ") is too low for " +
                std::to_string(opt.streams) + " streams");
    }

    const int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) die_errno("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die_errno("bind");
    if (listen(lfd, 4096) != 0) die_errno("listen");
    socklen_t alen = sizeof addr;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &alen);

    std::vector<int> client(static_cast<std::size_t>(opt.streams));
    std::vector<int> server(static_cast<std::size_t>(opt.streams));
    for (int i = 0; i < opt.streams; ++i) {
        const int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0) die_errno("socket");
        if (connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die_errno("connect");
        const int s = accept(lfd, nullptr, nullptr);
        if (s < 0) die_errno("accept");
        nonblocking_nodelay(c);
        nonblocking_nodelay(s);
        client[static_cast<std::size_t>(i)] = c;
        server[static_cast<std::size_t>(i)] = s;
    }
    close(lfd);

    const std::string frame = media_frame();
    const auto warmup = std::chrono::seconds(2);
    const auto t0 = Clock::now() + std::chrono::milliseconds(100);
    const auto measure_from = t0 + warmup;
    const auto measure_to = measure_from + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(opt.seconds));
    std::atomic<bool> done{false};
    Result sent, received;
    std::vector<float> lateness_us;  // each frame's send against its deadline (sender thread)
    lateness_us.reserve(static_cast<std::size_t>(opt.streams * 50 * (opt.seconds + 1)));

    std::thread receiver([&] {
        pin(opt.receiver_cpu);
        const int ep = epoll_of(server);
        std::vector<epoll_event> evs(256);
        char buf[16384];
        bool measuring = false;
        double cpu0 = 0;
        Result r;
        while (!done.load(std::memory_order_relaxed)) {
            const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 50);
            ++r.syscalls;
            const auto now = Clock::now();
            if (!measuring && now >= measure_from) {
                measuring = true;
                cpu0 = thread_cpu_s();
                r = Result{};
            }
            if (measuring && now >= measure_to) break;
            for (int k = 0; k < n; ++k) {
                const int fd = server[evs[static_cast<std::size_t>(k)].data.u32];
                while (true) {
                    const ssize_t got = recv(fd, buf, sizeof buf, 0);
                    ++r.syscalls;
                    if (got <= 0) break;
                    r.bytes += static_cast<std::uint64_t>(got);
                    if (opt.delayed_ack) {
                        int zero = 0;
                        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
                        ++r.syscalls;
                    }
                    if (opt.echo) {
                        ++r.syscalls;
                        (void)!send(fd, buf, static_cast<std::size_t>(got), MSG_NOSIGNAL);
                    }
                    if (static_cast<std::size_t>(got) < sizeof buf) break;  // drained
                }
            }
        }
        r.cpu_s = thread_cpu_s() - cpu0;
        r.frames = r.bytes / frame.size();
        received = r;
        close(ep);
    });

    std::thread sender([&] {
        pin(opt.sender_cpu);
        // Stream i is due at t0 + phase(i) + k * 20 ms; phases spread over the 40 slots.
        constexpr auto kPeriod = std::chrono::milliseconds(20);
        constexpr auto kGrid = std::chrono::microseconds(500);
        constexpr int kSlots = 40;
        std::vector<std::vector<int>> slot_streams(kSlots);
        for (int i = 0; i < opt.streams; ++i)
            slot_streams[static_cast<std::size_t>(i % kSlots)].push_back(i);
        const int ep = epoll_of(opt.echo ? client : std::vector<int>{});
        std::vector<epoll_event> evs(256);
        char buf[16384];
        bool measuring = false;
        double cpu0 = 0;
        Result r;
        auto due = t0;
        int slot = 0;
        while (true) {
            // Sleep to the next slot's deadline (reading echoes meanwhile).
            while (true) {
                const auto now = Clock::now();
                if (now >= due) break;
                const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                         due - now + std::chrono::microseconds(999))
                                         .count();
                if (opt.echo) {
                    const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()),
                                             static_cast<int>(wait_ms > 0 ? wait_ms - 1 : 0));
                    ++r.syscalls;
                    for (int k = 0; k < n; ++k) {
                        const int fd = client[evs[static_cast<std::size_t>(k)].data.u32];
                        while (recv(fd, buf, sizeof buf, 0) > 0) ++r.syscalls;
                        ++r.syscalls;
                    }
                    if (n > 0) continue;
                }
                timespec ts{};
                const auto left =
                    std::chrono::duration_cast<std::chrono::nanoseconds>(due - Clock::now());
                if (left.count() <= 0) break;
                ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
                ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
                clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
                ++r.syscalls;
            }
            if (!measuring && due >= measure_from) {
                measuring = true;
                cpu0 = thread_cpu_s();
                r = Result{};
            }
            if (measuring && due >= measure_to) break;
            for (int i : slot_streams[static_cast<std::size_t>(slot)]) {
                if (measuring)
                    lateness_us.push_back(static_cast<float>(
                        std::chrono::duration<double, std::micro>(Clock::now() - due).count()));
                const ssize_t w = send(client[static_cast<std::size_t>(i)], frame.data(),
                                       frame.size(), MSG_NOSIGNAL);
                ++r.syscalls;
                if (w > 0) {
                    r.bytes += static_cast<std::uint64_t>(w);
                    ++r.frames;
                }
            }
            slot = (slot + 1) % kSlots;
            due += kGrid;
            (void)kPeriod;
        }
        r.cpu_s = thread_cpu_s() - cpu0;
        sent = r;
        done = true;
        close(ep);
    });

    sender.join();
    receiver.join();
    for (int fd : client) close(fd);
    for (int fd : server) close(fd);

    const double fps = static_cast<double>(sent.frames) / opt.seconds;
    std::sort(lateness_us.begin(), lateness_us.end());
    auto late_q = [&](double q) {
        if (lateness_us.empty()) return 0.0;
        return static_cast<double>(lateness_us[static_cast<std::size_t>(
                   q * static_cast<double>(lateness_us.size() - 1))]) /
               1000.0;
    };
    auto us_per = [](const Result& r) {
        return r.frames ? r.cpu_s * 1e6 / static_cast<double>(r.frames) : 0.0;
    };
    const double recv_frames =
        static_cast<double>(received.bytes) / static_cast<double>(frame.size());
    const double recv_us = recv_frames > 0 ? received.cpu_s * 1e6 / recv_frames : 0.0;
    std::printf(
        "streams %d%s, frame %zu bytes, %.0f frames/s for %.0f s\n"
        "  sender   (CPU %d): %5.1f %% of a core, %.2f us/frame, %.2f syscalls/frame\n"
        "  receiver (CPU %d): %5.1f %% of a core, %.2f us/frame, %.2f syscalls/frame\n"
        "  sender pacing error (each send against its deadline): p50 %.2f  p99 %.2f  p99.9 %.2f  "
        "max %.2f ms\n",
        opt.streams, opt.echo ? " (echo)" : "", frame.size(), fps, opt.seconds, opt.sender_cpu,
        100.0 * sent.cpu_s / opt.seconds, us_per(sent),
        sent.frames ? static_cast<double>(sent.syscalls) / static_cast<double>(sent.frames) : 0.0,
        opt.receiver_cpu, 100.0 * received.cpu_s / opt.seconds, recv_us,
        recv_frames > 0 ? static_cast<double>(received.syscalls) / recv_frames : 0.0, late_q(0.5),
        late_q(0.99), late_q(0.999), late_q(1.0));
    return 0;
}
