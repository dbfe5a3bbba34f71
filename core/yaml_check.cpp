#include "core/yaml_check.hpp"

namespace mediasim::core {

Result<YAML::Node> yaml_load(std::string_view text, std::string_view file_name) {
    try {
        return YAML::Load(std::string(text));
    } catch (const YAML::ParserException& e) {
        Diagnostic d;
        d.file = std::string(file_name);
        d.line = e.mark.line + 1;
        d.column = e.mark.column + 1;
        d.message = "not valid YAML: " + e.msg;
        return d;
    }
}

void YamlChecker::error(const YAML::Node& at, std::string path, std::string message) {
    Diagnostic d;
    d.file = file_;
    const auto m = at.Mark();
    if (!m.is_null()) {
        d.line = m.line + 1;
        d.column = m.column + 1;
    }
    d.path = std::move(path);
    d.message = std::move(message);
    errors_.push_back(std::move(d));
}

bool YamlChecker::keys(const YAML::Node& map, const std::string& path,
                       std::span<const std::string_view> allowed) {
    if (!map.IsMap()) {
        error(map, path, "expected a map");
        return false;
    }
    for (const auto& kv : map) {
        const auto key = kv.first.Scalar();
        bool ok = false;
        for (auto a : allowed) ok = ok || a == key;
        if (!ok) {
            std::string list;
            for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            error(kv.first, join(path, key),
                  fmt::format("unknown key (expected one of: {})", list));
        }
    }
    return true;
}

std::string YamlChecker::join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::optional<std::string> YamlChecker::string(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) {
        error(n, path, "expected a string");
        return std::nullopt;
    }
    return n.Scalar();
}

Status YamlChecker::result() const {
    if (errors_.empty()) return Ok{};
    if (errors_.size() == 1) return errors_.front();
    // Several problems: the first keeps its position, the message lists them all.
    Diagnostic all = errors_.front();
    for (std::size_t i = 1; i < errors_.size(); ++i) all.message += "\n" + errors_[i].to_string();
    return all;
}

}  // namespace mediasim::core
