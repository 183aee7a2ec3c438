"""Parameter and MAC counting, layer by layer.

``paddle.flops`` crashes under numpy 2, and it counts differently from the papers
anyway; this counter follows the convention of ``model_sizes.md``: MACs of Conv2D
and Linear layers only, batch 1, one multiply-accumulate per weight use
(``out_h·out_w·out_c·(in_c/groups)·k_h·k_w`` for a convolution, ``in·out`` for a
linear layer); FLOPs = 2 × MACs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple, Union

import numpy as np
import paddle
import paddle.nn as nn

__all__ = ["LayerStat", "LayerTotals", "ModelProfile", "profile_model", "count_params", "conv_kind"]


@dataclass
class LayerStat:
    """One leaf layer of a profiled forward pass."""

    name: str
    type: str
    kind: str                     # full | pointwise | depthwise | grouped | fc | other
    out_shape: Tuple[int, ...]
    params: int                   # trainable parameters owned by this layer
    macs: int


class LayerTotals:
    """Totals over ``self.layers`` (a list of :class:`LayerStat`), shared by profiles and roll-ups."""

    layers: List[LayerStat]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


@dataclass
class ModelProfile(LayerTotals):
    """The per-layer statistics of a model at one input size."""

    input_shape: Tuple[int, ...]
    layers: List[LayerStat] = field(default_factory=list)

    def macs_by_kind(self) -> dict:
        out: dict = {}
        for layer in self.layers:
            if layer.macs:
                out[layer.kind] = out.get(layer.kind, 0) + layer.macs
        return out


def count_params(model: nn.Layer) -> int:
    """Number of trainable parameter elements (``stop_gradient`` False): BN running statistics,
    which Paddle keeps as ``stop_gradient`` parameters, and frozen weights are not counted."""
    return int(sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient))


def conv_kind(layer: nn.Conv2D) -> str:
    """Classify a convolution: pointwise (1×1), depthwise, grouped or full."""
    groups = layer._groups
    in_c = layer._in_channels
    k = tuple(layer._kernel_size)
    if groups > 1 and groups == in_c:
        return "depthwise"
    if groups > 1:
        return "grouped"
    return "pointwise" if k == (1, 1) else "full"


def _layer_macs(layer: nn.Layer, out: paddle.Tensor) -> Tuple[str, int]:
    if isinstance(layer, nn.Conv2D):
        _, out_c, oh, ow = out.shape
        kh, kw = layer._kernel_size
        macs = oh * ow * out_c * (layer._in_channels // layer._groups) * kh * kw
        return conv_kind(layer), int(macs)
    if isinstance(layer, nn.Linear):
        in_f, out_f = layer.weight.shape
        rows = int(np.prod(out.shape[1:-1])) if out.ndim > 2 else 1
        return "fc", int(in_f * out_f * rows)
    return "other", 0


def profile_model(model: nn.Layer, input_size: Union[int, Sequence[int]] = 224, in_chans: int = 3) -> ModelProfile:
    """Run one batch-1 forward pass in eval mode and record every leaf layer.

    Returns a :class:`ModelProfile` whose ``params`` equals :func:`count_params` and whose
    ``macs`` is the Conv2D + Linear MAC count. Leaf layers that run several times are
    recorded once per call.
    """
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    profile = ModelProfile(input_shape=(1, in_chans, *hw))
    hooks = []
    seen_params = set()

    def make_hook(name: str):
        def hook(layer, inputs, output):
            out = output[0] if isinstance(output, (list, tuple)) else output
            kind, macs = _layer_macs(layer, out)
            params = 0
            if id(layer) not in seen_params:
                seen_params.add(id(layer))
                params = sum(int(np.prod(p.shape)) for p in layer.parameters(include_sublayers=False)
                             if not p.stop_gradient)
            profile.layers.append(LayerStat(name, type(layer).__name__, kind, tuple(out.shape), params, macs))
        return hook

    for name, layer in model.named_sublayers():
        if not layer.sublayers() or layer.parameters(include_sublayers=False):
            hooks.append(layer.register_forward_post_hook(make_hook(name)))
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros(profile.input_shape, dtype="float32"))
    finally:
        for h in hooks:
            h.remove()
        if was_training:
            model.train()
    # parameters of layers that never ran (should not happen) still count towards the total
    missing = count_params(model) - profile.params
    if missing:
        profile.layers.append(LayerStat("(unused parameters)", "-", "other", (), missing, 0))
    return profile
