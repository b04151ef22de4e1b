/**
 * Extraction benchmark: the example context (contexts/spb-example.ts) on 10 synthetic `medium` runs (≈ 275 MB
 * each, raw and proc). Prints per-run wall time and peak RSS, and the read floor of the same run files measured in
 * the same run (reading every file of a run once, as `cat` would, page cache warm). Target (issue #4): ≤ 0.3 s per
 * run and peak RSS ≤ 300 MiB; the Python original takes about 3.3 s per run of similar data on this machine kind.
 *
 *   npm run build && node dist/bench/extract.js [--runs 10] [--keep <dir>]
 *
 * Modes, each in a fresh process (so its peak RSS is its own):
 * - `raw`, one run at a time: what the listener's migration jobs compute, with context runners kept alive;
 * - `all`, one run at a time: reprocessing (raw and proc data, proc preferred);
 * - `all`, two at a time: `damnit reprocess` on this 2-core machine (throughput);
 * - one `damnit extract` process per run, as a Slurm job runs it (Node start, context runner start included).
 * Peak RSS is the job process's VmHWM plus the largest context runner's VmHWM.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RunDatabase } from "../src/db/run-database.js";
import { processRunsLocally } from "../src/extract/local.js";
import type { DataKind } from "../src/core/data-kind.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { findProposalDirectory, runDirectory } from "../src/exdf/open-run.js";

const PROPOSAL = 1234;
const SELF = fileURLToPath(import.meta.url);
const REPO = join(SELF, "..", "..", "..");
const DAMNIT = join(REPO, "bin", "damnit.js");

interface ModeResult {
  mode: string;
  perRun: number[];
  wallSeconds: number;
  jobPeakMb: number;
  runnerPeakMb: number;
  failedRuns: number;
  variableErrors: number;
}

function peakRssMb(pid: number | "self" = "self"): number {
  const kb = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb ?? 0) / 1024;
}

async function childMode(dir: string, kind: DataKind, concurrency: number, runs: number): Promise<ModeResult> {
  const db = await RunDatabase.open(dir);
  const perRun: number[] = [];
  let runnerPeakMb = 0;
  let failedRuns = 0;
  let variableErrors = 0;
  const started = performance.now();
  await processRunsLocally(
    db,
    Array.from({ length: runs }, (_, i) => ({ proposal: PROPOSAL, run: i + 1 })),
    {
      data: kind,
      concurrency,
      onRun: (_run, result) => {
        perRun.push(result.seconds);
        if (!result.ok) failedRuns++;
        variableErrors += result.errors.length;
      },
      onRunnerPeakRss: (mb) => (runnerPeakMb = mb ?? 0),
    },
  );
  const wallSeconds = (performance.now() - started) / 1000;
  db.close();
  return { mode: `${kind}, ${concurrency} at a time`, perRun, wallSeconds, jobPeakMb: peakRssMb(), runnerPeakMb, failedRuns, variableErrors };
}

/** One `damnit extract` per run: wall time of the whole process; peak RSS from /usr/bin/time (covers the runner too? no: max of the two). */
function processPerRun(dir: string, runs: number): ModeResult {
  const perRun: number[] = [];
  let jobPeakMb = 0;
  let failedRuns = 0;
  const started = performance.now();
  for (let run = 1; run <= runs; run++) {
    const t = performance.now();
    // GNU time's %M is the largest RSS of the process and its waited-for children (the runner).
    const result = spawnSync("/usr/bin/time", ["-f", "%M", process.execPath, DAMNIT, "extract", String(PROPOSAL), String(run), "raw"], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, DAMNIT_LOG_FORMAT: "json" },
    });
    perRun.push((performance.now() - t) / 1000);
    if (result.status !== 0) failedRuns++;
    const kb = Number(result.stderr.trim().split("\n").at(-1));
    if (Number.isFinite(kb)) jobPeakMb = Math.max(jobPeakMb, kb / 1024);
  }
  return { mode: "raw, one process per run", perRun, wallSeconds: (performance.now() - started) / 1000, jobPeakMb, runnerPeakMb: 0, failedRuns, variableErrors: 0 };
}

/** Read every file of the runs once into a reused 4 MiB buffer (the `cat` floor), page cache warm. */
function readFloorSeconds(dataRoot: string, runs: number): { seconds: number; bytes: number } {
  const buffer = Buffer.allocUnsafe(4 << 20);
  const proposalDir = findProposalDirectory(PROPOSAL, dataRoot);
  let bytes = 0;
  const started = performance.now();
  for (let run = 1; run <= runs; run++) {
    for (const kind of ["raw", "proc"] as const) {
      const dir = runDirectory(proposalDir, kind, run);
      for (const name of readdirSync(dir)) {
        const fd = openSync(join(dir, name), "r");
        for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) bytes += n;
        closeSync(fd);
      }
    }
  }
  return { seconds: (performance.now() - started) / 1000, bytes };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number) => x.toFixed(3);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") {
    const [, dir, kind, concurrency, runs] = args;
    const result = await childMode(dir!, kind as DataKind, Number(concurrency), Number(runs));
    process.stdout.write(JSON.stringify(result));
    return;
  }
  const runs = Number(args[args.indexOf("--runs") + 1] ?? 10) || 10;
  const keep = args.includes("--keep") ? args[args.indexOf("--keep") + 1] : undefined;
  const root = keep ?? mkdtempSync(join(tmpdir(), "damnit-bench-extract-"));
  const dataRoot = join(root, "data");
  const dir = join(root, "db");
  try {
    if (!existsSync(join(dataRoot))) {
      process.stderr.write(`Writing ${runs} medium runs to ${dataRoot} …\n`);
      for (let run = 1; run <= runs; run++) await writeSyntheticRun({ root: dataRoot, proposal: PROPOSAL, run, size: "medium" });
    }
    if (!existsSync(join(dir, "runs.sqlite"))) {
      execFileSync(process.execPath, [DAMNIT, "proposal", String(PROPOSAL), dir]);
      execFileSync(process.execPath, [DAMNIT, "db-config", "data_root", dataRoot], { cwd: dir });
    }
    copyFileSync(join(REPO, "contexts", "spb-example.ts"), join(dir, "context.ts"));

    // The floor is measured again right before each mode: the page cache holds only part of 2.7 GB of runs on a
    // small machine, and each mode should be compared with the file reads it could have had.
    const floors: number[] = [];
    const measureFloor = () => {
      readFloorSeconds(dataRoot, runs); // warms the page cache (the modes read warm files too)
      const floor = readFloorSeconds(dataRoot, runs);
      floors.push(floor.seconds / runs);
      process.stderr.write(`read floor: ${(floor.bytes / runs / 1e6).toFixed(0)} MB per run in ${fmt(floor.seconds / runs)} s (${(floor.bytes / floor.seconds / 1e9).toFixed(2)} GB/s)\n`);
      return floor.seconds / runs;
    };

    // Runs after the first: the context runners are started and the context is compiled (for one process per run,
    // every run starts afresh, so all count).
    const results: Array<ModeResult & { floor: number; steady: number[] }> = [];
    for (const [kind, concurrency] of [["raw", 1], ["all", 1], ["all", 2]] as const) {
      const floor = measureFloor();
      const out = execFileSync(process.execPath, [SELF, "--child", dir, kind, String(concurrency), String(runs)], {
        encoding: "utf8",
        env: { ...process.env, DAMNIT_LOG_FORMAT: "json" },
        maxBuffer: 1 << 20,
      });
      const result = JSON.parse(out) as ModeResult;
      results.push({ ...result, floor, steady: result.perRun.slice(concurrency) });
    }
    const floor = measureFloor();
    const perProcess = processPerRun(dir, Math.min(3, runs));
    results.push({ ...perProcess, floor, steady: perProcess.perRun });
    process.stdout.write(
      `Read floor (every raw and proc file of a run read once into a reused buffer, page cache warm, measured before each mode): ` +
        `${fmt(Math.min(...floors))}–${fmt(Math.max(...floors))} s per run\n\n`,
    );

    const header = ["mode", "first run s", "median s/run", "min–max s/run", "wall s/run", "floor s/run", "median ÷ floor", "peak RSS MiB (job + runner)", "failed"];
    const rows = results.map((r) => [
      r.mode,
      fmt(r.perRun[0]!),
      fmt(median(r.steady)),
      `${fmt(Math.min(...r.steady))}–${fmt(Math.max(...r.steady))}`,
      fmt(r.wallSeconds / r.perRun.length),
      fmt(r.floor),
      (median(r.steady) / r.floor).toFixed(1),
      r.runnerPeakMb > 0 ? `${r.jobPeakMb.toFixed(0)} + ${r.runnerPeakMb.toFixed(0)}` : `${r.jobPeakMb.toFixed(0)} (max of the two)`,
      String(r.failedRuns),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
    process.stdout.write(`${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n${rows.map(line).join("\n")}\n`);
    process.stdout.write(
      "\ns/run: from the start of a run's job to its results stored (HDF5 file and rows). The first run(s) of a mode include\n" +
        "starting the context runner (Node, compiling the context and the HDF5 library); median and range are over the\n" +
        "runs after those. wall s/run: the mode's whole time / runs.\n" +
        "Every mode reports 2 variable errors per run by design (the example's failing variable and its dependent).\n",
    );
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
}

await main();
