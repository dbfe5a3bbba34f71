#include "simulator/check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <map>
#include <numbers>
#include <optional>
#include <random>

#include "core/form.hpp"
#include "core/g711.hpp"
#include "core/ids.hpp"
#include "core/tts.hpp"
#include "simulator/call.hpp"
#include "simulator/stream_client.hpp"
#include "simulator/xml.hpp"

namespace mediasim::sim {

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using namespace std::chrono_literals;
using reports::CaseStatus;
using Audio = std::shared_ptr<const std::vector<std::uint8_t>>;

constexpr std::size_t kFrameBytes = 160;
constexpr auto kLinger = 750ms;               // read on after `stop` (stop.nothing_after)
constexpr auto kBargeInClearWithin = 1500ms;  // behaviour.barge_in
constexpr std::int64_t kAheadShouldMs = 60'000;
constexpr std::int64_t kBufferMustMs = 600'000;
constexpr std::size_t kMaxSensiblePayload = 8000;  // 1 s of μ-law

std::int64_t ms_between(TimePoint a, TimePoint b) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// ---- the caller's audio ----------------------------------------------------------------------

// Speech for the caller: espeak-ng when it is installed (cached like scenarios' texts), else a
// voiced, syllable-shaped signal that any energy VAD takes for speech. Between 0.8 and 2 s.
Audio caller_speech() {
    core::SpeakOptions o;
    if (const char* home = std::getenv("HOME"))
        o.cache_dir = std::filesystem::path(home) / ".cache" / "mediasim" / "tts";
    auto spoken = core::speak_mulaw("Hello, can you hear me? I would like to check my order.", o);
    std::vector<std::uint8_t> out;
    if (spoken && spoken->size() >= 6400) {
        out = std::move(*spoken);
        // Trim leading silence so that the speech starts on its frame.
        auto first = std::find_if(out.begin(), out.end(), [](std::uint8_t b) {
            return std::abs(core::ulaw_to_linear(b)) > 500;
        });
        out.erase(out.begin(), first);
    } else {
        const std::size_t n = 12'000;  // 1.5 s
        std::vector<std::int16_t> pcm(n);
        for (std::size_t i = 0; i < n; ++i) {
            const double t = static_cast<double>(i) / 8000.0;
            const double env = 0.6 + 0.4 * std::sin(2 * std::numbers::pi * 4 * t);
            double s = 0;
            for (int h = 1; h <= 8; ++h) s += std::sin(2 * std::numbers::pi * 140 * h * t) / h;
            pcm[i] = static_cast<std::int16_t>(std::lround(6000.0 * env * s));
        }
        out.resize(n);
        core::ulaw_encode(pcm, out.data());
    }
    out.resize(std::min<std::size_t>(out.size(), 16'000));
    out.resize((out.size() + kFrameBytes - 1) / kFrameBytes * kFrameBytes, core::kUlawSilence);
    return std::make_shared<const std::vector<std::uint8_t>>(std::move(out));
}

// ---- the scripted caller of a probe ------------------------------------------------------------

// What one probe's caller saw of the bot (times are steady_clock).
struct Observed {
    std::optional<TimePoint> speech_start, words_end, dtmf_at;
    bool bot_playing_at_speech = false;
    std::optional<TimePoint> first_audio_after_words;  // before the dtmf
    std::vector<TimePoint> clears;
    bool hung_up_mid_word = false;
};

struct CallerPlan {
    std::uint64_t speech_at = 50;  // frame number of the first word (1 s)
    Audio speech;
    std::size_t cut_after_bytes = SIZE_MAX;  // hang up mid-word after this much speech
    std::uint64_t silence_after = 150;       // frames between the words and the dtmf / hang-up
    char dtmf = 0;                           // pressed after that silence (bidirectional only)
    std::uint64_t after_dtmf = 65;           // frames after the digit before hanging up
};

class CheckCaller final : public CallerSource {
  public:
    CheckCaller(const CallerPlan& plan, TimePoint origin, std::shared_ptr<Observed> seen)
        : plan_(plan), origin_(origin), seen_(std::move(seen)) {
        speech_frames_ = plan_.speech ? plan_.speech->size() / kFrameBytes : 0;
        words_end_frame_ = plan_.speech_at + speech_frames_;
        dtmf_frame_ = words_end_frame_ + plan_.silence_after;
        end_frame_ = dtmf_frame_ + (plan_.dtmf ? plan_.after_dtmf : 0);
        if (seen_) seen_->words_end = due(words_end_frame_);
    }

    Frame next_frame(std::uint64_t index, bool bot_playing,
                     std::span<std::uint8_t, 160> out) override {
        Frame f;
        std::fill(out.begin(), out.end(), core::kUlawSilence);
        if (index >= plan_.speech_at && index < words_end_frame_) {
            const std::size_t pos = (index - plan_.speech_at) * kFrameBytes;
            if (pos >= plan_.cut_after_bytes) {
                if (seen_) seen_->hung_up_mid_word = true;
                f.hangup = true;
                return f;
            }
            std::copy_n(plan_.speech->data() + pos, kFrameBytes, out.begin());
            if (index == plan_.speech_at && seen_) {
                seen_->speech_start = due(index);
                seen_->bot_playing_at_speech = bot_playing;
            }
        }
        if (plan_.dtmf && index == dtmf_frame_) {
            f.dtmf = std::string(1, plan_.dtmf);
            if (seen_) seen_->dtmf_at = due(index);
        }
        if (index >= end_frame_) f.hangup = true;
        return f;
    }
    void bot_audio(TimePoint t) override {
        if (!seen_ || seen_->first_audio_after_words || !seen_->words_end) return;
        if (t >= *seen_->words_end && (!seen_->dtmf_at || t < *seen_->dtmf_at))
            seen_->first_audio_after_words = t;
    }
    void bot_clear(TimePoint t) override {
        if (seen_) seen_->clears.push_back(t);
    }

  private:
    TimePoint due(std::uint64_t index) const { return origin_ + 20ms * index; }
    CallerPlan plan_;
    TimePoint origin_;
    std::shared_ptr<Observed> seen_;
    std::uint64_t speech_frames_ = 0, words_end_frame_ = 0, dtmf_frame_ = 0, end_frame_ = 0;
};

CallerFactory make_check_caller(CallerPlan plan, std::shared_ptr<Observed> seen) {
    return [plan = std::move(plan), seen](TimePoint origin, WorkerStats*) {
        return std::make_shared<CheckCaller>(plan, origin, seen);
    };
}

// A caller that hangs up at once (the upgrade probes).
class HangUpAtOnce final : public CallerSource {
  public:
    Frame next_frame(std::uint64_t, bool, std::span<std::uint8_t, 160> out) override {
        std::fill(out.begin(), out.end(), core::kUlawSilence);
        return {"", true};
    }
};

// ---- TwiML as written
// ----------------------------------------------------------------------------

struct StreamElement {
    std::string verb;  // Start or Connect
    std::string url, track, status_callback;
    std::vector<std::pair<std::string, const std::string*>> parameters;  // name, value (or null)
    bool last_verb = false;
    int line = 0;
};

struct TwimlFacts {
    bool well_formed = false;
    std::string xml_error;
    std::vector<StreamElement> streams;
};

TwimlFacts twiml_facts(const std::string& body) {
    TwimlFacts f;
    auto doc = xml::parse(body, "TwiML");
    if (!doc) {
        f.xml_error = doc.error().to_string();
        return f;
    }
    f.well_formed = true;
    const auto verbs = doc->elements();
    for (std::size_t i = 0; i < verbs.size(); ++i) {
        const auto* v = verbs[i];
        if (v->name != "Start" && v->name != "Connect") continue;
        for (const auto* s : v->elements()) {
            if (s->name != "Stream") continue;
            StreamElement e;
            e.verb = v->name;
            e.line = s->line;
            e.last_verb = i + 1 == verbs.size();
            if (auto* a = s->attribute("url")) e.url = *a;
            e.track = s->attribute("track") ? *s->attribute("track") : "inbound_track";
            if (auto* a = s->attribute("statusCallback")) e.status_callback = *a;
            for (const auto* p : s->elements())
                if (p->name == "Parameter")
                    e.parameters.emplace_back(p->attribute("name") ? *p->attribute("name") : "",
                                              p->attribute("value"));
            f.streams.push_back(std::move(e));
        }
    }
    return f;
}

// ---- evidence over every stream
// ------------------------------------------------------------------

struct Evidence {
    ServerEvidence sum;
    std::uint64_t frames = 0;  // frames received from the server
    std::uint64_t streams = 0;
    void add(const StreamResult& r) {
        const auto& e = r.evidence;
        ++streams;
        frames += r.frames_received;
        for (int i = 0; i < kServerFaultCount; ++i) {
            if (sum.faults[i] == 0 && e.faults[i] > 0) sum.first_fault[i] = e.first_fault[i];
            sum.faults[i] += e.faults[i];
        }
        if (e.media > 0) {
            sum.min_payload =
                sum.media == 0 ? e.min_payload : std::min(sum.min_payload, e.min_payload);
            sum.max_payload = std::max(sum.max_payload, e.max_payload);
        }
        sum.media += e.media;
        sum.marks += e.marks;
        sum.clears += e.clears;
        if (sum.bad_mark_names == 0) sum.first_bad_mark = e.first_bad_mark;
        sum.bad_mark_names += e.bad_mark_names;
        if (sum.after_stop == 0) sum.first_after_stop = e.first_after_stop;
        sum.after_stop += e.after_stop;
        sum.max_ahead_ms = std::max(sum.max_ahead_ms, e.max_ahead_ms);
        sum.audio_after_clear_ms = std::max(sum.audio_after_clear_ms, e.audio_after_clear_ms);
    }
    std::uint64_t fault(ServerFault f) const { return sum.faults[static_cast<int>(f)]; }
    const std::string& example(ServerFault f) const { return sum.first_fault[static_cast<int>(f)]; }
};

const StreamReport* first_stream(const CallReport& r) {
    return r.stream_reports.empty() ? nullptr : &r.stream_reports.front();
}

// ---- the run
// --------------------------------------------------------------------------------------

class Check {
  public:
    explicit Check(const CheckOptions& o) : opts_(o) {
        webhook_mode_ = !o.webhook_url.empty();
        speech_ = caller_speech();
        short_speech_ = std::make_shared<const std::vector<std::uint8_t>>(
            speech_->begin(), speech_->begin() + std::min<std::size_t>(speech_->size(), 6400));
        for (const auto& c : catalogue())
            if (selected(c.id)) wanted_.push_back(&c);
    }

    CheckResult run() {
        const auto t0 = Clock::now();
        start_primary();
        io_.run();
        CheckResult out;
        out.conformance.target = webhook_mode_ ? opts_.webhook_url : opts_.stream_url;
        out.conformance.mode = webhook_mode_ ? "webhook" : "stream";
        out.conformance.duration_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        judge(out.conformance);
        out.totals.all = stats_.take_interval();
        for (const auto& o : stats_.take_outcomes()) out.totals.add_outcome(o);
        return out;
    }

  private:
    bool selected(std::string_view id) const {
        if (opts_.cases.empty()) return true;
        for (const auto& g : opts_.cases)
            if (glob_match(g, id)) return true;
        return false;
    }
    bool wants(std::string_view prefix) const {
        for (const auto* c : wanted_)
            if (std::string_view(c->id).starts_with(prefix)) return true;
        return false;
    }
    void progress(const std::string& line) {
        if (opts_.progress) opts_.progress(line);
    }

    // A call as the mode has it: with --stream, a <Connect> stream, or with --stream-mode start
    // a <Start><Stream track="both_tracks">; with --webhook the TwiML decides.
    std::shared_ptr<CallConfig> base_config() {
        const bool bidirectional = !opts_.stream_start;
        const char* track = opts_.stream_start ? "both_tracks" : "inbound_track";
        auto cfg = std::make_shared<CallConfig>();
        cfg->webhook_url = opts_.webhook_url;
        cfg->stream_url = opts_.stream_url;
        cfg->stream_bidirectional = bidirectional;
        cfg->stream_track = track;
        cfg->auth_token = opts_.auth_token;
        cfg->net = opts_.net;
        cfg->max_duration =
            std::chrono::seconds(std::max<std::int64_t>(120, opts_.long_call.count() + 60));
        return cfg;
    }

    void call(std::shared_ptr<CallConfig> cfg, std::function<void(CallReport)> done) {
        stats_.call_started();
        start_call(io_, std::move(cfg), ++calls_, seeds_(), &stats_,
                   [this, done = std::move(done)](CallReport r) {
                       stats_.call_ended(r.outcome);
                       done(std::move(r));
                   });
    }

    // Phase 1: the conversation, alone, so its evidence is not disturbed.
    void start_primary() {
        auto cfg = base_config();
        cfg->linger_after_stop = kLinger;
        CallerPlan plan;
        plan.speech = speech_;
        plan.speech_at = 25;
        plan.silence_after = 175;  // 3.5 s for the answer (behaviour.response_time)
        plan.dtmf = '1';
        plan.after_dtmf = 40;
        primary_seen_ = std::make_shared<Observed>();
        cfg->caller = make_check_caller(plan, primary_seen_);
        progress("probe: the conversation (speech, silence, dtmf 1, hang-up)");
        call(cfg, [this](CallReport r) {
            primary_ = std::move(r);
            start_phase2();
        });
    }

    bool primary_streamed() const {
        const auto* s = first_stream(primary_);
        return s && s->result.connected;
    }

    // Phase 2: the rest at once (upgrade probes, both_tracks, N calls, the long call).
    void start_phase2() {
        if (!primary_streamed()) return start_phase3();
        const std::string stream_url = first_stream(primary_)->url;
        if (!opts_.auth_token.empty() && wants("handshake.")) {
            upgrade_probe(stream_url, "", &unsigned_);
            upgrade_probe(stream_url, opts_.auth_token + "-not", &badsig_);
        }
        if (!opts_.auth_token.empty() && webhook_mode_ && wants("webhook.signature")) {
            ++pending_;
            HttpRequest req;
            auto url = core::parse_url(opts_.webhook_url);
            req.url = *url;
            req.content_type = "application/x-www-form-urlencoded; charset=utf-8";
            core::SidGenerator sids(seeds_());
            req.body = core::form_encode({{"AccountSid", sids.next("AC")},
                                          {"ApiVersion", "2010-04-01"},
                                          {"CallSid", sids.next("CA")},
                                          {"CallStatus", "ringing"},
                                          {"Direction", "inbound"},
                                          {"From", "+14155550100"},
                                          {"To", "+15005550006"}});
            http_request(io_, opts_.net, std::move(req), [this](HttpOutcome o) {
                unsigned_webhook_ = std::move(o);
                phase_done();
            });
        }
        if (opts_.long_call.count() > 0 && wants("behaviour.long_call")) {
            auto cfg = base_config();
            CallerPlan plan;
            plan.speech = speech_;
            const auto frames = static_cast<std::uint64_t>(opts_.long_call.count()) * 50;
            const std::uint64_t used = plan.speech_at + speech_->size() / kFrameBytes;
            plan.silence_after = frames > used ? frames - used : 1;
            cfg->caller = make_check_caller(plan, nullptr);
            progress(fmt::format("probe: one call held for {} s", opts_.long_call.count()));
            ++pending_;
            call(cfg, [this](CallReport r) {
                long_ = std::move(r);
                phase_done();
            });
        }
        if (wants("behaviour.concurrent")) {
            // Started a moment later, so that the probes above have connected first.
            auto timer = std::make_shared<asio::steady_timer>(io_, 500ms);
            ++pending_;
            timer->async_wait([this, timer](boost::system::error_code) {
                progress(fmt::format("probe: {} calls at once", opts_.concurrency));
                auto cfg = base_config();
                CallerPlan plan;
                plan.speech = short_speech_;
                plan.speech_at = 10;
                plan.silence_after = 30;
                cfg->caller = make_check_caller(plan, nullptr);
                concurrent_left_ = opts_.concurrency;
                for (int i = 0; i < opts_.concurrency; ++i)
                    call(cfg, [this](CallReport r) {
                        concurrent_.push_back(std::move(r));
                        if (--concurrent_left_ == 0) phase_done();
                    });
                if (opts_.concurrency == 0) phase_done();
            });
        }
        if (pending_ == 0) start_phase3();
    }

    void upgrade_probe(const std::string& url, const std::string& token, StreamResult* out) {
        auto parsed = core::parse_url(url);
        if (!parsed) return;
        StreamPlan plan;
        plan.url = *parsed;
        plan.auth_token = token;
        core::SidGenerator sids(seeds_());
        plan.account_sid = sids.next("AC");
        plan.call_sid = sids.next("CA");
        plan.stream_sid = sids.next("MZ");
        plan.caller = [](TimePoint, WorkerStats*) { return std::make_shared<HangUpAtOnce>(); };
        ++pending_;
        StreamEvents ev;
        auto client = std::make_shared<std::shared_ptr<StreamClient>>();
        ev.on_caller_done = [client] {
            if (*client) (*client)->hang_up();
        };
        ev.on_ended = [this, out, client](StreamResult r) {
            *out = std::move(r);
            client->reset();
            phase_done();
        };
        *client = make_stream_client(io_, opts_.net, std::move(plan), std::move(ev), nullptr);
        (*client)->start();
    }

    void phase_done() {
        if (--pending_ == 0) start_phase3();
    }

    // Phase 3: the caller hangs up mid-word, then one more call must still be served.
    void start_phase3() {
        if (phase3_started_) return;
        phase3_started_ = true;
        if (!primary_streamed() || !wants("behaviour.hangup_mid_word")) return;
        auto cfg = base_config();
        CallerPlan plan;
        plan.speech = speech_;
        plan.speech_at = 10;
        plan.cut_after_bytes = 5600;  // 0.7 s into the words
        midword_seen_ = std::make_shared<Observed>();
        cfg->caller = make_check_caller(plan, midword_seen_);
        progress("probe: the caller hangs up mid-word, then another call");
        call(cfg, [this](CallReport r) {
            midword_ = std::move(r);
            auto next = base_config();
            CallerPlan p2;
            p2.speech = short_speech_;
            p2.speech_at = 10;
            p2.silence_after = 25;
            next->caller = make_check_caller(p2, nullptr);
            call(next, [this](CallReport r2) { after_midword_ = std::move(r2); });
        });
    }

    // ---- judging ------------------------------------------------------------------------------
    void judge(reports::Conformance& out);

    const CheckOptions& opts_;
    bool webhook_mode_ = false;
    Audio speech_, short_speech_;  // short: 0.8 s, for the many short calls
    std::vector<const CaseInfo*> wanted_;
    asio::io_context io_;
    WorkerStats stats_;
    std::mt19937_64 seeds_{std::random_device{}()};
    std::uint64_t calls_ = 0;
    int pending_ = 0;
    bool phase3_started_ = false;
    int concurrent_left_ = 0;

    CallReport primary_, long_, midword_, after_midword_;
    std::vector<CallReport> concurrent_;
    std::shared_ptr<Observed> primary_seen_, midword_seen_;
    StreamResult unsigned_, badsig_;
    std::optional<HttpOutcome> unsigned_webhook_;
};

std::string kb(std::size_t bytes) {
    return fmt::format("{:.1f} kB", static_cast<double>(bytes) / 1024.0);
}

void Check::judge(reports::Conformance& out) {
    std::map<std::string, std::pair<CaseStatus, std::string>> r;
    const auto pass = [&](const char* id, std::string e) {
        r[id] = {CaseStatus::pass, std::move(e)};
    };
    const auto fail = [&](const char* id, std::string e) {
        r[id] = {CaseStatus::fail, std::move(e)};
    };
    const auto skip = [&](const char* id, std::string e) {
        r[id] = {CaseStatus::skip, std::move(e)};
    };
    const auto verdict = [&](const char* id, bool ok, std::string good, std::string bad) {
        r[id] = ok ? std::pair{CaseStatus::pass, std::move(good)}
                   : std::pair{CaseStatus::fail, std::move(bad)};
    };

    // ---- webhook and TwiML
    const StreamReport* ps = first_stream(primary_);
    const auto& po = primary_.outcome;
    TwimlFacts tw;
    if (!webhook_mode_) {
        for (const auto& c : catalogue())
            if (std::string_view(c.group) == "webhook" || std::string_view(c.group) == "twiml")
                skip(c.id, "--stream: no webhook and no TwiML");
    } else if (primary_.webhook_status == 0) {
        const bool timed_out = po.failure == FailureClass::timeout ||
                               po.first_error.find("timed out") != std::string::npos;
        if (timed_out)
            fail("webhook.timeout",
                 fmt::format("no answer within {} ms: {}", opts_.net->request_timeout.count(),
                             po.first_error));
        else
            fail("webhook.status", "no HTTP answer: " + po.first_error);
        for (const auto& c : catalogue())
            if ((std::string_view(c.group) == "webhook" || std::string_view(c.group) == "twiml") &&
                !r.contains(c.id))
                skip(c.id, "the webhook gave no answer (see webhook.status / webhook.timeout)");
    } else {
        const auto latency_ms = primary_.webhook_latency.count() / 1000;
        verdict(
            "webhook.status", primary_.webhook_status == 200,
            fmt::format("HTTP 200 in {} ms", latency_ms),
            fmt::format("HTTP {} (Twilio: error 11200, the call ends)", primary_.webhook_status));
        pass("webhook.timeout", fmt::format("answered in {} ms (limit {} ms)", latency_ms,
                                            opts_.net->request_timeout.count()));
        if (primary_.webhook_status != 200) {
            for (const char* id : {"webhook.content_type", "webhook.size"})
                skip(id, "the webhook did not answer 200 (see webhook.status)");
        }
        std::string ct = primary_.webhook_content_type;
        std::string t = ct.substr(0, ct.find(';'));
        for (auto& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        while (!t.empty() && t.back() == ' ') t.pop_back();
        if (primary_.webhook_status == 200)
            verdict("webhook.content_type",
                    t == "text/xml" || t == "application/xml" || t == "text/html",
                    fmt::format("Content-Type: {}", ct),
                    fmt::format("Content-Type \"{}\" (Twilio: error 12300)", ct));
        if (primary_.webhook_status == 200)
            verdict("webhook.size", primary_.twiml.size() <= 64 * 1024, kb(primary_.twiml.size()),
                    fmt::format("{} of TwiML; Twilio allows 64 kB (error 11750)",
                                kb(primary_.twiml.size())));
        if (opts_.auth_token.empty())
            skip("webhook.signature", "no --auth-token: the server is not expected to check");
        else if (!unsigned_webhook_)
            skip("webhook.signature", "not probed (the conversation did not reach a stream)");
        else if (!unsigned_webhook_->ok)
            pass("webhook.signature", "refused: " + unsigned_webhook_->error);
        else
            verdict("webhook.signature", unsigned_webhook_->response.status != 200,
                    fmt::format("an unsigned POST got HTTP {}", unsigned_webhook_->response.status),
                    "an unsigned POST got HTTP 200: the server does not check X-Twilio-Signature");

        if (primary_.webhook_status != 200 || r["webhook.content_type"].first != CaseStatus::pass ||
            r["webhook.size"].first != CaseStatus::pass) {
            for (const auto& c : catalogue())
                if (std::string_view(c.group) == "twiml")
                    skip(c.id, "no usable TwiML (see the webhook.* cases)");
        } else {
            tw = twiml_facts(primary_.twiml);
            bool specific_failed = false;
            if (!tw.well_formed) {
                fail("twiml.valid", tw.xml_error + " (Twilio error 12100)");
                for (const auto& c : catalogue())
                    if (std::string_view(c.group) == "twiml" && !r.contains(c.id))
                        skip(c.id, "the TwiML is not well-formed XML (see twiml.valid)");
            } else if (tw.streams.empty()) {
                fail("twiml.stream", "no <Connect><Stream> or <Start><Stream> in the TwiML");
                specific_failed = true;
                for (const char* id : {"twiml.stream_url", "twiml.stream_wss", "twiml.stream_query",
                                       "twiml.parameters", "twiml.connect_track",
                                       "twiml.start_not_last", "twiml.status_callback"})
                    skip(id, "no <Stream> in the TwiML");
            } else {
                const auto& s = tw.streams.front();
                pass("twiml.stream", fmt::format("<{}><Stream> at line {}", s.verb, s.line));
                auto webhook = core::parse_url(opts_.webhook_url);
                auto url = core::resolve_url(*webhook, s.url);
                if (s.url.empty() || !url || url->host.empty() ||
                    (url->scheme != "ws" && url->scheme != "wss" && url->scheme != "http" &&
                     url->scheme != "https") ||
                    ((url->scheme == "http" || url->scheme == "https") &&
                     s.url.find("://") != std::string::npos)) {
                    fail(
                        "twiml.stream_url",
                        fmt::format("url=\"{}\" is not a ws:// or wss:// URL (Twilio: 31922/31923)",
                                    s.url));
                    specific_failed = true;
                    skip("twiml.stream_wss", "no usable stream URL (see twiml.stream_url)");
                } else {
                    pass("twiml.stream_url", fmt::format("url=\"{}\"", s.url));
                    const bool wss = url->scheme == "wss" || url->scheme == "https";
                    if (webhook->scheme != "https")
                        skip("twiml.stream_wss",
                             "the webhook is plain http:// (a local test): ws:// accepted");
                    else {
                        verdict("twiml.stream_wss", wss, fmt::format("url=\"{}\"", s.url),
                                fmt::format("url=\"{}\": Twilio connects only to wss:// (31922)",
                                            s.url));
                        specific_failed |= !wss;
                    }
                }
                verdict("twiml.stream_query", s.url.find('?') == std::string::npos,
                        "no query string",
                        fmt::format("url=\"{}\": Twilio drops the query; use <Parameter>", s.url));
                std::string bad_param;
                std::vector<std::string> seen_names;
                for (const auto& [name, value] : s.parameters) {
                    if (name.empty())
                        bad_param = "a <Parameter> without a name";
                    else if (!value)
                        bad_param = fmt::format("<Parameter name=\"{}\"> has no value", name);
                    else if (std::find(seen_names.begin(), seen_names.end(), name) !=
                             seen_names.end())
                        bad_param = fmt::format("<Parameter name=\"{}\"> appears twice", name);
                    if (!bad_param.empty()) break;
                    seen_names.push_back(name);
                }
                verdict("twiml.parameters", bad_param.empty(),
                        fmt::format("{} parameter(s)", s.parameters.size()), bad_param);
                if (s.verb == "Connect") {
                    verdict("twiml.connect_track", s.track == "inbound_track",
                            "track inbound_track",
                            fmt::format("<Connect><Stream track=\"{}\">: Connect allows only "
                                        "inbound_track (error 31941)",
                                        s.track));
                    specific_failed |= s.track != "inbound_track";
                    skip("twiml.start_not_last", "the stream is a <Connect>");
                } else {
                    skip("twiml.connect_track", "the stream is a <Start>");
                    verdict("twiml.start_not_last", !s.last_verb, "verbs follow <Start>",
                            "<Start><Stream> is the last verb: the call hangs up at once");
                }
                if (s.status_callback.empty()) {
                    skip("twiml.status_callback", "the <Stream> names no statusCallback");
                } else {
                    std::string bad;
                    for (const auto& cb : primary_.status_callbacks)
                        if (bad.empty() && (cb.status < 200 || cb.status >= 300))
                            bad = cb.status == 0
                                      ? fmt::format("{} to {}: {}", cb.event, cb.url, cb.error)
                                      : fmt::format("{} to {} answered HTTP {}", cb.event, cb.url,
                                                    cb.status);
                    if (primary_.status_callbacks.empty())
                        skip("twiml.status_callback", "no stream event was posted");
                    else
                        verdict("twiml.status_callback", bad.empty(),
                                fmt::format("{} callback(s) answered 2xx",
                                            primary_.status_callbacks.size()),
                                bad);
                }
                // The strict TwiML parse (what the call ran).
                if (po.failure == FailureClass::twiml_invalid) {
                    if (specific_failed)
                        skip("twiml.valid", "the TwiML's problem is reported by a specific case");
                    else
                        fail("twiml.valid", po.first_error);
                } else {
                    pass("twiml.valid", fmt::format("{} stream(s)", tw.streams.size()));
                }
            }
        }
    }

    // ---- handshake
    const char* no_stream = "no stream connected (see handshake.upgrade and the twiml cases)";
    if (!ps) {
        const char* why = webhook_mode_ ? "the conversation opened no stream (see the webhook "
                                          "and twiml cases)"
                                        : "no stream";
        skip("handshake.upgrade", why);
    } else if (!ps->result.connected && ps->result.end == StreamEnd::hung_up) {
        skip("handshake.upgrade",
             "the call ended before the stream connected (see twiml.start_not_last)");
    } else {
        verdict("handshake.upgrade", ps->result.connected, fmt::format("{} answered 101", ps->url),
                ps->result.error);
    }
    for (auto [id, res] : {std::pair{"handshake.unsigned_refused", &unsigned_},
                           std::pair{"handshake.bad_signature_refused", &badsig_}}) {
        if (opts_.auth_token.empty())
            skip(id, "no --auth-token: the server is not expected to check signatures");
        else if (!primary_streamed())
            skip(id, no_stream);
        else
            verdict(id, !res->connected,
                    "refused: " + (res->error.empty() ? std::string("not 101") : res->error),
                    "the upgrade was accepted (101): the server does not check "
                    "X-Twilio-Signature on upgrades");
    }

    // ---- what the server sent, over every stream of every probe
    Evidence ev;
    std::uint64_t uni_streams = 0;
    for (const CallReport* c : {&primary_, &long_, &midword_, &after_midword_})
        for (const auto& s : c->stream_reports) {
            ev.add(s.result);
            uni_streams += !s.bidirectional && s.result.connected;
        }
    for (const auto& c : concurrent_)
        for (const auto& s : c.stream_reports) ev.add(s.result);
    // Cases judged on timing windows look at the conversation only: it runs alone, so a server
    // slowed by N calls at once cannot look as if it talked after stop or after a clear.
    Evidence pev;
    for (const auto& s : primary_.stream_reports) pev.add(s.result);
    const bool streamed = primary_streamed();
    const auto fault_case = [&](const char* id, ServerFault f, bool needs_media, std::string ok) {
        if (!streamed) return skip(id, no_stream);
        if (ev.frames == 0) return skip(id, "the server sent no frames");
        if (needs_media && ev.sum.media == 0) return skip(id, "the server sent no media");
        if (ev.fault(f) == 0) return pass(id, std::move(ok));
        fail(id, fmt::format("{} (×{})", ev.example(f), ev.fault(f)));
    };
    const auto frames_seen = fmt::format("{} frames on {} streams", ev.frames, ev.streams);
    fault_case("messages.text", ServerFault::binary_frame, false, frames_seen);
    fault_case("messages.json", ServerFault::not_json, false, frames_seen);
    fault_case(
        "messages.known_events", ServerFault::unknown_event, false,
        fmt::format("{} media, {} marks, {} clears", ev.sum.media, ev.sum.marks, ev.sum.clears));
    fault_case("messages.stream_sid", ServerFault::wrong_stream_sid, false, frames_seen);
    fault_case("messages.fields", ServerFault::bad_field, false, frames_seen);
    fault_case("messages.extra_fields", ServerFault::extra_field, false, frames_seen);
    fault_case("media.base64", ServerFault::bad_base64, true,
               fmt::format("{} media messages", ev.sum.media));
    fault_case("media.no_header", ServerFault::audio_header, true,
               fmt::format("{} media messages", ev.sum.media));
    if (!streamed)
        skip("media.frame_size", no_stream);
    else if (ev.sum.media == 0)
        skip("media.frame_size", "the server sent no media");
    else
        verdict("media.frame_size",
                ev.sum.min_payload >= 1 && ev.sum.max_payload <= kMaxSensiblePayload,
                fmt::format("{}..{} bytes per message", ev.sum.min_payload, ev.sum.max_payload),
                fmt::format("payloads of {}..{} bytes (sensible: 1..{})", ev.sum.min_payload,
                            ev.sum.max_payload, kMaxSensiblePayload));
    if (!streamed)
        skip("marks.names", no_stream);
    else if (ev.sum.marks == 0)
        skip("marks.names", "the server sent no mark");
    else
        verdict("marks.names", ev.sum.bad_mark_names == 0, fmt::format("{} marks", ev.sum.marks),
                ev.sum.first_bad_mark);
    if (!streamed)
        skip("clear.stale_audio", no_stream);
    else if (pev.sum.clears == 0)
        skip("clear.stale_audio", "the server sent no clear in the conversation");
    else
        verdict("clear.stale_audio", pev.sum.audio_after_clear_ms <= 100,
                fmt::format("{} clears, {} ms of audio just after one", pev.sum.clears,
                            pev.sum.audio_after_clear_ms),
                fmt::format("{} ms of audio arrived within 300 ms after a clear: the old answer "
                            "keeps playing",
                            pev.sum.audio_after_clear_ms));
    if (!streamed)
        skip("stop.nothing_after", no_stream);
    else
        verdict("stop.nothing_after", pev.sum.after_stop == 0, "nothing after stop",
                fmt::format("{} (×{})", pev.sum.first_after_stop, pev.sum.after_stop));
    if (!streamed)
        skip("unidirectional.silent", no_stream);
    else if (uni_streams == 0)
        skip("unidirectional.silent",
             webhook_mode_
                 ? "no <Start> stream: the TwiML uses <Connect>"
                 : "--stream opens a <Connect> stream (--stream-mode start: a <Start> one)");
    else
        fault_case("unidirectional.silent", ServerFault::unidirectional, false,
                   fmt::format("{} <Start> stream(s), nothing sent back", uni_streams));
    if (streamed && uni_streams > 0 && ev.frames == 0)
        pass("unidirectional.silent",
             fmt::format("{} <Start> stream(s), nothing sent back", uni_streams));

    // ---- behaviour
    const auto ended_well = [](const StreamReport& s) {
        return s.result.connected && s.result.end != StreamEnd::failed;
    };
    if (!streamed) {
        skip("behaviour.dtmf", no_stream);
    } else if (!ps->bidirectional) {
        skip("behaviour.dtmf", "dtmf is sent on bidirectional (<Connect>) streams only");
    } else if (!primary_seen_->dtmf_at) {
        skip("behaviour.dtmf", fmt::format("the stream ended ({}) before the digit was pressed",
                                           to_string(ps->result.end)));
    } else {
        const auto& res = ps->result;
        verdict("behaviour.dtmf", res.end != StreamEnd::failed,
                res.end == StreamEnd::server_closed
                    ? "the server closed the stream with a close frame after the digit"
                    : "the stream stayed up after the digit until the caller hung up",
                "after the digit: " + res.error);
    }
    // both_tracks: the conversation's own stream, when it is one.
    const StreamReport* bt = ps && ps->inbound && ps->outbound ? ps : nullptr;
    if (!streamed)
        skip("behaviour.both_tracks", no_stream);
    else if (!bt)
        skip("behaviour.both_tracks", webhook_mode_ ? "the TwiML does not ask for <Start><Stream "
                                                      "track=\"both_tracks\">"
                                                    : "--stream opens a <Connect> stream "
                                                      "(--stream-mode start: a both_tracks "
                                                      "<Start> one)");
    else
        verdict("behaviour.both_tracks", ended_well(*bt) && bt->result.end == StreamEnd::hung_up,
                fmt::format("{} media frames sent on two tracks, kept until hang-up",
                            bt->result.media_sent),
                bt->result.end == StreamEnd::server_closed
                    ? fmt::format("the server closed the stream after {} ms",
                                  bt->result.duration.count())
                    : bt->result.error);
    if (!streamed) {
        skip("behaviour.hangup_mid_word", no_stream);
    } else {
        const auto* m = first_stream(midword_);
        const auto* a = first_stream(after_midword_);
        if (!m || !midword_seen_ || !midword_seen_->hung_up_mid_word)
            skip("behaviour.hangup_mid_word", "the mid-word probe did not hang up mid-word");
        else
            verdict("behaviour.hangup_mid_word", a && ended_well(*a),
                    "the next call connected and streamed",
                    a ? "the call after the mid-word hang-up: " +
                            (a->result.error.empty() ? after_midword_.outcome.first_error
                                                     : a->result.error)
                      : "the call after the mid-word hang-up opened no stream: " +
                            after_midword_.outcome.first_error);
    }
    if (opts_.long_call.count() == 0)
        skip("behaviour.long_call", "opt-in: --long (10 minutes) or --long-duration SECONDS");
    else if (!streamed)
        skip("behaviour.long_call", no_stream);
    else {
        const auto* l = first_stream(long_);
        const bool ok = l && ended_well(*l) && l->result.end == StreamEnd::hung_up;
        verdict("behaviour.long_call", ok,
                fmt::format("held {:.1f} s", l ? l->result.duration.count() / 1000.0 : 0.0),
                !l ? "no stream: " + long_.outcome.first_error
                : l->result.end == StreamEnd::server_closed
                    ? fmt::format("the server closed the stream after {:.1f} s of {} s",
                                  l->result.duration.count() / 1000.0, opts_.long_call.count())
                    : l->result.error);
    }
    if (!streamed) {
        skip("behaviour.concurrent", no_stream);
    } else if (wants("behaviour.concurrent")) {
        int ok = 0;
        std::string first_bad;
        for (const auto& c : concurrent_) {
            const auto* s = first_stream(c);
            if (s && ended_well(*s)) {
                ++ok;
            } else if (first_bad.empty()) {
                first_bad = s ? s->result.error : c.outcome.first_error;
            }
        }
        verdict("behaviour.concurrent", ok == opts_.concurrency,
                fmt::format("{} of {} calls served", ok, opts_.concurrency),
                fmt::format("{} of {} calls failed; first: {}", opts_.concurrency - ok,
                            opts_.concurrency, first_bad));
    }
    if (!streamed) {
        skip("behaviour.response_time", no_stream);
    } else if (!primary_seen_->first_audio_after_words) {
        skip("behaviour.response_time", "the server did not talk back after the caller's words");
    } else {
        const auto lat =
            ms_between(*primary_seen_->words_end, *primary_seen_->first_audio_after_words);
        verdict("behaviour.response_time", lat <= opts_.response_within.count(),
                fmt::format("first audio {} ms after the caller's words", lat),
                fmt::format("first audio {} ms after the caller's words (limit {} ms)", lat,
                            opts_.response_within.count()));
    }
    if (!streamed) {
        skip("behaviour.barge_in", no_stream);
    } else if (!ps->bidirectional) {
        skip("behaviour.barge_in", "a <Start> stream plays nothing");
    } else if (!primary_seen_->speech_start || !primary_seen_->bot_playing_at_speech) {
        skip("behaviour.barge_in", "the bot was not talking when the caller spoke");
    } else {
        std::optional<std::int64_t> after;
        for (auto t : primary_seen_->clears)
            if (t >= *primary_seen_->speech_start) {
                after = ms_between(*primary_seen_->speech_start, t);
                break;
            }
        verdict("behaviour.barge_in", after && *after <= kBargeInClearWithin.count(),
                fmt::format("clear {} ms after the caller started talking", after.value_or(0)),
                after ? fmt::format("clear only {} ms after the caller started talking", *after)
                      : "the caller talked over the bot and no clear came");
    }

    // ---- timing
    if (!streamed || ev.sum.media == 0) {
        skip("timing.ahead", streamed ? "the server sent no media" : no_stream);
        skip("timing.buffer", streamed ? "the server sent no media" : no_stream);
    } else {
        const double ahead_s = static_cast<double>(ev.sum.max_ahead_ms) / 1000.0;
        verdict("timing.ahead", ev.sum.max_ahead_ms <= kAheadShouldMs,
                fmt::format("at most {:.1f} s ahead of real time", ahead_s),
                fmt::format("{:.1f} s of audio queued ahead of real time (over 60 s)", ahead_s));
        verdict("timing.buffer", ev.sum.max_ahead_ms <= kBufferMustMs,
                fmt::format("at most {:.1f} s queued", ahead_s),
                fmt::format("{:.1f} s of audio queued; Twilio holds about 600 s and drops the "
                            "rest (31931)",
                            ahead_s));
    }

    for (const auto* c : wanted_) {
        reports::CaseResult k;
        k.id = c->id;
        k.group = c->group;
        k.title = c->title;
        k.spec = c->spec;
        k.severity = to_string(c->severity);
        if (auto it = r.find(c->id); it != r.end()) {
            k.status = it->second.first;
            k.evidence = it->second.second;
        } else {
            k.status = CaseStatus::skip;
            k.evidence = "not run (not selected with the cases it depends on)";
        }
        out.cases.push_back(std::move(k));
    }
}

}  // namespace

CheckResult run_check(const CheckOptions& opts) {
    Check c(opts);
    return c.run();
}

}  // namespace mediasim::sim
