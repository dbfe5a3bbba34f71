// WAV files: PCM16, μ-law (format tag 7) and A-law (tag 6); mono or stereo; any sample rate.
// Errors name the chunk and the byte offset. WavWriter keeps a growing file valid by rewriting
// its header at intervals and on close; repair_wav() makes a file cut short by a crash valid.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace mediasim::core {

enum class Encoding { pcm16, mulaw, alaw };

const char* to_string(Encoding e);  // "pcm16", "mulaw", "alaw"
Result<Encoding> parse_encoding(std::string_view name);

struct AudioFormat {
    Encoding encoding = Encoding::mulaw;
    int sample_rate_hz = 8000;
    int channels = 1;

    int bytes_per_sample() const { return encoding == Encoding::pcm16 ? 2 : 1; }
    int block_align() const { return bytes_per_sample() * channels; }
    bool operator==(const AudioFormat&) const = default;
};

// A WAV file as stored: its format and its raw interleaved sample bytes (little-endian PCM16).
struct WavFile {
    AudioFormat format;
    std::vector<std::uint8_t> data;
};

// Parses a WAV held in memory. `name` is used in error messages.
Result<WavFile> parse_wav(std::span<const std::uint8_t> bytes, std::string_view name = "<memory>");
Result<WavFile> read_wav(const std::filesystem::path& path);

// Decoded audio: interleaved PCM16.
struct Pcm {
    int sample_rate_hz = 8000;
    int channels = 1;
    std::vector<std::int16_t> samples;
};

struct ReadOptions {
    int sample_rate_hz = 0;  // 0: keep the file's rate; otherwise resample to this rate
    bool downmix = false;    // stereo → mono (average)
};
// Reads any supported WAV and decodes it to PCM16, converting as asked.
Result<Pcm> read_wav_pcm(const std::filesystem::path& path, const ReadOptions& opts = {});
Pcm decode_to_pcm(const WavFile& wav, const ReadOptions& opts = {});

// Serialises a whole file at once.
std::vector<std::uint8_t> make_wav(const AudioFormat& format, std::span<const std::uint8_t> data);
Status write_wav(const std::filesystem::path& path, const AudioFormat& format,
                 std::span<const std::uint8_t> data);

// A WAV that grows as audio arrives and stays readable at all times: the header is rewritten
// at most every `header_interval` and on close. Not thread-safe; one writer per file.
class WavWriter {
  public:
    WavWriter() = default;
    ~WavWriter();
    WavWriter(WavWriter&&) noexcept;
    WavWriter& operator=(WavWriter&&) noexcept;

    Status open(const std::filesystem::path& path, const AudioFormat& format,
                std::chrono::milliseconds header_interval = std::chrono::milliseconds(1000));
    Status write(std::span<const std::uint8_t> bytes);  // whole sample frames
    // Replaces one channel's samples in sample frames already written, from `first_frame` on:
    // `samples` holds that channel's bytes only (bytes_per_sample() each); the other channels'
    // bytes stay. For audio that arrives after its place was written as padding silence.
    Status overwrite_channel(std::uint64_t first_frame, int channel,
                             std::span<const std::uint8_t> samples);
    Status flush();  // data + header to the OS
    Status close();
    bool is_open() const { return file_ != nullptr; }
    std::uint64_t data_bytes() const { return data_bytes_; }
    const AudioFormat& format() const { return format_; }

  private:
    Status rewrite_header();
    std::FILE* file_ = nullptr;
    std::filesystem::path path_;
    AudioFormat format_;
    std::uint64_t data_bytes_ = 0;
    std::chrono::steady_clock::time_point last_header_{};
    std::chrono::milliseconds header_interval_{1000};
};

struct RepairReport {
    bool changed = false;             // false when the file was already valid
    std::uint64_t data_bytes = 0;     // audio bytes kept
    std::uint64_t dropped_bytes = 0;  // a trailing partial sample frame, if any
};
// Makes a WAV whose writer died valid again: the header sizes are set from the file length,
// a trailing partial sample frame is cut. Errors when the header itself is unreadable.
Result<RepairReport> repair_wav(const std::filesystem::path& path);

}  // namespace mediasim::core
