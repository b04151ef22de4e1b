/**
 * Extraction end to end through the real CLI: `damnit demo`, `damnit reprocess` and `damnit extract` on synthetic
 * runs with the example context, checked row by row in SQLite and path by path in HDF5 (read by h5py, an
 * independent reader), against values computed from the synthetic data's defining functions.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode } from "fast-png";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeNpy } from "../src/db/npy.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { damnit } from "./helpers/cli.js";
import { queryAll, runInfoRow, runVariableRows, variableRows, variableTagPairs } from "./helpers/db.js";
import { expectedRun, maxMinusMin } from "./helpers/example-expected.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { REPO_ROOT } from "./helpers/paths.js";

const PROPOSAL = 1234;
const EXAMPLE = join(REPO_ROOT, "contexts", "spb-example.ts");
let root: string;
let dataRoot: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "damnit-extract-"));
  dataRoot = join(root, "data");
  for (const run of [1, 2]) await writeSyntheticRun({ root: dataRoot, proposal: PROPOSAL, run });
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A database directory using the shared synthetic data, with `context` (default: the example) as context.ts. */
function database(name: string, context?: string): string {
  const dir = join(root, name);
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  expect(damnit(["db-config", "data_root", dataRoot], { cwd: dir }).status).toBe(0);
  if (context === undefined) copyFileSync(EXAMPLE, join(dir, "context.ts"));
  else writeFileSync(join(dir, "context.ts"), context);
  return dir;
}

interface Row {
  name: string;
  value: unknown;
  type: string;
  summary_type: string | null;
  summary_method: string | null;
  max_diff: number | null;
  attributes: string | null;
  provenance: string;
}

/** The columns compared before and after a reprocess (not the timestamp). */
function rows(dir: string, run: number): Map<string, Row> {
  const list = queryAll<Row>(
    dir,
    "SELECT name, value, typeof(value) AS type, summary_type, summary_method, max_diff, attributes, provenance FROM run_variables WHERE proposal = ? AND run = ?",
    PROPOSAL,
    run,
  );
  return new Map(list.map((r) => [r.name, r]));
}

function runInfo(dir: string, run: number): { start_time: number | null } {
  return runInfoRow(dir, run, PROPOSAL)!;
}

const pngSize = (blob: Buffer) => {
  const image = decode(blob);
  return { width: image.width, height: image.height, channels: image.channels };
};

/** Every stored value of the example context for one run, against the synthetic data. */
function checkExampleRows(dir: string, run: number): void {
  const expected = expectedRun(run);
  const r = rows(dir, run);
  expect([...r.keys()].sort()).toEqual(
    ["agipd_corrected_mean", "agipd_mean_frame", "beam_ok", "camera_image", "camera_total", "n_trains", "photon_flux", "sample_x", "sase1_flux", "sase1_ratio", "xgm_intensity", "xgm_mean"].sort(),
  );
  for (const row of r.values()) expect(row.provenance).toBe("context.py");
  expect(runInfo(dir, run).start_time).toBeCloseTo(expected.startTime, 3);

  expect(r.get("n_trains")).toMatchObject({ value: 40, type: "integer", summary_type: null, attributes: null });
  const xgm = r.get("xgm_intensity")!;
  expect(xgm).toMatchObject({ type: "blob", summary_type: "trendline", attributes: '{"units": "\\u00b5J"}' });
  const trend = decodeNpy(xgm.value as Buffer);
  expect(trend.shape).toEqual([2, 40]);
  expect(Array.from(trend.data as Float64Array).slice(0, 40)).toEqual(expected.trainIds);
  expect(Array.from(trend.data as Float64Array).slice(40)).toEqual(expected.xgmPerTrain);
  expect(xgm.max_diff).toBeCloseTo(maxMinusMin(expected.xgmPerTrain), 9);
  expect(r.get("xgm_mean")).toMatchObject({ type: "real", attributes: '{"units": "\\u00b5J"}' });
  expect(r.get("xgm_mean")!.value).toBeCloseTo(expected.xgmMean, 9);
  expect(r.get("photon_flux")).toMatchObject({ summary_method: "mean", type: "real" });
  expect(r.get("photon_flux")!.value).toBeCloseTo(expected.photonFlux, 3);
  expect(r.get("sample_x")!.value).toBeCloseTo(expected.sampleX, 6);
  expect(r.get("sample_x")!.max_diff).toBeCloseTo(expected.sampleXMaxDiff, 6);
  expect(r.get("camera_total")).toMatchObject({ summary_method: "mean", type: "real" });
  expect(r.get("camera_total")!.value).toBeCloseTo(expected.cameraTotalMean, 6);
  expect(r.get("camera_total")!.max_diff).toBeCloseTo(maxMinusMin(expected.cameraTotals), 6);

  for (const [name, values, shape] of [
    ["camera_image", expected.cameraImage, [300, 225]],
    ["agipd_mean_frame", expected.meanFrame, [300, 150]],
  ] as const) {
    const row = r.get(name)!;
    expect(row, name).toMatchObject({ type: "blob", summary_type: null });
    expect(pngSize(row.value as Buffer)).toEqual({ width: shape[0], height: shape[1], channels: 3 });
    expect(row.max_diff).toBeCloseTo(maxMinusMin(values), 6);
  }
  expect(r.get("agipd_corrected_mean")!.value).toBeCloseTo(expected.correctedMean, 6);
  expect(JSON.parse(r.get("agipd_corrected_mean")!.attributes!)).toEqual({ units: "keV" });

  expect(r.get("beam_ok")).toMatchObject({ value: "good", type: "text" });
  expect(JSON.parse(r.get("beam_ok")!.attributes!)).toEqual({ bold: false, background: [143, 209, 143] });
  expect(r.get("sase1_flux")).toMatchObject({ value: null });
  expect(JSON.parse(r.get("sase1_flux")!.attributes!)).toEqual({ error: "this run has no source 'SA1_XTD2_XGM/XGM/DOOCS'", error_cls: "SourceNameError" });
  expect(JSON.parse(r.get("sase1_ratio")!.attributes!)).toEqual({
    error: "Skipped due to missing dependency:\n└ (sase1_flux) failed: SourceNameError: this run has no source 'SA1_XTD2_XGM/XGM/DOOCS'",
    error_cls: "DependencyError",
  });
}

/** Paths, dtypes, shapes and attributes of a run file as h5py sees them. */
function h5Tree(file: string): Record<string, { kind: string; dtype?: string; shape?: number[]; attrs: Record<string, unknown> }> {
  return runH5py(
    `
out = {}
def attrs(obj):
    d = {}
    for k, v in obj.attrs.items():
        if k in ("DIMENSION_LIST", "REFERENCE_LIST"): d[k] = "<refs>"; continue
        v = v.tolist() if hasattr(v, "tolist") else v
        v = v.decode() if isinstance(v, bytes) else v
        d[k] = "NaN" if isinstance(v, float) and v != v else v
    return d
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        out[name] = {"kind": "dataset", "dtype": obj.dtype.str if obj.dtype.kind != "O" else "str", "shape": list(obj.shape), "attrs": attrs(obj)}
    else:
        out[name] = {"kind": "group", "attrs": attrs(obj)}
with h5py.File(sys.argv[1], "r") as f:
    out["/"] = {"kind": "group", "attrs": attrs(f)}
    f.visititems(visit)
print(json.dumps(out))
`,
    [file],
  ) as ReturnType<typeof h5Tree>;
}

describe("extraction", () => {
  it("damnit demo makes a proposal, processes every run and prints the table", () => {
    const dir = join(root, "demo");
    const result = damnit(["demo", dir, "--runs", "2"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/variable\s+run 1\s+run 2/);
    const [mean1, mean2] = [expectedRun(1).xgmMean, expectedRun(2).xgmMean];
    expect(mean1).not.toBe(mean2); // synthetic runs differ
    expect(result.stdout).toMatch(new RegExp(`XGM/mean\\s+${String(mean1).replace(".", "\\.")} µJ\\s+${String(mean2).replace(".", "\\.")} µJ`));
    expect(result.stdout).toMatch(/Processed 2 runs in [\d.]+ s: 2 ok, 0 failed; 4 variable errors/);
    for (const run of [1, 2]) checkExampleRows(dir, run);
    expect(existsSync(join(dir, "process_logs", "r1-p1234.out"))).toBe(true);
    expect(statSync(join(dir, "extracted_data")).mode & 0o777).toBe(0o777);
    expect(statSync(join(dir, "extracted_data", "p1234_r1.h5")).mode & 0o777).toBe(0o666);
    // The variables table has the example's titles, descriptions and tags.
    const variables = variableRows(dir).map(({ name, title, description }) => ({ name, title, description }));
    const tags = variableTagPairs(dir);
    expect(variables.map((v) => v.name)).not.toContain("xgm_pulses"); // transient
    expect(variables.find((v) => v.name === "xgm_mean")).toEqual({ name: "xgm_mean", title: "XGM/mean", description: "Mean pulse energy of the run" });
    expect(tags).toContainEqual({ name: "camera_image", tag: "camera" });
  });

  it("writes DAMNIT's HDF5 layout, readable by h5py", ({ skip }) => {
    if (!h5pyAvailable()) skip();
    const dir = database("layout");
    expect(damnit(["extract", String(PROPOSAL), "1", "all"], { cwd: dir }).status).toBe(0);
    const tree = h5Tree(join(dir, "extracted_data", "p1234_r1.h5"));
    const expected = expectedRun(1);
    // DAMNIT's provenance attribute, and ours (the attempt's record, src/provenance/h5-attribute.ts)
    const { damnit_provenance: record, ...rootAttrs } = tree["/"]!.attrs as Record<string, unknown>;
    expect(rootAttrs).toEqual({ provenance: "context.py" });
    expect((JSON.parse(String(record)) as { attempts: Array<{ attempt: number }> }).attempts.map((a) => a.attempt)).toEqual([1]);
    for (const group of [".reduced", ".preview", ".errors"]) expect(tree[group]?.kind).toBe("group");
    // Every stored variable has its group and summary; errors have only their .errors entry.
    for (const name of ["n_trains", "xgm_intensity", "xgm_mean", "photon_flux", "sample_x", "camera_total", "camera_image", "agipd_mean_frame", "agipd_corrected_mean", "beam_ok", "start_time"]) {
      expect(tree[`.reduced/${name}`]?.kind, name).toBe("dataset");
      expect(tree[name]?.kind, name).toBe("group");
    }
    for (const name of ["sase1_flux", "sase1_ratio"]) {
      expect(tree[name], name).toBeUndefined();
      expect(tree[`.reduced/${name}`], name).toBeUndefined();
    }
    expect(tree["xgm_pulses"]).toBeUndefined(); // transient
    expect(tree[".errors/sase1_flux"]).toMatchObject({ dtype: "str", shape: [], attrs: { type: "SourceNameError" } });
    expect(tree[".errors/sase1_ratio"]).toMatchObject({ attrs: { type: "DependencyError" } });
    expect(tree["n_trains/data"]).toMatchObject({ dtype: "<i8", shape: [] });
    expect(tree[".reduced/n_trains"]).toMatchObject({ dtype: "<i8", shape: [], attrs: {} });
    expect(tree["start_time/data"]).toMatchObject({ dtype: "<f8", shape: [] });
    expect(tree[".reduced/xgm_mean"]).toMatchObject({ dtype: "<f8", attrs: { units: "µJ" } });
    expect(tree[".reduced/xgm_intensity"]).toMatchObject({ dtype: "<f8", shape: [2, 40], attrs: { summary_type: "trendline", units: "µJ" } });
    expect(tree["xgm_intensity"]!.attrs).toMatchObject({ _damnit_objtype: "dataarray" });
    expect(tree[".reduced/camera_image"]).toMatchObject({ dtype: "|u1", shape: [expect.any(Number)] });
    expect(tree["camera_image/data"]).toMatchObject({ dtype: "<f8", shape: [24, 32] });
    expect(tree["agipd_mean_frame/data"]).toMatchObject({ dtype: "<f8", shape: [16, 32] });
    expect(tree[".reduced/camera_total"]).toMatchObject({ dtype: "<f8", attrs: { summary_method: "mean" } });
    expect(tree[".reduced/beam_ok"]).toMatchObject({ dtype: "str", attrs: { bold: false, background: [143, 209, 143] } });

    // Values, read by h5py.
    const values = runH5py(
      `
with h5py.File(sys.argv[1], "r") as f:
    print(json.dumps({
        "start_time": float(f["start_time/data"][()]),
        "xgm_mean": float(f[".reduced/xgm_mean"][()]),
        "trend": f[".reduced/xgm_intensity"][()].tolist(),
        "image": f["camera_image/data"][()].ravel().tolist(),
        "error": f[".errors/sase1_flux"][()].decode(),
        "beam_ok": f[".reduced/beam_ok"][()].decode(),
        "png_magic": f[".reduced/agipd_mean_frame"][:8].tolist(),
    }))
`,
      [join(dir, "extracted_data", "p1234_r1.h5")],
    ) as Record<string, unknown>;
    expect(values.start_time).toBeCloseTo(expected.startTime, 3);
    expect(values.xgm_mean).toBeCloseTo(expected.xgmMean, 9);
    expect((values.trend as number[][])[1]).toEqual(expected.xgmPerTrain);
    expect(values.image).toEqual(Array.from(expected.cameraImage));
    expect(values.error).toBe("this run has no source 'SA1_XTD2_XGM/XGM/DOOCS'");
    expect(values.beam_ok).toBe("good");
    expect(values.png_magic).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });

  it("reprocess recomputes all or matching variables, and raw jobs leave proc variables alone", () => {
    const dir = database("reprocess");
    const all = damnit(["reprocess", "all", "--dir", dir, "--local"]);
    // No runs recorded yet: nothing to do.
    expect(all.status).toBe(1);
    expect(all.stderr).toMatch(/no runs to process for proposal 1234/);
    const explicit = damnit(["reprocess", "1-2", "7", "--dir", dir, "--local"]);
    expect(explicit.status).toBe(0);
    expect(explicit.stderr).toMatch(/skipping 1 runs because they don't exist: \[7\]/);
    expect(explicit.stdout).toMatch(/Processed 2 runs in [\d.]+ s: 2 ok, 0 failed; 4 variable errors/);
    expect(explicit.stdout).toMatch(/sase1_flux: SourceNameError: this run has no source 'SA1_XTD2_XGM\/XGM\/DOOCS' \(runs 1, 2\)/);
    for (const run of [1, 2]) checkExampleRows(dir, run);

    const before = rows(dir, 1);
    const stampsBefore = stamps(dir, 1);
    const matched = damnit(["reprocess", "all", "--dir", dir, "--match", "xgm/MEAN", "--local"]);
    expect(matched.status).toBe(0);
    const after = rows(dir, 1);
    const stampsAfter = stamps(dir, 1);
    // xgm_mean (and what it needs) was recomputed; the rest kept their rows.
    expect(stampsAfter.get("xgm_mean")!).toBeGreaterThan(stampsBefore.get("xgm_mean")!);
    expect(stampsAfter.get("xgm_intensity")!).toBeGreaterThan(stampsBefore.get("xgm_intensity")!);
    expect(stampsAfter.get("camera_total")).toBe(stampsBefore.get("camera_total"));
    expect(after).toEqual(before);

    // A raw job (migration) computes raw variables only, reading raw frames; the proc variable keeps its row.
    const procRow = rows(dir, 2).get("agipd_corrected_mean");
    const raw = damnit(["extract", String(PROPOSAL), "2", "raw"], { cwd: dir });
    expect(raw.status).toBe(0);
    expect(raw.stderr).toMatch(/Using 13 variables \(of 14\) from context file/);
    const afterRaw = rows(dir, 2);
    expect(afterRaw.get("agipd_corrected_mean")).toEqual(procRow);
    expect(afterRaw.get("agipd_mean_frame")!.max_diff).not.toBeCloseTo(procRow === undefined ? 0 : rows(dir, 1).get("agipd_mean_frame")!.max_diff!, 6);
  });
});

function stamps(dir: string, run: number): Map<string, number> {
  return new Map(runVariableRows(dir, { proposal: PROPOSAL, run }).map((r) => [r.name, r.timestamp]));
}
