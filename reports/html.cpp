#include "reports/html.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/escape.hpp"
#include "core/histogram.hpp"

namespace mediasim::reports {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                    "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// x on HdrHistogram's percentile axis: log10(1 / (1 - p)), so 90% → 1, 99% → 2, 99.9% → 3.
double percentile_axis(double p) {
    const double q = std::min(p, 99.9999) / 100.0;
    return std::log10(1.0 / (1.0 - q));
}

double nice_step(double range, int target_ticks) {
    if (range <= 0) return 1;
    const double raw = range / target_ticks;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (raw <= m * mag) return m * mag;
    return 10 * mag;
}

std::string fmt_num(double v) {
    if (v == std::floor(v) && std::fabs(v) < 1e12) return fmt::format("{:.0f}", v);
    if (std::fabs(v) >= 10) return fmt::format("{:.1f}", v);
    return fmt::format("{:.3g}", v);
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string ms(const json& us) {
    if (!us.is_number()) return "-";
    const double v = us.get<double>() / 1000.0;
    if (v >= 100) return fmt::format("{:.0f}", v);
    if (v >= 10) return fmt::format("{:.1f}", v);
    return fmt::format("{:.2f}", v);
}

struct MetricInfo {
    const char* key;
    const char* label;
    int chart;  // 0: latencies, 1: timing quality
};
constexpr MetricInfo kMetrics[] = {
    {"response_latency", "response latency", 0}, {"webhook_latency", "webhook latency", 0},
    {"connect_time", "stream connect", 0},       {"mark_rtt", "mark round trip", 0},
    {"clear_latency", "barge-in → clear", 0},    {"pacing_error", "send pacing error", 1},
    {"jitter", "bot audio jitter", 1},           {"underrun", "bot audio gaps", 1},
    {"leakage", "audio after clear", 1},         {"delivery_delay", "impaired delivery", 1},
};

std::string environment_rows() {
    std::string rows;
    struct utsname u {};
    if (::uname(&u) == 0)
        rows +=
            fmt::format("<tr><th>host</th><td>{} {} {} ({})</td></tr>\n", html_escape(u.sysname),
                        html_escape(u.release), html_escape(u.machine), html_escape(u.nodename));
    std::ifstream cpu("/proc/cpuinfo");
    for (std::string line; std::getline(cpu, line);) {
        if (line.rfind("model name", 0) == 0) {
            const auto c = line.find(':');
            if (c != std::string::npos)
                rows += fmt::format("<tr><th>CPU</th><td>{} × {}</td></tr>\n",
                                    std::thread::hardware_concurrency(),
                                    html_escape(line.substr(c + 2)));
            break;
        }
    }
    return rows;
}

}  // namespace

std::string html_escape(std::string_view text) {
    return core::xml_escape(text);
}

std::string html_page_start(std::string_view title) {
    std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    h += fmt::format("<title>{}</title>\n", html_escape(title));
    h += R"(<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:980px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#2a8a3e}.fail{background:#c0392b}.skip{background:#888}.muted{color:#777}
svg.chart{display:block;margin:10px 0;background:#fff}
svg .plot{fill:#fafafa;stroke:#ccc}svg .grid{stroke:#e4e4e4}svg .tick,svg .legend{font-size:11px;fill:#555}
svg .label{font-size:12px;fill:#333}svg .title{font-size:13px;font-weight:600;fill:#222}svg .empty{fill:#999}
code{background:#f3f3f3;padding:1px 4px;border-radius:3px}td.broken{color:#c0392b;font-weight:600}
</style>
</head>
<body>
)";
    return h;
}

std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& o) {
    const double left = 64, right = 16, top = 28, bottom = 44;
    const double pw = o.width - left - right, ph = o.height - top - bottom;
    double xmin = 1e300, xmax = -1e300, ymax = 0;
    int n_points = 0;
    for (const auto& s : series)
        for (auto [x, y] : s.points) {
            const double xx = o.percentile_x ? percentile_axis(x) : x;
            xmin = std::min(xmin, xx);
            xmax = std::max(xmax, xx);
            ymax = std::max(ymax, y);
            ++n_points;
        }
    std::string svg = fmt::format(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
        "viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\" data-series=\"{}\">\n"
        "<text x=\"{}\" y=\"18\" class=\"title\">{}</text>\n",
        o.width, o.height, o.width, o.height, html_escape(o.title), series.size(), left,
        html_escape(o.title));
    if (n_points == 0) {
        svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"empty\">no data</text>\n</svg>\n",
                           left + pw / 2 - 30, top + ph / 2);
        return svg;
    }
    if (o.percentile_x) {
        xmin = 0;
        xmax = std::max(2.0, std::ceil(xmax));
    } else if (xmax <= xmin) {
        xmax = xmin + 1;
    }
    const double ystep = nice_step(ymax > 0 ? ymax : 1, 5);
    const double ytop = std::max(ystep, std::ceil(ymax / ystep) * ystep);
    auto X = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
    auto Y = [&](double y) { return top + ph - y / ytop * ph; };

    // Axes, grid and ticks.
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"plot\"/>\n",
                       left, top, pw, ph);
    for (double y = 0; y <= ytop + ystep / 2; y += ystep)
        svg += fmt::format(
            "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" class=\"grid\"/>"
            "<text x=\"{3}\" y=\"{4:.1f}\" class=\"tick\" text-anchor=\"end\">{5}</text>\n",
            left, left + pw, Y(y), left - 6, Y(y) + 4, fmt_num(y));
    if (o.percentile_x) {
        static const char* labels[] = {"0%",     "90%",     "99%",     "99.9%",
                                       "99.99%", "99.999%", "99.9999%"};
        for (int i = 0; i <= static_cast<int>(xmax) && i < 7; ++i)
            svg += fmt::format(
                "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" class=\"grid\"/>"
                "<text x=\"{0:.1f}\" y=\"{3}\" class=\"tick\" text-anchor=\"middle\">{4}</text>\n",
                X(i), top, top + ph, top + ph + 16, labels[i]);
    } else {
        const double xstep = nice_step(xmax - xmin, 6);
        for (double x = std::ceil(xmin / xstep) * xstep; x <= xmax + xstep / 1000; x += xstep)
            svg += fmt::format(
                "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" class=\"grid\"/>"
                "<text x=\"{0:.1f}\" y=\"{3}\" class=\"tick\" text-anchor=\"middle\">{4}</text>\n",
                X(x), top, top + ph, top + ph + 16, fmt_num(x));
    }
    svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"label\" text-anchor=\"middle\">{}</text>\n",
                       left + pw / 2, o.height - 6, html_escape(o.x_label));
    svg += fmt::format(
        "<text x=\"14\" y=\"{0}\" class=\"label\" text-anchor=\"middle\" "
        "transform=\"rotate(-90 14 {0})\">{1}</text>\n",
        top + ph / 2, html_escape(o.y_label));

    // Lines and legend.
    for (std::size_t i = 0; i < series.size(); ++i) {
        const auto& s = series[i];
        const char* colour = kColours[i % std::size(kColours)];
        std::string pts;
        for (auto [x, y] : s.points)
            pts += fmt::format("{:.1f},{:.1f} ", X(o.percentile_x ? percentile_axis(x) : x), Y(y));
        if (s.points.size() == 1) {
            auto [x, y] = s.points[0];
            svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n",
                               X(o.percentile_x ? percentile_axis(x) : x), Y(y), colour);
        }
        svg += fmt::format(
            "<polyline class=\"series\" data-name=\"{}\" fill=\"none\" stroke=\"{}\" "
            "stroke-width=\"2\" points=\"{}\"/>\n",
            html_escape(s.name), colour, pts);
        const double lx = left + 10 + static_cast<double>(i % 3) * 200;
        const double ly = top + 14 + static_cast<double>(i / 3) * 16;
        svg += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{}\"/>"
            "<text x=\"{}\" y=\"{}\" class=\"legend\">{}</text>\n",
            lx, ly - 4, colour, lx + 16, ly + 1, html_escape(s.name));
    }
    svg += "</svg>\n";
    return svg;
}

core::Result<std::string> render_html_report(const fs::path& dir) {
    const fs::path summary_path = dir / "summary.json";
    if (!fs::exists(summary_path))
        return core::make_error(fmt::format("{}: not found (is {} the --out directory of a run?)",
                                            summary_path.string(), dir.string()));
    json s = json::parse(read_file(summary_path), nullptr, false);
    if (s.is_discarded() || !s.is_object() || !s.contains("calls") || !s.contains("metrics"))
        return core::make_error(
            fmt::format("{}: not a mediasim summary (expected schema mediasim.summary/1)",
                        summary_path.string()));
    const json& calls = s["calls"];
    const auto u = [](const json& o, const char* k) -> std::uint64_t {
        return o.contains(k) && o[k].is_number_unsigned() ? o[k].get<std::uint64_t>() : 0;
    };
    const bool pass =
        u(calls, "failed") == 0 && u(calls, "expectations_failed") == 0 && u(calls, "started") > 0;

    std::string h = html_page_start(fmt::format("Mediasim report: {}", s.value("scenario", "run")));
    h += fmt::format("<h1>Mediasim report: {}</h1>\n", html_escape(s.value("scenario", "")));
    h += fmt::format(
        "<p><span class=\"badge {}\" id=\"verdict\">{}</span> target <code>{}</code>, started {}, "
        "{:.1f} s</p>\n",
        pass ? "pass" : "fail", pass ? "PASS" : "FAIL", html_escape(s.value("target", "")),
        html_escape(s.value("started_at", "")), s.value("duration_seconds", 0.0));

    // Summary.
    h += "<h2 id=\"summary\">Summary</h2>\n<table>\n";
    for (const char* k : {"started", "completed", "failed", "expectations_failed"})
        h += fmt::format(
            "<tr><th>calls {}</th><td class=\"n\">{}</td></tr>\n",
            std::string_view(k) == "expectations_failed" ? "with missed expectations" : k,
            u(calls, k));
    if (s.contains("messages"))
        h += fmt::format("<tr><th>messages sent / received</th><td class=\"n\">{} / {}</td></tr>\n",
                         u(s["messages"], "sent"), u(s["messages"], "received"));
    h += "</table>\n";
    h += "<table id=\"metrics\">\n<tr><th>metric</th><th>count</th><th>p50 ms</th><th>p90 "
         "ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\n";
    for (const auto& m : kMetrics) {
        if (!s["metrics"].contains(m.key)) continue;
        const json& v = s["metrics"][m.key];
        if (!v.is_object() || v.value("count", 0) == 0) continue;
        h += fmt::format(
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td "
            "class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td "
            "class=\"n\">{}</td></tr>\n",
            m.label, v.value("count", 0), ms(v.value("p50", json())), ms(v.value("p90", json())),
            ms(v.value("p99", json())), ms(v.value("p99_9", json())), ms(v.value("max", json())));
    }
    h += "</table>\n";

    // Percentile distributions from the interval logs (all intervals added: exact).
    std::vector<Series> dist[2];
    for (const auto& m : kMetrics) {
        std::ifstream in(dir / (std::string(m.key) + ".hlog"));
        if (!in) continue;
        auto log = core::read_histogram_log(in, m.key);
        if (!log)
            return core::make_error(fmt::format("{}.hlog: {}", m.key, log.error().to_string()));
        core::Histogram total;
        for (const auto& iv : *log) total.add(iv.histogram);
        if (total.total_count() == 0) continue;
        Series ser{m.label, {}};
        for (const auto& row : total.percentile_distribution(5))
            ser.points.emplace_back(row.percentile, static_cast<double>(row.value) / 1000.0);
        dist[m.chart].push_back(std::move(ser));
    }
    h += "<h2 id=\"distributions\">Latency distributions</h2>\n";
    h += svg_line_chart(dist[0], {"Latencies by percentile", "percentile", "ms", true});
    h += svg_line_chart(dist[1], {"Timing quality by percentile", "percentile", "ms", true});

    // Time series.
    std::ifstream ts(dir / "timeseries.jsonl");
    if (ts) {
        Series active{"active calls", {}}, rate{"messages/s", {}}, pace{"p99 pacing error", {}},
            resp{"p99 response latency", {}};
        for (std::string line; std::getline(ts, line);) {
            json j = json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.is_object()) continue;
            const double t = j.value("t", 0.0), len = j.value("length", 1.0);
            active.points.emplace_back(t, j.value("active", 0.0));
            if (len > 0)
                rate.points.emplace_back(t,
                                         (j.value("sent", 0.0) + j.value("received", 0.0)) / len);
            const json p = j.value("p99_us", json::object());
            if (p.contains("pacing_error"))
                pace.points.emplace_back(t, p["pacing_error"].get<double>() / 1000.0);
            if (p.contains("response_latency"))
                resp.points.emplace_back(t, p["response_latency"].get<double>() / 1000.0);
        }
        h += "<h2 id=\"timeseries\">Over time</h2>\n";
        h += svg_line_chart({active}, {"Active calls", "seconds since start", "calls"});
        h += svg_line_chart(
            {rate}, {"Messages per second (both directions)", "seconds since start", "messages/s"});
        h += svg_line_chart({pace}, {"p99 send pacing error", "seconds since start", "ms"});
        h += svg_line_chart({resp}, {"p99 response latency", "seconds since start", "ms"});
    }

    // Failures.
    h += "<h2 id=\"failures\">Failures</h2>\n";
    const json by_class = calls.value("failed_by_class", json::object());
    if (by_class.empty() && u(calls, "expectations_failed") == 0) {
        h += "<p class=\"muted\">No call failed and every expectation held.</p>\n";
    } else {
        h += "<table><tr><th>class</th><th>calls</th></tr>\n";
        for (const auto& [k, v] : by_class.items())
            h += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td></tr>\n", html_escape(k),
                             v.dump());
        h += "</table>\n<ul>\n";
        for (const auto& e : s.value("failure_examples", json::array()))
            h += fmt::format("<li>call {} <code>{}</code> ({}): {}</li>\n", e.value("call", 0),
                             html_escape(e.value("call_sid", "")),
                             html_escape(e.value("class", "")), html_escape(e.value("error", "")));
        // Missed expectations, from the per-call lines.
        std::ifstream cl(dir / "calls.jsonl");
        int shown = 0;
        for (std::string line; std::getline(cl, line) && shown < 10;) {
            json j = json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.contains("expectations_failed")) continue;
            for (const auto& x : j["expectations_failed"])
                if (shown++ < 10)
                    h += fmt::format("<li>call {} <code>{}</code>: {}</li>\n", j.value("call", 0),
                                     html_escape(j.value("call_sid", "")),
                                     html_escape(x.is_string() ? x.get<std::string>() : x.dump()));
        }
        h += "</ul>\n";
    }

    // Conformance (mediasim check writes conformance.json next to the summary).
    std::ifstream conf(dir / "conformance.json");
    if (conf) {
        json c = json::parse(conf, nullptr, false);
        if (!c.is_discarded() && c.contains("cases") && c["cases"].is_array()) {
            const json n = c.value("counts", json::object());
            h += "<h2 id=\"conformance\">Conformance</h2>\n";
            h += fmt::format(
                "<p><span class=\"badge {}\" id=\"conformance-verdict\">{}</span> {} passed, {} "
                "failed ({} must, {} should), {} skipped. Cases: docs/conformance.md.</p>\n",
                c.value("passed", false) ? "pass" : "fail",
                c.value("passed", false) ? "CONFORMANT" : "NOT CONFORMANT", n.value("pass", 0),
                n.value("fail", 0), n.value("must_failed", 0), n.value("should_failed", 0),
                n.value("skip", 0));
            h += "<table id=\"conformance-cases\"><tr><th>case</th><th>severity</th><th>result"
                 "</th><th>title</th><th>spec</th><th>evidence</th></tr>\n";
            for (const auto& k : c["cases"]) {
                const std::string result = k.value("result", "");
                const std::string sev = k.value("severity", "");
                const char* cls = result == "pass" ? "pass" : result == "skip" ? "skip" : "fail";
                h += fmt::format(
                    "<tr><td><code>{}</code></td><td>{}</td><td><span class=\"badge {}\">{}"
                    "</span></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    html_escape(k.value("id", "")), html_escape(sev), cls,
                    result == "fail" && sev == "should" ? "warn" : html_escape(result),
                    html_escape(k.value("title", "")), html_escape(k.value("spec", "")),
                    html_escape(k.value("evidence", "")));
            }
            h += "</table>\n";
        }
    }

    // Settings and environment.
    h += "<h2 id=\"settings\">Settings and environment</h2>\n<table>\n";
    h += fmt::format("<tr><th>command line</th><td><code>{}</code></td></tr>\n",
                     html_escape(s.value("command_line", "")));
    h += fmt::format("<tr><th>scenario</th><td>{}</td></tr>\n",
                     html_escape(s.value("scenario", "")));
    if (s.contains("shard") && s["shard"].is_object())
        h += fmt::format("<tr><th>shard</th><td>{} of {}</td></tr>\n", s["shard"].value("index", 0),
                         s["shard"].value("count", 1));
    if (s.contains("mediasim_version"))
        h += fmt::format("<tr><th>mediasim</th><td>{}</td></tr>\n",
                         html_escape(s["mediasim_version"].get<std::string>()));
    h += environment_rows();
    h += "</table>\n<p class=\"muted\">Values are in milliseconds; latencies count from when "
         "things were due (no coordinated omission). Raw data: summary.json, timeseries.jsonl, "
         "calls.jsonl and the HdrHistogram interval logs (*.hlog) next to this file.</p>\n";
    h += "</body>\n</html>\n";
    return h;
}

core::Result<fs::path> write_html_report(const fs::path& dir) {
    auto html = render_html_report(dir);
    if (!html) return html.error();
    const fs::path out = dir / "report.html";
    std::ofstream f(out, std::ios::binary);
    f << *html;
    if (!f) return core::make_error(fmt::format("{}: cannot write", out.string()));
    return out;
}

}  // namespace mediasim::reports
