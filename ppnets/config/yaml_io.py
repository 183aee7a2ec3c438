"""Reading and writing config files: safe YAML, ``_base_`` inheritance and the deep merge.

Files are parsed with a :class:`yaml.SafeLoader` subclass only (no arbitrary objects). A file may
name one or more ``_base_`` files, merged first, in order, then the file itself on top.
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any, Dict, Tuple

import yaml

from ..errors import ConfigError

__all__ = ["yaml_load", "read_yaml_file", "merge", "load_with_bases", "dump_config"]


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(text: str, where: str) -> Any:
    """Parse YAML ``text``; a syntax error is a ConfigError naming ``where``, line and column."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        pos = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}:{pos}: malformed YAML: {problem}") from None


def read_yaml_file(path: str) -> Dict[str, Any]:
    """The top-level mapping of the YAML file ``path`` (an empty file is ``{}``)."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    data = yaml_load(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def merge(base: Dict[str, Any], child: Dict[str, Any]) -> Dict[str, Any]:
    """Deep-merge ``child`` into a copy of ``base``: dicts merge, everything else is replaced.

    A child dict with ``_delete_: true`` replaces the base dict instead of merging (mmpretrain's rule).
    """
    out = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and value.get("_delete_"):
            out[key] = {k: copy.deepcopy(v) for k, v in value.items() if k != "_delete_"}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_with_bases(path: str, chain: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Read ``path`` and the ``_base_`` files it names (recursively), merged in order."""
    path = os.path.abspath(path)
    if path in chain:
        raise ConfigError(f"{path}: _base_ inheritance cycle: {' -> '.join(chain + (path,))}")
    data = read_yaml_file(path)
    bases = data.pop("_base_", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: _base_: expected a file name or a list of file names, got {bases!r}")
    merged: Dict[str, Any] = {}
    for base in bases:
        base_path = base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)
        merged = merge(merged, load_with_bases(base_path, chain + (path,)))
    return merge(merged, data)


def dump_config(cfg: Dict[str, Any], path: str) -> None:
    """Write the resolved config as YAML (atomically)."""
    from ..utils.files import atomic_open
    with atomic_open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(_plain(cfg), f, sort_keys=False, allow_unicode=True)


def _plain(node: Any) -> Any:
    """``node`` with dict/list subclasses turned into plain ones (safe_dump refuses subclasses)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node
