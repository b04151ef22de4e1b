/**
 * The eleven calibration-constant types PSCalib knows (spec §D.2) and the element type each is kept in. Numeric data
 * of another element type is cast to it on add, as PSCalib's reader casts on load; geometry is text.
 */
import type { DType } from "../core/ndarray.js";

export const CTYPE_ELEMENT_TYPES = {
  pedestals: "float32",
  pixel_status: "uint16",
  pixel_rms: "float32",
  pixel_gain: "float32",
  pixel_mask: "uint8",
  pixel_bkgd: "float32",
  common_mode: "float64",
  geometry: "text",
  pixel_offset: "float32",
  status_data: "uint16",
  status_extra: "uint64",
} as const satisfies Record<string, DType | "text">;

export type Ctype = keyof typeof CTYPE_ELEMENT_TYPES;

export function isCtype(name: string): name is Ctype {
  return Object.prototype.hasOwnProperty.call(CTYPE_ELEMENT_TYPES, name);
}
