#include "reference-server/log.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <string>

namespace mediasim::server {

namespace {

const char* level_name(LogLevel l) {
    switch (l) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
    }
    return "info";
}

// Values with spaces, quotes or '=' are quoted; quotes, backslashes and newlines escaped.
void append_value(std::string& out, std::string_view v) {
    bool quote = v.empty();
    for (char c : v)
        quote = quote || c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\\' || c == '\t';
    if (!quote) {
        out += v;
        return;
    }
    out += '"';
    for (char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else {
            out += c;
        }
    }
    out += '"';
}

}  // namespace

Logger::Logger(std::FILE* sink, LogLevel min_level) : sink_(sink), min_level_(min_level) {}

void Logger::log(LogLevel level, std::string_view event, std::initializer_list<Field> fields) {
    if (level < min_level_ || sink_ == nullptr) return;
    const auto now = std::chrono::system_clock::now();
    const auto secs = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::string line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} {}",
                                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                   tm.tm_min, tm.tm_sec, ms, level_name(level), event);
    for (const auto& [k, v] : fields) {
        line += ' ';
        line += k;
        line += '=';
        append_value(line, v);
    }
    line += '\n';
    std::lock_guard lock(mu_);
    std::fwrite(line.data(), 1, line.size(), sink_);
    std::fflush(sink_);
}

}  // namespace mediasim::server
