/**
 * Extraction benchmark (issue 13): the example context on a small (≈ 2 MB) and a medium (≈ 275 MB) synthetic run,
 * next to floors measured in the same run, with the targets and ✓/✗ beside each figure:
 * - per-job time of one `damnit extract` process (the Slurm view), against `node -e 0` (small: ≤ 5×) and reading
 *   the run's files once (medium: ≤ the read floor + 0.3 s);
 * - per-run time with a warm context runner (medium: ≤ 0.25 s);
 * - where the job's time goes (start, runner, context, open, read, variables, store), from the job's own phase
 *   timings (`DAMNIT_TIMINGS_FILE`, src/extract/job-phases.ts);
 * - the context's arithmetic (its variables on data already read) against numpy doing the same arithmetic
 *   (Debian's /usr/bin/python3; ≤ 1.2×; skipped with a note when numpy is absent);
 * - peak resident memory of the job process and of its context runner (job + runner < 300 MiB);
 * - the Python context (contexts/spb-example.py, `context_python=/usr/bin/python3`): per-job time next to the TS
 *   job and next to `python3 -c "import numpy, extra_data"`, and a warm Python runner next to a warm TS runner
 *   (skipped with a note when numpy or extra_data is absent).
 * Figures are medians over repetitions that interleave with their floors (the machine is shared), except the
 * arithmetic, which takes the fastest of its repetitions on both sides.
 *
 *   npm run build && node dist/bench/extract.js [--reps 5] [--keep <dir>]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RunDatabase } from "../src/db/run-database.js";
import { processRunsLocally } from "../src/extract/local.js";
import { RunnerPool } from "../src/extract/runner-pool.js";
import { runnerLimits } from "../src/extract/job.js";
import type { JobPhases } from "../src/extract/job-phases.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { findProposalDirectory, openRun, runDirectory } from "../src/exdf/open-run.js";
import { readClock } from "../src/exdf/read-clock.js";
import { loadContext } from "../src/context/load.js";

const PROPOSAL = 1234;
const SELF = fileURLToPath(import.meta.url);
const REPO = join(SELF, "..", "..", "..");
const DAMNIT = join(REPO, "bin", "damnit.js");
const PYTHON = "/usr/bin/python3";
const SIZES = ["small", "medium"] as const;
type Size = (typeof SIZES)[number];

type Phases = JobPhases & { jobPeakMb?: number; runnerPeakMb?: number };

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s3 = (x: number) => `${x.toFixed(3)} s`;
const mark = (ok: boolean) => (ok ? "✓" : "✗");

function readPhases(file: string): Phases[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Phases);
}

/** Median of each phase over `records`. */
function medianPhases(records: readonly Phases[]): Record<string, number> {
  const keys = ["sinceProcessStart", "runner", "context", "open", "read", "variables", "store", "total", "jobPeakMb", "runnerPeakMb"] as const;
  return Object.fromEntries(keys.map((k) => [k, median(records.map((r) => r[k] ?? 0))]));
}

/** Wall seconds of a fresh process (median of `reps`). */
function processSeconds(cmd: string, args: readonly string[], reps: number): number {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const r = spawnSync(cmd, args, { stdio: "ignore" });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}`);
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

/** Every file of the run's raw directory read once into a reused 4 MiB buffer (the `cat` floor), page cache warm. */
function readFloorSeconds(dataRoot: string): { seconds: number; bytes: number } {
  const buffer = Buffer.allocUnsafe(4 << 20);
  const dir = runDirectory(findProposalDirectory(PROPOSAL, dataRoot), "raw", 1);
  let bytes = 0;
  const started = performance.now();
  for (const name of readdirSync(dir)) {
    const fd = openSync(join(dir, name), "r");
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) bytes += n;
    closeSync(fd);
  }
  return { seconds: (performance.now() - started) / 1000, bytes };
}

/** One `damnit extract … raw` process: its wall time and the phases it recorded. */
function extractProcess(dir: string, timings: string): { wall: number; ok: boolean; phases?: Phases } {
  const before = readPhases(timings).length;
  const t = performance.now();
  const r = spawnSync(process.execPath, [DAMNIT, "extract", String(PROPOSAL), "1", "raw"], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, DAMNIT_TIMINGS_FILE: timings, DAMNIT_LOG_FORMAT: "json" },
  });
  const wall = (performance.now() - t) / 1000;
  const phases = readPhases(timings)[before];
  if (r.status !== 0) process.stderr.write(`damnit extract failed in ${dir}:\n${r.stderr.slice(-2000)}\n`);
  return { wall, ok: r.status === 0, phases };
}

/** Child: `runs` jobs on run 1 in one warm runner (the first one starts it); per-run seconds and phases. */
async function warmChild(dir: string, runs: number, timings: string): Promise<void> {
  process.env.DAMNIT_TIMINGS_FILE = timings;
  const db = await RunDatabase.open(dir);
  const pool = new RunnerPool(db.dir, runnerLimits(db.settings));
  const perRun: number[] = [];
  let failed = 0;
  await processRunsLocally(
    db,
    Array.from({ length: runs }, () => ({ proposal: PROPOSAL, run: 1 })),
    {
      data: "raw",
      concurrency: 1,
      pool,
      onRun: (_run, result) => {
        perRun.push(result.seconds);
        if (!result.ok) failed++;
      },
    },
  );
  pool.close();
  db.close();
  process.stdout.write(JSON.stringify({ perRun, failed }));
}

function warmRuns(dir: string, runs: number, timings: string): { perRun: number[]; failed: number; phases: Phases[] } {
  const before = readPhases(timings).length;
  const out = execFileSync(process.execPath, [SELF, "--warm", dir, String(runs), timings], {
    encoding: "utf8",
    env: { ...process.env, DAMNIT_LOG_FORMAT: "json" },
    maxBuffer: 1 << 20,
  });
  const result = JSON.parse(out) as { perRun: number[]; failed: number };
  return { ...result, phases: readPhases(timings).slice(before) };
}

/**
 * Child: the example context's arithmetic in TypeScript on data read beforehand (the variables that compute on
 * their dependencies, and agipd_mean_frame without the time of its reads), fastest of `reps`.
 */
async function arithmeticChild(contextFile: string, dataRoot: string, reps: number): Promise<void> {
  const { context, problems } = await loadContext(contextFile);
  if (!context) throw new Error(`the example context does not load: ${JSON.stringify(problems)}`);
  const run = await openRun(PROPOSAL, 1, { data: "raw", root: dataRoot });
  const fn = (name: string) => context.variables.get(name)!.fn as (run: unknown, deps: Record<string, unknown>) => unknown;
  const pulses = await fn("xgm_pulses")(run, {});
  const frames = await fn("camera_frames")(run, {});
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const intensity = await fn("xgm_intensity")(run, { pulses });
    await fn("xgm_mean")(run, { intensity });
    await fn("camera_total")(run, { frames });
    await fn("camera_image")(run, { frames });
    const read = readClock.seconds;
    await fn("agipd_mean_frame")(run, {});
    times.push((performance.now() - t) / 1000 - (readClock.seconds - read));
  }
  run.close();
  process.stdout.write(JSON.stringify({ seconds: Math.min(...times) }));
}

/** numpy doing the same arithmetic on the same arrays (read beforehand with EXtra-data), fastest of `reps`. */
const NUMPY_ARITHMETIC = `
import sys, time, json
import numpy as np
from extra_data import RunDirectory
run = RunDirectory(sys.argv[1])
reps = int(sys.argv[2])
pulses = run["SPB_XTD9_XGM/DOOCS/MAIN:output", "data.intensityTD"].ndarray().astype(np.float32)
frames = run["SPB_EXP_ZYLA/CAM/1:output", "data.image.pixels"].ndarray()
agipd = run["SPB_DET_AGIPD1M-1/DET/0CH0:xtdf", "image.data"].ndarray()
per = max(1, (4 << 20) // (agipd[0].nbytes))
best = None
for _ in range(reps):
    t = time.perf_counter()
    intensity = pulses[:, :30].mean(axis=1).astype(np.float64)
    float(np.nanmean(intensity))
    frames.astype(np.float64).sum(axis=(1, 2))
    frames.astype(np.float64).mean(axis=0)
    total = None
    for i in range(0, len(agipd), per):
        data = agipd[i:i + per]
        if data.ndim == 4:
            data = data[:, 0]
        part = data.astype(np.float64).sum(axis=0)
        total = part if total is None else total + part
    total / len(agipd)
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(json.dumps({"seconds": best}))
`;

function pythonHas(modules: string): boolean {
  return existsSync(PYTHON) && spawnSync(PYTHON, ["-c", `import ${modules}`], { stdio: "ignore" }).status === 0;
}

function makeDatabase(dir: string, dataRoot: string, context: "ts" | "py"): void {
  if (!existsSync(join(dir, "runs.sqlite"))) {
    execFileSync(process.execPath, [DAMNIT, "proposal", String(PROPOSAL), dir]);
    execFileSync(process.execPath, [DAMNIT, "db-config", "data_root", dataRoot], { cwd: dir });
    if (context === "py") execFileSync(process.execPath, [DAMNIT, "db-config", "context_python", PYTHON], { cwd: dir });
  }
  if (context === "ts") copyFileSync(join(REPO, "contexts", "spb-example.ts"), join(dir, "context.ts"));
  else copyFileSync(join(REPO, "contexts", "spb-example.py"), join(dir, "context.py"));
}

interface SizeFigures {
  size: Size;
  bytes: number;
  readFloor: number;
  nodeFloor: number;
  firstJob: number;
  job: number;
  jobPhases: Record<string, number>;
  warm: number;
  warmPhases: Record<string, number>;
  tsArithmetic?: number;
  numpyArithmetic?: number;
  failed: number;
  python?: { job: number; floor: number; warm: number; failed: number };
}

async function measureSize(size: Size, root: string, reps: number, python: boolean, numpy: boolean): Promise<SizeFigures> {
  const dataRoot = join(root, `data-${size}`);
  if (!existsSync(dataRoot)) {
    process.stderr.write(`Writing a ${size} run to ${dataRoot} …\n`);
    await writeSyntheticRun({ root: dataRoot, proposal: PROPOSAL, run: 1, size });
  }
  const dir = join(root, `db-${size}`);
  mkdirSync(dir, { recursive: true });
  makeDatabase(dir, dataRoot, "ts");
  const timings = join(root, `timings-${size}.jsonl`);
  rmSync(timings, { force: true });

  readFloorSeconds(dataRoot); // page cache warm, as the jobs will find it
  // The first job compiles the context (later jobs take it from the compile cache).
  rmSync(join(dir, ".damnit-cache"), { recursive: true, force: true });
  const first = extractProcess(dir, timings);
  let failed = first.ok ? 0 : 1;
  const jobs: number[] = [];
  const jobPhases: Phases[] = [];
  const reads: number[] = [];
  const nodes: number[] = [];
  let bytes = 0;
  for (let i = 0; i < reps; i++) {
    nodes.push(processSeconds(process.execPath, ["-e", "0"], 1));
    const floor = readFloorSeconds(dataRoot);
    reads.push(floor.seconds);
    bytes = floor.bytes;
    const job = extractProcess(dir, timings);
    jobs.push(job.wall);
    if (!job.ok) failed++;
    if (job.phases) jobPhases.push(job.phases);
  }
  const warm = warmRuns(dir, reps + 1, timings);
  failed += warm.failed;

  let tsArithmetic: number | undefined;
  let numpyArithmetic: number | undefined;
  if (numpy) {
    const out = execFileSync(process.execPath, [SELF, "--arith", join(dir, "context.ts"), dataRoot, String(reps)], { encoding: "utf8", cwd: dir });
    tsArithmetic = (JSON.parse(out) as { seconds: number }).seconds;
    const runDir = runDirectory(findProposalDirectory(PROPOSAL, dataRoot), "raw", 1);
    const py = execFileSync(PYTHON, ["-c", NUMPY_ARITHMETIC, runDir, String(reps)], { encoding: "utf8" });
    numpyArithmetic = (JSON.parse(py.trim().split("\n").at(-1)!) as { seconds: number }).seconds;
  }

  let pythonFigures: SizeFigures["python"];
  if (python) {
    const pyDir = join(root, `db-${size}-py`);
    mkdirSync(pyDir, { recursive: true });
    makeDatabase(pyDir, dataRoot, "py");
    const pyTimings = join(root, `timings-${size}-py.jsonl`);
    const pyReps = Math.max(2, Math.ceil(reps / 2));
    const pyJobs: number[] = [];
    const pyFloors: number[] = [];
    let pyFailed = 0;
    for (let i = 0; i < pyReps; i++) {
      pyFloors.push(processSeconds(PYTHON, ["-c", "import numpy, extra_data"], 1));
      const job = extractProcess(pyDir, pyTimings);
      pyJobs.push(job.wall);
      if (!job.ok) pyFailed++;
    }
    const pyWarm = warmRuns(pyDir, pyReps + 1, pyTimings);
    pythonFigures = { job: median(pyJobs), floor: median(pyFloors), warm: median(pyWarm.perRun.slice(1)), failed: pyFailed + pyWarm.failed };
  }

  return {
    size,
    bytes,
    readFloor: median(reads),
    nodeFloor: median(nodes),
    firstJob: first.wall,
    job: median(jobs),
    jobPhases: medianPhases(jobPhases),
    warm: median(warm.perRun.slice(1)),
    warmPhases: medianPhases(warm.phases.slice(1)),
    tsArithmetic,
    numpyArithmetic,
    failed,
    python: pythonFigures,
  };
}

function report(all: readonly SizeFigures[], notes: readonly string[]): void {
  const out: string[] = [];
  for (const f of all) {
    const p = f.jobPhases;
    const w = f.warmPhases;
    out.push(`\n${f.size} run (${(f.bytes / 1e6).toFixed(1)} MB of raw files; example context, raw job)`);
    out.push(`  floors: node -e 0 ${s3(f.nodeFloor)}; reading the run's files once ${s3(f.readFloor)} (${(f.bytes / f.readFloor / 1e9).toFixed(2)} GB/s)`);
    const jobTarget =
      f.size === "small"
        ? `target ≤ 5× node -e 0 = ${s3(5 * f.nodeFloor)}: ${(f.job / f.nodeFloor).toFixed(1)}× ${mark(f.job <= 5 * f.nodeFloor)}`
        : `target ≤ read floor + 0.3 s = ${s3(f.readFloor + 0.3)} ${mark(f.job <= f.readFloor + 0.3)}`;
    out.push(`  one damnit extract process (Slurm view): ${s3(f.job)}  ${jobTarget}   (first job, compiling the context: ${s3(f.firstJob)})`);
    const exit = Math.max(0, f.job - p.sinceProcessStart! - p.total!);
    out.push(
      `    where it goes: start ${s3(p.sinceProcessStart!)} (Node, CLI, database; runner started alongside), waiting for the runner ${s3(p.runner!)}, ` +
        `context ${s3(p.context!)}, open ${s3(p.open!)}, read ${s3(p.read!)}, variables ${s3(p.variables!)}, store ${s3(p.store!)}, ` +
        `other ${s3(Math.max(0, p.total! - p.runner! - p.context! - p.open! - p.read! - p.variables! - p.store!))}, exit ${s3(exit)}`,
    );
    const rss = p.jobPeakMb! + p.runnerPeakMb!;
    out.push(`    peak RSS: job ${p.jobPeakMb!.toFixed(0)} MiB + runner ${p.runnerPeakMb!.toFixed(0)} MiB = ${rss.toFixed(0)} MiB  target < 300 MiB ${mark(rss < 300)}`);
    const warmTarget = f.size === "medium" ? `  target ≤ 0.25 s ${mark(f.warm <= 0.25)}` : "";
    out.push(`  warm runner, per run: ${s3(f.warm)}${warmTarget}`);
    out.push(
      `    where it goes: context ${s3(w.context!)}, open ${s3(w.open!)}, read ${s3(w.read!)}, variables ${s3(w.variables!)}, store ${s3(w.store!)}; ` +
        `peak RSS job ${w.jobPeakMb!.toFixed(0)} + runner ${w.runnerPeakMb!.toFixed(0)} MiB`,
    );
    if (f.tsArithmetic !== undefined && f.numpyArithmetic !== undefined) {
      const ratio = f.tsArithmetic / f.numpyArithmetic;
      // On the small run both take well under a millisecond (call overhead): the target is for the medium run.
      const target = f.size === "medium" ? `  target ≤ 1.2× ${mark(ratio <= 1.2)}` : "  (no target: too little data to compare)";
      out.push(`  context arithmetic (data read beforehand): TS ${f.tsArithmetic.toFixed(4)} s, numpy ${f.numpyArithmetic.toFixed(4)} s: ${ratio.toFixed(2)}×${target}`);
    }
    if (f.python) {
      const py = f.python;
      out.push(
        `  Python context (context.py, ${PYTHON}): one job ${s3(py.job)} = ${(py.job / f.job).toFixed(1)}× the TS job; ` +
          `floor python3 -c "import numpy, extra_data" ${s3(py.floor)} (job = floor + ${s3(py.job - py.floor)})`,
      );
      out.push(`    warm Python runner, per run: ${s3(py.warm)} against the warm TS runner's ${s3(f.warm)} (${(py.warm / f.warm).toFixed(1)}×)`);
    }
    const failed = f.failed + (f.python?.failed ?? 0);
    if (failed > 0) out.push(`  ✗ ${failed} job(s) failed (see above)`);
  }
  for (const note of notes) out.push(`\nnote: ${note}`);
  out.push(
    "\nFigures are medians of fresh processes interleaved with their floors; the arithmetic is the fastest repetition on each side.\n" +
      "start: from the job process's start to the job's (Node, the CLI's modules, the database); the runner starts meanwhile.\n" +
      "read: time inside the run reader's reads; variables: the rest of the variables' time (arithmetic, summaries).",
  );
  process.stdout.write(`${out.join("\n")}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--warm") return warmChild(args[1]!, Number(args[2]), args[3]!);
  if (args[0] === "--arith") return arithmeticChild(args[1]!, args[2]!, Number(args[3]));
  const reps = Number(args[args.indexOf("--reps") + 1] ?? 5) || 5;
  const keep = args.includes("--keep") ? args[args.indexOf("--keep") + 1] : undefined;
  const root = keep ?? mkdtempSync(join(tmpdir(), "damnit-bench-extract-"));
  mkdirSync(root, { recursive: true });
  const notes: string[] = [];
  const numpy = pythonHas("numpy, extra_data");
  const python = pythonHas("numpy, xarray, extra_data");
  if (!numpy) notes.push(`${PYTHON} with numpy and extra_data is absent: the numpy arithmetic floor is skipped`);
  if (!python) notes.push(`${PYTHON} with numpy, xarray and extra_data is absent: the Python context is skipped`);
  try {
    const all: SizeFigures[] = [];
    for (const size of SIZES) all.push(await measureSize(size, root, reps, python, numpy));
    report(all, notes);
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
}

await main();
