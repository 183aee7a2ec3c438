"""Checkpoints and pretrained weights.

A checkpoint is a prefix with three files, as in PaddleClas: ``<prefix>.pdparams``
(model weights), ``<prefix>.pdopt`` (optimizer and LR state) and ``<prefix>.pdstates``
(epoch, step, best metric, architecture, digests of the other files), plus ``.pdema``
with EMA. :func:`save_checkpoint` replaces a set as a unit: a process killed at any moment
leaves the new or the previous complete set, never a mix of two (the digests tell which).

``.pdparams``/``.pdopt`` are pickles: load only files you trust.
"""
from __future__ import annotations

import glob
import hashlib
import io
import os
import shutil
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import paddle

from ..errors import CheckpointError
from ..utils.logger import get_logger
from ..data.labels import read_label_file
from .report import quiet_paddle_warnings

__all__ = ["save_checkpoint", "load_checkpoint", "load_pretrained", "read_weights", "weights_path",
           "portable_optimizer_state", "restore_optimizer_state"]


def _serialize(obj: Any) -> bytes:
    buf = io.BytesIO()
    paddle.save(obj, buf)
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _rename_opt_keys(state: Dict[str, Any], mapping: Dict[str, str]) -> Dict[str, Any]:
    """Rename optimizer-state keys whose prefix is a parameter name (longest match first)."""
    names = sorted(mapping, key=len, reverse=True)

    def rename(key: str) -> str:
        for n in names:
            if key == n or key.startswith(n + "_") or key.startswith(n + "@"):
                return mapping[n] + key[len(n):]
        return key

    out: Dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, dict) and key != "LR_Scheduler":
            value = {rename(k): v for k, v in value.items()}  # e.g. AMP master weights
        out[rename(key)] = value
    return out


def portable_optimizer_state(optimizer: paddle.optimizer.Optimizer, model: paddle.nn.Layer) -> Dict[str, Any]:
    """The optimizer's state keyed by structured parameter names (``conv1._conv.weight@…``).

    Paddle keys accumulators by the parameters' generated names (``conv2d_36.w_0_velocity_0``),
    which depend on how many layers the process built before; structured names do not.
    """
    mapping = {p.name: f"{k}@" for k, p in model.named_parameters()}
    return _rename_opt_keys(optimizer.state_dict(), mapping)


def restore_optimizer_state(optimizer: paddle.optimizer.Optimizer, model: paddle.nn.Layer,
                            state: Dict[str, Any]) -> None:
    """Inverse of :func:`portable_optimizer_state`."""
    mapping = {f"{k}@": p.name for k, p in model.named_parameters()}
    with quiet_paddle_warnings():  # "unused values in state_dict": the LR scheduler's own bookkeeping
        optimizer.set_state_dict(_rename_opt_keys(state, mapping))


_SUFFIXES = ("pdparams", "pdopt", "pdema", "pdstates")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a filesystem without hard links
        shutil.copy2(src, dst)


def save_checkpoint(prefix: str, model: paddle.nn.Layer, optimizer: Optional[paddle.optimizer.Optimizer],
                    states: Dict[str, Any], extra_files: Optional[Dict[str, Any]] = None) -> None:
    """Save ``<prefix>.pdparams/.pdopt/.pdstates`` (+ ``extra_files``, e.g. ``{"pdema": …}``) as one unit.

    Every file is written to a temporary name and flushed first. The previous set is
    then hard-linked to ``<prefix>.bak.*`` before the new files are renamed into place
    (``.pdstates`` last) and the backup removed, so a process killed at any moment
    leaves either the new or the previous complete checkpoint, which
    :func:`load_checkpoint` finds by the digests recorded in ``.pdstates``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    blobs = {"pdparams": _serialize(model.state_dict())}
    if optimizer is not None:
        blobs["pdopt"] = _serialize(portable_optimizer_state(optimizer, model))
    for suffix, obj in (extra_files or {}).items():
        blobs[suffix] = _serialize(obj)
    blobs["pdstates"] = _serialize(dict(states, digests={k: _digest(v) for k, v in blobs.items()}))
    for stale in glob.glob(f"{glob.escape(prefix)}.*.tmp.*"):  # left by a process killed while saving
        os.remove(stale)
    tmp = {suffix: f"{prefix}.{suffix}.tmp.{os.getpid()}" for suffix in blobs}
    try:
        for suffix, data in blobs.items():
            _write_synced(tmp[suffix], data)
        backup = f"{prefix}.bak"
        # A backup left by an interrupted save may be the only complete set: keep it then.
        if not os.path.exists(f"{backup}.pdstates") or _is_complete(prefix):
            for suffix in _SUFFIXES:
                if os.path.exists(f"{backup}.{suffix}"):
                    os.remove(f"{backup}.{suffix}")
            if os.path.exists(f"{prefix}.pdstates"):
                for suffix in _SUFFIXES:
                    if os.path.exists(f"{prefix}.{suffix}"):
                        _link_or_copy(f"{prefix}.{suffix}", f"{backup}.{suffix}")
        for suffix in blobs:  # dicts keep insertion order: .pdstates is renamed last
            os.replace(tmp[suffix], f"{prefix}.{suffix}")
        for suffix in _SUFFIXES:
            if suffix not in blobs and os.path.exists(f"{prefix}.{suffix}"):
                os.remove(f"{prefix}.{suffix}")  # e.g. a stale .pdema of an earlier run
            if os.path.exists(f"{backup}.{suffix}"):
                os.remove(f"{backup}.{suffix}")
    except OSError as e:
        for path in tmp.values():
            if os.path.exists(path):
                os.remove(path)
        raise CheckpointError(f"cannot write checkpoint {prefix}: {e.strerror or e}") from None


def _is_complete(prefix: str) -> bool:
    """Whether ``prefix`` is a whole checkpoint (its files match the digests in its ``.pdstates``)."""
    try:
        _read_checkpoint(prefix)
        return True
    except CheckpointError:
        return False


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def checkpoint_prefix(path: str) -> str:
    """``prefix.pdparams`` or ``prefix`` → ``prefix`` (the inverse of :func:`weights_path`)."""
    return path[:-len(".pdparams")] if path.endswith(".pdparams") else path


def weights_path(path: str) -> str:
    """``prefix`` or ``prefix.pdparams`` → the ``.pdparams`` file."""
    return path if path.endswith(".pdparams") else f"{path}.pdparams"


def _load_file(path: str, what: str, numpy: bool = True) -> Tuple[Any, bytes]:
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise CheckpointError(f"{what} {path} is empty (0 bytes)")
    try:
        obj = paddle.load(io.BytesIO(data), return_numpy=numpy)
    except Exception as e:  # paddle raises assorted pickle/unpack errors for damaged files
        raise CheckpointError(f"cannot read {what} {path}: truncated or not a Paddle file "
                              f"({type(e).__name__})") from None
    return obj, data


def read_weights(path: str) -> Dict[str, np.ndarray]:
    """Read a ``.pdparams`` file (or prefix) as ``{key: numpy array}``."""
    obj, _ = _load_file(weights_path(path), "weights file")
    if not isinstance(obj, dict):
        raise CheckpointError(f"weights file {weights_path(path)} does not hold a state_dict")
    return {k: np.asarray(v) for k, v in obj.items()}


def _convert_if_paddleclas(weights: Dict[str, np.ndarray], arch: Optional[str]) -> Dict[str, np.ndarray]:
    """Rename a PaddleClas-layout file of a family ppnets lays out differently (EfficientNet)."""
    if arch is None:
        return weights
    from ..arch import model_info
    from ..arch.convert import convert_paddleclas_state_dict, is_paddleclas_layout
    if model_info(arch).from_paddleclas is not None and is_paddleclas_layout(arch, weights):
        get_logger().info(f"converting PaddleClas-layout weights to ppnets's {arch} layout")
        return convert_paddleclas_state_dict(arch, weights, check=False)
    return weights


def load_pretrained(model: paddle.nn.Layer, path: str, arch: Optional[str] = None,
                    strict: bool = False) -> Dict[str, List[str]]:
    """Initialise ``model`` from ``path``, skipping keys whose shape differs (e.g. another class count).

    PaddleClas-layout files of models ppnets lays out differently are converted first.
    Returns and logs ``{"loaded", "skipped", "missing", "unexpected"}`` key lists.
    ``strict`` (evaluation, export, inference): every parameter of the model must come from the
    file, else nothing is loaded and a :class:`CheckpointError` says what does not fit.
    """
    weights = _convert_if_paddleclas(read_weights(path), arch)
    own = model.state_dict()
    report: Dict[str, List[str]] = {"loaded": [], "skipped": [], "missing": [], "unexpected": []}
    to_load = {}
    for key, value in weights.items():
        if key not in own:
            report["unexpected"].append(key)
        elif list(value.shape) != list(own[key].shape):
            report["skipped"].append(f"{key} {list(value.shape)} vs model {list(own[key].shape)}")
        else:
            to_load[key] = value.astype(own[key].numpy().dtype) if value.dtype != np.float32 else value
            report["loaded"].append(key)
    report["missing"] = [k for k in own if k not in weights]
    if strict and (report["skipped"] or report["missing"]):
        raise CheckpointError(f"{weights_path(path)}: does not fit Arch {arch or type(model).__name__} with "
                              f"class_num={getattr(model, 'class_num', '?')} ({len(report['skipped'])} mismatched, "
                              f"{len(report['missing'])} missing keys, e.g. "
                              f"{(report['skipped'] + report['missing'])[0]})")
    if not to_load:
        raise CheckpointError(f"pretrained weights {weights_path(path)} share no key and shape with the model "
                              f"({len(report['unexpected'])} unexpected, {len(report['skipped'])} mismatched): "
                              "is it from another architecture?")
    with quiet_paddle_warnings():  # ppnets reports skipped/missing keys below
        model.set_state_dict(to_load)
    log = get_logger()
    log.info(f"loaded pretrained weights {weights_path(path)}: {len(report['loaded'])}/{len(own)} tensors")
    for title in ("skipped", "missing", "unexpected"):
        items = report[title]
        if items:
            more = f" … and {len(items) - 8} more" if len(items) > 8 else ""
            log.warning(f"pretrained {title} ({len(items)}): {', '.join(items[:8])}{more}")
    return report


def trained_class_names(weights: Optional[str]) -> Optional[List[str]]:
    """The class names ``weights`` (a prefix or ``.pdparams``) were trained with: the checkpoint's
    ``class_names``, else the run's ``label_list.txt`` beside it; None when neither exists."""
    if not weights:
        return None
    prefix = checkpoint_prefix(weights)
    if os.path.isfile(f"{prefix}.pdstates"):
        states, _ = _load_file(f"{prefix}.pdstates", "checkpoint states file")
        names = states.get("class_names") if isinstance(states, dict) else None
        if names:
            return list(names)
    label_list = os.path.join(os.path.dirname(prefix), "label_list.txt")
    if os.path.isfile(label_list):
        return read_label_file(label_list)
    return None


def _read_checkpoint(prefix: str) -> Tuple[Dict[str, Any], Dict[str, bytes]]:
    """Read ``<prefix>.pdstates`` and the files it lists, checking each against its digest."""
    states, _ = _load_file(f"{prefix}.pdstates", "checkpoint states file")
    if not isinstance(states, dict) or "epoch" not in states:
        raise CheckpointError(f"{prefix}.pdstates is not a ppnets checkpoint states file")
    blobs: Dict[str, bytes] = {}
    for suffix, digest in states.get("digests", {"pdparams": None}).items():
        path = f"{prefix}.{suffix}"
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint file not found: {path}")
        with open(path, "rb") as f:
            blobs[suffix] = f.read()
        if digest is not None and _digest(blobs[suffix]) != digest:
            raise CheckpointError(f"checkpoint {prefix} is inconsistent: {path} does not belong to "
                                  f"{prefix}.pdstates (interrupted while saving?)")
    return states, blobs


def _decode(blob: bytes, path: str, numpy: bool) -> Any:
    try:
        return paddle.load(io.BytesIO(blob), return_numpy=numpy)
    except Exception as e:
        raise CheckpointError(f"cannot read {path}: truncated or not a Paddle file ({type(e).__name__})") from None


def load_checkpoint(prefix: str, model: paddle.nn.Layer, optimizer: Optional[paddle.optimizer.Optimizer],
                    arch: Optional[str] = None) -> Dict[str, Any]:
    """Restore model, optimizer and LR from ``prefix``; returns the saved states (epoch, best metric …).

    If the run was killed while ``prefix`` was being rewritten, the previous checkpoint
    (``<prefix>.bak.*``, see :func:`save_checkpoint`) is used instead, with a warning.
    """
    prefix = checkpoint_prefix(prefix)
    try:
        states, blobs = _read_checkpoint(prefix)
    except CheckpointError as error:
        if not os.path.isfile(f"{prefix}.bak.pdstates"):
            raise
        try:
            states, blobs = _read_checkpoint(f"{prefix}.bak")
        except CheckpointError:
            raise error from None
        get_logger().warning(f"{error}; using the previous checkpoint {prefix}.bak (written before the interruption)")
        prefix = f"{prefix}.bak"
    if arch is not None and states.get("arch") not in (None, arch):
        raise CheckpointError(f"checkpoint {prefix} was saved from Arch.name={states.get('arch')}, "
                              f"but the config builds {arch}")
    params = _decode(blobs["pdparams"], f"{prefix}.pdparams", numpy=True)
    own = model.state_dict()
    bad = [k for k in own if k not in params or list(np.shape(params[k])) != list(own[k].shape)]
    extra = [k for k in params if k not in own]
    if bad or extra:
        raise CheckpointError(f"checkpoint {prefix} does not fit the model: {len(bad)} missing or mismatched keys "
                              f"(e.g. {(bad or extra)[0]}), {len(extra)} unexpected")
    with quiet_paddle_warnings():
        model.set_state_dict(params)
    if optimizer is not None:
        if "pdopt" not in blobs:
            raise CheckpointError(f"checkpoint {prefix} has no optimizer state ({prefix}.pdopt)")
        restore_optimizer_state(optimizer, model, _decode(blobs["pdopt"], f"{prefix}.pdopt", numpy=False))
    for suffix, blob in blobs.items():
        if suffix not in ("pdparams", "pdopt"):
            states.setdefault("extra", {})[suffix] = _decode(blob, f"{prefix}.{suffix}", numpy=False)
    return states
