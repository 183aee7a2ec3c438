"""The model a run builds, with its weights.

Training builds the whole ``Arch`` (a zoo model or a DistillationModel, whose sub-models get the
weights they name). Evaluation, export and inference build only the model that is evaluated — a
DistillationModel's ``infer_model_name`` sub-model — and take its weights from
``Global.pretrained_model``: either that model's own file (``best_model`` of a distillation run)
or a whole DistillationModel's (``latest``, ``epoch_N``, PaddleClas's files), whose keys under
``<infer_model_name>.`` are used.
"""
from __future__ import annotations

from typing import Any, Dict

import paddle

from ..arch.distillation import DistillationModel, build_arch, inference_arch, is_distillation
from ..errors import ConfigError
from .hub import is_download
from .weights import load_pretrained

__all__ = ["build_run_model", "load_run_weights", "load_model_for_inference"]


def build_run_model(arch: Dict[str, Any], mode: str, trust: bool = False) -> paddle.nn.Layer:
    """``train``: the whole Arch; other modes: the evaluated model only. A DistillationModel's
    sub-models get the weights they name (``trust``: read with the unrestricted unpickler,
    ``Global.trust_pickles``); a teacher must get all of its weights."""
    model = build_arch(arch if mode == "train" else inference_arch(arch)[0])
    if isinstance(model, DistillationModel):
        for label, (name, path, strict) in model.submodel_weights.items():
            load_pretrained(getattr(model, label), path, name, strict=strict, trust=trust)
    return model


def load_run_weights(model: paddle.nn.Layer, arch: Dict[str, Any], path: str, mode: str, strict: bool,
                     trust: bool = False) -> None:
    """Load ``path`` into a model of :func:`build_run_model` (see the module docstring).

    ``Arch.pretrained_sha256`` pins the weights a training starts from, and published weights
    (:func:`~ppnets.checkpoint.hub.is_download`) in any mode; a run's own checkpoint, evaluated or
    exported, is not what it pins. ``Arch.pretrained_mirror`` replaces PaddleClas's download host."""
    if not is_distillation(arch):
        pinned = arch.get("pretrained_sha256") if mode == "train" or is_download(path) else None
        load_pretrained(model, path, arch["name"], strict=strict, trust=trust, sha256=pinned,
                        mirror=arch.get("pretrained_mirror"))
    elif mode == "train":  # a whole DistillationModel's weights: the keys carry the models' labels
        load_pretrained(model, path, None, strict=strict, trust=trust)
    else:
        spec, label = inference_arch(arch)
        load_pretrained(model, path, spec["name"], strict=strict, trust=trust, prefix=label)


def load_model_for_inference(config: Dict[str, Any]) -> paddle.nn.Layer:
    """Build the evaluated model of ``Arch`` (a DistillationModel's ``infer_model_name``) and load
    ``Global.pretrained_model`` (required) into it, in eval mode."""
    weights = config["Global"].get("pretrained_model")
    if not weights:
        raise ConfigError("Global.pretrained_model: required (the weights to export/infer), "
                          "e.g. -o Global.pretrained_model=output/MobileNetV2/best_model")
    trust = config["Global"]["trust_pickles"]
    model = build_run_model(config["Arch"], "export", trust)
    load_run_weights(model, config["Arch"], weights, "export", strict=True, trust=trust)
    model.eval()
    return model
