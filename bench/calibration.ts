/**
 * Calibration-store benchmark (issue 15): `get` latency (p50, p99) on a store of 100 detectors × 11 ctypes × 1,000
 * validity ranges × 3 versions, next to a plain indexed SQLite query on the same file measured in the same run
 * (the version row by its primary key: what a get costs at the least). Target: get within 2× of the plain query,
 * and p99 ≤ 5 ms. The store is built with one bulk insert (one transaction); its build time is printed too.
 *
 *   npm run build && npm run bench:calibration [-- --detectors 100 --ranges 1000 --versions 3 --gets 20000]
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CTYPE_ELEMENT_TYPES, type Ctype } from "../src/calibration/ctypes.js";
import { CALIB_FILE_NAME, CalibStore, rangeKey, type AddRequest } from "../src/calibration/store.js";
import { ndarray } from "../src/core/ndarray.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const DETECTORS = option("detectors", 100);
const RANGES = option("ranges", 1000);
const VERSIONS = option("versions", 3);
const GETS = option("gets", 20_000);
const CTYPES = Object.keys(CTYPE_ELEMENT_TYPES) as Ctype[];
/** Ranges start an hour apart from here; each is open-ended, as PSCalib's adds make them. */
const T0 = 1_700_000_000;
const STEP = 3600;

const detname = (d: number) => `jungfrau-${String(d).padStart(4, "0")}`;
const ARRAY = ndarray("float32", [4], [1, 2, 3, 4]);

function* additions(): Generator<AddRequest> {
  for (let d = 0; d < DETECTORS; d++) {
    for (const ctype of CTYPES) {
      const value = ctype === "geometry" ? "# geometry\nQUAD:V1 0 CSPAD:V1 0 0 0 0 0 0 0 0 0\n" : ARRAY;
      for (let r = 0; r < RANGES; r++) {
        for (let v = 0; v < VERSIONS; v++) yield { detector: detname(d), ctype, at: T0 + r * STEP, value, tsprod: T0 };
      }
    }
  }
}

/** A deterministic pseudo-random sequence (the same queries for both figures). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

interface Query {
  detector: string;
  ctype: Ctype;
  at: number;
  key: string;
}

function queries(n: number): Query[] {
  const rnd = lcg(42);
  return Array.from({ length: n }, () => {
    const d = Math.floor(rnd() * DETECTORS);
    const ctype = CTYPES[Math.floor(rnd() * CTYPES.length)]!;
    const r = Math.floor(rnd() * RANGES);
    const at = T0 + r * STEP + Math.floor(rnd() * STEP);
    return { detector: detname(d), ctype, at, key: rangeKey(T0 + r * STEP, null) };
  });
}

function percentiles(latencies: Float64Array): { p50: number; p99: number; mean: number } {
  const sorted = Float64Array.from(latencies).sort();
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return { p50: sorted[Math.floor(sorted.length * 0.5)]!, p99: sorted[Math.floor(sorted.length * 0.99)]!, mean };
}

function time(qs: readonly Query[], fn: (q: Query) => unknown): Float64Array {
  const out = new Float64Array(qs.length);
  for (let i = 0; i < qs.length; i++) {
    const t0 = performance.now();
    if (fn(qs[i]!) == null) throw new Error(`no answer for ${JSON.stringify(qs[i])}`);
    out[i] = performance.now() - t0;
  }
  return out;
}

function main(): void {
  const root = mkdtempSync(join(tmpdir(), "damnit-bench-calib-"));
  try {
    const total = DETECTORS * CTYPES.length * RANGES * VERSIONS;
    const build0 = performance.now();
    const store = CalibStore.open(root);
    const added = store.addMany(additions());
    const buildSeconds = (performance.now() - build0) / 1000;
    if (added !== total) throw new Error(`added ${added} of ${total}`);
    const size = statSync(join(root, CALIB_FILE_NAME)).size;
    console.log(
      `store: ${DETECTORS} detectors × ${CTYPES.length} ctypes × ${RANGES} ranges × ${VERSIONS} versions = ${total.toLocaleString("en")} versions, ` +
        `built in ${buildSeconds.toFixed(1)} s (${Math.round(total / buildSeconds).toLocaleString("en")} adds/s), ${(size / 2 ** 20).toFixed(0)} MiB`,
    );

    const plain = new Database(join(root, CALIB_FILE_NAME), { readonly: true });
    const byKey = plain.prepare("SELECT vnum, tsprod, dtype, shape, data, text FROM versions WHERE detname = ? AND ctype = ? AND range_key = ? AND vnum = ?");
    const qs = queries(GETS);
    const warm = queries(2000);
    // Warm both paths (page cache, JIT) before measuring; then alternate rounds so neither gets a quieter machine.
    time(warm, (q) => byKey.get(q.detector, q.ctype, q.key, VERSIONS));
    time(warm, (q) => store.tryGet({ detector: q.detector, ctype: q.ctype, at: q.at }));
    const half = Math.floor(qs.length / 2);
    const base = [time(qs.slice(0, half), (q) => byKey.get(q.detector, q.ctype, q.key, VERSIONS))];
    const gets = [time(qs.slice(0, half), (q) => store.tryGet({ detector: q.detector, ctype: q.ctype, at: q.at }))];
    gets.push(time(qs.slice(half), (q) => store.tryGet({ detector: q.detector, ctype: q.ctype, at: q.at })));
    base.push(time(qs.slice(half), (q) => byKey.get(q.detector, q.ctype, q.key, VERSIONS)));
    // The answers are right: the range that starts before `at`, the last version.
    for (const q of qs.slice(0, 200)) {
      const hit = store.get({ detector: q.detector, ctype: q.ctype, at: q.at });
      if (hit.range !== q.key || hit.version !== VERSIONS) throw new Error(`wrong answer for ${JSON.stringify(q)}: ${hit.range} v${hit.version}`);
    }
    const join2 = (parts: Float64Array[]) => Float64Array.from(parts.flatMap((p) => Array.from(p)));
    const b = percentiles(join2(base));
    const g = percentiles(join2(gets));
    const fmt = (f: { p50: number; p99: number; mean: number }) => `p50 ${(f.p50 * 1000).toFixed(1)} µs   p99 ${(f.p99 * 1000).toFixed(1)} µs   mean ${(f.mean * 1000).toFixed(1)} µs`;
    console.log(`plain indexed query (version by primary key): ${fmt(b)}`);
    console.log(`calibration get (range by time, default version): ${fmt(g)}`);
    const ratio = g.p50 / b.p50;
    console.log(`get / plain at p50: ${ratio.toFixed(2)}× (target ≤ 2×); get p99 ${g.p99.toFixed(3)} ms (target ≤ 5 ms)`);
    plain.close();
    store.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main();
