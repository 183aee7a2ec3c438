"""Checkpoints: a prefix with three files, as in PaddleClas: ``<prefix>.pdparams``
(model weights), ``<prefix>.pdopt`` (optimizer and LR state) and ``<prefix>.pdstates``
(epoch, step, best metric, architecture, digests of the other files), plus ``.pdema``
with EMA. With ``Global.weights_format: safetensors`` the model and EMA weights are
``<prefix>.safetensors`` and ``<prefix>.ema.safetensors`` instead. :func:`save_checkpoint`
replaces a set as a unit: a process killed at any moment leaves the new or the previous
complete set, never a mix of two (the digests tell which).

Every file is read through :mod:`~ppnets.checkpoint.serialization` (no code runs from a pickle)
and its contents are checked before use: the right type, keys and shapes of this model.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import paddle

from ..errors import CheckpointError
from ..utils.logger import get_logger
from ..utils.quiet import quiet_paddle_warnings
from .checks import check_optimizer_state, check_state_dict, check_states, fit_dtypes
from .optimizer_state import portable_optimizer_state, restore_optimizer_state
from .paddleclas import is_paddleclas_states, optimizer_state as paddleclas_optimizer_state
from .serialization import decode, encode, load
from .weights import WEIGHT_SUFFIXES, checkpoint_prefix, convert_if_paddleclas

__all__ = ["save_checkpoint", "load_checkpoint", "WEIGHTS_FORMATS"]

#: file suffix of the model weights in each ``Global.weights_format``; EMA weights add ``ema.``
WEIGHTS_FORMATS = {"pdparams": "pdparams", "safetensors": "safetensors"}


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


_SUFFIXES = ("pdparams", "safetensors", "pdopt", "pdema", "ema.safetensors", "pdstates")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a filesystem without hard links
        shutil.copy2(src, dst)


def save_checkpoint(prefix: str, model: paddle.nn.Layer, optimizer: Optional[paddle.optimizer.Optimizer],
                    states: Dict[str, Any], extra_files: Optional[Dict[str, Any]] = None,
                    weights_format: str = "pdparams") -> None:
    """Save ``<prefix>.pdparams/.pdopt/.pdstates`` (+ ``extra_files``, e.g. ``{"pdema": …}``) as one unit.

    ``weights_format``: ``pdparams`` (Paddle's pickle) or ``safetensors`` (``<prefix>.safetensors``);
    an extra file whose suffix ends in ``safetensors`` is written as safetensors too.
    Every file is written to a temporary name and flushed first. The previous set is
    then hard-linked to ``<prefix>.bak.*`` before the new files are renamed into place
    (``.pdstates`` last) and the backup removed, so a process killed at any moment
    leaves either the new or the previous complete checkpoint, which
    :func:`load_checkpoint` finds by the digests recorded in ``.pdstates``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    suffix = WEIGHTS_FORMATS[weights_format]
    blobs = {suffix: encode(model.state_dict(), suffix)}
    if optimizer is not None:
        blobs["pdopt"] = encode(portable_optimizer_state(optimizer, model), "pdopt")
    for extra, obj in (extra_files or {}).items():
        blobs[extra] = encode(obj, extra)
    blobs["pdstates"] = encode(dict(states, digests={k: _digest(v) for k, v in blobs.items()}), "pdstates")
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
        _read_checkpoint(prefix, trust=False)
        return True
    except CheckpointError:
        return False


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_checkpoint(prefix: str, trust: bool) -> Tuple[Dict[str, Any], Dict[str, bytes]]:
    """Read ``<prefix>.pdstates`` and the files it lists, checking each against its digest."""
    states, _ = load(f"{prefix}.pdstates", "checkpoint states file", trust)
    states = check_states(states, f"{prefix}.pdstates")
    blobs: Dict[str, bytes] = {}
    listed = states.get("digests")
    if listed is None:  # a PaddleClas checkpoint: its files as they are, without digests
        listed = {suffix: None for suffix in ("pdparams", "pdopt", "pdema")
                  if suffix == "pdparams" or os.path.isfile(f"{prefix}.{suffix}")}
    for suffix, digest in listed.items():
        path = f"{prefix}.{suffix}"
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint file not found: {path}")
        with open(path, "rb") as f:
            blobs[suffix] = f.read()
        if digest is not None and _digest(blobs[suffix]) != digest:
            raise CheckpointError(f"checkpoint {prefix} is inconsistent: {path} does not belong to "
                                  f"{prefix}.pdstates (interrupted while saving?)")
    if not any(s in blobs for s in WEIGHT_SUFFIXES):
        raise CheckpointError(f"{prefix}.pdstates lists no model weights ({prefix}.pdparams)")
    return states, blobs


def load_checkpoint(prefix: str, model: paddle.nn.Layer, optimizer: Optional[paddle.optimizer.Optimizer],
                    arch: Union[None, str, Sequence[str]] = None, trust: bool = False,
                    optimizer_name: Optional[str] = None) -> Dict[str, Any]:
    """Restore model, optimizer and LR from ``prefix``; returns the saved states (epoch, best metric …).

    ``arch``: the model the checkpoint must have been saved from, or several names of it (the first
    is named in the error).

    If the run was killed while ``prefix`` was being rewritten, the previous checkpoint
    (``<prefix>.bak.*``, see :func:`save_checkpoint`) is used instead, with a warning.
    ``optimizer_name`` (``Optimizer.name``) must be the one the checkpoint was saved with, if it
    recorded one. Every file's contents are checked against the model before anything is set.
    """
    prefix = checkpoint_prefix(prefix)
    try:
        states, blobs = _read_checkpoint(prefix, trust)
    except CheckpointError as error:
        if not os.path.isfile(f"{prefix}.bak.pdstates"):
            raise
        try:
            states, blobs = _read_checkpoint(f"{prefix}.bak", trust)
        except CheckpointError:
            raise error from None
        get_logger().warning(f"{error}; using the previous checkpoint {prefix}.bak (written before the interruption)")
        prefix = f"{prefix}.bak"
    names = (arch,) if isinstance(arch, str) else tuple(arch or ())
    # PaddleClas's files are converted for the registered model (the last name: the effective model's
    # name may say more, e.g. a changed width, see ppnets.engine.run_folder)
    arch = names[-1] if names else None
    if names and states.get("arch") not in (None, *names):
        raise CheckpointError(f"checkpoint {prefix} was saved from Arch.name={states.get('arch')}, "
                              f"but the config builds {names[0]}")
    if optimizer is not None and optimizer_name and states.get("optimizer") not in (None, optimizer_name):
        raise CheckpointError(f"checkpoint {prefix} was saved with Optimizer.name={states['optimizer']}, "
                              f"but the config uses {optimizer_name}")
    paddleclas = is_paddleclas_states(states)
    files = {name: f"{prefix}.{name}" for name in blobs}  # the file each blob came from, for messages
    if paddleclas and "pdema" in blobs:  # PaddleClas saves the EMA weights as .pdparams, the raw ones as .pdema
        blobs["pdparams"], blobs["pdema"] = blobs["pdema"], blobs["pdparams"]
        files["pdparams"], files["pdema"] = files["pdema"], files["pdparams"]
    suffix = next(s for s in WEIGHT_SUFFIXES if s in blobs)
    where = files[suffix]
    params = check_state_dict(decode(blobs[suffix], where, "checkpoint weights file", trust), where)
    if paddleclas and arch is not None:
        params = convert_if_paddleclas(params, arch)
    own = model.state_dict()
    bad = [k for k in own if k not in params or list(np.shape(params[k])) != list(own[k].shape)]
    extra = [k for k in params if k not in own]
    if bad or extra:
        raise CheckpointError(f"checkpoint {prefix} does not fit the model: {len(bad)} missing or mismatched keys "
                              f"(e.g. {(bad or extra)[0]}), {len(extra)} unexpected")
    params = fit_dtypes(params, own, where)
    opt_state = None
    if optimizer is not None:
        if "pdopt" not in blobs:
            raise CheckpointError(f"checkpoint {prefix} has no optimizer state ({prefix}.pdopt)")
        opt_state = decode(blobs["pdopt"], f"{prefix}.pdopt", "optimizer state file", trust, numpy=False)
        if paddleclas:
            opt_state = paddleclas_optimizer_state(opt_state, blobs["pdparams"], f"{prefix}.pdopt", arch)
            lr = getattr(optimizer, "_learning_rate", None)
            if hasattr(lr, "state_dict"):  # the schedule's position is set from the epoch (the engine)
                opt_state["LR_Scheduler"] = lr.state_dict()
        check_optimizer_state(opt_state, model, f"{prefix}.pdopt")
    for name, blob in blobs.items():
        if name not in (suffix, "pdopt"):
            states.setdefault("extra", {})[name] = decode(blob, files[name], "checkpoint file", trust, numpy=False)
    if paddleclas:
        states = dict(states, paddleclas=True)
        if "pdema" in states.get("extra", {}):  # PaddleClas's EMA file is a plain state_dict
            weights = states["extra"]["pdema"]
            states["extra"]["pdema"] = {"weights": convert_if_paddleclas(weights, arch) if arch else weights}
    with quiet_paddle_warnings():
        model.set_state_dict(params)
    if optimizer is not None:
        restore_optimizer_state(optimizer, model, opt_state, f"{prefix}.pdopt")
    return states
