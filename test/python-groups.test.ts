/**
 * DAMNIT's @Group in a Python context (spec §3.10): group classes as keyword-only dataclasses, names inferred
 * from the assignment (the shortest path wins), `<group>.<var>` names with `<title><sep><var title>` titles and
 * merged tags, inherited variables, `self#` links into this and other groups and to top-level variables, globs,
 * missing fields as placeholders (dependents skip or use their default), Pipeline.default()/set_default() choosing
 * the variables, and each GroupError. Debian's
 * /usr/bin/python3; fails rather than skips with REQUIRE_PYTHON_CONTEXT=1.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { withRunsDb } from "./helpers/db.js";
import { tempDir } from "./helpers/tmp.js";

const PYTHON = "/usr/bin/python3";
const PROPOSAL = 4321;
const RUN = 4;

function pythonReady(): boolean {
  const probe = spawnSync(PYTHON, ["-c", "import numpy, extra_data"], { timeout: 60_000 });
  if (probe.status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy and extra_data");
  console.warn("skipping Python group tests: /usr/bin/python3 lacks numpy or extra_data");
  return false;
}

const ready = pythonReady();

function setup(context: string): string {
  const dir = tempDir("damnit-pygrp-");
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  expect(damnit(["db-config", "context_python", PYTHON], { cwd: dir }).status).toBe(0);
  writeFileSync(join(dir, "context.py"), context);
  return dir;
}

const GROUPS = `from damnit_ctx import Variable, Group

@Variable()
def base(run): return 10

@Group(tags="xgm")
class XGM:
    source: str = "SA1"

    @Variable(title="Intensity", tags="beam")
    def intensity(self, run):
        """Pulse energy"""
        return len(self.source)

    @Variable(title="Double")
    def double(self, run, i: "self#intensity"): return i * 2


@Group
class Detector:
    xgm: XGM = None
    factor: float = 1.0
    top: object = None

    @Variable()
    def scaled(self, run, i: "self#xgm.intensity", b: "self#top"): return i * self.factor + b

    @Variable()
    def all_xgm(self, run, d: "self#xgm.*"): return ",".join(sorted(d))

    @Variable()
    def fallback(self, run, i: "self#xgm.intensity" = -1): return i


@Group
class Sub(Detector):
    @Variable()
    def extra(self, run, s: "self#scaled"): return s + 1


sa1 = XGM(source="SA1_XGM")
det = Detector(xgm=sa1, factor=2.0, title="Det", top=base)
sub = Sub(factor=3.0, top=base, sep=" - ")
`;

describe.skipIf(!ready)("@Group in context.py", () => {
  it("expands each instance into named, titled, tagged variables linked with self#, and runs them", () => {
    const dir = setup(GROUPS);
    const read = damnit(["read-context", "--json"], { cwd: dir });
    expect(read.status, read.stderr).toBe(0);
    const vars = (JSON.parse(read.stdout) as { variables: Array<{ name: string; title: string; tags: string[]; transient: boolean; dependencies: string[]; description: string | null }> })
      .variables;
    const byName = new Map(vars.map((v) => [v.name, v]));
    expect(vars.map((v) => v.name).sort()).toEqual(
      [
        "base",
        "det.all_xgm",
        "det.fallback",
        "det.scaled",
        "sa1.double",
        "sa1.intensity",
        "sub.__missing__.xgm._",
        "sub.__missing__.xgm.intensity",
        "sub.all_xgm",
        "sub.extra",
        "sub.fallback",
        "sub.scaled",
      ].sort(),
    );
    // det.xgm is sa1: the top-level name (shorter path) names it.
    expect(byName.get("sa1.intensity")).toMatchObject({ title: "sa1/Intensity", tags: ["beam", "xgm"], description: "Pulse energy" });
    expect(byName.get("sa1.double")).toMatchObject({ title: "sa1/Double", tags: ["xgm"], dependencies: ["sa1.intensity"] });
    expect(byName.get("det.scaled")).toMatchObject({ title: "Det/scaled", dependencies: ["sa1.intensity", "base"] });
    expect(byName.get("det.all_xgm")!.dependencies.sort()).toEqual(["sa1.double", "sa1.intensity"]);
    expect(byName.get("sub.extra")).toMatchObject({ title: "sub - extra", dependencies: ["sub.scaled"] });
    expect(byName.get("sub.__missing__.xgm.intensity")!.transient).toBe(true);

    const r = damnit(["extract", String(PROPOSAL), String(RUN), "raw", "--mock"], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const rows = withRunsDb(dir, (db) => db.prepare("SELECT name, value, attributes FROM run_variables WHERE run = ?").all(RUN) as Array<{ name: string; value: unknown; attributes: string | null }>);
    const values = new Map(rows.map((row) => [row.name, row.value]));
    const errors = new Map(rows.filter((row) => row.attributes?.includes('"error"')).map((row) => [row.name, JSON.parse(row.attributes!) as { error: string; error_cls: string }]));
    expect(values.get("sa1.intensity")).toBe(7);
    expect(values.get("sa1.double")).toBe(14);
    expect(values.get("det.scaled")).toBe(24);
    expect(values.get("det.all_xgm")).toBe("sa1.double,sa1.intensity");
    expect(values.get("det.fallback")).toBe(7);
    // sub.xgm is None: its dependents skip, or use their parameter default
    expect(values.get("sub.fallback")).toBe(-1);
    expect(errors.get("sub.scaled")).toEqual({ error_cls: "Skip", error: "Dependencies returned no data:\n- 'sub.__missing__.xgm.intensity'" });
    expect(errors.get("sub.extra")?.error_cls).toBe("Skip");
    expect([...values.keys()].some((n) => n.includes("__missing__"))).toBe(false);
  });

  it("Pipeline.set_default chooses exactly the context's variables; Pipeline.default().add adds to them", () => {
    const explicit = setup(`from damnit_ctx import Variable, Group, Pipeline

@Variable()
def a(run): return 1

@Variable()
def not_chosen(run): return 2

@Group
class G:
    @Variable()
    def v(self, run, x: "var#a"): return x + 10

g = G()
Pipeline.set_default(Pipeline().add(a, [g, G(name="extra")]))
`);
    const r = damnit(["extract", String(PROPOSAL), String(RUN), "raw", "--mock"], { cwd: explicit });
    expect(r.status, r.stderr).toBe(0);
    const names = withRunsDb(explicit, (db) => db.prepare("SELECT name, value FROM run_variables WHERE run = ? ORDER BY name").all(RUN));
    expect(names).toEqual([
      { name: "a", value: 1 },
      { name: "extra.v", value: 11 },
      { name: "g.v", value: 11 },
    ]);

    const added = setup(`from damnit_ctx import Variable, Group, Pipeline

@Variable()
def a(run): return 1

@Group
class G:
    @Variable()
    def v(self, run): return 5

Pipeline.default().add(G(name="only_in_pipeline"))
`);
    const read = damnit(["read-context", "--json"], { cwd: added });
    expect(read.status, read.stderr).toBe(0);
    expect((JSON.parse(read.stdout) as { variables: Array<{ name: string }> }).variables.map((v) => v.name)).toEqual(["a", "only_in_pipeline.v"]);
    writeFileSync(join(added, "context.py"), "from damnit_ctx import Variable, Group, Pipeline\n\n@Group\nclass G:\n    @Variable()\n    def v(self, run): return 5\n\nPipeline.default().add(G())\n");
    const unnamed = damnit(["read-context"], { cwd: added });
    expect(unnamed.status).toBe(1);
    expect(unnamed.stderr).toContain("GroupError: A G group has no name");
  });

  it("each GroupError is a clear problem of the context file", () => {
    const cases: Array<[string, string]> = [
      ["@Group\nclass G:\n    name: str = 'x'\n", "GroupError: Group classes cannot define reserved fields: name"],
      ["@Group\nclass G:\n    def sep(self): pass\n", "GroupError: Group classes cannot override reserved attributes: sep"],
      [
        "@Group\nclass G:\n    @Variable()\n    def v(self, run): return 1\n\ng = G()\nh = g\n",
        "GroupError: A G group is both g and h; give it a name (name=...)",
      ],
      [
        "@Group\nclass G:\n    @Variable()\n    def v(self, run): return 1\n\ng = G(name='same')\nh = G(name='same')\n",
        "GroupError: Two groups are named 'same'",
      ],
      [
        "@Group\nclass G:\n    n: int = 3\n    @Variable()\n    def v(self, run, x: 'self#n'): return x\n\ng = G()\n",
        "GroupError: g.v: 'self#n' is a int, not a Variable",
      ],
      [
        "@Variable()\ndef g(run): return 1\n\n@Group\nclass G:\n    @Variable(name='x')\n    def x(self, run): return 1\n\ng2 = G(name='g')\n@Variable(name='g.x')\ndef clash(run): return 2\n",
        "GroupError: Duplicate variable name 'g.x'",
      ],
    ];
    for (const [body, message] of cases) {
      const dir = setup(`from damnit_ctx import Variable, Group\n\n${body}`);
      const r = damnit(["read-context"], { cwd: dir });
      expect(r.status, body).toBe(1);
      expect(r.stderr, body).toContain(message);
    }
  });
});
