// The one place that knows how a metric's histogram appears in summary.json (schema
// "mediasim.summary/1"): the simulator writes it from a run's totals, `report merge` from the
// added histograms of the shards. Header-only so it needs no JSON library of its own: Json is
// nlohmann::json or nlohmann::ordered_json.
#pragma once

#include "core/histogram.hpp"

namespace mediasim::reports {

template <class Json>
Json metric_summary(const core::Histogram& h) {
    Json m;
    m["unit"] = "us";
    m["count"] = h.total_count();
    m["min"] = h.min();
    m["p50"] = h.value_at_percentile(50);
    m["p90"] = h.value_at_percentile(90);
    m["p99"] = h.value_at_percentile(99);
    m["p99_9"] = h.value_at_percentile(99.9);
    m["max"] = h.max();
    m["mean"] = h.mean();
    return m;
}

}  // namespace mediasim::reports
