"""Validation of a whole config against :data:`~ppnets.config.schema.SCHEMA`.

Every problem is collected — unknown keys, wrong types, out-of-range numbers, unknown component
names, bad component options — and reported together: :func:`validate` raises one
:class:`~ppnets.errors.ConfigError` with one line per problem. Defaults are filled in place.
"""
from __future__ import annotations

import copy
import inspect
import math
import typing
from typing import Any, Dict, List, Optional

from ..errors import ConfigError, PPNetsError, did_you_mean
from ..registry import Registry, kwargs_problems
from .crosscheck import cross_check
from .schema import REQUIRED, SCHEMA, Key, LabeledList, Named, NamedList, Section
from .types import check_type, short_repr, type_name

__all__ = ["validate", "Problems"]

#: registries whose components are built once during validation, so that their own option checks
#: (a probability outside [0, 1], a crop size of 0, a negative learning rate …) are reported with
#: the other problems; building them is cheap (no tensors, no files)
_DRY_BUILD = ("transform op", "batch transform op", "loss", "metric", "LR schedule", "optimizer")

#: the largest magnitude of an integer in a config: Paddle and numpy take at most 64 bits
_INT_LIMIT = 2 ** 63 - 1


class Problems:
    """The problems found so far, one message each, in order."""

    def __init__(self) -> None:
        self.lines: List[str] = []

    def add(self, message: str) -> None:
        if message not in self.lines:
            self.lines.append(message)

    def raise_if_any(self) -> None:
        if self.lines:
            raise ConfigError("\n".join(self.lines))


def _target(entry: Any) -> Any:
    """The callable whose signature a registry entry's options are checked against."""
    return getattr(entry, "cls", entry)  # a ModelInfo wraps the model class


def _check_options(entry: Any, kwargs: Dict[str, Any], where: str, problems: Problems) -> None:
    """Names and annotated types of ``kwargs`` against ``entry``'s signature; floats normalised in place."""
    fn = _target(entry)
    for line in kwargs_problems(fn, kwargs, where):
        problems.add(line)
    try:
        hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    except Exception:  # unresolvable annotations: names were checked, types are not
        hints = {}
    for key, value in kwargs.items():
        if key in hints:
            ok, new = check_type(value, hints[key])
            if ok:
                kwargs[key] = new
            else:
                problems.add(_type_error(f"{where}.{key}", value, hints[key]))
                continue
        _number_problems(f"{where}.{key}", value, problems)


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _numbers(value: Any) -> List[Any]:
    """The numbers of ``value``: itself, or the items of a list (bools are not numbers)."""
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _number_problems(path: str, value: Any, problems: Problems) -> bool:
    """Report NaN/infinite floats and integers beyond 64 bits in ``value``; True if there were any."""
    for v in _numbers(value):
        if isinstance(v, float) and not math.isfinite(v):
            problems.add(f"{path}: expected a finite number, got {short_repr(value)}")
            return True
        if isinstance(v, int) and abs(v) > _INT_LIMIT:
            problems.add(f"{path}: expected a number that fits in 64 bits, got {short_repr(value)}")
            return True
    return False


def _type_error(where: str, value: Any, tp: Any) -> str:
    return f"{where}: expected {type_name(tp)}, got {short_repr(value)} ({type_name(type(value))})"


def _lookup(registry: Registry, name: Any, where: str, problems: Problems) -> Optional[Any]:
    try:
        return registry.get(name, where)
    except ConfigError as e:
        problems.add(str(e))
        return None


def _named_list(value: Any, where: str, registry: Registry, problems: Problems) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        problems.add(f"{where}: expected a list of {{Name: {{options}}}} items, got {short_repr(value)}")
        return
    for i, item in enumerate(value):
        path = f"{where}.{i}"
        if not isinstance(item, dict) or len(item) != 1:
            problems.add(f"{path}: expected one {{Name: {{options}}}} mapping, got {short_repr(item)}")
            continue
        (name, kwargs), = item.items()
        entry = _lookup(registry, name, path, problems)
        if kwargs is None:
            item[name] = kwargs = {}
        if not isinstance(kwargs, dict):
            problems.add(f"{path}.{name}: expected a mapping of options, got {short_repr(kwargs)}")
            continue
        if entry is None:
            continue
        before = len(problems.lines)
        _check_options(entry, kwargs, f"{path}.{name}", problems)
        if len(problems.lines) == before and registry.kind in _DRY_BUILD:
            _dry_build(registry, name, kwargs, path, problems)


def _named(value: Any, where: str, registry: Registry, problems: Problems) -> Any:
    if not isinstance(value, dict) or "name" not in value:
        problems.add(f"{where}: expected a mapping with a 'name', got {short_repr(value)}")
        return value
    entry = _lookup(registry, value["name"], f"{where}.name", problems)
    kwargs = {k: v for k, v in value.items() if k != "name"}
    if entry is not None:
        before = len(problems.lines)
        _check_options(entry, kwargs, where, problems)
        if len(problems.lines) == before and registry.kind in _DRY_BUILD:
            _dry_build(registry, value["name"], kwargs, where, problems)
    return {"name": value["name"], **kwargs}


def _dry_build(registry: Registry, name: str, kwargs: Dict[str, Any], where: str, problems: Problems) -> None:
    try:
        registry.build(name, copy.deepcopy(kwargs), where=where)
    except PPNetsError as e:
        problems.add(str(e))


def _labeled_list(value: Any, where: str, section: Section, problems: Problems) -> Any:
    if not isinstance(value, list) or not value:
        problems.add(f"{where}: expected a list of {{Label: {{name: …, …}}}} items, got {short_repr(value)}")
        return value
    for i, item in enumerate(value):
        if not isinstance(item, dict) or len(item) != 1 or not isinstance(next(iter(item)), str):
            problems.add(f"{where}.{i}: expected one {{Label: {{name: …, …}}}} mapping, got {short_repr(item)}")
            continue
        (label, node), = item.items()
        item[label] = validate_section(node, section, f"{where}.{i}.{label}", problems)
    return value


def _key(value: Any, spec: Key, path: str, problems: Problems) -> Any:
    if isinstance(spec.type, LabeledList):
        return _labeled_list(value, path, spec.type.section, problems)
    if isinstance(spec.type, NamedList):
        _named_list(value, path, spec.type.registry, problems)
        return value
    if isinstance(spec.type, Named):
        return _named(value, path, spec.type.registry, problems)
    ok, new = check_type(value, spec.type)
    if not ok:
        problems.add(_type_error(path, value, spec.type))
        return value
    if spec.choices and new not in spec.choices:
        problems.add(f"{path}: expected one of {', '.join(map(str, spec.choices))}, got {short_repr(new)}"
                     f"{did_you_mean(str(new), map(str, spec.choices))}")
    if spec.length is not None and new is not None and len(new) != spec.length:
        problems.add(f"{path}: expected {spec.length} items, got {short_repr(new)}")
    if _number_problems(path, new, problems):
        return new
    numbers = _numbers(new)
    noun = "numbers" if isinstance(new, list) else "a number"
    for bound, fails, sign in ((spec.minimum, lambda v, b: v < b, ">="), (spec.maximum, lambda v, b: v > b, "<="),
                               (spec.greater_than, lambda v, b: v <= b, ">"),
                               (spec.less_than, lambda v, b: v >= b, "<")):
        if bound is not None and any(fails(v, bound) for v in numbers):
            problems.add(f"{path}: expected {noun} {sign} {_bound(bound)}, got {short_repr(new)}")
    return new


def validate_section(node: Any, section: Section, where: str, problems: Problems) -> Dict[str, Any]:
    """Check one section (recursively); returns it with defaults filled."""
    if node is None:
        node = {}
    if not isinstance(node, dict):
        problems.add(f"{where}: expected a mapping, got {short_repr(node)}")
        node = {}
    variant = section.variants.get(node.get("name")) if isinstance(node.get("name"), str) else None
    if variant is not None:
        return validate_section(node, variant, where, problems)
    fixed = section.keys
    if section.options_of is None:
        for key in node:
            if key not in fixed:
                problems.add(f"{where}: unknown key '{key}'{did_you_mean(key, fixed)}; valid: {', '.join(fixed)}")
    for key, spec in fixed.items():
        path = f"{where}.{key}"
        if isinstance(spec, Section):
            node[key] = validate_section(node.get(key), spec, path, problems)
        elif key not in node:
            if spec.default is REQUIRED:
                problems.add(f"{path}: required key is missing")
            elif spec.fill:
                node[key] = copy.deepcopy(spec.default)
        else:
            node[key] = _key(node[key], spec, path, problems)
    if section.options_of is not None:
        options = {k: v for k, v in node.items() if k not in fixed}
        name = node.get("name")
        # a name of the wrong type was reported above
        entry = _lookup(section.options_of, name, f"{where}.name", problems) if isinstance(name, str) else None
        if entry is not None:
            before = len(problems.lines)
            _check_options(entry, options, where, problems)
            for key, spec in section.option_ranges.items():
                if key in options and len(problems.lines) == before:
                    options[key] = _key(options[key], spec, f"{where}.{key}", problems)
            if len(problems.lines) == before and section.options_of.kind in _DRY_BUILD:
                _dry_build(section.options_of, name, options, where, problems)
        node.update(options)
    if section.check is not None:
        for line in section.check(node, where):
            problems.add(line)
    return node


def validate(cfg: Dict[str, Any], problems: Optional[Problems] = None) -> Dict[str, Any]:
    """Check ``cfg`` against :data:`SCHEMA` and the components it names; fill defaults in place.

    Raises one :class:`ConfigError` listing every problem (those already in ``problems`` first),
    one per line.
    """
    problems = problems if problems is not None else Problems()
    for section in list(cfg):
        if section not in SCHEMA:
            problems.add(f"unknown section '{section}'{did_you_mean(section, SCHEMA)}; valid: {', '.join(SCHEMA)}")
    if "Arch" not in cfg:
        problems.add("Arch: required section is missing (at least Arch.name)")
    for name, section in SCHEMA.items():
        if name == "DataLoader":
            # only the splits a config declares are validated (an eval-only config has no Train)
            node = cfg.get(name) or {}
            if not isinstance(node, dict):
                problems.add(f"DataLoader: expected a mapping, got {short_repr(node)}")
                node = {}
            for split in node:
                if split not in section.keys:
                    problems.add(f"DataLoader: unknown key '{split}'{did_you_mean(split, section.keys)}; "
                                 f"valid: {', '.join(section.keys)}")
            cfg[name] = {split: validate_section(node[split], section.keys[split], f"DataLoader.{split}", problems)
                         for split in node if split in section.keys}
        elif name in cfg or name != "Arch":
            cfg[name] = validate_section(cfg.get(name), section, name, problems)
    if not problems.lines:  # the cross-section rules assume well-formed sections
        cross_check(cfg, problems.add)
    problems.raise_if_any()
    return cfg
