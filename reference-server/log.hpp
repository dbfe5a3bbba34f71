// Structured logs: one line per event, logfmt style, e.g.
//   2026-11-25T01:40:12.345Z warn bad_frame call_sid=CA… stream_sid=MZ… reason=bad_base64 msg="…"
// Thread-safe (one mutex around each write); the sink is a FILE* (stderr by default).
#pragma once

#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <string_view>
#include <utility>

namespace mediasim::server {

enum class LogLevel { debug, info, warn, error };

class Logger {
  public:
    using Field = std::pair<std::string_view, std::string_view>;
    explicit Logger(std::FILE* sink = stderr, LogLevel min_level = LogLevel::info);

    void log(LogLevel level, std::string_view event, std::initializer_list<Field> fields = {});
    void info(std::string_view event, std::initializer_list<Field> fields = {}) {
        log(LogLevel::info, event, fields);
    }
    void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
        log(LogLevel::warn, event, fields);
    }
    void error(std::string_view event, std::initializer_list<Field> fields = {}) {
        log(LogLevel::error, event, fields);
    }

  private:
    std::FILE* sink_;
    LogLevel min_level_;
    std::mutex mu_;
};

}  // namespace mediasim::server
