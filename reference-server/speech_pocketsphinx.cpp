// The PocketSphinx engine (Debian's libpocketsphinx 5prealpha and pocketsphinx-en-us).
#include <fmt/format.h>
#include <pocketsphinx.h>
#include <sphinxbase/ckd_alloc.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/feat.h>

#include <filesystem>
#include <functional>
#include <iterator>
#include <set>
#include <vector>

#include "reference-server/speech.hpp"

namespace mediasim::server {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultModelDir = "/usr/share/pocketsphinx/model/en-us";
// Initial cepstral means for phone audio (8 kHz, resampled to 16 kHz: nothing above 4 kHz), as
// PocketSphinx estimates them after 30 of Debian's recorded Asterisk prompts. The model's own
// (feat.params, from wideband speech) are so far off that the first utterance of a stream
// decodes to nothing against a grammar until the running estimate has caught up.
// feat.params overrides -cmninit, so they are set on the decoder's CMN after ps_init.
constexpr float kPhoneCmnInit[] = {47.6f,  38.0f, -30.5f, 38.1f,  -15.6f, -1.9f, 12.5f,
                                   -21.7f, 23.1f, -9.2f,  -10.0f, 9.5f,   -12.4f};

class PocketSphinxEngine final : public SpeechEngine {
  public:
    ~PocketSphinxEngine() override {
        if (ps_) ps_free(ps_);
        if (config_) cmd_ln_free_r(config_);
    }

    static core::Result<std::unique_ptr<SpeechEngine>> make(const PocketSphinxOptions& o) {
        const fs::path dir =
            o.model_dir.empty() ? fs::path(kDefaultModelDir) : fs::path(o.model_dir);
        const fs::path hmm = dir / "en-us", lm = dir / "en-us.lm.bin",
                       dict = dir / "cmudict-en-us.dict";
        for (const auto& p : {hmm, lm, dict})
            if (!fs::exists(p))
                return core::make_error(
                    fmt::format("PocketSphinx model file \"{}\" is missing (install "
                                "pocketsphinx-en-us: scripts/setup.sh)",
                                p.string()),
                    "transcription.model_dir");
        auto e = std::unique_ptr<PocketSphinxEngine>(new PocketSphinxEngine);
        e->config_ = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", hmm.c_str(), "-lm", lm.c_str(),
                                 "-dict", dict.c_str(), "-logfn", "/dev/null", nullptr);
        if (!e->config_) return core::make_error("PocketSphinx rejected its configuration");
        e->ps_ = ps_init(e->config_);
        if (!e->ps_)
            return core::make_error(
                fmt::format("PocketSphinx could not load the model under \"{}\"", dir.string()),
                "transcription.model_dir");
        if (cmn_t* cmn = ps_get_feat(e->ps_)->cmn_struct;
            cmn && cmn->veclen == static_cast<int>(std::size(kPhoneCmnInit))) {
            std::vector<mfcc_t> init(std::begin(kPhoneCmnInit), std::end(kPhoneCmnInit));
            cmn_live_set(cmn, init.data());
        }
        e->default_search_ = ps_get_search(e->ps_);
        e->current_ = e->default_search_;
        return std::unique_ptr<SpeechEngine>(std::move(e));
    }

    std::string name() const override { return "pocketsphinx"; }

    core::Status begin(const Hints& hints) override {
        std::string search = default_search_;
        audio_.clear();
        phrases_.clear();
        for (const auto& p : hints.phrases) phrases_.push_back(normalize_words(p));
        if (!hints.empty()) {
            const std::string jsgf = hints.jsgf.empty() ? grammar_of(hints.phrases) : hints.jsgf;
            if (!jsgf.empty()) {
                search = fmt::format("g{:016x}", std::hash<std::string>{}(jsgf));
                if (!grammars_.contains(search)) {
                    if (ps_set_jsgf_string(ps_, search.c_str(), jsgf.c_str()) != 0)
                        return core::make_error(
                            "PocketSphinx rejected the grammar (JSGF syntax, or words it does not "
                            "know)",
                            "hints");
                    grammars_.insert(search);
                }
            }
        }
        if (search != current_) {
            if (ps_set_search(ps_, search.c_str()) != 0)
                return core::make_error("PocketSphinx cannot switch to search " + search);
            current_ = search;
        }
        if (ps_start_utt(ps_) != 0) return core::make_error("PocketSphinx: cannot start utterance");
        return core::Ok{};
    }

    core::Status feed(std::span<const std::int16_t> pcm) override {
        if (pcm.empty()) return core::Ok{};
        if (ps_process_raw(ps_, pcm.data(), pcm.size(), FALSE, FALSE) < 0)
            return core::make_error("PocketSphinx failed on the audio");
        if (current_ != default_search_) audio_.insert(audio_.end(), pcm.begin(), pcm.end());
        return core::Ok{};
    }

    std::optional<std::string> partial() override {
        const char* h = ps_get_hyp(ps_, nullptr);
        return std::string(h ? h : "");
    }

    core::Result<std::string> end() override {
        if (ps_end_utt(ps_) != 0) return core::make_error("PocketSphinx: cannot end utterance");
        const char* h = ps_get_hyp(ps_, nullptr);
        std::string text = h ? h : "";
        if (!text.empty() || current_ == default_search_ || audio_.empty()) return text;
        // The grammar search found no complete path. It happens on a decoder's first
        // utterances, before the running cepstral mean has settled on phone audio (the first
        // pass has just moved it), and on speech off the phrase list. So: the same grammar once
        // more over the kept audio, then the language model, taking the nearest expected phrase
        // when it is close (at most a third of its words wrong), else the words as heard.
        const auto redecode = [&] {
            ps_start_utt(ps_);
            ps_process_raw(ps_, audio_.data(), audio_.size(), FALSE, FALSE);
            ps_end_utt(ps_);
            const char* hyp = ps_get_hyp(ps_, nullptr);
            return std::string(hyp ? hyp : "");
        };
        text = redecode();
        if (!text.empty() || ps_set_search(ps_, default_search_.c_str()) != 0) {
            audio_.clear();
            return text;
        }
        current_ = default_search_;
        text = redecode();
        audio_.clear();
        const std::string* best = nullptr;
        double best_rate = 1.0;
        for (const auto& p : phrases_) {
            const auto w = word_errors(p, text);
            const double rate =
                w.words ? static_cast<double>(w.errors) / static_cast<double>(w.words) : 1.0;
            if (rate < best_rate) {
                best_rate = rate;
                best = &p;
            }
        }
        if (best && best_rate <= 1.0 / 3.0 + 1e-9) return *best;
        return text;
    }

  private:
    PocketSphinxEngine() = default;

    bool known(const std::string& word) {
        char* pron = ps_lookup_word(ps_, word.c_str());
        if (!pron) return false;
        ckd_free(pron);
        return true;
    }

    // One alternative per phrase; a phrase with a word the dictionary lacks is left out.
    std::string grammar_of(const std::vector<std::string>& phrases) {
        std::string alts;
        for (const auto& p : phrases) {
            const auto words = split_words(p);
            if (words.empty()) continue;
            bool ok = true;
            std::string alt;
            for (const auto& w : words) {
                ok = ok && known(w);
                alt += (alt.empty() ? "" : " ") + w;
            }
            if (ok) alts += (alts.empty() ? "" : " | ") + alt;
        }
        if (alts.empty()) return {};
        return "#JSGF V1.0;\ngrammar hints;\npublic <hint> = " + alts + " ;\n";
    }

    cmd_ln_t* config_ = nullptr;
    ps_decoder_t* ps_ = nullptr;
    std::string default_search_, current_;
    std::set<std::string> grammars_;
    std::vector<std::int16_t> audio_;   // the utterance, kept while a grammar decodes it
    std::vector<std::string> phrases_;  // the utterance's phrase hints, normalised
};

}  // namespace

core::Result<std::unique_ptr<SpeechEngine>> make_pocketsphinx_engine(const PocketSphinxOptions& o) {
    return PocketSphinxEngine::make(o);
}

}  // namespace mediasim::server
