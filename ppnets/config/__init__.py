"""YAML configs: loading with ``_base_`` inheritance, ``-o`` overrides, PaddleClas compatibility,
the schema and its validation.

A config has PaddleClas's sections (``Global``, ``Arch``, ``Loss``, ``Optimizer``, ``DataLoader``,
``Metric``, ``Infer``, ``Export`` …). :func:`load_config` runs the steps in order:

1. :mod:`~ppnets.config.yaml_io` — safe YAML, ``_base_`` files deep-merged;
2. :mod:`~ppnets.config.overrides` — ``-o`` overrides (set, append, delete);
3. :mod:`~ppnets.config.paddleclas` — PaddleClas's own keys mapped to ppnets's, ignored with a
   notice, or refused with what to do instead;
4. :mod:`~ppnets.config.validate` — every key checked against :mod:`~ppnets.config.schema`, all
   problems reported at once, defaults filled.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

from ..errors import ConfigError, closest, did_you_mean
from ..utils.shipped import config_names, find_config, resolve_shipped_data
from .overrides import apply_overrides, parse_overrides
from .paddleclas import translate
from .schema import REQUIRED, SCHEMA, Key, LabeledList, Named, NamedList, Section
from .types import check_type, short_repr, type_name
from .validate import Problems, validate
from .yaml_io import dump_config, load_with_bases, merge, yaml_load

__all__ = ["Config", "load_config", "parse_overrides", "apply_overrides", "merge", "validate", "dump_config",
           "SCHEMA", "Key", "Section", "Named", "NamedList", "LabeledList", "REQUIRED", "check_type", "type_name", "short_repr",
           "yaml_load", "resolve_config_path"]


class Config(dict):
    """A validated config (a plain ``dict`` of sections) and the ``notices`` its loading produced:
    PaddleClas keys that were mapped or ignored, values that were clipped."""

    notices: List[str]

    def __init__(self, data: Dict[str, Any], notices: Optional[List[str]] = None) -> None:
        super().__init__(data)
        self.notices = list(notices or [])


def load_config(path: str, overrides: Optional[Sequence[str]] = None) -> Config:
    """Read ``path`` (with its ``_base_`` chain), apply ``-o`` overrides, translate PaddleClas keys,
    validate and fill defaults. All problems are raised together as one multi-line ConfigError.

    ``path`` is a file, or the name of a shipped config (``mobilenetv2``, ``digits/pplcnet``: see
    :func:`~ppnets.utils.shipped.find_config`). ``./dataset/digits/…`` paths that the working
    directory lacks are read from the digits dataset shipped with ppnets (with a notice)."""
    path = resolve_config_path(path)
    cfg = load_with_bases(path)
    apply_overrides(cfg, parse_overrides(overrides))
    for name, section in SCHEMA.items():   # e.g. -o Global=5: one line, before anything reads the section
        value = cfg.get(name)
        if isinstance(section, Section) and value is not None and not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a section (a mapping of its keys), got {short_repr(value)}; an "
                              f"override sets one key: -o {name}.key=value")
    problems = Problems()
    notices = resolve_shipped_data(cfg) + translate(cfg, problems.add)
    return Config(validate(cfg, problems), notices)


def resolve_config_path(path: str) -> str:
    """``path`` when it is a file, else the shipped config it names; a ConfigError otherwise."""
    if os.path.isfile(path):
        return path
    shipped = find_config(path)
    if shipped is not None:
        return shipped
    names = config_names()
    name = os.path.splitext(os.path.normpath(path))[0].replace(os.sep, "/").removeprefix("configs/")
    if os.path.isabs(path) or os.path.splitext(path)[1]:  # meant as a file: a hint only for a near-miss
        raise ConfigError(f"config file not found: {path}{did_you_mean(name, names)}")
    near = closest(name, names, 3)
    hint = f"; shipped configs like it: {', '.join(near)}" if near else \
        f"; or give a shipped config by name, e.g. {', '.join(names[:3])}" if names else ""
    raise ConfigError(f"config file not found: {path}{hint}")
