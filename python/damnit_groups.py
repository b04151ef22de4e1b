"""Expanding DAMNIT's @Group instances of a context file into variables (spec §3.10), for damnit_runner.py.

Each group instance found from the context's top-level names (and, through fields, nested in other groups) gets a
name: its own, else the top-level name it is assigned to, else `<parent>.<field>`; the shortest path wins. Its
class's variables (inherited ones too) become `<name>.<var>` with title `<title><sep><var title>` and the union of
the group's and the variable's tags; `self#a.b` annotations are resolved to `var#` names. A field on the way that is
None gives a transient placeholder `<name>.__missing__.<path>` returning None, so dependents skip or use defaults.
"""
import dataclasses
import functools
import re

from damnit_ctx import RESERVED_GROUP_FIELDS, BoundVariable, Definition, GroupError, is_group_instance

GLOB = re.compile(r"[*?\[\]]")


class Expanded:
    """One variable of a group instance (or a placeholder): what damnit_runner.describe needs of a definition."""

    def __init__(self, name, options, func, line, params, annotations):
        self.name = name
        self.options = options
        #: called as func(run, **kwargs)
        self.func = func
        self.line = line
        #: the parameters after run (inspect.Parameter)
        self.params = params
        #: parameter name -> annotation, where it differs from the parameter's own (self# resolved)
        self.annotations = annotations


def group_names(namespace, extra=()):
    """{id(instance): (instance, name)} for every group instance reachable from the context's top-level names (and
    from `extra` instances, e.g. those added to a Pipeline, which need a name of their own if no name leads to them)."""
    found = {}  # id -> [instance, depth, [(parent id or None, label or None)]]
    frontier = [(None, key, value) for key, value in namespace.items()
                if not key.startswith("__") and is_group_instance(value)]
    frontier += [(None, None, value) for value in extra]
    depth = 0
    while frontier:
        depth += 1
        following = []
        for parent, label, instance in frontier:
            entry = found.get(id(instance))
            if entry is not None:
                if entry[1] == depth:
                    entry[2].append((parent, label))
                continue
            found[id(instance)] = [instance, depth, [(parent, label)]]
            for field in dataclasses.fields(instance):
                if field.name in RESERVED_GROUP_FIELDS:
                    continue
                value = getattr(instance, field.name, None)
                if is_group_instance(value):
                    following.append((id(instance), field.name, value))
        frontier = following

    names = {}

    def name_of(key):
        if key in names:
            return names[key]
        instance, _, paths = found[key]
        if instance.name is not None:
            name = instance.name
        else:
            candidates = sorted({label if parent is None else f"{name_of(parent)}.{label}" for parent, label in paths
                                 if label is not None})
            if not candidates:
                raise GroupError(f"A {type(instance).__name__} group has no name: give it one (name=...) or assign it "
                                 "to a top-level name")
            if len(candidates) > 1:
                raise GroupError(f"A {type(instance).__name__} group is both {' and '.join(candidates)}; "
                                 "give it a name (name=...)")
            name = candidates[0]
        names[key] = name
        return name

    out = {}
    taken = {}
    for key in found:
        name = name_of(key)
        if not all(part.isidentifier() for part in name.split(".")):
            raise GroupError(f"The group name {name!r} is not a valid Python identifier or dotted name")
        if name in taken:
            raise GroupError(f"Two groups are named {name!r}")
        taken[name] = key
        out[key] = (found[key][0], name)
    return out


def class_variables(cls):
    """The class's variables, inherited ones first, a redefinition replacing the parent's."""
    seen = {}
    for klass in reversed(cls.__mro__):
        for attr, value in klass.__dict__.items():
            if isinstance(value, Definition):
                seen[attr] = value
    return list(seen.values())


def reachable(instances):
    """The instances and the groups nested in their fields, recursively (ids)."""
    seen = set()
    todo = list(instances)
    while todo:
        instance = todo.pop()
        if id(instance) in seen:
            continue
        seen.add(id(instance))
        for field in dataclasses.fields(instance):
            value = getattr(instance, field.name, None)
            if field.name not in RESERVED_GROUP_FIELDS and is_group_instance(value):
                todo.append(value)
    return seen


def expand(namespace, signature_of, extra=(), only=None):
    """Every group instance's variables as Expanded definitions, in the order of the instances and their classes;
    with `only` (an explicit Pipeline's groups), those groups' and the groups nested in them only."""
    names = group_names(namespace, extra)
    if only is not None:
        keep = reachable(only)
        names = {key: value for key, value in names.items() if key in keep}
    by_id = {key: name for key, (_, name) in group_names(namespace, extra).items()}
    expanded = []
    placeholders = {}

    def group_name(instance):
        if id(instance) not in by_id:
            raise GroupError(f"a self# annotation points into a {type(instance).__name__} group that has no name")
        return by_id[id(instance)]

    def placeholder(owner_name, path):
        name = f"{owner_name}.__missing__.{GLOB.sub('_', path)}"
        if name not in placeholders:
            placeholders[name] = Expanded(name, {"transient": True}, lambda run: None, None, [], {})
        return f"var#{name}"

    def resolve(instance, owner_name, path, where):
        parts = path.split(".")
        obj = instance
        for i, part in enumerate(parts):
            if obj is None:
                return placeholder(owner_name, path)
            if GLOB.search(part):
                if i != len(parts) - 1:
                    raise GroupError(f"{where}: 'self#{path}': globs are only allowed in the last part")
                if not is_group_instance(obj):
                    raise GroupError(f"{where}: 'self#{path}': a glob needs a group before it")
                return f"var#{group_name(obj)}.{part}"
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise GroupError(f"{where}: 'self#{path}': {type(obj).__name__} has no attribute {part!r}") from None
        if obj is None:
            return placeholder(owner_name, path)
        if isinstance(obj, BoundVariable):
            return f"var#{group_name(obj.group)}.{obj.definition.name}"
        if isinstance(obj, Definition) and obj.owner is None:
            return f"var#{obj.name}"
        raise GroupError(f"{where}: 'self#{path}' is a {type(obj).__name__}, not a Variable")

    for instance, gname in names.values():
        title = instance.title if instance.title is not None else gname
        for d in class_variables(type(instance)):
            name = f"{gname}.{d.name}"
            params = list(signature_of(d.func).parameters.values())[2:]  # self, run
            annotations = {}
            for p in params:
                if isinstance(p.annotation, str) and p.annotation.startswith("self#"):
                    annotations[p.name] = resolve(instance, gname, p.annotation[len("self#"):], name)
            options = dict(d.options)
            options.pop("name", None)
            options["title"] = f"{title}{instance.sep}{d.options.get('title') or d.name}"
            var_tags = d.options.get("tags")
            var_tags = (var_tags,) if isinstance(var_tags, str) else tuple(var_tags or ())
            all_tags = sorted(set(instance.tags) | set(var_tags))
            if all_tags:
                options["tags"] = all_tags
            else:
                options.pop("tags", None)
            if "description" not in options and d.func.__doc__:
                import inspect
                options["description"] = inspect.cleandoc(d.func.__doc__)
            expanded.append(Expanded(name, options, functools.partial(d.func, instance), d.line, params, annotations))
    return expanded + list(placeholders.values())
