"""Optional extras: a feature whose packages are missing stops at once, with one line naming the
``pip install`` that adds them (``pip install 'ppnets[deploy]'`` adds the extra's packages to an
installed ppnets, editable or not)."""
from __future__ import annotations

import importlib.util
from typing import List, Sequence

from ..errors import MissingExtraError

__all__ = ["SERVE", "ONNX_EXPORT", "missing_modules", "require_extra"]

#: what ``ppnets serve`` imports (python-multipart parses the upload form)
SERVE = ("fastapi", "uvicorn", "python_multipart")
#: what the ONNX export needs: the converter, the constant folding, and ONNX Runtime for the parity check
ONNX_EXPORT = ("paddle2onnx", "onnx", "polygraphy", "onnx_graphsurgeon", "onnxruntime")

#: import name → the name pip knows it by, where they differ
_DISTRIBUTIONS = {"python_multipart": "python-multipart", "onnx_graphsurgeon": "onnx-graphsurgeon"}


def missing_modules(modules: Sequence[str]) -> List[str]:
    """The modules of ``modules`` that cannot be imported (found without importing them)."""
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or a stubbed-out module
            found = False
        if not found:
            out.append(name)
    return out


def require_extra(purpose: str, modules: Sequence[str], extra: str = "deploy") -> None:
    """Raise a :class:`~ppnets.errors.MissingExtraError` naming the install command when any of
    ``modules`` is missing: ``ppnets serve needs fastapi, uvicorn: pip install 'ppnets[deploy]'``."""
    missing = missing_modules(modules)
    if missing:
        names = ", ".join(_DISTRIBUTIONS.get(m, m) for m in missing)
        raise MissingExtraError(f"{purpose} needs {names} (the {extra} extra): pip install 'ppnets[{extra}]'")
