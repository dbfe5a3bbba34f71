// The pacing clock of one io_context: every stream on it is due on its own absolute 20 ms
// deadlines, and one Ticker holds them all in one min-heap behind one timer, instead of a
// timer per stream. When the timer fires, every client whose deadline has come is called, in
// deadline order (ties: in the order they were scheduled), each with its own deadline, so that
// a client measures its lateness against when it was due, not against when the ticker woke.
// A client behind by several deadlines is called once per wake-up (the next comes at once), so
// that work posted meanwhile (a hang-up) runs in between, as with a timer per stream.
// Thousands of streams then cost one timer re-arm per wake-up instead of one per frame.
//
// Streams that start their 20 ms timeline on the ticker's grid (align_down: multiples of
// kGrid on the steady clock) share their deadlines with the others that did, so one wake-up
// serves many frames (at most 20 ms / kGrid distinct deadlines per io_context) while every
// deadline stays exact: a frame is never sent early, and its lateness is measured against
// its own deadline.
//
// Phases: a new stream does not start its timeline where its connect happened to complete
// but in the least-taken of the 40 grid phases of the 20 ms period (take_phase, at most
// 19.5 ms later), as real calls, which start at random times, are spread. Calls that arrive
// at a constant rate (every 5 ms at 200 calls/s) would otherwise all fall on 4 phases, and
// the simulator would owe a quarter of its streams a frame at the same instant: its own
// pacing error, and bursts the server would not see from Twilio.
//
// Thread model: one io_context run by one thread (the runner's workers); every call is made on
// that thread. Light header: Asio stays in ticker.cpp.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace mediasim::sim {

class Ticker {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;
    using Id = std::uint32_t;
    static constexpr std::chrono::microseconds kGrid{500};
    static constexpr std::chrono::milliseconds kPeriod{20};  // one media frame
    static constexpr int kPhases = static_cast<int>(kPeriod / kGrid);

    // t rounded down to the grid.
    static TimePoint align_down(TimePoint t) {
        const auto since = t.time_since_epoch();
        return TimePoint(since - since % kGrid);
    }

    class Client {
      public:
        // `due` has come (the deadline it was scheduled for). Schedule again from here to
        // keep ticking; a client that wants to survive being removed during this call must
        // keep itself alive.
        virtual void on_due(TimePoint due) = 0;
        virtual ~Client() = default;
    };

    explicit Ticker(boost::asio::io_context& io);
    ~Ticker();
    Ticker(const Ticker&) = delete;
    Ticker& operator=(const Ticker&) = delete;

    // The ticker of io (made on first use, lives as long as io).
    static Ticker& of(boost::asio::io_context& io);

    // Registers a client (no deadline yet); the id stays valid until remove(id).
    Id add(Client& client);
    // Forgets the client; a pending deadline is dropped. Safe from within on_due.
    void remove(Id id);
    // The client's next deadline (replaces a pending one). A deadline already past fires at
    // the next wake-up.
    void schedule(Id id, TimePoint due);
    // Drops the client's pending deadline, if any.
    void cancel(Id id);

    // The start of a new 20 ms timeline: of the grid points from align_down(now) to 19.5 ms
    // later, the earliest in the phase fewest timelines hold; that phase is held until
    // release_phase(start).
    TimePoint take_phase(TimePoint now);
    void release_phase(TimePoint start);
    // Timelines holding phase p (0..kPhases-1).
    std::uint32_t phase_load(int p) const { return phase_load_[static_cast<std::size_t>(p)]; }
    static int phase_of(TimePoint t) {
        return static_cast<int>((t.time_since_epoch() / kGrid) % kPhases);
    }

    bool scheduled(Id id) const;
    std::size_t clients() const { return clients_; }
    // Timer wake-ups so far (each calls every client then due).
    std::uint64_t wakeups() const { return wakeups_; }

    // Stops the timer and drops every deadline (the io_context is shutting down).
    void shutdown();

  private:
    struct Entry {
        TimePoint due;
        std::uint64_t seq;  // ties in due: first scheduled, first called
        Id id;
        std::uint32_t gen;  // stale when the slot's generation has moved on
    };
    struct Slot {
        Client* client = nullptr;
        std::uint32_t gen = 0;
        bool pending = false;
    };
    struct Timer;

    static bool later(const Entry& a, const Entry& b);
    void arm();
    void on_timer(std::uint64_t wait_gen);

    std::unique_ptr<Timer> timer_;
    std::vector<Entry> heap_;
    std::vector<Slot> slots_;
    std::vector<Id> free_;
    std::size_t clients_ = 0;
    std::uint64_t seq_ = 0;
    bool armed_ = false;
    TimePoint armed_for_{};
    std::uint64_t wait_gen_ = 0;
    bool dispatching_ = false;
    bool shut_down_ = false;
    std::uint64_t wakeups_ = 0;
    std::array<std::uint32_t, kPhases> phase_load_{};
};

}  // namespace mediasim::sim
