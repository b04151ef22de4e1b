/** `damnit data info|get` through the real CLI, by directory and by proposal and run under a data root. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CAMERA,
  MOTOR,
  SYNTH_PRESETS,
  XGM_CONTROL,
  cameraHasTrain,
  cameraPixel,
  correctedSource,
  detectorSource,
  firstTrainId,
  motorPosition,
  xgmState,
} from "../src/synth/layout.js";
import { damnit, expectOneLineError } from "./helpers/cli.js";
import { DAMNIT_BIN } from "./helpers/paths.js";

const P = 4321;
const N = SYNTH_PRESETS.small.trains;
const [CAM_H, CAM_W] = SYNTH_PRESETS.small.cameraShape;
let root: string;
let rawDir: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "damnit-cli-data-"));
  const made = damnit(["synth", root, "--proposal", String(P), "--runs", "1"]);
  expect(made.status, made.stderr).toBe(0);
  rawDir = join(root, "SPB", "202601", `p00${P}`, "raw", "r0001");
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

const env = () => ({ EXTRA_DATA_DATA_ROOT: root });

describe("damnit data info", () => {
  it("describes sources, keys, trains and files", () => {
    const r = damnit(["data", "info", rawDir]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Trains:         ${N} (${firstTrainId(1)} – ${firstTrainId(1) + N - 1})`);
    expect(r.stdout).toMatch(/SPB_IRU_MOTORS\/MOTOR\/SAMPLE_X\s+\(40 trains in 2 files\)/);
    expect(r.stdout).toMatch(/actualPosition\s+float32 \(\) \[mm\]/);
    expect(r.stdout).toMatch(/data\.image\.pixels\s+uint16 \(24, 32\)\s+27 entries in 27 trains/);
    expect(r.stdout).toMatch(/RAW-R0001-DA01-S00001\.h5\s+trains 1500010022 – 1500010039 \(18\)/);
  });

  it("gives the same as JSON, and finds the run by proposal and run number", () => {
    const r = damnit(["data", "info", String(P), "1", "--data", "all", "--json"], { env: env() });
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.directories).toHaveLength(2);
    expect(info.trains).toBe(N);
    expect(info.proposal).toBe(P);
    const camera = info.sources.find((s: { name: string }) => s.name === CAMERA);
    expect(camera.keys.find((k: { key: string }) => k.key === "data.image.pixels")).toMatchObject({
      dtype: "uint16",
      entryShape: [CAM_H, CAM_W],
      entries: 27,
      trainsWithData: 27,
    });
    // With proc data, the raw detector name is the soft-linked legacy name of the corrected source.
    const legacy = info.sources.find((s: { name: string }) => s.name === detectorSource(0));
    expect(legacy.linkTarget).toBe(correctedSource(0));
    expect(info.files).toHaveLength(19);
  });
});

describe("damnit data get", () => {
  it("prints one line per train, marking trains without data", () => {
    const t0 = firstTrainId(1);
    const r = damnit(["data", "get", rawDir, CAMERA, "data.image.pixels", "--trains", `${t0}:${t0 + 4}`]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`${CAMERA} data.image.pixels: uint16 (24, 32), 3 entries in 3 of 4 trains`);
    expect(lines.slice(1).map((l) => l.split("  ")[0])).toEqual([0, 1, 2, 3].map((i) => String(t0 + i)));
    expect(lines[3]).toBe(`${t0 + 2}  —`);
    expect(lines[1]).toContain(`min ${cameraPixel(t0, 0, 0)}`);
  });

  it("gives values aligned to train IDs as JSON", () => {
    const t0 = firstTrainId(1);
    const r = damnit(["data", "get", String(P), "1", CAMERA, "data.image.pixels", "--train-index", "0:6", "--json"], { env: env() });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.trainIds).toEqual([0, 1, 2, 3, 4, 5].map((i) => t0 + i));
    expect(out.counts).toEqual([0, 1, 2, 3, 4, 5].map((i) => (cameraHasTrain(i) ? 1 : 0)));
    expect(out.entryTrainIds).toEqual([0, 1, 3, 4].map((i) => t0 + i));
    expect(out.values).toHaveLength(4);
    expect(out.values[2]).toHaveLength(CAM_H);
    expect(out.values[2][5][7]).toBe(cameraPixel(t0 + 3, 5, 7));
  });

  it("accepts Karabo names, negative positions, and string keys", () => {
    const last = firstTrainId(1) + N - 1;
    const r = damnit(["data", "get", rawDir, MOTOR, "actualPosition", "--train-index=-2:"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split("\n").slice(1)).toEqual([`${last - 1}  ${motorPosition(last - 1, 1)}`, `${last}  ${motorPosition(last, 1)}`]);
    const s = damnit(["data", "get", rawDir, XGM_CONTROL, "state", "--train-index", "24:26", "--json"]);
    expect(JSON.parse(s.stdout).values).toEqual([24, 25].map((i) => xgmState(firstTrainId(1) + i)));
  });

  it("explains unknown sources and keys, bad ranges and missing runs in one line", () => {
    expect(expectOneLineError(damnit(["data", "get", rawDir, "SPB_EXP_ZYLA/CAM/1", "data.image.pixels"]))).toMatch(
      /no source 'SPB_EXP_ZYLA\/CAM\/1' \(did you mean SPB_EXP_ZYLA\/CAM\/1:output/,
    );
    expect(expectOneLineError(damnit(["data", "get", rawDir, CAMERA, "image.pixels"]))).toMatch(/no key 'image\.pixels' \(did you mean data\.image\.pixels/);
    expect(expectOneLineError(damnit(["data", "get", rawDir, CAMERA, "data.image.pixels", "--trains", "abc"]))).toMatch(/--trains 'abc' is not a range/);
    expect(expectOneLineError(damnit(["data", "info", join(root, "nothing")]))).toMatch(/no run directory at/);
    expect(expectOneLineError(damnit(["data", "info", String(P), "7"], { env: env() }))).toMatch(/run 7 of proposal 4321 has no raw data/);
    expect(expectOneLineError(damnit(["data", "get", rawDir, CAMERA]))).toMatch(/give <run dir> <source> <key>/);
    expect(expectOneLineError(damnit(["data", "get", rawDir, MOTOR, "actualPosition", "--trains=-1"]))).toMatch(/negative train ID; count from the end with --train-index/);
    expect(expectOneLineError(damnit(["data", "info", rawDir, "--data", "proc"]))).toMatch(/--data goes with <proposal> <run>/);
    expect(expectOneLineError(damnit(["data", "get", String(P), MOTOR, "actualPosition"], { cwd: root }))).toMatch(
      /no run directory '4321'; to find a run under the data root, give the proposal and the run number/,
    );
  });

  it("stops quietly when the reader of its output goes away", () => {
    const r = spawnSync("bash", ["-c", `set -o pipefail; "${process.execPath}" "${DAMNIT_BIN}" data get "${rawDir}" ${detectorSource(0)} image.data --json | head -c 50 >/dev/null`], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
