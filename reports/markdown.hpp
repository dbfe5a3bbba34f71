// The Markdown summary of a run: what `mediasim run` and `mediasim demo` print at the end and
// write as summary.md (it fits a CI job summary, e.g. $GITHUB_STEP_SUMMARY).
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"

namespace mediasim::reports {

// Renders summary.json (schema "mediasim.summary/1") as Markdown. Errors name the field that
// was missing or of the wrong type.
core::Result<std::string> render_markdown(std::string_view summary_json);

}  // namespace mediasim::reports
