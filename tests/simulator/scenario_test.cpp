#include "simulator/scenario.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace mediasim::sim;
using namespace std::chrono_literals;

namespace {

ScenarioLoad parse(std::string_view yaml) {
    return parse_scenario(yaml, "s.yaml");
}

std::vector<std::string> messages(const ScenarioLoad& l) {
    std::vector<std::string> out;
    for (const auto& e : l.errors) out.push_back(e.to_string());
    return out;
}

}  // namespace

TEST(Duration, Parses) {
    EXPECT_EQ(*parse_duration("250ms"), 250ms);
    EXPECT_EQ(*parse_duration("2s"), 2000ms);
    EXPECT_EQ(*parse_duration("1.5s"), 1500ms);
    EXPECT_EQ(*parse_duration("10m"), 600000ms);
    EXPECT_EQ(*parse_duration("1h"), 3600000ms);
    auto bad = parse_duration("fast");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message,
              "\"fast\" is not a duration (examples: 250ms, 2s, 1.5s, 10m, 1h)");
    EXPECT_FALSE(parse_duration("5"));
    EXPECT_FALSE(parse_duration("5 s"));
    EXPECT_FALSE(parse_duration("-1s"));
}

TEST(Template, Expands) {
    TemplateContext ctx;
    ctx.n = 42;
    ctx.shard = 3;
    EXPECT_EQ(*expand_template("+1415555{{n:04}}", ctx), "+14155550042");
    EXPECT_EQ(*expand_template("{{shard:02}}-{{n}}", ctx), "03-42");
    auto r = *expand_template("{{rand:8}}", ctx);
    EXPECT_EQ(r.size(), 8u);
    EXPECT_EQ(r.find_first_not_of("0123456789"), std::string::npos);
    EXPECT_EQ(*expand_template("{{rand:8}}", ctx), r) << "same call, same seed: same digits";
    ctx.n = 43;
    EXPECT_NE(*expand_template("{{rand:8}}", ctx), r);
    EXPECT_EQ(expand_template("{{name}}", ctx).error().message,
              "unknown template \"{{name}}\" (known: {{n}}, {{n:04}}, {{rand:6}}, {{shard}})");
    EXPECT_EQ(expand_template("a{{n", ctx).error().message, "\"{{\" at position 2 is not closed");
}

TEST(Scenario, ParsesEveryStepKind) {
    auto l = parse(R"(
name: t
stream: {mode: start, track: both_tracks, parameters: {a: "1"}}
steps:
  - silence: 2s
  - dtmf: "12#"
  - dtmf: {digits: "9", gap: 100ms}
  - wait: audio
  - wait: {for: silence, silence: 500ms, timeout: 3s}
  - wait: {for: mark, name: m1}
  - wait: {for: audio, within: 1500ms}
  - hangup
load: {calls: 10, concurrency: 4, arrival: ramp, rate: 5, ramp_from: 1, ramp_over: 30s, duration: 1m}
)");
    ASSERT_TRUE(l.errors.empty()) << messages(l)[0];
    const auto& s = *l.scenario;
    EXPECT_EQ(s.name, "t");
    EXPECT_FALSE(s.stream.bidirectional);
    EXPECT_EQ(s.stream.track, "both_tracks");
    ASSERT_EQ(s.steps.size(), 8u);
    EXPECT_EQ(std::get<SilenceStep>(s.steps[0].step).duration, 2000ms);
    EXPECT_EQ(s.steps[0].line, 5);
    EXPECT_EQ(std::get<DtmfStep>(s.steps[1].step).digits, "12#");
    EXPECT_EQ(std::get<DtmfStep>(s.steps[2].step).gap, 100ms);
    EXPECT_EQ(std::get<WaitStep>(s.steps[3].step).what, WaitStep::For::audio);
    EXPECT_EQ(std::get<WaitStep>(s.steps[4].step).silence, 500ms);
    EXPECT_EQ(std::get<WaitStep>(s.steps[5].step).mark, "m1");
    EXPECT_EQ(std::get<WaitStep>(s.steps[6].step).within, 1500ms);
    EXPECT_TRUE(std::holds_alternative<HangupStep>(s.steps[7].step));
    EXPECT_EQ(s.load.calls, 10);
    EXPECT_EQ(s.load.arrival, LoadShape::Arrival::ramp);
    EXPECT_EQ(s.load.ramp_over, 30000ms);
    EXPECT_EQ(s.load.duration, 60000ms);
}

TEST(Scenario, ReportsEveryProblemWithItsPlace) {
    auto l = parse(R"(steps:
  - silence: fast
  - dtmf: "12x"
  - wait: {for: lunch}
  - dance: 3
  - speak: {audio: nowhere.wav}
load: {calls: 0, arrival: poisson}
colour: blue
)");
    ASSERT_FALSE(l.scenario);
    const auto m = messages(l);
    const std::vector<std::string> want = {
        "s.yaml:8:1: colour: unknown key (expected one of: name, description, call, stream, "
        "steps, max_call_duration, load, network)",
        "s.yaml:2:14: steps[0].silence: \"fast\" is not a duration (examples: 250ms, 2s, 1.5s, "
        "10m, 1h)",
        "s.yaml:3:11: steps[1].dtmf: 'x' at position 3 is not a DTMF digit (0-9, *, #)",
        "s.yaml:4:17: steps[2].wait.for: \"lunch\" is not something to wait for (expected audio, "
        "silence, mark or clear)",
        "s.yaml:5:5: steps[3]: unknown step \"dance\" (expected speak, silence, dtmf, wait, "
        "barge_in or hangup)",
        "s.yaml:6:20: steps[4].speak.audio: file \"nowhere.wav\" not found (looked in . and audio)",
        "s.yaml:7:15: load.calls: must be at least 1",
        "s.yaml:7:7: load.rate: poisson and ramp arrivals need a rate (calls per second) above 0",
    };
    EXPECT_EQ(m, want);
}

TEST(Scenario, NetworkImpairments) {
    auto l = parse(R"(steps: [hangup]
network:
  jitter: {mean: 40ms, distribution: uniform}
  pause: {for: 1s, every: 10s}
  slow_read: 50ms
  drop_at: 3s
  webhook_delay: 2s
)");
    ASSERT_TRUE(l.scenario) << messages(l).front();
    const auto& n = l.scenario->network;
    EXPECT_EQ(n.jitter, 40ms);
    EXPECT_EQ(n.distribution, Impairments::Distribution::uniform);
    EXPECT_EQ(n.pause_for, 1s);
    EXPECT_EQ(n.pause_every, 10s);
    EXPECT_EQ(n.slow_read, 50ms);
    EXPECT_EQ(n.drop_at, std::optional<Millis>(3s));
    EXPECT_EQ(n.webhook_delay, 2s);
    EXPECT_TRUE(n.holds_frames());
    auto bad = parse(R"(steps: [hangup]
network:
  jitter: {mean: 40ms, distribution: gaussian}
  pause: {for: 2s, every: 1s}
  lag: 1s
)");
    ASSERT_FALSE(bad.scenario);
    const std::vector<std::string> want = {
        "s.yaml:5:3: network.lag: unknown key (expected one of: jitter, pause, slow_read, "
        "drop_at, webhook_delay)",
        "s.yaml:3:38: network.jitter.distribution: \"gaussian\" is not a distribution (expected "
        "uniform or exponential)",
        "s.yaml:4:27: network.pause.every: must be longer than for",
    };
    EXPECT_EQ(messages(bad), want);
}

TEST(Scenario, InvalidYamlNamesLineAndColumn) {
    auto l = parse("steps:\n  - silence: [1s\n");
    ASSERT_EQ(l.errors.size(), 1u);
    EXPECT_EQ(l.errors[0].file, "s.yaml");
    EXPECT_GT(l.errors[0].line, 1);
    EXPECT_NE(l.errors[0].message.find("not valid YAML"), std::string::npos);
}

TEST(Scenario, ConnectStreamOnlyTakesInboundTrack) {
    auto l = parse("stream: {mode: connect, track: both_tracks}\nsteps: [hangup]\n");
    ASSERT_EQ(l.errors.size(), 1u);
    EXPECT_EQ(l.errors[0].to_string(),
              "s.yaml:1:32: stream.track: a connect (bidirectional) stream only takes "
              "inbound_track, as on Twilio (31941)");
}

TEST(Scenario, MissingSteps) {
    auto l = parse("name: x\n");
    ASSERT_EQ(l.errors.size(), 1u);
    EXPECT_EQ(l.errors[0].to_string(),
              "s.yaml:1:1: steps: missing: a scenario needs a \"steps\" list");
}

TEST(Scenario, SpeaksTextThroughEspeak) {
    auto l = parse("steps:\n  - speak: \"Hello there.\"\n");
    ASSERT_TRUE(l.errors.empty()) << messages(l)[0];
    const auto& sp = std::get<SpeakStep>(l.scenario->steps[0].step).speech;
    EXPECT_EQ(sp.label, "Hello there.");
    // espeak-ng speaks two words in well under 3 s and more than 0.3 s: 8000 bytes per second.
    EXPECT_GT(sp.mulaw.size(), 2400u);
    EXPECT_LT(sp.mulaw.size(), 24000u);
    std::size_t loud = 0;  // μ-law codes far from silence (0xFF/0x7F)
    for (auto b : sp.mulaw) loud += (b & 0x7F) < 0x60;
    EXPECT_GT(loud, sp.mulaw.size() / 10) << "the audio holds speech, not silence";
}

TEST(Scenario, TtsCacheGivesTheSameAudio) {
    const fs::path dir =
        fs::temp_directory_path() / ("mediasim-tts-test-" + std::to_string(::getpid()));
    LoadOptions opts;
    opts.tts_cache = dir;
    auto a = synthesize("Cache me.", opts);
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
    auto b = synthesize("Cache me.", opts);
    ASSERT_TRUE(b);
    EXPECT_EQ(a->mulaw, b->mulaw);
    fs::remove_all(dir);
}

TEST(Scenario, ShippedScenariosLoad) {
    const fs::path dir = fs::path(MEDIASIM_SOURCE_DIR) / "scenarios";
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".yaml") continue;
        ++n;
        auto l = load_scenario(e.path());
        EXPECT_TRUE(l.errors.empty()) << e.path() << ": " << messages(l)[0];
    }
    EXPECT_GE(n, 6);
}
