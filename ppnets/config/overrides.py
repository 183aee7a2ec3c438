"""Command-line overrides: ``-o Section.key=value``.

Syntax (values are YAML scalars, lists or mappings, never evaluated):

- ``Global.epochs=5`` sets a key (missing mapping levels are created); list items are
  addressed by index: ``DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=64``.
- ``Section.list.+=VALUE`` appends VALUE to a list, e.g.
  ``DataLoader.Train.dataset.transform_ops.+={ToCHWImage: null}`` (a missing list is created).
- ``~Section.key`` deletes a key, a list item (``~…transform_ops.2``) or a whole section (``~AMP``),
  so that the defaults apply again. ``Section=null`` also resets a whole section to its defaults;
  ``Global.seed=null`` sets a key to null, which is a value of its own.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from .yaml_io import yaml_load

__all__ = ["parse_overrides", "apply_overrides", "APPEND", "DELETE"]

#: the last path component of an append override (``a.b.+=value``)
APPEND = "+"


class _Delete:
    """The value of a ``~key`` override."""

    def __repr__(self) -> str:
        return "<delete>"


DELETE = _Delete()


def _syntax(item: str) -> str:
    return f"bad override '{item}': expected Section.key=value (or Section.list.+=value, ~Section.key)"


def parse_overrides(items: Optional[Sequence[str]]) -> List[Tuple[List[str], Any]]:
    """Parse ``["Global.epochs=5", "~AMP", …]`` into ``[(["Global", "epochs"], 5), (["AMP"], DELETE), …]``."""
    parsed = []
    for item in items or []:
        if item.startswith("~"):
            key, value = item[1:], DELETE
            if "=" in key:
                raise ConfigError(f"bad override '{item}': a deletion is ~Section.key, without a value")
        elif "=" in item:
            key, text = item.split("=", 1)
            value = yaml_load(text, f"override '{item}'") if text.strip() else ""
        else:
            raise ConfigError(_syntax(item))
        parts = key.strip().split(".")
        if not key.strip() or any(not p for p in parts) or (parts[-1] == APPEND and value is DELETE) \
                or APPEND in parts[:-1]:
            raise ConfigError(_syntax(item))
        parsed.append((parts, value))
    return parsed


def _index(node: List[Any], part: str, parts: List[str], depth: int) -> int:
    if not re.fullmatch(r"-?\d+", part):
        raise ConfigError(f"override {'.'.join(parts)}: '{'.'.join(parts[:depth])}' is a list; "
                          f"expected an index, got '{part}'")
    idx = int(part)
    if not -len(node) <= idx < len(node):
        raise ConfigError(f"override {'.'.join(parts)}: index {idx} out of range "
                          f"(the list has {len(node)} items)")
    return idx


def _apply_one(cfg: Dict[str, Any], parts: List[str], value: Any) -> None:
    path = ".".join(parts)
    if parts[-1] == APPEND:
        parts = parts[:-1]
    append = len(parts) < len(path.split("."))
    node: Any = cfg
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth + 1])
        if isinstance(node, list):
            key: Any = _index(node, part, parts, depth)
        elif isinstance(node, dict):
            key = part
            if not last and node.get(part) is None:
                if value is DELETE:
                    return  # deleting below a missing key: nothing to do
                node[part] = {}
        else:
            raise ConfigError(f"override {path}: '{where}' cannot be set, its parent is a {type(node).__name__}")
        if not last:
            node = node[key]
            continue
        if value is DELETE:
            if isinstance(node, list) or key in node:
                del node[key]
        elif append:
            target = node.get(key) if isinstance(node, dict) else node[key]
            if target is None:
                target = []
                node[key] = target
            if not isinstance(target, list):
                raise ConfigError(f"override {path}: '{where}' is a {type(target).__name__}, not a list; "
                                  "'.+=' appends to lists only")
            target.append(value)
        else:
            node[key] = value


def apply_overrides(cfg: Dict[str, Any], overrides: Sequence[Tuple[List[str], Any]]) -> Dict[str, Any]:
    """Apply parsed overrides to ``cfg`` in order (see the module docstring for the syntax)."""
    for parts, value in overrides:
        _apply_one(cfg, parts, value)
    return cfg
