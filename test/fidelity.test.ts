/**
 * Fidelity to DAMNIT's own output and tools (issue 12 items 5 and 6): the generated context.py DAMNIT's GUI needs
 * beside a TypeScript context, train-ID coordinates stored as uint64, per-train arrays named as EXtra-data names
 * them, and synthetic runs whose values tell runs apart.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { GUI_POINTER_MARKER, isGuiPointer, writeGuiPointer } from "../src/context/gui-pointer.js";
import { findContextFile } from "../src/context/load.js";
import type { LabelledArray } from "../src/core/variable-output.js";
import { xarrayName } from "../src/exdf/key-data.js";
import { writeRunOutput } from "../src/extract/h5-output.js";
import { toDataValue } from "../src/extract/normalise.js";
import { updateTopic } from "../src/messaging/messages.js";
import { beamOff, firstTrainId, motorPosition, runOfTrain, xgmIntensity, xgmPhotonFlux } from "../src/synth/layout.js";
import { damnit } from "./helpers/cli.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { consumeUntil, startKafka, type TestKafka } from "./helpers/kafka-broker.js";
import { tempDir } from "./helpers/tmp.js";

const PYTHON = "/usr/bin/python3";
const hasH5py = h5pyAvailable();

/** What DAMNIT's GUI does with context.py at start: it must exist, compile, and (here) define no variables. */
function pythonView(file: string): { compiles: boolean; names: string[]; stderr: string } {
  const script = [
    "import ast, json, py_compile, sys",
    "py_compile.compile(sys.argv[1], doraise=True)",
    "ns = {}",
    "exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), ns)",
    "print(json.dumps(sorted(k for k in ns if not k.startswith('__'))))",
  ].join("\n");
  const r = spawnSync(PYTHON, ["-c", script, file], { encoding: "utf8", timeout: 30_000 });
  return { compiles: r.status === 0, names: r.status === 0 ? (JSON.parse(r.stdout) as string[]) : [], stderr: r.stderr };
}

describe("context.py for DAMNIT's GUI beside a TypeScript context", () => {
  it("damnit proposal makes a context.py that compiles and defines no variables", () => {
    const dir = tempDir();
    const r = damnit(["proposal", "1234", dir]);
    expect(r.status, r.stderr).toBe(0);
    const file = join(dir, "context.py");
    expect(readFileSync(file, "utf8").split("\n")[0]).toBe(GUI_POINTER_MARKER);
    expect(isGuiPointer(file)).toBe(true);
    const view = pythonView(file);
    expect(view.compiles, view.stderr).toBe(true);
    expect(view.names).toEqual([]);
  });

  it("never overwrites a user's own context.py, and the loader picks context.ts beside a pointer", () => {
    const dir = tempDir();
    const own = "from damnit_ctx import Variable\n# mine\n";
    writeFileSync(join(dir, "context.py"), own);
    expect(writeGuiPointer(dir)).toBe(false);
    expect(readFileSync(join(dir, "context.py"), "utf8")).toBe(own);
    expect(isGuiPointer(join(dir, "context.py"))).toBe(false);

    const other = tempDir();
    expect(writeGuiPointer(other)).toBe(true);
    expect(writeGuiPointer(other)).toBe(false);
    writeFileSync(join(other, "context.ts"), "export {};\n");
    expect(findContextFile(other)).toBe(join(other, "context.ts"));
  });
});

describe("stored arrays as DAMNIT stores them", () => {
  it("names a per-train key's array as EXtra-data does and stores its train IDs as uint64", async () => {
    expect(xarrayName("SPB_XTD9_XGM/DOOCS/MAIN:output", "data.intensityTD")).toBe("SPB_XTD9_XGM/DOOCS/MAIN:output.data.intensityTD");
    expect(xarrayName("SPB_IRU_MOTORS/MOTOR/SAMPLE_X", "actualPosition.value")).toBe("SPB_IRU_MOTORS/MOTOR/SAMPLE_X.actualPosition");

    const perTrain = toDataValue(
      { dtype: "float32", shape: [3], data: Float32Array.of(1, 2, 3), trainIds: [10, 11, 12], present: Uint8Array.of(1, 1, 1), name: "SRC/A/B:output.data.x" },
      "v",
    ) as LabelledArray;
    expect(perTrain.name).toBe("SRC/A/B:output.data.x");
    expect(perTrain.coords.trainId!.dtype).toBe("uint64");

    // labelled() with plain-number train IDs (e.g. entryTrainIds) gets uint64 ones too; other coordinates keep theirs.
    const given = { __damnitLabelled: true, data: Float64Array.of(5, 6), dims: ["trainId"], coords: { trainId: Float64Array.of(1_500_010_000, 1_500_010_001) } };
    const labelled = toDataValue(given, "w") as LabelledArray;
    expect(labelled.coords.trainId!.dtype).toBe("uint64");
    expect(Array.from(labelled.coords.trainId!.data as BigUint64Array)).toEqual([1_500_010_000n, 1_500_010_001n]);
    const other = toDataValue({ ...given, dims: ["x"], coords: { x: Float64Array.of(1, 2) } }, "u") as LabelledArray;
    expect(other.coords.x!.dtype).toBe("float64");

    if (!hasH5py) {
      console.log("skipped the h5py/xarray check: /usr/bin/python3 has no h5py");
      return;
    }
    const file = join(tempDir(), "p1234_r1.h5");
    await writeRunOutput(file, [
      { name: "xgm", data: perTrain, attrs: {} },
      { name: "totals", data: labelled, attrs: {} },
    ]);
    const seen = runH5py(
      `import xarray as xr
f = h5py.File(sys.argv[1], "r")
out = {g: {k: str(f[g][k].dtype) for k in f[g]} for g in ("xgm", "totals")}
f.close()
out["xr_name"] = xr.open_dataarray(sys.argv[1], group="xgm", engine="h5netcdf").name
print(json.dumps(out))`,
      [file],
    ) as Record<string, unknown>;
    expect(seen).toEqual({
      xgm: { "SRC_A_B:output.data.x": "float32", trainId: "uint64" },
      totals: { __xarray_dataarray_variable__: "float64", trainId: "uint64" },
      xr_name: "SRC_A_B:output.data.x",
    });
  });
});

describe("synthetic runs tell runs apart", () => {
  it("scans the motor across runs, drifts the beam intensity and has the beam off in every fifth run", () => {
    const runs = [1, 2, 3, 4, 5, 6];
    const starts = runs.map((r) => motorPosition(firstTrainId(r), r));
    expect(new Set(starts).size).toBe(runs.length);
    expect(runs.map((r) => runOfTrain(firstTrainId(r) + 39))).toEqual(runs);
    const intensity = runs.map((r) => xgmIntensity(firstTrainId(r) + 7, 3));
    const on = runs.filter((r) => !beamOff(r));
    expect(new Set(on.map((r) => intensity[runs.indexOf(r)])).size).toBe(on.length);
    expect(runs.filter(beamOff)).toEqual([5]);
    expect(xgmIntensity(firstTrainId(5) + 7, 3)).toBe(0);
    expect(xgmPhotonFlux(firstTrainId(5) + 7)).toBe(0);
    expect(xgmPhotonFlux(firstTrainId(1) + 7)).toBeGreaterThan(0);
  });
});

describe("damnit reprocess --local", () => {
  let kafka: TestKafka | undefined;
  afterAll(async () => {
    await kafka?.stop();
  });

  it("publishes what a job publishes: RUNNING, the values stored, finished", async () => {
    const dir = join(tempDir(), "db");
    const made = damnit(["demo", dir, "--runs", "1"]);
    expect(made.status, made.stderr).toBe(0);
    const db = new Database(join(dir, "runs.sqlite"), { readonly: true });
    const dbId = String((db.prepare("SELECT value FROM metameta WHERE key = 'db_id'").get() as { value: string }).value);
    db.close();
    const topic = updateTopic(dbId);
    kafka = await startKafka([topic]);

    const r = damnit(["reprocess", "1", "--local", "--dir", dir], { env: { DAMNIT_KAFKA_BROKERS: kafka.brokers.join(",") } });
    expect(r.status, r.stderr).toBe(0);
    const seen = await consumeUntil(kafka.brokers, topic, (v) => v?.msg_kind === "processing_finished", 30_000);
    const kinds = seen.map((m) => (m.value as { msg_kind: string }).msg_kind);
    const running = seen.map((m) => m.value).filter((v) => v.msg_kind === "processing_state_set" && v.data.status === "RUNNING");
    expect(running.length).toBeGreaterThanOrEqual(1);
    expect(running[0].data).toMatchObject({ proposal: 1234, run: 1, data: "all" });
    const values = seen.map((m) => m.value).filter((v) => v.msg_kind === "run_values_updated");
    expect(values).toHaveLength(1);
    expect(values[0].data).toMatchObject({ proposal: 1234, run: 1 });
    expect(Object.keys(values[0].data.values)).toContain("xgm_mean");
    expect(kinds.filter((k) => k === "processing_finished")).toHaveLength(1);
    expect(seen.at(-1)!.value.data.processing_id).toBe(running[0].data.processing_id);
  }, 120_000);
});
