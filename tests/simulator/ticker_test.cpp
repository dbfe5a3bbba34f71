// The shared pacing clock: deadline order, each client called with its own deadline, one
// wake-up for everything due, cancel/replace/remove, and the grid.
#include "simulator/ticker.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace mediasim::sim;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Call {
    std::string who;
    Ticker::TimePoint due;
    Ticker::TimePoint at;
};

class Probe : public Ticker::Client {
  public:
    Probe(Ticker& t, std::string name, std::vector<Call>& log)
        : ticker(t), id(t.add(*this)), name_(std::move(name)), log_(log) {}
    ~Probe() { ticker.remove(id); }
    void on_due(Ticker::TimePoint due) override {
        log_.push_back({name_, due, Clock::now()});
        if (then) then(due);
    }
    Ticker& ticker;
    Ticker::Id id;
    std::function<void(Ticker::TimePoint)> then;

  private:
    std::string name_;
    std::vector<Call>& log_;
};

std::string order(const std::vector<Call>& log) {
    std::string s;
    for (const auto& c : log) s += (s.empty() ? "" : " ") + c.who;
    return s;
}

}  // namespace

TEST(Ticker, CallsClientsInDeadlineOrderEachWithItsOwnDeadline) {
    boost::asio::io_context io;
    Ticker& t = Ticker::of(io);
    EXPECT_EQ(&t, &Ticker::of(io));  // one per io_context
    std::vector<Call> log;
    Probe a(t, "a", log), b(t, "b", log), c(t, "c", log), d(t, "d", log);
    const auto t0 = Clock::now();
    t.schedule(a.id, t0 + 30ms);
    t.schedule(b.id, t0 + 10ms);
    t.schedule(c.id, t0 + 10ms);  // same deadline as b, scheduled after it
    t.schedule(d.id, t0 + 20ms);
    EXPECT_TRUE(t.scheduled(a.id));
    io.run();
    EXPECT_EQ(order(log), "b c d a");
    ASSERT_EQ(log.size(), 4u);
    EXPECT_EQ(log[0].due, t0 + 10ms);
    EXPECT_EQ(log[1].due, t0 + 10ms);
    EXPECT_EQ(log[2].due, t0 + 20ms);
    EXPECT_EQ(log[3].due, t0 + 30ms);
    for (const auto& call : log) EXPECT_GE(call.at, call.due) << call.who << " called early";
    EXPECT_FALSE(t.scheduled(a.id));
}

TEST(Ticker, OneWakeUpServesEverythingDueAndAClientBehindCatchesUpFrameByFrame) {
    boost::asio::io_context io;
    Ticker& t = Ticker::of(io);
    std::vector<Call> log;
    Probe a(t, "a", log), b(t, "b", log), c(t, "c", log);
    const auto t0 = Clock::now();
    int a_calls = 0;
    // a ticks every 20 ms on absolute deadlines, three times.
    int posted_ran_after = -1;  // how many calls had been made when a's posted work ran
    a.then = [&](Ticker::TimePoint due) {
        if (++a_calls == 1)  // as a stream posts its hang-up
            boost::asio::post(io, [&] { posted_ran_after = static_cast<int>(log.size()); });
        if (a_calls < 3) t.schedule(a.id, due + 20ms);
    };
    t.schedule(a.id, t0);
    t.schedule(b.id, t0 + 30ms);
    t.schedule(c.id, t0 + 10ms);
    // The thread is busy for 100 ms before the loop runs: everything is overdue at once.
    std::this_thread::sleep_for(100ms);
    io.run();
    // The first wake-up serves everything that was due, in deadline order: a (t0), c, b. a's
    // own later frames (+20, +40), overdue too, come one per wake-up after that, each measured
    // against its own deadline; work posted meanwhile runs between them.
    EXPECT_EQ(order(log), "a c b a a");
    ASSERT_EQ(log.size(), 5u);
    EXPECT_EQ(log[0].due, t0);
    EXPECT_EQ(log[1].due, t0 + 10ms);
    EXPECT_EQ(log[2].due, t0 + 30ms);
    EXPECT_EQ(log[3].due, t0 + 20ms);
    EXPECT_EQ(log[4].due, t0 + 40ms);
    EXPECT_EQ(t.wakeups(), 3u);
    EXPECT_EQ(posted_ran_after, 3);  // after the first wake-up, before a's next frame
}

TEST(Ticker, AnEarlierDeadlineRearmsTheTimer) {
    boost::asio::io_context io;
    Ticker& t = Ticker::of(io);
    std::vector<Call> log;
    Probe late(t, "late", log), soon(t, "soon", log);
    const auto t0 = Clock::now();
    t.schedule(late.id, t0 + 300ms);
    t.schedule(soon.id, t0 + 20ms);
    io.run();
    ASSERT_EQ(order(log), "soon late");
    EXPECT_LT(log[0].at, t0 + 300ms);  // it did not wait for the later deadline
    EXPECT_EQ(t.wakeups(), 2u);
}

TEST(Ticker, CancelReplaceAndRemoveWithinACallback) {
    boost::asio::io_context io;
    Ticker& t = Ticker::of(io);
    std::vector<Call> log;
    Probe a(t, "a", log), b(t, "b", log), c(t, "c", log);
    auto d = std::make_unique<Probe>(t, "d", log);
    const auto t0 = Clock::now();
    t.schedule(a.id, t0 + 10ms);
    t.schedule(b.id, t0 + 5ms);
    t.schedule(b.id, t0 + 15ms);  // replaces b's deadline: b is called once, at +15
    t.schedule(c.id, t0 + 12ms);
    t.cancel(c.id);  // c is not called
    t.schedule(d->id, t0 + 10ms);
    // a (due with d) removes d before d's turn.
    a.then = [&](Ticker::TimePoint) { d.reset(); };
    io.run();
    EXPECT_EQ(order(log), "a b");
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1].due, t0 + 15ms);
    EXPECT_EQ(t.clients(), 3u);
    // A removed id is reused and starts with no deadline.
    Probe e(t, "e", log);
    EXPECT_FALSE(t.scheduled(e.id));
}

TEST(Ticker, ShutdownDropsDeadlines) {
    std::vector<Call> log;
    {
        boost::asio::io_context io;
        Ticker& t = Ticker::of(io);
        Probe a(t, "a", log);
        t.schedule(a.id, Clock::now() + 10ms);
        t.shutdown();
        t.schedule(a.id, Clock::now());  // ignored after shutdown
        io.run();
    }
    EXPECT_TRUE(log.empty());
}

TEST(Ticker, AlignDownIsOnTheGrid) {
    const auto now = Clock::now();
    const auto a = Ticker::align_down(now);
    EXPECT_LE(a, now);
    EXPECT_GT(a, now - Ticker::kGrid);
    EXPECT_EQ(a.time_since_epoch() % Ticker::kGrid, Clock::duration::zero());
    EXPECT_EQ(Ticker::align_down(a), a);
}

TEST(Ticker, NewTimelinesSpreadOverThePhasesOfThePeriod) {
    boost::asio::io_context io;
    Ticker& t = Ticker::of(io);
    // Streams that all connect at the same instant (as calls arriving every 5 ms or 20 ms
    // would, modulo 20 ms) get distinct phases, the earliest first, never before now's grid
    // point and never a period later.
    const auto now = Clock::now();
    const auto first = Ticker::align_down(now);
    std::vector<Ticker::TimePoint> starts;
    for (int i = 0; i < Ticker::kPhases; ++i) {
        const auto s = t.take_phase(now);
        EXPECT_GE(s, first);
        EXPECT_LT(s, first + Ticker::kPeriod);
        EXPECT_EQ(Ticker::align_down(s), s);
        EXPECT_EQ(s, first + i * Ticker::kGrid) << i;
        starts.push_back(s);
    }
    for (int p = 0; p < Ticker::kPhases; ++p) EXPECT_EQ(t.phase_load(p), 1u) << p;
    // A second round fills them again evenly; a released phase is the next one taken, even
    // when it lies later than others.
    for (int i = 0; i < Ticker::kPhases; ++i) t.take_phase(now + 7ms);
    for (int p = 0; p < Ticker::kPhases; ++p) EXPECT_EQ(t.phase_load(p), 2u) << p;
    t.release_phase(starts[31]);
    t.release_phase(starts[31] + 3 * Ticker::kPeriod);  // same phase, later period
    EXPECT_EQ(t.phase_load(Ticker::phase_of(starts[31])), 0u);
    const auto again = t.take_phase(now);
    EXPECT_EQ(Ticker::phase_of(again), Ticker::phase_of(starts[31]));
    EXPECT_EQ(again, starts[31]);
    // Releasing more than was taken does not wrap.
    t.release_phase(again);
    t.release_phase(again);
    EXPECT_EQ(t.phase_load(Ticker::phase_of(again)), 0u);
}
