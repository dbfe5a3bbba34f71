#include "simulator/playout.hpp"

#include <gtest/gtest.h>

using namespace mediasim::sim;
using namespace std::chrono_literals;

namespace {

const Playout::TimePoint t0 = Playout::TimePoint() + 1000s;

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t v) {
    return std::vector<std::uint8_t>(n, v);
}

std::vector<std::string> names(const std::vector<Playout::Echo>& e) {
    std::vector<std::string> out;
    for (const auto& x : e) out.push_back(x.name + (x.flushed ? "(flushed)" : ""));
    return out;
}

}  // namespace

TEST(Playout, AnswersAMarkAtOnceWhenNothingIsQueued) {
    Playout p(t0);
    p.push_mark(t0 + 5ms, "empty");
    auto e = p.take_echoes();
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].name, "empty");
    EXPECT_FALSE(e[0].flushed);
    EXPECT_EQ(e[0].due, t0 + 5ms);
    EXPECT_FALSE(p.next_mark_due());
}

TEST(Playout, AnswersAMarkOnlyWhenTheAudioBeforeItHasPlayed) {
    Playout p(t0);
    // 1 s of audio in one big message (8000 bytes), then a mark.
    auto r = p.push_audio(t0, bytes(8000, 0x11));
    EXPECT_TRUE(r.started_speaking);
    p.push_mark(t0 + 1ms, "m1");
    EXPECT_TRUE(p.take_echoes().empty());
    ASSERT_TRUE(p.next_mark_due());
    EXPECT_EQ(*p.next_mark_due(), t0 + 1000ms);
    p.advance(t0 + 999ms);
    EXPECT_TRUE(p.take_echoes().empty());
    EXPECT_EQ(p.buffered_bytes(t0 + 999ms), 8u);
    p.advance(t0 + 1000ms);
    auto e = p.take_echoes();
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].name, "m1");
    EXPECT_EQ(e[0].received, t0 + 1ms);
    EXPECT_EQ(e[0].due, t0 + 1000ms);
    EXPECT_EQ(p.bytes_played(), 8000u);
}

TEST(Playout, QueuesSmallFramesBackToBackAndMarksInOrder) {
    Playout p(t0);
    // A server pushing 160-byte frames faster than real time: all at t0.
    for (int i = 0; i < 10; ++i) p.push_audio(t0, bytes(160, static_cast<std::uint8_t>(i)));
    p.push_mark(t0, "a");
    p.push_audio(t0, bytes(1600, 0x22));
    p.push_mark(t0, "b");
    EXPECT_EQ(p.busy_until(), t0 + 400ms);
    p.advance(t0 + 250ms);
    EXPECT_EQ(names(p.take_echoes()), std::vector<std::string>{"a"});
    p.advance(t0 + 500ms);
    EXPECT_EQ(names(p.take_echoes()), std::vector<std::string>{"b"});
    EXPECT_FALSE(p.playing(t0 + 500ms));
}

TEST(Playout, ClearDropsTheQueueAndAnswersPendingMarksAtOnce) {
    Playout p(t0, true);
    p.push_audio(t0, bytes(8000, 0x33));  // 1 s
    p.push_mark(t0, "first");
    p.push_audio(t0, bytes(8000, 0x44));
    p.push_mark(t0, "second");
    auto dropped = p.clear(t0 + 250ms);
    EXPECT_EQ(dropped, 16000u - 2000u);
    auto e = p.take_echoes();
    EXPECT_EQ(names(e), (std::vector<std::string>{"first(flushed)", "second(flushed)"}));
    EXPECT_EQ(e[0].due, t0 + 250ms);
    EXPECT_FALSE(p.playing(t0 + 250ms));
    EXPECT_FALSE(p.next_mark_due());
    // After the clear, new audio plays at once.
    auto r = p.push_audio(t0 + 300ms, bytes(800, 0x55));
    EXPECT_TRUE(r.started_speaking);
    p.advance(t0 + 500ms);
    const auto& rec = p.recorded();
    ASSERT_EQ(rec.size(), 4000u);
    EXPECT_EQ(rec[0], 0x33);
    EXPECT_EQ(rec[1999], 0x33);
    EXPECT_EQ(rec[2000], 0xFF);  // silence between the clear and the new audio
    EXPECT_EQ(rec[2399], 0xFF);
    EXPECT_EQ(rec[2400], 0x55);
    EXPECT_EQ(rec[3199], 0x55);
    EXPECT_EQ(rec[3200], 0xFF);
    EXPECT_EQ(p.bytes_dropped(), 14000u);
    EXPECT_EQ(p.bytes_played(), 2800u);
}

TEST(Playout, RecordsSilenceWhereNothingPlayed) {
    Playout p(t0, true);
    p.push_audio(t0 + 100ms, bytes(160, 0x01));
    p.advance(t0 + 200ms);
    auto rec = p.take_recorded();
    ASSERT_EQ(rec.size(), 1600u);
    EXPECT_EQ(rec[799], 0xFF);
    EXPECT_EQ(rec[800], 0x01);
    EXPECT_EQ(rec[959], 0x01);
    EXPECT_EQ(rec[960], 0xFF);
    p.advance(t0 + 210ms);
    EXPECT_EQ(p.take_recorded().size(), 80u);
}

TEST(Playout, DoesNotRecordUnlessAsked) {
    Playout p(t0);
    p.push_audio(t0, bytes(160, 0x01));
    p.advance(t0 + 1s);
    EXPECT_TRUE(p.recorded().empty());
    EXPECT_EQ(p.bytes_played(), 160u);
}

TEST(Playout, ReportsUnderrunsWhileTheBotSpeaks) {
    Playout p(t0);
    auto r1 = p.push_audio(t0, bytes(160, 1));  // plays until t0+20ms
    EXPECT_TRUE(r1.started_speaking);
    EXPECT_FALSE(r1.underrun);
    auto r2 = p.push_audio(t0 + 10ms, bytes(160, 1));  // queued behind: no gap
    EXPECT_FALSE(r2.started_speaking);
    EXPECT_FALSE(r2.underrun);
    auto r3 = p.push_audio(t0 + 100ms, bytes(160, 1));  // ran dry at 40 ms: a 60 ms gap
    EXPECT_TRUE(r3.started_speaking);
    ASSERT_TRUE(r3.underrun);
    EXPECT_EQ(*r3.underrun, 60ms);
    auto r4 = p.push_audio(t0 + 2s, bytes(160, 1));  // a new utterance, not an underrun
    EXPECT_TRUE(r4.started_speaking);
    EXPECT_FALSE(r4.underrun);
}

TEST(Playout, AMarkAfterAClearOfAnEmptyQueueIsAnsweredAtOnce) {
    Playout p(t0);
    EXPECT_EQ(p.clear(t0), 0u);
    EXPECT_TRUE(p.take_echoes().empty());
    p.push_mark(t0 + 1ms, "x");
    EXPECT_EQ(names(p.take_echoes()), std::vector<std::string>{"x"});
}
