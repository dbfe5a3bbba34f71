#include "reference-server/speech.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/resample.hpp"

namespace mediasim::server {

// ---- Vad -------------------------------------------------------------------------------------

Vad::Vad() : Vad(Options{}) {}

Vad::Vad(Options opts) : opts_(opts) {
    opts_.start_frames = std::max(1, opts_.start_frames);
    opts_.hangover_frames = std::max(1, opts_.hangover_frames);
}

double Vad::frame_dbfs(std::span<const std::int16_t> frame) {
    if (frame.empty()) return -200.0;
    double sum = 0;
    for (auto s : frame) {
        const double v = s / 32768.0;
        sum += v * v;
    }
    const double rms = std::sqrt(sum / static_cast<double>(frame.size()));
    return rms > 0 ? 20.0 * std::log10(rms) : -200.0;
}

Vad::Edge Vad::push(std::span<const std::int16_t> frame) {
    last_loud_ = frame_dbfs(frame) > opts_.threshold_dbfs;
    if (!speaking_) {
        run_ = last_loud_ ? run_ + 1 : 0;
        if (run_ >= opts_.start_frames) {
            speaking_ = true;
            run_ = 0;
            return Edge::speech_start;
        }
    } else {
        run_ = last_loud_ ? 0 : run_ + 1;
        if (run_ >= opts_.hangover_frames) {
            speaking_ = false;
            run_ = 0;
            return Edge::speech_end;
        }
    }
    return Edge::none;
}

// ---- Words -----------------------------------------------------------------------------------

std::string normalize_words(std::string_view text) {
    std::string out;
    bool space = false;
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '\'') {
            if (space && !out.empty()) out += ' ';
            space = false;
            out += static_cast<char>(std::tolower(c));
        } else {
            space = true;
        }
    }
    return out;
}

std::vector<std::string> split_words(std::string_view text) {
    std::vector<std::string> out;
    const auto n = normalize_words(text);
    std::size_t i = 0;
    while (i < n.size()) {
        auto j = n.find(' ', i);
        if (j == std::string::npos) j = n.size();
        out.push_back(n.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

WerCount word_errors(std::string_view reference, std::string_view hypothesis) {
    const auto r = split_words(reference), h = split_words(hypothesis);
    // Levenshtein distance over words, one row at a time.
    std::vector<std::size_t> prev(h.size() + 1), cur(h.size() + 1);
    for (std::size_t j = 0; j <= h.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= r.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= h.size(); ++j)
            cur[j] = std::min(
                {prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return {prev[h.size()], r.size()};
}

// ---- Assistant -------------------------------------------------------------------------------

Assistant::Assistant(std::vector<Rule> rules, std::string fallback, std::string greeting)
    : rules_(std::move(rules)), fallback_(std::move(fallback)), greeting_(std::move(greeting)) {}

std::string Assistant::reply_to(std::string_view transcript) const {
    const std::string said = " " + normalize_words(transcript) + " ";
    for (const auto& r : rules_) {
        const auto k = normalize_words(r.keyword);
        if (!k.empty() && said.find(" " + k + " ") != std::string::npos) return r.answer;
    }
    return fallback_;
}

// ---- SpeechEngine ----------------------------------------------------------------------------

core::Result<std::string> SpeechEngine::recognize(std::span<const std::int16_t> pcm_16k,
                                                  const Hints& hints) {
    if (auto st = begin(hints); !st) return st.error();
    if (auto st = feed(pcm_16k); !st) {
        (void)end();
        return st.error();
    }
    return end();
}

// ---- TranscriptionService --------------------------------------------------------------------

namespace {

constexpr int kFrameMs = 20;
constexpr int kPrerollFrames = 10;  // lead-in kept before the VAD fires (200 ms)
constexpr int kTailFrames = 10;     // trailing quiet kept after the last loud frame (200 ms)

using Clock = std::chrono::steady_clock;

// One utterance: its audio arrives in chunks while the caller speaks. A worker takes the oldest
// waiting utterance and keeps it (its engine decodes as the chunks come) until it has ended, so
// an engine never mixes two utterances. Guarded by the service's mutex.
struct Utterance {
    TranscriptionService::Callback* on_event = nullptr;  // owned by `owner`
    std::shared_ptr<TranscriptionService::Callback> owner;
    Hints hints;
    std::deque<std::vector<std::int16_t>> chunks;  // 16 kHz, not yet decoded
    bool ended = false;
    double start_seconds = 0, end_seconds = 0;
};

}  // namespace

struct TranscriptionService::Impl {
    TranscriptionOptions opts;
    std::string engine_name;

    struct Worker {
        std::unique_ptr<SpeechEngine> engine;
        std::thread thread;
    };
    std::vector<std::unique_ptr<Worker>> workers;
    mutable std::mutex mu;
    std::condition_variable cv;
    std::deque<std::shared_ptr<Utterance>> waiting;  // not yet taken by a worker
    bool stopping = false;
    int decoding = 0;       // workers inside an utterance
    std::size_t depth = 0;  // chunks not yet decoded
    double queued = 0;      // their audio, seconds

    std::atomic<std::uint64_t> utterances{0}, errors{0};
    std::atomic<std::uint64_t> busy_us{0}, audio_us{0};

    static double seconds(const std::vector<std::int16_t>& pcm) {
        return static_cast<double>(pcm.size()) / 16000.0;
    }

    void open(const std::shared_ptr<Utterance>& u) {
        {
            std::lock_guard lock(mu);
            waiting.push_back(u);
        }
        cv.notify_all();
    }
    void add_chunk(Utterance& u, std::vector<std::int16_t> pcm, double end_seconds) {
        {
            std::lock_guard lock(mu);
            ++depth;
            queued += seconds(pcm);
            u.chunks.push_back(std::move(pcm));
            u.end_seconds = end_seconds;
        }
        cv.notify_all();
    }
    void close(Utterance& u, double end_seconds) {
        {
            std::lock_guard lock(mu);
            u.ended = true;
            u.end_seconds = end_seconds;
        }
        cv.notify_all();
    }

    void run(Worker& wk) {
        for (;;) {
            std::shared_ptr<Utterance> u;
            {
                std::unique_lock lock(mu);
                cv.wait(lock, [&] { return stopping || !waiting.empty(); });
                if (waiting.empty()) return;  // stopping, and every utterance done
                u = std::move(waiting.front());
                waiting.pop_front();
                ++decoding;
            }
            decode(wk, *u);
            {
                std::lock_guard lock(mu);
                --decoding;
            }
            cv.notify_all();
        }
    }

    // Decodes one utterance as its chunks arrive, to its end.
    void decode(Worker& wk, Utterance& u) {
        Hints hints;
        {
            std::lock_guard lock(mu);
            hints = u.hints;
        }
        TranscriptEvent e;
        auto t0 = Clock::now();
        if (auto st = wk.engine->begin(hints); !st) e.error = st.error().to_string();
        double fed = 0, next_partial = 0.5;
        std::string last_partial;
        for (;;) {
            std::vector<std::int16_t> chunk;
            bool last = false;
            {
                std::unique_lock lock(mu);
                account(t0, 0);
                cv.wait(lock, [&] { return !u.chunks.empty() || u.ended; });
                t0 = Clock::now();
                if (u.chunks.empty()) {
                    e.start_seconds = u.start_seconds;
                    e.end_seconds = u.end_seconds;
                    break;
                }
                chunk = std::move(u.chunks.front());
                u.chunks.pop_front();
                e.start_seconds = u.start_seconds;
                e.end_seconds = u.end_seconds;
                last = u.ended && u.chunks.empty();
            }
            if (e.error.empty()) {
                if (auto st = wk.engine->feed(chunk); !st) e.error = st.error().to_string();
            }
            fed += seconds(chunk);
            if (e.error.empty() && opts.partials && !last && fed >= next_partial) {
                next_partial = fed + 0.5;
                if (auto p = wk.engine->partial(); p && !p->empty() && *p != last_partial) {
                    last_partial = *p;
                    TranscriptEvent pe = e;
                    pe.final = false;
                    pe.text = *p;
                    emit(u, pe);
                }
            }
            std::lock_guard lock(mu);
            --depth;
            queued -= seconds(chunk);
            account(t0, seconds(chunk));
            t0 = Clock::now();
        }
        auto r = wk.engine->end();
        if (e.error.empty()) {
            if (r)
                e.text = std::move(*r);
            else
                e.error = r.error().to_string();
        }
        account(t0, 0);
        utterances.fetch_add(1);
        if (!e.error.empty()) errors.fetch_add(1);
        emit(u, e);
    }

    void account(Clock::time_point since, double audio_seconds) {
        busy_us.fetch_add(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - since).count()));
        audio_us.fetch_add(static_cast<std::uint64_t>(audio_seconds * 1e6));
    }

    static void emit(const Utterance& u, const TranscriptEvent& e) {
        if (u.on_event && *u.on_event) (*u.on_event)(e);
    }
};

namespace {

class StreamImpl final : public TranscriptionService::Stream {
  public:
    StreamImpl(TranscriptionService::Impl& svc, Hints hints, TranscriptionService::Callback cb)
        : svc_(svc),
          vad_(svc.opts.vad),
          hints_(std::move(hints)),
          callback_(std::make_shared<TranscriptionService::Callback>(std::move(cb))),
          resampler_(8000, 16000) {}
    ~StreamImpl() override { finish(); }

    Vad::Edge push(std::span<const std::int16_t> frame, std::uint64_t ts_ms) override {
        const auto edge = vad_.push(frame);
        const std::vector<std::int16_t> f(frame.begin(), frame.end());
        if (!utterance_) {
            preroll_.push_back(f);
            const auto keep =
                static_cast<std::size_t>(vad_.options().start_frames + kPrerollFrames);
            while (preroll_.size() > keep) preroll_.pop_front();
            if (edge == Vad::Edge::speech_start) {
                const auto lead = std::min<std::uint64_t>(ts_ms, (preroll_.size() - 1) * kFrameMs);
                begin(ts_ms - lead);
                last_loud_end_ms_ = ts_ms + kFrameMs;
                for (const auto& p : preroll_) append(p);
                preroll_.clear();
            }
            return edge;
        }
        if (vad_.last_loud()) {
            last_loud_end_ms_ = ts_ms + kFrameMs;
            for (const auto& q : quiet_) append(q);
            quiet_.clear();
            append(f);
        } else {
            quiet_.push_back(f);
        }
        if (edge == Vad::Edge::speech_end) {
            end_utterance();
        } else if (ts_ms + kFrameMs >=
                   start_ms_ + static_cast<std::uint64_t>(svc_.opts.max_utterance_ms)) {
            // Too long: recognise what we have and go on with a new utterance.
            end_utterance();
            begin(ts_ms + kFrameMs);
            last_loud_end_ms_ = ts_ms + kFrameMs;
        }
        return edge;
    }

    bool speaking() const override { return vad_.speaking(); }
    void set_hints(Hints hints) override { hints_ = std::move(hints); }
    void finish() override {
        if (utterance_) end_utterance();
    }

  private:
    double seconds(std::uint64_t ms) const { return static_cast<double>(ms) / 1000.0; }

    void begin(std::uint64_t start_ms) {
        start_ms_ = start_ms;
        resampler_.reset();
        chunk_.clear();
        utterance_ = std::make_shared<Utterance>();
        utterance_->owner = callback_;
        utterance_->on_event = callback_.get();
        utterance_->hints = hints_;
        utterance_->start_seconds = seconds(start_ms);
        svc_.open(utterance_);
    }

    void append(const std::vector<std::int16_t>& frame) {
        chunk_.insert(chunk_.end(), frame.begin(), frame.end());
        if (chunk_.size() >= static_cast<std::size_t>(svc_.opts.chunk_ms) * 8) send_chunk();
    }

    void send_chunk() {
        if (chunk_.empty()) return;
        std::vector<std::int16_t> pcm(resampler_.max_output(chunk_.size()));
        pcm.resize(resampler_.process(chunk_, pcm.data()));
        chunk_.clear();
        svc_.add_chunk(*utterance_, std::move(pcm), seconds(last_loud_end_ms_));
    }

    void end_utterance() {
        for (std::size_t i = 0; i < quiet_.size() && i < static_cast<std::size_t>(kTailFrames); ++i)
            chunk_.insert(chunk_.end(), quiet_[i].begin(), quiet_[i].end());
        quiet_.clear();
        send_chunk();
        svc_.close(*utterance_, seconds(last_loud_end_ms_));
        utterance_.reset();
    }

    TranscriptionService::Impl& svc_;
    Vad vad_;
    Hints hints_;
    std::shared_ptr<TranscriptionService::Callback> callback_;
    core::Resampler resampler_;
    std::deque<std::vector<std::int16_t>> preroll_, quiet_;
    std::vector<std::int16_t> chunk_;       // 8 kHz, not yet sent
    std::shared_ptr<Utterance> utterance_;  // the one being spoken
    std::uint64_t start_ms_ = 0, last_loud_end_ms_ = 0;
};

}  // namespace

core::Result<std::unique_ptr<TranscriptionService>> TranscriptionService::create(
    EngineFactory factory, TranscriptionOptions opts) {
    auto impl = std::make_unique<Impl>();
    opts.workers = std::clamp(opts.workers, 1, 256);
    opts.chunk_ms = std::clamp(opts.chunk_ms, kFrameMs, 10'000);
    impl->opts = opts;
    // Engines load in parallel (a PocketSphinx model takes most of a second).
    std::vector<core::Result<std::unique_ptr<SpeechEngine>>> engines;
    for (int i = 0; i < opts.workers; ++i) engines.emplace_back(core::make_error("not made"));
    {
        std::vector<std::thread> loaders;
        for (auto& e : engines) loaders.emplace_back([&e, &factory] { e = factory(); });
        for (auto& t : loaders) t.join();
    }
    for (auto& e : engines) {
        if (!e) return e.error();
        auto w = std::make_unique<Impl::Worker>();
        w->engine = std::move(*e);
        impl->workers.push_back(std::move(w));
    }
    impl->engine_name = impl->workers.front()->engine->name();
    for (auto& w : impl->workers)
        w->thread = std::thread([im = impl.get(), wk = w.get()] { im->run(*wk); });
    return std::unique_ptr<TranscriptionService>(new TranscriptionService(std::move(impl)));
}

TranscriptionService::TranscriptionService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TranscriptionService::~TranscriptionService() {
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    for (auto& w : impl_->workers)
        if (w->thread.joinable()) w->thread.join();
}

std::unique_ptr<TranscriptionService::Stream> TranscriptionService::open_stream(Hints hints,
                                                                                Callback on_event) {
    return std::make_unique<StreamImpl>(*impl_, std::move(hints), std::move(on_event));
}

void TranscriptionService::wait_idle() {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait(lock, [&] { return impl_->waiting.empty() && impl_->decoding == 0; });
}

std::size_t TranscriptionService::queue_depth() const {
    std::lock_guard lock(impl_->mu);
    return impl_->depth;
}

double TranscriptionService::queued_seconds() const {
    std::lock_guard lock(impl_->mu);
    return std::max(0.0, impl_->queued);
}

double TranscriptionService::real_time_factor() const {
    const auto audio = impl_->audio_us.load();
    return audio ? static_cast<double>(impl_->busy_us.load()) / static_cast<double>(audio) : 0.0;
}

double TranscriptionService::audio_seconds() const {
    return static_cast<double>(impl_->audio_us.load()) / 1e6;
}

std::uint64_t TranscriptionService::utterances() const {
    return impl_->utterances.load();
}

std::uint64_t TranscriptionService::errors() const {
    return impl_->errors.load();
}

int TranscriptionService::workers() const {
    return static_cast<int>(impl_->workers.size());
}

std::string TranscriptionService::engine_name() const {
    return impl_->engine_name;
}

}  // namespace mediasim::server
