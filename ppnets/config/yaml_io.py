"""Reading and writing config files: safe YAML, ``_base_`` inheritance and the deep merge.

Files are parsed with a :class:`yaml.SafeLoader` subclass only (no arbitrary objects). A file may
name one or more ``_base_`` files, merged first, in order, then the file itself on top.

Hostile or broken YAML is a one-line ConfigError in bounded time and memory: a file larger than
:data:`MAX_CONFIG_BYTES`, mappings/lists nested deeper than :data:`MAX_DEPTH`, aliases that
expand to more than :data:`MAX_VALUES` values (a "billion laughs" file), and a key written
twice in one mapping (YAML would silently keep only the last block).
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any, Dict, Tuple

import yaml

from ..errors import ConfigError, short_repr

__all__ = ["yaml_load", "read_yaml_file", "merge", "load_with_bases", "dump_config",
           "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_VALUES"]

#: the largest config file read (configs are a few KiB)
MAX_CONFIG_BYTES = 1 << 20
#: the deepest nesting of mappings and lists (configs need fewer than 10 levels)
MAX_DEPTH = 64
#: the most values a config may expand to, aliases counted at every use (configs have hundreds)
MAX_VALUES = 100_000


class _Limit(yaml.YAMLError):
    """A limit of this module was hit at ``mark``."""

    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.message, self.mark = message, mark


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``), refuses keys
    repeated in one mapping and nesting deeper than :data:`MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Limit(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        seen: Dict[Tuple[str, str], int] = {}
        for key, _ in node.value:  # as written: merge keys (<<) are not expanded yet
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                first = seen.setdefault((key.tag, key.value), key.start_mark.line)
                if first != key.start_mark.line:
                    raise _Limit(f"duplicate key {short_repr(key.value)} (first on line {first + 1}); YAML would "
                                 "keep only the last one and silently drop the first — merge them into one",
                                 key.start_mark)
        return node


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _check_expansion(data: Any, where: str) -> None:
    """Refuse ``data`` if it has more than :data:`MAX_VALUES` values, shared (aliased) ones counted
    at every use — what copying, validating or printing it would cost. Stops counting at the limit."""
    stack, count = [data], 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(f"{where}: expands to more than {MAX_VALUES:,} values (YAML aliases repeating large "
                              "blocks?); a config has a few hundred")
        if isinstance(node, dict):
            stack.extend(node.values())
            count += len(node)  # the keys
        elif isinstance(node, list):
            stack.extend(node)


def yaml_load(text: str, where: str) -> Any:
    """Parse YAML ``text``; a syntax error or a limit of this module is a ConfigError naming
    ``where``, line and column."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        mark = e.mark if isinstance(e, _Limit) else getattr(e, "problem_mark", None)
        pos = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        if isinstance(e, _Limit):
            raise ConfigError(f"{where}:{pos}: {e.message}") from None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}:{pos}: malformed YAML: {str(problem)[:200]}") from None
    _check_expansion(data, where)
    return data


def read_yaml_file(path: str) -> Dict[str, Any]:
    """The top-level mapping of the YAML file ``path`` (an empty file is ``{}``)."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB, which no config is "
                              "(is it a config file?)")
        text = raw.decode("utf-8-sig")  # a UTF-8 byte-order mark is dropped
    except UnicodeDecodeError as e:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 text (byte {e.start}: "
                          f"{raw[e.start:e.start + 1]!r})") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
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
        raise ConfigError(f"{path}: _base_: expected a file name or a list of file names, got {short_repr(bases)}")
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
