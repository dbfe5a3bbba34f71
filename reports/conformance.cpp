#include "reports/conformance.hpp"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/escape.hpp"

namespace mediasim::reports {

const char* to_string(CaseStatus s) {
    switch (s) {
        case CaseStatus::pass:
            return "pass";
        case CaseStatus::fail:
            return "fail";
        case CaseStatus::skip:
            return "skip";
    }
    return "?";
}

Counts count(const Conformance& c) {
    Counts n;
    for (const auto& k : c.cases) {
        switch (k.status) {
            case CaseStatus::pass:
                ++n.pass;
                break;
            case CaseStatus::skip:
                ++n.skip;
                break;
            case CaseStatus::fail:
                ++n.fail;
                ++(k.severity == "must" ? n.must_failed : n.should_failed);
                break;
        }
    }
    return n;
}

std::string conformance_json(const Conformance& c) {
    using nlohmann::ordered_json;
    const Counts n = count(c);
    ordered_json j;
    j["schema"] = "mediasim.check/1";
    j["target"] = c.target;
    j["mode"] = c.mode;
    j["started_at"] = c.started_at;
    j["command_line"] = c.command_line;
    j["duration_seconds"] = c.duration_seconds;
    j["passed"] = n.must_failed == 0;
    j["counts"] = {{"pass", n.pass},
                   {"fail", n.fail},
                   {"skip", n.skip},
                   {"must_failed", n.must_failed},
                   {"should_failed", n.should_failed}};
    ordered_json cases = ordered_json::array();
    for (const auto& k : c.cases)
        cases.push_back({{"id", k.id},
                         {"group", k.group},
                         {"title", k.title},
                         {"spec", k.spec},
                         {"severity", k.severity},
                         {"result", to_string(k.status)},
                         {"evidence", k.evidence}});
    j["cases"] = std::move(cases);
    return j.dump(2) + "\n";
}

std::string junit_xml(const Conformance& c, std::string_view hostname) {
    const auto esc = [](std::string_view s) { return core::xml_escape(s); };
    // Groups in catalogue order.
    std::vector<std::string> groups;
    std::map<std::string, std::vector<const CaseResult*>> by_group;
    for (const auto& k : c.cases) {
        if (!by_group.contains(k.group)) groups.push_back(k.group);
        by_group[k.group].push_back(&k);
    }
    const Counts all = count(c);
    std::string x = R"(<?xml version="1.0" encoding="UTF-8"?>)"
                    "\n";
    x += fmt::format(
        "<testsuites name=\"mediasim check\" tests=\"{}\" failures=\"{}\" errors=\"0\" "
        "skipped=\"{}\" time=\"{:.3f}\">\n",
        c.cases.size(), all.fail, all.skip, c.duration_seconds);
    int id = 0;
    for (const auto& g : groups) {
        const auto& cases = by_group[g];
        int failures = 0, skipped = 0;
        for (const auto* k : cases) {
            failures += k->status == CaseStatus::fail;
            skipped += k->status == CaseStatus::skip;
        }
        x += fmt::format(
            "  <testsuite name=\"mediasim.check.{}\" package=\"mediasim.check\" id=\"{}\" "
            "tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"0\"{} "
            "hostname=\"{}\">\n",
            esc(g), id++, cases.size(), failures, skipped,
            c.started_at.size() >= 19
                ? fmt::format(" timestamp=\"{}\"", esc(c.started_at.substr(0, 19)))
                : std::string(),
            esc(hostname.empty() ? "localhost" : hostname));
        x += "    <properties>\n";
        x += fmt::format("      <property name=\"target\" value=\"{}\"/>\n", esc(c.target));
        x += fmt::format("      <property name=\"mode\" value=\"{}\"/>\n", esc(c.mode));
        x += "    </properties>\n";
        for (const auto* k : cases) {
            x += fmt::format(
                "    <testcase name=\"{}: {}\" classname=\"mediasim.check.{}\" "
                "time=\"0\"",
                esc(k->id), esc(k->title), esc(g));
            switch (k->status) {
                case CaseStatus::pass:
                    x += ">\n";
                    x += fmt::format("      <system-out>{} ({}, {})</system-out>\n",
                                     esc(k->evidence), esc(k->severity), esc(k->spec));
                    break;
                case CaseStatus::skip:
                    x += fmt::format(">\n      <skipped message=\"{}\"/>\n", esc(k->evidence));
                    break;
                case CaseStatus::fail:
                    x += fmt::format(
                        ">\n      <failure message=\"[{}] {}\" type=\"{}\">{}\nspec: {} of "
                        "twilio-media-streams.md</failure>\n",
                        esc(k->severity), esc(k->evidence), esc(k->severity), esc(k->evidence),
                        esc(k->spec));
                    break;
            }
            x += "    </testcase>\n";
        }
        x += "    <system-out></system-out>\n    <system-err></system-err>\n";
        x += "  </testsuite>\n";
    }
    x += "</testsuites>\n";
    return x;
}

std::string conformance_table(const Conformance& c) {
    std::string t;
    std::size_t width = 0;
    for (const auto& k : c.cases) width = std::max(width, k.id.size());
    for (const auto& k : c.cases) {
        const char* r = k.status == CaseStatus::pass   ? "PASS"
                        : k.status == CaseStatus::skip ? "skip"
                        : k.severity == "must"         ? "FAIL"
                                                       : "WARN";
        t += fmt::format("{:<4}  {:<6}  {:<{}}  {}\n", r, k.severity, k.id, width, k.title);
        if (k.status != CaseStatus::pass && !k.evidence.empty())
            t += fmt::format("{:>14}  {:<{}}  {}\n", "", "", width,
                             (k.status == CaseStatus::skip ? "skipped: " : "") + k.evidence);
    }
    const Counts n = count(c);
    t += fmt::format("\n{} cases: {} passed, {} failed ({} must, {} should), {} skipped — {}\n",
                     c.cases.size(), n.pass, n.fail, n.must_failed, n.should_failed, n.skip,
                     n.must_failed == 0 ? "conformant (every must case passed)" : "NOT conformant");
    return t;
}

}  // namespace mediasim::reports
