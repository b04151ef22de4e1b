/** Constants from a file: `.npy`, a text array (PSCalib's .data files, `dcs add -f`), or text for geometry. */
import { readFileSync } from "node:fs";
import { DamnitError } from "../core/errors.js";
import { ndarray } from "../core/ndarray.js";
import { decodeNpy, isNpy } from "../db/npy.js";
import { CTYPE_ELEMENT_TYPES, isCtype } from "./ctypes.js";
import type { CalibValue } from "./data.js";

/** `.npy`, a text array (one row per line, numbers separated by spaces or commas), or text for geometry. */
export function readValueFile(file: string, ctype: string): CalibValue {
  const bytes = readFileSync(file);
  if (isNpy(bytes)) return decodeNpy(bytes);
  const text = bytes.toString("utf8");
  if (isCtype(ctype) && CTYPE_ELEMENT_TYPES[ctype] === "text") return text;
  const rows = text.split(/\r?\n/).map((l) => l.replace(/#.*/, "").trim()).filter((l) => l !== "");
  const values = rows.map((l) => l.split(/[\s,]+/).map(Number));
  const cols = values[0]?.length ?? 0;
  if (rows.length === 0 || values.some((r) => r.length !== cols || r.some((v) => !Number.isFinite(v)))) {
    throw new DamnitError("CALIB_BAD_DATA", `${file} is neither .npy nor a text array of equal-length rows of numbers`);
  }
  return ndarray("float64", rows.length === 1 ? [cols] : [rows.length, cols], values.flat());
}

