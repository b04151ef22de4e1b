/**
 * Python context files (context.py): evaluated by python/damnit_runner.py in the database's `context_python`
 * interpreter, a child of the context runner. Its variables come back as definitions that the TS checks
 * (validate.ts: names, deps, cycles, topological order) and selection/execution code treat like any other; each
 * variable's function asks the Python process to compute it, and the result crosses as JSON plus .npy bytes.
 * Mid-call, the Python variable may ask back (calibration.get/add: a reply marked `callback`), answered here with
 * the calibration provider installed for that variable before its result is awaited again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { arrayFromBytes, DTYPES, type DType, type NdArray } from "../core/ndarray.js";
import { decodeNpy } from "../db/npy.js";
import { PYTHON_STOPPED_MARK } from "../extract/runner-protocol.js";
import { Cell, labelled, Skip } from "./api.js";
import { calibration, CalibrationError } from "./calibration.js";
import { buildContext, type Candidate, type DefinitionLike } from "./validate.js";
import type { ContextProblem, LoadedContext } from "./variables.js";

/** The real process.exit (the runner replaces process.exit for context code once it has loaded this module). */
const exitRunner = process.exit.bind(process);

/** This package's python/ folder (damnit_ctx and the runner script), first on the interpreter's PYTHONPATH. */
export const PYTHON_DIR = fileURLToPath(new URL("../../../python/", import.meta.url));

interface Reply {
  readonly header: Record<string, unknown>;
  readonly blobs: Buffer[];
}

/**
 * The interpreter for context.py: what the job gave the runner (the database's `context_python` setting, read from
 * its settings table by the job: runner-process.ts passes it as DAMNIT_CONTEXT_PYTHON), else `python3` on PATH.
 */
export function contextPython(): string {
  return process.env.DAMNIT_CONTEXT_PYTHON || "python3";
}

/** One Python process serving one context file. */
class PythonProcess {
  private buffer = Buffer.alloc(0);
  private waiting: Array<(reply: Reply | Error) => void> = [];
  exited?: string;
  private readonly child: ChildProcess;
  private readonly input: Writable;

  constructor(readonly python: string, dir: string) {
    const env = { ...process.env, PYTHONPATH: [PYTHON_DIR, process.env.PYTHONPATH].filter(Boolean).join(":"), DAMNIT_PARENT_PID: String(process.pid) };
    this.child = spawn(python, ["-u", join(PYTHON_DIR, "damnit_runner.py")], { cwd: dir, env, stdio: ["ignore", "inherit", "inherit", "pipe", "pipe"] });
    this.input = this.child.stdio[3] as Writable;
    const output = this.child.stdio[4] as Readable;
    this.input.on("error", () => {});
    output.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.drain();
    });
    this.child.on("error", (err: NodeJS.ErrnoException) => {
      this.fail(err.code === "ENOENT" ? `the Python interpreter '${python}' (context_python) was not found` : `cannot start '${python}': ${err.message}`);
    });
    this.child.on("exit", (code, signal) => {
      this.fail(
        signal === "SIGKILL"
          ? "the Python process was killed (SIGKILL: out of memory, or killed from outside)"
          : signal
            ? `the Python process crashed (${signal})`
            : `the Python process exited (code ${code})`,
      );
    });
  }

  private fail(reason: string): void {
    this.exited ??= reason;
    for (const w of this.waiting.splice(0)) w(new Error(reason));
  }

  private drain(): void {
    for (;;) {
      if (this.buffer.length < 4) return;
      const size = this.buffer.readUInt32BE(0);
      if (this.buffer.length < 4 + size) return;
      const header = JSON.parse(this.buffer.subarray(4, 4 + size).toString("utf8")) as Record<string, unknown>;
      const sizes = (header.blobs as number[] | undefined) ?? [];
      const total = 4 + size + sizes.reduce((a, b) => a + b, 0);
      if (this.buffer.length < total) return;
      const blobs: Buffer[] = [];
      let at = 4 + size;
      for (const n of sizes) {
        blobs.push(Buffer.from(this.buffer.subarray(at, at + n)));
        at += n;
      }
      this.buffer = this.buffer.subarray(total);
      this.waiting.shift()?.({ header, blobs });
    }
  }

  /** The next reply (the first one is the greeting). */
  next(): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise((resolve, reject) => this.waiting.push((r) => (r instanceof Error ? reject(r) : resolve(r))));
  }

  request(message: Record<string, unknown>): Promise<Reply> {
    const reply = this.next();
    const body = Buffer.from(JSON.stringify(message), "utf8");
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    this.input.write(Buffer.concat([head, body]));
    return reply;
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }
}

let current: { proc: PythonProcess; greeting: Promise<Reply> } | undefined;

function processFor(dir: string): { proc: PythonProcess; greeting: Promise<Reply> } {
  const python = contextPython();
  if (current && current.proc.python === python && current.proc.exited === undefined) return current;
  current?.proc.kill();
  const proc = new PythonProcess(python, dir);
  const greeting = proc.next();
  greeting.catch(() => {});
  current = { proc, greeting };
  return current;
}

/** Whether the Python process of the last loaded context.py still runs (after a crash, load the context again). */
export function pythonContextAlive(): boolean {
  return current !== undefined && current.proc.exited === undefined;
}

/**
/**
 * The run the Python variables open (`extra_data.open_run(proposal_path, run, data=…)`) and whose mymdc# fields they
 * get, set before each job, with the job's lookup recorder variables (DAMNIT_LOOKUP_*: the Python process outlives
 * one job's recorder).
 */
export async function openPythonRun(
  proposalPath: string,
  run: number,
  data: string,
  proposal?: number,
  lookupEnv: Readonly<Record<string, string>> = {},
): Promise<void> {
  if (!current) return;
  await current.proc.request({ op: "open", proposal_path: proposalPath, run, data, proposal, lookup_env: lookupEnv });
}

/** Load context.py in the Python process and check its variables as the TS loader does. */
export async function loadPythonContext(file: string): Promise<{ context?: LoadedContext; problems: ContextProblem[] }> {
  const source = readFileSync(file, "utf8");
  const { proc, greeting } = processFor(dirname(file));
  let hello: Reply;
  try {
    hello = await greeting;
  } catch (err) {
    current = undefined;
    return { problems: [{ file, message: (err as Error).message }] };
  }
  const missing = (hello.header.missing as string[] | undefined) ?? [];
  if (missing.includes("numpy")) {
    return { problems: [{ file, message: `the Python interpreter '${proc.python}' has no module 'numpy' (install the Debian package python3-numpy)` }] };
  }
  const described = await proc.request({ op: "describe", file });
  const problems = described.header.problems as ContextProblem[] | undefined;
  if (problems) return { problems };
  const variables = described.header.variables as Array<{ name: string; options: Record<string, unknown>; line: number | null }>;
  const holder: { context?: LoadedContext } = {};
  const candidates: Candidate[] = variables.map((v) => {
    const definition: DefinitionLike & { __damnitVariable: true } = {
      __damnitVariable: true,
      options: v.options,
      site: { file, line: v.line ?? undefined },
      fn: (_run: unknown, deps: Record<string, unknown>) => callVariable(proc, holder.context!, v.name, deps, missing),
    };
    return { exportNames: [v.name], definition };
  });
  const built = buildContext(file, candidates, source);
  built.problems.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  holder.context = built.context;
  return built;
}

async function callVariable(proc: PythonProcess, context: LoadedContext, name: string, deps: Record<string, unknown>, missing: readonly string[]): Promise<unknown> {
  if (missing.includes("extra_data")) {
    throw new DataError(`the Python interpreter '${proc.python}' has no module 'extra_data' (install the Debian package python3-extra-data, or pip install extra_data)`);
  }
  const variable = context.variables.get(name)!;
  const args: Record<string, unknown> = {};
  for (const [arg, ref] of variable.args) {
    if (!(arg in deps)) continue;
    if (ref.kind === "cal") args[arg] = { cal: calibrationForPython(deps[arg]) };
    else if (ref.kind === "var" && !ref.glob && variable.dependencies.includes(ref.pattern) && deps[arg] !== ref.default) args[arg] = { var: ref.pattern };
    else if (ref.kind === "var" && ref.glob && typeof deps[arg] === "object" && deps[arg] !== null && deps[arg] !== ref.default) {
      args[arg] = { vars: Object.keys(deps[arg]) };
    } else if (ref.kind === "var" || (ref.kind === "param" && ref.hasDefault && deps[arg] === ref.default)) {
      args[arg] = { default: true }; // missing: Python uses the parameter's own default (any Python object)
    } else args[arg] = { value: deps[arg] };
  }
  let reply: Reply;
  try {
    reply = await proc.request({ op: "call", name, args, transient: variable.transient });
    // The variable's calls of calibration.get/add, answered while it waits (the provider installed for it)
    while (reply.header.callback === true) reply = await proc.request(answerCallback(reply));
  } catch (err) {
    return pythonDied(name, (err as Error).message);
  }
  const h = reply.header;
  if (h.ok !== true) {
    const error = h.cls === "Skip" ? new Skip(String(h.message)) : new PythonError(String(h.cls), String(h.message));
    error.stack = String(h.traceback ?? `${String(h.cls)}: ${String(h.message)}`);
    throw error;
  }
  return decode(h.result as Encoded, reply.blobs);
}

/**
 * The Python process died while computing `name` (a native crash, a kill, os._exit): this runner ends too, as a
 * crashed TS runner would, so that the job records the crash as this variable's error and goes on with the other
 * variables in a fresh runner (with a fresh Python process) — the values of the others are not lost.
 */
function pythonDied(name: string, reason: string): Promise<never> {
  current = undefined;
  process.stderr.write(`\n${PYTHON_STOPPED_MARK} RunnerCrash: ${reason} while computing ${name}\n`, () => exitRunner(70));
  return new Promise<never>(() => {});
}

/**
 * A Python variable's `calibration.get(...)` or `calibration.add(...)` (python/damnit_ctx/calibration.py), answered
 * by `calibration` of damnit/context, i.e. by the CalibrationContext the runner installed for this variable: the same
 * levels, default time, pins and per-variable usage record as for a TypeScript variable. Failures go back as the
 * error's class name and message (CalibrationNotFoundError, CalibrationError), which Python raises.
 */
function answerCallback(reply: Reply): Record<string, unknown> {
  const h = reply.header;
  try {
    if (h.op !== "calibration") throw new CalibrationError(`unknown request from the Python runner: ${String(h.op)}`);
    const detector = String(h.detector);
    const ctype = String(h.ctype);
    const at = typeof h.at === "number" ? { at: h.at } : {};
    if (h.action === "get") {
      const version = typeof h.version === "number" ? { version: h.version } : {};
      return { ok: true, constants: calibrationForPython(calibration.get({ detector, ctype, ...at, ...version })) };
    }
    if (h.action === "add") {
      const message = typeof h.message === "string" ? { message: h.message } : {};
      const added = calibration.add({ detector, ctype, value: valueFromPython(h, reply.blobs), ...at, ...message });
      return { ok: true, ...added };
    }
    throw new CalibrationError(`unknown calibration request from the Python runner: ${String(h.action)}`);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return { ok: false, cls: e.name, message: e.message };
  }
}

/** The constants a Python variable adds: its text, or its array's raw little-endian bytes with dtype and shape. */
function valueFromPython(h: Record<string, unknown>, blobs: readonly Buffer[]): NdArray | string {
  if (typeof h.text === "string") return h.text;
  const dtype = String(h.dtype);
  if (!Object.hasOwn(DTYPES, dtype)) throw new CalibrationError(`calibration constants cannot be of dtype ${dtype} (known: ${Object.keys(DTYPES).join(", ")})`);
  const shape = h.shape as number[];
  try {
    return arrayFromBytes(dtype as DType, shape, blobs[0] ?? Buffer.alloc(0), { bigEndian: false, fortran: false });
  } catch (err) {
    throw new CalibrationError(`calibration constants from Python: ${(err as Error).message}`);
  }
}

const KEPT_IN_PYTHON = Object.freeze({ keptInPython: true });

/**
 * A `cal#` dependency's constants for the Python runner (JSON): the array's raw little-endian bytes in base64
 * with its dtype and shape (exact, NaN included), or the text; null for a dependency's default of null.
 */
function calibrationForPython(value: unknown): unknown {
  if (value === null || typeof value !== "object" || !("data" in value)) return { value: value ?? null };
  const c = value as { data: unknown; dtype: string; shape: readonly number[]; detname: string; ctype: string; range: string; version: number; tsprod: number; level: string };
  const meta = { dtype: c.dtype, shape: c.shape, detname: c.detname, ctype: c.ctype, range: c.range, version: c.version, tsprod: c.tsprod, level: c.level };
  if (typeof c.data === "string") return { ...meta, text: c.data };
  const data = (c.data as { data: ArrayBufferView }).data;
  return { ...meta, b64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") };
}

type Encoded = { t: string; [key: string]: unknown };

function decode(e: Encoded | undefined, blobs: Buffer[]): unknown {
  if (!e || e.t === "none") return null;
  if (e.t === "str" || e.t === "bool") return e.v;
  if (e.t === "num") return Number(e.v === "nan" ? NaN : e.v === "inf" ? Infinity : e.v === "-inf" ? -Infinity : e.v);
  if (e.t === "npy") return decodeNpy(blobs[e.blob as number]!);
  if (e.t === "labelled") {
    const coords: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e.coords as Record<string, Encoded>)) coords[k] = decode(v, blobs);
    return labelled(decode(e.data as Encoded, blobs), { dims: e.dims as string[], coords, name: (e.name as string | null) ?? undefined, attrs: e.attrs as Record<string, string | number> });
  }
  // a transient variable's result, kept in the Python process for its dependents (it may be any Python object)
  if (e.t === "kept") return KEPT_IN_PYTHON;
  if (e.t === "image") {
    const thumbnail = e.thumbnail ? decode(e.thumbnail as Encoded, blobs) : undefined;
    return { kind: "image", data: decode(e.data as Encoded, blobs), ...(thumbnail ? { thumbnail } : {}) };
  }
  if (e.t === "dataset") {
    return { kind: "dataset", variables: (e.variables as Encoded[]).map((v) => decode(v, blobs)), attrs: e.attrs };
  }
  if (e.t === "cell") {
    const opt = <T>(v: unknown): T | undefined => (v === null || v === undefined ? undefined : (v as T));
    return new Cell(decode(e.data as Encoded, blobs), {
      summary: opt<string>(e.summary),
      summaryValue: opt(decode(e.summary_value as Encoded, blobs)),
      preview: opt(decode(e.preview as Encoded, blobs)),
      bold: opt<boolean>(e.bold),
      background: opt(e.background),
      units: opt<string>(e.units),
    });
  }
  throw new TypeError(`unknown value from the Python runner: ${e.t}`);
}

/** An exception raised by Python code, under its Python class name. */
class PythonError extends Error {
  constructor(cls: string, message: string) {
    super(message);
    this.name = cls;
  }
}

class DataError extends Error {
  override readonly name = "ModuleNotFoundError";
}
