"""One registry type for every named, configurable component.

Models, transform ops, datasets, losses, metrics, optimizers and LR schedules
are each kept in a :class:`Registry`; a config names an entry and the builder
looks it up. An unknown name raises :class:`~ppnets.errors.ConfigError` listing
the valid names.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional

from .errors import ConfigError, closest, did_you_mean, short_repr

#: how users list the entries of the larger registries
_LISTING = {"model": "ppnets.list_models() or python tools/model_table.py"}


class Registry:
    """A name → callable table for one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, Callable[..., Any]] = {}

    def register(self, obj: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None):
        """Register ``obj`` under ``name`` (default: its ``__name__``); usable as a decorator."""

        def _add(o: Callable[..., Any]) -> Callable[..., Any]:
            key = name or o.__name__
            if key in self._items:
                raise KeyError(f"{self.kind} '{key}' is registered twice")
            self._items[key] = o
            return o

        return _add(obj) if obj is not None else _add

    def get(self, name: str, where: str = "") -> Callable[..., Any]:
        """Return the entry ``name``; raise a ConfigError naming the closest valid ones otherwise."""
        if not isinstance(name, str) or name not in self._items:
            raise ConfigError(f"{where or self.kind}: {self._unknown(name)}")
        return self._items[name]

    def _unknown(self, name: Any) -> str:
        names = self.names()
        what = (f"unknown {self.kind} '{name}'{did_you_mean(name, names)}" if isinstance(name, str)
                else f"expected the name of a {self.kind}, got {short_repr(name)}")
        if len(names) <= 12:
            return f"{what}; valid: {', '.join(names)}"
        near = closest(str(name), names)
        return f"{what}; closest: {', '.join(near) if near else '(none)'} ({len(names)} {self.kind}s; see " \
               f"{_LISTING.get(self.kind, 'the docs')})"

    def build(self, name: str, kwargs: Optional[Dict[str, Any]] = None, where: str = "", **extra: Any) -> Any:
        """Look up ``name`` and call it with ``kwargs``, checking them against its signature."""
        fn = self.get(name, where)
        kwargs = dict(kwargs or {})
        check_kwargs(fn, kwargs, f"{where or self.kind}.{name}" if where else name, provided=extra)
        return fn(**kwargs, **extra)

    def names(self) -> List[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)


def accepted_kwargs(fn: Callable[..., Any]) -> Optional[List[str]]:
    """Keyword names ``fn`` accepts, or None when it takes ``**kwargs``."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    params = inspect.signature(target).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "self"
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def kwargs_problems(fn: Callable[..., Any], kwargs: Dict[str, Any], where: str,
                    provided: Optional[Dict[str, Any]] = None) -> List[str]:
    """One message per key of ``kwargs`` that ``fn`` does not take, as ``where: unknown key …``.

    With ``provided`` (the arguments the builder passes itself) the call is checked as a whole:
    a configured key that the builder sets, or a required argument nobody gives, is a problem too.
    """
    valid = accepted_kwargs(fn)
    if valid is None:
        return []
    problems = [f"{where}: unknown key '{key}'{did_you_mean(key, valid)}; valid: {', '.join(valid) or '(none)'}"
                for key in kwargs if key not in valid]
    if provided is None:
        return problems
    problems += [f"{where}: '{key}' is set by ppnets itself, remove it from the config"
                 for key in kwargs if key in provided]
    target = fn.__init__ if inspect.isclass(fn) else fn
    problems += [f"{where}: missing required key '{p.name}'" for p in inspect.signature(target).parameters.values()
                 if p.name in valid and p.default is inspect.Parameter.empty
                 and p.name not in kwargs and p.name not in provided]
    return problems


def check_kwargs(fn: Callable[..., Any], kwargs: Dict[str, Any], where: str,
                 provided: Optional[Dict[str, Any]] = None) -> None:
    """Raise a ConfigError listing :func:`kwargs_problems` (one per line), if there are any."""
    problems = kwargs_problems(fn, kwargs, where, provided)
    if problems:
        raise ConfigError("\n".join(problems))
