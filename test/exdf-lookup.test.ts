/**
 * Resolving a key looks its path up directly: no listing of the source's datasets (which on real runs means ~440
 * get_names/get_type calls per key), with the same answers as the listing gives, and names that are no key refused.
 */
import { describe, expect, it } from "vitest";
import { isDamnitError } from "../src/core/errors.js";
import { openRunDirectory } from "../src/exdf/index.js";
import { loadH5 } from "../src/h5/file.js";
import { CAMERA, XGM_CONTROL, detectorSource } from "../src/synth/layout.js";
import { writeSyntheticRun } from "../src/synth/write-run.js";
import { tempDir } from "./helpers/tmp.js";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isDamnitError(err) ? err.code : `not a DamnitError: ${String(err)}`;
  }
  return undefined;
}

describe("key lookup", () => {
  it("resolves control and instrument keys without listing the source, as the listing would", async () => {
    const { rawDir } = await writeSyntheticRun({ root: tempDir(), proposal: 12, run: 3, size: "small", proc: false });
    const lib = await loadH5();
    const module = lib.module as unknown as { get_names: (...args: unknown[]) => string[] };
    const original = module.get_names;
    let listings = 0;
    module.get_names = function (...args: unknown[]) {
      listings++;
      return original.apply(this, args);
    };
    const run = await openRunDirectory(rawDir);
    try {
      listings = 0;
      const flux = run.key(XGM_CONTROL, "pulseEnergy.photonFlux");
      const fluxValue = run.key(XGM_CONTROL, "pulseEnergy.photonFlux.value");
      const pixels = run.key(CAMERA, "data.image.pixels");
      const frames = run.key(detectorSource(0), "image.data");
      expect(run.source(XGM_CONTROL).hasKey("pulseEnergy.photonFlux.timestamp")).toBe(true);
      expect(listings).toBe(0);
      expect(flux.key).toBe("pulseEnergy.photonFlux.value");
      expect(fluxValue.key).toBe("pulseEnergy.photonFlux.value");
      expect([pixels.group, frames.group]).toEqual(["data", "image"]);
      expect(flux.values()).toEqual(fluxValue.values());
      // Every listed key resolves to itself, and the lookup accepts nothing the listing lacks.
      for (const source of [XGM_CONTROL, CAMERA, detectorSource(0)]) {
        const sd = run.source(source);
        for (const key of sd.keys()) expect(sd.key(key).key).toBe(key);
      }
      for (const bad of ["pulseEnergy/photonFlux", "pulseEnergy..photonFlux", "pulseEnergy", "pulseEnergy.photonFlux.value.below", ".value", ""]) {
        expect({ bad, code: codeOf(() => run.key(XGM_CONTROL, bad)) }).toEqual({ bad, code: "UNKNOWN_KEY" });
      }
    } finally {
      module.get_names = original;
      run.close();
    }
  });
});
