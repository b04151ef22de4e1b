"""DAMNIT's context-file API for Python context files (context.py), run by damnit's Python runner.

    from damnit_ctx import Variable, Cell, Skip

    @Variable(title="XGM/mean", units="uJ")
    def xgm_mean(run, xgm: "var#xgm_intensity"):
        return xgm.mean()

The decorator records the variable; python/damnit_runner.py reads them and damnit checks, orders and runs them
exactly as for TypeScript contexts.
"""
import inspect

from .calibration import CalibrationConstants, CalibrationError, CalibrationNotFoundError, calibration
from .lookup import LookupResponse, lookup

__all__ = ["Variable", "Cell", "Skip", "Group", "GroupError", "Pipeline", "VARIABLES", "lookup", "LookupResponse", "data_consistency", "consistency_reasons",
           "calibration", "CalibrationConstants", "CalibrationError", "CalibrationNotFoundError"]

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


class GroupError(Exception):
    """A Group class or instance that cannot become variables (reserved fields, no or ambiguous name, ...)."""


class Definition:
    def __init__(self, func, options):
        self.func = func
        self.options = options
        self.name = options.get("name") or func.__name__
        #: the class whose body defines this variable (a Group's variable), else None
        self.owner = None
        try:
            self.line = inspect.getsourcelines(func)[1]
            self.file = inspect.getsourcefile(func)
        except (OSError, TypeError):
            self.line = None
            self.file = None

    def __set_name__(self, owner, name):
        # Defined in a class body: a Group's variable, not one of the context's own.
        self.owner = owner

    def __get__(self, instance, owner):
        if instance is not None and is_group_instance(instance):
            return BoundVariable(instance, self)
        return self

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)


class BoundVariable:
    """A Group's variable seen through one instance (`group.var`): usable as `self#` target before names are known."""

    def __init__(self, group, definition):
        self.group = group
        self.definition = definition


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


RESERVED_GROUP_FIELDS = {"name": None, "title": None, "tags": None, "sep": "/"}


def normalize_tags(tags):
    if tags is None:
        return ()
    if isinstance(tags, str):
        return (tags,)
    return tuple(tags)


def is_group_instance(obj):
    return getattr(type(obj), "__damnit_group__", False) is True and not isinstance(obj, type)


def Group(_cls=None, *, tags=None):
    """DAMNIT's @Group: a class of variables (methods taking `self, run`) instantiated as often as needed.

    The class becomes a keyword-only dataclass with the fields name, title (default: the name), tags (merged into
    each variable's) and sep ("/", between the group's title and each variable's). Each instance's variables are
    `<name>.<var>`; an instance assigned to a top-level name (or a field of another group) without a name gets it.
    `self#field.var` annotations point at variables of this or other groups.
    """
    import dataclasses

    def wrap(cls):
        declared = set(cls.__dict__.get("__annotations__", {}))
        conflicts = sorted(set(RESERVED_GROUP_FIELDS) & declared)
        if conflicts:
            raise GroupError(f"Group classes cannot define reserved fields: {', '.join(conflicts)}")
        overridden = sorted(set(RESERVED_GROUP_FIELDS) & set(cls.__dict__))
        if overridden:
            raise GroupError(f"Group classes cannot override reserved attributes: {', '.join(overridden)}")
        group_tags = tags
        if group_tags is None:
            for base in cls.__mro__[1:]:
                config = base.__dict__.get("__damnit_group_tags__")
                if config is not None:
                    group_tags = config
                    break
        group_tags = normalize_tags(group_tags)
        cls.__damnit_group__ = True
        cls.__damnit_group_tags__ = group_tags
        annotations = dict(cls.__dict__.get("__annotations__", {}))
        annotations.update({"name": "str | None", "title": "str | None", "tags": "object", "sep": "str"})
        cls.__annotations__ = annotations
        cls.name = dataclasses.field(default=None, kw_only=True)
        cls.title = dataclasses.field(default=None, kw_only=True)
        cls.tags = dataclasses.field(default=group_tags, kw_only=True)
        cls.sep = dataclasses.field(default="/", kw_only=True)
        original = cls.__dict__.get("__post_init__")

        def __post_init__(self):
            self.tags = normalize_tags(self.tags)
            if self.title is None:
                self.title = self.name
            if original is not None:
                original(self)

        cls.__post_init__ = __post_init__
        return dataclasses.dataclass(cls, kw_only=True)

    if _cls is None:
        return wrap
    return wrap(_cls)


#: the default pipeline of the context file being evaluated (reset by the runner before each evaluation)
PIPELINE_STATE = {"pipeline": None, "explicit": False}


class Pipeline:
    """DAMNIT's Pipeline, as far as a context file uses it: `Pipeline.default().add(...)` adds Variables or Group
    instances to what the file defines, and `Pipeline.set_default(Pipeline(...).add(...))` makes exactly those the
    context's variables (nothing else is discovered).
    """

    def __init__(self, proposal=None, run_number=None, *, name=None, data=None, input_vars=None):
        self.name = name
        self.proposal = proposal
        self.run_number = run_number
        self.data = data
        self.input_vars = dict(input_vars or {})
        self.items = []

    @classmethod
    def default(cls):
        if PIPELINE_STATE["pipeline"] is None:
            PIPELINE_STATE["pipeline"] = cls(name="default")
        return PIPELINE_STATE["pipeline"]

    @classmethod
    def set_default(cls, pipeline):
        if not isinstance(pipeline, cls):
            raise TypeError("Pipeline.set_default expects a Pipeline instance")
        PIPELINE_STATE["pipeline"] = pipeline
        PIPELINE_STATE["explicit"] = True
        return pipeline

    def add(self, *items):
        def add_item(item):
            if isinstance(item, Definition) or is_group_instance(item):
                if not any(item is known for known in self.items):
                    self.items.append(item)
            elif isinstance(item, (list, tuple)):
                for sub in item:
                    add_item(sub)
            else:
                raise TypeError(f"Pipeline.add accepts Variable or Group instances (or sequences of them); got {type(item)!r}")

        for item in items:
            add_item(item)
        return self


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
