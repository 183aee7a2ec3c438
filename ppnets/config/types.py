"""Checking a config value against a typing annotation, and naming types in messages."""
from __future__ import annotations

import typing
from typing import Any, Sequence, Tuple

from ..errors import MAX_REPR, short_repr  # noqa: F401 (re-exported)

__all__ = ["check_type", "type_name", "short_repr"]

def type_name(tp: Any) -> str:
    """A readable name of the annotation ``tp`` (``int``, ``list of float``, ``str or null`` …)."""
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple, Sequence, typing.Sequence) or tp in (list, tuple):
        args = typing.get_args(tp)
        return f"list of {type_name(args[0])}" if args and args[0] is not Ellipsis else "list"
    if origin is dict or tp is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _is_sequence_type(tp: Any, origin: Any) -> bool:
    return origin in (list, tuple, typing.Sequence) or tp in (list, tuple) or \
        (origin is not None and getattr(origin, "__name__", "") == "Sequence")


def check_type(value: Any, tp: Any) -> Tuple[bool, Any]:
    """Return ``(ok, value)`` for ``value`` against the annotation ``tp``; ints are accepted as floats."""
    if tp is Any or tp is None or isinstance(tp, str):
        return True, value
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        for arg in typing.get_args(tp):
            ok, v = check_type(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if _is_sequence_type(tp, origin):
        if not isinstance(value, (list, tuple)):
            return False, value
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return False, value
            items = [check_type(v, a) for v, a in zip(value, args)]
        else:
            inner = args[0] if args else Any
            items = [check_type(v, inner) for v in value]
        if not all(ok for ok, _ in items):
            return False, value
        return True, [v for _, v in items]
    if origin is dict or tp is dict:
        return isinstance(value, dict), value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value
