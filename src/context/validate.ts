/**
 * Checking a context file's variable definitions (DAMNIT's rules, spec §3.3–3.4) and putting them in execution
 * order. Every problem is collected, so a scientist fixes the file in one pass.
 */
import { didYouMean } from "../core/close-names.js";
import { isReduction, REDUCTIONS } from "../summary/reductions.js";
import type { ContextProblem, ContextVariable, DepRef, LoadedContext } from "./variables.js";

/** A `Variable()` result as found in the module (duck-typed: a context may hold another copy of the API module). */
export interface DefinitionLike {
  readonly options: Readonly<Record<string, unknown>>;
  readonly fn: unknown;
  readonly site: { readonly file?: string; readonly line?: number };
}

export interface Candidate {
  /** names it is exported under (a definition exported twice is a problem) */
  readonly exportNames: readonly string[];
  readonly definition: DefinitionLike;
}

const OPTION_NAMES = ["name", "title", "description", "summary", "data", "cluster", "tags", "transient", "units", "deps"];
const META_FIELDS = ["run_number", "proposal", "proposal_path"] as const;
const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
/** Names the run table uses for its own columns. */
const RESERVED_NAMES = new Set(["proposal", "run", "start_time", "added_at", "comment"]);
/** Column titles the GUI shows for its own columns (spec §9.3). */
const RESERVED_TITLES = new Set(["status", "proposal", "run", "timestamp", "comment"]);
/** Produced for every run before the variables; may be depended on like a variable. */
export const START_TIME = "start_time";

/** The variables a draft depends on (start_time is not a variable of the graph). */
function depsOf(draft: Draft): string[] {
  return [...new Set([...draft.varDeps.values()].flat())].filter((n) => n !== START_TIME);
}

export function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** fnmatch-style pattern (`*`, `?`, `[…]`, `[!…]`) as a regular expression, case-sensitive as on POSIX. */
export function globRegExp(pattern: string): RegExp {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) out += "\\[";
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith("!")) body = "^" + body.slice(1);
        out += `[${body.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\/]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

interface Draft {
  name: string;
  definition: DefinitionLike;
  line?: number;
  title: string;
  description: string | null;
  summary: string | null;
  data: "raw" | "proc" | undefined;
  cluster: boolean;
  tags: string[];
  transient: boolean;
  units: string | null;
  args: Map<string, DepRef>;
  /** argument name → the variable names it depends on */
  varDeps: Map<string, string[]>;
}

/**
 * Check the candidates and build the context. `source` is the file's text, used for JSDoc descriptions.
 * Returns problems (empty when the context is usable).
 */
export function buildContext(file: string, candidates: readonly Candidate[], source: string): { context?: LoadedContext; problems: ContextProblem[] } {
  const problems: ContextProblem[] = [];
  const problem = (line: number | undefined, message: string) => problems.push({ file, line, message });
  const definitionNames = new Map<DefinitionLike, string>();
  const drafts: Draft[] = [];

  for (const { exportNames, definition } of candidates) {
    const line = definition.site.file === file ? definition.site.line : undefined;
    const options = definition.options;
    if ("__invalid" in options) {
      problem(line, `Variable() takes an options object and a function, got ${describe(options.__invalid)}`);
      continue;
    }
    const explicit = options.name;
    let name: string | undefined;
    if (explicit !== undefined) {
      if (typeof explicit !== "string") problem(line, `name must be a string, got ${describe(explicit)}`);
      else name = explicit;
    } else if (exportNames.length > 1) {
      problem(line, `one variable is exported under several names (${exportNames.join(", ")}); export it once or give it a name`);
    } else if (exportNames.length === 0) {
      problem(line, "this variable is not exported: write `export const <name> = Variable(…)` or give it a name");
    } else name = exportNames[0];
    if (name === undefined) continue;
    if (!NAME_PATTERN.test(name)) problem(line, `the variable name '${name}' is not an identifier or dotted identifiers`);
    else if (RESERVED_NAMES.has(name.toLowerCase())) problem(line, `the variable name '${name}' is reserved for the run table's own columns`);
    definitionNames.set(definition, name);

    for (const key of Object.keys(options)) {
      if (!OPTION_NAMES.includes(key)) problem(line, `${name}: unknown option '${key}'${didYouMean(key, OPTION_NAMES)}`);
    }
    if (typeof definition.fn !== "function") problem(line, `${name}: Variable() needs a function computing the value, got ${describe(definition.fn)}`);

    const title = stringOption(options, "title", name, line, problem) ?? name;
    if (title === "") problem(line, `${name}: title must not be empty`);
    if (RESERVED_TITLES.has(title.toLowerCase())) problem(line, `${name}: the title '${title}' is reserved for the run table's own column`);
    const description = stringOption(options, "description", name, line, problem) ?? jsDocAbove(source, line);
    const summary = stringOption(options, "summary", name, line, problem) ?? null;
    if (summary !== null && !isReduction(summary)) {
      problem(line, `${name}: summary '${summary}' is not a reduction${didYouMean(summary, REDUCTIONS)} (known: ${REDUCTIONS.join(", ")})`);
    }
    let data: "raw" | "proc" | undefined;
    if (options.data !== undefined) {
      if (options.data === "raw" || options.data === "proc") data = options.data;
      else problem(line, `${name}: data=${describe(options.data)} (can be 'raw' or 'proc')`);
    }
    const cluster = booleanOption(options, "cluster", name, line, problem);
    const transient = booleanOption(options, "transient", name, line, problem);
    let tags: string[] = [];
    if (options.tags !== undefined) {
      const list = typeof options.tags === "string" ? [options.tags] : options.tags;
      if (!Array.isArray(list) || !list.every((t) => typeof t === "string" && t.trim() !== "")) {
        problem(line, `${name}: tags=${describe(options.tags)} (must be a non-empty string or a list of non-empty strings)`);
      } else tags = [...new Set(list as string[])];
    }
    let units: string | null = null;
    if (options.units !== undefined) {
      if (typeof options.units !== "string" || options.units.trim() === "") problem(line, `${name}: units must be a non-empty string, got ${describe(options.units)}`);
      else units = options.units;
    }
    drafts.push({ name, definition, line, title, description, summary, data, cluster, tags, transient, units, args: new Map(), varDeps: new Map() });
  }

  // Names and titles are unique.
  const byName = new Map<string, Draft>();
  const byTitle = new Map<string, Draft>();
  for (const draft of drafts) {
    const other = byName.get(draft.name);
    if (other) {
      problem(draft.line, `duplicate variable name '${draft.name}' (also at line ${other.line ?? "?"})`);
      continue;
    }
    byName.set(draft.name, draft);
    const sameTitle = byTitle.get(draft.title);
    if (sameTitle) {
      problem(draft.line, `${draft.name}: duplicate title '${draft.title}' (also used by ${sameTitle.name}${sameTitle.line ? ` at line ${sameTitle.line}` : ""})`);
    } else byTitle.set(draft.title, draft);
  }
  const allNames = [...byName.keys()];

  // Dependencies.
  for (const draft of drafts) {
    const deps = draft.definition.options.deps;
    if (deps === undefined) continue;
    if (typeof deps !== "object" || deps === null || Array.isArray(deps)) {
      problem(draft.line, `${draft.name}: deps must be an object of argument name → dependency, got ${describe(deps)}`);
      continue;
    }
    for (const [arg, spec] of Object.entries(deps as Record<string, unknown>)) {
      const ref = parseDep(spec, definitionNames, (message) => problem(draft.line, `${draft.name}: argument '${arg}': ${message}`));
      if (!ref) continue;
      draft.args.set(arg, ref);
      if (ref.kind !== "var") continue;
      let matches: string[];
      if (ref.glob) {
        const re = globRegExp(ref.pattern);
        matches = allNames.filter((n) => n !== draft.name && re.test(n));
      } else matches = byName.has(ref.pattern) || ref.pattern === START_TIME ? [ref.pattern] : [];
      if (matches.length === 0) {
        const others = allNames.filter((n) => n !== draft.name);
        problem(draft.line, `Missing dependency: '${ref.pattern}' for '${draft.name}'${ref.glob ? " (the pattern matches no variable)" : didYouMean(ref.pattern, others)}`);
      }
      draft.varDeps.set(arg, matches);
    }
  }
  // Cycles and promotion are checked even when there are other problems (all are reported at once); unresolved
  // dependencies simply drop out of the graph. Duplicate names are left out of it.
  const graph = drafts.filter((d) => byName.get(d.name) === d);
  const order = topologicalOrder(graph, (cycle) => problem(byName.get(cycle[0]!)?.line, `These variables have cyclical dependencies: ${cycle.join(" → ")}`));
  if (!order) return { problems };

  // Promotion in dependency order: depends on proc → proc; depends on cluster → cluster.
  const effective = new Map<string, { data: "raw" | "proc"; cluster: boolean }>();
  for (const name of order) {
    const draft = byName.get(name)!;
    const deps = depsOf(draft);
    const procDep = deps.find((d) => effective.get(d)!.data === "proc");
    if (draft.data === "raw" && procDep) {
      problem(draft.line, `${name} is data='raw' but depends on the proc variable '${procDep}'; make it data='proc' or drop the dependency`);
    }
    effective.set(name, {
      data: draft.data ?? (procDep ? "proc" : "raw"),
      cluster: draft.cluster || deps.some((d) => effective.get(d)!.cluster),
    });
  }
  if (problems.length > 0) return { problems };

  const variables = new Map<string, ContextVariable>();
  for (const name of order) {
    const d = byName.get(name)!;
    variables.set(name, {
      name,
      title: d.title,
      description: d.description,
      tags: d.tags,
      data: effective.get(name)!.data,
      cluster: effective.get(name)!.cluster,
      transient: d.transient,
      units: d.units,
      summary: d.summary,
      dependencies: depsOf(d),
      line: d.line ?? null,
      args: d.args,
      fn: d.definition.fn as ContextVariable["fn"],
    });
  }
  return { context: { file, variables, order }, problems };
}

function parseDep(spec: unknown, definitionNames: Map<DefinitionLike, string>, report: (message: string) => void): DepRef | undefined {
  let from = spec;
  let hasDefault = false;
  let defaultValue: unknown;
  if (isDefinition(spec)) from = spec;
  else if (typeof spec === "object" && spec !== null && "from" in spec) {
    from = (spec as { from: unknown }).from;
    hasDefault = "default" in spec;
    defaultValue = (spec as { default?: unknown }).default;
    const extra = Object.keys(spec).filter((k) => k !== "from" && k !== "default");
    if (extra.length > 0) report(`unknown key '${extra[0]}' (a dependency is { from, default })`);
  }
  if (isDefinition(from)) {
    const name = definitionNames.get(from);
    if (name === undefined) {
      report("depends on a variable that is not part of this context (export it)");
      return undefined;
    }
    return { kind: "var", pattern: name, glob: false, hasDefault, default: defaultValue };
  }
  if (typeof from !== "string") {
    report(`expected 'var#<name>', 'meta#<field>', 'param#<name>' or a variable, got ${describe(from)}`);
    return undefined;
  }
  const hash = from.indexOf("#");
  const prefix = hash < 0 ? "" : from.slice(0, hash);
  const rest = hash < 0 ? from : from.slice(hash + 1);
  switch (prefix) {
    case "var":
      if (rest === "") break;
      return { kind: "var", pattern: rest, glob: isGlob(rest), hasDefault, default: defaultValue };
    case "meta":
      if ((META_FIELDS as readonly string[]).includes(rest)) return { kind: "meta", field: rest as (typeof META_FIELDS)[number] };
      report(`unknown meta field '${rest}'${didYouMean(rest, META_FIELDS)} (known: ${META_FIELDS.join(", ")})`);
      return undefined;
    case "param":
      if (rest === "") break;
      return { kind: "param", name: rest, hasDefault, default: defaultValue };
    case "cal": {
      const slash = rest.lastIndexOf("/");
      if (slash > 0 && slash < rest.length - 1) return { kind: "cal", detector: rest.slice(0, slash), ctype: rest.slice(slash + 1), hasDefault, default: defaultValue };
      report(`'${from}': a calibration dependency is 'cal#<detector>/<ctype>', e.g. 'cal#jungfrau-0042/pedestals'`);
      return undefined;
    }
    case "mymdc":
      report(`'${from}': metadata-catalogue lookups (mymdc#) are not available here`);
      return undefined;
  }
  report(`Unknown path '${from}' (use 'var#<name>', 'meta#<field>', 'param#<name>' or 'cal#<detector>/<ctype>')`);
  return undefined;
}

function isDefinition(value: unknown): value is DefinitionLike {
  return typeof value === "object" && value !== null && (value as { __damnitVariable?: unknown }).__damnitVariable === true;
}

/**
 * Kahn's algorithm batch by batch, as DAMNIT orders variables: first every variable without dependencies in
 * definition order, then those each batch unlocks, in the order they were unlocked. Reports one cycle if any.
 */
function topologicalOrder(drafts: readonly Draft[], reportCycle: (cycle: string[]) => void): string[] | undefined {
  const successors = new Map<string, string[]>(drafts.map((d) => [d.name, []]));
  const waiting = new Map<string, number>();
  for (const d of drafts) {
    const deps = depsOf(d);
    waiting.set(d.name, deps.length);
    for (const dep of deps) successors.get(dep)!.push(d.name);
  }
  const order: string[] = [];
  let batch = drafts.filter((d) => waiting.get(d.name) === 0).map((d) => d.name);
  while (batch.length > 0) {
    const next: string[] = [];
    for (const name of batch) {
      order.push(name);
      for (const s of successors.get(name)!) {
        const left = waiting.get(s)! - 1;
        waiting.set(s, left);
        if (left === 0) next.push(s);
      }
    }
    batch = next;
  }
  if (order.length === drafts.length) return order;
  reportCycle(findCycle(drafts, new Set(order)));
  return undefined;
}

function findCycle(drafts: readonly Draft[], done: Set<string>): string[] {
  const deps = new Map(drafts.map((d) => [d.name, depsOf(d).filter((n) => !done.has(n))]));
  const start = drafts.find((d) => !done.has(d.name))!.name;
  const path: string[] = [];
  const seen = new Map<string, number>();
  let current = start;
  while (!seen.has(current)) {
    seen.set(current, path.length);
    path.push(current);
    current = deps.get(current)![0]!;
  }
  // `current` depends on … ; show the cycle in dependency direction, closed.
  const cycle = path.slice(seen.get(current)!);
  return [...cycle, cycle[0]!];
}

function stringOption(
  options: Readonly<Record<string, unknown>>,
  key: string,
  name: string,
  line: number | undefined,
  problem: (line: number | undefined, message: string) => void,
): string | undefined {
  const value = options[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    problem(line, `${name}: ${key} must be a string, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

function booleanOption(
  options: Readonly<Record<string, unknown>>,
  key: string,
  name: string,
  line: number | undefined,
  problem: (line: number | undefined, message: string) => void,
): boolean {
  const value = options[key];
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    problem(line, `${name}: ${key} must be true or false, got ${describe(value)}`);
    return false;
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === "string") return `'${value}'`;
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return JSON.stringify(value);
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  return String(value);
}

/**
 * The JSDoc comment (`/** … *\/`) directly above the statement that starts on or before `line`: the TypeScript
 * counterpart of a Python docstring.
 */
export function jsDocAbove(source: string, line: number | undefined): string | null {
  if (!line) return null;
  const lines = source.split("\n");
  // The Variable() call may sit on a continuation line of `export const x =`; walk up to the statement start.
  let index = line - 1;
  while (index > 0 && index < lines.length && !/^\s*(export\s|const\s|let\s|var\s)/.test(lines[index]!) && lines[index - 1]!.trim() !== "" && !lines[index - 1]!.trim().endsWith("*/") && !lines[index - 1]!.trim().endsWith(";")) index--;
  let end = index - 1;
  while (end >= 0 && lines[end]!.trim() === "") end--;
  if (end < 0 || !lines[end]!.trim().endsWith("*/")) return null;
  let start = end;
  while (start >= 0 && !lines[start]!.includes("/**")) {
    if (lines[start]!.includes("/*") && !lines[start]!.includes("/**")) return null;
    start--;
  }
  if (start < 0) return null;
  const text = lines
    .slice(start, end + 1)
    .join("\n")
    .replace(/^\s*\/\*\*\s?/, "")
    .replace(/\s*\*\/\s*$/, "")
    .split("\n")
    .map((l) => l.replace(/^\s*\* ?/, ""))
    .join("\n")
    .trim();
  return text === "" ? null : text;
}
