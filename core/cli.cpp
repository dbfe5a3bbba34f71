#include "core/cli.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace mediasim::core {

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

ArgParser& ArgParser::flag(std::string name, bool* out, std::string help) {
    opts_.push_back({std::move(name), "", std::move(help), false, false, [out](std::string_view) {
                         *out = true;
                         return Status(Ok{});
                     }});
    return *this;
}

ArgParser& ArgParser::option(std::string name, std::string* out, std::string metavar,
                             std::string help) {
    opts_.push_back({std::move(name), std::move(metavar), std::move(help), true, false,
                     [out](std::string_view v) {
                         *out = std::string(v);
                         return Status(Ok{});
                     }});
    return *this;
}

ArgParser& ArgParser::option(std::string name, int* out, std::string metavar, std::string help,
                             int min_value) {
    std::string flag = "--" + name;
    std::string mv = metavar;
    opts_.push_back({std::move(name), std::move(metavar), std::move(help), true, false,
                     [out, flag, mv, min_value](std::string_view v) -> Status {
                         int x = 0;
                         auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
                         if (ec != std::errc() || p != v.data() + v.size())
                             return make_error(fmt::format("\"{}\" is not a whole number "
                                                           "(example: {} {})",
                                                           v, flag, mv),
                                               flag);
                         if (x < min_value)
                             return make_error(
                                 fmt::format("{} is below the minimum of {}", x, min_value), flag);
                         *out = x;
                         return Ok{};
                     }});
    return *this;
}

ArgParser& ArgParser::option(std::string name, double* out, std::string metavar, std::string help,
                             double min_value) {
    std::string flag = "--" + name;
    std::string mv = metavar;
    opts_.push_back(
        {std::move(name), std::move(metavar), std::move(help), true, false,
         [out, flag, mv, min_value](std::string_view v) -> Status {
             double x = 0;
             auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
             if (ec != std::errc() || p != v.data() + v.size() || !std::isfinite(x))
                 return make_error(
                     fmt::format("\"{}\" is not a number (example: {} {})", v, flag, mv), flag);
             if (x < min_value)
                 return make_error(fmt::format("{} is below the minimum of {}", x, min_value),
                                   flag);
             *out = x;
             return Ok{};
         }});
    return *this;
}

ArgParser& ArgParser::multi(std::string name, std::vector<std::string>* out, std::string metavar,
                            std::string help) {
    opts_.push_back({std::move(name), std::move(metavar), std::move(help), true, true,
                     [out](std::string_view v) {
                         out->emplace_back(v);
                         return Status(Ok{});
                     }});
    return *this;
}

ArgParser& ArgParser::positional(std::string name, std::string* out, std::string help,
                                 bool required) {
    pos_.push_back({std::move(name), std::move(help), required,
                    [out](std::string_view v) { *out = std::string(v); }});
    return *this;
}

ArgParser& ArgParser::rest(std::string name, std::vector<std::string>* out, std::string help,
                           std::size_t min_count) {
    rest_name_ = std::move(name);
    rest_help_ = std::move(help);
    rest_ = out;
    rest_min_ = min_count;
    return *this;
}

bool ArgParser::given(std::string_view name) const {
    for (const auto& g : given_)
        if (g == name) return true;
    return false;
}

Status ArgParser::parse(std::span<char* const> args) {
    std::size_t npos = 0;
    std::size_t nrest = 0;
    bool only_positional = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (!only_positional && a == "--") {
            only_positional = true;
            continue;
        }
        if (!only_positional && (a == "--help" || a == "-h")) {
            help_requested_ = true;
            return Ok{};
        }
        if (!only_positional && a.size() > 2 && a.substr(0, 2) == "--") {
            std::string_view body = a.substr(2);
            std::string_view value;
            bool has_value = false;
            if (auto eq = body.find('='); eq != std::string_view::npos) {
                value = body.substr(eq + 1);
                body = body.substr(0, eq);
                has_value = true;
            }
            const Opt* opt = nullptr;
            for (const auto& o : opts_)
                if (o.name == body) opt = &o;
            if (!opt)
                return make_error(fmt::format("unknown option (see '{} --help')", command_),
                                  fmt::format("--{}", body));
            if (!opt->takes_value && has_value)
                return make_error("takes no value", fmt::format("--{}", body));
            if (opt->takes_value && !has_value) {
                if (i + 1 >= args.size())
                    return make_error(
                        fmt::format("needs a value (example: --{} {})", opt->name, opt->metavar),
                        fmt::format("--{}", body));
                value = args[++i];
            }
            if (!opt->repeatable && given(opt->name))
                return make_error("given more than once", fmt::format("--{}", body));
            given_.emplace_back(opt->name);
            if (auto st = opt->set(value); !st) return st;
            continue;
        }
        if (!only_positional && a.size() > 1 && a[0] == '-' && a != "-")
            return make_error(fmt::format("unknown option (see '{} --help')", command_),
                              std::string(a));
        if (npos < pos_.size()) {
            pos_[npos++].set(a);
        } else if (rest_) {
            rest_->emplace_back(a);
            ++nrest;
        } else {
            return make_error(
                fmt::format("unexpected argument \"{}\" (see '{} --help')", a, command_));
        }
    }
    for (std::size_t i = npos; i < pos_.size(); ++i)
        if (pos_[i].required)
            return make_error(
                fmt::format("missing argument {} (see '{} --help')", pos_[i].name, command_));
    if (rest_ && nrest < rest_min_)
        return make_error(
            fmt::format("missing argument {} (see '{} --help')", rest_name_, command_));
    return Ok{};
}

std::string ArgParser::help() const {
    std::string out = fmt::format("usage: {}", command_);
    for (const auto& o : opts_)
        out += o.takes_value ? fmt::format(" [--{} {}]", o.name, o.metavar)
                             : fmt::format(" [--{}]", o.name);
    for (const auto& p : pos_) out += p.required ? " " + p.name : " [" + p.name + "]";
    if (rest_) out += " " + rest_name_ + "...";
    out += "\n\n" + summary_ + "\n";
    if (!pos_.empty() || rest_) out += "\narguments:\n";
    for (const auto& p : pos_) out += fmt::format("  {:<22} {}\n", p.name, p.help);
    if (rest_) out += fmt::format("  {:<22} {}\n", rest_name_ + "...", rest_help_);
    if (!opts_.empty()) out += "\noptions:\n";
    for (const auto& o : opts_) {
        std::string left =
            o.takes_value ? fmt::format("--{} {}", o.name, o.metavar) : fmt::format("--{}", o.name);
        out += fmt::format("  {:<22} {}\n", left, o.help);
    }
    return out;
}

}  // namespace mediasim::core
