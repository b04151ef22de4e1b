"""DAMNIT's context-file API for Python context files (context.py), run by damnit's Python runner.

    from damnit_ctx import Variable, Cell, Skip

    @Variable(title="XGM/mean", units="uJ")
    def xgm_mean(run, xgm: "var#xgm_intensity"):
        return xgm.mean()

The decorator records the variable; python/damnit_runner.py reads them and damnit checks, orders and runs them
exactly as for TypeScript contexts.
"""
import inspect

__all__ = ["Variable", "Cell", "Skip", "Group", "VARIABLES", "data_consistency", "consistency_reasons"]

#: definitions in the order of the decorator calls
VARIABLES = []


class Skip(Exception):
    """Raise to skip a variable for this run with a reason (shown grey in the table, not as a failure)."""


class Cell:
    """A result with display options for its table cell (DAMNIT's Cell)."""

    def __init__(self, data, summary=None, summary_value=None, bold=None, background=None, preview=None, units=None):
        self.data = data
        self.summary = summary
        self.summary_value = summary_value
        self.bold = bold
        self.background = background
        self.preview = preview
        self.units = units


class Definition:
    def __init__(self, func, options):
        self.func = func
        self.options = options
        self.name = options.get("name") or func.__name__
        try:
            self.line = inspect.getsourcelines(func)[1]
            self.file = inspect.getsourcefile(func)
        except (OSError, TypeError):
            self.line = None
            self.file = None

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)


def Variable(title=None, description=None, summary=None, data=None, cluster=False, tags=None, transient=False,
             units=None, name=None):
    """Declare a variable: @Variable(...) above `def name(run, dep: "var#other", ...)`."""
    options = {"title": title, "description": description, "summary": summary, "data": data, "cluster": cluster,
               "tags": tags, "transient": transient, "units": units, "name": name}

    def decorate(func):
        definition = Definition(func, {k: v for k, v in options.items() if v is not None})
        VARIABLES.append(definition)
        return definition

    if callable(title):  # bare @Variable
        func, options["title"] = title, None
        return decorate(func)
    return decorate


class Group:
    """DAMNIT's variable groups: a prefix for the titles and names of the variables declared with `group.Variable`."""

    def __init__(self, title=None, name=None, tags=None):
        self.title = title
        self.name = name
        self.tags = tags

    def Variable(self, title=None, name=None, tags=None, **kwargs):
        def decorate(func):
            var_name = name or func.__name__
            full_name = f"{self.name}.{var_name}" if self.name else var_name
            full_title = f"{self.title}/{title or var_name}" if self.title else title
            all_tags = ([self.tags] if isinstance(self.tags, str) else list(self.tags or [])) + (
                [tags] if isinstance(tags, str) else list(tags or []))
            return Variable(title=full_title, name=full_name, tags=all_tags or None, **kwargs)(func)
        return decorate


#: the tag that marks the built-in data consistency variable (damnit copies its result into run_info/)
DATA_CONSISTENCY_TAG = "data_consistency"


def consistency_reasons(run, sources=None, rate_divisor=1):
    """Why the run's data are inconsistent (an empty list: consistent), as damnit/context's dataConsistency checks:
    per source, the trains expected in the run's range (ids divisible by rate_divisor) vs the trains with data."""
    m = rate_divisor
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ValueError(f"data_consistency: rate_divisor must be a whole number >= 1, not {m!r}")
    train_ids = sorted(int(t) for t in run.train_ids)
    if not train_ids:
        return ["the run has no trains"]
    expected = [t for t in range(train_ids[0], train_ids[-1] + 1) if t % m == 0]
    reasons = []
    for source in (sources if sources is not None else sorted(run.all_sources)):
        if source not in run.all_sources:
            reasons.append(f"{source} is not in the run")
            continue
        present = [int(t) for t in run.select(source, "*", require_all=True).train_ids if int(t) % m == 0]
        if len(present) != len(expected):
            reasons.append(f"{source} number of trains is different from expected : {len(present)} vs {len(expected)}")
            have = set(present)
            missing = [t for t in expected if t not in have]
            if missing:
                listed = ", ".join(str(t) for t in missing[:10])
                more = f", … ({len(missing)})" if len(missing) > 10 else ""
                reasons.append(f"{source} missing trains : {listed}{more}")
        elif present[0] != expected[0]:
            reasons.append(f"{source} first train {present[0]} is not the expected {expected[0]}")
        elif present[-1] != expected[-1]:
            reasons.append(f"{source} last train {present[-1]} is not the expected {expected[-1]}")
        else:
            for i, (got, want) in enumerate(zip(present, expected)):
                if got != want:
                    reasons.append(f"{source} train ids are not as expected (position {i}: {got} vs {want})")
                    break
    return reasons


def consistency_report(reasons):
    """sf_daq_broker's check.py output: the summary line, then OK or one Reason line per problem."""
    head = f"Result of consistency check (summary) : {'True' if not reasons else 'False'}"
    return "\n".join([head] + (["    OK : all tests passed"] if not reasons else [f"    Reason : {r}" for r in reasons]))


def data_consistency(sources=None, rate_divisor=1, name="data_consistency", title="Data consistency", data=None):
    """The built-in data consistency variable: `data_consistency()` at module level of context.py declares it."""
    def check(run):
        reasons = consistency_reasons(run, sources, rate_divisor)
        return Cell(consistency_report(reasons), summary_value=not reasons)
    check.__name__ = name
    return Variable(title=title, name=name, tags=[DATA_CONSISTENCY_TAG], data=data,
                    description="Whether every source has data for every train of the run (rate divisor applied); "
                                "the reasons when not")(check)
