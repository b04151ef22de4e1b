"""External lookups from Python context files, as `lookup` of damnit's TypeScript context API:

    from damnit_ctx import Variable, lookup

    @Variable()
    def gain(run, number: "meta#run_number"):
        return lookup.get("calcat", "/gain", {"run": number, "detector": "LPD1M"}).json()["gain"]

Context code never builds a catalogue's URL itself: each request goes to the job's lookup recorder (its address in
DAMNIT_LOOKUP_<SERVICE>_URL, its token in DAMNIT_LOOKUP_TOKEN, which the runner sets for each job), which records the
answer; `damnit reprocess --replay-lookups` gives the very same answers back, or LookupNotRecordedError naming the
request that was never recorded. A 4xx answer ("no constant found") is an answer like any other, not an error.
Standard library only (urllib), no proxy: the recorder is on 127.0.0.1.
"""
import builtins
import json
import os
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["lookup", "LookupResponse"]

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LookupError(builtins.LookupError):  # noqa: A001 - the same class name as in TypeScript contexts' errors
    """A lookup that gave no answer: no recorder for the service, the upstream failed, or (replay) not recorded."""


class LookupNotRecordedError(LookupError):
    """Replaying recorded lookups, and this request was not recorded when the run was first processed."""


class LookupResponse:
    """An upstream's answer (2xx or 4xx) as recorded: status, content type, bytes; `served` is hit, miss or waited."""

    def __init__(self, status, content_type, content, served):
        self.status = status
        self.content_type = content_type
        self.content = content
        self.served = served

    @property
    def ok(self):
        return 200 <= self.status < 300

    def text(self):
        return self.content.decode("utf-8")

    def json(self):
        return json.loads(self.content)


def _env_name(service):
    return "DAMNIT_LOOKUP_" + service.upper().replace("-", "_") + "_URL"


def _text(value):
    # as TypeScript's String(): true/false, and whole floats without ".0" would differ; booleans matter most
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query(query):
    if not query:
        return ""
    pairs = []
    for key, value in query.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((key, _text(item)))
    text = urllib.parse.urlencode(pairs)
    return "?" + text if text else ""


def _call(method, service, path, query=None, body=None, content_type=None):
    path = path if path.startswith("/") else "/" + path
    what = f"{method} {service}{path}{_query(query)}"
    base = os.environ.get(_env_name(service))
    if not base:
        raise LookupError(f"no lookup service '{service}' is configured for this job ({what}); "
                          "set it in the database setting lookup_upstreams")
    headers = {"accept": "application/json"}
    token = os.environ.get("DAMNIT_LOOKUP_TOKEN")
    if token:
        headers["x-damnit-token"] = token
    if content_type:
        headers["content-type"] = content_type
    request = urllib.request.Request(base + path + _query(query), data=body, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=120) as res:
            status, res_headers, content = res.status, res.headers, res.read()
    except urllib.error.HTTPError as err:
        status, res_headers, content = err.code, err.headers, err.read()
    except (urllib.error.URLError, OSError) as err:
        raise LookupError(f"{what}: the lookup recorder did not answer ({err})") from None
    served = res_headers.get("x-lookup-recorder")
    if status == 504 and served is None:
        raise LookupNotRecordedError(f"{what} was not recorded when this run was first processed "
                                     "(replaying recorded lookups)")
    if status >= 500:
        raise LookupError(f"{what}: {status} {content[:200].decode('utf-8', 'replace')}")
    return LookupResponse(status, res_headers.get("content-type"), content, served)


class _Lookup:
    LookupError = LookupError
    LookupNotRecordedError = LookupNotRecordedError

    def get(self, service, path, query=None):
        """GET <service><path>?<query> through the job's lookup recorder."""
        return _call("GET", service, path, query)

    def post(self, service, path, body, query=None):
        """POST a body (bytes or str as they are, anything else as JSON) through the job's lookup recorder."""
        if isinstance(body, (bytes, bytearray)):
            return _call("POST", service, path, query, bytes(body), "application/octet-stream")
        if isinstance(body, str):
            return _call("POST", service, path, query, body.encode("utf-8"), "application/octet-stream")
        return _call("POST", service, path, query, json.dumps(body, separators=(",", ":")).encode("utf-8"),
                     "application/json")


lookup = _Lookup()
