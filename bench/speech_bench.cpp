// speech_bench: the reference server's offline transcription, measured.
//
//   speech_bench wer --sentences bench/speech_sentences.txt            espeak-ng sentences
//   speech_bench wer --prompts TEXTS.txt --sounds DIR [--limit N]      recorded Asterisk prompts
//   speech_bench rtf (--sentences F | --prompts F --sounds DIR) [--streams N] [--hints]
//
// wer: word error rate of PocketSphinx on phone audio (8 kHz μ-law → core::Resampler → 16 kHz),
// once with no hints (the general language model) and once with hints (the whole set's phrases
// as the phrase list, as a flow's transcription.hints gives them).
// rtf: N streams of recorded prompts pushed through TranscriptionService (VAD, resampler, one
// PocketSphinx worker, as the server runs it), hints off or on (--hints); prints recognition CPU
// time / audio time and the streams one core keeps up with (1 / RTF).
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "core/cli.hpp"
#include "core/g711.hpp"
#include "core/resample.hpp"
#include "core/tts.hpp"
#include "core/wav.hpp"
#include "reference-server/speech.hpp"

namespace {

using namespace mediasim;
namespace fs = std::filesystem;
using Pcm = std::vector<std::int16_t>;

struct Item {
    std::string name, text;
    Pcm pcm8;  // as a caller's audio arrives: 8 kHz, through μ-law
};

Pcm through_ulaw(const Pcm& in) {
    std::vector<std::uint8_t> m(in.size());
    core::ulaw_encode(in, m.data());
    Pcm out(m.size());
    core::ulaw_decode(m, out.data());
    return out;
}

Pcm to_16k(const Pcm& pcm8) {
    core::Resampler r(8000, 16000);
    Pcm out(r.max_output(pcm8.size()));
    out.resize(r.process(pcm8, out.data()));
    return out;
}

std::vector<Item> load_sentences(const fs::path& file, std::size_t limit) {
    std::vector<Item> items;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line) && items.size() < limit;) {
        if (line.empty() || line[0] == '#') continue;
        auto m = core::speak_mulaw(line, {"en-us", fs::temp_directory_path() / "mediasim-tts"});
        if (!m) {
            std::fprintf(stderr, "speech_bench: %s\n", m.error().to_string().c_str());
            std::exit(1);
        }
        Pcm pcm(m->size());
        core::ulaw_decode(*m, pcm.data());
        items.push_back({line, line, std::move(pcm)});
    }
    return items;
}

// core-sounds-en.txt: "name: text" lines; prompts whose text is a bracketed description (tones)
// or has digits are skipped, as is anything without a WAV under dir.
std::vector<Item> load_prompts(const fs::path& texts, const fs::path& dir, std::size_t limit) {
    std::vector<Item> items;
    std::ifstream in(texts);
    for (std::string line; std::getline(in, line) && items.size() < limit;) {
        const auto colon = line.find(':');
        if (line.empty() || line[0] == ';' || colon == std::string::npos) continue;
        const auto name = line.substr(0, colon);
        const auto text = line.substr(colon + 1);
        if (text.find('[') != std::string::npos || name.find('/') != std::string::npos) continue;
        if (std::any_of(text.begin(), text.end(), [](char c) { return std::isdigit(c); })) continue;
        if (server::split_words(text).empty()) continue;
        auto w = core::read_wav_pcm(dir / (name + ".wav"), {8000, true});
        if (!w) continue;
        items.push_back({name, text, through_ulaw(w->samples)});
    }
    return items;
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int wer(const std::vector<Item>& items, bool verbose) {
    auto engine = server::make_pocketsphinx_engine({});
    if (!engine) {
        std::fprintf(stderr, "speech_bench: %s\n", engine.error().to_string().c_str());
        return 1;
    }
    server::Hints hints;
    for (const auto& it : items) hints.phrases.push_back(it.text);
    double audio = 0;
    for (const auto& it : items) audio += static_cast<double>(it.pcm8.size()) / 8000.0;
    std::printf("%zu utterances, %.1f s of audio\n", items.size(), audio);
    for (const bool with_hints : {false, true}) {
        server::WerCount total;
        const double c0 = cpu_seconds();
        for (const auto& it : items) {
            auto r = (*engine)->recognize(to_16k(it.pcm8), with_hints ? hints : server::Hints{});
            const std::string hyp = r ? *r : "";
            const auto w = server::word_errors(it.text, hyp);
            total.errors += w.errors;
            total.words += w.words;
            if (verbose)
                std::printf("  %-5s %2zu/%2zu  %s  →  %s\n", with_hints ? "hints" : "none",
                            w.errors, w.words, server::normalize_words(it.text).c_str(),
                            hyp.c_str());
        }
        const double cpu = cpu_seconds() - c0;
        std::printf("%-10s WER %5.1f%%  (%zu errors / %zu words), RTF %.2f\n",
                    with_hints ? "hints" : "no hints",
                    100.0 * static_cast<double>(total.errors) / static_cast<double>(total.words),
                    total.errors, total.words, cpu / audio);
    }
    return 0;
}

int rtf(const std::vector<Item>& items, int streams, bool with_hints) {
    server::Hints hints;
    if (with_hints)
        for (const auto& it : items) hints.phrases.push_back(it.text);
    server::TranscriptionOptions opts;
    opts.workers = 1;
    auto svc = server::TranscriptionService::create(
        [] { return server::make_pocketsphinx_engine({}); }, opts);
    if (!svc) {
        std::fprintf(stderr, "speech_bench: %s\n", svc.error().to_string().c_str());
        return 1;
    }
    // Each stream: the prompts one after the other, 600 ms of silence between them.
    Pcm call;
    for (const auto& it : items) {
        call.insert(call.end(), it.pcm8.begin(), it.pcm8.end());
        call.resize(call.size() + 4800, 0);
    }
    std::mutex mu;
    std::condition_variable cv;
    std::size_t finals = 0;
    std::vector<std::unique_ptr<server::TranscriptionService::Stream>> ss;
    for (int s = 0; s < streams; ++s)
        ss.push_back((*svc)->open_stream(hints, [&](const server::TranscriptEvent& e) {
            if (!e.final) return;
            std::lock_guard lock(mu);
            ++finals;
            cv.notify_all();
        }));
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    std::uint64_t ts = 0;
    std::size_t max_depth = 0;
    for (std::size_t off = 0; off + 160 <= call.size(); off += 160, ts += 20) {
        for (auto& st : ss) st->push(std::span<const std::int16_t>(call).subspan(off, 160), ts);
        max_depth = std::max(max_depth, (*svc)->queue_depth());
    }
    ss.clear();           // ends each stream's last utterance
    (*svc)->wait_idle();  // every queued utterance recognised
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - c0;
    const double call_seconds = static_cast<double>(call.size()) / 8000.0;
    const double speech = (*svc)->audio_seconds();  // what the VAD handed to the recogniser
    const double rtf_cpu = cpu / speech;
    std::printf(
        "%d stream(s) x %.1f s call (%zu utterances each), 1 worker, hints %s: %zu final "
        "transcripts\n",
        streams, call_seconds, items.size(), with_hints ? "on" : "off", finals);
    std::printf("speech recognised %.1f s; CPU %.1f s (wall %.1f s); max queue depth %zu\n", speech,
                cpu, wall, max_depth);
    std::printf("RTF (CPU / speech) %.3f; worker RTF (busy wall / speech) %.3f\n", rtf_cpu,
                (*svc)->real_time_factor());
    std::printf(
        "streams per core: %.1f talking continuously; %.1f at %.0f%% speech (these calls)\n",
        1.0 / rtf_cpu, call_seconds / cpu * streams, 100.0 * speech / (call_seconds * streams));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || (std::string(argv[1]) != "wer" && std::string(argv[1]) != "rtf")) {
        std::fprintf(stderr, "usage: speech_bench wer|rtf [options] (--help)\n");
        return 2;
    }
    const std::string mode = argv[1];
    std::string sentences, prompts, sounds = "/usr/share/asterisk/sounds/en";
    int limit = 1000, streams = 1;
    bool verbose = false, with_hints = false;
    core::ArgParser p("speech_bench " + mode, "PocketSphinx word error rate and real-time factor.");
    p.option("sentences", &sentences, "FILE", "sentences to speak with espeak-ng, one a line")
        .option("prompts", &prompts, "FILE", "Asterisk prompt texts (core-sounds-en.txt)")
        .option("sounds", &sounds, "DIR", "Asterisk prompt WAVs (/usr/share/asterisk/sounds/en)")
        .option("limit", &limit, "N", "at most N utterances", 1)
        .option("streams", &streams, "N", "rtf: concurrent streams", 1)
        .flag("hints", &with_hints, "rtf: the set's texts as the phrase list")
        .flag("verbose", &verbose, "print every utterance");
    if (auto st = p.parse(std::span<char* const>(argv + 2, static_cast<std::size_t>(argc - 2)));
        !st) {
        std::fprintf(stderr, "speech_bench: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::printf("%s", p.help().c_str());
        return 0;
    }
    const auto n = static_cast<std::size_t>(limit);
    std::vector<Item> items =
        !sentences.empty() ? load_sentences(sentences, n) : load_prompts(prompts, sounds, n);
    if (items.empty()) {
        std::fprintf(stderr,
                     "speech_bench: nothing to recognise (give --sentences or --prompts)\n");
        return 2;
    }
    return mode == "wer" ? wer(items, verbose) : rtf(items, streams, with_hints);
}
