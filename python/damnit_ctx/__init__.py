"""DAMNIT's context-file API for Python context files (context.py), run by damnit's Python runner.

    from damnit_ctx import Variable, Cell, Skip

    @Variable(title="XGM/mean", units="uJ")
    def xgm_mean(run, xgm: "var#xgm_intensity"):
        return xgm.mean()

The decorator records the variable; python/damnit_runner.py reads them and damnit checks, orders and runs them
exactly as for TypeScript contexts.
"""
import inspect

from .lookup import LookupResponse, lookup

__all__ = ["Variable", "Cell", "Skip", "Group", "VARIABLES", "lookup", "LookupResponse"]

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
