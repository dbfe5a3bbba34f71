#include "simulator/scenario.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "core/g711.hpp"
#include "core/tts.hpp"
#include "core/wav.hpp"
#include "core/yaml_check.hpp"

namespace mediasim::sim {
namespace {

namespace fs = std::filesystem;

// The shared checker, plus the scenario's durations ("500ms", "2s", "10m").
class Checker : public core::YamlChecker {
  public:
    using core::YamlChecker::YamlChecker;

    std::optional<Millis> duration(const YAML::Node& n, const std::string& path) {
        if (!n.IsScalar()) {
            error(n, path, "expected a duration such as 500ms, 2s or 10m");
            return std::nullopt;
        }
        auto d = parse_duration(n.Scalar());
        if (!d) {
            error(n, path, d.error().message);
            return std::nullopt;
        }
        return *d;
    }
};

class Loader {
  public:
    Loader(const fs::path& path, const LoadOptions& opts)
        : path_(path), dir_(path.parent_path()), opts_(opts), c_(path.string()) {}

    ScenarioLoad load(std::string_view text) {
        ScenarioLoad out;
        auto loaded = core::yaml_load(text, path_.string());
        if (!loaded) {
            out.errors.push_back(loaded.error());
            return out;
        }
        const YAML::Node root = *loaded;
        if (!root.IsMap()) {
            c_.error(root, "", "a scenario is a map with at least a \"steps\" list");
            out.errors = c_.take_errors();
            return out;
        }
        Scenario s;
        s.path = path_;
        s.name = path_.stem().string();
        c_.keys(root, "",
                {"name", "description", "call", "stream", "steps", "max_call_duration", "load",
                 "network"});
        if (auto n = root["name"]) s.name = c_.string(n, "name").value_or(s.name);
        if (auto n = root["description"]) s.description = c_.string(n, "description").value_or("");
        if (auto n = root["max_call_duration"])
            s.max_call_duration = c_.duration(n, "max_call_duration").value_or(s.max_call_duration);
        if (auto n = root["call"]) call(n, s.call);
        if (auto n = root["stream"]) stream(n, s.stream);
        if (auto n = root["steps"]) {
            steps(n, s.steps);
        } else {
            c_.error(root, "steps", "missing: a scenario needs a \"steps\" list");
        }
        if (auto n = root["load"]) load_shape(n, s.load);
        if (auto n = root["network"]) network(n, s.network);
        if (c_.ok()) out.scenario = std::move(s);
        out.errors = c_.take_errors();
        return out;
    }

  private:
    void call(const YAML::Node& n, CallTemplate& t) {
        if (!n.IsMap()) return c_.error(n, "call", "expected a map (from, to, params)");
        c_.keys(n, "call", {"from", "to", "params"});
        if (auto v = n["from"]) template_string(v, "call.from", t.from);
        if (auto v = n["to"]) template_string(v, "call.to", t.to);
        if (auto p = n["params"]) {
            if (!p.IsMap()) return c_.error(p, "call.params", "expected a map of name: value");
            for (const auto& kv : p) {
                auto name = kv.first.as<std::string>();
                std::string value;
                template_string(kv.second, "call.params." + name, value);
                t.webhook_params.emplace_back(name, value);
            }
        }
    }

    void stream(const YAML::Node& n, StreamSettings& st) {
        if (!n.IsMap()) return c_.error(n, "stream", "expected a map (mode, track, parameters)");
        c_.keys(n, "stream", {"mode", "track", "parameters"});
        if (auto v = n["mode"]) {
            auto s = c_.string(v, "stream.mode");
            if (s == "connect")
                st.bidirectional = true;
            else if (s == "start")
                st.bidirectional = false;
            else if (s)
                c_.error(v, "stream.mode",
                         fmt::format("\"{}\" is not a stream mode (expected connect, as "
                                     "<Connect><Stream>, or start, as <Start><Stream>)",
                                     *s));
        }
        if (auto v = n["track"]) {
            auto s = c_.string(v, "stream.track");
            if (s && *s != "inbound_track" && *s != "outbound_track" && *s != "both_tracks")
                c_.error(v, "stream.track",
                         fmt::format("\"{}\" is not a track (expected inbound_track, "
                                     "outbound_track or both_tracks)",
                                     *s));
            else if (s)
                st.track = *s;
        }
        if (st.bidirectional && st.track != "inbound_track" && n["track"])
            c_.error(
                n["track"], "stream.track",
                "a connect (bidirectional) stream only takes inbound_track, as on Twilio (31941)");
        if (auto p = n["parameters"]) {
            if (!p.IsMap())
                return c_.error(p, "stream.parameters", "expected a map of name: value");
            for (const auto& kv : p) {
                auto name = kv.first.as<std::string>();
                auto value = c_.string(kv.second, "stream.parameters." + name);
                if (value) st.custom_parameters.emplace_back(name, *value);
            }
        }
    }

    void template_string(const YAML::Node& n, const std::string& path, std::string& out) {
        auto s = c_.string(n, path);
        if (!s) return;
        if (auto e = expand_template(*s, {}); !e) return c_.error(n, path, e.error().message);
        out = *s;
    }

    void steps(const YAML::Node& n, std::vector<ScriptStep>& out) {
        if (!n.IsSequence()) return c_.error(n, "steps", "expected a list of steps");
        if (n.size() == 0) return c_.error(n, "steps", "the list is empty");
        for (std::size_t i = 0; i < n.size(); ++i) {
            const auto& item = n[i];
            const std::string path = fmt::format("steps[{}]", i);
            std::string kind;
            YAML::Node body;
            if (item.IsScalar()) {
                kind = item.Scalar();
            } else if (item.IsMap() && item.size() == 1) {
                kind = item.begin()->first.as<std::string>();
                body = item.begin()->second;
            } else {
                c_.error(item, path,
                         "expected one step: speak, silence, dtmf, wait, barge_in or hangup");
                continue;
            }
            const int line = item.Mark().line + 1;
            const std::string kpath = path + "." + kind;
            if (kind == "speak") {
                if (auto sp = speech(body, kpath, {}))
                    out.push_back({SpeakStep{std::move(*sp)}, line});
            } else if (kind == "silence") {
                if (auto d = c_.duration(body, kpath)) out.push_back({SilenceStep{*d}, line});
            } else if (kind == "dtmf") {
                dtmf(body, kpath, line, out);
            } else if (kind == "wait") {
                wait(body, kpath, line, out);
            } else if (kind == "barge_in") {
                barge_in(body, kpath, line, out);
            } else if (kind == "hangup") {
                if (body && !body.IsNull() && !(body.IsMap() && body.size() == 0))
                    c_.error(body, kpath, "takes no value");
                out.push_back({HangupStep{}, line});
            } else {
                c_.error(item, path,
                         fmt::format("unknown step \"{}\" (expected speak, silence, dtmf, wait, "
                                     "barge_in or hangup)",
                                     kind));
            }
        }
    }

    // speak: "text" | {text: "...", voice: en-us} | {audio: file.wav}
    std::optional<Speech> speech(const YAML::Node& n, const std::string& path,
                                 std::initializer_list<std::string_view> extra_keys) {
        if (n && n.IsScalar()) return text_speech(n, path, n.Scalar());
        if (!n || !n.IsMap()) {
            c_.error(n ? n : YAML::Node(), path,
                     "expected a text, or a map with \"text\" or \"audio\"");
            return std::nullopt;
        }
        std::vector<std::string_view> allowed{"text", "audio"};
        allowed.insert(allowed.end(), extra_keys);
        c_.keys(n, path, allowed);
        const auto text = n["text"];
        const auto audio = n["audio"];
        if (text && audio) {
            c_.error(n, path, "give either \"text\" or \"audio\", not both");
            return std::nullopt;
        }
        if (text) {
            auto s = c_.string(text, path + ".text");
            if (!s) return std::nullopt;
            return text_speech(text, path + ".text", *s);
        }
        if (audio) {
            auto s = c_.string(audio, path + ".audio");
            if (!s) return std::nullopt;
            return audio_speech(audio, path + ".audio", *s);
        }
        c_.error(n, path, "needs \"text\" (spoken by espeak-ng) or \"audio\" (a WAV file)");
        return std::nullopt;
    }

    std::optional<Speech> text_speech(const YAML::Node& at, const std::string& path,
                                      const std::string& text) {
        if (text.empty()) {
            c_.error(at, path, "the text is empty");
            return std::nullopt;
        }
        auto sp = synthesize(text, opts_);
        if (!sp) {
            c_.error(at, path, sp.error().message);
            return std::nullopt;
        }
        return std::move(*sp);
    }

    std::optional<Speech> audio_speech(const YAML::Node& at, const std::string& path,
                                       const std::string& file) {
        std::vector<fs::path> tried{dir_ / file, dir_ / "audio" / file};
        const fs::path* found = nullptr;
        for (const auto& p : tried)
            if (fs::is_regular_file(p)) {
                found = &p;
                break;
            }
        if (!found) {
            c_.error(
                at, path,
                fmt::format(
                    "file \"{}\" not found (looked in {} and {})", file,
                    tried[0].parent_path().string().empty() ? "." : tried[0].parent_path().string(),
                    tried[1].parent_path().string()));
            return std::nullopt;
        }
        core::ReadOptions ro;
        ro.sample_rate_hz = 8000;
        ro.downmix = true;
        auto pcm = core::read_wav_pcm(*found, ro);
        if (!pcm) {
            c_.error(at, path, pcm.error().to_string());
            return std::nullopt;
        }
        Speech sp;
        sp.label = file;
        sp.mulaw.resize(pcm->samples.size());
        core::ulaw_encode(pcm->samples, sp.mulaw.data());
        return sp;
    }

    void dtmf(const YAML::Node& n, const std::string& path, int line,
              std::vector<ScriptStep>& out) {
        DtmfStep d;
        YAML::Node digits = n;
        if (n.IsMap()) {
            c_.keys(n, path, {"digits", "gap"});
            digits.reset(n["digits"]);  // not `=`: that would overwrite n itself
            if (auto g = n["gap"]) d.gap = c_.duration(g, path + ".gap").value_or(d.gap);
            if (!digits) return c_.error(n, path, "needs \"digits\"");
        }
        auto s = c_.string(digits, path);
        if (!s) return;
        if (s->empty()) return c_.error(digits, path, "no digits");
        for (std::size_t i = 0; i < s->size(); ++i) {
            char ch = (*s)[i];
            if (!((ch >= '0' && ch <= '9') || ch == '*' || ch == '#'))
                return c_.error(
                    digits, path,
                    fmt::format("'{}' at position {} is not a DTMF digit (0-9, *, #)", ch, i + 1));
        }
        d.digits = *s;
        out.push_back({d, line});
    }

    // wait: audio | {for: audio|silence|mark|clear, timeout, within, silence, name}
    void wait(const YAML::Node& n, const std::string& path, int line,
              std::vector<ScriptStep>& out) {
        WaitStep w;
        YAML::Node what = n;
        if (n.IsMap()) {
            c_.keys(n, path, {"for", "timeout", "within", "silence", "name"});
            what.reset(n["for"]);  // not `=`: that would overwrite n itself
            if (!what) return c_.error(n, path, "needs \"for\": audio, silence, mark or clear");
            if (auto v = n["timeout"])
                w.timeout = c_.duration(v, path + ".timeout").value_or(w.timeout);
            if (auto v = n["within"]) w.within = c_.duration(v, path + ".within");
            if (auto v = n["silence"])
                w.silence = c_.duration(v, path + ".silence").value_or(w.silence);
            if (auto v = n["name"]) w.mark = c_.string(v, path + ".name").value_or("");
        }
        auto s = c_.string(what, path + ".for");
        if (!s) return;
        if (*s == "audio")
            w.what = WaitStep::For::audio;
        else if (*s == "silence")
            w.what = WaitStep::For::silence;
        else if (*s == "mark")
            w.what = WaitStep::For::mark;
        else if (*s == "clear")
            w.what = WaitStep::For::clear;
        else
            return c_.error(what, path + ".for",
                            fmt::format("\"{}\" is not something to wait for (expected audio, "
                                        "silence, mark or clear)",
                                        *s));
        if (n.IsMap() && n["name"] && w.what != WaitStep::For::mark)
            c_.error(n["name"], path + ".name", "only a wait for a mark takes a name");
        out.push_back({w, line});
    }

    void barge_in(const YAML::Node& n, const std::string& path, int line,
                  std::vector<ScriptStep>& out) {
        if (!n || !n.IsMap())
            return c_.error(n ? n : YAML::Node(), path,
                            "expected a map with \"text\" or \"audio\" (and after, clear_within)");
        BargeInStep b;
        if (auto v = n["after"]) b.after = c_.duration(v, path + ".after").value_or(b.after);
        if (auto v = n["timeout"])
            b.timeout = c_.duration(v, path + ".timeout").value_or(b.timeout);
        if (auto v = n["clear_within"]) b.clear_within = c_.duration(v, path + ".clear_within");
        auto sp = speech(n, path, {"after", "timeout", "clear_within"});
        if (!sp) return;
        b.speech = std::move(*sp);
        out.push_back({std::move(b), line});
    }

    void network(const YAML::Node& n, Impairments& imp) {
        if (!n.IsMap())
            return c_.error(n, "network",
                            "expected a map (jitter, pause, slow_read, drop_at, webhook_delay)");
        c_.keys(n, "network", {"jitter", "pause", "slow_read", "drop_at", "webhook_delay"});
        if (auto v = n["jitter"]) {
            if (v.IsMap()) {
                c_.keys(v, "network.jitter", {"mean", "distribution"});
                if (auto m = v["mean"])
                    imp.jitter = c_.duration(m, "network.jitter.mean").value_or(Millis{0});
                else
                    c_.error(v, "network.jitter.mean", "missing (example: {mean: 40ms})");
                if (auto d = v["distribution"]) {
                    auto s = c_.string(d, "network.jitter.distribution");
                    if (s == "uniform")
                        imp.distribution = Impairments::Distribution::uniform;
                    else if (s == "exponential")
                        imp.distribution = Impairments::Distribution::exponential;
                    else if (s)
                        c_.error(d, "network.jitter.distribution",
                                 fmt::format("\"{}\" is not a distribution (expected uniform "
                                             "or exponential)",
                                             *s));
                }
            } else {
                imp.jitter = c_.duration(v, "network.jitter").value_or(Millis{0});
            }
        }
        if (auto v = n["pause"]) {
            if (!v.IsMap()) {
                c_.error(v, "network.pause", "expected a map (example: {for: 1s, every: 10s})");
            } else {
                c_.keys(v, "network.pause", {"for", "every"});
                auto f = v["for"] ? c_.duration(v["for"], "network.pause.for") : std::nullopt;
                auto e = v["every"] ? c_.duration(v["every"], "network.pause.every") : std::nullopt;
                if (!v["for"] || !v["every"])
                    c_.error(v, "network.pause",
                             "needs both for and every (example: {for: 1s, every: 10s})");
                else if (f && e && *e <= *f)
                    c_.error(v["every"], "network.pause.every", "must be longer than for");
                else if (f && e) {
                    imp.pause_for = *f;
                    imp.pause_every = *e;
                }
            }
        }
        if (auto v = n["slow_read"])
            imp.slow_read = c_.duration(v, "network.slow_read").value_or(Millis{0});
        if (auto v = n["drop_at"]) imp.drop_at = c_.duration(v, "network.drop_at");
        if (auto v = n["webhook_delay"])
            imp.webhook_delay = c_.duration(v, "network.webhook_delay").value_or(Millis{0});
    }

    void load_shape(const YAML::Node& n, LoadShape& l) {
        if (!n.IsMap())
            return c_.error(n, "load", "expected a map (calls, concurrency, arrival, ...)");
        c_.keys(n, "load",
                {"calls", "concurrency", "arrival", "rate", "ramp_from", "ramp_over", "duration"});
        if (auto v = n["calls"]) l.calls = c_.number<int>(v, "load.calls", 1).value_or(l.calls);
        if (auto v = n["concurrency"])
            l.concurrency = c_.number<int>(v, "load.concurrency", 1).value_or(l.concurrency);
        if (auto v = n["rate"]) l.rate = c_.number<double>(v, "load.rate", 0.0).value_or(l.rate);
        if (auto v = n["ramp_from"])
            l.ramp_from = c_.number<double>(v, "load.ramp_from", 0.0).value_or(l.ramp_from);
        if (auto v = n["ramp_over"])
            l.ramp_over = c_.duration(v, "load.ramp_over").value_or(l.ramp_over);
        if (auto v = n["duration"]) l.duration = c_.duration(v, "load.duration");
        if (auto v = n["arrival"]) {
            auto s = c_.string(v, "load.arrival");
            if (s == "constant")
                l.arrival = LoadShape::Arrival::constant;
            else if (s == "poisson")
                l.arrival = LoadShape::Arrival::poisson;
            else if (s == "ramp")
                l.arrival = LoadShape::Arrival::ramp;
            else if (s)
                c_.error(v, "load.arrival",
                         fmt::format("\"{}\" is not an arrival shape (expected constant, poisson "
                                     "or ramp)",
                                     *s));
        }
        if (l.arrival != LoadShape::Arrival::constant && l.rate <= 0)
            c_.error(n, "load.rate",
                     "poisson and ramp arrivals need a rate (calls per second) above 0");
        if (l.arrival == LoadShape::Arrival::ramp && l.ramp_over.count() <= 0)
            c_.error(n, "load.ramp_over", "a ramp needs ramp_over (e.g. 60s)");
    }

    fs::path path_;
    fs::path dir_;
    const LoadOptions& opts_;
    Checker c_;
};

}  // namespace

core::Result<Millis> parse_duration(std::string_view text) {
    auto bad = [&] {
        return core::make_error(
            fmt::format("\"{}\" is not a duration (examples: 250ms, 2s, 1.5s, 10m, 1h)", text));
    };
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
        ++i;
    if (i == 0) return bad();
    double v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + i, v);
    if (ec != std::errc() || p != text.data() + i) return bad();
    const auto unit = text.substr(i);
    double ms = 0;
    if (unit == "ms")
        ms = v;
    else if (unit == "s")
        ms = v * 1000;
    else if (unit == "m" || unit == "min")
        ms = v * 60'000;
    else if (unit == "h")
        ms = v * 3'600'000;
    else
        return bad();
    if (ms > 7 * 24 * 3'600'000.0) return core::make_error(fmt::format("\"{}\" is too long", text));
    return Millis(static_cast<std::int64_t>(std::llround(ms)));
}

core::Result<std::string> expand_template(std::string_view text, const TemplateContext& ctx) {
    std::string out;
    std::mt19937_64 rng(ctx.seed ^ (ctx.n * 0x9E3779B97F4A7C15ULL));
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto open = text.find("{{", pos);
        if (open == std::string_view::npos) {
            out.append(text.substr(pos));
            break;
        }
        out.append(text.substr(pos, open - pos));
        auto close = text.find("}}", open);
        if (close == std::string_view::npos)
            return core::make_error(fmt::format("\"{{{{\" at position {} is not closed", open + 1));
        auto expr = text.substr(open + 2, close - open - 2);
        auto colon = expr.find(':');
        auto name = expr.substr(0, colon);
        auto arg = colon == std::string_view::npos ? std::string_view{} : expr.substr(colon + 1);
        auto width = [&]() -> std::optional<int> {
            if (arg.empty()) return 0;
            int w = 0;
            auto [p, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), w);
            if (ec != std::errc() || p != arg.data() + arg.size() || w < 0 || w > 32)
                return std::nullopt;
            return w;
        }();
        if (!width)
            return core::make_error(
                fmt::format("{{{{{}}}}}: \"{}\" is not a width from 0 to 32", expr, arg));
        if (name == "n") {
            out += fmt::format("{:0{}}", ctx.n, *width);
        } else if (name == "shard") {
            out += fmt::format("{:0{}}", ctx.shard, *width);
        } else if (name == "rand") {
            int w = *width == 0 ? 6 : *width;
            for (int k = 0; k < w; ++k) out += static_cast<char>('0' + rng() % 10);
        } else {
            return core::make_error(
                fmt::format("unknown template \"{{{{{}}}}}\" (known: {{{{n}}}}, {{{{n:04}}}}, "
                            "{{{{rand:6}}}}, {{{{shard}}}})",
                            expr));
        }
        pos = close + 2;
    }
    return out;
}

core::Result<Speech> synthesize(std::string_view text, const LoadOptions& opts) {
    auto mulaw = core::speak_mulaw(text, {opts.voice, opts.tts_cache});
    if (!mulaw) return mulaw.error();
    return Speech{std::string(text), std::move(*mulaw)};
}

ScenarioLoad parse_scenario(std::string_view yaml_text, const fs::path& path,
                            const LoadOptions& opts) {
    return Loader(path, opts).load(yaml_text);
}

ScenarioLoad load_scenario(const fs::path& path, const LoadOptions& opts) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ScenarioLoad out;
        core::Diagnostic d;
        d.file = path.string();
        d.message = "cannot open the scenario file";
        out.errors.push_back(std::move(d));
        return out;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_scenario(ss.str(), path, opts);
}

}  // namespace mediasim::sim
