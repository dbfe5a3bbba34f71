// Test vectors for core/histogram from an independent HdrHistogram implementation:
// hdr-histogram-js (the TypeScript port of Gil Tene's Java HdrHistogram), version in the JSON.
//
// How the vectors were made (not at build time; the output is committed):
//   mkdir -p /tmp/hdrjs && cd /tmp/hdrjs && npm install hdr-histogram-js
//   MEDIASIM_HDR_JS=/tmp/hdrjs node tests/core/data/hdr_vectors.mjs generate \
//       > tests/core/data/hdr_vectors.json
//   MEDIASIM_HDR_JS=/tmp/hdrjs node tests/core/data/hdr_vectors.mjs log \
//       > tests/core/data/hdr_js_written.hlog
// (the second is an interval log written by hdr-histogram-js's HistogramLogWriter: every vector
// as one interval of 1 s starting at 2.5 s * its position, tagged with its name except "single")
//
// The other direction (hdr-histogram-js reads what Mediasim writes), run by the e2e ctest
// core_histogram_hdr_js (tests/core/data/hdr_js_check.sh):
//   node tests/core/data/hdr_vectors.mjs check OURS.json OURS.hlog
// where OURS.json and OURS.hlog are written by core_histogram_test when MEDIASIM_HDR_OUT is set.
// It decodes every string we encoded, and reads our interval log with HistogramLogReader, and
// compares counts and percentiles with the values hdr-histogram-js computes itself.
//
// A real run's interval logs, read back by the e2e ctest reports_hlog_hdr_js_e2e_test
// (tests/reports/hlog_hdr_js_e2e_test.cpp), which compares them with the run's summary.json:
//   node tests/core/data/hdr_vectors.mjs read-logs OUT.json RUN/*.hlog
//
// The value lists are deterministic (xorshift32, integer-only arithmetic) and generated the same
// way by tests/core/histogram_test.cpp, so both sides record the same values.

import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const moduleDir = process.env.MEDIASIM_HDR_JS || process.cwd();
const require = createRequire(pathToFileURL(join(moduleDir, "noop.js")));
const hdr = require("hdr-histogram-js");
const hdrVersion = require("hdr-histogram-js/package.json").version;

// xorshift32; the C++ test has the same generator.
function* xorshift32(seed) {
  let x = seed >>> 0;
  for (;;) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    yield x;
  }
}

// Value kinds, each a pure function of the generator:
//   wide:   r1 >>> (r2 % 28)          (0 .. 2^32-1, heavy toward small values: latency-like)
//   mod:    r1 % modulus              (uniform in [0, modulus))
function makeValues(spec) {
  const g = xorshift32(spec.seed);
  const out = [];
  for (let i = 0; i < spec.n; i++) {
    const r1 = g.next().value;
    if (spec.kind === "wide") {
      const r2 = g.next().value;
      out.push(Math.min(r1 >>> (r2 % 28), spec.cap));
    } else if (spec.kind === "mod") {
      out.push(r1 % spec.modulus);
    } else {
      throw new Error("unknown kind " + spec.kind);
    }
  }
  return out;
}

const PERCENTILES = [0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 99.999, 100];

// Every vector: a layout, a value list (and optional extra [value, count] records).
const VECTORS = [
  { name: "latency_us_3d", lowest: 1, highest: 3600000000, digits: 3,
    values: { kind: "wide", seed: 1, n: 20000, cap: 3600000000 } },
  { name: "range_1e6_2d", lowest: 1, highest: 1000000, digits: 2,
    values: { kind: "mod", seed: 7, n: 5000, modulus: 1000000 } },
  { name: "lowest_1000_3d", lowest: 1000, highest: 1000000000, digits: 3,
    values: { kind: "mod", seed: 99, n: 3000, modulus: 100000000 } },
  { name: "digits_5", lowest: 1, highest: 10000000, digits: 5,
    values: { kind: "mod", seed: 5, n: 4000, modulus: 10000000 } },
  { name: "digits_1", lowest: 1, highest: 100000, digits: 1,
    values: { kind: "mod", seed: 11, n: 1000, modulus: 100000 } },
  { name: "small_values_with_zeros", lowest: 1, highest: 3600000000, digits: 3,
    values: { kind: "mod", seed: 3, n: 500, modulus: 40 } },
  { name: "single", lowest: 1, highest: 3600000000, digits: 3,
    values: { kind: "mod", seed: 1, n: 0, modulus: 1 }, extra: [[12345, 1]] },
  { name: "big_counts", lowest: 1, highest: 3600000000, digits: 3,
    values: { kind: "mod", seed: 1, n: 0, modulus: 1 },
    extra: [[1, 1], [1000, 1099511627776], [3000000, 4503599627370495], [3599999999, 7]] },
  { name: "empty", lowest: 1, highest: 3600000000, digits: 3,
    values: { kind: "mod", seed: 1, n: 0, modulus: 1 } },
];

function build(v) {
  return hdr.build({
    bitBucketSize: 64,
    autoResize: false,
    lowestDiscernibleValue: v.lowest,
    highestTrackableValue: v.highest,
    numberOfSignificantValueDigits: v.digits,
  });
}

function fill(h, v) {
  for (const x of makeValues(v.values)) h.recordValue(x);
  for (const [x, c] of v.extra || []) h.recordValueWithCount(x, c);
}

function summary(h) {
  // A digest of the counts (the C++ test records the same values and compares all counts).
  let nonzero = 0;
  let weighted = 0;
  for (let i = 0; i < h.countsArrayLength; i++) {
    const c = h.getCountAtIndex(i);
    if (c !== 0) {
      nonzero++;
      weighted = (weighted + ((i + 1) * (c % 1000003))) % 1000000007;
    }
  }
  const percentiles = PERCENTILES.map((p) => [p, h.getValueAtPercentile(p)]);
  const rows = [];
  if (h.totalCount > 0) {
    const it = h.percentileIterator;
    it.reset(5);
    while (it.hasNext()) {
      const r = it.next();
      rows.push([r.valueIteratedTo, r.percentileLevelIteratedTo, r.totalCountToThisValue]);
    }
  }
  return {
    total: h.totalCount,
    min: h.totalCount > 0 ? h.minNonZeroValue : 0,
    max: h.maxValue,
    mean: h.mean,
    stddev: h.stdDeviation,
    percentiles,
    distribution: rows,
    nonzero_counts: nonzero,
    counts_digest: weighted,
  };
}

// Layout probes: bucket edges (2^k - 1, 2^k, 2^k + 1) and a few round numbers, within range.
function layout(h, v) {
  const probes = new Set([0, 1, 2, 3]);
  for (let k = 1; k <= 40; k++) {
    const p = 2 ** k;
    for (const q of [p - 1, p, p + 1]) probes.add(q);
  }
  for (let k = 1; k <= 12; k++) probes.add(10 ** k);
  const rows = [...probes]
    .filter((x) => x <= v.highest)
    .sort((a, b) => a - b)
    .map((x) => {
      const i = h.countsArrayIndex(x);
      return [x, i, h.valueFromIndex(i), h.lowestEquivalentValue(x), h.highestEquivalentValue(x)];
    });
  return {
    counts_length: h.countsArrayLength,
    bucket_count: h.bucketCount,
    sub_bucket_count: h.subBucketCount,
    unit_magnitude: h.unitMagnitude,
    sub_bucket_half_count_magnitude: h.subBucketHalfCountMagnitude,
    probes: rows,
  };
}

function generate() {
  const out = { generator: `hdr-histogram-js ${hdrVersion}`, percentiles: PERCENTILES, vectors: [] };
  for (const v of VECTORS) {
    const h = build(v);
    fill(h, v);
    const encoded = hdr.encodeIntoCompressedBase64(h);
    // Round-trip through the JS decoder too, so a vector never pins a string JS cannot read.
    const back = hdr.decodeFromCompressedBase64(encoded, 64);
    if (back.totalCount !== h.totalCount) throw new Error(`${v.name}: JS round trip failed`);
    out.vectors.push({ ...v, encoded, layout: layout(h, v), ...summary(h) });
  }
  process.stdout.write(JSON.stringify(out, null, 1) + "\n");
}

// An interval log as hdr-histogram-js's HistogramLogWriter writes it.
function writeLog() {
  let out = "";
  const w = new hdr.HistogramLogWriter((text) => (out += text));
  w.outputComment(`[written by hdr-histogram-js ${hdrVersion} for Mediasim's tests]`);
  w.outputLogFormatVersion();
  w.outputStartTime(1700000000250);
  w.outputLegend();
  VECTORS.forEach((v, i) => {
    const h = build(v);
    fill(h, v);
    if (v.name !== "single") h.tag = v.name;
    w.outputIntervalHistogram(h, 2.5 * i, 2.5 * i + 1, 1000);
  });
  process.stdout.write(out);
}

// Compares what the C++ side wrote with what hdr-histogram-js computes from our encodings.
function check(oursPath, hlogPath) {
  const ours = JSON.parse(readFileSync(oursPath, "utf8"));
  let failures = 0;
  const fail = (msg) => {
    failures++;
    console.error("MISMATCH " + msg);
  };
  for (const o of ours.histograms) {
    const before = failures;
    let h;
    try {
      h = hdr.decodeFromCompressedBase64(o.encoded, 64);
    } catch (e) {
      fail(`${o.name}: hdr-histogram-js cannot decode our string: ${e.message}`);
      continue;
    }
    // Recompute from the values both sides generated.
    const ref = build(o);
    fill(ref, o);
    if (h.totalCount !== ref.totalCount) fail(`${o.name}: total ${h.totalCount} != ${ref.totalCount}`);
    for (let i = 0; i < ref.countsArrayLength; i++) {
      if (h.getCountAtIndex(i) !== ref.getCountAtIndex(i)) {
        fail(`${o.name}: count at index ${i}: ${h.getCountAtIndex(i)} != ${ref.getCountAtIndex(i)}`);
        break;
      }
    }
    for (const [p, value] of o.percentiles) {
      const js = h.getValueAtPercentile(p);
      if (js !== value) fail(`${o.name}: p${p}: JS says ${js}, Mediasim says ${value}`);
    }
    if (h.totalCount > 0 && Math.abs(h.mean - o.mean) > 1e-9 * Math.max(1, Math.abs(h.mean))) {
      fail(`${o.name}: mean ${h.mean} != ${o.mean}`);
    }
    if (failures === before) {
      console.log(`ok ${o.name}: ${h.totalCount} values, ${o.percentiles.length} percentiles agree`);
    }
  }
  if (hlogPath) {
    const reader = new hdr.HistogramLogReader(readFileSync(hlogPath, "utf8"), 64);
    const seen = [];
    for (let h; (h = reader.nextIntervalHistogram()) !== null; ) seen.push(h);
    const before = failures;
    const want = ours.log;
    if (seen.length !== want.intervals.length) {
      fail(`log: ${seen.length} intervals read, ${want.intervals.length} written`);
    }
    seen.forEach((h, i) => {
      const w = want.intervals[i];
      if (!w) return;
      const tag = h.tag === "NO TAG" ? "" : h.tag;
      if (tag !== w.tag) fail(`log interval ${i}: tag "${tag}" != "${w.tag}"`);
      const start = want.base_time + w.start;
      if (Math.abs(h.startTimeStampMsec / 1000 - start) > 1e-3) {
        fail(`log interval ${i}: start ${h.startTimeStampMsec / 1000} != ${start}`);
      }
      if (h.totalCount !== w.total) fail(`log interval ${i}: total ${h.totalCount} != ${w.total}`);
      for (const [p, value] of w.percentiles) {
        const js = h.getValueAtPercentile(p);
        if (js !== value) fail(`log interval ${i}: p${p}: JS says ${js}, Mediasim says ${value}`);
      }
    });
    if (failures === before) console.log(`ok log: ${seen.length} intervals read by HistogramLogReader`);
  }
  if (failures > 0) {
    console.error(`${failures} mismatches`);
    process.exit(1);
  }
}

// Reads interval logs (a run's <metric>.hlog files) with HistogramLogReader, adds up every
// interval of each, and writes what hdr-histogram-js computes from the sum as JSON to outPath:
//   {"generator": ..., "logs": {"<file name>": {"intervals", "tags", "count", "min", "max",
//    "mean", "percentiles": {"50": v, "90": v, "99": v, "99.9": v}}}}
// min is Java HdrHistogram's getMinValue (0 when a 0 was recorded or nothing was; the JS port has
// only minNonZeroValue); max is maxValue, the highest equivalent value of the top bucket.
const LOG_PERCENTILES = [50, 90, 99, 99.9];
function readLogs(outPath, logPaths) {
  const out = { generator: `hdr-histogram-js ${hdrVersion}`, logs: {} };
  for (const path of logPaths) {
    const reader = new hdr.HistogramLogReader(readFileSync(path, "utf8"), 64);
    let sum = null;
    let intervals = 0;
    const tags = new Set();
    for (let h; (h = reader.nextIntervalHistogram()) !== null; ) {
      intervals++;
      tags.add(h.tag);
      if (sum === null) {
        sum = hdr.build({
          bitBucketSize: 64,
          autoResize: false,
          lowestDiscernibleValue: h.lowestDiscernibleValue,
          highestTrackableValue: h.highestTrackableValue,
          numberOfSignificantValueDigits: h.numberOfSignificantValueDigits,
        });
      }
      sum.add(h);
    }
    const name = path.split("/").pop();
    if (sum === null) {
      out.logs[name] = { intervals: 0, tags: [] };
      continue;
    }
    const count = sum.totalCount;
    out.logs[name] = {
      intervals,
      tags: [...tags],
      count,
      min: count === 0 || sum.getCountAtIndex(0) > 0 ? 0 : sum.minNonZeroValue,
      max: sum.maxValue,
      mean: count === 0 ? 0 : sum.mean,
      percentiles: Object.fromEntries(
        LOG_PERCENTILES.map((p) => [String(p), sum.getValueAtPercentile(p)])),
    };
  }
  writeFileSync(outPath, JSON.stringify(out, null, 1) + "\n");
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "generate") generate();
else if (mode === "log") writeLog();
else if (mode === "check" && args.length >= 1) check(args[0], args[1]);
else if (mode === "read-logs" && args.length >= 2) readLogs(args[0], args.slice(1));
else {
  console.error(
    "usage: hdr_vectors.mjs generate | log | check OURS.json [OURS.hlog] | read-logs OUT.json LOG...");
  process.exit(2);
}
