#include "reports/capacity.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "reports/html.hpp"

namespace mediasim::reports {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::string fmt_value(double v, std::string_view unit) {
    const double a = std::abs(v);
    const char* sep = unit == "%" ? "" : " ";
    if (a >= 100) return fmt::format("{:.0f}{}{}", v, sep, unit);
    if (a >= 10) return fmt::format("{:.1f}{}{}", v, sep, unit);
    return fmt::format("{:.2f}{}{}", v, sep, unit);
}

std::uint64_t u64(const json& o, const char* k) {
    return o.contains(k) && o[k].is_number_unsigned() ? o[k].get<std::uint64_t>() : 0;
}

// The clauses a step broke, as "pacing_p99<2ms (2.31 ms)".
std::string broken_list(const Slo& slo, const SloEvaluation& ev) {
    std::string out;
    for (std::size_t i = 0; i < slo.clauses.size() && i < ev.checks.size(); ++i) {
        if (ev.checks[i].held) continue;
        if (!out.empty()) out += ", ";
        const auto& v = ev.checks[i].value;
        out += fmt::format("{} ({})", slo.clauses[i].text,
                           v ? fmt_value(*v, slo.clauses[i].unit) : "not measured");
    }
    return out;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

core::Result<CapacityResult> find_capacity(
    const CapacityPlan& plan, const Slo& slo, const StepRunner& run_step,
    const std::function<void(const CapacityResult&)>& after_step) {
    if (plan.start < 1 || plan.step < 1 || plan.max < plan.start)
        return core::make_error(fmt::format(
            "steps: need 1 <= start <= max and step >= 1 (got start {}, step {}, max {})",
            plan.start, plan.step, plan.max));
    CapacityResult r;
    r.plan = plan;
    r.slo = slo;
    for (long long c = plan.start; c <= plan.max; c += plan.step) {
        const int n = static_cast<int>(c);
        auto run = run_step(n);
        if (!run) return run.error();
        json s = json::parse(run->summary_json, nullptr, false);
        auto ev = evaluate_slo(slo, run->summary_json);
        if (!ev) return ev.error();
        CapacityStep st;
        st.concurrency = n;
        st.dir = run->dir;
        const json calls = s.value("calls", json::object());
        st.started = u64(calls, "started");
        st.completed = u64(calls, "completed");
        st.failed = u64(calls, "failed");
        st.expectations_failed = u64(calls, "expectations_failed");
        st.duration_seconds = s.value("duration_seconds", 0.0);
        if (r.plan.started_at.empty()) r.plan.started_at = s.value("started_at", std::string());
        st.evaluation = std::move(*ev);
        const bool held = st.evaluation.held;
        r.steps.push_back(std::move(st));
        if (held)
            r.capacity = n;
        else
            r.broken_at = n;
        if (after_step) after_step(r);
        if (!held) break;
    }
    return r;
}

std::string capacity_json(const CapacityResult& r) {
    ordered_json j;
    j["schema"] = "mediasim.capacity/1";
    j["scenario"] = r.plan.scenario;
    j["target"] = r.plan.target;
    j["command_line"] = r.plan.command_line;
    j["started_at"] = r.plan.started_at;
    j["slo"] = r.slo.text;
    ordered_json slos = ordered_json::array();
    for (const auto& c : r.slo.clauses) {
        ordered_json o;
        o["text"] = c.text;
        o["metric"] = c.metric;
        if (!c.rate()) o["stat"] = c.stat;
        o["op"] = c.inclusive ? "<=" : "<";
        o["limit"] = c.limit;
        o["unit"] = c.unit;
        slos.push_back(o);
    }
    j["objectives"] = slos;
    j["plan"] = {{"start", r.plan.start},
                 {"step", r.plan.step},
                 {"max", r.plan.max},
                 {"hold_seconds", r.plan.hold_seconds}};
    ordered_json steps = ordered_json::array();
    for (const auto& st : r.steps) {
        ordered_json o;
        o["concurrency"] = st.concurrency;
        o["dir"] = st.dir;
        o["calls"] = {{"started", st.started},
                      {"completed", st.completed},
                      {"failed", st.failed},
                      {"expectations_failed", st.expectations_failed}};
        o["duration_seconds"] = st.duration_seconds;
        o["held"] = st.evaluation.held;
        ordered_json checks = ordered_json::array();
        for (std::size_t i = 0; i < st.evaluation.checks.size(); ++i) {
            const auto& k = st.evaluation.checks[i];
            ordered_json c;
            c["objective"] = r.slo.clauses[i].text;
            c["value"] = k.value ? ordered_json(*k.value) : ordered_json(nullptr);
            c["held"] = k.held;
            checks.push_back(c);
        }
        o["checks"] = checks;
        steps.push_back(o);
    }
    j["steps"] = steps;
    j["capacity"] = r.capacity;
    j["broken_at"] = r.broken_at > 0 ? ordered_json(r.broken_at) : ordered_json(nullptr);
    return j.dump(2) + "\n";
}

std::string capacity_table_header(const Slo& slo) {
    std::string h = fmt::format("{:>11} {:>7} {:>7}", "concurrency", "calls", "failed");
    for (const auto& c : slo.clauses)
        h += fmt::format(" {:>{}}", c.text, std::max<std::size_t>(12, c.text.size()));
    return h + "  result\n";
}

std::string capacity_table_row(const Slo& slo, const CapacityStep& st) {
    std::string row = fmt::format("{:>11} {:>7} {:>7}", st.concurrency, st.started, st.failed);
    for (std::size_t i = 0; i < slo.clauses.size(); ++i) {
        const auto& c = slo.clauses[i];
        const auto& k = st.evaluation.checks[i];
        std::string v = k.value ? fmt_value(*k.value, c.unit) : "-";
        if (!k.held) v += "!";
        row += fmt::format(" {:>{}}", v, std::max<std::size_t>(12, c.text.size()));
    }
    return row + (st.evaluation.held ? "  held\n" : "  BROKEN\n");
}

std::string capacity_verdict(const CapacityResult& r) {
    std::string out;
    if (r.capacity > 0)
        out = fmt::format("Capacity: {} concurrent call(s) held {}.", r.capacity, r.slo.text);
    else
        out = fmt::format("Capacity: none: the first step ({} call(s) at once) broke {}.",
                          r.plan.start, r.slo.text);
    if (r.broken_at > 0 && !r.steps.empty())
        out += fmt::format(" Broken at {}: {}.", r.broken_at,
                           broken_list(r.slo, r.steps.back().evaluation));
    else if (r.broken_at == 0)
        out += fmt::format(" Every step held, up to --max {}: the capacity may be higher.",
                           r.plan.max);
    return out + "\n";
}

core::Result<std::string> render_capacity_report(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() ||
        j.value("schema", std::string()) != "mediasim.capacity/1" || !j.contains("steps") ||
        !j["steps"].is_array() || !j.contains("objectives") || !j["objectives"].is_array())
        return core::make_error(
            "capacity.json: not a mediasim capacity result (expected schema "
            "mediasim.capacity/1)");
    const json& steps = j["steps"];
    const json& objectives = j["objectives"];
    const int capacity = j.value("capacity", 0);
    const bool broken = j.contains("broken_at") && j["broken_at"].is_number();

    std::string h = html_page_start(
        fmt::format("Mediasim capacity: {}", j.value("scenario", std::string("run"))));
    h += fmt::format("<h1>Mediasim capacity: {}</h1>\n",
                     html_escape(j.value("scenario", std::string())));
    h += fmt::format(
        "<p><span class=\"badge {}\" id=\"verdict\">{}</span> target <code>{}</code>, started "
        "{}</p>\n",
        capacity > 0 ? "pass" : "fail",
        capacity > 0
            ? fmt::format("capacity {} concurrent call{}", capacity, capacity == 1 ? "" : "s")
            : std::string("no step held"),
        html_escape(j.value("target", std::string())),
        html_escape(j.value("started_at", std::string())));
    h += fmt::format("<p>SLO <code>{}</code>. ", html_escape(j.value("slo", std::string())));
    if (broken)
        h += fmt::format(
            "The step at {} concurrent calls broke it; the largest concurrency that "
            "held is {}.</p>\n",
            j["broken_at"].get<int>(), capacity);
    else
        h += fmt::format("Every step held, up to the limit of {} concurrent calls.</p>\n",
                         j.value("plan", json::object()).value("max", 0));

    // One chart per objective: the value at each step and the limit.
    h += "<h2 id=\"charts\">SLO metrics against concurrency</h2>\n";
    for (std::size_t i = 0; i < objectives.size(); ++i) {
        const json& o = objectives[i];
        const std::string unit = o.value("unit", std::string());
        Series measured{o.value("text", std::string()), {}};
        double cmin = 0, cmax = 0;
        for (const auto& st : steps) {
            const double c = st.value("concurrency", 0.0);
            if (cmin == 0 || c < cmin) cmin = c;
            cmax = std::max(cmax, c);
            const json checks = st.value("checks", json::array());
            if (i < checks.size() && checks[i].contains("value") && checks[i]["value"].is_number())
                measured.points.emplace_back(c, checks[i]["value"].get<double>());
        }
        Series limit{fmt::format("limit {} {:g}{}{}", o.value("op", std::string("<")),
                                 o.value("limit", 0.0), unit == "%" ? "" : " ", unit),
                     {}};
        if (!steps.empty()) {
            limit.points.emplace_back(cmin, o.value("limit", 0.0));
            limit.points.emplace_back(cmax, o.value("limit", 0.0));
        }
        const std::string what =
            o.contains("stat")
                ? fmt::format("{} {}", o.value("metric", std::string()),
                              o.value("stat", std::string()))
                : fmt::format("{} (% of calls started)", o.value("metric", std::string()));
        h += svg_line_chart({measured, limit}, {fmt::format("{} against concurrency", what),
                                                "concurrent calls", unit});
    }

    // The step results.
    h += "<h2 id=\"steps\">Steps</h2>\n<table id=\"step-table\">\n<tr><th>concurrent calls</th>"
         "<th>calls</th><th>failed</th>";
    for (const auto& o : objectives)
        h += fmt::format("<th>{}</th>", html_escape(o.value("text", std::string())));
    h += "<th>result</th><th>report</th></tr>\n";
    for (const auto& st : steps) {
        const json calls = st.value("calls", json::object());
        h += fmt::format(
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td "
            "class=\"n\">{}</td>",
            st.value("concurrency", 0), u64(calls, "started"), u64(calls, "failed"));
        const json checks = st.value("checks", json::array());
        for (std::size_t i = 0; i < objectives.size(); ++i) {
            const bool has =
                i < checks.size() && checks[i].contains("value") && checks[i]["value"].is_number();
            const bool held = i < checks.size() && checks[i].value("held", false);
            h +=
                fmt::format("<td class=\"n{}\">{}</td>", held ? "" : " broken",
                            has ? html_escape(fmt_value(checks[i]["value"].get<double>(),
                                                        objectives[i].value("unit", std::string())))
                                : std::string("not measured"));
        }
        const bool held = st.value("held", false);
        const std::string dir = st.value("dir", std::string());
        h += fmt::format(
            "<td><span class=\"badge {}\">{}</span></td><td>{}</td></tr>\n", held ? "pass" : "fail",
            held ? "held" : "broken",
            dir.empty() ? std::string("-")
                        : fmt::format("<a href=\"{0}/report.html\">{0}</a>", html_escape(dir)));
    }
    h += "</table>\n";

    // Settings.
    const json plan = j.value("plan", json::object());
    h += "<h2 id=\"settings\">Settings</h2>\n<table>\n";
    h += fmt::format("<tr><th>command line</th><td><code>{}</code></td></tr>\n",
                     html_escape(j.value("command_line", std::string())));
    h += fmt::format(
        "<tr><th>steps</th><td>from {} by {} up to {} concurrent calls, each held "
        "{:g} s</td></tr>\n",
        plan.value("start", 0), plan.value("step", 0), plan.value("max", 0),
        plan.value("hold_seconds", 0.0));
    h += "</table>\n<p class=\"muted\">Each step is a run of the scenario at that concurrency "
         "(its own report, summary.json and HdrHistogram logs in its directory); the search "
         "stops at the first step that breaks an objective. Raw data: capacity.json.</p>\n";
    h += "</body>\n</html>\n";
    return h;
}

core::Result<fs::path> write_capacity_report(const fs::path& dir) {
    const fs::path in = dir / "capacity.json";
    if (!fs::exists(in)) return core::make_error(fmt::format("{}: not found", in.string()));
    auto html = render_capacity_report(read_text(in));
    if (!html) return core::make_error(fmt::format("{}: {}", in.string(), html.error().message));
    const fs::path out = dir / "report.html";
    std::ofstream f(out, std::ios::binary);
    f << *html;
    if (!f) return core::make_error(fmt::format("{}: cannot write", out.string()));
    return out;
}

}  // namespace mediasim::reports
