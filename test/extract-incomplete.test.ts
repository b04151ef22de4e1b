/**
 * Bad data never destroys good values: a run whose files cannot all be read (a truncated sequence file, one missing
 * from the numbering) keeps the values stored from a complete read instead of replacing them with errors, and the
 * job says it failed; `--force` stores the errors. Through the real CLI, on synthetic runs.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRunDirectory } from "../src/exdf/index.js";
import { readRunOutput } from "../src/extract/h5-output.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { damnit } from "./helpers/cli.js";

const PROPOSAL = 1234;
let root: string;
let pristine: string;

const CONTEXT = `
import { Variable } from "damnit/context";
export const xgm_mean = Variable({ title: "XGM mean" }, (run) => {
  const v = run.key("SPB_XTD9_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux").perTrain().data;
  return v.reduce((a, b) => a + b, 0) / v.length;
});
export const n_trains = Variable({}, (run) => run.trainIds.length);
`;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "damnit-incomplete-"));
  pristine = join(root, "pristine");
  await writeSyntheticRun({ root: pristine, proposal: PROPOSAL, run: 1, proc: false });
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A database with run 1 processed from complete data, and the run's data directory it reads. */
function processedDatabase(): { dir: string; runDir: string } {
  const n = ++counter;
  const data = join(root, `data${n}`);
  cpSync(pristine, data, { recursive: true });
  const dir = join(root, `db${n}`);
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  expect(damnit(["db-config", "data_root", data], { cwd: dir }).status).toBe(0);
  writeFileSync(join(dir, "context.ts"), CONTEXT);
  const first = damnit(["extract", String(PROPOSAL), "1", "raw"], { cwd: dir });
  expect(first.status, first.stderr).toBe(0);
  return { dir, runDir: join(data, "SPB", "202601", `p${String(PROPOSAL).padStart(6, "0")}`, "raw", "r0001") };
}

function rows(dir: string): Map<string, { value: unknown; error: string | undefined }> {
  const db = new Database(join(dir, "runs.sqlite"), { readonly: true });
  try {
    const all = db.prepare("SELECT name, value, attributes FROM run_variables WHERE proposal = ? AND run = 1").all(PROPOSAL) as Array<{
      name: string;
      value: unknown;
      attributes: string | null;
    }>;
    return new Map(all.map((r) => [r.name, { value: r.value, error: r.attributes ? (JSON.parse(r.attributes) as { error?: string }).error : undefined }]));
  } finally {
    db.close();
  }
}

const h5 = (dir: string) => join(dir, "extracted_data", `p${PROPOSAL}_r1.h5`);

describe("a run whose data cannot be read completely", () => {
  it("keeps the values stored from a complete read, and the job fails saying why", async () => {
    const { dir, runDir } = processedDatabase();
    const before = rows(dir);
    expect(typeof before.get("xgm_mean")?.value).toBe("number");
    expect(before.get("xgm_mean")?.error).toBeUndefined();
    const fileBefore = readFileSync(h5(dir));

    const second = join(runDir, "RAW-R0001-DA01-S00001.h5");
    truncateSync(second, Math.floor(statSync(second).size * 0.7));
    const again = damnit(["extract", String(PROPOSAL), "1", "raw"], { cwd: dir });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/Kept the earlier values of xgm_mean: this run's data could not be read completely/);
    expect(again.stderr).toMatch(/the run's data are incomplete \(1 file could not be read: .*DA01-S00001\.h5: truncated/);

    const after = rows(dir);
    expect(after.get("xgm_mean")).toEqual(before.get("xgm_mean"));
    // A variable that still computes is stored as usual.
    expect(after.get("n_trains")?.error).toBeUndefined();
    const output = await readRunOutput(h5(dir));
    expect(output.get("xgm_mean")?.error).toBeUndefined();
    expect(readFileSync(h5(dir)).equals(fileBefore)).toBe(false); // rewritten, but xgm_mean's data kept
  });

  it("counts a sequence file missing from the numbering as incomplete data", async () => {
    const { dir, runDir } = processedDatabase();
    const before = rows(dir).get("xgm_mean");
    // DA01 has S00000 and S00001: give it an S00002 and take S00001 away.
    cpSync(join(runDir, "RAW-R0001-DA01-S00001.h5"), join(runDir, "RAW-R0001-DA01-S00002.h5"));
    rmSync(join(runDir, "RAW-R0001-DA01-S00001.h5"));
    const run = await openRunDirectory(runDir);
    try {
      expect(run.problems).toEqual([`${join(runDir, "RAW-R0001-DA01-S00001.h5")} is missing (DA01 has sequence files up to S00002)`]);
    } finally {
      run.close();
    }
    const again = damnit(["extract", String(PROPOSAL), "1", "raw"], { cwd: dir });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/the run's data are incomplete \(1 file could not be read: .*DA01-S00001\.h5 is missing/);
    expect(rows(dir).get("xgm_mean")).toEqual(before);
  });

  it("reprocess reports the run as failed and keeps its values; --force stores the errors", () => {
    const { dir, runDir } = processedDatabase();
    const before = rows(dir).get("xgm_mean");
    const second = join(runDir, "RAW-R0001-DA01-S00001.h5");
    truncateSync(second, Math.floor(statSync(second).size * 0.7));
    const kept = damnit(["reprocess", "1", "--local"], { cwd: dir });
    expect(kept.status).toBe(1);
    expect(kept.stdout + kept.stderr).toMatch(/r1 failed: the run's data are incomplete \(1 file could not be read: .*truncated.*\); earlier values kept: xgm_mean$/m);
    expect(rows(dir).get("xgm_mean")).toEqual(before);
    const forced = damnit(["reprocess", "1", "--local", "--force"], { cwd: dir });
    expect(forced.status).toBe(1); // still incomplete data, but now stored as such
    const after = rows(dir).get("xgm_mean");
    expect(after?.value).toBeNull();
    expect(after?.error).toMatch(/SPB_XTD9_XGM\/DOOCS\/MAIN is incomplete: .*DA01-S00001\.h5: truncated/);
  });
});
