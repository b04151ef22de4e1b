/**
 * Our reader against EXtra-data (Debian's python3-extra-data) on the same synthetic run: `run.runMetadata()` gives
 * what `run_metadata()` gives (the sequence number is that of whichever file each reads first), and
 * `key.xarray()` the same name, dimensions, train ID coordinate, dtype, shape and bytes as `KeyData.xarray()`.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openRunDirectory } from "../src/exdf/index.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { tempDir } from "./helpers/tmp.js";

const PYTHON = "/usr/bin/python3";
const extraData = (() => {
  if (spawnSync(PYTHON, ["-c", "import extra_data"], { timeout: 60_000 }).status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import extra_data (apt-get install python3-extra-data)");
  return false;
})();

describe.skipIf(!extraData)("run metadata", () => {
  it("matches EXtra-data's run_metadata()", async () => {
    const root = tempDir("run-metadata");
    const dir = (await writeSyntheticRun({ root, proposal: 4321, run: 7, proc: false })).rawDir;
    const run = await openRunDirectory(dir);
    let ours: Record<string, string | number>;
    try {
      ours = run.runMetadata();
    } finally {
      run.close();
    }
    const py = spawnSync(PYTHON, ["-c", "import extra_data, json, sys\nmd = extra_data.RunDirectory(sys.argv[1]).run_metadata()\nprint(json.dumps({k: (v.item() if hasattr(v, 'item') else v) for k, v in md.items()}))", dir], { encoding: "utf8", timeout: 60_000 });
    expect(py.status, py.stderr).toBe(0);
    const theirs = JSON.parse(py.stdout) as Record<string, unknown>;
    expect(Object.keys(theirs).length).toBeGreaterThan(5);
    // EXtra-data reads the file the directory happens to list first (os.listdir order), ours the first by name:
    // the sequence number of the two may differ; everything else is the run's.
    const { sequenceNumber: ourSequence, ...ourRest } = ours;
    const { sequenceNumber: theirSequence, ...theirRest } = theirs;
    expect(ourRest).toEqual(theirRest);
    expect(typeof ourSequence).toBe("number");
    expect(typeof theirSequence).toBe("number");
  }, 60_000);

  it("key.xarray() matches EXtra-data's KeyData.xarray()", async () => {
    const root = tempDir("xarray");
    const dir = (await writeSyntheticRun({ root, proposal: 4321, run: 8, proc: false })).rawDir;
    const keys: Array<[string, string]> = [
      ["SPB_XTD9_XGM/DOOCS/MAIN:output", "data.intensityTD"],
      ["SPB_XTD9_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux.value"],
      ["SPB_IRU_MOTORS/MOTOR/SAMPLE_X", "actualPosition.value"],
    ];
    const run = await openRunDirectory(dir);
    const ours: unknown[] = [];
    try {
      for (const [source, key] of keys) {
        const x = run.key(source, key).xarray();
        const bytes = Buffer.from(x.data.data.buffer, x.data.data.byteOffset, x.data.data.byteLength);
        ours.push({
          name: x.name,
          dims: x.dims,
          dtype: x.data.dtype,
          shape: x.data.shape,
          trainId: Array.from(x.coords.trainId!.data as BigUint64Array, Number),
          sha: createHash("sha256").update(bytes).digest("hex"),
        });
      }
    } finally {
      run.close();
    }
    const script = `
import extra_data, hashlib, json, sys, numpy as np
run = extra_data.RunDirectory(sys.argv[1])
out = []
for source, key in json.loads(sys.argv[2]):
    x = run[source, key].xarray()
    out.append({"name": x.name, "dims": list(x.dims), "dtype": x.dtype.name, "shape": list(x.shape),
                "trainId": [int(t) for t in x.coords["trainId"].values],
                "sha": hashlib.sha256(np.ascontiguousarray(x.values).tobytes()).hexdigest()})
print(json.dumps(out))
`;
    const py = spawnSync(PYTHON, ["-c", script, dir, JSON.stringify(keys)], { encoding: "utf8", timeout: 60_000 });
    expect(py.status, py.stderr).toBe(0);
    expect(ours).toEqual(JSON.parse(py.stdout));
  }, 60_000);
});
