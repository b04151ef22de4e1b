/**
 * `run.runMetadata()` gives what EXtra-data's `run_metadata()` gives for the same run (Debian's python3-extra-data
 * on a synthetic run): the same keys and values (the sequence number is that of whichever file each reads first).
 */
import { spawnSync } from "node:child_process";
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
});
