/**
 * Python context results across the process boundary, stored as DAMNIT stores them (issue 12 item 3): numpy
 * arrays and scalars of every dtype (complex too) bit for bit, Python numbers keeping their type, xarray
 * Datasets as NetCDF4 groups, matplotlib figures as their RGBA image with a PNG thumbnail, lists through
 * np.asarray, transient results of any type. The reference is computed in the same interpreter by calling the
 * context's own functions (numpy computes both sides). Debian's /usr/bin/python3 with numpy, xarray, h5py,
 * matplotlib; fails rather than skips with REQUIRE_PYTHON_CONTEXT=1.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { damnit } from "./helpers/cli.js";
import { withRunsDb } from "./helpers/db.js";
import { REPO_ROOT } from "./helpers/paths.js";
import { tempDir } from "./helpers/tmp.js";

const PYTHON = "/usr/bin/python3";
const PROPOSAL = 4321;
const RUN = 5;
const PYTHON_DIR = join(REPO_ROOT, "python");

function pythonReady(): boolean {
  const probe = spawnSync(PYTHON, ["-c", "import numpy, extra_data, xarray, h5py, h5netcdf, matplotlib"], { timeout: 60_000 });
  if (probe.status === 0) return true;
  if (process.env.REQUIRE_PYTHON_CONTEXT === "1") {
    throw new Error("REQUIRE_PYTHON_CONTEXT=1 but /usr/bin/python3 cannot import numpy, extra_data, xarray, h5py, h5netcdf and matplotlib");
  }
  console.warn("skipping Python result tests: /usr/bin/python3 lacks numpy, extra_data, xarray, h5py, h5netcdf or matplotlib");
  return false;
}

const ready = pythonReady();

/** Make a database with `context`, extract the mock run, and return the directory and the run file. */
function extracted(context: string): { dir: string; file: string; stderr: string } {
  const dir = tempDir("damnit-pyres-");
  expect(damnit(["proposal", String(PROPOSAL), dir]).status).toBe(0);
  expect(damnit(["db-config", "context_python", PYTHON], { cwd: dir }).status).toBe(0);
  writeFileSync(join(dir, "context.py"), context);
  const r = damnit(["extract", String(PROPOSAL), String(RUN), "raw", "--mock"], { cwd: dir });
  expect(r.status, r.stderr).toBe(0);
  return { dir, file: join(dir, "extracted_data", `p${PROPOSAL}_r${RUN}.h5`), stderr: r.stderr };
}

/**
 * Run `script` in Debian's Python with the context file loaded as module `ctx` (damnit_ctx importable), `h5py`,
 * `np` and `json` imported, `path` the run file; what it prints is parsed as JSON.
 */
function check(dir: string, file: string, script: string): unknown {
  const prelude = [
    "import json, sys, importlib.util",
    "import numpy as np, h5py",
    `sys.path.insert(0, ${JSON.stringify(PYTHON_DIR)})`,
    `spec = importlib.util.spec_from_file_location("ctx", ${JSON.stringify(join(dir, "context.py"))})`,
    "ctx = importlib.util.module_from_spec(spec); spec.loader.exec_module(ctx)",
    `path = ${JSON.stringify(file)}`,
  ].join("\n");
  const r = spawnSync(PYTHON, ["-c", `${prelude}\n${script}`], { encoding: "utf8", timeout: 120_000, cwd: dir });
  if (r.status !== 0) throw new Error(`check script failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

interface Row {
  name: string;
  value: unknown;
  kind: string;
  summary_type: string | null;
  attributes: string | null;
}

function rows(dir: string): Map<string, Row> {
  return withRunsDb(dir, (db) => {
    const all = db
      .prepare("SELECT name, value, typeof(value) AS kind, summary_type, attributes FROM run_variables WHERE run = ? ORDER BY name")
      .all(RUN) as Row[];
    return new Map(all.map((r) => [r.name, r]));
  });
}

const DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "complex64", "complex128", "bool"];

describe.skipIf(!ready)("Python results stored as DAMNIT stores them", () => {
  it("numpy arrays and scalars of every dtype, complex too, bit for bit; Python numbers keep their type", () => {
    const arrays = DTYPES.map(
      (dt) => `
@Variable()
def arr_${dt}(run):
    rng = np.random.default_rng(${DTYPES.indexOf(dt)})
    x = rng.normal(size=(3, 4)) * 1000 + (1j * rng.normal(size=(3, 4)) if np.dtype("${dt}").kind == "c" else 0)
    return (x > 0) if "${dt}" == "bool" else x.astype("${dt}")

@Variable()
def one_${dt}(run):
    return np.${dt === "bool" ? "bool_" : dt}(${dt.startsWith("complex") ? "1.25 - 0.1j" : dt === "bool" ? "True" : dt.startsWith("float") ? "0.1" : "7"})
`,
    ).join("");
    const context = `import numpy as np
from damnit_ctx import Variable
${arrays}
@Variable()
def py_float(run): return 3.0

@Variable()
def py_int(run): return 3

@Variable()
def py_complex(run): return 2.5 + 1.5j

@Variable()
def big_uint(run): return np.uint64(2**63 - 1)

@Variable()
def trend_complex(run): return np.exp(1j * np.linspace(0, 3, 50))

@Variable()
def a_list(run): return [1.5, 2.5, 4.0]

@Variable()
def fortran(run): return np.asfortranarray(np.arange(12.0).reshape(3, 4))

@Variable()
def big_endian(run): return np.arange(5, dtype=">i4")

@Variable()
def with_units(run):
    import xarray as xr
    return xr.DataArray(np.arange(4.0), dims=["x"], attrs={"units": "mm", "scale": np.float32(2.5)})
`;
    const { dir, file } = extracted(context);
    const seen = check(
      dir,
      file,
      `import damnit_ctx
names = [d.name for d in damnit_ctx.VARIABLES]
f = h5py.File(path, "r")
out = {}
for n in names:
    if n == "with_units":
        continue
    want = np.asarray(getattr(ctx, n).func(None))
    if n == "big_endian":
        want = want.astype("<i4")
    got = f[n]["data"][()]
    got = np.asarray(got)
    # (h5py reads the {r, i} compound DAMNIT's complex numbers are stored as back as numpy complex)
    same = got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == np.ascontiguousarray(want).tobytes()
    red = f[".reduced"][n][()] if n in f[".reduced"] else None
    out[n] = {"same": bool(same), "dtype": str(want.dtype),
              "reduced_same": None if red is None or want.ndim != 0 else bool(np.asarray(red).tobytes() == want.tobytes())}
print(json.dumps(out))`,
    ) as Record<string, { same: boolean; dtype: string; reduced_same: boolean | null }>;
    expect(Object.keys(seen).length).toBe(2 * DTYPES.length + 8);
    for (const [name, s] of Object.entries(seen)) {
      expect(s.same, `${name} (${s.dtype}) stored as numpy computes it`).toBe(true);
      if (name.startsWith("one_") || name.startsWith("py_") || name === "big_uint") expect(s.reduced_same, `${name} summary`).toBe(true);
    }
    const db = rows(dir);
    // SQLite: floats REAL (3.0 stays a float), ints INTEGER, complex scalars DAMNIT's 16-byte blob
    expect([db.get("py_float")!.kind, db.get("py_float")!.value]).toEqual(["real", 3]);
    expect([db.get("py_int")!.kind, db.get("py_int")!.value]).toEqual(["integer", 3]);
    expect(db.get("one_float32")!.value).toBe(Math.fround(0.1));
    expect(db.get("one_float64")!.value).toBe(0.1);
    const complex = db.get("py_complex")!;
    expect(complex.summary_type).toBe("complex");
    expect(complex.kind).toBe("blob");
    const bytes = complex.value as Buffer;
    expect([bytes.length, bytes.readDoubleLE(0), bytes.readDoubleLE(8)]).toEqual([16, 2.5, 1.5]);
    const c64 = db.get("one_complex64")!.value as Buffer;
    expect([c64.readDoubleLE(0), c64.readDoubleLE(8)]).toEqual([1.25, Math.fround(-0.1)]);
    expect(db.get("trend_complex")!.summary_type).toBe("trendline");
    expect(db.get("arr_complex128")!.value).toBe("<thumbnail error>");
    expect(JSON.parse(db.get("with_units")!.attributes!).units).toBe("mm");
  });

  it("an xarray Dataset as a NetCDF4 group that xarray reads back identical, its cell DAMNIT's 'Dataset (…MB)'", () => {
    const { dir, file } = extracted(`import numpy as np, xarray as xr
from damnit_ctx import Variable

@Variable()
def scan(run):
    t = np.arange(10000, 10020, dtype=np.uint64)
    return xr.Dataset(
        {"signal": (("trainId", "pulse"), np.arange(60.0).reshape(20, 3)),
         "SPB/XGM:flux": ("trainId", np.linspace(0, 1, 20, dtype=np.float32)),
         "flag": ("trainId", np.arange(20) % 3 == 0),
         "counts": ("pulse", np.array([4, 5, 6], dtype=np.int16))},
        coords={"trainId": t}, attrs={"motor": "SAMPLE_X", "step": 0.5})
`);
    const seen = check(
      dir,
      file,
      `import xarray as xr
want = ctx.scan.func(None)
got = xr.open_dataset(path, group="scan", engine="h5netcdf").load()
objtype_attr = got.attrs.pop("_damnit_objtype")  # on DAMNIT's group too
want = want.rename_vars({"SPB/XGM:flux": "SPB_XGM:flux"})
with h5py.File(path, "r") as f:
    objtype = f["scan"].attrs["_damnit_objtype"]
    cell = f[".reduced/scan"][()].decode()
    fill = str(f["scan/signal"].attrs["_FillValue"])
print(json.dumps({"identical": bool(got.identical(want)), "objtype": objtype, "cell": cell, "fill": fill,
                  "xr_fill": str(got["signal"].encoding.get("_FillValue")),
                  "want_cell": f"Dataset ({want.nbytes / 1e6:.2f}MB)", "dtypes": {k: str(v.dtype) for k, v in got.variables.items()}}))`,
    ) as Record<string, unknown>;
    expect(seen.identical).toBe(true);
    expect(seen.objtype).toBe("dataset");
    expect(seen.cell).toBe(seen.want_cell);
    // NetCDF's fill value is NaN, as DAMNIT's (the HDF5-level fill value h5wasm cannot set: README)
    expect([seen.fill, seen.xr_fill]).toEqual(["nan", "nan"]);
    expect(seen.dtypes).toEqual({ signal: "float64", "SPB_XGM:flux": "float32", flag: "bool", counts: "int16", trainId: "uint64" });
    expect(rows(dir).get("scan")!.value).toBe(seen.want_cell);
  });

  it("a matplotlib figure (or Axes) as its RGBA image with the PNG thumbnail DAMNIT makes; a figure preview too", () => {
    const { dir, file } = extracted(`import numpy as np
from matplotlib.figure import Figure
from damnit_ctx import Variable, Cell

def make(width=6.4, height=4.8):
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    ax.plot(np.sin(np.linspace(0, 6, 100)))
    return fig

@Variable()
def plot(run): return make()

@Variable()
def axes(run): return make(3, 2).axes[0]

@Variable()
def with_preview(run): return Cell(np.arange(5.0), preview=make(2, 2))
`);
    const seen = check(
      dir,
      file,
      `import io
from matplotlib.backends.backend_agg import FigureCanvasAgg
def damnit_like(fig):
    shape = fig.get_size_inches() * fig.dpi
    bio = io.BytesIO()
    fig.savefig(bio, dpi=fig.dpi * min(1, 300 / max(shape)), format="png")
    canvas = FigureCanvasAgg(fig); canvas.draw()
    return bio.getvalue(), np.asarray(canvas.buffer_rgba())
out = {}
with h5py.File(path, "r") as f:
    for name, fig in [("plot", ctx.make()), ("axes", ctx.make(3, 2))]:
        png, rgba = damnit_like(fig)
        got = f[name]["data"][()]
        out[name] = {"objtype": f[name].attrs["_damnit_objtype"], "shape": list(got.shape), "dtype": str(got.dtype),
                     "image_same": bool(np.array_equal(got, rgba)), "png_same": f[".reduced"][name][()].tobytes() == png}
    png, rgba = damnit_like(ctx.make(2, 2))
    p = f[".preview/with_preview"]
    out["with_preview"] = {"objtype": p.attrs["_damnit_objtype"], "image_same": bool(np.array_equal(p[()], rgba)),
                           "png_same": f[".reduced/with_preview"][()].tobytes() == png}
print(json.dumps(out))`,
    ) as Record<string, Record<string, unknown>>;
    expect(seen.plot).toEqual({ objtype: "image", shape: [480, 640, 4], dtype: "uint8", image_same: true, png_same: true });
    expect(seen.axes).toEqual({ objtype: "image", shape: [200, 300, 4], dtype: "uint8", image_same: true, png_same: true });
    expect(seen.with_preview).toEqual({ objtype: "image", image_same: true, png_same: true });
    const db = rows(dir);
    const png = db.get("plot")!.value as Buffer;
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    // PNG IHDR: width and height, the larger side scaled to 300 px
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([300, 225]);
  });

  it("a result HDF5 cannot hold as DAMNIT stores it is that variable's TypeError; the others are stored", () => {
    const { dir } = extracted(`import numpy as np
from damnit_ctx import Variable

@Variable()
def strings(run): return np.array(["a", "bc"])

@Variable()
def times(run): return np.array(["2026-01-01"], dtype="datetime64[D]")

@Variable()
def objects(run): return np.array([1, "x", None], dtype=object)

@Variable()
def mixed_list(run): return [1, "two"]

@Variable()
def fine(run): return 1.25
`);
    const db = rows(dir);
    for (const name of ["strings", "times", "objects", "mixed_list"]) {
      const attrs = JSON.parse(db.get(name)!.attributes!) as { error: string; error_cls: string };
      expect(attrs.error_cls, name).toBe("TypeError");
      expect(attrs.error, name).toMatch(/cannot be saved/);
    }
    expect(db.get("fine")!.value).toBe(1.25);
  });

  it("a transient result may be any Python object; dependents get it as it is", () => {
    const { dir } = extracted(`from damnit_ctx import Variable

class Thing:
    def __init__(self, n): self.n = n

@Variable(transient=True)
def thing(run): return Thing(20)

@Variable(transient=True)
def mapping(run): return {"a": [1, 2], "b": object()}

@Variable()
def uses(run, t: "var#thing", m: "var#mapping"): return t.n + len(m["a"])
`);
    const db = rows(dir);
    expect(db.get("uses")!.value).toBe(22);
    expect(db.has("thing")).toBe(false);
    expect(db.has("mapping")).toBe(false);
  });
});
