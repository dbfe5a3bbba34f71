#include "reports/compare.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mediasim::reports {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

core::Result<json> parse_summary(std::string_view text, std::string_view name) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return core::make_error(fmt::format("{}: not valid JSON", name));
    if (j.value("schema", std::string()) != "mediasim.summary/1")
        return core::make_error(fmt::format("{}: schema: expected \"mediasim.summary/1\"", name));
    for (const char* key : {"calls", "metrics"})
        if (!j.contains(key) || !j[key].is_object())
            return core::make_error(fmt::format("{}: {}: missing or not an object", name, key));
    return j;
}

double change(double base, double now) {
    if (base == now) return 0;
    if (base == 0) return std::numeric_limits<double>::infinity();
    return (now - base) / base * 100.0;
}

double failed_rate(const json& s) {
    const auto& c = s["calls"];
    const double started = c.value("started", 0.0);
    return started > 0 ? c.value("failed", 0.0) / started * 100.0 : 0.0;
}

core::Result<std::string> read_summary(const fs::path& p) {
    if (!fs::exists(p))
        return core::make_error(fmt::format(
            "{}: not found (expected a run directory or its summary.json)", p.string()));
    const fs::path f = fs::is_directory(p) ? p / "summary.json" : p;
    std::ifstream in(f);
    if (!in) return core::make_error(fmt::format("{}: cannot read", f.string()));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

core::Result<double> parse_percent(std::string_view text) {
    std::string_view t = text;
    if (!t.empty() && t.back() == '%') t.remove_suffix(1);
    double v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size() || !(v >= 0) ||
        !std::isfinite(v))
        return core::make_error(
            fmt::format("'{}': expected a non-negative percentage such as 10%", text));
    return v / 100.0;
}

core::Result<Comparison> compare_summaries(std::string_view base_json, std::string_view new_json,
                                           double max_regression, std::string_view base_name,
                                           std::string_view new_name) {
    auto base = parse_summary(base_json, base_name);
    if (!base) return base.error();
    auto now = parse_summary(new_json, new_name);
    if (!now) return now.error();
    Comparison c;
    const double factor = 1.0 + max_regression;
    for (const auto& [name, bm] : (*base)["metrics"].items()) {
        if (!(*now)["metrics"].contains(name)) continue;
        const json& nm = (*now)["metrics"][name];
        if (!bm.is_object() || !nm.is_object())
            return core::make_error(fmt::format("metrics.{}: not an object", name));
        if (bm.value("count", 0) == 0 && nm.value("count", 0) == 0) continue;
        for (const char* stat : {"p50", "p90", "p99", "max"}) {
            for (const auto& [m, file] : {std::pair<const json*, std::string_view>{&bm, base_name},
                                          std::pair<const json*, std::string_view>{&nm, new_name}})
                if (!m->contains(stat) || !(*m)[stat].is_number())
                    return core::make_error(fmt::format(
                        "{}: metrics.{}.{}: missing or not a number", file, name, stat));
            MetricDelta d;
            d.metric = name;
            d.stat = stat;
            d.base = bm[stat].get<double>() / 1000.0;
            d.now = nm[stat].get<double>() / 1000.0;
            d.change_percent = change(d.base, d.now);
            // Only a p99 measured in both runs can regress (a metric new in NEW is no regression).
            d.regressed = std::string_view(stat) == "p99" && bm.value("count", 0) > 0 &&
                          nm.value("count", 0) > 0 && d.now > d.base * factor;
            c.regressed = c.regressed || d.regressed;
            c.rows.push_back(d);
        }
    }
    MetricDelta f;
    f.metric = "calls";
    f.stat = "failed_rate";
    f.base = failed_rate(*base);
    f.now = failed_rate(*now);
    f.change_percent = change(f.base, f.now);
    f.regressed = f.now > f.base * factor;
    c.regressed = c.regressed || f.regressed;
    c.rows.push_back(f);
    return c;
}

core::Result<Comparison> compare_runs(const fs::path& base, const fs::path& now,
                                      double max_regression) {
    auto b = read_summary(base);
    if (!b) return b.error();
    auto n = read_summary(now);
    if (!n) return n.error();
    const auto name = [](const fs::path& p) {
        return (fs::is_directory(p) ? p / "summary.json" : p).string();
    };
    return compare_summaries(*b, *n, max_regression, name(base), name(now));
}

std::string format_comparison(const Comparison& c, double max_regression) {
    std::string out = fmt::format("{:<18} {:<11} {:>12} {:>12} {:>9}\n", "metric", "stat", "base",
                                  "new", "change");
    for (const auto& r : c.rows) {
        const bool rate = r.stat == "failed_rate";
        const std::string unit = rate ? "%" : " ms";
        std::string ch =
            std::isinf(r.change_percent) ? "+inf%" : fmt::format("{:+.1f}%", r.change_percent);
        out +=
            fmt::format("{:<18} {:<11} {:>12} {:>12} {:>9}{}\n", r.metric, r.stat,
                        fmt::format("{:.3f}{}", r.base, unit), fmt::format("{:.3f}{}", r.now, unit),
                        ch, r.regressed ? "  REGRESSION" : "");
    }
    out += c.regressed ? fmt::format("regression beyond {:g}%\n", max_regression * 100)
                       : fmt::format("no regression beyond {:g}%\n", max_regression * 100);
    return out;
}

}  // namespace mediasim::reports
