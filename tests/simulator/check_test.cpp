// The catalogue of mediasim check and what its results are written as. The whole suite against
// real servers: check_faults_test.cpp (e2e).
#include "simulator/check.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "reports/conformance.hpp"

namespace {

using namespace mediasim;

TEST(CheckCatalogue, AtLeastThirtyCasesWithStableWellFormedIds) {
    const auto cases = sim::catalogue();
    EXPECT_GE(cases.size(), 30u);
    std::set<std::string> ids;
    int must = 0;
    for (const auto& c : cases) {
        const std::string id = c.id;
        EXPECT_TRUE(ids.insert(id).second) << "duplicate id " << id;
        EXPECT_EQ(id.substr(0, id.find('.')), c.group) << id;
        EXPECT_NE(id.find('.'), std::string::npos) << id;
        EXPECT_TRUE(std::string(c.spec).starts_with("§")) << id << ": " << c.spec;
        EXPECT_FALSE(std::string(c.title).empty()) << id;
        EXPECT_GT(std::string(c.evidence).size(), 20u) << id;
        must += c.severity == sim::Severity::must;
    }
    EXPECT_GT(must, 15);
    // What the issue asks for by name.
    for (const char* id :
         {"handshake.unsigned_refused", "behaviour.dtmf", "behaviour.both_tracks",
          "behaviour.hangup_mid_word", "behaviour.long_call", "behaviour.concurrent",
          "timing.ahead", "unidirectional.silent", "stop.nothing_after", "media.no_header",
          "twiml.parameters", "twiml.status_callback"})
        EXPECT_TRUE(ids.contains(id)) << id;
}

TEST(CheckCatalogue, DocsConformanceMdIsGeneratedFromTheCatalogue) {
    std::ifstream in(MEDIASIM_SOURCE_DIR "/docs/conformance.md", std::ios::binary);
    ASSERT_TRUE(in) << "docs/conformance.md is missing";
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(ss.str(), sim::catalogue_markdown())
        << "docs/conformance.md differs from the catalogue: regenerate it with\n"
           "  build/bin/mediasim check --list --markdown > docs/conformance.md";
    for (const auto& c : sim::catalogue())
        EXPECT_NE(ss.str().find(std::string("`") + c.id + "`"), std::string::npos) << c.id;
}

TEST(CheckCatalogue, GlobMatch) {
    EXPECT_TRUE(sim::glob_match("media.*", "media.base64"));
    EXPECT_TRUE(sim::glob_match("*", "timing.ahead"));
    EXPECT_TRUE(sim::glob_match("*stream*", "twiml.stream_url"));
    EXPECT_TRUE(sim::glob_match("behaviour.?tmf", "behaviour.dtmf"));
    EXPECT_TRUE(sim::glob_match("twiml.stream", "twiml.stream"));
    EXPECT_FALSE(sim::glob_match("twiml.stream", "twiml.stream_url"));
    EXPECT_FALSE(sim::glob_match("media.*", "messages.json"));
    EXPECT_FALSE(sim::glob_match("", "x"));
    EXPECT_TRUE(sim::glob_match("a*b*c", "aXXbYYc"));
    EXPECT_FALSE(sim::glob_match("a*b*c", "aXXbYY"));
}

reports::Conformance sample() {
    reports::Conformance c;
    c.target = "http://127.0.0.1:8080/voice?a=1&b=<2>";
    c.mode = "webhook";
    c.started_at = "2026-12-01T19:00:00Z";
    c.duration_seconds = 12.5;
    c.cases = {
        {"webhook.status", "webhook", "answers 200", "§5.1", "must", reports::CaseStatus::pass,
         "HTTP 200 in 3 ms"},
        {"media.no_header", "media", "no header", "§3", "must", reports::CaseStatus::fail,
         "media #3: starts with \"RIFF\" & <noise>"},
        {"timing.ahead", "timing", "not far ahead", "§8", "should", reports::CaseStatus::fail,
         "90 s ahead"},
        {"behaviour.long_call", "behaviour", "10 minutes", "§8", "must", reports::CaseStatus::skip,
         "opt-in: --long"},
    };
    return c;
}

TEST(CheckResults, JsonCountsAndVerdict) {
    auto c = sample();
    auto j = nlohmann::json::parse(reports::conformance_json(c));
    EXPECT_EQ(j["schema"], "mediasim.check/1");
    EXPECT_EQ(j["passed"], false);
    EXPECT_EQ(j["counts"]["must_failed"], 1);
    EXPECT_EQ(j["counts"]["should_failed"], 1);
    EXPECT_EQ(j["counts"]["skip"], 1);
    ASSERT_EQ(j["cases"].size(), 4u);
    EXPECT_EQ(j["cases"][1]["result"], "fail");
    EXPECT_EQ(j["cases"][1]["evidence"], "media #3: starts with \"RIFF\" & <noise>");
    c.cases.erase(c.cases.begin() + 1);
    EXPECT_EQ(nlohmann::json::parse(reports::conformance_json(c))["passed"], true);
}

TEST(CheckResults, JunitHasOneTestcasePerCaseWithEvidenceEscaped) {
    const auto x = reports::junit_xml(sample(), "host");
    auto count = [&](const std::string& s) {
        std::size_t n = 0;
        for (auto at = x.find(s); at != std::string::npos; at = x.find(s, at + 1)) ++n;
        return n;
    };
    EXPECT_EQ(count("<testcase "), 4u);
    EXPECT_EQ(count("<testsuite "), 4u);  // one per group
    EXPECT_EQ(count("<failure "), 2u);
    EXPECT_EQ(count("<skipped "), 1u);
    EXPECT_NE(x.find("starts with &quot;RIFF&quot; &amp; &lt;noise&gt;"), std::string::npos) << x;
    EXPECT_NE(x.find("type=\"should\""), std::string::npos);
    EXPECT_NE(x.find("<skipped message=\"opt-in: --long\"/>"), std::string::npos);
    EXPECT_NE(x.find("timestamp=\"2026-12-01T19:00:00\""), std::string::npos);
    EXPECT_EQ(x.find("&b=<2>"), std::string::npos) << "the target must be escaped";
}

TEST(CheckResults, TableShowsFailuresAsFailOrWarnWithTheirEvidence) {
    const auto t = reports::conformance_table(sample());
    EXPECT_NE(t.find("PASS  must    webhook.status"), std::string::npos) << t;
    EXPECT_NE(t.find("FAIL  must    media.no_header"), std::string::npos) << t;
    EXPECT_NE(t.find("WARN  should  timing.ahead"), std::string::npos) << t;
    EXPECT_NE(t.find("skipped: opt-in: --long"), std::string::npos) << t;
    EXPECT_NE(t.find("NOT conformant"), std::string::npos) << t;
}

}  // namespace
