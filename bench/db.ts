/**
 * Run-database benchmark: upserting 1,000 runs × 100 variables, and reading the run table of that size.
 * Targets (issue #2): ≥ 200,000 rows/s upserting, ≤ 100 ms reading the `runs` pivot. Each figure is printed
 * next to a baseline measured in the same run: plain better-sqlite3 inserts / a plain scan of the same rows.
 *
 *   npm run build && node dist/bench/db.js [--runs 1000] [--vars 100]
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RunDatabase, type RunValues } from "../src/db/index.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const RUNS = option("runs", 1000);
const VARS = option("vars", 100);
const ROWS = RUNS * VARS;
const PROPOSAL = 1234;

const names = Array.from({ length: VARS }, (_, v) => `var_${String(v).padStart(3, "0")}`);
function valuesFor(run: number): RunValues["values"] {
  return Object.fromEntries(names.map((n, v) => [n, { value: run * 1000 + v + 0.5, maxDiff: v }]));
}
const allRuns: RunValues[] = Array.from({ length: RUNS }, (_, i) => ({ proposal: PROPOSAL, run: i + 1, values: valuesFor(i + 1) }));

function time<T>(fn: () => T): [T, number] {
  const t0 = process.hrtime.bigint();
  const result = fn();
  return [result, Number(process.hrtime.bigint() - t0) / 1e6];
}

function best(repeats: number, fn: () => number): number {
  let min = Infinity;
  for (let i = 0; i < repeats; i++) min = Math.min(min, fn());
  return min;
}

const root = mkdtempSync(join(tmpdir(), "damnit-bench-db-"));
const dirs: string[] = [];
const freshDir = () => {
  const d = mkdtempSync(join(root, "db-"));
  dirs.push(d);
  return d;
};

async function upsertFigures() {
  // Baseline: the same rows through one prepared INSERT in one transaction, nothing else.
  const baselineMs = best(3, () => {
    const db = new Database(join(freshDir(), "plain.sqlite"));
    db.exec("CREATE TABLE run_variables(proposal, run, name, version, value, timestamp, max_diff, provenance, summary_type, summary_method, attributes)");
    db.exec("CREATE UNIQUE INDEX variable_version ON run_variables (proposal, run, name, version)");
    const insert = db.prepare("INSERT INTO run_variables VALUES (?, ?, ?, 1, ?, ?, ?, 'context.py', NULL, '', NULL)");
    const [, ms] = time(() =>
      db.transaction(() => {
        for (const r of allRuns) for (const [name, row] of Object.entries(r.values)) insert.run(r.proposal, r.run, name, row.value as number, 0, row.maxDiff);
      })(),
    );
    db.close();
    return ms;
  });

  const measure = async (label: string, journal: "delete" | "wal", write: (db: RunDatabase) => void) => {
    const ms = [];
    for (let i = 0; i < 3; i++) {
      const db = await RunDatabase.open(freshDir(), { create: true, journal });
      ms.push(time(() => write(db))[1]);
      // Second pass: every row exists, so this is the update path of the upsert.
      ms.push(time(() => write(db))[1]);
      db.close();
    }
    const insertMs = Math.min(...ms.filter((_, i) => i % 2 === 0));
    const updateMs = Math.min(...ms.filter((_, i) => i % 2 === 1));
    const rate = (t: number) => Math.round(ROWS / (t / 1000));
    console.log(
      `${label.padEnd(44)} insert ${rate(insertMs).toLocaleString("en").padStart(9)} rows/s  update ${rate(updateMs).toLocaleString("en").padStart(9)} rows/s  (${(baselineMs / insertMs * 100).toFixed(0)}% of baseline)`,
    );
    return rate(Math.max(insertMs, updateMs));
  };

  console.log(`\nUpsert ${RUNS.toLocaleString("en")} runs × ${VARS} variables = ${ROWS.toLocaleString("en")} rows`);
  console.log(`${"baseline: plain prepared INSERT, one txn".padEnd(44)} insert ${Math.round(ROWS / (baselineMs / 1000)).toLocaleString("en").padStart(9)} rows/s`);
  const bulk = await measure("setVariablesForRuns, one txn (rollback jrnl)", "delete", (db) => db.setVariablesForRuns(allRuns, { provenance: "context.py" }));
  await measure("setVariablesForRuns, one txn (WAL)", "wal", (db) => db.setVariablesForRuns(allRuns, { provenance: "context.py" }));
  const perRun = await measure("setVariables, one txn per run (rollback)", "delete", (db) => {
    for (const r of allRuns) db.setVariables(r.proposal, r.run, r.values, { provenance: "context.py" });
  });
  await measure("setVariables, one txn per run (WAL)", "wal", (db) => {
    for (const r of allRuns) db.setVariables(r.proposal, r.run, r.values, { provenance: "context.py" });
  });
  return { bulk, perRun };
}

async function readFigures() {
  const db = await RunDatabase.open(freshDir(), { create: true });
  db.setVariablesForRuns(allRuns, { provenance: "context.py" });
  const scan = db.sqlite.prepare("SELECT proposal, run, name, value FROM run_variables").raw(true);
  const view = db.sqlite.prepare("SELECT * FROM runs");
  const baselineMs = best(5, () => time(() => scan.all())[1]);
  const viewMs = best(5, () => time(() => view.all())[1]);
  const tableMs = best(5, () => time(() => db.readRunTable())[1]);
  const pivotMs = best(5, () => time(() => db.readRunsPivot())[1]);
  const check = db.readRunTable();
  if (check.rows.length !== RUNS || check.rows[0]!.cells.size !== VARS) throw new Error("run table has the wrong size");
  const pivot = db.readRunsPivot();
  if (pivot.rows.length !== RUNS || pivot.rows[RUNS - 1]!.values.var_099 !== RUNS * 1000 + 99.5) throw new Error("pivot has wrong values");
  db.close();
  console.log(`\nRead the run table (${RUNS.toLocaleString("en")} runs × ${VARS} variables)`);
  console.log(`${"baseline: scan run_variables (4 columns)".padEnd(44)} ${baselineMs.toFixed(1).padStart(7)} ms`);
  console.log(`${"SELECT * FROM runs (the SQL pivot view)".padEnd(44)} ${viewMs.toFixed(1).padStart(7)} ms  (${(viewMs / baselineMs).toFixed(1)}× baseline)`);
  console.log(`${"readRunsPivot (the view's values, decoded)".padEnd(44)} ${pivotMs.toFixed(1).padStart(7)} ms  (${(pivotMs / baselineMs).toFixed(1)}× baseline)`);
  console.log(`${"readRunTable (+ attributes, max_diff; `show`)".padEnd(44)} ${tableMs.toFixed(1).padStart(7)} ms  (${(tableMs / baselineMs).toFixed(1)}× baseline)`);
  return { viewMs, tableMs, pivotMs };
}

try {
  const up = await upsertFigures();
  const read = await readFigures();
  console.log("\nTargets");
  console.log(`  upsert ≥ 200,000 rows/s (one transaction, slower of insert/update): ${up.bulk.toLocaleString("en")} rows/s ${up.bulk >= 200_000 ? "OK" : "MISSED"}`);
  console.log(`  read the runs pivot ≤ 100 ms: readRunsPivot ${read.pivotMs.toFixed(1)} ms ${read.pivotMs <= 100 ? "OK" : "MISSED"}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
