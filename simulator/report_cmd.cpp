// mediasim report DIR: renders (again) the HTML report and the Markdown summary of a run.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/cli.hpp"
#include "reports/html.hpp"
#include "reports/markdown.hpp"
#include "simulator/commands.hpp"

namespace mediasim::sim {

int cmd_report(Args args) {
    std::string dir;
    bool markdown = false;
    core::ArgParser p("mediasim report",
                      "Writes DIR/report.html from a run's --out directory and prints its path.");
    p.positional("DIR", &dir, "the --out directory of mediasim run, demo or check")
        .flag("markdown", &markdown, "print the Markdown summary instead of writing HTML");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim report: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    if (markdown) {
        std::ifstream in(std::filesystem::path(dir) / "summary.json");
        if (!in) {
            std::fprintf(stderr, "mediasim report: %s/summary.json: cannot read\n", dir.c_str());
            return 2;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        auto md = reports::render_markdown(ss.str());
        if (!md) {
            std::fprintf(stderr, "mediasim report: %s/summary.json: %s\n", dir.c_str(),
                         md.error().to_string().c_str());
            return 2;
        }
        std::fputs(md->c_str(), stdout);
        return 0;
    }
    auto out = reports::write_html_report(dir);
    if (!out) {
        std::fprintf(stderr, "mediasim report: %s\n", out.error().to_string().c_str());
        return 2;
    }
    std::printf("%s\n", out->string().c_str());
    return 0;
}

}  // namespace mediasim::sim
