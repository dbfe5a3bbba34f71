#include "simulator/ticker.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace mediasim::sim {

namespace asio = boost::asio;

struct Ticker::Timer {
    explicit Timer(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
};

namespace {

// Holds the io_context's Ticker; shut down with the io_context (before its handlers, and so
// the streams they keep alive, are destroyed).
class TickerService : public asio::execution_context::service {
  public:
    using key_type = TickerService;
    static asio::io_context::id id;
    explicit TickerService(asio::io_context& io)
        : asio::execution_context::service(io), ticker(io) {}
    void shutdown() override { ticker.shutdown(); }
    Ticker ticker;
};
asio::io_context::id TickerService::id;

}  // namespace

Ticker::Ticker(asio::io_context& io) : timer_(std::make_unique<Timer>(io)) {}
Ticker::~Ticker() = default;

Ticker& Ticker::of(asio::io_context& io) {
    return asio::use_service<TickerService>(io).ticker;
}

bool Ticker::later(const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due > b.due : a.seq > b.seq;
}

Ticker::Id Ticker::add(Client& client) {
    Id id;
    if (!free_.empty()) {
        id = free_.back();
        free_.pop_back();
    } else {
        id = static_cast<Id>(slots_.size());
        slots_.emplace_back();
    }
    slots_[id].client = &client;
    slots_[id].pending = false;
    ++clients_;
    return id;
}

void Ticker::remove(Id id) {
    if (id >= slots_.size() || !slots_[id].client) return;
    Slot& s = slots_[id];
    s.client = nullptr;
    s.pending = false;
    ++s.gen;
    free_.push_back(id);
    --clients_;
}

void Ticker::cancel(Id id) {
    if (id >= slots_.size()) return;
    Slot& s = slots_[id];
    if (!s.pending) return;
    s.pending = false;
    ++s.gen;  // the heap entry goes stale; it is skipped when it comes up
}

Ticker::TimePoint Ticker::take_phase(TimePoint now) {
    const TimePoint first = align_down(now);
    const int p0 = phase_of(first);
    int best = 0;
    for (int d = 1; d < kPhases; ++d)
        if (phase_load_[static_cast<std::size_t>((p0 + d) % kPhases)] <
            phase_load_[static_cast<std::size_t>((p0 + best) % kPhases)])
            best = d;
    ++phase_load_[static_cast<std::size_t>((p0 + best) % kPhases)];
    return first + best * kGrid;
}

void Ticker::release_phase(TimePoint start) {
    auto& n = phase_load_[static_cast<std::size_t>(phase_of(start))];
    if (n > 0) --n;
}

bool Ticker::scheduled(Id id) const {
    return id < slots_.size() && slots_[id].pending;
}

void Ticker::schedule(Id id, TimePoint due) {
    if (shut_down_ || id >= slots_.size() || !slots_[id].client) return;
    Slot& s = slots_[id];
    if (s.pending) ++s.gen;
    s.pending = true;
    heap_.push_back(Entry{due, seq_++, id, s.gen});
    std::push_heap(heap_.begin(), heap_.end(), later);
    if (!dispatching_) arm();
}

// Points the timer at the earliest live deadline (re-arming only when that moved earlier).
void Ticker::arm() {
    while (!heap_.empty()) {
        const Entry& top = heap_.front();
        const Slot& s = slots_[top.id];
        if (s.pending && s.gen == top.gen) break;
        std::pop_heap(heap_.begin(), heap_.end(), later);
        heap_.pop_back();
    }
    if (heap_.empty() || shut_down_) return;
    const TimePoint due = heap_.front().due;
    if (armed_ && armed_for_ <= due) return;  // the timer will fire first; on_timer re-arms
    armed_ = true;
    armed_for_ = due;
    const std::uint64_t gen = ++wait_gen_;
    timer_->timer.expires_at(due);  // cancels a wait for a later deadline (ignored by gen)
    timer_->timer.async_wait([this, gen](const boost::system::error_code&) { on_timer(gen); });
}

void Ticker::on_timer(std::uint64_t wait_gen) {
    if (wait_gen != wait_gen_ || shut_down_) return;  // superseded by an earlier deadline
    armed_ = false;
    ++wakeups_;
    const TimePoint now = Clock::now();
    dispatching_ = true;
    // Everything due by the time of the wake-up, earliest first, as scheduled before it. A
    // client that schedules itself again at a deadline already past (it fell behind) is called
    // at the next wake-up, which comes at once: one frame per pass, so that what was posted
    // meanwhile (a hang-up, a read) runs in between, as with a timer per stream.
    const std::uint64_t pass_end = seq_;
    std::vector<Entry> later_pass;
    while (!heap_.empty() && heap_.front().due <= now) {
        const Entry e = heap_.front();
        std::pop_heap(heap_.begin(), heap_.end(), later);
        heap_.pop_back();
        if (e.seq >= pass_end) {
            later_pass.push_back(e);
            continue;
        }
        Slot& s = slots_[e.id];
        if (!s.pending || s.gen != e.gen || !s.client) continue;
        s.pending = false;
        s.client->on_due(e.due);
    }
    for (const Entry& e : later_pass) {
        heap_.push_back(e);
        std::push_heap(heap_.begin(), heap_.end(), later);
    }
    dispatching_ = false;
    arm();
}

void Ticker::shutdown() {
    shut_down_ = true;
    heap_.clear();
    for (auto& s : slots_) s.pending = false;
    armed_ = false;
    ++wait_gen_;
    timer_->timer.cancel();
}

}  // namespace mediasim::sim
