/**
 * The canonical dump of a run database used by the fixtures' expected-v4.json: blobs decoded (PNG → size, .npy →
 * dtype/shape/values/sha256 of the data), volatile fields replaced, `typeof` of every run_variables column kept.
 * Written independently of src/ (it reads SQLite and the blob formats directly) so it can check our code.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";

const VOLATILE = "<volatile>";
const VOLATILE_SETTINGS = new Set(["db_id", "damnit_python", "context_python", "damnit_command"]);

function npyValue(blob: Buffer): unknown {
  const headerLength = blob.readUInt16LE(8);
  const header = blob.toString("latin1", 10, 10 + headerLength);
  const descr = /'descr': '([^']+)'/.exec(header)![1]!;
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1]!.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const data = blob.subarray(10 + headerLength);
  const copy = new Uint8Array(data).buffer;
  const flat: number[] =
    descr === "<f8" ? Array.from(new Float64Array(copy)) :
    descr === "<f4" ? Array.from(new Float32Array(copy)) :
    descr === "<i8" ? Array.from(new BigInt64Array(copy), Number) :
    descr === "<i4" ? Array.from(new Int32Array(copy)) :
    Array.from(new Uint8Array(copy));
  const nest = (values: number[], dims: number[]): unknown =>
    dims.length <= 1 ? values : Array.from({ length: dims[0]! }, (_, i) => {
      const step = values.length / dims[0]!;
      return nest(values.slice(i * step, (i + 1) * step), dims.slice(1));
    });
  return { npy: { dtype: descr, sha256: createHash("sha256").update(data).digest("hex"), shape, values: nest(flat, shape) } };
}

function blobValue(blob: Buffer): unknown {
  if (blob.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return { height: blob.readUInt32BE(20), nbytes: blob.length, png: true, width: blob.readUInt32BE(16) };
  }
  if (blob.subarray(0, 6).toString("latin1") === "\x93NUMPY") return npyValue(blob);
  return { blob_sha256: createHash("sha256").update(blob).digest("hex"), nbytes: blob.length };
}

export function canonicalDump(path: string): Record<string, unknown> {
  const db = new Database(path, { readonly: true });
  try {
    const metameta: Record<string, unknown> = {};
    for (const r of db.prepare("SELECT key, value FROM metameta").all() as { key: string; value: unknown }[]) {
      metameta[r.key] = VOLATILE_SETTINGS.has(r.key) ? VOLATILE : r.value;
    }
    const run_info: Record<string, unknown> = {};
    for (const r of db.prepare("SELECT proposal, run, start_time, typeof(start_time) AS t FROM run_info").all() as any[]) {
      run_info[`p${r.proposal}_r${r.run}`] = { added_at: VOLATILE, start_time: r.start_time, typeof_start_time: r.t };
    }
    const columns = ["version", "value", "max_diff", "provenance", "summary_type", "summary_method", "attributes"];
    const typeofs = columns.map((c) => `typeof(${c}) AS typeof_${c}`).join(", ");
    const run_variables: Record<string, unknown> = {};
    for (const r of db.prepare(`SELECT proposal, run, name, ${columns.join(", ")}, ${typeofs} FROM run_variables`).all() as any[]) {
      const entry: Record<string, unknown> = { timestamp: VOLATILE };
      for (const c of columns) {
        entry[`typeof_${c}`] = r[`typeof_${c}`];
        entry[c] = r[c];
      }
      if (Buffer.isBuffer(r.value)) entry.value = blobValue(r.value);
      if (typeof r.attributes === "string") entry.attributes = { json: JSON.parse(r.attributes) };
      run_variables[`p${r.proposal}_r${r.run}/${r.name}/v${r.version}`] = entry;
    }
    const variables: Record<string, unknown> = {};
    for (const r of db.prepare("SELECT name, type, title, description, attributes FROM variables").all() as any[]) {
      variables[r.name] = { attributes: r.attributes, description: r.description, title: r.title, type: r.type };
    }
    const hasTags = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'variable_tags'").get() !== undefined;
    const variable_tags = hasTags
      ? (db.prepare("SELECT vt.variable_name, t.name FROM variable_tags vt JOIN tags t ON t.id = vt.tag_id ORDER BY 1, 2").raw().all() as unknown[])
      : [];
    const time_comments = db.prepare("SELECT timestamp, comment FROM time_comments ORDER BY timestamp").raw().all();
    const schema: Record<string, unknown> = {};
    for (const r of db.prepare("SELECT type, name, tbl_name FROM sqlite_master").all() as any[]) {
      const entry: Record<string, unknown> = { table: r.tbl_name, type: r.type };
      if (r.type === "table" || r.type === "view") {
        const cols = (db.prepare(`SELECT name FROM pragma_table_info(?)`).all(r.name) as { name: string }[]).map((c) => c.name);
        entry.columns = r.type === "view" ? cols.sort() : cols;
      }
      schema[r.name] = entry;
    }
    return { metameta, run_info, run_variables, schema, time_comments, variable_tags, variables };
  } finally {
    db.close();
  }
}
