"""The model a run builds, its weights, and its outputs on the way to losses and metrics.

Training builds the whole ``Arch`` (a zoo model or a DistillationModel). Evaluation, export and
inference build only the model that is evaluated — a DistillationModel's ``infer_model_name``
sub-model — and take its weights from ``Global.pretrained_model``: either that model's own file
(``best_model`` of a distillation run) or a whole DistillationModel's (``latest``, ``epoch_N``,
PaddleClas's files), whose keys under ``<infer_model_name>.`` are used.
"""
from __future__ import annotations

from typing import Any, Dict, Union

import numpy as np
import paddle

from ..arch.distillation import build_arch, inference_arch, is_distillation
from .checkpoint import load_pretrained

__all__ = ["build_run_model", "load_run_weights", "float32_outputs", "numpy_outputs", "forward_in_chunks",
           "EVAL_CHUNK"]

#: Evaluation on the CPU runs a batch through the model in slices of at most this many images:
#: MobileNetV2 at 224 px evaluates a batch of 128 at 70-76 img/s whole and at 101-109 in slices of
#: 16-32 (2 cores; a whole batch's activations outgrow the caches). The outputs are the same.
EVAL_CHUNK = 32

Outputs = Union[paddle.Tensor, Dict[str, paddle.Tensor]]


def build_run_model(arch: Dict[str, Any], mode: str, trust: bool = False) -> paddle.nn.Layer:
    """``train``: the whole Arch; other modes: the evaluated model only. ``trust``: read a teacher's
    weights with the unrestricted unpickler (``Global.trust_pickles``)."""
    return build_arch(arch if mode == "train" else inference_arch(arch)[0], trust_pickles=trust)


def load_run_weights(model: paddle.nn.Layer, arch: Dict[str, Any], path: str, mode: str, strict: bool,
                     trust: bool = False) -> None:
    """Load ``path`` into a model of :func:`build_run_model` (see the module docstring)."""
    if not is_distillation(arch):
        load_pretrained(model, path, arch["name"], strict=strict, trust=trust)
    elif mode == "train":  # a whole DistillationModel's weights: the keys carry the models' labels
        load_pretrained(model, path, None, strict=strict, trust=trust)
    else:
        spec, label = inference_arch(arch)
        load_pretrained(model, path, spec["name"], strict=strict, trust=trust, prefix=label)


def float32_outputs(outputs: Outputs) -> Outputs:
    """Logits (or a DistillationModel's ``{label: logits}``) in float32 for the losses."""
    if isinstance(outputs, dict):
        return {k: v.astype("float32") for k, v in outputs.items()}
    return outputs.astype("float32")


def numpy_outputs(outputs: Outputs) -> Union[np.ndarray, Dict[str, np.ndarray]]:
    """Float32 numpy logits (or ``{label: logits}``) for the metrics."""
    if isinstance(outputs, dict):
        return {k: v.astype("float32").numpy() for k, v in outputs.items()}
    return outputs.astype("float32").numpy()


def forward_in_chunks(model: paddle.nn.Layer, images: paddle.Tensor, chunk: int = EVAL_CHUNK) -> Any:
    """``model(images)`` for a model in eval mode, run in slices of ``chunk`` images on the CPU
    (see :data:`EVAL_CHUNK`) and concatenated; whole on other devices, or when the model's
    output is not a single tensor."""
    n = images.shape[0]
    if n <= chunk or not paddle.get_device().startswith("cpu"):
        return model(images)
    first = model(images[:chunk])
    if not isinstance(first, paddle.Tensor):
        return model(images)
    return paddle.concat([first] + [model(images[i:i + chunk]) for i in range(chunk, n, chunk)])
