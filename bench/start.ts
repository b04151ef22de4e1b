/**
 * Command-line start benchmark (issue 13): how long `damnit` takes before any work, next to bare Node measured in
 * the same run. Each figure is the median of N runs of a fresh process:
 * - `node -e 0`: the floor (Node's own start);
 * - `damnit --version`: target ≤ 2× the floor;
 * - `damnit extract` on a database without a context file: the job command's modules loaded, its options parsed
 *   and the database opened, stopping at the missing context file — what every Slurm job pays before any work;
 * - `damnit show` on a small database: a whole command that opens SQLite and prints.
 *
 *   npm run build && node dist/bench/start.js [--runs 15]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);
const DAMNIT = join(SELF, "..", "..", "..", "bin", "damnit.js");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timed(args: string[], runs: number, opts: { cwd?: string; status?: number } = {}): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: opts.cwd, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
    times.push((performance.now() - t0) / 1000);
    if (r.status !== (opts.status ?? 0)) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  }
  return median(times);
}

const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 15;
const dir = mkdtempSync(join(tmpdir(), "damnit-bench-start-"));
try {
  const made = spawnSync(process.execPath, [DAMNIT, "proposal", "1234", dir], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`cannot make a database: ${made.stderr}`);
  const floor = timed(["-e", "0"], runs);
  const rows: Array<[string, number, string]> = [
    ["node -e 0 (floor)", floor, ""],
    ["damnit --version", timed([DAMNIT, "--version"], runs), "target ≤ 2.0×"],
    ["damnit extract (no context)", timed([DAMNIT, "extract", "1234", "1", "raw", "--dir", dir], runs, { status: 1 }), ""],
    ["damnit show (small db)", timed([DAMNIT, "show", dir], runs), ""],
  ];
  console.log(`CLI start, median of ${runs} fresh processes`);
  for (const [name, seconds, target] of rows) {
    console.log(`  ${name.padEnd(28)} ${seconds.toFixed(3)} s  ${(seconds / floor).toFixed(2)}× the floor  ${target}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
