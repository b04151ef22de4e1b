/** The context-code side of the calibration store: add from a dark run, use and record in later runs, pin on reprocessing. */
import { describe, expect, it } from "vitest";
import { ndarray, type NdArray } from "../src/core/ndarray.js";
import { calibRoots } from "../src/calibration/lookup.js";
import { CalibrationContext, pinKey, type CalibLookupRecord } from "../src/calibration/context.js";
import { CalibStore } from "../src/calibration/store.js";
import { tempDir } from "./helpers/tmp.js";
import { join } from "node:path";

const DET = "jungfrau-0042";

describe("calibration from context code", () => {
  it("a dark run adds pedestals, later runs use and record them, a newer version changes new runs only, pins replay the old one", () => {
    const dbDir = tempDir("calib-ctx-");
    const roots = calibRoots({ dbDir });
    const dark = new CalibrationContext({ roots, run: 10, variable: "pedestals", runStart: 1000 });
    expect(dark.add({ detector: DET, ctype: "pedestals", value: ndarray("float64", [2], [10, 20]) })).toEqual({ detname: DET, range: "1000-end", version: 1 });

    const later = new CalibrationContext({ roots, run: 11, variable: "corrected", runStart: 1100 });
    const hit = later.get({ detector: DET, ctype: "pedestals" });
    expect([hit.level, hit.range, hit.version, Array.from((hit.data as NdArray).data as Float32Array)]).toEqual(["local", "1000-end", 1, [10, 20]]);
    expect(later.lookups).toEqual([{ run: 11, variable: "corrected", detector: DET, detname: DET, ctype: "pedestals", range: "1000-end", version: 1, level: "local" }]);

    // A corrected dark in the same second: version 2 of the same range; newly processed runs get it.
    dark.add({ detector: DET, ctype: "pedestals", value: ndarray("float64", [2], [11, 21]) });
    const fresh = new CalibrationContext({ roots, run: 11, variable: "corrected", runStart: 1100 });
    expect(fresh.get({ detector: DET, ctype: "pedestals" }).version).toBe(2);

    const pins = new Map<string, CalibLookupRecord>([[pinKey(DET, "pedestals"), later.lookups[0]!]]);
    const pinned = new CalibrationContext({ roots, run: 11, variable: "corrected", runStart: 1100, pins });
    expect(Array.from((pinned.get({ detector: DET, ctype: "pedestals" }).data as NdArray).data as Float32Array)).toEqual([10, 20]);

    const s = CalibStore.open(join(dbDir, "calib"));
    s.deleteVersion(DET, "pedestals", "1000-end", 1);
    s.close();
    expect(() => pinned.get({ detector: DET, ctype: "pedestals" })).toThrow(/range 1000-end version 1/);
    expect(() => new CalibrationContext({ roots, run: 12, variable: "x", runStart: null }).get({ detector: DET, ctype: "pedestals" })).toThrow(
      expect.objectContaining({ code: "CALIB_BAD_TIME" }),
    );
  });

  it("add takes typed arrays and arrays of numbers (cast to the ctype's type); anything else is a CALIB_BAD_DATA error", () => {
    const roots = calibRoots({ dbDir: tempDir("calib-ctx-") });
    const ctx = new CalibrationContext({ roots, run: 3, variable: "dark", runStart: 500 });
    expect(ctx.add({ detector: DET, ctype: "pixel_mask", value: Uint16Array.of(1, 0, 1) }).version).toBe(1);
    expect(ctx.add({ detector: DET, ctype: "pedestals", value: [1.5, 2.5] }).version).toBe(1);
    const mask = ctx.get({ detector: DET, ctype: "pixel_mask" });
    expect([mask.dtype, Array.from((mask.data as NdArray).data as Uint8Array)]).toEqual(["uint8", [1, 0, 1]]);
    expect(() => ctx.add({ detector: DET, ctype: "pedestals", value: { foo: 1 } as never })).toThrow(expect.objectContaining({ code: "CALIB_BAD_DATA", message: expect.stringContaining("not Object") }));
    expect(() => ctx.add({ detector: DET, ctype: "pedestals", value: ["a"] as never })).toThrow(expect.objectContaining({ code: "CALIB_BAD_DATA" }));
  });

  it("a database in the official place searches its store once, as the local level", () => {
    const proposal = tempDir("calib-prop-");
    const dbDir = join(proposal, "usr", "Shared", "amore");
    expect(calibRoots({ dbDir, proposalDir: proposal, repository: "/facility/calib" })).toEqual([
      { level: "local", root: join(dbDir, "calib") },
      { level: "repository", root: "/facility/calib" },
    ]);
    expect(calibRoots({ dbDir: join(proposal, "elsewhere"), proposalDir: proposal }).map((r) => r.level)).toEqual(["local", "proposal"]);
  });
});
