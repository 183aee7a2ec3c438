"""What ships with ppnets besides its code: the configs and the digits dataset.

In a checkout they are the repository's ``configs/`` and ``dataset/digits/``; ``pip install .``
copies both into the package, as ``ppnets/configs/`` and ``ppnets/dataset/digits/`` (see
``setup.py``). So ``-c mobilenetv2`` finds ``configs/mobilenetv2.yaml`` from any directory, and a
config's ``./dataset/digits/…`` paths, when the working directory has no such folder, are read
from the shipped copy (:func:`resolve_shipped_data`).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

__all__ = ["shipped_path", "config_names", "find_config", "resolve_shipped_data", "DIGITS"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the shipped dataset's path as the configs write it (relative to the working directory)
DIGITS = os.path.join("dataset", "digits")


def shipped_path(*parts: str) -> Optional[str]:
    """``ppnets/<parts>`` of an installed package, else ``<checkout>/<parts>``; None when neither exists."""
    checkout = os.path.dirname(_PACKAGE)
    bases = [_PACKAGE]
    if os.path.isfile(os.path.join(checkout, "pyproject.toml")):  # a checkout, not site-packages
        bases.append(checkout)
    for base in bases:
        path = os.path.join(base, *parts)
        if os.path.exists(path):
            return path
    return None


def config_names() -> List[str]:
    """Every shipped config by name: its path under ``configs/`` without ``.yaml`` (``digits/pplcnet``),
    shallowest first."""
    root = shipped_path("configs")
    if root is None:
        return []
    names = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))  # _base_ files are not runs
        rel = os.path.relpath(folder, root)
        names += [os.path.normpath(os.path.join(rel, f[:-5])).replace(os.sep, "/")
                  for f in sorted(files) if f.endswith(".yaml")]
    return sorted(names, key=lambda n: (n.count("/"), n.lower()))  # mobilenetv2, digits/…, ImageNet/…/…


def find_config(name: str) -> Optional[str]:
    """The shipped config ``name`` names: ``mobilenetv2``, ``digits/pplcnet``, with or without
    ``.yaml`` and a leading ``configs/`` (so a checkout's ``-c configs/x.yaml`` works anywhere)."""
    root = shipped_path("configs")
    if root is None or os.path.isabs(name):
        return None
    rel = os.path.normpath(name)
    if rel.split(os.sep)[0] == "configs":
        rel = rel[len("configs") + 1:]
    if not rel or rel.startswith(".."):
        return None
    for candidate in (rel, rel + ".yaml"):
        path = os.path.join(root, candidate)
        if os.path.isfile(path):
            return path
    return None


def _shipped_digits(value: str) -> Optional[str]:
    """The shipped copy of ``value`` if it is a ``dataset/digits/…`` path missing here, else None."""
    if os.path.isabs(value):
        return None
    rel = os.path.normpath(value)
    if not (rel == DIGITS or rel.startswith(DIGITS + os.sep)) or os.path.exists(value):
        return None
    base = shipped_path(DIGITS)
    if base is None:
        return None
    path = os.path.join(base, rel[len(DIGITS) + 1:]) if rel != DIGITS else base
    return path if os.path.exists(path) else None


def resolve_shipped_data(cfg: Dict[str, Any]) -> List[str]:
    """Point every ``./dataset/digits/…`` value of ``cfg`` that the working directory lacks at the
    shipped digits dataset, in place; returns the notice saying so (or nothing)."""
    changed: List[str] = []

    def walk(node: Any, where: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            here = f"{where}.{key}" if where else str(key)
            if isinstance(value, str):
                shipped = _shipped_digits(value)
                if shipped is not None:
                    node[key] = shipped
                    changed.append(here)
            else:
                walk(value, here)

    walk(cfg, "")
    if not changed:
        return []
    return [f"{', '.join(changed)}: ./{DIGITS.replace(os.sep, '/')} is not in the working directory; using the "
            f"digits dataset shipped with ppnets ({shipped_path(DIGITS)})"]
