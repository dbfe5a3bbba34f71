#include "reports/slo.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace mediasim::reports {

namespace {

using nlohmann::json;

constexpr const char* kRates[] = {"failed", "expectations_failed"};

// Statistic suffixes, longest first so "_p99.9" is not read as "_p99".
struct Stat {
    const char* suffix;
    const char* field;
};
constexpr Stat kStats[] = {{"_p99.9", "p99_9"}, {"_p99_9", "p99_9"}, {"_p50", "p50"},
                           {"_p90", "p90"},     {"_p99", "p99"},     {"_max", "max"}};

struct Unit {
    const char* name;
    double us;  // microseconds in one of this unit (a divisor: 1700000 / 1e6 == 1.7 exactly)
};
constexpr Unit kUnits[] = {{"us", 1.0}, {"ms", 1e3}, {"s", 1e6}};

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

core::Diagnostic at(std::size_t offset, std::string message) {
    core::Diagnostic d = core::make_error(std::move(message));
    d.column = static_cast<int>(offset) + 1;
    return d;
}

std::string metric_list(const std::vector<std::string>& metrics) {
    std::string out;
    for (const auto& m : metrics) {
        if (!out.empty()) out += ", ";
        out += m;
    }
    return out + ", failed, expectations_failed";
}

// The metric a name means: its full name, or the first word of exactly one metric.
std::string resolve_metric(std::string_view name, const std::vector<std::string>& metrics) {
    for (const auto& m : metrics)
        if (m == name) return m;
    std::string found;
    for (const auto& m : metrics)
        if (m.size() > name.size() && m.compare(0, name.size(), name) == 0 &&
            m[name.size()] == '_') {
            if (!found.empty()) return {};  // ambiguous
            found = m;
        }
    return found;
}

// One clause: text[b, e) of the whole expression (offsets for columns).
core::Result<SloClause> parse_clause(std::string_view all, std::size_t b, std::size_t e,
                                     const std::vector<std::string>& metrics) {
    while (b < e && is_space(all[b])) ++b;
    while (e > b && is_space(all[e - 1])) --e;
    if (b == e) return at(b, "empty objective (expected e.g. response_p99<1500ms)");
    SloClause c;
    c.text = std::string(all.substr(b, e - b));

    // METRIC_STAT, up to the operator.
    std::size_t op = b;
    while (op < e && all[op] != '<' && all[op] != '>' && all[op] != '=' && !is_space(all[op])) ++op;
    const std::string_view lhs = all.substr(b, op - b);
    std::size_t p = op;
    while (p < e && is_space(all[p])) ++p;
    if (lhs.empty()) return at(b, "expected a metric before the operator (e.g. response_p99)");
    if (p == e || (all[p] != '<' && all[p] != '>' && all[p] != '='))
        return at(p, fmt::format("expected < or <= after \"{}\"", lhs));
    if (all[p] != '<')
        return at(p, "an objective is an upper limit: use < or <= (e.g. pacing_p99<2ms)");
    c.inclusive = p + 1 < e && all[p + 1] == '=';
    p += c.inclusive ? 2 : 1;

    bool rate = false;
    for (const char* r : kRates)
        if (lhs == r) {
            rate = true;
            c.metric = r;
        }
    if (!rate) {
        std::string_view name;
        for (const auto& s : kStats) {
            const std::string_view suf = s.suffix;
            if (lhs.size() > suf.size() && lhs.substr(lhs.size() - suf.size()) == suf) {
                name = lhs.substr(0, lhs.size() - suf.size());
                c.stat = s.field;
                break;
            }
        }
        if (c.stat.empty()) {
            if (!resolve_metric(lhs, metrics).empty())
                return at(b + lhs.size(),
                          fmt::format("\"{}\" needs a statistic: {}_p50, _p90, _p99, _p99.9 or "
                                      "_max",
                                      lhs, lhs));
            return at(b, fmt::format("\"{}\" is not METRIC_STAT (e.g. response_p99) nor a rate "
                                     "(failed); metrics: {}",
                                     lhs, metric_list(metrics)));
        }
        c.metric = resolve_metric(name, metrics);
        if (c.metric.empty())
            return at(
                b, fmt::format("unknown metric \"{}\"; metrics: {}", name, metric_list(metrics)));
    }

    // LIMIT and its unit.
    while (p < e && is_space(all[p])) ++p;
    const char* num_begin = all.data() + p;
    double v = 0;
    auto [num_end, ec] = std::from_chars(num_begin, all.data() + e, v);
    if (ec != std::errc() || !std::isfinite(v) || v < 0)
        return at(p,
                  fmt::format("expected a non-negative number after \"{}\"", all.substr(b, p - b)));
    c.limit = v;
    std::size_t u = static_cast<std::size_t>(num_end - all.data());
    const std::size_t unit_at = u;
    while (u < e && is_space(all[u])) ++u;
    const std::string_view unit = all.substr(u, e - u);
    if (rate) {
        if (unit != "%")
            return at(unit_at,
                      fmt::format("{} is a percentage of the calls started: write it with % "
                                  "(e.g. {}<0.1%)",
                                  c.metric, c.metric));
        c.unit = "%";
        return c;
    }
    for (const auto& un : kUnits)
        if (unit == un.name) c.unit = un.name;
    if (unit == "µs") c.unit = "us";
    if (c.unit.empty())
        return at(unit_at, unit.empty() ? std::string("a time needs a unit: us, ms or s (e.g. "
                                                      "1500ms)")
                                        : fmt::format("unknown unit \"{}\" (expected us, ms or "
                                                      "s)",
                                                      unit));
    return c;
}

}  // namespace

double SloClause::us_per_unit() const {
    for (const auto& u : kUnits)
        if (unit == u.name) return u.us;
    return 1.0;  // a rate: percent as computed
}

std::string SloClause::name() const {
    if (rate()) return metric;
    return fmt::format("{} {}", metric, stat == "p99_9" ? "p99.9" : stat);
}

core::Result<Slo> parse_slo(std::string_view text, const std::vector<std::string>& metrics) {
    Slo slo;
    slo.text = std::string(text);
    std::size_t b = 0;
    while (true) {
        std::size_t e = text.find(',', b);
        if (e == std::string_view::npos) e = text.size();
        auto c = parse_clause(text, b, e, metrics);
        if (!c) return c.error();
        slo.clauses.push_back(std::move(*c));
        if (e == text.size()) break;
        b = e + 1;
    }
    return slo;
}

std::string format_slo_error(std::string_view text, const core::Diagnostic& error) {
    std::string out = error.column > 0 ? fmt::format("column {}: {}\n", error.column, error.message)
                                       : error.message + "\n";
    out += fmt::format("  {}\n", text);
    if (error.column > 0) out += fmt::format("  {}^\n", std::string(error.column - 1, ' '));
    return out;
}

core::Result<SloEvaluation> evaluate_slo(const Slo& slo, std::string_view summary_json) {
    json s = json::parse(summary_json, nullptr, false);
    if (s.is_discarded() || !s.is_object() || !s.contains("calls") || !s["calls"].is_object() ||
        !s.contains("metrics") || !s["metrics"].is_object())
        return core::make_error("summary.json: not a mediasim summary (schema mediasim.summary/1)");
    const json& calls = s["calls"];
    const double started = calls.value("started", 0.0);
    SloEvaluation ev;
    ev.held = true;
    for (const auto& c : slo.clauses) {
        SloCheck k;
        if (c.rate()) {
            if (started > 0) k.value = calls.value(c.metric, 0.0) * 100.0 / started;
        } else if (s["metrics"].contains(c.metric)) {
            const json& m = s["metrics"][c.metric];
            if (m.is_object() && m.value("count", 0) > 0 && m.contains(c.stat) &&
                m[c.stat].is_number())
                k.value = m[c.stat].get<double>() / c.us_per_unit();
        }
        k.held = k.value && (c.inclusive ? *k.value <= c.limit : *k.value < c.limit);
        ev.held = ev.held && k.held;
        ev.checks.push_back(k);
    }
    return ev;
}

}  // namespace mediasim::reports
