#include "reference-server/storage.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>

#include <fmt/core.h>

#include "core/wav.hpp"

namespace mediasim::server {
namespace {

using json = nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

constexpr std::uint8_t kMulawSilence = 0xFF;
constexpr std::int64_t kSamplesPerMs = 8;  // 8 kHz
// A timestamped frame that starts at most this far after the end of its channel is placed
// right after it: timestamps jitter, and a few ms of jitter must not become clicks.
constexpr std::int64_t kJitterSamples = 10 * kSamplesPerMs;
// A timestamp can run ahead of the wall clock since the stream began by this much at most; a
// later one (a bogus or hostile frame) is clamped, so no frame can make the recording fill
// memory or disk with silence.
constexpr std::int64_t kMaxAheadSamples = 10'000 * kSamplesPerMs;
// How far the channel that is ahead may run before the other one is padded with silence
// (both_tracks), and how long server audio stays clearable behind the stream clock.
constexpr std::int64_t kLagSamples = 200 * kSamplesPerMs;
// The background flusher: how often it looks at every open recording, how long a recording
// must be idle before its buffered tail is committed, and how often data reaches the OS.
constexpr auto kTick = std::chrono::milliseconds(200);
constexpr auto kIdleCommit = std::chrono::milliseconds(200);
constexpr auto kFlushEvery = std::chrono::milliseconds(400);
// SQLite writer: one transaction per this interval, or sooner once this many rows wait.
constexpr auto kBatchInterval = std::chrono::milliseconds(100);
constexpr std::size_t kBatchRows = 512;

constexpr const char* kDbName = "mediasim.db";
constexpr const char* kLockName = ".lock";
constexpr const char* kRecordingsDir = "recordings";

std::int64_t now_unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string iso_utc(std::int64_t unix_ms) {
    const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unix_ms % 1000);
}

// Ids become file names: keep [A-Za-z0-9_-], replace anything else, never empty or "..".
std::string safe_file_part(std::string_view id) {
    std::string out;
    for (char c : id.substr(0, 64)) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-';
        out += ok ? c : '_';
    }
    if (out.empty()) out = "unknown";
    return out;
}

const char* track_name(core::Track t) {
    return t == core::Track::inbound ? "inbound" : "outbound";
}

json params_json(const core::Parameters& params) {
    json o = json::object();
    for (const auto& [name, value] : params) o[name] = value;
    return o;
}

// A detail is "a short JSON object or text": objects and arrays are served as JSON, anything
// else as a string.
json detail_json(const std::string& detail) {
    if (!detail.empty() && (detail.front() == '{' || detail.front() == '[')) {
        json parsed = json::parse(detail, nullptr, false);
        if (!parsed.is_discarded()) return parsed;
    }
    return detail;
}

// ---------------------------------------------------------------------------------------------
// SQLite

using Value = std::variant<std::nullptr_t, std::int64_t, double, std::string>;

struct WriteOp {
    const char* sql;  // a string literal: also the key of the prepared-statement cache
    std::vector<Value> values;
};

std::string sqlite_message(sqlite3* db, std::string_view what) {
    return fmt::format("{}: {}", what, db ? sqlite3_errmsg(db) : "out of memory");
}

class Statement {
  public:
    Statement(sqlite3* db, const char* sql) {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    bool ok() const { return stmt_ != nullptr; }
    sqlite3_stmt* get() const { return stmt_; }
    void bind(int i, const Value& v) {
        if (std::holds_alternative<std::nullptr_t>(v)) {
            sqlite3_bind_null(stmt_, i);
        } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
            sqlite3_bind_int64(stmt_, i, *n);
        } else if (const auto* d = std::get_if<double>(&v)) {
            sqlite3_bind_double(stmt_, i, *d);
        } else {
            const auto& s = std::get<std::string>(v);
            sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
        }
    }
    bool step_row() { return sqlite3_step(stmt_) == SQLITE_ROW; }
    std::string text(int col) const {
        const auto* p = sqlite3_column_text(stmt_, col);
        return p ? std::string(reinterpret_cast<const char*>(p),
                               static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string();
    }
    bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
    double real(int col) const { return sqlite3_column_double(stmt_, col); }

  private:
    sqlite3_stmt* stmt_ = nullptr;
};

core::Status exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        return core::make_error(fmt::format("SQLite: {} (in: {:.60})", msg, sql));
    }
    return core::Ok{};
}

core::Result<sqlite3*> open_db(const std::filesystem::path& path) {
    sqlite3* db = nullptr;
    const int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        auto msg = sqlite_message(db, fmt::format("cannot open database {}", path.string()));
        sqlite3_close(db);
        return core::make_error(std::move(msg));
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls(
  call_sid TEXT PRIMARY KEY,
  account_sid TEXT NOT NULL DEFAULT '',
  from_number TEXT NOT NULL DEFAULT '',
  to_number TEXT NOT NULL DEFAULT '',
  direction TEXT NOT NULL DEFAULT '',
  flow TEXT NOT NULL DEFAULT '',
  webhook TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS streams(
  id INTEGER PRIMARY KEY,
  stream_sid TEXT NOT NULL,
  call_sid TEXT NOT NULL,
  account_sid TEXT NOT NULL DEFAULT '',
  tracks TEXT NOT NULL,
  bidirectional INTEGER NOT NULL,
  custom_parameters TEXT NOT NULL DEFAULT '{}',
  path TEXT NOT NULL DEFAULT '',
  recording TEXT NOT NULL,
  channels INTEGER NOT NULL,
  status TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  data_bytes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS streams_call ON streams(call_sid);
CREATE INDEX IF NOT EXISTS streams_status ON streams(status);
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  call_sid TEXT NOT NULL,
  stream_id INTEGER,
  stream_sid TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_call ON events(call_sid);
CREATE TABLE IF NOT EXISTS transcripts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  call_sid TEXT NOT NULL,
  stream_sid TEXT NOT NULL DEFAULT '',
  track TEXT NOT NULL,
  final INTEGER NOT NULL,
  text TEXT NOT NULL,
  start_seconds REAL NOT NULL,
  end_seconds REAL NOT NULL,
  at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS transcripts_call ON transcripts(call_sid);
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
)sql";

constexpr const char* kInsertCallStub =
    "INSERT OR IGNORE INTO calls(call_sid, account_sid, created_at) VALUES(?1, ?2, ?3)";
constexpr const char* kUpsertCall =
    "INSERT INTO calls(call_sid, account_sid, from_number, to_number, direction, flow, webhook,"
    " created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(call_sid) DO UPDATE SET"
    " account_sid=excluded.account_sid, from_number=excluded.from_number,"
    " to_number=excluded.to_number, direction=excluded.direction, flow=excluded.flow,"
    " webhook=excluded.webhook";
constexpr const char* kInsertStream =
    "INSERT INTO streams(id, stream_sid, call_sid, account_sid, tracks, bidirectional,"
    " custom_parameters, path, recording, channels, status, started_at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open', ?11)";
constexpr const char* kFinishStream =
    "UPDATE streams SET status=?2, ended_at=?3, data_bytes=?4 WHERE id=?1";
constexpr const char* kInsertEvent =
    "INSERT INTO events(call_sid, stream_id, stream_sid, kind, detail, at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kInsertTranscript =
    "INSERT INTO transcripts(call_sid, stream_sid, track, final, text, start_seconds,"
    " end_seconds, at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

// The one writer: a queue drained by one thread, one transaction per batch.
class DbWriter {
  public:
    explicit DbWriter(sqlite3* db) : db_(db), thread_([this] { run(); }) {}
    ~DbWriter() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
        for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
        sqlite3_close(db_);
    }
    DbWriter(const DbWriter&) = delete;
    DbWriter& operator=(const DbWriter&) = delete;

    void push(WriteOp op) {
        bool wake = false;
        {
            std::lock_guard lk(m_);
            queue_.push_back(std::move(op));
            ++pushed_;
            wake = queue_.size() >= kBatchRows;
        }
        if (wake) cv_.notify_all();
    }

    // Returns once everything pushed before the call is committed.
    void sync() {
        std::unique_lock lk(m_);
        const std::uint64_t target = pushed_;
        urgent_ = true;
        cv_.notify_all();
        done_cv_.wait(lk, [&] { return done_ >= target; });
    }

    std::uint64_t errors() const { return errors_.load(); }
    std::uint64_t rows_written() const { return rows_written_.load(); }
    std::uint64_t queue_depth() {
        std::lock_guard lk(m_);
        return queue_.size();
    }

  private:
    void run() {
        std::unique_lock lk(m_);
        for (;;) {
            cv_.wait_for(lk, kBatchInterval,
                         [&] { return stop_ || urgent_ || queue_.size() >= kBatchRows; });
            urgent_ = false;
            if (queue_.empty()) {
                if (stop_) return;
                continue;
            }
            std::vector<WriteOp> batch(std::make_move_iterator(queue_.begin()),
                                       std::make_move_iterator(queue_.end()));
            queue_.clear();
            lk.unlock();
            write(batch);
            lk.lock();
            done_ += batch.size();
            done_cv_.notify_all();
        }
    }

    void write(const std::vector<WriteOp>& batch) {
        if (auto st = exec(db_, "BEGIN IMMEDIATE"); !st) report(st.error().message);
        for (const auto& op : batch) {
            sqlite3_stmt* stmt = prepared(op.sql);
            if (!stmt) continue;
            for (std::size_t i = 0; i < op.values.size(); ++i) {
                const int col = static_cast<int>(i) + 1;
                const auto& v = op.values[i];
                if (std::holds_alternative<std::nullptr_t>(v)) {
                    sqlite3_bind_null(stmt, col);
                } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
                    sqlite3_bind_int64(stmt, col, *n);
                } else if (const auto* d = std::get_if<double>(&v)) {
                    sqlite3_bind_double(stmt, col, *d);
                } else {
                    const auto& s = std::get<std::string>(v);
                    sqlite3_bind_text(stmt, col, s.data(), static_cast<int>(s.size()),
                                      SQLITE_STATIC);
                }
            }
            if (sqlite3_step(stmt) != SQLITE_DONE) {
                report(sqlite_message(db_, op.sql));
            } else {
                ++rows_written_;
            }
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
        }
        if (auto st = exec(db_, "COMMIT"); !st) {
            report(st.error().message);
            (void)exec(db_, "ROLLBACK");
        }
    }

    sqlite3_stmt* prepared(const char* sql) {
        auto it = cache_.find(sql);
        if (it != cache_.end()) return it->second;
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
            report(sqlite_message(db_, sql));
            return nullptr;
        }
        cache_.emplace(sql, stmt);
        return stmt;
    }

    void report(const std::string& msg) {
        ++errors_;
        fmt::print(stderr, "storage: database write failed: {}\n", msg);
    }

    sqlite3* db_;
    std::mutex m_;
    std::condition_variable cv_;
    std::condition_variable done_cv_;
    std::deque<WriteOp> queue_;
    std::uint64_t pushed_ = 0;
    std::uint64_t done_ = 0;
    bool stop_ = false;
    bool urgent_ = false;
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<std::uint64_t> rows_written_{0};
    std::unordered_map<const char*, sqlite3_stmt*> cache_;  // writer thread only
    std::thread thread_;  // last: starts after everything above exists
};

// ---------------------------------------------------------------------------------------------
// Recording one stream

struct RecordingCounters {
    std::atomic<std::uint64_t> recording_errors{0};
    std::atomic<std::uint64_t> gaps_filled{0};
    std::atomic<std::uint64_t> frames_overlapping{0};
    std::atomic<std::uint64_t> timestamps_clamped{0};
};

// One channel of not-yet-written audio, from the recording's committed position on.
class ChannelBuffer {
  public:
    std::size_t size() const { return bytes_.size() - head_; }
    // Writes bytes at `offset` from the committed position, padding with silence.
    void put(std::size_t offset, std::span<const std::uint8_t> bytes) {
        grow(offset + bytes.size());
        std::copy(bytes.begin(), bytes.end(),
                  bytes_.begin() + static_cast<std::ptrdiff_t>(head_ + offset));
    }
    void silence(std::size_t from, std::size_t to) {
        grow(to);
        std::fill(bytes_.begin() + static_cast<std::ptrdiff_t>(head_ + from),
                  bytes_.begin() + static_cast<std::ptrdiff_t>(head_ + to), kMulawSilence);
    }
    void grow(std::size_t n) {
        if (size() < n) bytes_.resize(head_ + n, kMulawSilence);
    }
    const std::uint8_t* data() const { return bytes_.data() + head_; }
    // Drops the first n bytes (committed to the file).
    void consume(std::size_t n) {
        head_ += std::min(n, size());
        if (head_ == bytes_.size()) {
            bytes_.clear();
            head_ = 0;
        } else if (head_ >= 65536 && head_ * 2 >= bytes_.size()) {
            bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }

  private:
    std::vector<std::uint8_t> bytes_;
    std::size_t head_ = 0;
};

// Everything about one recording; shared by its StreamRecorder and the background flusher,
// which both lock `m`.
struct RecordingState {
    std::mutex m;
    std::int64_t id = 0;
    std::string stream_sid;
    std::string call_sid;
    RecordingCounters* counters = nullptr;  // owned by the StoreCore, which outlives this
    std::filesystem::path wav_path;
    core::WavWriter wav;
    bool wav_failed = false;
    bool stereo = false;
    bool bidirectional = false;
    core::Track mono_track = core::Track::inbound;  // which track a mono file holds
    bool finished = false;

    // Sample positions since the stream started (1 sample = 1 byte per channel).
    std::int64_t committed = 0;  // frames written to the WAV
    std::int64_t left_end = 0;   // where each channel's audio ends
    std::int64_t right_end = 0;
    std::int64_t clock = 0;     // the latest stream time seen (timestamps, at_ms)
    ChannelBuffer left, right;  // stereo only

    SteadyClock::time_point began = SteadyClock::now();
    SteadyClock::time_point last_activity = began;
    SteadyClock::time_point last_flush = SteadyClock::now();
    bool dirty = false;  // bytes given to the writer since the last flush
    std::vector<std::uint8_t> scratch;

    void fail(const core::Diagnostic& d) {
        if (!wav_failed) {
            ++counters->recording_errors;
            fmt::print(stderr, "storage: stream {}: recording {}: {}\n", stream_sid,
                       wav_path.string(), d.to_string());
        }
        wav_failed = true;
    }

    void write_raw(std::span<const std::uint8_t> bytes) {
        if (wav_failed || bytes.empty()) return;
        if (auto st = wav.write(bytes); !st) return fail(st.error());
        dirty = true;
    }

    // Where a timestamped frame goes in a channel that ends at `end`.
    std::int64_t position(std::int64_t want, std::int64_t end) const {
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - began)
                .count();
        const std::int64_t limit = elapsed * kSamplesPerMs + kMaxAheadSamples;
        if (want > limit) {
            ++counters->timestamps_clamped;
            want = std::max(end, limit);
        }
        if (want > end + kJitterSamples) {
            ++counters->gaps_filled;
            return want;
        }
        if (want < end) ++counters->frames_overlapping;
        return end;
    }

    // Mono: audio goes straight to the file, silence first for a gap.
    void mono_write(std::span<const std::uint8_t> bytes, std::int64_t want) {
        const std::int64_t pos = position(want, left_end);
        if (pos > left_end) {
            scratch.assign(static_cast<std::size_t>(pos - left_end), kMulawSilence);
            write_raw(scratch);
        }
        write_raw(bytes);
        left_end = pos + static_cast<std::int64_t>(bytes.size());
        committed = left_end;
        clock = std::max(clock, left_end);
    }

    // Stereo: place at `pos` (never before the channel's end, so only padding is ever replaced);
    // returns the end position. What falls before the committed position is written into the
    // file over the silence that padded this channel there (the other channel was ahead and an
    // idle commit or flush wrote it first), so a late frame still lands at its time.
    std::int64_t place(ChannelBuffer& ch, std::int64_t pos, std::span<const std::uint8_t> bytes) {
        const std::int64_t end = pos + static_cast<std::int64_t>(bytes.size());
        if (pos < committed) {
            const auto n = static_cast<std::size_t>(std::min(end, committed) - pos);
            if (!wav_failed) {
                if (auto st = wav.overwrite_channel(static_cast<std::uint64_t>(pos),
                                                    &ch == &left ? 0 : 1, bytes.first(n));
                    !st)
                    fail(st.error());
            }
            bytes = bytes.subspan(n);
            pos += static_cast<std::int64_t>(n);
        }
        if (!bytes.empty()) ch.put(static_cast<std::size_t>(pos - committed), bytes);
        return end;
    }

    void stereo_timestamped(bool is_left, std::span<const std::uint8_t> bytes, std::int64_t want) {
        std::int64_t& end = is_left ? left_end : right_end;
        const std::int64_t pos = position(want, end);
        end = place(is_left ? left : right, pos, bytes);
        clock = std::max(clock, end);
        commit_to(horizon());
    }

    // How far both channels are final.
    std::int64_t horizon() const {
        if (bidirectional) return std::max(left_end, clock) - kLagSamples;
        const std::int64_t lo = std::min(left_end, right_end);
        const std::int64_t hi = std::max(left_end, right_end);
        return std::max(lo, hi - kLagSamples);
    }
    // What may be committed when nothing more is coming for now (idle, flush, finish).
    std::int64_t idle_horizon() const {
        if (bidirectional) return std::max(left_end, clock);
        return std::max(left_end, right_end);
    }

    void commit_to(std::int64_t target) {
        if (!stereo || target <= committed) return;
        const auto n = static_cast<std::size_t>(target - committed);
        left.grow(n);
        right.grow(n);
        scratch.resize(n * 2);
        const std::uint8_t* __restrict l = left.data();
        const std::uint8_t* __restrict r = right.data();
        std::uint8_t* __restrict out = scratch.data();
        for (std::size_t i = 0; i < n; ++i) {
            out[2 * i] = l[i];
            out[2 * i + 1] = r[i];
        }
        write_raw(scratch);
        left.consume(n);
        right.consume(n);
        committed = target;
    }

    void flush_to_os() {
        if (wav_failed || !wav.is_open()) return;
        if (auto st = wav.flush(); !st) return fail(st.error());
        dirty = false;
        last_flush = SteadyClock::now();
    }

    // The flusher's visit.
    void tick(SteadyClock::time_point now) {
        if (finished) return;
        if (stereo && now - last_activity >= kIdleCommit) commit_to(idle_horizon());
        if (dirty && now - last_flush >= kFlushEvery) flush_to_os();
    }
};

class StoreCore;

class Recorder final : public StreamRecorder {
  public:
    Recorder(std::shared_ptr<StoreCore> core, std::shared_ptr<RecordingState> state)
        : core_(std::move(core)), state_(std::move(state)) {}
    ~Recorder() override { finish("closed"); }

    void inbound_audio(std::span<const std::uint8_t> mulaw, std::uint64_t timestamp_ms) override;
    void outbound_audio(std::span<const std::uint8_t> mulaw, std::uint64_t at_ms) override;
    void outbound_clear(std::uint64_t at_ms) override;
    void event(std::string_view kind, std::string_view detail) override;
    void finish(std::string_view how) override;

  private:
    std::shared_ptr<StoreCore> core_;
    std::shared_ptr<RecordingState> state_;
};

// What recorders share with the Storage: the writer and the registry of open recordings.
// Recorders hold it by shared_ptr, so a recorder that outlives its Storage still finishes.
class StoreCore {
  public:
    StoreCore(int lock_fd, std::filesystem::path data_dir, sqlite3* writer_db,
              std::int64_t next_stream_id)
        : lock_(lock_fd),
          data_dir_(std::move(data_dir)),
          writer_(writer_db),
          next_stream_id_(next_stream_id) {}

    const std::filesystem::path& data_dir() const { return data_dir_; }
    DbWriter& writer() { return writer_; }
    std::int64_t take_stream_id() { return next_stream_id_++; }
    RecordingCounters& counters() { return counters_; }
    std::size_t open_count() {
        std::lock_guard lk(reg_m_);
        return open_.size();
    }

    void add(const std::shared_ptr<RecordingState>& s) {
        std::lock_guard lk(reg_m_);
        open_[s.get()] = s;
    }
    void remove(RecordingState* s) {
        std::lock_guard lk(reg_m_);
        open_.erase(s);
    }
    std::vector<std::shared_ptr<RecordingState>> open_recordings() {
        std::vector<std::shared_ptr<RecordingState>> out;
        std::lock_guard lk(reg_m_);
        out.reserve(open_.size());
        for (auto& [p, w] : open_)
            if (auto s = w.lock()) out.push_back(std::move(s));
        return out;
    }

    // Picks a file name no other recording uses: recordings/<CallSid>/<StreamSid>[-n].wav.
    std::filesystem::path new_recording_path(std::string_view call_sid,
                                             std::string_view stream_sid) {
        std::lock_guard lk(name_m_);
        const std::filesystem::path rel =
            std::filesystem::path(kRecordingsDir) / safe_file_part(call_sid);
        const std::string base = safe_file_part(stream_sid);
        for (int n = 1;; ++n) {
            std::filesystem::path candidate =
                rel / (n == 1 ? base + ".wav" : fmt::format("{}-{}.wav", base, n));
            std::error_code ec;
            if (!std::filesystem::exists(data_dir_ / candidate, ec) &&
                taken_.insert(candidate.string()).second)
                return candidate;
        }
    }
    // Once the file exists (or could not be made), the name need not be held any more.
    void release_recording_path(const std::filesystem::path& rel) {
        std::lock_guard lk(name_m_);
        taken_.erase(rel.string());
    }

  private:
    // The data directory's lock, released last: after the writer has committed and closed.
    struct Lock {
        explicit Lock(int lock_fd) : fd(lock_fd) {}
        ~Lock() { ::close(fd); }
        Lock(const Lock&) = delete;
        Lock& operator=(const Lock&) = delete;
        int fd;
    } lock_;
    std::filesystem::path data_dir_;
    DbWriter writer_;
    std::atomic<std::int64_t> next_stream_id_;
    RecordingCounters counters_;
    std::mutex reg_m_;
    std::unordered_map<RecordingState*, std::weak_ptr<RecordingState>> open_;
    std::mutex name_m_;
    std::set<std::string> taken_;  // names chosen whose files may not exist yet
};

void Recorder::inbound_audio(std::span<const std::uint8_t> mulaw, std::uint64_t timestamp_ms) {
    auto& s = *state_;
    std::lock_guard lk(s.m);
    if (s.finished) return;
    s.last_activity = SteadyClock::now();
    const auto want = static_cast<std::int64_t>(timestamp_ms) * kSamplesPerMs;
    if (!s.stereo) {
        if (s.mono_track == core::Track::inbound) s.mono_write(mulaw, want);
        return;
    }
    s.stereo_timestamped(true, mulaw, want);
}

void Recorder::outbound_audio(std::span<const std::uint8_t> mulaw, std::uint64_t at_ms) {
    auto& s = *state_;
    std::lock_guard lk(s.m);
    if (s.finished) return;
    s.last_activity = SteadyClock::now();
    const auto at = static_cast<std::int64_t>(at_ms) * kSamplesPerMs;
    if (!s.stereo) {
        // An outbound-only <Start> stream records Twilio's outbound track; on an inbound-only
        // unidirectional stream Twilio ignores server audio, and so does the recording.
        if (s.mono_track == core::Track::outbound && !s.bidirectional) s.mono_write(mulaw, at);
        return;
    }
    if (!s.bidirectional) return s.stereo_timestamped(false, mulaw, at);
    // Server audio joins Twilio's play-out queue: it starts when everything queued before it
    // has played, and never before it was sent.
    s.clock = std::max(s.clock, at);
    s.right_end = s.place(s.right, std::max(at, s.right_end), mulaw);
    s.commit_to(s.horizon());
}

void Recorder::outbound_clear(std::uint64_t at_ms) {
    auto& s = *state_;
    std::lock_guard lk(s.m);
    if (s.finished || !s.stereo || !s.bidirectional) return;
    s.last_activity = SteadyClock::now();
    const auto at = static_cast<std::int64_t>(at_ms) * kSamplesPerMs;
    s.clock = std::max(s.clock, at);
    // What has been written to the file has played; the rest of the queue is dropped.
    const std::int64_t cut = std::max(at, s.committed);
    if (s.right_end > cut) {
        s.right.silence(static_cast<std::size_t>(cut - s.committed),
                        static_cast<std::size_t>(s.right_end - s.committed));
        s.right_end = cut;
    }
    s.commit_to(s.horizon());
}

void Recorder::event(std::string_view kind, std::string_view detail) {
    core_->writer().push(WriteOp{kInsertEvent,
                                 {state_->call_sid, state_->id, state_->stream_sid,
                                  std::string(kind), std::string(detail), now_unix_ms()}});
}

void Recorder::finish(std::string_view how) {
    auto& s = *state_;
    {
        std::lock_guard lk(s.m);
        if (s.finished) return;
        if (s.stereo) {
            // Server audio still queued when the stream ends is never played.
            const std::int64_t end = std::max(s.left_end, s.clock);
            if (s.bidirectional && s.right_end > end) {
                s.right.silence(static_cast<std::size_t>(std::max(end, s.committed) - s.committed),
                                static_cast<std::size_t>(s.right_end - s.committed));
                s.right_end = end;
            }
            s.commit_to(s.idle_horizon());
        }
        if (s.wav.is_open()) {
            if (auto st = s.wav.close(); !st) s.fail(st.error());
        }
        s.finished = true;
        core_->writer().push(WriteOp{kFinishStream,
                                     {s.id, std::string(how), now_unix_ms(),
                                      static_cast<std::int64_t>(s.wav.data_bytes())}});
    }
    core_->remove(&s);
}

// ---------------------------------------------------------------------------------------------
// The store

class StorageImpl final : public Storage {
  public:
    StorageImpl(std::shared_ptr<StoreCore> core, sqlite3* reader, std::uint64_t repaired)
        : core_(std::move(core)), reader_(reader), repaired_(repaired) {
        flusher_ = std::thread([this] { flush_loop(); });
    }
    ~StorageImpl() override {
        {
            std::lock_guard lk(flusher_m_);
            stop_ = true;
        }
        flusher_cv_.notify_all();
        flusher_.join();
        flush();
        sqlite3_close(reader_);
    }
    StorageImpl(const StorageImpl&) = delete;
    StorageImpl& operator=(const StorageImpl&) = delete;

    void record_call(const CallInfo& call) override {
        core_->writer().push(
            WriteOp{kUpsertCall,
                    {call.call_sid, call.account_sid, call.from, call.to, call.direction, call.flow,
                     params_json(call.webhook).dump(), now_unix_ms()}});
    }

    void call_event(std::string_view call_sid, std::string_view kind,
                    std::string_view detail) override {
        core_->writer().push(WriteOp{kInsertEvent,
                                     {std::string(call_sid), nullptr, std::string(),
                                      std::string(kind), std::string(detail), now_unix_ms()}});
    }

    std::unique_ptr<StreamRecorder> begin_stream(const StreamInfo& info) override;

    void add_transcript(const TranscriptSegment& seg) override {
        core_->writer().push(
            WriteOp{kInsertTranscript,
                    {seg.call_sid, seg.stream_sid, seg.track, std::int64_t{seg.final ? 1 : 0},
                     seg.text, seg.start_seconds, seg.end_seconds, now_unix_ms()}});
    }

    std::string calls_json(std::size_t limit) override;
    std::optional<std::string> call_json(std::string_view call_sid) override;
    std::optional<std::string> transcript_text(std::string_view call_sid) override;
    std::optional<std::filesystem::path> recording_path(std::string_view call_sid) override;

    void flush() override {
        for (auto& s : core_->open_recordings()) {
            std::lock_guard lk(s->m);
            if (s->finished) continue;
            if (s->stereo) s->commit_to(s->idle_horizon());
            s->flush_to_os();
        }
        core_->writer().sync();
    }

    StorageStats stats() override {
        StorageStats st;
        st.open_recordings = core_->open_count();
        st.db_queue_depth = core_->writer().queue_depth();
        st.db_rows_written = core_->writer().rows_written();
        st.db_errors = core_->writer().errors();
        st.recording_errors = core_->counters().recording_errors.load();
        st.gaps_filled = core_->counters().gaps_filled.load();
        st.frames_overlapping = core_->counters().frames_overlapping.load();
        st.timestamps_clamped = core_->counters().timestamps_clamped.load();
        st.repaired_on_open = repaired_;
        return st;
    }

  private:
    void flush_loop() {
        std::unique_lock lk(flusher_m_);
        while (!stop_) {
            flusher_cv_.wait_for(lk, kTick, [&] { return stop_; });
            if (stop_) break;
            lk.unlock();
            const auto now = SteadyClock::now();
            for (auto& s : core_->open_recordings()) {
                std::lock_guard slk(s->m);
                s->tick(now);
            }
            lk.lock();
        }
    }

    json stream_row_json(Statement& st);

    std::shared_ptr<StoreCore> core_;
    std::mutex reader_m_;
    sqlite3* reader_;
    std::uint64_t repaired_;
    std::mutex flusher_m_;
    std::condition_variable flusher_cv_;
    bool stop_ = false;
    std::thread flusher_;
};

std::unique_ptr<StreamRecorder> StorageImpl::begin_stream(const StreamInfo& info) {
    auto state = std::make_shared<RecordingState>();
    state->id = core_->take_stream_id();
    state->stream_sid = info.stream_sid;
    state->call_sid = info.call_sid;
    state->counters = &core_->counters();
    const bool has_in = std::find(info.tracks.begin(), info.tracks.end(), core::Track::inbound) !=
                        info.tracks.end();
    const bool has_out = std::find(info.tracks.begin(), info.tracks.end(), core::Track::outbound) !=
                         info.tracks.end();
    state->bidirectional = info.bidirectional;
    state->stereo = info.bidirectional || (has_in && has_out);
    state->mono_track = (!has_in && has_out) ? core::Track::outbound : core::Track::inbound;
    const int channels = state->stereo ? 2 : 1;

    const auto rel = core_->new_recording_path(info.call_sid, info.stream_sid);
    state->wav_path = core_->data_dir() / rel;
    std::error_code ec;
    std::filesystem::create_directories(state->wav_path.parent_path(), ec);
    if (ec) {
        state->fail(core::make_error(fmt::format(
            "cannot create {}: {}", state->wav_path.parent_path().string(), ec.message())));
    } else {
        core::AudioFormat format{core::Encoding::mulaw, 8000, channels};
        if (auto st = state->wav.open(state->wav_path, format); !st) state->fail(st.error());
    }
    core_->release_recording_path(rel);

    json tracks = json::array();
    for (auto t : info.tracks) tracks.push_back(track_name(t));
    auto& w = core_->writer();
    const auto now = now_unix_ms();
    w.push(WriteOp{kInsertCallStub, {info.call_sid, info.account_sid, now}});
    w.push(WriteOp{
        kInsertStream,
        {state->id, info.stream_sid, info.call_sid, info.account_sid, tracks.dump(),
         std::int64_t{info.bidirectional ? 1 : 0}, params_json(info.custom_parameters).dump(),
         info.path, rel.string(), std::int64_t{channels}, now}});
    if (state->wav_failed) {
        w.push(WriteOp{kInsertEvent,
                       {info.call_sid, state->id, info.stream_sid, std::string("error"),
                        json{{"recording", "could not be opened"}}.dump(), now}});
    }
    core_->add(state);
    return std::make_unique<Recorder>(core_, std::move(state));
}

json StorageImpl::stream_row_json(Statement& st) {
    // Columns: id, stream_sid, tracks, bidirectional, custom_parameters, path, recording,
    // channels, status, started_at, ended_at, data_bytes
    json s;
    s["stream_sid"] = st.text(1);
    s["tracks"] = json::parse(st.text(2), nullptr, false);
    s["bidirectional"] = st.int64(3) != 0;
    s["custom_parameters"] = json::parse(st.text(4), nullptr, false);
    s["path"] = st.text(5);
    s["recording"] = st.text(6);
    const auto channels = st.int64(7);
    s["channels"] = channels;
    s["status"] = st.text(8);
    s["started_at"] = iso_utc(st.int64(9));
    s["ended_at"] = st.is_null(10) ? json(nullptr) : json(iso_utc(st.int64(10)));
    const auto bytes = st.int64(11);
    s["data_bytes"] = bytes;
    s["duration_seconds"] = channels > 0 ? static_cast<double>(bytes) / (8000.0 * channels) : 0;
    return s;
}

std::string StorageImpl::calls_json(std::size_t limit) {
    core_->writer().sync();
    std::lock_guard lk(reader_m_);
    Statement st(reader_,
                 "SELECT c.call_sid, c.account_sid, c.from_number, c.to_number, c.direction,"
                 " c.flow, c.created_at, (SELECT COUNT(*) FROM streams s WHERE"
                 " s.call_sid = c.call_sid) FROM calls c ORDER BY c.created_at DESC,"
                 " c.rowid DESC LIMIT ?1");
    json calls = json::array();
    if (st.ok()) {
        st.bind(1, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1'000'000)));
        while (st.step_row()) {
            calls.push_back(json{{"call_sid", st.text(0)},
                                 {"account_sid", st.text(1)},
                                 {"from", st.text(2)},
                                 {"to", st.text(3)},
                                 {"direction", st.text(4)},
                                 {"flow", st.text(5)},
                                 {"created_at", iso_utc(st.int64(6))},
                                 {"streams", st.int64(7)}});
        }
    }
    return json{{"calls", std::move(calls)}}.dump();
}

std::optional<std::string> StorageImpl::call_json(std::string_view call_sid) {
    core_->writer().sync();
    std::lock_guard lk(reader_m_);
    const Value sid = std::string(call_sid);
    json call;
    {
        Statement st(reader_,
                     "SELECT call_sid, account_sid, from_number, to_number, direction, flow,"
                     " webhook, created_at FROM calls WHERE call_sid = ?1");
        if (!st.ok()) return std::nullopt;
        st.bind(1, sid);
        if (!st.step_row()) return std::nullopt;
        call["call_sid"] = st.text(0);
        call["account_sid"] = st.text(1);
        call["from"] = st.text(2);
        call["to"] = st.text(3);
        call["direction"] = st.text(4);
        call["flow"] = st.text(5);
        call["webhook"] = json::parse(st.text(6), nullptr, false);
        call["created_at"] = iso_utc(st.int64(7));
    }
    {
        Statement st(reader_,
                     "SELECT id, stream_sid, tracks, bidirectional, custom_parameters, path,"
                     " recording, channels, status, started_at, ended_at, data_bytes FROM streams"
                     " WHERE call_sid = ?1 ORDER BY id");
        json streams = json::array();
        if (st.ok()) {
            st.bind(1, sid);
            while (st.step_row()) streams.push_back(stream_row_json(st));
        }
        call["streams"] = std::move(streams);
    }
    {
        Statement st(reader_,
                     "SELECT stream_sid, kind, detail, at FROM events WHERE call_sid = ?1"
                     " ORDER BY id");
        json events = json::array();
        if (st.ok()) {
            st.bind(1, sid);
            while (st.step_row()) {
                events.push_back(json{{"stream_sid", st.text(0)},
                                      {"kind", st.text(1)},
                                      {"detail", detail_json(st.text(2))},
                                      {"at", iso_utc(st.int64(3))}});
            }
        }
        call["events"] = std::move(events);
    }
    {
        Statement st(reader_,
                     "SELECT stream_sid, track, final, text, start_seconds, end_seconds FROM"
                     " transcripts WHERE call_sid = ?1 ORDER BY start_seconds, id");
        json segments = json::array();
        if (st.ok()) {
            st.bind(1, sid);
            while (st.step_row()) {
                segments.push_back(json{{"stream_sid", st.text(0)},
                                        {"track", st.text(1)},
                                        {"final", st.int64(2) != 0},
                                        {"text", st.text(3)},
                                        {"start_seconds", st.real(4)},
                                        {"end_seconds", st.real(5)}});
            }
        }
        call["transcript"] = std::move(segments);
    }
    return call.dump();
}

std::optional<std::string> StorageImpl::transcript_text(std::string_view call_sid) {
    core_->writer().sync();
    std::lock_guard lk(reader_m_);
    {
        Statement st(reader_, "SELECT 1 FROM calls WHERE call_sid = ?1");
        if (!st.ok()) return std::nullopt;
        st.bind(1, std::string(call_sid));
        if (!st.step_row()) return std::nullopt;
    }
    Statement st(reader_,
                 "SELECT track, text, start_seconds, end_seconds FROM transcripts WHERE"
                 " call_sid = ?1 AND final = 1 ORDER BY start_seconds, id");
    std::string out;
    if (!st.ok()) return out;
    st.bind(1, std::string(call_sid));
    while (st.step_row()) {
        out +=
            fmt::format("[{:.2f}-{:.2f}] {}: {}\n", st.real(2), st.real(3), st.text(0), st.text(1));
    }
    return out;
}

std::optional<std::filesystem::path> StorageImpl::recording_path(std::string_view call_sid) {
    core_->writer().sync();
    std::lock_guard lk(reader_m_);
    Statement st(reader_, "SELECT recording FROM streams WHERE call_sid = ?1 ORDER BY id LIMIT 1");
    if (!st.ok()) return std::nullopt;
    st.bind(1, std::string(call_sid));
    if (!st.step_row()) return std::nullopt;
    auto path = core_->data_dir() / st.text(0);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
    return path;
}

// After a crash: every stream still 'open' had its writer die. Repair its WAV (sizes from the
// file length) and mark it interrupted with the bytes kept.
core::Result<std::uint64_t> repair_after_crash(sqlite3* db, const std::filesystem::path& data_dir) {
    struct Open {
        std::int64_t id;
        std::string call_sid, stream_sid, recording;
    };
    std::vector<Open> open;
    {
        Statement st(db,
                     "SELECT id, call_sid, stream_sid, recording FROM streams WHERE"
                     " status = 'open'");
        if (!st.ok()) return core::make_error(sqlite_message(db, "reading open streams"));
        while (st.step_row()) open.push_back({st.int64(0), st.text(1), st.text(2), st.text(3)});
    }
    if (open.empty()) return std::uint64_t{0};
    if (auto s = exec(db, "BEGIN IMMEDIATE"); !s) return s.error();
    for (const auto& o : open) {
        const auto path = data_dir / o.recording;
        std::int64_t bytes = 0;
        json detail;
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
            detail = json{{"recording", o.recording}, {"error", "file missing"}};
        } else if (auto r = core::repair_wav(path); !r) {
            detail = json{{"recording", o.recording}, {"error", r.error().to_string()}};
            fmt::print(stderr, "storage: cannot repair {}: {}\n", path.string(),
                       r.error().to_string());
        } else {
            bytes = static_cast<std::int64_t>(r->data_bytes);
            detail = json{{"recording", o.recording},
                          {"data_bytes", r->data_bytes},
                          {"repaired", r->changed},
                          {"dropped_bytes", r->dropped_bytes}};
        }
        Statement up(db,
                     "UPDATE streams SET status = 'interrupted', data_bytes = ?2 WHERE id = ?1");
        up.bind(1, o.id);
        up.bind(2, bytes);
        if (sqlite3_step(up.get()) != SQLITE_DONE) {
            (void)exec(db, "ROLLBACK");
            return core::make_error(sqlite_message(db, "marking a stream interrupted"));
        }
        Statement ev(db, kInsertEvent);
        ev.bind(1, o.call_sid);
        ev.bind(2, o.id);
        ev.bind(3, o.stream_sid);
        ev.bind(4, std::string("interrupted"));
        ev.bind(5, detail.dump());
        ev.bind(6, now_unix_ms());
        if (sqlite3_step(ev.get()) != SQLITE_DONE) {
            (void)exec(db, "ROLLBACK");
            return core::make_error(sqlite_message(db, "recording the interruption"));
        }
    }
    if (auto s = exec(db, "COMMIT"); !s) return s.error();
    return static_cast<std::uint64_t>(open.size());
}

}  // namespace

core::Result<std::unique_ptr<Storage>> Storage::open(const std::filesystem::path& data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir / kRecordingsDir, ec);
    if (ec) {
        return core::make_error(
            fmt::format("cannot create {}: {}", (data_dir / kRecordingsDir).string(), ec.message()),
            "--data");
    }
    // One server per data directory: two writers would interleave WAVs and race the repair.
    const auto lock_path = data_dir / kLockName;
    const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) {
        return core::make_error(
            fmt::format("cannot open {}: {}", lock_path.string(), std::strerror(errno)), "--data");
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock_fd);
        return core::make_error(fmt::format("{} is in use by another process (lock file {})",
                                            data_dir.string(), lock_path.string()),
                                "--data");
    }

    const auto db_path = data_dir / kDbName;
    auto writer = open_db(db_path);
    if (!writer) {
        ::close(lock_fd);
        return writer.error();
    }
    sqlite3* wdb = *writer;
    auto fail = [&](core::Diagnostic d) -> core::Result<std::unique_ptr<Storage>> {
        sqlite3_close(wdb);
        ::close(lock_fd);
        d.path = "--data";
        return d;
    };
    for (const char* pragma :
         {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=OFF"}) {
        if (auto st = exec(wdb, pragma); !st) return fail(st.error());
    }
    if (auto st = exec(wdb, kSchema); !st) return fail(st.error());
    auto repaired = repair_after_crash(wdb, data_dir);
    if (!repaired) return fail(repaired.error());

    std::int64_t next_id = 1;
    {
        Statement st(wdb, "SELECT COALESCE(MAX(id), 0) + 1 FROM streams");
        if (st.ok() && st.step_row()) next_id = st.int64(0);
    }
    auto reader = open_db(db_path);
    if (!reader) return fail(reader.error());

    auto core = std::make_shared<StoreCore>(lock_fd, data_dir, wdb, next_id);
    return std::unique_ptr<Storage>(
        std::make_unique<StorageImpl>(std::move(core), *reader, *repaired));
}

}  // namespace mediasim::server
