/**
 * DAMNIT's execution semantics through `damnit extract --mock` (no run data needed): dependency kinds and
 * defaults, glob dependencies, parameters, meta values, the dependency-error tree, Skip propagation, transient
 * variables, cluster variables, `null` results.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { runVariableRows, variableRows } from "./helpers/db.js";
import { tempDir } from "./helpers/tmp.js";

const PROPOSAL = 4321;
const RUN = 7;

function extractWith(context: string, ...extra: string[]) {
  const dir = tempDir("damnit-sem-");
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  writeFileSync(join(dir, "context.ts"), context);
  const result = damnit(["extract", String(PROPOSAL), String(RUN), "raw", "--mock", ...extra], { cwd: dir });
  const rows = runVariableRows(dir, { run: RUN });
  const variables = variableRows(dir);
  const values = new Map(rows.map((r) => [r.name, r.value]));
  const errors = new Map(rows.filter((r) => r.attributes?.includes('"error"')).map((r) => [r.name, JSON.parse(r.attributes!) as { error: string; error_cls: string }]));
  return { result, values, errors, variables: variables.map((v) => v.name) };
}

describe("execution semantics", () => {
  it("passes dependencies, globs, meta values, parameters and defaults", () => {
    const { result, values, errors } = extractWith(
      `import { Variable } from "damnit/context";
export const xgm_a = Variable(() => 1);
export const xgm_b = Variable(() => 2);
export const xgm_none = Variable(() => null);
export const xgm_sum = Variable({ deps: { all: "var#xgm_[a-z]*" } }, (_r, { all }) => JSON.stringify(all));
export const who = Variable({ deps: { run: "meta#run_number", p: "meta#proposal", path: "meta#proposal_path" } }, (_r, d) => \`\${d.p}/\${d.run}/[\${d.path}]\`);
export const scaled = Variable({ deps: { k: "param#k", a: xgm_a } }, (_r, { k, a }) => k * a);
export const unscaled = Variable({ deps: { k: "param#missing" } }, () => 1);
export const fallback = Variable({ deps: { x: { from: "var#xgm_none", default: 40 } } }, (_r, { x }) => x + 2);
export const none_glob = Variable({ deps: { x: "var#xgm_n*" } }, () => 1);
`,
      "--param",
      "k=21",
    );
    expect(result.status).toBe(0);
    // A glob gives name → value of the matches that have a value.
    expect(values.get("xgm_sum")).toBe('{"xgm_a":1,"xgm_b":2}');
    expect(values.get("who")).toBe(`${PROPOSAL}/${RUN}/[]`);
    expect(values.get("scaled")).toBe(21);
    // A missing parameter without default skips silently (nothing stored), as in DAMNIT.
    expect(values.has("unscaled")).toBe(false);
    expect(errors.has("unscaled")).toBe(false);
    expect(values.get("fallback")).toBe(42);
    expect(values.has("xgm_none")).toBe(false);
    expect(errors.get("none_glob")).toEqual({ error: "Dependencies returned no data:\n- 'xgm_none'", error_cls: "Skip" });
  });

  it("records DAMNIT's dependency-error tree and Skip propagation", () => {
    const { values, errors, variables } = extractWith(`import { Skip, Variable } from "damnit/context";
export const a = Variable(() => { throw new TypeError("no good\\nsecond line"); });
export const b = Variable({ deps: { a: "var#a" } }, () => 1);
export const c = Variable({ deps: { b: "var#b", e: "var#e" } }, () => 1);
export const e = Variable(() => { throw new Error(); });
export const s = Variable(() => { throw new Skip("not this run"); });
export const t = Variable({ deps: { s: "var#s" } }, () => 1);
export const hidden = Variable({ transient: true }, () => { throw new RangeError("transient trouble"); });
export const u = Variable({ deps: { h: "var#hidden" } }, () => 1);
export const ok = Variable({ deps: { h: { from: "var#hidden", default: 5 } } }, (_r, { h }) => h);
`);
    expect(errors.get("a")).toEqual({ error: "no good\nsecond line", error_cls: "TypeError" });
    // DAMNIT's text: further lines of a message are indented under it.
    expect(errors.get("b")).toEqual({ error: "Skipped due to missing dependency:\n└ (a) failed: TypeError: no good\n   second line", error_cls: "DependencyError" });
    expect(errors.get("c")).toEqual({
      error: ["Skipped due to missing dependency:", "├ (b) skipped", "│  └ (a) failed: TypeError: no good", "│     second line", "└ (e) failed: Error"].join("\n"),
      error_cls: "DependencyError",
    });
    expect(errors.get("s")).toEqual({ error: "not this run", error_cls: "Skip" });
    // Only skips below: the dependent is a Skip too, and DAMNIT writes a Skip as "failed: Skip: …".
    expect(errors.get("t")).toEqual({ error: "Skipped due to missing dependency:\n└ (s) failed: Skip: not this run", error_cls: "Skip" });
    // A transient variable's error is not stored, but shows in its dependents' trees.
    expect(errors.has("hidden")).toBe(false);
    expect(variables).not.toContain("hidden");
    expect(errors.get("u")).toEqual({ error: "Skipped due to missing dependency:\n└ (hidden) failed: RangeError: transient trouble", error_cls: "DependencyError" });
    expect(values.get("ok")).toBe(5);
  });

  it("computes cluster variables after the others, or alone in a cluster job", () => {
    const context = `import { Variable } from "damnit/context";
export const base = Variable(() => 3);
export const heavy = Variable({ cluster: true, deps: { b: "var#base" } }, (_r, { b }) => b * 100);
export const after_heavy = Variable({ deps: { h: "var#heavy" } }, (_r, { h }) => h + 1);
`;
    const normal = extractWith(context);
    expect(normal.result.status).toBe(0);
    expect(normal.result.stderr).toMatch(/Using 1 variables \(of 3\) from context file \(cluster variables will be processed later\): base/);
    expect(normal.result.stderr).toMatch(/Computing the cluster variables of r7 here \(locally\)/);
    expect(Object.fromEntries(normal.values)).toEqual({ base: 3, heavy: 300, after_heavy: 301 });

    const clusterOnly = extractWith(context, "--cluster-job");
    expect(clusterOnly.result.stderr).toMatch(/Using 3 variables \(of 3\) from context file: base, heavy, after_heavy/);
    expect(Object.fromEntries(clusterOnly.values)).toEqual({ base: 3, heavy: 300, after_heavy: 301 });

    const selected = extractWith(context, "--var", "base");
    expect(Object.fromEntries(selected.values)).toEqual({ base: 3 });
    const unknown = extractWith(context, "--var", "bsae");
    expect(unknown.result.status).toBe(1);
    expect(unknown.result.stderr).toMatch(/the context file has no variable 'bsae' \(did you mean base\?\)/);
  });

  it("resolves damnit/data at run time from a directory without node_modules", () => {
    const { result, values } = extractWith(`import { Variable } from "damnit/context";
import { parseRange, DEFAULT_SLICE_BYTES } from "damnit/data";
export const range = Variable(() => JSON.stringify(parseRange("2:5")) + " " + DEFAULT_SLICE_BYTES);
`);
    expect(result.status).toBe(0);
    expect(values.get("range")).toMatch(/ 4194304$/);
  });
});
