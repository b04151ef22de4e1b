/**
 * H5Writer's building blocks for big and nested files (as the synthetic run writer uses them): groups created along a
 * path, chunked datasets filled in row blocks, soft links, and the HDF5 1.8 file format (which cannot hold enums).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Dataset } from "h5wasm/node";
import { describe, expect, it } from "vitest";
import { loadH5 } from "../src/h5/file.js";
import { BOOL_ENUM, H5Writer } from "../src/h5/writer.js";
import { tempDir } from "./helpers/tmp.js";

/** H5S_UNLIMITED as h5wasm reports a maximum dimension. */
const UNLIMITED = Number(2n ** 64n - 1n);

/** The superblock version: byte 8 of an HDF5 file without a user block. */
const superblockVersion = (path: string): number => readFileSync(path)[8]!;

describe("H5Writer", () => {
  it("creates missing groups along a path once, fills a chunked dataset in row blocks and links to it", async () => {
    const lib = await loadH5();
    const path = join(tempDir(), "blocks.h5");
    const w = new H5Writer(lib, path);
    w.requireGroup("/a/b/c");
    w.requireGroup("a/b"); // already made: no error
    w.requireParent("a/b/d/data");
    const u16 = { class: "int", size: 2, signed: false } as const;
    w.createEmptyDataset("a/b/d/data", u16, [10, 2, 3], { chunks: [1, 2, 3], deflate: 1 });
    w.writeRows("a/b/d/data", 0, [3, 2, 3], Uint16Array.from({ length: 18 }, (_, i) => i + 1));
    w.writeRows("a/b/d/data", 5, [2, 2, 3], Uint16Array.from({ length: 12 }, (_, i) => 100 + i));
    w.createEmptyDataset("a/empty", u16, [0, 4], { chunks: [1, 4] });
    w.requireGroup("links");
    w.createSoftLink("links/data", "/a/b/d/data");
    w.close();

    expect(superblockVersion(path)).toBe(0);
    const f = new lib.h5.File(path, "r");
    try {
      expect(f.get("a/b/c")).toBeInstanceOf(lib.h5.Group);
      const ds = f.get("a/b/d/data") as Dataset;
      expect(ds.metadata.shape).toEqual([10, 2, 3]);
      expect(ds.metadata.maxshape).toEqual([UNLIMITED, 2, 3]);
      expect(ds.metadata.chunks).toEqual([1, 2, 3]);
      expect(ds.filters.map((filter) => filter.id)).toEqual([1]);
      const values = [...(ds.value as Uint16Array)];
      expect(values.slice(0, 18)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
      expect(values.slice(18, 30)).toEqual(new Array(12).fill(0)); // rows 3 and 4 never written
      expect(values.slice(30, 42)).toEqual(Array.from({ length: 12 }, (_, i) => 100 + i));
      expect(values.slice(42)).toEqual(new Array(18).fill(0));
      expect((f.get("a/empty") as Dataset).metadata.shape).toEqual([0, 4]);
      expect(lib.module.get_symbolic_link(f.file_id, "/links/data")).toBe("/a/b/d/data");
      expect([...((f.get("links/data") as Dataset).value as Uint16Array)]).toEqual(values);
    } finally {
      f.close();
    }
  });

  it("writes HDF5 1.8's format when asked, and refuses enums there", async () => {
    const lib = await loadH5();
    const dir = tempDir();
    const path = join(dir, "v108.h5");
    const w = new H5Writer(lib, path, { lowBound: "v108" });
    w.writeStringAttribute("/", "note", "compact");
    expect(() => w.writeDataset("flag", BOOL_ENUM, [1], Uint8Array.of(1))).toThrow(/enums can only be written in the earliest file format/);
    w.close();
    expect(superblockVersion(path)).toBe(2);
    const f = new lib.h5.File(path, "r");
    try {
      expect(f.get_attribute("note", true)).toBe("compact");
      expect(f.get("flag")).toBeNull();
    } finally {
      f.close();
    }
  });
});
