// Result<T>: a value or a Diagnostic. Core parsers never throw through a caller's handler;
// they return one of these, and the Diagnostic says what was wrong and where.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace mediasim::core {

struct Diagnostic {
    std::string file;     // file or stream name; empty when the input has none
    int line = 0;         // 1-based; 0 when not applicable
    int column = 0;       // 1-based; 0 when not applicable
    std::string path;     // field path, e.g. "start.mediaFormat.sampleRate"; may be empty
    std::string message;  // what was wrong, in words a user can act on

    // "file:line:column: path: message", leaving out the parts that are empty.
    std::string to_string() const;
};

Diagnostic make_error(std::string message, std::string path = {});

template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}           // NOLINT(implicit)
    Result(Diagnostic error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Diagnostic& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Diagnostic> v_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace mediasim::core
