"""``inference.yml``, the description of an exported model, and the integrity of the export folder.

:func:`file_digests` records the size and SHA-256 of every file of an export in its
``inference.yml``; :func:`read_export_meta` reads and checks that file, and
:func:`check_export_files` compares the folder with it, so a damaged export — an empty
``inference.yml``, a truncated ``inference.pdiparams``, a file copied from another export — is
a one-line :class:`~ppnets.errors.DataError` naming the file, not a runtime's C++ error.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict

from ..config.yaml_io import read_yaml_file
from ..errors import ConfigError, DataError, short_repr

__all__ = ["META_FILE", "file_digests", "read_export_meta", "check_export_files"]

META_FILE = "inference.yml"

_REEXPORT = "re-export it with tools/export_model.py"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: str) -> Dict[str, Dict[str, Any]]:
    """``{name: {"bytes": size, "sha256": hex}}`` of the files in ``folder`` (``inference.yml`` excluded)."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name != META_FILE and os.path.isfile(path):
            out[name] = {"bytes": os.path.getsize(path), "sha256": _sha256(path)}
    return out


def read_export_meta(model_dir: str) -> Dict[str, Any]:
    """The checked contents of ``<model_dir>/inference.yml``."""
    path = os.path.join(model_dir, META_FILE)
    try:
        meta = read_yaml_file(path)
    except ConfigError as e:
        raise DataError(str(e)) from None
    if not meta:
        raise DataError(f"{path}: empty; {_REEXPORT}")
    ops = meta.get("transform_ops")
    if not isinstance(ops, list) or not ops or not all(isinstance(op, dict) and len(op) == 1 for op in ops):
        raise DataError(f"{path}: 'transform_ops' must be a list of {{Op: {{options}}}} items, got "
                        f"{short_repr(ops)}; {_REEXPORT}")
    shape = meta.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 3
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise DataError(f"{path}: 'input_shape' must be [C, H, W] positive integers, got {short_repr(shape)}; "
                        f"{_REEXPORT}")
    names = meta.get("label_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise DataError(f"{path}: 'label_names' must be a list of names, got {short_repr(names)}; {_REEXPORT}")
    if not isinstance(meta.get("softmax", True), bool):
        raise DataError(f"{path}: 'softmax' must be true or false, got {short_repr(meta.get('softmax'))}")
    if not isinstance(meta.get("multilabel", False), bool):
        raise DataError(f"{path}: 'multilabel' must be true or false, got {short_repr(meta.get('multilabel'))}")
    threshold = meta.get("threshold")
    if meta.get("multilabel") and not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
                                       and 0.0 <= threshold <= 1.0):
        raise DataError(f"{path}: a multi-label export needs 'threshold' in [0, 1], got {short_repr(threshold)}; "
                        f"{_REEXPORT}")
    files = meta.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        raise DataError(f"{path}: 'files' must map file names to their size and digest; {_REEXPORT}")
    return meta


def check_export_files(model_dir: str, meta: Dict[str, Any]) -> None:
    """Every file ``meta["files"]`` records has its recorded size and SHA-256 (exports written before
    ``files`` was recorded are not checked)."""
    for name, want in meta.get("files", {}).items():
        path = os.path.join(model_dir, str(name))
        if not os.path.isfile(path):
            raise DataError(f"{path}: missing, but {META_FILE} lists it; {_REEXPORT}")
        size = os.path.getsize(path)
        if size != want.get("bytes"):
            raise DataError(f"{path}: {size} bytes, but {META_FILE} records {want.get('bytes')} (truncated, or from "
                            f"another export?); {_REEXPORT}")
        if _sha256(path) != want.get("sha256"):
            raise DataError(f"{path}: its content differs from what {META_FILE} records (damaged, or from another "
                            f"export?); {_REEXPORT}")
