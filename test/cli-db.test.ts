/** The database commands as a user runs them: `damnit proposal`, `db-config`, `new-id`, `show`, `migrate`. */
import { chmodSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit, expectOneLineError, otherUserCanRunDamnit } from "./helpers/cli.js";
import { metametaValue } from "./helpers/db.js";
import { copyFixture, tempDir } from "./helpers/tmp.js";

describe("damnit proposal", () => {
  it("creates a database, shows and changes the proposal", () => {
    const dir = join(tempDir(), "amore");
    const created = damnit(["proposal", "2956", dir]);
    expect(created.status).toBe(0);
    expect(created.stdout).toBe(`Created DAMNIT database for proposal 2956 at ${dir}/runs.sqlite\n`);
    expect(created.stderr).toBe(""); // nothing about "upgrading" a new database
    expect(damnit(["proposal"], { cwd: dir }).stdout).toBe("Current proposal number: 2956\n");
    expect(damnit(["proposal", dir]).stdout).toBe("Current proposal number: 2956\n");
    expect(damnit(["proposal", "2956", dir]).stdout).toBe("No change - proposal 2956 already set\n");
    expect(damnit(["proposal", "3000", dir]).stdout).toBe("Changed proposal to 3000 (was 2956)\n");
  });

  it("refuses a non-number and a missing parent directory with one line", () => {
    expect(expectOneLineError(damnit(["proposal", "12ab", tempDir()]))).toBe("damnit: '12ab' is not a proposal number");
    const missing = join(tempDir(), "a", "b");
    expect(expectOneLineError(damnit(["proposal", "1", missing]))).toMatch(/^damnit: cannot create directory .*a\/b/);
  });
});

describe("damnit db-config", () => {
  it("lists, gets, sets (as text or number) and deletes settings", () => {
    const dir = tempDir();
    damnit(["proposal", "1234", dir]);
    const list = damnit(["db-config", "-C", dir]);
    expect(list.stdout).toMatch(/^concurrent_jobs=15\ndata_format_version=4\ndb_id='[0-9a-f]{40}'\nproposal=1234\n$/);
    expect(damnit(["db-config", "slurm-time", "01:00:00", "-C", dir]).status).toBe(0);
    expect(damnit(["db-config", "slurm_time"], { cwd: dir }).stdout).toBe("'01:00:00'\n");
    expect(damnit(["db-config", "concurrent-jobs", "30", "--num"], { cwd: dir }).status).toBe(0);
    expect(damnit(["db-config", "concurrent_jobs"], { cwd: dir }).stdout).toBe("30\n");
    expect(damnit(["db-config", "-d", "slurm_time"], { cwd: dir }).status).toBe(0);
    expect(expectOneLineError(damnit(["db-config", "slurm_time"], { cwd: dir }))).toBe("damnit: key slurm_time not found");
    expect(expectOneLineError(damnit(["db-config", "-d"], { cwd: dir }))).toBe("damnit: no key specified to delete");
    expect(expectOneLineError(damnit(["db-config", "x", "abc", "--num", "--any"], { cwd: dir }))).toBe("damnit: 'abc' is not a number");
    const defaults = damnit(["db-config", "--defaults"], { cwd: dir }).stdout;
    expect(defaults).toMatch(/^concurrent_jobs=30\s+array-job concurrency limit/m);
    expect(defaults).toMatch(/^slurm_time='02:00:00' \(default\)\s+sbatch --time$/m);
  });
});

describe("damnit new-id", () => {
  it("gives the database a new db_id", () => {
    const dir = tempDir();
    damnit(["proposal", "1234", dir]);
    const before = damnit(["db-config", "db_id", "-C", dir]).stdout;
    const out = damnit(["new-id", dir]);
    expect(out.stdout).toMatch(/^New database id [0-9a-f]{40} \(was [0-9a-f]{40}\)\n$/);
    expect(damnit(["db-config", "db_id", "-C", dir]).stdout).not.toBe(before);
  });
});

describe("damnit show", () => {
  it("prints the run table with readable blobs", () => {
    const dir = copyFixture("v4");
    const out = damnit(["show", dir]);
    expect(out.status).toBe(0);
    const lines = out.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^run\s+start_time \(UTC\)\s+agipd_mean_frame\s+broken/);
    expect(lines).toHaveLength(2 + 3);
    expect(lines[2]).toMatch(/^\s*1\s+2025-01-01 00:00:00\s+<png 300x300>\s+<SourceNameError: This data has/);
    expect(lines[2]).toContain("<trendline 40 points>");
    expect(lines[2]).toContain("1.174142721 mm");
    expect(lines[3]).toContain("<trendline 150 points>");
  });

  it("selects runs and writes JSON with full values", () => {
    const dir = copyFixture("v4");
    const out = damnit(["show", dir, "--runs", "1,3", "--json"]);
    const rows = JSON.parse(out.stdout);
    expect(rows.map((r: { run: number }) => r.run)).toEqual([1, 3]);
    expect(rows[0].values.sample_x).toBe(1.1741427209360595);
    expect(rows[0].values.agipd_mean_frame).toEqual({ type: "png", width: 300, height: 300, bytes: 10964 });
    expect(rows[0].values.xgm_intensity).toMatchObject({ type: "array", dtype: "float64", shape: [2, 40] });
    expect(rows[0].values.xgm_intensity.data).toHaveLength(80);
    expect(rows[0].attributes.flagged).toEqual({ background: [255, 204, 0], bold: true });
    expect(rows[0].values.broken).toBeNull();
    expect(rows[0].attributes.broken.error_cls).toBe("SourceNameError");
  });

  it("narrows the columns with --match and heads them with titles", () => {
    const dir = copyFixture("v4");
    const lines = damnit(["show", dir, "--match", "xgm", "--match", "SAMPLE", "--titles"]).stdout.split("\n");
    expect(lines[0]).toMatch(/^run\s+start_time \(UTC\)\s+Sample X\s+XGM intensity\s+XGM mean\s+XGM pulses$/);
    expect(expectOneLineError(damnit(["show", dir, "--match", "nothing-like-this"]))).toBe("damnit: no variable matches nothing-like-this");
  });

  it("refuses bad input with one line and the right exit code", () => {
    expect(expectOneLineError(damnit(["show", "/nonexistent/dir"]))).toBe("damnit: /nonexistent/dir: no such directory");
    expect(expectOneLineError(damnit(["show", copyFixture("v4"), "--runs", "1-x"]))).toMatch(/'1-x' is not a run number or range/);
    expect(expectOneLineError(damnit(["show", copyFixture("v0")]))).toMatch(/legacy v0 format.*migrate v0-to-v1/);
    const unknown = damnit(["frobnicate"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown argument: frobnicate/);
  });
});

describe("every command has --help", () => {
  for (const command of ["proposal", "show", "db-config", "new-id", "migrate"]) {
    it(command, () => {
      const out = damnit([command, "--help"]);
      expect(out.status).toBe(0);
      expect(out.stdout).toContain(`damnit ${command}`);
    });
  }
});

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
// As root, read-only is only real for another user; that user must be able to reach this checkout.
const readOnlyTestable = !isRoot || otherUserCanRunDamnit(NOBODY);

describe.skipIf(!readOnlyTestable)("a read-only database", () => {
  function readOnlyCopy(version: "v1" | "v4"): string {
    const dir = copyFixture(version);
    // Let another user reach the copy; it cannot write the file or the directory.
    chmodSync(dirname(dir), 0o755);
    chmodSync(dir, 0o755);
    chmodSync(join(dir, "runs.sqlite"), 0o644);
    if (!isRoot) {
      chmodSync(join(dir, "runs.sqlite"), 0o444);
      chmodSync(dir, 0o555);
    }
    return dir;
  }
  const asOther = isRoot ? { asUid: NOBODY } : {};

  it("opens and reads without writing", () => {
    const dir = readOnlyCopy("v4");
    const before = readFileSync(join(dir, "runs.sqlite"));
    const out = damnit(["show", dir, "--json"], asOther);
    expect(out.stderr).toBe("");
    expect(JSON.parse(out.stdout)).toHaveLength(3);
    expect(damnit(["db-config", "proposal", "-C", dir], asOther).stdout).toBe("700000\n");
    expect(readFileSync(join(dir, "runs.sqlite")).equals(before)).toBe(true);
  });

  it("refuses writes with one line naming the file", () => {
    const v4 = readOnlyCopy("v4");
    expect(expectOneLineError(damnit(["db-config", "x", "1", "--any", "-C", v4], asOther))).toBe(
      `damnit: cannot change settings: ${v4}/runs.sqlite is read-only here (no write access to it or its directory)`,
    );
  });

  it("reads an old (v1) database it may not upgrade, leaving it as it is", () => {
    const v1 = readOnlyCopy("v1");
    const before = readFileSync(join(v1, "runs.sqlite"));
    const out = damnit(["show", v1, "--json"], asOther);
    expect(out.stderr).toBe("");
    const rows = JSON.parse(out.stdout);
    expect(rows.map((r: { run: number }) => r.run)).toEqual([1, 2]);
    expect(rows[0].values.comment).toBe("Alignment run, fixture comment");
    expect(rows[0].attributes).toBeUndefined();
    expect(readFileSync(join(v1, "runs.sqlite")).equals(before)).toBe(true);
  });
});

describe("damnit migrate", () => {
  it("upgrades explicitly and reports what it did", () => {
    const dir = copyFixture("v1");
    const out = damnit(["migrate", dir]);
    expect(out.stdout).toBe(
      `Upgraded ${dir}/runs.sqlite from v1 to v4: v2-attributes, v3-tags, v4-orphan-tag-trigger\nThe old file is kept as ${dir}/runs.sqlite.v1.bak\n`,
    );
    expect(damnit(["migrate", dir]).stdout).toBe(`${dir}/runs.sqlite is already format v4\n`);
    expect(metametaValue(dir, "data_format_version")).toBe(4);
  });
});
