#include "reports/merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "reports/html.hpp"
#include "reports/markdown.hpp"
#include "reports/summary_fields.hpp"

namespace mediasim::reports {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

struct Input {
    fs::path dir;
    ordered_json summary;
    double start_epoch = 0;  // from the interval logs' #[StartTime: ...]; 0 when unknown
    bool have_start = false;
    std::map<std::string, std::vector<core::LogInterval>> logs;
};

core::Result<std::string> read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return core::make_error(fmt::format("{}: cannot read", p.string()));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// "#[StartTime: 1700000000.000 (seconds since epoch), ...]" → 1700000000.0
bool parse_start_time(const std::string& text, double* out) {
    static const std::string kKey = "#[StartTime: ";
    const auto p = text.find(kKey);
    if (p == std::string::npos) return false;
    const char* b = text.c_str() + p + kKey.size();
    char* e = nullptr;
    const double v = std::strtod(b, &e);
    if (e == b) return false;
    *out = v;
    return true;
}

std::uint64_t u64(const ordered_json& o, const char* key) {
    return o.is_object() && o.contains(key) && o[key].is_number_unsigned()
               ? o[key].get<std::uint64_t>()
               : 0;
}

core::Result<Input> load_input(const fs::path& dir) {
    Input in;
    in.dir = dir;
    if (!fs::is_directory(dir))
        return core::make_error(
            fmt::format("{}: not a directory (expected the --out directory "
                        "of a mediasim run)",
                        dir.string()));
    const fs::path sp = dir / "summary.json";
    if (!fs::exists(sp))
        return core::make_error(fmt::format("{}: not found (is {} the --out directory of a run?)",
                                            sp.string(), dir.string()));
    auto text = read_text(sp);
    if (!text) return text.error();
    in.summary = ordered_json::parse(*text, nullptr, false);
    if (in.summary.is_discarded() || !in.summary.is_object())
        return core::make_error(fmt::format("{}: not valid JSON", sp.string()));
    if (in.summary.value("schema", std::string()) != "mediasim.summary/1")
        return core::make_error(
            fmt::format("{}: schema: expected \"mediasim.summary/1\"", sp.string()));
    for (const char* key : {"calls", "messages", "metrics"})
        if (!in.summary.contains(key) || !in.summary[key].is_object())
            return core::make_error(
                fmt::format("{}: {}: missing or not an object", sp.string(), key));
    for (const auto& [name, m] : in.summary["metrics"].items()) {
        const fs::path lp = dir / (name + ".hlog");
        if (!fs::exists(lp)) {
            if (u64(m, "count") > 0)
                return core::make_error(fmt::format(
                    "{}: not found, but summary.json counts {} values of {} (cannot merge "
                    "percentiles without the histogram)",
                    lp.string(), u64(m, "count"), name));
            in.logs[name] = {};
            continue;
        }
        auto lt = read_text(lp);
        if (!lt) return lt.error();
        double st = 0;
        if (parse_start_time(*lt, &st)) {
            if (!in.have_start || st < in.start_epoch) in.start_epoch = st;
            in.have_start = true;
        }
        std::istringstream is(*lt);
        auto log = core::read_histogram_log(is, lp.string());
        if (!log) return log.error();
        core::Histogram sum;
        for (const auto& iv : *log) sum.add(iv.histogram);
        if (sum.total_count() != static_cast<std::int64_t>(u64(m, "count")))
            return core::make_error(fmt::format(
                "{}: holds {} values but {}/summary.json counts {} for {} (incomplete run?)",
                lp.string(), sum.total_count(), dir.string(), u64(m, "count"), name));
        in.logs[name] = std::move(*log);
    }
    return in;
}

struct Bucket {
    double t = 0;
    double length = 0;
    ordered_json counts = ordered_json::object();
    std::map<std::string, core::Histogram> metrics;
};

}  // namespace

core::Result<core::Histogram> histogram_of_log(const fs::path& hlog) {
    std::ifstream in(hlog);
    if (!in) return core::make_error(fmt::format("{}: cannot read", hlog.string()));
    auto log = core::read_histogram_log(in, hlog.string());
    if (!log) return log.error();
    core::Histogram sum;
    for (const auto& iv : *log) sum.add(iv.histogram);
    return sum;
}

core::Result<MergeResult> merge_runs(const std::vector<fs::path>& dirs, const fs::path& out) {
    if (dirs.empty()) return core::make_error("no run directories to merge");
    std::vector<Input> inputs;
    for (const auto& d : dirs) {
        auto in = load_input(d);
        if (!in) return in.error();
        inputs.push_back(std::move(*in));
    }
    // The same shard twice would count its calls twice.
    for (std::size_t i = 0; i < inputs.size(); ++i)
        for (std::size_t j = i + 1; j < inputs.size(); ++j) {
            const auto& a = inputs[i].summary;
            const auto& b = inputs[j].summary;
            if (a.contains("shard") && b.contains("shard") && a["shard"] == b["shard"] &&
                u64(a["shard"], "count") > 1)
                return core::make_error(fmt::format(
                    "{} and {} are the same shard ({}/{}): each shard must be merged once",
                    inputs[i].dir.string(), inputs[j].dir.string(), u64(a["shard"], "index"),
                    u64(a["shard"], "count")));
        }
    // A shard left out would leave its calls out: shards of N merge all N of them.
    std::uint64_t n_shards = 0;
    for (const auto& in : inputs)
        if (in.summary.contains("shard") && in.summary["shard"].is_object())
            n_shards = std::max(n_shards, u64(in.summary["shard"], "count"));
    if (n_shards > 1) {
        std::vector<bool> seen(n_shards, false);
        for (const auto& in : inputs) {
            const ordered_json sh = in.summary.value("shard", ordered_json::object());
            if (u64(sh, "count") != n_shards || u64(sh, "index") >= n_shards)
                return core::make_error(
                    fmt::format("{}: shard {}/{} is not one of the {} shards of the other inputs",
                                in.dir.string(), u64(sh, "index"), u64(sh, "count"), n_shards));
            seen[u64(sh, "index")] = true;
        }
        std::string missing;
        for (std::uint64_t i = 0; i < n_shards; ++i)
            if (!seen[i])
                missing += fmt::format("{}{}/{}", missing.empty() ? "" : ", ", i, n_shards);
        if (!missing.empty())
            return core::make_error(fmt::format(
                "shard {} missing: merge the --out directories of all {} shards of the run",
                missing, n_shards));
    }

    double base = std::numeric_limits<double>::infinity();
    for (const auto& in : inputs)
        if (in.have_start) base = std::min(base, in.start_epoch);
    if (!std::isfinite(base)) base = 0;
    auto offset = [&](const Input& in) { return in.have_start ? in.start_epoch - base : 0.0; };

    MergeResult r;
    r.out = out;
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec)
        return core::make_error(fmt::format("{}: cannot create: {}", out.string(), ec.message()));

    // Histograms and interval logs.
    std::vector<std::string> names;
    for (const auto& in : inputs)
        for (const auto& [name, _] : in.logs)
            if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    for (const auto& name : names) {
        struct Timed {
            double start;
            const core::LogInterval* iv;
        };
        std::vector<Timed> all;
        core::Histogram sum;
        for (const auto& in : inputs) {
            auto it = in.logs.find(name);
            if (it == in.logs.end()) continue;
            for (const auto& iv : it->second) {
                sum.add(iv.histogram);
                all.push_back({iv.start_seconds + offset(in), &iv});
            }
        }
        std::stable_sort(all.begin(), all.end(),
                         [](const Timed& a, const Timed& b) { return a.start < b.start; });
        const fs::path lp = out / (name + ".hlog");
        std::ofstream log(lp);
        if (!log) return core::make_error(fmt::format("{}: cannot write", lp.string()));
        core::HistogramLogWriter w(log);
        w.write_header(base, fmt::format("mediasim {} merged from {} shards (microseconds; "
                                         "Interval_Max in milliseconds)",
                                         name, inputs.size()));
        for (const auto& t : all)
            w.write_interval(t.iv->tag, t.start, t.iv->length_seconds, t.iv->histogram);
        if (!log) return core::make_error(fmt::format("{}: cannot write", lp.string()));
        r.metrics.emplace(name, std::move(sum));
    }

    // summary.json: the first input's settings, counts added, metrics from the summed histograms.
    ordered_json s = inputs.front().summary;
    ordered_json calls = ordered_json::object();
    ordered_json by_class = ordered_json::object();
    ordered_json messages = ordered_json::object();
    ordered_json examples = ordered_json::array();
    double duration = 0;
    std::string started_at = s.value("started_at", std::string());
    std::uint64_t shard_count = 0;
    ordered_json merged_from = ordered_json::array();
    for (const auto& in : inputs) {
        const auto& c = in.summary["calls"];
        for (const auto& [k, v] : c.items()) {
            if (k == "failed_by_class") {
                if (!v.is_object())
                    return core::make_error(fmt::format(
                        "{}/summary.json: calls.failed_by_class: not an object", in.dir.string()));
                for (const auto& [cls, n] : v.items()) {
                    if (!n.is_number_unsigned())
                        return core::make_error(
                            fmt::format("{}/summary.json: calls.failed_by_class.{}: not a count",
                                        in.dir.string(), cls));
                    by_class[cls] = u64(by_class, cls.c_str()) + n.get<std::uint64_t>();
                }
                continue;
            }
            if (!v.is_number_unsigned())
                return core::make_error(
                    fmt::format("{}/summary.json: calls.{}: not a count", in.dir.string(), k));
            calls[k] = u64(calls, k.c_str()) + v.get<std::uint64_t>();
        }
        for (const auto& [k, v] : in.summary["messages"].items()) {
            if (!v.is_number_unsigned())
                return core::make_error(
                    fmt::format("{}/summary.json: messages.{}: not a count", in.dir.string(), k));
            messages[k] = u64(messages, k.c_str()) + v.get<std::uint64_t>();
        }
        if (in.summary.contains("failure_examples") && in.summary["failure_examples"].is_array())
            for (const auto& e : in.summary["failure_examples"])
                if (examples.size() < kMergedFailureExamples) examples.push_back(e);
        if (in.summary.contains("duration_seconds") && in.summary["duration_seconds"].is_number())
            duration = std::max(duration, in.summary["duration_seconds"].get<double>());
        const std::string sa = in.summary.value("started_at", std::string());
        if (!sa.empty() && (started_at.empty() || sa < started_at)) started_at = sa;
        if (in.summary.contains("shard") && in.summary["shard"].is_object())
            shard_count = std::max(shard_count, u64(in.summary["shard"], "count"));
        merged_from.push_back(in.dir.string());
    }
    calls["failed_by_class"] = by_class;
    s["started_at"] = started_at;
    s["duration_seconds"] = duration;
    s["shard"] = {{"index", 0}, {"count", std::max<std::uint64_t>(shard_count, inputs.size())}};
    s["merged_from"] = merged_from;
    s["calls"] = calls;
    s["messages"] = messages;
    ordered_json metrics = ordered_json::object();
    for (const auto& name : names) metrics[name] = metric_summary<ordered_json>(r.metrics.at(name));
    s["metrics"] = metrics;
    s["failure_examples"] = examples;
    r.summary_json = s.dump(2) + "\n";

    auto write = [&](const char* file, const std::string& text) -> core::Status {
        std::ofstream f(out / file, std::ios::binary);
        f << text;
        if (!f) return core::make_error(fmt::format("{}: cannot write", (out / file).string()));
        return core::Ok{};
    };
    if (auto st = write("summary.json", r.summary_json); !st) return st.error();

    // calls.jsonl: concatenated.
    std::string calls_text;
    for (const auto& in : inputs) {
        const fs::path cp = in.dir / "calls.jsonl";
        if (!fs::exists(cp)) continue;
        auto t = read_text(cp);
        if (!t) return t.error();
        calls_text += *t;
        if (!calls_text.empty() && calls_text.back() != '\n') calls_text += '\n';
    }
    if (auto st = write("calls.jsonl", calls_text); !st) return st.error();

    // timeseries.jsonl: by time bucket (counts and active added, p99s from the added
    // histograms of the intervals that fall in the bucket).
    std::map<long long, Bucket> buckets;
    for (const auto& in : inputs) {
        const fs::path tp = in.dir / "timeseries.jsonl";
        if (!fs::exists(tp)) continue;
        std::ifstream f(tp);
        std::string line;
        int lineno = 0;
        while (std::getline(f, line)) {
            ++lineno;
            if (line.empty()) continue;
            auto j = ordered_json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.is_object() || !j.contains("t") || !j["t"].is_number())
                return core::make_error(
                    fmt::format("{}:{}: not a timeseries line (needs \"t\")", tp.string(), lineno));
            const double length = j.value("length", 1.0) > 0 ? j.value("length", 1.0) : 1.0;
            const double t = j["t"].get<double>() + offset(in);
            auto& b = buckets[std::llround(t / length)];
            b.t = std::max(b.t, t);
            b.length = length;
            for (const auto& [k, v] : j.items())
                if (k != "t" && k != "length" && v.is_number_integer())
                    b.counts[k] = (b.counts.contains(k) ? b.counts[k].get<std::int64_t>() : 0) +
                                  v.get<std::int64_t>();
        }
    }
    for (const auto& in : inputs)
        for (const auto& [name, log] : in.logs)
            for (const auto& iv : log) {
                const double length = iv.length_seconds > 0 ? iv.length_seconds : 1.0;
                const double end = iv.start_seconds + iv.length_seconds + offset(in);
                auto it = buckets.find(std::llround(end / length));
                if (it == buckets.end()) continue;
                it->second.metrics[name].add(iv.histogram);
            }
    std::string series;
    for (const auto& [_, b] : buckets) {
        ordered_json j;
        j["t"] = b.t;
        j["length"] = b.length;
        for (const auto& [k, v] : b.counts.items()) j[k] = v;
        ordered_json p99 = ordered_json::object();
        for (const auto& [name, h] : b.metrics)
            if (h.total_count() > 0) p99[name] = h.value_at_percentile(99);
        j["p99_us"] = p99;
        series += j.dump() + "\n";
    }
    if (auto st = write("timeseries.jsonl", series); !st) return st.error();

    auto md = render_markdown(r.summary_json);
    if (!md)
        return core::make_error(
            fmt::format("{}/summary.json: {}", out.string(), md.error().to_string()));
    if (auto st = write("summary.md", *md); !st) return st.error();
    auto html = write_html_report(out);
    if (!html) return html.error();
    return r;
}

}  // namespace mediasim::reports
