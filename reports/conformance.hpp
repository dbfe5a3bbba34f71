// The results of `mediasim check` as data, and what is written from them: conformance.json
// (schema "mediasim.check/1"), JUnit XML (one testcase per case, grouped in testsuites) and the
// table printed on the terminal. The HTML report reads conformance.json (html.cpp).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mediasim::reports {

enum class CaseStatus { pass, fail, skip };
const char* to_string(CaseStatus s);  // "pass", "fail", "skip"

struct CaseResult {
    std::string id;        // stable, e.g. "media.no_header"
    std::string group;     // e.g. "media"
    std::string title;     // one line
    std::string spec;      // section reference into the Media Streams spec, e.g. "§3"
    std::string severity;  // "must" or "should"
    CaseStatus status = CaseStatus::skip;
    // pass: what was seen; fail: what went wrong (the evidence); skip: why the case does not apply
    std::string evidence;
};

struct Conformance {
    std::string target;  // the webhook or stream URL
    std::string mode;    // "webhook" or "stream"
    std::string started_at;
    std::string command_line;
    double duration_seconds = 0;
    std::vector<CaseResult> cases;
};

struct Counts {
    int pass = 0, fail = 0, skip = 0;
    int must_failed = 0, should_failed = 0;
};
Counts count(const Conformance& c);

// conformance.json: {"schema":"mediasim.check/1", target, mode, started_at, command_line,
// duration_seconds, passed, counts:{pass,fail,skip,must_failed,should_failed}, cases:[{id, group,
// title, spec, severity, result, evidence}]}. `passed` is true when no `must` case failed.
std::string conformance_json(const Conformance& c);

// JUnit XML as Jenkins, GitLab and the Ant junit schema read it: <testsuites> with one
// <testsuite> per group, one <testcase> per case; a failed case carries <failure type="must|
// should" message="..."> with the evidence, a skipped one <skipped message="why"/>.
std::string junit_xml(const Conformance& c, std::string_view hostname);

// The terminal table: one line per case (result, severity, id, title) and the evidence of every
// failed or skipped case under it, then the counts.
std::string conformance_table(const Conformance& c);

}  // namespace mediasim::reports
