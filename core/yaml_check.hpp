// Reading YAML files with every problem reported at its place: "file:line:column: path: what".
// The scenario loader and the server's config both read through this, so their errors read
// alike. Include only from .cpp files (it brings in yaml-cpp).
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::core {

// Parses text; a syntax error comes back with the file, line and column of the problem.
Result<YAML::Node> yaml_load(std::string_view text, std::string_view file_name);

// Collects every problem of one file, each with its position.
class YamlChecker {
  public:
    explicit YamlChecker(std::string file) : file_(std::move(file)) {}

    void error(const YAML::Node& at, std::string path, std::string message);

    // Every key of `map` must be one of `allowed` (each stray key is an error at the key).
    // False, with an error, when `map` is not a map.
    bool keys(const YAML::Node& map, const std::string& path,
              std::span<const std::string_view> allowed);
    bool keys(const YAML::Node& map, const std::string& path,
              std::initializer_list<std::string_view> allowed) {
        return keys(map, path, std::span<const std::string_view>(allowed.begin(), allowed.size()));
    }

    // "a.b" from "a" and "b"; "b" from "" and "b".
    static std::string join(const std::string& path, std::string_view key);

    // The scalar at n, or an error.
    std::optional<std::string> string(const YAML::Node& n, const std::string& path);

    // The number at n within [min_value, max_value], or an error that says why not.
    template <class T>
    std::optional<T> number(const YAML::Node& n, const std::string& path, T min_value,
                            T max_value = std::numeric_limits<T>::max()) {
        if (!n.IsScalar()) {
            error(n, path, fmt::format("expected a number, got a {}", n.IsMap() ? "map" : "list"));
            return std::nullopt;
        }
        const auto& s = n.Scalar();
        T v{};
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
            error(n, path, fmt::format("\"{}\" is not a number", s));
            return std::nullopt;
        }
        if (v < min_value || v > max_value) {
            error(n, path,
                  max_value == std::numeric_limits<T>::max()
                      ? fmt::format("must be at least {}", min_value)
                      : fmt::format("{} is out of range ({} to {})", v, min_value, max_value));
            return std::nullopt;
        }
        return v;
    }

    // map[key], when present, into out (unchanged on an error or when absent).
    void string(const YAML::Node& map, const std::string& path, std::string_view key,
                std::string& out) {
        if (const auto n = map[std::string(key)])
            if (auto v = string(n, join(path, key))) out = std::move(*v);
    }
    template <class T>
    void number(const YAML::Node& map, const std::string& path, std::string_view key, T& out,
                T min_value, T max_value) {
        if (const auto n = map[std::string(key)])
            if (auto v = number<T>(n, join(path, key), min_value, max_value)) out = *v;
    }

    // Ok, or the first problem with every other one listed after it, one per line.
    Status result() const;
    // The problems, one each, in the order found (taken: the checker is empty afterwards).
    std::vector<Diagnostic> take_errors() { return std::exchange(errors_, {}); }
    bool ok() const { return errors_.empty(); }

  private:
    std::string file_;
    std::vector<Diagnostic> errors_;
};

}  // namespace mediasim::core
