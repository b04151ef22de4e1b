/**
 * An independent reader agrees: h5py (libhdf5 1.10 from Debian) opens every synthetic file, and following the EXDF
 * index by hand in Python gives the same values, counts and train IDs as our reader.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openRunDirectory } from "../src/exdf/index.js";
import { CAMERA, XGM_CONTROL, correctedSource, detectorSource } from "../src/synth/layout.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { h5pyAvailable, runH5py } from "./helpers/h5py.js";
import { tempDir } from "./helpers/tmp.js";

/** Per file: train IDs (padding dropped) and, for one source/group/key, the rows each train indexes, summed. */
const DUMP = `
path, source, group, key = sys.argv[1:5]
with h5py.File(path, "r") as f:
    tids = [int(t) for t in f["INDEX/trainId"][:] if t != 0]
    base = f"INDEX/{source}/{group}" if group else f"INDEX/{source}"
    first, count = f[base + "/first"][:len(tids)], f[base + "/count"][:len(tids)]
    root = "INSTRUMENT" if group else "CONTROL"
    ds = f[f"{root}/{source}/{key.replace('.', '/')}"]
    sums = [float(ds[int(a):int(a) + int(c)].astype("float64").sum()) if c else None for a, c in zip(first, count)]
    print(json.dumps({"tids": tids, "counts": [int(c) for c in count], "sums": sums, "dtype": ds.dtype.str, "filters": list(ds._filters.keys())}))
`;

describe.runIf(h5pyAvailable())("h5py reads the synthetic runs", () => {
  it("agrees with our reader on every file of a source, raw and corrected", async () => {
    const root = tempDir();
    const { rawDir, procDir } = await writeSyntheticRun({ root, proposal: 11, run: 2 });
    const cases: Array<[string, string, string, string]> = [
      [rawDir, XGM_CONTROL, "", "pulseEnergy.photonFlux.value"],
      [rawDir, CAMERA, "data", "data.image.pixels"],
      [rawDir, detectorSource(3), "image", "image.data"],
      [procDir!, correctedSource(1), "image", "image.data"],
    ];
    for (const [dir, source, group, key] of cases) {
      const run = await openRunDirectory(dir);
      try {
        const ours = run.key(source, key).ndarray();
        const entrySize = ours.data.length / Math.max(1, ours.shape[0]!);
        const oursByTrain = new Map<number, number>();
        for (let e = 0; e < ours.shape[0]!; e++) {
          let s = 0;
          for (let k = 0; k < entrySize; k++) s += Number(ours.data[e * entrySize + k]!);
          const t = ours.entryTrainIds[e]!;
          oursByTrain.set(t, (oursByTrain.get(t) ?? 0) + s);
        }
        const files = readdirSync(dir).filter((n) => run.source(source).files.some((f) => f.name === n));
        const theirsByTrain = new Map<number, number>();
        const theirCounts = new Map<number, number>();
        for (const name of files) {
          const dump = runH5py(DUMP, [join(dir, name), source, group, key]) as { tids: number[]; counts: number[]; sums: Array<number | null>; filters: string[] };
          dump.tids.forEach((t, i) => {
            theirCounts.set(t, dump.counts[i]!);
            if (dump.sums[i] !== null) theirsByTrain.set(t, dump.sums[i]!);
          });
          if (source === CAMERA || dir === procDir) expect(dump.filters).toContain("gzip");
        }
        const trainIds = run.key(source, key).trainIds;
        expect([...theirCounts.keys()].sort()).toEqual([...trainIds]);
        expect(trainIds.map((t) => theirCounts.get(t))).toEqual(Array.from(run.key(source, key).dataCounts()));
        expect(new Map([...oursByTrain].sort())).toEqual(new Map([...theirsByTrain].sort()));
      } finally {
        run.close();
      }
    }
  });
});
