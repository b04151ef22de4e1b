/** The calibration-constant store against the fifteen acceptance checks of spec §D.5, with the real SQLite store and CLI. */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ndarray, type NdArray } from "../src/core/ndarray.js";
import { isDamnitError } from "../src/core/errors.js";
import { encodeNpy } from "../src/db/npy.js";
import { CalibStore, scopes } from "../src/calibration/store.js";
import { calibRoots, lookup, tryLookup } from "../src/calibration/lookup.js";
import { findLegacyFile, scanLegacyDir } from "../src/calibration/legacy-finder.js";
import { historyLines } from "../src/cli/commands/calib.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { execSql } from "./helpers/db.js";
import { DAMNIT_BIN, tempDir } from "./helpers/tmp.js";

const DET = "epix100a-0001";
const T1 = 1474587520.7;
const A = ndarray("float32", [2, 2], [1, 2, 3, 4]);
const B = ndarray("float32", [2, 2], [5, 6, 7, 8]);
const C = ndarray("float32", [2, 2], [9, 9, 9, 9]);

function values(v: unknown): number[] {
  return Array.from((v as NdArray).data as Float32Array);
}

function open(): CalibStore {
  return CalibStore.open(join(tempDir("calib-"), "calib"));
}

describe("calibration store (spec §D.5)", () => {
  it("1: add into an empty store makes range <floor(T1)>-end, v1, begin T1, open end, versdef 0", () => {
    const s = open();
    const r = s.add({ detector: DET, ctype: "pedestals", at: T1, value: A });
    expect(r).toEqual({ detname: DET, range: "1474587520-end", version: 1 });
    const [range] = s.ranges(DET, "pedestals");
    expect(range).toMatchObject({ key: "1474587520-end", begin: T1, end: null, versdef: 0 });
    expect(s.ranges(DET, "pedestals")).toHaveLength(1);
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: T1 }).value)).toEqual([1, 2, 3, 4]);
    s.close();
  });

  it("2: before T1 nothing (typed error from get, null from tryGet); at T1 and long after: A", () => {
    const s = open();
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: A });
    expect(s.tryGet({ detector: DET, ctype: "pedestals", at: T1 - 1 })).toBeNull();
    try {
      s.get({ detector: DET, ctype: "pedestals", at: T1 - 1 });
      expect.unreachable();
    } catch (err) {
      expect(isDamnitError(err, "CALIB_NOT_FOUND")).toBe(true);
    }
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: T1 }).value)).toEqual([1, 2, 3, 4]);
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: T1 + 1e9 }).value)).toEqual([1, 2, 3, 4]);
    s.close();
  });

  it("3: a later add is a step: [T1,T2) gives A, t ≥ T2 gives B", () => {
    const s = open();
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: A });
    s.add({ detector: DET, ctype: "pedestals", at: T1 + 1000, value: B });
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: T1 + 999 }).value)).toEqual([1, 2, 3, 4]);
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: Math.floor(T1 + 1000) }).value)).toEqual([1, 2, 3, 4]);
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: T1 + 1000 }).value)).toEqual([5, 6, 7, 8]);
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: T1 + 5000 }).value)).toEqual([5, 6, 7, 8]);
    s.close();
  });

  it("4: two adds in one second share a range; default is the last, explicit versions exact, a missing one nothing; an existing explicit version is refused", () => {
    const s = open();
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: A });
    s.add({ detector: DET, ctype: "pedestals", at: T1 + 0.1, value: B });
    expect(s.ranges(DET, "pedestals")).toHaveLength(1);
    expect(s.versions(DET, "pedestals", "1474587520-end").map((v) => v.vnum)).toEqual([1, 2]);
    expect(s.get({ detector: DET, ctype: "pedestals", at: T1 }).version).toBe(2);
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: T1, version: 1 }).value)).toEqual([1, 2, 3, 4]);
    expect(s.tryGet({ detector: DET, ctype: "pedestals", at: T1, version: 3 })).toBeNull();
    expect(() => s.add({ detector: DET, ctype: "pedestals", at: T1, value: C, version: 1 })).toThrow(expect.objectContaining({ code: "CALIB_VERSION_EXISTS" }));
    expect(values(s.get({ detector: DET, ctype: "pedestals", at: T1, version: 1 }).value)).toEqual([1, 2, 3, 4]);
    s.close();
  });

  it("5: a changed default version persists after reopening; versions above 9999 order correctly", () => {
    const root = join(tempDir("calib-"), "calib");
    let s = CalibStore.open(root);
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: A });
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: B });
    s.setDefault(DET, "pedestals", "1474587520-end", 1);
    s.close();
    s = CalibStore.open(root);
    expect(s.get({ detector: DET, ctype: "pedestals", at: T1 }).version).toBe(1);
    s.setDefault(DET, "pedestals", "1474587520-end", 0);
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: C, version: 10000 });
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: A, version: 9999 });
    expect(s.get({ detector: DET, ctype: "pedestals", at: T1 }).version).toBe(10000);
    s.close();
  });

  it("6: [100,200] and [150,end]: latest begin wins, inclusive bounds", () => {
    const s = open();
    s.add({ detector: DET, ctype: "pixel_mask", at: 100, end: 200, value: ndarray("uint8", [1], [1]) });
    s.add({ detector: DET, ctype: "pixel_mask", at: 150, value: ndarray("uint8", [1], [2]) });
    const at = (t: number) => s.tryGet({ detector: DET, ctype: "pixel_mask", at: t })?.range ?? null;
    expect([at(175), at(120), at(250), at(99)]).toEqual(["150-end", "100-200", "150-end", null]);
    s.close();
  });

  it("7: [100,200] and [100,end]: the closed range wins for equal begins, end inclusive", () => {
    const s = open();
    s.add({ detector: DET, ctype: "pixel_mask", at: 100, value: ndarray("uint8", [1], [2]) });
    s.add({ detector: DET, ctype: "pixel_mask", at: 100, end: 300, value: ndarray("uint8", [1], [3]) });
    s.add({ detector: DET, ctype: "pixel_mask", at: 100, end: 200, value: ndarray("uint8", [1], [1]) });
    const at = (t: number) => s.tryGet({ detector: DET, ctype: "pixel_mask", at: t })?.range ?? null;
    expect([at(150), at(200), at(250), at(301)]).toEqual(["100-200", "100-200", "100-300", "100-end"]);
    s.close();
  });

  it("8: an unknown ctype is refused with a typed error and the store file stays byte-identical", () => {
    const root = join(tempDir("calib-"), "calib");
    const s = CalibStore.open(root);
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: A });
    const before = readFileSync(s.path);
    expect(() => s.add({ detector: DET, ctype: "foo", at: T1, value: A })).toThrow(expect.objectContaining({ code: "CALIB_UNKNOWN_CTYPE" }));
    expect(() => s.add({ detector: DET, ctype: "pedestals", at: Number.NaN, value: A })).toThrow(expect.objectContaining({ code: "CALIB_BAD_TIME" }));
    expect(() => s.add({ detector: DET, ctype: "geometry", at: T1, value: A })).toThrow(expect.objectContaining({ code: "CALIB_BAD_DATA" }));
    s.close();
    expect(readFileSync(join(root, "calib.sqlite")).equals(before)).toBe(true);
  });

  it("9: delete without a number removes the last version; deleting the default resets it; a missing version changes nothing", () => {
    const s = open();
    for (const v of [A, B, C]) s.add({ detector: DET, ctype: "pedestals", at: T1, value: v });
    const key = "1474587520-end";
    expect(s.deleteVersion(DET, "pedestals", key)).toBe(3);
    expect(s.get({ detector: DET, ctype: "pedestals", at: T1 }).version).toBe(2);
    s.setDefault(DET, "pedestals", key, 1);
    expect(s.deleteVersion(DET, "pedestals", key, 1)).toBe(1);
    expect(s.ranges(DET, "pedestals")[0]!.versdef).toBe(0);
    expect(s.get({ detector: DET, ctype: "pedestals", at: T1 }).version).toBe(2);
    expect(s.deleteVersion(DET, "pedestals", key, 7)).toBeNull();
    expect(s.versions(DET, "pedestals", key).map((v) => v.vnum)).toEqual([2]);
    s.close();
  });

  it("10: deleting a range falls back to another covering range or nothing", () => {
    const s = open();
    s.add({ detector: DET, ctype: "pedestals", at: 100, value: A });
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: B });
    expect(s.deleteRange(DET, "pedestals", "1474587520-end")).toBe(true);
    expect(s.get({ detector: DET, ctype: "pedestals", at: T1 }).range).toBe("100-end");
    expect(s.deleteRange(DET, "pedestals", "100-end")).toBe(true);
    expect(s.tryGet({ detector: DET, ctype: "pedestals", at: T1 })).toBeNull();
    expect(s.deleteRange(DET, "pedestals", "100-end")).toBe(false);
    s.close();
  });

  it("11: a geometry text constant round-trips as the identical string; numeric data is cast to the ctype's element type", () => {
    const s = open();
    const text = "# geometry\nQUAD:V1 0 CSPAD:V1 0 0 0 0 0 0 0 0 0\nü ∞\n";
    s.add({ detector: DET, ctype: "geometry", at: T1, value: text });
    const hit = s.get({ detector: DET, ctype: "geometry", at: T1 });
    expect(hit.value).toBe(text);
    expect(hit.dtype).toBe("text");
    s.add({ detector: DET, ctype: "pixel_status", at: T1, value: ndarray("float64", [3], [1.9, 2, 65535]) });
    const st = s.get({ detector: DET, ctype: "pixel_status", at: T1 }).value as NdArray;
    expect(st.dtype).toBe("uint16");
    expect(Array.from(st.data as Uint16Array)).toEqual([1, 2, 65535]);
    s.close();
  });

  it("12: lookup order local → proposal → repository, first hit wins and names its level", () => {
    const dbDir = tempDir("calib-db-");
    const roots = calibRoots({ dbDir, proposalCalib: join(dbDir, "prop"), repository: join(dbDir, "repo") });
    const repo = CalibStore.open(join(dbDir, "repo"));
    repo.add({ detector: DET, ctype: "pedestals", at: T1, value: B });
    repo.add({ detector: DET, ctype: "pixel_gain", at: T1, value: C });
    repo.close();
    expect(lookup(roots, { detector: DET, ctype: "pedestals", at: T1 }).level).toBe("repository");
    const local = CalibStore.open(join(dbDir, "calib"));
    local.add({ detector: DET, ctype: "pedestals", at: T1, value: A });
    local.close();
    const hit = lookup(roots, { detector: DET, ctype: "pedestals", at: T1 });
    expect([hit.level, values(hit.value)]).toEqual(["local", [1, 2, 3, 4]]);
    expect(lookup(roots, { detector: DET, ctype: "pixel_gain", at: T1 }).level).toBe("repository");
    expect(tryLookup(roots, { detector: DET, ctype: "pixel_mask", at: T1 })).toBeNull();
    expect(() => lookup(roots, { detector: DET, ctype: "pixel_mask", at: T1 })).toThrow(expect.objectContaining({ code: "CALIB_NOT_FOUND" }));
  });

  it("13: every add/delete appends history, sorted and formatted YYYY-mm-ddTHH:MM:SS.ffffff <record>", () => {
    const s = open();
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: A, message: "dark run" });
    s.add({ detector: DET, ctype: "pedestals", at: T1, value: B });
    s.deleteVersion(DET, "pedestals", "1474587520-end", 1, "bad");
    const lines = historyLines(s, scopes.range(DET, "pedestals", "1474587520-end"));
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6} /);
    expect(lines.map((l) => l.slice(27).replace(/ \(.*\)$/, ""))).toEqual(["add version 1: dark run", "add version 2", "del version 1: bad"]);
    expect([...lines].sort()).toEqual(lines);
    expect(historyLines(s, scopes.detector(DET)).map((l) => l.slice(27).replace(/ \(.*\)$/, ""))).toEqual(["add ctype pedestals"]);
    s.close();
  });

  it("aliases are time-bounded; an unknown alias finds nothing", () => {
    const s = open();
    s.add({ detector: DET, ctype: "pedestals", at: 100, value: A });
    s.addAlias("det1", DET, 100, 200);
    expect(s.get({ detector: "det1", ctype: "pedestals", at: 150 }).detname).toBe(DET);
    expect(s.tryGet({ detector: "det1", ctype: "pedestals", at: 250 })).toBeNull();
    expect(s.tryGet({ detector: "nobody", ctype: "pedestals", at: 150 })).toBeNull();
    s.close();
  });

  it("14: two writer processes adding different ctypes both succeed, and a reader process never fails", async () => {
    const dir = tempDir("calib-conc-");
    const root = join(dir, "calib");
    writeFileSync(join(dir, "a.npy"), encodeNpy(ndarray("float64", [64, 64], new Array<number>(4096).fill(1))));
    const s = CalibStore.open(root);
    s.add({ detector: DET, ctype: "pixel_rms", at: 1, value: A });
    s.close();
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((done) => {
        const p = spawn(process.execPath, [DAMNIT_BIN, "calib", ...args, "--store", root], { cwd: dir });
        let err = "";
        p.stderr.on("data", (d: Buffer) => (err += d.toString()));
        const timer = setTimeout(() => p.kill(), 60_000);
        p.on("close", (code) => (clearTimeout(timer), done({ code, err })));
      });
    const writer = async (ctype: string) => {
      for (let i = 0; i < 3; i++) {
        const r = await run(["add", "-d", DET, "-t", ctype, "--at", String(100 + i), "-f", "a.npy"]);
        if (r.code !== 0) return r;
      }
      return { code: 0, err: "" };
    };
    const reader = async () => {
      for (let i = 0; i < 5; i++) {
        const r = await run(["get", "-d", DET, "-t", "pixel_rms", "--at", "50"]);
        if (r.code !== 0) return r;
      }
      return { code: 0, err: "" };
    };
    const results = await Promise.all([writer("pedestals"), writer("pixel_gain"), reader()]);
    expect(results).toEqual([{ code: 0, err: "" }, { code: 0, err: "" }, { code: 0, err: "" }]);
    const after = CalibStore.open(root, { readonly: true });
    expect(after.ctypes(DET)).toEqual(["pedestals", "pixel_gain", "pixel_rms"]);
    expect(after.ranges(DET, "pedestals")).toHaveLength(3);
    expect(after.ranges(DET, "pixel_gain")).toHaveLength(3);
    after.close();
  }, 120_000);

  it("a writer that cannot get the lock within the busy timeout gets a clear BUSY error and the store is unchanged", () => {
    const root = join(tempDir("calib-"), "calib");
    const holder = CalibStore.open(root);
    holder.add({ detector: DET, ctype: "pedestals", at: 1, value: A });
    const other = CalibStore.open(root, { timeoutMs: 200 });
    const db = (holder as unknown as { db: { exec(sql: string): void } }).db;
    db.exec("BEGIN IMMEDIATE");
    try {
      expect(() => other.add({ detector: DET, ctype: "pedestals", at: 2, value: B })).toThrow(expect.objectContaining({ code: "BUSY" }));
    } finally {
      db.exec("ROLLBACK");
    }
    expect(other.ranges(DET, "pedestals")).toHaveLength(1);
    holder.close();
    other.close();
  });

  it("a reader process during a write sees the complete old state at once, and the new one after the commit", () => {
    const dir = tempDir("calib-");
    const root = join(dir, "calib");
    const holder = CalibStore.open(root);
    holder.add({ detector: DET, ctype: "pedestals", at: T1, value: A });
    const db = (holder as unknown as { db: { exec(sql: string): void } }).db;
    const read = () => damnit(["calib", "get", "-d", DET, "-t", "pedestals", "--at", String(T1 + 1), "--store", root], { cwd: dir });
    db.exec("BEGIN IMMEDIATE");
    try {
      holder.add({ detector: DET, ctype: "pedestals", at: T1, value: B });
      holder.add({ detector: DET, ctype: "pixel_gain", at: T1, value: C });
      const started = performance.now();
      const during = read();
      expect([during.status, during.stderr]).toEqual([0, ""]);
      expect(during.stdout).toContain("range 1474587520-end version 1 ");
      expect(performance.now() - started).toBeLessThan(8_000); // well under the 10 s busy timeout: it never waited
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
    const after = read();
    expect([after.status, after.stdout.includes("range 1474587520-end version 2 ")]).toEqual([0, true]);
    holder.close();
  });

  it("15: legacy run-numbered files: latest begin wins, bad names ignored, end-before-begin rejected with a warning", () => {
    const dir = tempDir("calib-legacy-");
    for (const name of ["1-end.data", "5-10.data", "abc-end.data", "1-2-3.data", "12-3.data", "HISTORY", "7-8.txt"]) writeFileSync(join(dir, name), "1 2\n");
    const { files, warnings } = scanLegacyDir(dir);
    expect(files.map((f) => f.name).sort()).toEqual(["1-end.data", "5-10.data"]);
    expect(warnings).toHaveLength(3);
    expect(warnings.filter((w) => w.includes("12-3.data"))).toHaveLength(1);
    expect(findLegacyFile(files, 7)?.name).toBe("5-10.data");
    expect(findLegacyFile(files, 10)?.name).toBe("5-10.data");
    expect(findLegacyFile(files, 11)?.name).toBe("1-end.data");
    expect(findLegacyFile(files, 0)).toBeNull();
    const cli = damnit(["calib", "legacy-find", dir, "--run", "7"]);
    expect([cli.status, cli.stdout.trim()]).toEqual([0, join(dir, "5-10.data")]);
  });
});

describe("damnit calib import-legacy", () => {
  it("15 through the store: run-numbered .data files become time ranges from runs.sqlite; latest begin wins, bounds inclusive, bad names warned about", () => {
    const dir = tempDir("calib-legacy-");
    expect(damnit(["proposal", "1234", dir]).status).toBe(0);
    const start = (run: number) => 1_700_000_000 + run * 3600;
    execSql(dir, Array.from({ length: 13 }, (_, run) => `INSERT INTO run_info(proposal, run, start_time, added_at) VALUES (1234, ${run}, ${start(run)}, 0);`).join("\n"));
    const leaf = join(dir, "legacy", "CsPad::CalibV1", "CxiDs1.0:Cspad.0", "pedestals");
    mkdirSync(leaf, { recursive: true });
    writeFileSync(join(leaf, "1-end.data"), "1 1 1\n");
    writeFileSync(join(leaf, "5-10.data"), "5 10 5\n");
    for (const bad of ["abc-end.data", "1-2-3.data", "12-3.data"]) writeFileSync(join(leaf, bad), "0\n");
    writeFileSync(join(leaf, "HISTORY"), "file:1-end.data copy_of:x\n");
    const imp = damnit(["calib", "import-legacy", "legacy"], { cwd: dir });
    expect(imp.status, imp.stderr).toBe(0);
    expect(imp.stdout).toContain("imported 2 legacy calibration files");
    expect(imp.stderr.split("\n").filter((l) => l.includes("warning")).length).toBe(3);
    const det = "cspad-CxiDs1.0-Cspad.0";
    const at = (run: number) => damnit(["calib", "get", "-d", det, "-t", "pedestals", "--run", String(run), "-f", `r${run}.npy`], { cwd: dir });
    for (const [run, range] of [[7, `${start(5)}-${start(10)}`], [10, `${start(5)}-${start(10)}`], [11, `${start(1)}-end`], [1, `${start(1)}-end`]] as const) {
      const r = at(run);
      expect([run, r.status, r.stdout.includes(`range ${range} version 1`)]).toEqual([run, 0, true]);
    }
    expect(expectOneLineError(at(0))).toMatch(/no pedestals constants for detector cspad-CxiDs1.0-Cspad.0/);
    const s = CalibStore.open(join(dir, "calib"), { readonly: true });
    expect(values(s.get({ detector: det, ctype: "pedestals", at: start(7) }).value)).toEqual([5, 10, 5]);
    s.close();
  });
});

describe("damnit calib CLI", () => {
  it("add, get --file (.npy), set-default, and one-line errors for nothing found, unknown ctype and bad time", () => {
    const dir = tempDir("calib-cli-");
    mkdirSync(join(dir, "in"));
    writeFileSync(join(dir, "in", "a.txt"), "1 2 3\n4 5 6\n");
    const add = damnit(["calib", "add", "-d", DET, "-t", "pedestals", "--at", "2016-09-22T23:38:40Z", "-f", "in/a.txt", "-m", "dark"], { cwd: dir });
    expect(add.status, add.stderr).toBe(0);
    expect(add.stdout).toContain("range 1474587520-end version 1");
    const get = damnit(["calib", "get", "-d", DET, "-t", "pedestals", "--at", "1474587600", "-f", "out.npy"], { cwd: dir });
    expect(get.status, get.stderr).toBe(0);
    const bytes = readFileSync(join(dir, "out.npy"));
    expect(bytes.subarray(1, 6).toString()).toBe("NUMPY");
    expect(bytes.toString("latin1")).toContain("'<f4'");
    expect(expectOneLineError(damnit(["calib", "get", "-d", DET, "-t", "pedestals", "--at", "1000"], { cwd: dir }))).toMatch(/no pedestals constants for detector epix100a-0001 at 1000/);
    expect(expectOneLineError(damnit(["calib", "add", "-d", DET, "-t", "foo", "--at", "1", "-f", "in/a.txt"], { cwd: dir }))).toMatch(/unknown calibration type 'foo'/);
    expect(expectOneLineError(damnit(["calib", "get", "-d", DET, "-t", "pedestals", "--at", "yesterday"], { cwd: dir }))).toMatch(/bad time 'yesterday'/);
    expect(expectOneLineError(damnit(["calib", "set-default", "-d", DET, "-t", "pedestals", "-g", "1474587520-end", "-v", "5"], { cwd: dir }))).toMatch(/version 5/);
  });
});
