// A small command-line parser shared by mediasim and mediasim-server. Errors name the flag and
// say what was expected, e.g.  --rate: "fast" is not a number (example: --rate 5)
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::core {

class ArgParser {
  public:
    ArgParser(std::string command, std::string summary);

    // --name (no value)
    ArgParser& flag(std::string name, bool* out, std::string help);
    // --name VALUE or --name=VALUE; example is used in error messages and help.
    ArgParser& option(std::string name, std::string* out, std::string metavar, std::string help);
    ArgParser& option(std::string name, int* out, std::string metavar, std::string help,
                      int min_value = 0);
    ArgParser& option(std::string name, double* out, std::string metavar, std::string help,
                      double min_value = 0.0);
    // Repeatable: every occurrence appends.
    ArgParser& multi(std::string name, std::vector<std::string>* out, std::string metavar,
                     std::string help);
    // Positional arguments, in order.
    ArgParser& positional(std::string name, std::string* out, std::string help,
                          bool required = true);
    // Everything positional after the named ones (e.g. report merge DIR...).
    ArgParser& rest(std::string name, std::vector<std::string>* out, std::string help,
                    std::size_t min_count = 0);

    // Parses args (without the program and command names). --help / -h sets help_requested().
    Status parse(std::span<char* const> args);
    bool help_requested() const { return help_requested_; }
    std::string help() const;
    // Which options were given on the command line (by name without dashes).
    bool given(std::string_view name) const;

  private:
    struct Opt {
        std::string name, metavar, help;
        bool takes_value = true;
        bool repeatable = false;
        std::function<Status(std::string_view)> set;
    };
    struct Pos {
        std::string name, help;
        bool required = true;
        std::function<void(std::string_view)> set;
    };
    std::string command_, summary_;
    std::vector<Opt> opts_;
    std::vector<Pos> pos_;
    std::string rest_name_, rest_help_;
    std::vector<std::string>* rest_ = nullptr;
    std::size_t rest_min_ = 0;
    std::vector<std::string> given_;
    bool help_requested_ = false;
};

}  // namespace mediasim::core
