/**
 * Loading and checking context files through the real CLI (`damnit read-context`), which evaluates them in a
 * context runner: the API resolves from a directory with no node_modules, TypeScript compiles, and every problem
 * is reported at once with file and line.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

function contextDir(source: string, name = "context.ts"): string {
  const dir = tempDir("damnit-ctx-");
  writeFileSync(join(dir, name), source);
  return dir;
}

function readContext(dir: string) {
  const result = damnit(["read-context", dir, "--json"]);
  return { ...result, json: result.status === 0 ? (JSON.parse(result.stdout) as { variables: Array<Record<string, unknown>> }) : undefined };
}

describe("context files", () => {
  it("loads a TypeScript context far from the installation, with DAMNIT's order, promotion and descriptions", () => {
    const dir = contextDir(`import { Variable, Cell } from "damnit/context";
import type { DataCollection } from "damnit/data";

interface Unused { a: number }

/** Number of trains */
export const n = Variable({ title: "N", tags: "count" }, (run: DataCollection) => run.trainIds.length);

export const proc_value = Variable({ data: "proc", cluster: true }, () => 1);

/**
 * Twice n,
 * over two lines
 */
export const twice = Variable(
  { title: "Twice", units: "trains", deps: { n: "var#n" } },
  (_run, { n }) => 2 * n,
);

export const uses_proc = Variable({ deps: { p: proc_value, t: twice } }, (_run, { p, t }) => p + t);
export const xs = Variable({ deps: { all: "var#*" , run: "meta#run_number" }, tags: ["a", "b"] }, (_r, { all }) => Object.keys(all).length);
export const helper = Variable({ transient: true }, () => new Map());
`);
    const { status, stderr, json } = readContext(dir);
    expect(stderr).toBe("");
    expect(status).toBe(0);
    const byName = new Map(json!.variables.map((v) => [v.name as string, v]));
    // Kahn batch by batch: dependency-free variables in definition order first.
    expect(json!.variables.map((v) => v.name)).toEqual(["n", "proc_value", "helper", "twice", "uses_proc", "xs"]);
    expect(byName.get("n")).toMatchObject({ title: "N", description: "Number of trains", tags: ["count"], data: "raw", cluster: false, line: 7 });
    expect(byName.get("twice")).toMatchObject({ description: "Twice n,\nover two lines", units: "trains", dependencies: ["n"], line: 15 });
    // Promotion: depends on proc → proc; depends on cluster → cluster.
    expect(byName.get("uses_proc")).toMatchObject({ data: "proc", cluster: true, dependencies: ["proc_value", "twice"] });
    expect(byName.get("xs")).toMatchObject({ dependencies: ["n", "proc_value", "twice", "uses_proc", "helper"], tags: ["a", "b"], data: "proc", cluster: true });
    expect(byName.get("helper")).toMatchObject({ transient: true });
  });

  it("reports every problem at once, each with its line", () => {
    const dir = contextDir(`import { Variable } from "damnit/context";
export const a = Variable({ title: "Same" }, () => 1);
export const b = Variable({ title: "Same" }, () => 2);
export const c = Variable({ deps: { d: "var#d" } }, () => 3);
export const d = Variable({ deps: { c: "var#c" } }, () => 4);
export const e = Variable({ deps: { x: "var#nope" } }, () => 5);
export const p = Variable({ data: "proc" }, () => 6);
export const r = Variable({ data: "raw", deps: { p: "var#p" } }, () => 7);
export const t = Variable({ tags: ["ok", ""], units: "" }, () => 8);
export const u = Variable({ titel: "typo", summary: "maen" }, () => 9);
export const g = Variable({ deps: { all: "var#zz*" } }, () => 10);
export const m = Variable({ deps: { x: "meta#runnumber", y: "input#old" } }, () => 11);
Variable({ title: "Lost" }, () => 12);
`);
    const result = damnit(["read-context", dir]);
    expect(result.status).toBe(1);
    const text = result.stderr;
    const file = join(dir, "context.ts");
    const expectations: Array<[number, RegExp]> = [
      [3, /b: duplicate title 'Same' \(also used by a at line 2\)/],
      [6, /Missing dependency: 'nope' for 'e'/],
      [9, /t: tags=\["ok",""\]/],
      [9, /t: units must be a non-empty string/],
      [10, /u: unknown option 'titel' \(did you mean title\?\)/],
      [10, /u: summary 'maen' is not a reduction \(did you mean [^)]*\bmean\b/],
      [11, /Missing dependency: 'zz\*' for 'g' \(the pattern matches no variable\)/],
      [12, /m: argument 'x': unknown meta field 'runnumber' \(did you mean run_number\?/],
      [12, /m: argument 'y': Unknown path 'input#old'/],
      [13, /not exported/],
      [4, /These variables have cyclical dependencies: c → d → c/],
    ];
    for (const [line, pattern] of expectations) {
      const matching = text.split("\n").filter((l) => l.startsWith(`${file}:${line}: `) && pattern.test(l));
      expect(matching, `line ${line} ${pattern}\n${text}`).toHaveLength(1);
    }
    // Alone, each is found too (raw-on-proc needs an order, so it waits for cycles to be fixed).
    const fixed = contextDir(`import { Variable } from "damnit/context";
export const c = Variable({ deps: { d: "var#d" } }, () => 3);
export const d = Variable({ deps: { c: "var#c" } }, () => 4);
`);
    expect(damnit(["read-context", fixed]).stderr).toMatch(/context\.ts:2: These variables have cyclical dependencies: c → d → c/);
    const rawOnProc = contextDir(`import { Variable } from "damnit/context";
export const p = Variable({ data: "proc" }, () => 6);
export const r = Variable({ data: "raw", deps: { p: "var#p" } }, () => 7);
`);
    expect(damnit(["read-context", rawOnProc]).stderr).toMatch(/context\.ts:3: r is data='raw' but depends on the proc variable 'p'/);
  });

  it("reports a syntax error, an exception at load and a missing import with their lines", () => {
    const syntax = contextDir(`import { Variable } from "damnit/context";\n\nexport const a = Variable({}, () => {\n  return (1 + ;\n});\n`);
    expect(damnit(["read-context", syntax]).stderr).toMatch(new RegExp(`${join(syntax, "context.ts")}:4: syntax error: Unexpected ";"`));

    const throws = contextDir(`import { Variable } from "damnit/context";\nconst table: Record<string, number> = {};\n\nconst bad = (table as any).x.y;\nexport const a = Variable({}, () => bad);\n`);
    expect(damnit(["read-context", throws]).stderr).toMatch(/context\.ts:4: error while evaluating the context file: TypeError: Cannot read properties of undefined \(reading 'y'\)/);

    const missing = contextDir(`import { Variable } from "damnit/context";\nimport { fit } from "curve-fitting-lib";\nexport const a = Variable({}, () => fit());\n`);
    expect(damnit(["read-context", missing]).stderr).toMatch(/context\.ts:2: cannot import 'curve-fitting-lib'.*not installed/);

    const helperMissing = contextDir(`import { Variable } from "damnit/context";\nimport { util } from "./helpers.ts";\nexport const a = Variable({}, () => util());\n`);
    expect(damnit(["read-context", helperMissing]).stderr).toMatch(/context\.ts:2: cannot import '.*helpers\.ts'/);
  });

  it("accepts context.js and relative helper modules, and bare Variable(fn)", () => {
    const dir = contextDir(`import { Variable } from "damnit/context";\nimport { double } from "./helpers.js";\nexport const a = Variable(() => double(21));\n`, "context.js");
    writeFileSync(join(dir, "helpers.js"), "export const double = (x) => 2 * x;\n");
    const { status, stderr, json } = readContext(dir);
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect(json!.variables).toMatchObject([{ name: "a", title: "a", data: "raw" }]);
  });

  it("says where it looked when there is no context file", () => {
    const dir = tempDir();
    const result = damnit(["read-context", dir]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no context file in .* \(expected one of context\.ts, context\.mts, context\.js, context\.mjs, context\.py\)/);
  });
});
