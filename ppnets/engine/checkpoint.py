"""Checkpoints and pretrained weights.

A checkpoint is a prefix with three files, as in PaddleClas: ``<prefix>.pdparams``
(model weights), ``<prefix>.pdopt`` (optimizer and LR state) and ``<prefix>.pdstates``
(epoch, step, best metric, architecture, digests of the other two files). Each file is
written to a temporary name, flushed to disk and renamed, and ``.pdstates`` is renamed
last; a reader checks the digests, so a checkpoint interrupted while being written is
detected instead of silently mixing two epochs.

``.pdparams``/``.pdopt`` are pickles: load only files you trust.
"""
from __future__ import annotations

import hashlib
import io
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import paddle

from ..errors import CheckpointError
from ..utils.logger import get_logger

__all__ = ["save_checkpoint", "load_checkpoint", "load_pretrained", "read_weights", "atomic_write",
           "weights_path"]


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file + fsync + rename (never a partial file)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None
    os.replace(tmp, path)


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
    optimizer.set_state_dict(_rename_opt_keys(state, mapping))


def save_checkpoint(prefix: str, model: paddle.nn.Layer, optimizer: Optional[paddle.optimizer.Optimizer],
                    states: Dict[str, Any], extra_files: Optional[Dict[str, Any]] = None) -> None:
    """Save ``<prefix>.pdparams/.pdopt/.pdstates`` atomically (see the module docstring).

    ``extra_files`` maps further suffixes (e.g. ``"pdema"``) to objects saved alongside.
    """
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    blobs = {"pdparams": _serialize(model.state_dict())}
    if optimizer is not None:
        blobs["pdopt"] = _serialize(portable_optimizer_state(optimizer, model))
    for suffix, obj in (extra_files or {}).items():
        blobs[suffix] = _serialize(obj)
    states = dict(states, digests={k: _digest(v) for k, v in blobs.items()})
    for suffix, data in blobs.items():
        atomic_write(f"{prefix}.{suffix}", data)
    atomic_write(f"{prefix}.pdstates", _serialize(states))


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


def load_pretrained(model: paddle.nn.Layer, path: str, arch: Optional[str] = None) -> Dict[str, List[str]]:
    """Initialise ``model`` from ``path``, skipping keys whose shape differs (e.g. another class count).

    PaddleClas-layout files of models ppnets lays out differently are converted first.
    Returns and logs ``{"loaded", "skipped", "missing", "unexpected"}`` key lists.
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
    if not to_load:
        raise CheckpointError(f"pretrained weights {weights_path(path)} share no key and shape with the model "
                              f"({len(report['unexpected'])} unexpected, {len(report['skipped'])} mismatched): "
                              "is it from another architecture?")
    model.set_state_dict(to_load)
    log = get_logger()
    log.info(f"loaded pretrained weights {weights_path(path)}: {len(report['loaded'])}/{len(own)} tensors")
    for title in ("skipped", "missing", "unexpected"):
        if report[title]:
            log.warning(f"pretrained {title} ({len(report[title])}): {', '.join(report[title])}")
    return report


def load_checkpoint(prefix: str, model: paddle.nn.Layer, optimizer: Optional[paddle.optimizer.Optimizer],
                    arch: Optional[str] = None) -> Dict[str, Any]:
    """Restore model, optimizer and LR from ``prefix``; returns the saved states (epoch, best metric …)."""
    if prefix.endswith(".pdparams"):
        prefix = prefix[: -len(".pdparams")]
    states, _ = _load_file(f"{prefix}.pdstates", "checkpoint states file")
    params, params_bytes = _load_file(f"{prefix}.pdparams", "checkpoint weights")
    digests = states.get("digests", {})
    if digests.get("pdparams") not in (None, _digest(params_bytes)):
        raise CheckpointError(f"checkpoint {prefix} is inconsistent: {prefix}.pdparams does not belong to "
                              f"{prefix}.pdstates (interrupted while saving?)")
    if arch is not None and states.get("arch") not in (None, arch):
        raise CheckpointError(f"checkpoint {prefix} was saved from Arch.name={states.get('arch')}, "
                              f"but the config builds {arch}")
    own = model.state_dict()
    bad = [k for k in own if k not in params or list(np.shape(params[k])) != list(own[k].shape)]
    extra = [k for k in params if k not in own]
    if bad or extra:
        raise CheckpointError(f"checkpoint {prefix} does not fit the model: {len(bad)} missing or mismatched keys "
                              f"(e.g. {(bad or extra)[0]}), {len(extra)} unexpected")
    model.set_state_dict(params)
    if optimizer is not None:
        opt, opt_bytes = _load_file(f"{prefix}.pdopt", "checkpoint optimizer state", numpy=False)
        if digests.get("pdopt") not in (None, _digest(opt_bytes)):
            raise CheckpointError(f"checkpoint {prefix} is inconsistent: {prefix}.pdopt does not belong to "
                                  f"{prefix}.pdstates (interrupted while saving?)")
        restore_optimizer_state(optimizer, model, opt)
    for suffix in digests:
        if suffix not in ("pdparams", "pdopt"):
            obj, data = _load_file(f"{prefix}.{suffix}", f"checkpoint {suffix} file", numpy=False)
            if digests[suffix] != _digest(data):
                raise CheckpointError(f"checkpoint {prefix} is inconsistent: {prefix}.{suffix} does not belong "
                                      f"to {prefix}.pdstates (interrupted while saving?)")
            states.setdefault("extra", {})[suffix] = obj
    return states
