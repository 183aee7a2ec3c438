"""``inference.yml``, the description of an exported model, and the integrity of the export folder.

An export folder is one unit. :func:`write_export_meta` records the size and SHA-256 of every
file of the folder in its ``inference.yml`` (``files``); :func:`read_export_meta` reads and checks
that file, and :func:`check_export_files` compares the folder with it before anything is loaded:

- every listed file is a regular file of the folder (not a symbolic link) with its recorded size
  and digest: a truncated ``inference.pdiparams`` or a file copied from another export is a
  one-line :class:`~ppnets.errors.DataError` naming it, not a runtime's C++ error;
- a model file a runtime would load (:data:`~ppnets.deploy.runtimes.RUNTIME_FILES`) that is not
  listed is refused too: an ``inference.onnx`` left from another model is never used.

:func:`check_onnx_file` reads an ONNX file's structure before a runtime does: a file that is not
ONNX, or whose external data would be read from outside the folder, is one line.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterator, Optional

import yaml

from ..config.yaml_io import read_yaml_file
from ..errors import ConfigError, DataError, short_repr
from ..utils.files import atomic_open, sha256_file
from .runtimes import RUNTIME_FILES

__all__ = ["META_FILE", "file_digests", "read_export_meta", "write_export_meta", "check_export_files",
           "check_onnx_file"]

META_FILE = "inference.yml"

_REEXPORT = "re-export it with tools/export_model.py"


def _remedy(path: str) -> str:
    """What rewrites the file ``path``: tools/quantize.py for the INT8 files, else a re-export."""
    return "run tools/quantize.py again" if os.path.basename(path).startswith("inference.int8.") else _REEXPORT


def file_digests(folder: str) -> Dict[str, Dict[str, Any]]:
    """``{name: {"bytes": size, "sha256": hex}}`` of the regular files in ``folder`` (``inference.yml`` excluded)."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name != META_FILE and os.path.isfile(path) and not os.path.islink(path):
            out[name] = {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}
    return out


def write_export_meta(folder: str, meta: Dict[str, Any]) -> Dict[str, Any]:
    """Write ``meta`` as ``<folder>/inference.yml`` (atomically), its ``files`` being the digests of
    every file now in ``folder``; returns the meta written."""
    meta = dict(meta, files=file_digests(folder))
    with atomic_open(os.path.join(folder, META_FILE), "w", encoding="utf-8") as f:
        yaml.safe_dump(meta, f, sort_keys=False, allow_unicode=True)
    return meta


def _refuse_link(path: str) -> None:
    if os.path.islink(path):
        raise DataError(f"{path}: a symbolic link (to {short_repr(os.readlink(path))}); an export folder holds its "
                        f"own files, so it is not followed; {_remedy(path)}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def read_export_meta(model_dir: str) -> Dict[str, Any]:
    """The checked contents of ``<model_dir>/inference.yml``."""
    path = os.path.join(model_dir, META_FILE)
    _refuse_link(path)
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
    if not (isinstance(shape, list) and len(shape) == 3 and all(_positive_int(d) for d in shape)):
        raise DataError(f"{path}: 'input_shape' must be [C, H, W] positive integers, got {short_repr(shape)}; "
                        f"{_REEXPORT}")
    class_num = meta.get("class_num")
    if class_num is not None and not _positive_int(class_num):
        raise DataError(f"{path}: 'class_num' must be a positive integer, got {short_repr(class_num)}; {_REEXPORT}")
    names = meta.get("label_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise DataError(f"{path}: 'label_names' must be a list of names, got {short_repr(names)}; {_REEXPORT}")
    if names is not None and class_num is not None and len(names) != class_num:
        raise DataError(f"{path}: {len(names):,} label names for {class_num} classes (class_num); {_REEXPORT}")
    if not isinstance(meta.get("softmax", True), bool):
        raise DataError(f"{path}: 'softmax' must be true or false, got {short_repr(meta.get('softmax'))}")
    if not isinstance(meta.get("multilabel", False), bool):
        raise DataError(f"{path}: 'multilabel' must be true or false, got {short_repr(meta.get('multilabel'))}")
    threshold = meta.get("threshold")
    if meta.get("multilabel") and not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
                                       and 0.0 <= threshold <= 1.0):
        raise DataError(f"{path}: a multi-label export needs 'threshold' in [0, 1], got {short_repr(threshold)}; "
                        f"{_REEXPORT}")
    files = meta.get("files")
    if files is None:
        raise DataError(f"{path}: records no 'files' (their sizes and digests; an export of an older ppnets?); "
                        f"{_REEXPORT}")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in files.items()):
        raise DataError(f"{path}: 'files' must map file names to their size and digest; {_REEXPORT}")
    for name in files:
        if name in ("", ".", "..", META_FILE) or "/" in name or os.sep in name or "\0" in name:
            raise DataError(f"{path}: 'files' lists {short_repr(name)}, which is not a file of the export folder; "
                            f"{_REEXPORT}")
    return meta


def check_export_files(model_dir: str, meta: Dict[str, Any]) -> None:
    """The folder is the unit ``meta["files"]`` describes: every listed file is a regular file with
    its recorded size and SHA-256, and no model file of a runtime is there unlisted."""
    files = meta["files"]
    for name in RUNTIME_FILES:
        path = os.path.join(model_dir, name)
        if name not in files and os.path.lexists(path):
            _refuse_link(path)
            raise DataError(f"{path}: not listed in {META_FILE}, so it is not part of this export (left from another "
                            f"model?); remove it, or {_remedy(path)}")
    for name, want in files.items():
        path = os.path.join(model_dir, name)
        _refuse_link(path)
        if not os.path.isfile(path):
            raise DataError(f"{path}: missing, but {META_FILE} lists it; {_remedy(path)}")
        size = os.path.getsize(path)
        if size != want.get("bytes"):
            raise DataError(f"{path}: {size} bytes, but {META_FILE} records {short_repr(want.get('bytes'))} "
                            f"(truncated, or from another export?); {_remedy(path)}")
        if sha256_file(path) != want.get("sha256"):
            raise DataError(f"{path}: its content differs from what {META_FILE} records (damaged, or from another "
                            f"export?); {_remedy(path)}")


def _tensors(graph: Any, depth: int = 0) -> Iterator[Any]:
    """Every tensor of an ONNX graph that may hold data: initializers, node attributes, sub-graphs."""
    if depth > 32:
        raise DataError("sub-graphs nested more than 32 levels")
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g, depth + 1)
            for g in attr.graphs:
                yield from _tensors(g, depth + 1)


def check_onnx_file(path: str, listed: Optional[Dict[str, Any]] = None) -> None:
    """``path`` is an ONNX model whose external data (if any) are files of its own folder listed
    in ``listed`` (``inference.yml``'s ``files``). Skipped when the ``onnx`` package is absent
    (the runtime's own error, made one line by :func:`~ppnets.deploy.runtimes.create_runtime`, remains)."""
    try:
        import onnx
    except ImportError:
        return
    _refuse_link(path)
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise DataError(f"{path}: not an ONNX model ({type(e).__name__}); {_remedy(path)}") from None
    graph = model.graph
    if model.ir_version <= 0 or not graph.node or not graph.input or not graph.output:
        raise DataError(f"{path}: not an ONNX model (no graph with inputs, nodes and outputs); {_remedy(path)}")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        for tensor in _tensors(graph):
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            name = os.path.normpath(location)
            inside = name == os.path.basename(name) and name not in ("", ".", "..") \
                and os.path.realpath(os.path.join(folder, name)) == os.path.join(os.path.realpath(folder), name)
            if not inside or (listed is not None and name not in listed):
                where = "a file inference.yml does not list" if inside else "outside the export folder"
                raise DataError(f"the external data of tensor {short_repr(tensor.name)} are at {short_repr(location)}, "
                                f"{where}: refused")
    except DataError as e:
        raise DataError(f"{path}: {e}; {_remedy(path)}") from None
