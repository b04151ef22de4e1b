"""Calibration constants from Python context files, as `calibration` of damnit's TypeScript context API:

    from damnit_ctx import Variable, Skip, calibration

    @Variable()
    def dark_pedestals(run, number: "meta#run_number"):
        if number != 1:
            raise Skip("not a dark run")
        return calibration.add(detector="jungfrau-0042", ctype="pedestals", data=pedestals_of(run)).version

    @Variable()
    def corrected(run):
        ped = calibration.get(detector="jungfrau-0042", ctype="pedestals")
        return frame_of(run) - ped.data

The store is not read here: each call goes, while its variable runs, over the runner's channel to damnit (Node),
which answers with the very calibration context a TypeScript variable gets (the three levels, the run's start time
as the default time, `reprocess --pin-calibration`, and the lookup credited to this variable in the run's HDF5
attribute `calibration` and `<db_dir>/calibration_usage.sqlite`). Arrays cross as raw little-endian bytes with
their dtype and shape, so values (NaN included) are exact.
"""
import collections
import datetime
import math
import numbers
import threading

__all__ = ["calibration", "CalibrationConstants", "CalibrationAdded", "CalibrationError", "CalibrationNotFoundError"]


class CalibrationError(Exception):
    """A calibration problem other than "none apply": a bad ctype, time or value, a locked store, no store, no run."""


class CalibrationNotFoundError(CalibrationError):
    """No constants apply for the detector and ctype at that time (or a pinned version was since deleted)."""


#: what `calibration.add` made: the detector's full name, the range key `<begin>-<end|end>` and the new version
CalibrationAdded = collections.namedtuple("CalibrationAdded", ["detname", "range", "version"])


class CalibrationConstants:
    """Constants from the store: `data` (a read-only numpy array in the ctype's element type, or str for geometry,
    then also `text`), `dtype`, `shape`, `detname`, `ctype`, `range` (key), `version`, `tsprod` (production time,
    epoch seconds) and `level` ("local", "proposal" or "repository": the store that answered)."""

    def __init__(self, c):
        self.dtype, self.shape, self.detname, self.ctype = c["dtype"], tuple(c["shape"]), c["detname"], c["ctype"]
        self.range, self.version, self.tsprod, self.level = c["range"], c["version"], c["tsprod"], c["level"]
        self.text = None
        if "text" in c:
            self.data = self.text = c["text"]
        else:
            import base64
            import numpy as np
            raw = base64.b64decode(c["b64"])
            self.data = np.frombuffer(raw, dtype=np.dtype(c["dtype"]).newbyteorder("<")).reshape(self.shape)

    def __repr__(self):
        return f"<CalibrationConstants {self.detname} {self.ctype} range {self.range} version {self.version} ({self.level})>"


_LOCK = threading.Lock()
#: set by the runner while a variable runs: exchange(header, blobs) -> reply header
_CHANNEL = {"exchange": None}


def set_channel(exchange):
    """The runner's hook: how to reach damnit while a variable runs (None: no variable is running)."""
    _CHANNEL["exchange"] = exchange


def _time(at, what):
    if at is None:
        return None
    if isinstance(at, datetime.datetime):
        if at.tzinfo is None:
            raise CalibrationError(f"{what} must be an epoch time in seconds or a datetime with a time zone, "
                                   f"not the naive datetime {at.isoformat()}")
        return at.timestamp()
    if isinstance(at, bool) or not isinstance(at, numbers.Real):
        raise CalibrationError(f"{what} must be an epoch time in seconds or a datetime, not {type(at).__name__}")
    if not math.isfinite(at):
        raise CalibrationError(f"{what} must be a finite epoch time in seconds, not {at}")
    return float(at)


def _names(detector, ctype):
    for what, value in (("detector", detector), ("ctype", ctype)):
        if not isinstance(value, str):
            raise CalibrationError(f"{what} must be a str, not {type(value).__name__}")
    return {"detector": detector, "ctype": ctype}


def _request(message, blobs=()):
    exchange = _CHANNEL["exchange"]
    if exchange is None:
        raise CalibrationError("calibration constants are only available inside a variable while damnit processes a run")
    with _LOCK:
        reply = exchange(dict(message, op="calibration"), blobs)
    if reply.get("ok") is not True:
        cls = CalibrationNotFoundError if reply.get("cls") == "CalibrationNotFoundError" else CalibrationError
        raise cls(reply.get("message", "calibration request failed"))
    return reply


def _array(data):
    import numpy as np
    array = np.asarray(data)
    if array.dtype.hasobject or array.dtype.kind not in "biufc":
        raise CalibrationError(f"calibration constants must be a numeric array (or str for geometry), "
                               f"not {type(data).__name__} of dtype {array.dtype}")
    if array.dtype.kind == "f" and array.dtype.itemsize == 2:
        array = array.astype("f4")
    return np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False)).reshape(array.shape)


class _Calibration:
    def get(self, detector, ctype, at=None, version=None):
        """The constants of `ctype` for `detector` (a name `<dettype>-<detid>` or an alias) that apply at `at`
        (epoch seconds or an aware datetime; default: the run's start time), in version `version` (default: the
        range's default version, else its last). Raises CalibrationNotFoundError when none apply."""
        message = {"action": "get", **_names(detector, ctype)}
        t = _time(at, "at")
        if t is not None:
            message["at"] = t
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, numbers.Integral):
                raise CalibrationError(f"version must be a whole number, not {version!r}")
            message["version"] = int(version)
        return CalibrationConstants(_request(message)["constants"])

    def add(self, detector, ctype, data, begin=None, message=None):
        """Add `data` (a numpy array or anything np.asarray takes, cast to the ctype's element type; str for
        geometry) as the next version of an open range of the database's local store starting at `begin` (epoch
        seconds or an aware datetime; default: the run's start time). Returns CalibrationAdded(detname, range,
        version)."""
        request = {"action": "add", **_names(detector, ctype)}
        t = _time(begin, "begin")
        if t is not None:
            request["at"] = t
        if message is not None:
            request["message"] = str(message)
        if isinstance(data, str):
            request["text"] = data
            blobs = ()
        else:
            array = _array(data)
            request["dtype"], request["shape"] = array.dtype.name, list(array.shape)
            blobs = (array.tobytes(),)
        reply = _request(request, blobs)
        return CalibrationAdded(reply["detname"], reply["range"], reply["version"])


#: the calibration store of the run being processed (see the module's documentation)
calibration = _Calibration()
