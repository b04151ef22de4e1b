/**
 * Printing one key's values, aligned to train IDs, for `damnit data get`. Numeric keys are streamed slice by slice,
 * so a detector key larger than memory still prints.
 */
import type { Writable } from "node:stream";
import type { TypedArray } from "../core/ndarray.js";
import type { KeyData } from "../exdf/index.js";

const isSafe = (v: bigint) => v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER);

/** Numbers as JSON: NaN and infinities become null, 64-bit integers beyond 2^53 become strings (exact digits). */
const jsonNumber = (v: number | bigint): string => {
  if (typeof v === "bigint") return isSafe(v) ? String(v) : `"${v}"`;
  return Number.isFinite(v) ? String(v) : "null";
};

/** JSON.stringify for records and strings, with the same rules for numbers inside them. */
const jsonValue = (v: unknown): string =>
  JSON.stringify(v, (_, x) => (typeof x === "bigint" ? (isSafe(x) ? Number(x) : String(x)) : typeof x === "number" && !Number.isFinite(x) ? null : x));

/** One entry (flat data from `offset`, `shape` of the entry) as nested JSON arrays. */
function entryJson(data: TypedArray, offset: number, shape: readonly number[]): string {
  if (shape.length === 0) return jsonNumber(data[offset]!);
  const inner = shape.slice(1).reduce((a, b) => a * b, 1);
  const parts: string[] = [];
  for (let i = 0; i < shape[0]!; i++) parts.push(entryJson(data, offset + i * inner, shape.slice(1)));
  return `[${parts.join(",")}]`;
}

function compact(v: number | bigint): string {
  if (typeof v === "bigint" || Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(7)));
}

/** Small entries in full; larger ones as shape and statistics. */
function entryText(data: TypedArray, offset: number, shape: readonly number[]): string {
  const size = shape.reduce((a, b) => a * b, 1);
  if (shape.length === 0) return compact(data[offset]!);
  if (size <= 8 && shape.length === 1) return `[${Array.from(data.subarray(offset, offset + size) as ArrayLike<number | bigint>, compact).join(", ")}]`;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let nan = 0;
  for (let i = offset; i < offset + size; i++) {
    const v = Number(data[i]!);
    if (Number.isNaN(v)) {
      nan++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const mean = size - nan > 0 ? sum / (size - nan) : Number.NaN;
  return `(${shape.join("×")}) min ${compact(min)}  mean ${compact(mean)}  max ${compact(max)}${nan ? `  ${nan} NaN` : ""}`;
}

export interface PrintOptions {
  /** The run's selected trains: every one gets a line (or a JSON slot), with or without data. */
  trainIds: readonly number[];
  json: boolean;
  /** Files of the run that could not be read (listed in the JSON output). */
  problems?: readonly string[];
}

export function printKeyValues(key: KeyData, out: Writable, opts: PrintOptions): void {
  const counts = key.dataCounts();
  const countOf = new Map<number, number>();
  key.trainIds.forEach((t, i) => countOf.set(t, counts[i]!));
  const perTrainCounts = opts.trainIds.map((t) => countOf.get(t) ?? 0);
  const withData = perTrainCounts.filter((c) => c > 0).length;
  const units = key.units();
  const entryShape = key.entryShape;
  const numeric = key.type !== "string" && key.type !== "compound";

  if (opts.json) {
    out.write(`{"source":${JSON.stringify(key.source)},"key":${JSON.stringify(key.key)},"dtype":${JSON.stringify(key.type)},`);
    out.write(`"entryShape":${JSON.stringify(entryShape)},"units":${JSON.stringify(units ?? null)},"problems":${JSON.stringify(opts.problems ?? [])},`);
    out.write(`"trainIds":${JSON.stringify(opts.trainIds)},"counts":${JSON.stringify(perTrainCounts)},`);
    out.write(`"entryTrainIds":${JSON.stringify(Array.from(key.entryTrainIds()))},"values":[`);
    let first = true;
    const emit = (text: string) => {
      out.write(first ? text : `,${text}`);
      first = false;
    };
    if (numeric) {
      const entrySize = entryShape.reduce((a, b) => a * b, 1);
      for (const slice of key.slices({ borrow: true })) {
        for (let e = 0; e < slice.shape[0]!; e++) emit(entryJson(slice.data, e * entrySize, entryShape));
      }
    } else {
      for (const v of key.values()) emit(jsonValue(v));
    }
    out.write("]}\n");
    return;
  }

  const shapeText = entryShape.length ? ` (${entryShape.join(", ")}${entryShape.length === 1 ? "," : ""})` : "";
  out.write(
    `${key.source} ${key.key}: ${key.type}${shapeText}${units ? ` [${units}]` : ""}, ${key.entryCount} entries in ${withData} of ${opts.trainIds.length} trains\n`,
  );
  const lines = new Map<number, string[]>();
  const add = (tid: number, text: string) => lines.set(tid, [...(lines.get(tid) ?? []), text]);
  if (numeric) {
    const entrySize = entryShape.reduce((a, b) => a * b, 1);
    for (const slice of key.slices({ borrow: true })) {
      for (let e = 0; e < slice.shape[0]!; e++) add(slice.entryTrainIds[e]!, entryText(slice.data, e * entrySize, entryShape));
    }
  } else {
    const tids = key.entryTrainIds();
    key.values().forEach((v, e) => add(tids[e]!, typeof v === "string" ? v : jsonValue(v)));
  }
  const multi = perTrainCounts.some((c) => c > 1);
  for (const tid of opts.trainIds) {
    const values = lines.get(tid);
    if (!values) out.write(`${tid}  —\n`);
    else if (!multi) out.write(`${tid}  ${values[0]}\n`);
    else values.forEach((v, i) => out.write(`${tid}  #${i}  ${v}\n`));
  }
}
