// `mediasim check`: the conformance suite. A catalogue of cases with stable ids, and the run
// that turns a Media Streams server into pass/fail/skip results: a few probe calls made as
// Twilio makes them (the conversation, unsigned upgrades, N calls at once, a long call, a caller
// who hangs up mid-word), whose evidence the existing call and stream client gather
// (CallReport, StreamResult::evidence), then every case judged on it. With --stream the server
// is taken for a <Connect> (bidirectional) endpoint unless --stream-mode start says it serves
// <Start><Stream track="both_tracks">.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reports/conformance.hpp"
#include "simulator/http_client.hpp"
#include "simulator/stats.hpp"

namespace mediasim::sim {

enum class Severity { must, should };
const char* to_string(Severity s);

struct CaseInfo {
    const char* id;     // "group.name", stable: CI configurations select cases by it
    const char* group;  // webhook, twiml, handshake, messages, media, marks, clear, stop, ...
    const char* title;
    const char* spec;  // section of shared/spec/twilio-media-streams.md, e.g. "§3, §10.2"
    Severity severity;
    const char* evidence;  // what the case looks at and when it fails
};

// Every case, in the order they are reported.
std::span<const CaseInfo> catalogue();
// docs/conformance.md, generated from the catalogue (a test keeps the file equal to it).
std::string catalogue_markdown();
// Shell-style glob: '*' any run, '?' one character. "media.*", "*stream*".
bool glob_match(std::string_view pattern, std::string_view text);

struct CheckOptions {
    std::string webhook_url;  // either this (the voice webhook) ...
    std::string stream_url;   // ... or a Media Stream URL, opened directly
    // With stream_url: open <Start><Stream track="both_tracks"> (listen-only) streams instead of
    // <Connect> (bidirectional) ones.
    bool stream_start = false;
    std::string auth_token;  // signs everything; given: the server claims to check signatures
    std::vector<std::string> cases;     // globs; empty: every case
    int concurrency = 50;               // behaviour.concurrent: calls at once
    std::chrono::seconds long_call{0};  // behaviour.long_call: 0 skips it (--long: 600 s)
    std::chrono::milliseconds response_within{2000};  // behaviour.response_time
    std::shared_ptr<const NetConfig> net = std::make_shared<NetConfig>();
    std::function<void(const std::string&)> progress;  // a line per probe; may be empty
};

struct CheckResult {
    reports::Conformance conformance;  // target, mode and cases filled in
    RunTotals totals;                  // the probe calls' metrics (for summary.json / the report)
};

// Runs the probes (on the calling thread) and judges every selected case.
CheckResult run_check(const CheckOptions& opts);

}  // namespace mediasim::sim
