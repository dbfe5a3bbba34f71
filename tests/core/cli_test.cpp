#include "core/cli.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <initializer_list>

using mediasim::core::ArgParser;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

// argv as the parser sees it (without program and command names).
struct Argv {
    explicit Argv(std::initializer_list<const char*> args) {
        for (auto* a : args) store.emplace_back(a);
        for (auto& s : store) ptrs.push_back(s.data());
    }
    std::span<char* const> span() const { return {ptrs.data(), ptrs.size()}; }
    std::vector<std::string> store;
    std::vector<char*> ptrs;
};

struct Flags {
    std::string scenario, webhook;
    int calls = 0;
    double rate = 0;
    bool quiet = false;
    std::vector<std::string> params;
    ArgParser parser{"mediasim run", "Plays a scenario."};
    Flags() {
        parser.positional("SCENARIO", &scenario, "the scenario")
            .option("webhook", &webhook, "URL", "the webhook")
            .option("calls", &calls, "N", "calls", 1)
            .option("rate", &rate, "R", "rate")
            .flag("quiet", &quiet, "quiet")
            .multi("param", &params, "K=V", "a parameter");
    }
    std::string error(std::initializer_list<const char*> a) {
        Argv argv(a);
        auto st = parser.parse(argv.span());
        return st ? std::string("ok") : st.error().to_string();
    }
};

TEST(ArgParser, ParsesEveryKindOfArgument) {
    Flags f;
    Argv a{"s.yaml", "--webhook", "http://x/voice", "--calls=5", "--rate",
           "2.5",    "--quiet",   "--param",        "a=1",       "--param=b=2"};
    ASSERT_TRUE(f.parser.parse(a.span()));
    EXPECT_EQ(f.scenario, "s.yaml");
    EXPECT_EQ(f.webhook, "http://x/voice");
    EXPECT_EQ(f.calls, 5);
    EXPECT_DOUBLE_EQ(f.rate, 2.5);
    EXPECT_TRUE(f.quiet);
    EXPECT_THAT(f.params, ElementsAre("a=1", "b=2"));
    EXPECT_TRUE(f.parser.given("calls"));
    EXPECT_FALSE(f.parser.given("nothing"));
    EXPECT_FALSE(f.parser.help_requested());
}

TEST(ArgParser, ErrorsNameTheFlagAndWhatWasExpected) {
    EXPECT_EQ(Flags().error({"s", "--rate", "fast"}),
              "--rate: \"fast\" is not a number (example: --rate R)");
    EXPECT_EQ(Flags().error({"s", "--calls", "2.5"}),
              "--calls: \"2.5\" is not a whole number (example: --calls N)");
    EXPECT_EQ(Flags().error({"s", "--calls", "0"}), "--calls: 0 is below the minimum of 1");
    EXPECT_EQ(Flags().error({"s", "--rate", "-1"}), "--rate: -1 is below the minimum of 0");
    EXPECT_EQ(Flags().error({"s", "--rate", "inf"}),
              "--rate: \"inf\" is not a number (example: --rate R)");
    EXPECT_EQ(Flags().error({"s", "--bogus"}),
              "--bogus: unknown option (see 'mediasim run --help')");
    EXPECT_EQ(Flags().error({"s", "-x"}), "-x: unknown option (see 'mediasim run --help')");
    EXPECT_EQ(Flags().error({"s", "--webhook"}),
              "--webhook: needs a value (example: --webhook URL)");
    EXPECT_EQ(Flags().error({"s", "--quiet=yes"}), "--quiet: takes no value");
    EXPECT_EQ(Flags().error({"s", "--calls", "1", "--calls", "2"}),
              "--calls: given more than once");
    EXPECT_EQ(Flags().error({}), "missing argument SCENARIO (see 'mediasim run --help')");
    EXPECT_EQ(Flags().error({"a", "b"}), "unexpected argument \"b\" (see 'mediasim run --help')");
}

TEST(ArgParser, DoubleDashEndsOptions) {
    Flags f;
    Argv a{"--", "--odd-name.yaml"};
    ASSERT_TRUE(f.parser.parse(a.span()));
    EXPECT_EQ(f.scenario, "--odd-name.yaml");
}

TEST(ArgParser, HelpListsEverything) {
    Flags f;
    Argv a{"--help"};
    ASSERT_TRUE(f.parser.parse(a.span()));
    EXPECT_TRUE(f.parser.help_requested());
    const auto h = f.parser.help();
    EXPECT_THAT(h, HasSubstr("usage: mediasim run [--webhook URL] [--calls N] [--rate R] [--quiet] "
                             "[--param K=V] SCENARIO"));
    EXPECT_THAT(h, HasSubstr("Plays a scenario."));
    EXPECT_THAT(h, HasSubstr("  --webhook URL          the webhook"));
}

TEST(ArgParser, RestCollectsTheRemainingArguments) {
    std::vector<std::string> dirs;
    ArgParser p("mediasim report merge", "Merges.");
    p.rest("DIR", &dirs, "run directories", 2);
    Argv one{"a"};
    auto st = p.parse(one.span());
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().to_string(), "missing argument DIR (see 'mediasim report merge --help')");
    dirs.clear();
    ArgParser q("m", "s");
    q.rest("DIR", &dirs, "run directories", 2);
    Argv two{"a", "b", "c"};
    ASSERT_TRUE(q.parse(two.span()));
    EXPECT_THAT(dirs, ElementsAre("a", "b", "c"));
}

}  // namespace
