"""damnit's Python context runner: loads a context.py, describes its variables and computes them one at a time on
request from damnit's (Node) context runner, which checks, orders and selects them as for TypeScript contexts.

Messages travel on fd 3 (requests) and fd 4 (replies), so the context's prints stay in the job's log. A frame is a
4-byte big-endian length, a JSON header, then the binary blobs the header lists (numpy arrays as .npy bytes):
no pickle crosses the boundary.
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


def missing_modules():
    import importlib.util
    return [m for m in ("numpy", "extra_data") if importlib.util.find_spec(m) is None]


DEBIAN = {"numpy": "python3-numpy", "extra_data": "EXtra-data (pip install extra_data; no Debian package)",
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
        hint = f" (install {DEBIAN[root]})" if root in DEBIAN else ""
        return {"file": file, "line": line,
                "message": f"cannot import '{exc.name}': it is not installed for {sys.executable}{hint}"}
    return {"file": file, "line": line,
            "message": f"error while evaluating the context file: {type(exc).__name__}: {exc}"}


STATE = {"values": {}, "defs": {}, "run": None, "open": None}


def describe(file):
    import damnit_ctx
    damnit_ctx.VARIABLES.clear()
    STATE["values"].clear()
    try:
        source = open(file, encoding="utf-8").read()
        code = compile(source, file, "exec")
        namespace = {"__name__": "context", "__file__": file}
        exec(code, namespace)
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is a problem to report
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"problems": [problem_of(exc, file)]}
    import inspect
    variables = []
    STATE["defs"] = {}
    for d in damnit_ctx.VARIABLES:
        deps = {}
        params = list(inspect.signature(d.func).parameters.values())
        for p in params[1:]:
            ann = p.annotation
            if ann is inspect.Parameter.empty:
                spec = None
            elif isinstance(ann, str):
                spec = ann
            else:
                spec = repr(ann)
            if p.default is not inspect.Parameter.empty:
                try:
                    json.dumps(p.default)
                    deps[p.name] = {"from": spec, "default": p.default}
                except (TypeError, ValueError):
                    deps[p.name] = {"from": spec, "default": None}
            else:
                deps[p.name] = spec
        options = dict(d.options)
        options.pop("name", None)
        if "description" not in options and d.func.__doc__:
            options["description"] = inspect.cleandoc(d.func.__doc__)
        if deps:
            options["deps"] = deps
        STATE["defs"][d.name] = d
        variables.append({"name": d.name, "options": options, "line": d.line if d.file == file else None,
                          "nargs": len(params)})
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
        array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<")))
        buf = io.BytesIO()
        np.lib.format.write_array(buf, array, allow_pickle=False)
        self.blobs.append(buf.getvalue())
        return {"t": "npy", "blob": len(self.blobs) - 1}

    def encode(self, value, what="the return value"):
        import numpy as np
        from damnit_ctx import Cell
        if value is None:
            return {"t": "none"}
        if isinstance(value, Cell):
            return {"t": "cell", "data": self.encode(value.data), "summary": value.summary,
                    "summary_value": self.encode(value.summary_value, "summary_value"),
                    "preview": self.encode(value.preview, "preview"), "bold": value.bold,
                    "background": value.background if not hasattr(value.background, "tolist") else value.background.tolist(),
                    "units": value.units}
        if isinstance(value, str):
            return {"t": "str", "v": value}
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            value = value.item()
        if isinstance(value, bool):
            return {"t": "bool", "v": value}
        if isinstance(value, (int, float)) and abs(value) < 2**53 or isinstance(value, float):
            return {"t": "num", "v": repr(float(value))}
        if isinstance(value, (bool, int, float, complex, np.generic, np.ndarray)):
            if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**64:
                raise OverflowError(f"{what}: the integer {value} does not fit in 64 bits")
            if isinstance(value, np.generic) and value.dtype.kind in "US":
                return {"t": "str", "v": str(value)}
            return self.npy(value)
        mod = type(value).__module__ or ""
        if mod.startswith("xarray"):
            import xarray as xr
            if isinstance(value, xr.DataArray):
                coords = {}
                for name in value.dims:
                    if name in value.coords:
                        coords[name] = self.npy(value.coords[name].values)
                attrs = {k: v for k, v in value.attrs.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
                return {"t": "labelled", "data": self.npy(value.values), "dims": [str(d) for d in value.dims],
                        "coords": coords, "name": None if value.name is None else str(value.name), "attrs": attrs}
            if isinstance(value, xr.Dataset):
                raise TypeError(f"{what} is an xarray Dataset, which damnit cannot save yet; return one DataArray")
        if mod.startswith("matplotlib"):
            from matplotlib.figure import Figure
            from matplotlib.axes import Axes
            fig = value.figure if isinstance(value, Axes) else value
            if isinstance(fig, Figure):
                # DAMNIT stores a figure as its RGBA image (figure2array)
                from matplotlib.backends.backend_agg import FigureCanvasAgg
                canvas = FigureCanvasAgg(fig)
                canvas.draw()
                return self.npy(np.asarray(canvas.buffer_rgba()).copy())
        raise TypeError(f"{what} of type {type(value).__module__}.{type(value).__qualname__} cannot be saved; "
                        "return a number, string, numpy array, xarray DataArray, matplotlib figure or Cell")


class CalibrationConstants:
    """A `cal#<detector>/<ctype>` dependency: `data` (numpy array, or str for geometry) and where it came from."""

    def __init__(self, c):
        self.dtype, self.shape, self.detname, self.ctype = c["dtype"], tuple(c["shape"]), c["detname"], c["ctype"]
        self.range, self.version, self.tsprod, self.level = c["range"], c["version"], c["tsprod"], c["level"]
        if "text" in c:
            self.data = self.text = c["text"]
        else:
            import base64
            import numpy as np
            self.data = np.frombuffer(base64.b64decode(c["b64"]), dtype=np.dtype(c["dtype"]).newbyteorder("<")).reshape(self.shape)

    def __repr__(self):
        return f"<CalibrationConstants {self.detname} {self.ctype} range {self.range} version {self.version} ({self.level})>"


def calibration_constants(c):
    return c["value"] if "value" in c else CalibrationConstants(c)


def call(request):
    from damnit_ctx import Cell
    d = STATE["defs"][request["name"]]
    kwargs = {}
    for arg, spec in request["args"].items():
        if "var" in spec:
            kwargs[arg] = STATE["values"][spec["var"]]
        elif "vars" in spec:
            kwargs[arg] = {n: STATE["values"][n] for n in spec["vars"]}
        elif "cal" in spec:
            kwargs[arg] = calibration_constants(spec["cal"])
        else:
            kwargs[arg] = spec["value"]
    try:
        result = d.func(LazyRun(), **kwargs)
        enc = Encoder()
        encoded = enc.encode(result)
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
            STATE["open"] = request
            STATE["run"] = None
            STATE["values"].clear()
            send({"ok": True})
        elif op == "call":
            call(request)


if __name__ == "__main__":
    main()
