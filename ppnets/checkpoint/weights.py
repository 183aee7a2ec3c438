"""Model weights: finding a weights file, reading it safely, and initialising a model from it
(``Global.pretrained_model``): a local file, or published weights fetched through :mod:`.hub`
(PaddleClas's, timm's, a URL), their digest checked before they are read; PaddleClas-layout files
of families ppnets lays out differently and timm-layout files (whatever their path) are converted in
memory. Also the class names a checkpoint was trained with."""
from __future__ import annotations

import hashlib
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import paddle

from ..arch import model_info
from ..arch.convert import convert_paddleclas_state_dict, is_paddleclas_layout
from ..arch.timm import convert_timm_state_dict, is_timm_layout
from ..data.labels import read_label_file
from ..errors import CheckpointError
from ..utils.logger import get_logger
from ..utils.quiet import quiet_paddle_warnings
from .checks import check_state_dict, check_states, fit_dtypes
from .hub import Weights, check_digest, is_download, resolve, timm_target
from .serialization import decode, load, read_bytes

__all__ = ["WEIGHT_SUFFIXES", "checkpoint_prefix", "weights_path", "read_weights", "locate", "fetch_weights",
           "convert_if_paddleclas", "convert_if_timm", "load_pretrained", "trained_class_names"]

WEIGHT_SUFFIXES = ("pdparams", "safetensors")


def checkpoint_prefix(path: str) -> str:
    """``prefix.pdparams``, ``prefix.safetensors`` or ``prefix`` → ``prefix`` (the inverse of :func:`weights_path`)."""
    for suffix in WEIGHT_SUFFIXES:
        if path.endswith(f".{suffix}"):
            return path[:-len(suffix) - 1]
    return path


def weights_path(path: str) -> str:
    """``prefix``, ``prefix.pdparams`` or ``prefix.safetensors`` → the weights file (a prefix means
    ``prefix.pdparams``, or ``prefix.safetensors`` when only that exists)."""
    if any(path.endswith(f".{s}") for s in WEIGHT_SUFFIXES):
        return path
    if not os.path.isfile(f"{path}.pdparams") and os.path.isfile(f"{path}.safetensors"):
        return f"{path}.safetensors"
    return f"{path}.pdparams"


def read_weights(path: str, trust: bool = False) -> Dict[str, np.ndarray]:
    """Read a weights file (or prefix, see :func:`weights_path`) as ``{key: numpy array}``."""
    file = weights_path(path)
    obj, _ = load(file, "weights file", trust)
    return check_state_dict(obj, f"weights file {file}")


def locate(spec: str, arch: Optional[str] = None, mirror: Optional[str] = None,
           sha256: Optional[str] = None) -> Weights:
    """The local file of the weights setting ``spec`` (a file or prefix, else published weights of
    model ``arch``: ``paddleclas``, ``ssld``, ``timm``, a URL or a hub id — see :mod:`.hub`)."""
    local = weights_path(spec) if isinstance(spec, str) else spec
    if isinstance(spec, str) and (os.path.isfile(local) or not is_download(spec)):
        return Weights(local, spec)  # a file that exists wins over a name that looks like a source
    return resolve(spec, arch, mirror, sha256)


def fetch_weights(spec: str, arch: Optional[str] = None, trust: bool = False, mirror: Optional[str] = None,
                  sha256: Optional[str] = None) -> Tuple[Dict[str, np.ndarray], Weights]:
    """``({key: array}, where they came from)`` of the weights setting ``spec`` (:func:`locate`): the
    file's SHA-256 is checked (``sha256``, the cache's manifest) before its content is decoded."""
    weights = locate(spec, arch, mirror, sha256)
    data = read_bytes(weights.path, "weights file")
    if sha256 or weights.manifest is not None:  # a pin, or a cached download: its digest is checked
        check_digest(weights, hashlib.sha256(data).hexdigest(), sha256)
    obj = decode(data, weights.path, "weights file", trust)
    return check_state_dict(obj, f"weights file {weights.path}"), weights


def convert_if_timm(weights: Dict[str, np.ndarray], arch: Optional[str], source: Optional[Weights] = None
                    ) -> Dict[str, np.ndarray]:
    """Convert a file in timm's (PyTorch's) layout to model ``arch``'s, exactly or not at all."""
    if arch is None or not is_timm_layout(weights):
        return weights
    if source is not None:
        timm_target(source, arch)
    get_logger().info(f"converting timm-layout weights to ppnets's {arch} layout")
    return convert_timm_state_dict(arch, weights)


def convert_if_paddleclas(weights: Dict[str, np.ndarray], arch: Optional[str]) -> Dict[str, np.ndarray]:
    """Rename a PaddleClas-layout file of a family ppnets lays out differently (EfficientNet)."""
    if arch is None:
        return weights
    if model_info(arch).from_paddleclas is not None and is_paddleclas_layout(arch, weights):
        get_logger().info(f"converting PaddleClas-layout weights to ppnets's {arch} layout")
        return convert_paddleclas_state_dict(arch, weights, check=False)
    return weights


def _under(weights: Dict[str, np.ndarray], prefix: Optional[str]) -> Dict[str, np.ndarray]:
    """The entries under ``<prefix>.`` (prefix removed) when there are any, else ``weights``."""
    if prefix is None:
        return weights
    head = f"{prefix}."
    inner = {k[len(head):]: v for k, v in weights.items() if k.startswith(head)}
    return inner or weights


def load_pretrained(model: paddle.nn.Layer, path: str, arch: Optional[str] = None,
                    strict: bool = False, trust: bool = False, prefix: Optional[str] = None,
                    sha256: Optional[str] = None, mirror: Optional[str] = None) -> Dict[str, List[str]]:
    """Initialise ``model`` from ``path``, skipping keys whose shape differs (e.g. another class count).

    ``path`` is a weights setting (:func:`locate`: a file or prefix, ``paddleclas``, ``ssld``,
    ``timm``, a URL, a timm hub id); ``sha256`` pins the file's digest, ``mirror`` replaces
    PaddleClas's host. timm-layout files and PaddleClas-layout files of models ppnets lays out
    differently are converted first.
    Returns and logs ``{"loaded", "skipped", "missing", "unexpected"}`` key lists.
    ``strict`` (evaluation, export, inference): every parameter of the model must come from the
    file, else nothing is loaded and a :class:`CheckpointError` says what does not fit.
    ``trust``: the file may hold any pickled object (see :mod:`~ppnets.checkpoint.serialization`).
    ``prefix``: a file holding a whole DistillationModel gives the sub-model ``prefix`` its keys
    under ``<prefix>.``; a file without such keys is the model's own.
    """
    weights, source = fetch_weights(path, arch, trust, mirror, sha256)
    weights = _under(weights, prefix)
    if is_timm_layout(weights):
        weights = convert_if_timm(weights, arch, source)
    else:
        weights = convert_if_paddleclas(weights, arch)
    file = source.path
    own = model.state_dict()
    report: Dict[str, List[str]] = {"loaded": [], "skipped": [], "missing": [], "unexpected": []}
    to_load = {}
    for key, value in weights.items():
        if key not in own:
            report["unexpected"].append(key)
        elif list(value.shape) != list(own[key].shape):
            report["skipped"].append(f"{key} {list(value.shape)} vs model {list(own[key].shape)}")
        else:
            to_load[key] = value
            report["loaded"].append(key)
    report["missing"] = [k for k in own if k not in weights]
    if strict and (report["skipped"] or report["missing"]):
        raise CheckpointError(f"{file}: does not fit Arch {arch or type(model).__name__} with "
                              f"class_num={getattr(model, 'class_num', '?')} ({len(report['skipped'])} mismatched, "
                              f"{len(report['missing'])} missing keys, e.g. "
                              f"{(report['skipped'] + report['missing'])[0]})")
    if not to_load:
        raise CheckpointError(f"pretrained weights {file} share no key and shape with the model "
                              f"({len(report['unexpected'])} unexpected, {len(report['skipped'])} mismatched): "
                              "is it from another architecture?")
    to_load = fit_dtypes(to_load, own, f"weights file {file}")
    with quiet_paddle_warnings():  # ppnets reports skipped/missing keys below
        model.set_state_dict(to_load)
    log = get_logger()
    log.info(f"loaded pretrained weights {file}: {len(report['loaded'])}/{len(own)} tensors")
    for title in ("skipped", "missing", "unexpected"):
        items = report[title]
        if items:
            more = f" … and {len(items) - 8} more" if len(items) > 8 else ""
            log.warning(f"pretrained {title} ({len(items)}): {', '.join(items[:8])}{more}")
    return report


def trained_class_names(weights: Optional[str], trust: bool = False) -> Optional[List[str]]:
    """The class names ``weights`` (a prefix or weights file) were trained with: the checkpoint's
    ``class_names``, else the run's ``label_list.txt`` beside it; None when neither exists."""
    if not weights:
        return None
    prefix = checkpoint_prefix(weights)
    if os.path.isfile(f"{prefix}.pdstates"):
        states, _ = load(f"{prefix}.pdstates", "checkpoint states file", trust)
        names = check_states(states, f"{prefix}.pdstates").get("class_names")
        if names:
            return list(names)
    label_list = os.path.join(os.path.dirname(prefix), "label_list.txt")
    if os.path.isfile(label_list):
        return read_label_file(label_list)
    return None
