/**
 * Executing a context's variables for one run (DAMNIT's semantics, spec §3.5): dependency order, each variable
 * isolated, dependents of a failure skipped with DAMNIT's dependency-error tree, transient results used but not
 * saved, `null` results writing nothing.
 */
import { globRegExp, START_TIME } from "../context/validate.js";
import type { ContextVariable, LoadedContext } from "../context/variables.js";
import { ndarray } from "../core/ndarray.js";
import { cellParts, dependencyValue } from "./normalise.js";
import type { VariableError, VariableOutput } from "../core/variable-output.js";
import { checkStorable } from "./store.js";
import { summarise } from "../summary/summarise.js";
import { calibration, CalibrationNotFoundError } from "../context/calibration.js";

export interface RunMeta {
  readonly run_number: number;
  readonly proposal: number;
  readonly proposal_path: string;
}

export interface ExecutionInput {
  readonly context: LoadedContext;
  /** the variables to compute, already including their dependencies */
  readonly selected: ReadonlySet<string>;
  /** the run's data, passed as the first argument */
  readonly data: unknown;
  readonly meta: RunMeta;
  /** run start, epoch seconds */
  readonly startTime: number;
  readonly params?: Readonly<Record<string, unknown>>;
  /** variables stopped in an earlier attempt at this run (time-out, crash): recorded as failed, not run again */
  readonly prefailed?: ReadonlyMap<string, VariableError>;
  /** largest result a variable may return, in bytes */
  readonly resultLimitBytes: number;
}

export interface ExecutionEvents {
  /** a variable is about to run (the caller's time limit starts); awaited before the variable runs */
  start(name: string): void | Promise<void>;
  /** something to store for one variable (also for failures and skips) */
  output(output: VariableOutput): void;
  log(level: "info" | "warn" | "error", message: string): void;
}

/** Why a variable has no value: its error, and for skips the errors of its dependencies (the tree). */
interface Failure {
  readonly error: VariableError;
  /** dependencies that failed or were skipped, for nested tree lines */
  readonly causes: ReadonlyArray<readonly [string, Failure]>;
}

export async function executeRun(input: ExecutionInput, events: ExecutionEvents): Promise<void> {
  const values = new Map<string, unknown>(); // name → value available to dependents (non-null only)
  const failures = new Map<string, Failure>();
  const { context } = input;

  // start_time comes first, like a variable.
  values.set(START_TIME, input.startTime);
  events.output(startTimeOutput(input.startTime));

  for (const name of context.order) {
    if (!input.selected.has(name)) continue;
    const variable = context.variables.get(name)!;
    const previous = input.prefailed?.get(name);
    if (previous) {
      failures.set(name, { error: previous, causes: [] });
      continue;
    }

    const args = resolveArguments(variable, input, values, failures, events);
    if (args.skip) {
      failures.set(name, args.skip);
      if (args.skip.error.cls !== "") emitError(variable, args.skip.error, events);
      continue;
    }

    await events.start(name);
    const started = performance.now();
    let result: unknown;
    try {
      calibrationArguments(variable, args.values);
      result = await variable.fn(input.data, args.values);
    } catch (err) {
      const error = errorInfo(err);
      failures.set(name, { error, causes: [] });
      if (error.cls === "Skip") events.log("info", `Skipped ${name}: ${error.message}`);
      else events.log("error", `Could not get data for ${name}\n${stackOf(err)}`);
      emitError(variable, error, events);
      continue;
    }
    const value = dependencyValue(result);
    if (value !== null && value !== undefined) values.set(name, value);

    if (!variable.transient && result !== null && result !== undefined) {
      let output: VariableOutput | undefined;
      try {
        output = makeOutput(variable, result, input.resultLimitBytes, events);
      } catch (err) {
        const error = errorInfo(err);
        values.delete(name);
        failures.set(name, { error, causes: [] });
        events.log("error", `Could not store ${name}: ${error.cls}: ${error.message}`);
        emitError(variable, error, events);
        continue;
      }
      if (output) events.output(output);
    }
    events.log("info", `Computed ${name} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
  }
}

/** `cal#<detector>/<ctype>` dependencies: the constants at the run's start; with a default, the default when none apply. */
function calibrationArguments(variable: ContextVariable, args: Record<string, unknown>): void {
  for (const [arg, ref] of variable.args) {
    if (ref.kind !== "cal") continue;
    try {
      args[arg] = calibration.get({ detector: ref.detector, ctype: ref.ctype });
    } catch (err) {
      if (!(ref.hasDefault && err instanceof CalibrationNotFoundError)) throw err;
      args[arg] = ref.default;
    }
  }
}

function emitError(variable: ContextVariable, error: VariableError, events: ExecutionEvents): void {
  // Errors of transient variables are not stored (they still show in their dependents' trees).
  if (!variable.transient) events.output({ name: variable.name, attrs: {}, error });
}

function startTimeOutput(startTime: number): VariableOutput {
  const value = ndarray("float64", [], Float64Array.of(startTime));
  return { name: START_TIME, data: value, summary: value, attrs: {} };
}

function resolveArguments(
  variable: ContextVariable,
  input: ExecutionInput,
  values: ReadonlyMap<string, unknown>,
  failures: ReadonlyMap<string, Failure>,
  events: ExecutionEvents,
): { values: Record<string, unknown>; skip?: undefined } | { skip: Failure } {
  const args: Record<string, unknown> = {};
  const missing: string[] = [];
  for (const [arg, ref] of variable.args) {
    if (ref.kind === "cal") {
      continue; // looked up once the variable has started (its lookups are recorded as its own): calibrationArguments
    } else if (ref.kind === "meta") {
      args[arg] = input.meta[ref.field];
    } else if (ref.kind === "param") {
      if (input.params && ref.name in input.params) args[arg] = input.params[ref.name];
      else if (ref.hasDefault) args[arg] = ref.default;
      else {
        // DAMNIT: a missing parameter without default skips the variable silently: no error is stored (cls ""),
        // and its dependents see "returned no data".
        events.log("warn", `Skipping ${variable.name} because parameter '${ref.name}' was not given`);
        return { skip: { error: { cls: "", message: "" }, causes: [] } };
      }
    } else if (ref.glob) {
      const re = globRegExp(ref.pattern);
      const found: Record<string, unknown> = {};
      for (const name of variable.dependencies) if (re.test(name) && values.has(name)) found[name] = values.get(name);
      if (Object.keys(found).length > 0) args[arg] = found;
      else if (ref.hasDefault) args[arg] = ref.default;
      else missing.push(...variable.dependencies.filter((n) => re.test(n)));
    } else if (values.has(ref.pattern)) {
      args[arg] = values.get(ref.pattern);
    } else if (ref.hasDefault) {
      args[arg] = ref.default;
    } else missing.push(ref.pattern);
  }
  if (missing.length === 0) return { values: args };

  const unique = [...new Set(missing)];
  events.log("warn", `Skipping ${variable.name} because of missing dependencies: ${unique.join(", ")}`);
  const failed = unique.filter((d) => failures.has(d) && failures.get(d)!.error.cls !== "").map((d) => [d, failures.get(d)!] as const);
  if (failed.length > 0) {
    const allSkips = failed.every(([, f]) => f.error.cls === "Skip");
    const message = ["Skipped due to missing dependency:", ...treeLines(failed)].join("\n");
    return { skip: { error: { cls: allSkips ? "Skip" : "DependencyError", message }, causes: failed } };
  }
  const message = ["Dependencies returned no data:", ...unique.map((d) => `- '${d}'`)].join("\n");
  return { skip: { error: { cls: "Skip", message }, causes: [] } };
}

/**
 * DAMNIT's dependency-error tree (`damnit_exceptions._format_dependency_errors`): a dependency skipped for its own
 * dependencies is `(dep) skipped` with its causes nested below; anything else is `(dep) failed: Class: first line`
 * with further lines of the message indented below. Children are indented by "│  " or three spaces.
 */
function treeLines(items: ReadonlyArray<readonly [string, Failure]>, prefix = ""): string[] {
  const lines: string[] = [];
  items.forEach(([name, failure], i) => {
    const last = i === items.length - 1;
    const head = `${prefix}${last ? "└ " : "├ "}`;
    const childPrefix = `${prefix}${last ? "   " : "│  "}`;
    const { cls, message } = failure.error;
    if (cls === "DependencyError") {
      lines.push(`${head}(${name}) skipped`);
      if (failure.causes.length === 0) lines.push(`${childPrefix}<no details>`);
      else lines.push(...treeLines(failure.causes, childPrefix));
      return;
    }
    const messageLines = splitLines(message);
    if (messageLines.length === 0) {
      lines.push(`${head}(${name}) failed: ${cls}`);
      return;
    }
    lines.push(`${head}(${name}) failed: ${cls}: ${messageLines[0]}`);
    for (const more of messageLines.slice(1)) lines.push(`${childPrefix}${more}`);
  });
  return lines;
}

/** Python's str.splitlines for the usual line ends: no empty last line for a trailing newline. */
function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** The stored result of a successful variable, or undefined if there is nothing to store. */
function makeOutput(variable: ContextVariable, result: unknown, limitBytes: number, events: ExecutionEvents): VariableOutput | undefined {
  const parts = cellParts(result, limitBytes);
  const summaryMethod = parts.summary ?? variable.summary ?? undefined;
  const { summary, attrs, warnings } = summarise(variable.name, {
    data: parts.data,
    preview: parts.preview,
    summaryValue: parts.summaryValue,
    summaryMethod,
  });
  for (const warning of warnings) events.log("error", warning);
  if (parts.data === undefined && summary === undefined && parts.preview === undefined) return undefined;
  const units = parts.units ?? variable.units ?? undefined;
  const output: VariableOutput = {
    name: variable.name,
    data: parts.data,
    summary,
    preview: parts.preview,
    attrs: {
      ...attrs,
      ...(parts.bold !== undefined ? { bold: parts.bold } : {}),
      ...(parts.background ? { background: parts.background } : {}),
      ...(units ? { units } : {}),
    },
  };
  checkStorable(output);
  return output;
}

/** Class name and message of anything thrown; run-data errors get EXtra-data's class names. */
export function errorInfo(err: unknown): VariableError {
  if (!(err instanceof Error)) return { cls: "Error", message: String(err).replaceAll("\0", "\\0") };
  let cls = err.name;
  if (cls === "Error" && err.constructor.name && err.constructor.name !== "Error") cls = err.constructor.name;
  // By name, not class: a context may reach the run reader through another copy of this package.
  const code = "code" in err ? err.code : undefined;
  if (cls === "DamnitError") {
    cls = code === "UNKNOWN_SOURCE" ? "SourceNameError" : code === "UNKNOWN_KEY" ? "PropertyNameError" : "DataError";
  }
  // NUL cannot be stored in HDF5 strings; show it rather than lose the error.
  return { cls: cls.replaceAll("\0", "\\0"), message: err.message.replaceAll("\0", "\\0") };
}

/** The traceback a scientist needs: their code and the data reader, without the runner's own frames. */
function stackOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const lines = (err.stack ?? `${err.name}: ${err.message}`).split("\n");
  return lines.filter((line) => !/^\s+at .*(\/src\/extract\/|node:internal)/.test(line)).join("\n");
}
