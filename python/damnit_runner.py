"""damnit's Python context runner: loads a context.py, describes its variables and computes them one at a time on
request from damnit's (Node) context runner, which checks, orders and selects them as for TypeScript contexts.

Messages travel on fd 3 (requests) and fd 4 (replies), so the context's prints stay in the job's log. A frame is a
4-byte big-endian length, a JSON header, then the binary blobs the header lists (numpy arrays as .npy bytes):
no pickle crosses the boundary. While a variable runs, its calibration.get/add (damnit_ctx/calibration.py) send
a request marked `callback` instead of the result and read Node's answer from fd 3 before the variable goes on.
"""
import io
import json
import os
import struct
import sys
import threading
import time
import traceback

REQ = os.fdopen(3, "rb", buffering=0)
REP = os.fdopen(4, "wb", buffering=0)


def read_exact(n):
    chunks = []
    while n > 0:
        chunk = REQ.read(n)
        if not chunk:
            sys.exit(0)
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive():
    (size,) = struct.unpack(">I", read_exact(4))
    return json.loads(read_exact(size))


def send(header, blobs=()):
    header = dict(header, blobs=[len(b) for b in blobs])
    data = json.dumps(header, allow_nan=True).encode()
    REP.write(struct.pack(">I", len(data)) + data + b"".join(blobs))


def watch_parent(parent):
    # The Node runner may be killed (time-out, memory); we must not outlive it.
    def loop():
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(0.5)
    threading.Thread(target=loop, daemon=True).start()


def die_with_parent():
    # Killed with the runner even while native code holds the interpreter lock (watch_parent then cannot run).
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def missing_modules():
    import importlib.util
    return [m for m in ("numpy", "extra_data") if importlib.util.find_spec(m) is None]


DEBIAN = {"numpy": "python3-numpy", "extra_data": "python3-extra-data",
          "xarray": "python3-xarray", "matplotlib": "python3-matplotlib", "h5py": "python3-h5py"}


def problem_of(exc, file):
    if isinstance(exc, SyntaxError):
        col = f", column {exc.offset}" if exc.offset else ""
        return {"file": exc.filename or file, "line": exc.lineno,
                "message": f"syntax error: {exc.msg} (line {exc.lineno}{col})"}
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if f.filename == file]
    line = frames[-1].lineno if frames else None
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        root = exc.name.split(".")[0]
        hint = f" (install the Debian package {DEBIAN[root]})" if root in DEBIAN else ""
        return {"file": file, "line": line,
                "message": f"cannot import '{exc.name}': it is not installed for {sys.executable}{hint}"}
    return {"file": file, "line": line,
            "message": f"error while evaluating the context file: {type(exc).__name__}: {exc}"}


STATE = {"values": {}, "defs": {}, "run": None, "open": None, "mymdc_args": {}, "mymdc": {}}
MYMDC_FIELDS = ("sample_name", "run_type", "techniques")


def mymdc(field):
    """A run's field from the metadata catalogue, through extra_proposal (as DAMNIT), fetched once per run."""
    if field not in STATE["mymdc"]:
        try:
            from extra_proposal import Proposal
        except ImportError as exc:
            raise ModuleNotFoundError(f"mymdc#{field} needs the module extra_proposal, which is not installed for "
                                      f"{sys.executable} ({exc})") from None
        spec = STATE["open"] or {}
        run = Proposal(spec.get("proposal"))[spec.get("run")]
        STATE["mymdc"][field] = getattr(run, field)()
    return STATE["mymdc"][field]


def describe(file):
    import damnit_ctx
    damnit_ctx.VARIABLES.clear()
    damnit_ctx.PIPELINE_STATE.update(pipeline=None, explicit=False)
    STATE["values"].clear()
    try:
        source = open(file, encoding="utf-8").read()
        code = compile(source, file, "exec")
        # A real module (dataclasses, hence @Group, look the defining module up in sys.modules)
        import types
        module = types.ModuleType("context")
        module.__file__ = file
        sys.modules["context"] = module
        namespace = module.__dict__
        exec(code, namespace)
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is a problem to report
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"problems": [problem_of(exc, file)]}
    import inspect
    from damnit_ctx import GroupError
    from damnit_groups import Expanded, expand
    from damnit_ctx import Definition, is_group_instance
    entries = []
    pipeline = damnit_ctx.PIPELINE_STATE["pipeline"]
    explicit = damnit_ctx.PIPELINE_STATE["explicit"]
    added = pipeline.items if pipeline is not None else []
    added_groups = [item for item in added if is_group_instance(item)]
    # Pipeline.set_default(...): exactly its variables and groups; otherwise every @Variable of the file, and
    # what Pipeline.default().add(...) added.
    top_level = [item for item in added if isinstance(item, Definition)] if explicit else list(damnit_ctx.VARIABLES)
    if not explicit:
        top_level += [item for item in added if isinstance(item, Definition) and not any(item is d for d in top_level)]
    for d in top_level:
        if d.owner is not None:
            continue  # a Group's variable: it becomes one per group instance, below
        options = dict(d.options)
        options.pop("name", None)
        if "description" not in options and d.func.__doc__:
            options["description"] = inspect.cleandoc(d.func.__doc__)
        params = list(inspect.signature(d.func).parameters.values())[1:]
        entries.append(Expanded(d.name, options, d.func, d.line if d.file == file else None, params, {}))
    try:
        entries += expand(namespace, inspect.signature, added_groups, added_groups if explicit else None)
    except GroupError as exc:
        return {"problems": [{"file": file, "message": f"GroupError: {exc}"}]}
    variables = []
    STATE["defs"] = {}
    STATE["mymdc_args"] = {}
    for e in entries:
        deps = {}
        for p in e.params:
            ann = e.annotations.get(p.name, p.annotation)
            if ann is inspect.Parameter.empty:
                spec = None
            elif isinstance(ann, str):
                spec = ann
            else:
                spec = repr(ann)
            if isinstance(spec, str) and spec.startswith("mymdc#"):
                # Filled in here, from the metadata catalogue (extra_proposal), when the variable runs.
                field = spec[len("mymdc#"):]
                if field not in MYMDC_FIELDS:
                    return {"problems": [{"file": file, "line": e.line,
                                          "message": f"{e.name}: argument '{p.name}': unknown mymdc field '{field}' "
                                                     f"(known: {', '.join(MYMDC_FIELDS)})"}]}
                STATE["mymdc_args"].setdefault(e.name, {})[p.name] = field
                continue
            if p.default is not inspect.Parameter.empty:
                # (the Python default itself is used when the dependency is missing: see call())
                try:
                    json.dumps(p.default)
                    deps[p.name] = {"from": spec, "default": p.default}
                except (TypeError, ValueError):
                    deps[p.name] = {"from": spec, "default": None}
            else:
                deps[p.name] = spec
        options = dict(e.options)
        if deps:
            options["deps"] = deps
        if e.name in STATE["defs"]:
            return {"problems": [{"file": file, "line": e.line, "message": f"GroupError: Duplicate variable name {e.name!r}"}]}
        STATE["defs"][e.name] = e
        variables.append({"name": e.name, "options": options, "line": e.line})
    return {"variables": variables}


class LazyRun:
    """The run's DataCollection, opened on first use (a variable that does not touch its run needs no data)."""

    def __getattr__(self, name):
        return getattr(open_run(), name)

    def __getitem__(self, item):
        return open_run()[item]


def open_run():
    if STATE["run"] is None:
        spec = STATE["open"]
        if spec is None:
            raise RuntimeError("no run to open")
        import extra_data
        STATE["run"] = extra_data.open_run(spec["proposal_path"], spec["run"],
                                           data="raw" if spec["data"] == "raw" else "all")
    return STATE["run"]


def plain_attrs(attrs):
    """Attributes a NetCDF variable can hold as damnit stores them: strings and numbers."""
    out = {}
    for key, value in attrs.items():
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            out[str(key)] = value
    return out


def figure_png(fig):
    """DAMNIT's thumbnail of a figure: PNG at a DPI that makes the larger side at most 300 px; None if it fails."""
    try:
        shape = fig.get_size_inches() * fig.dpi
        zoom = min(1, 300 / max(shape))
        out = io.BytesIO()
        fig.savefig(out, dpi=fig.dpi * zoom, format="png")
        return out.getvalue()
    except Exception:  # noqa: BLE001 - DAMNIT logs it and shows "<thumbnail error>"
        traceback.print_exc()
        return None


class Encoder:
    def __init__(self):
        self.blobs = []

    def npy(self, array):
        import numpy as np
        array = np.asarray(array)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"an array of dtype {array.dtype} cannot be saved; arrays must be numeric or boolean")
        if array.dtype.kind == "f" and array.dtype.itemsize == 2:
            array = array.astype("f4")
        # (np.ascontiguousarray would make a 0-d array 1-d)
        array = array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)
        buf = io.BytesIO()
        np.lib.format.write_array(buf, array, allow_pickle=False)
        self.blobs.append(buf.getvalue())
        return {"t": "npy", "blob": len(self.blobs) - 1}

    def dataarray(self, value, name=None):
        coords = {}
        for dim in value.dims:
            if dim in value.coords:
                coords[str(dim)] = self.npy(value.coords[dim].values)
        if name is None and value.name is not None:
            name = str(value.name)
        return {"t": "labelled", "data": self.npy(value.values), "dims": [str(d) for d in value.dims],
                "coords": coords, "name": name, "attrs": plain_attrs(value.attrs)}

    def encode(self, value, what="the return value", thumbnail=True):
        import numpy as np
        from damnit_ctx import Cell
        if value is None:
            return {"t": "none"}
        if isinstance(value, Cell):
            default_summary = value.summary_value is None
            return {"t": "cell", "summary": value.summary,
                    "data": self.encode(value.data, thumbnail=default_summary and value.preview is None),
                    "summary_value": self.encode(value.summary_value, "summary_value"),
                    "preview": self.encode(value.preview, "preview", thumbnail=default_summary), "bold": value.bold,
                    "background": value.background if not hasattr(value.background, "tolist") else value.background.tolist(),
                    "units": value.units}
        if isinstance(value, str):
            return {"t": "str", "v": value}
        if isinstance(value, np.generic) and value.dtype.kind in "US":
            return {"t": "str", "v": str(value)}
        if isinstance(value, (bool, int, float, complex, np.generic, np.ndarray)):
            # As DAMNIT's Cell does: np.asarray gives the dtype it stores (int64, float64, complex128, the numpy
            # scalar's own), so a float stays a float and every value keeps its bits.
            array = np.asarray(value)
            if array.dtype.hasobject:
                raise TypeError(f"{what}: the value {value!r} cannot be saved (it does not fit in a 64-bit number)")
            return self.npy(array)
        mod = type(value).__module__ or ""
        if mod.startswith("xarray"):
            import xarray as xr
            if isinstance(value, xr.DataArray):
                return self.dataarray(value)
            if isinstance(value, xr.Dataset):
                # DAMNIT's save_dataset_netcdf: every data variable (with its coordinates), the Dataset's attrs
                return {"t": "dataset", "variables": [self.dataarray(value[name], str(name)) for name in value.data_vars],
                        "attrs": plain_attrs(value.attrs)}
        if mod.startswith("matplotlib"):
            from matplotlib.figure import Figure
            from matplotlib.axes import Axes
            fig = value.get_figure() if isinstance(value, Axes) else value
            if isinstance(fig, Figure):
                # As DAMNIT: the table cell is the figure as PNG (larger side at most 300 px, made first, as
                # Cell.get_summary runs before the data is stored), the data its RGBA image (figure2array).
                png = figure_png(fig) if thumbnail else None
                from matplotlib.backends.backend_agg import FigureCanvasAgg
                canvas = FigureCanvasAgg(fig)
                canvas.draw()
                image = self.npy(np.asarray(canvas.buffer_rgba()))
                return {"t": "image", "data": image,
                        "thumbnail": None if png is None else self.npy(np.frombuffer(png, dtype=np.uint8))}
        if isinstance(value, (list, tuple)):
            # DAMNIT's Cell: anything else goes through np.asarray, which must give a numeric array
            array = np.asarray(value)
            if not array.dtype.hasobject and array.dtype.kind in "biufc":
                return self.npy(array)
        raise TypeError(f"{what} of type {type(value).__module__}.{type(value).__qualname__} cannot be saved; "
                        "return a number, string, numpy array, xarray DataArray, matplotlib figure or Cell")


def calibration_constants(c):
    """A `cal#<detector>/<ctype>` dependency: CalibrationConstants, or the dependency's default."""
    from damnit_ctx.calibration import CalibrationConstants
    return c["value"] if "value" in c else CalibrationConstants(c)


def exchange(header, blobs=()):
    """A variable's request to damnit (Node) in the middle of its call (calibration.get/add): send it, wait for the
    answer. Node answers it before it reads anything else from us."""
    send(dict(header, callback=True), blobs)
    return receive()


def call(request):
    from damnit_ctx import Cell
    from damnit_ctx.calibration import set_channel
    d = STATE["defs"][request["name"]]
    kwargs = {}
    for arg, spec in request["args"].items():
        if "var" in spec:
            kwargs[arg] = STATE["values"][spec["var"]]
        elif "vars" in spec:
            kwargs[arg] = {n: STATE["values"][n] for n in spec["vars"]}
        elif "default" in spec:
            pass  # a missing dependency: the function's own default applies
        elif "cal" in spec:
            kwargs[arg] = calibration_constants(spec["cal"])
        else:
            kwargs[arg] = spec["value"]
    try:
        for arg, field in STATE["mymdc_args"].get(d.name, {}).items():
            kwargs[arg] = mymdc(field)
        set_channel(exchange)
        try:
            result = d.func(LazyRun(), **kwargs)
        finally:
            set_channel(None)
        enc = Encoder()
        # A transient result is never stored, so it may be any object: it stays here for its dependents.
        encoded = {"t": "kept"} if request.get("transient") and result is not None else enc.encode(result)
    except Exception as exc:  # noqa: BLE001 - a variable's failure is its error
        cls = type(exc).__name__
        tb = traceback.format_exc()
        send({"ok": False, "cls": cls, "message": str(exc), "traceback": tb})
        return
    value = result.data if isinstance(result, Cell) else result
    if value is not None:
        STATE["values"][d.name] = value
    send({"ok": True, "result": encoded}, enc.blobs)


def main():
    die_with_parent()
    watch_parent(int(os.environ.get("DAMNIT_PARENT_PID", os.getppid())))
    limit = os.environ.get("DAMNIT_MEMORY_LIMIT_MB")
    if limit:
        import resource
        size = int(limit) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    os.umask(0)
    send({"ok": True, "missing": missing_modules(), "python": sys.executable, "version": sys.version.split()[0]})
    while True:
        request = receive()
        op = request["op"]
        if op == "describe":
            send(describe(request["file"]))
        elif op == "open":
            # this job's lookup recorder (DAMNIT_LOOKUP_*), and none left from the previous job
            for key in [k for k in os.environ if k.startswith("DAMNIT_LOOKUP_")]:
                del os.environ[key]
            os.environ.update(request.get("lookup_env") or {})
            STATE["open"] = request
            STATE["run"] = None
            STATE["values"].clear()
            STATE["mymdc"].clear()
            send({"ok": True})
        elif op == "call":
            call(request)


if __name__ == "__main__":
    main()
