#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <unordered_set>

namespace mediasim::core {
namespace {

TEST(SidGenerator, FormatIsPrefixAnd32LowercaseHexDigits) {
    SidGenerator gen(1);
    for (const char* prefix : {"CA", "AC", "MZ", "SM"}) {
        const std::string sid = gen.next(prefix);
        ASSERT_EQ(sid.size(), 34u) << sid;
        EXPECT_EQ(sid.substr(0, 2), prefix);
        for (char c : sid.substr(2)) {
            EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << sid;
        }
        EXPECT_TRUE(is_valid_sid(sid, prefix)) << sid;
    }
}

TEST(SidGenerator, UsesAllHexDigits) {
    // Every digit 0-9a-f appears across a few SIDs: the encoding does not drop any nibble value.
    SidGenerator gen(7);
    std::unordered_set<char> seen;
    for (int i = 0; i < 20; ++i) {
        for (char c : gen.next("CA").substr(2)) seen.insert(c);
    }
    EXPECT_EQ(seen.size(), 16u);
}

TEST(SidGenerator, UniqueOver100k) {
    SidGenerator gen(42);
    std::unordered_set<std::string> sids;
    sids.reserve(100'000);
    for (int i = 0; i < 100'000; ++i) sids.insert(gen.next("CA"));
    EXPECT_EQ(sids.size(), 100'000u);
}

TEST(SidGenerator, SameSeedSameSequence) {
    SidGenerator a(12345), b(12345), c(12346);
    bool differs_from_other_seed = false;
    for (int i = 0; i < 1000; ++i) {
        const std::string sa = a.next("MZ");
        EXPECT_EQ(sa, b.next("MZ"));
        if (sa != c.next("MZ")) differs_from_other_seed = true;
    }
    EXPECT_TRUE(differs_from_other_seed);
}

TEST(SidGenerator, KnownValueForSeedZero) {
    // mt19937_64 is fully specified by the standard (its 10000th output for the default seed is
    // pinned there), so the SID for a given seed is stable across compilers and platforms.
    std::mt19937_64 ref(0);
    const std::uint64_t hi = ref(), lo = ref();
    char expected[40];
    std::snprintf(expected, sizeof expected, "CA%016llx%016llx",
                  static_cast<unsigned long long>(hi), static_cast<unsigned long long>(lo));
    SidGenerator gen(0);
    EXPECT_EQ(gen.next("CA"), expected);
}

TEST(IsValidSid, AcceptsGoodOnes) {
    EXPECT_TRUE(is_valid_sid("CA89abcdef0123456789abcdef01234567", "CA"));
    EXPECT_TRUE(is_valid_sid("AC0123456789abcdef0123456789abcdef", "AC"));
    EXPECT_TRUE(is_valid_sid("MZ0123456789abcdef0123456789abcdef", "MZ"));
}

TEST(IsValidSid, RejectsBadOnes) {
    struct Case {
        const char* sid;
        const char* prefix;
        const char* why;
    };
    const Case cases[] = {
        {"", "CA", "empty"},
        {"CA", "CA", "prefix only"},
        {"CA89abcdef0123456789abcdef0123456", "CA", "31 digits"},
        {"CA89abcdef0123456789abcdef012345678", "CA", "33 digits"},
        {"AC89abcdef0123456789abcdef01234567", "CA", "other prefix"},
        {"ca89abcdef0123456789abcdef01234567", "CA", "lowercase prefix"},
        {"CA89ABCDEF0123456789abcdef01234567", "CA", "uppercase hex"},
        {"CA89abcdeg0123456789abcdef01234567", "CA", "non-hex letter g"},
        {"CA89abcdef0123456789abcdef0123456 ", "CA", "trailing space"},
        {" CA89abcdef0123456789abcdef0123456", "CA", "leading space"},
        {"CA-9abcdef0123456789abcdef01234567", "CA", "dash"},
        {"0123456789abcdef0123456789abcdef", "", "empty prefix"},
    };
    for (const Case& c : cases) EXPECT_FALSE(is_valid_sid(c.sid, c.prefix)) << c.why;
}

}  // namespace
}  // namespace mediasim::core
