"""Structural re-parameterization: branches trained in parallel, fused into one layer for inference.

The families of 2021–2026 (RepVGG, MobileOne, RepViT, GhostNetV3, PP-LCNetV2) train a block as
several parallel branches — a k×k conv + BN, a 1×1 conv + BN, a BN-only identity — and fold them,
after training, into one k×k convolution with a bias: the same function, fewer and faster layers.

**The contract.** A layer that has a fused form defines ``reparameterize(self) -> None``, which
replaces its branches by the fused layer in place (timm's name for the same method), and does
nothing when called again; or ``fuse(self) -> nn.Layer``, returning the layer that replaces it. Nothing else
is needed: :func:`reparameterize` (also ``model.reparameterize()`` and ``ppnets.reparameterize``)
calls it on every such sublayer, puts the model in eval mode and marks it fused. A fused model
refuses to train (its BatchNorms are gone): ``model.train()`` raises a one-line ConfigError.

The helpers here do the arithmetic every family needs: :func:`fuse_conv_bn` (a convolution
followed by BatchNorm → one convolution with a bias), :func:`identity_kernel` (the identity as a
grouped k×k kernel, for a BN-only skip branch), :func:`pad_kernel` (a 1×1 kernel centred in k×k)
and :func:`fused_conv` (a new convolution on ppnets's fast CPU path holding the result).

**Fused slots.** A layout may keep the fused layer in the train-time model, unused until fusing
(PaddleClas's PP-LCNetV2 stores its fused depthwise conv next to the branches, so its ``.pdparams``
hold both and its trainable-parameter count includes it). Such a layer is marked with
:func:`mark_inference_only`: its parameters are saved and counted but get no gradient before
fusing; :func:`inference_only_parameters` names them (the tests that expect a gradient for every
trainable parameter leave them out). The block unmarks the layer when it fuses into it.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
import paddle.nn as nn

from ..errors import ConfigError
from .layers import conv2d_class

__all__ = ["reparameterize", "is_reparameterized", "has_fused_form", "fuse_conv_bn", "fuse_bn", "identity_kernel",
           "pad_kernel", "fused_conv", "assert_trainable", "mark_inference_only", "inference_only_parameters"]

Array = np.ndarray


def _np(t: Union[paddle.Tensor, Array, None]) -> Optional[Array]:
    if t is None:
        return None
    return t.numpy().astype(np.float64) if isinstance(t, paddle.Tensor) else np.asarray(t, np.float64)


def fuse_bn(kernel: Union[paddle.Tensor, Array], bn: nn.Layer,
            bias: Union[paddle.Tensor, Array, None] = None) -> Tuple[Array, Array]:
    """``(weight, bias)`` of the convolution ``kernel`` (+ ``bias``) followed by the BatchNorm ``bn``
    (eval-mode statistics), computed in float64: ``w·γ/σ`` and ``β + (b − μ)·γ/σ``.

    ``kernel`` may be any ``[out, …]`` array (a conv kernel, or a Linear weight already transposed
    to ``[out, in]``); ``bn`` is a Paddle ``BatchNorm*D`` (or ``BatchNorm1D``)."""
    w = _np(kernel)
    std = np.sqrt(_np(bn._variance) + float(bn._epsilon))
    gamma = _np(bn.weight) if bn.weight is not None else np.ones_like(std)
    beta = _np(bn.bias) if bn.bias is not None else np.zeros_like(std)
    scale = gamma / std
    b = _np(bias) if bias is not None else np.zeros_like(std)
    fused_w = w * scale.reshape([-1] + [1] * (w.ndim - 1))
    return fused_w, beta + (b - _np(bn._mean)) * scale


def fuse_conv_bn(conv: nn.Conv2D, bn: nn.Layer) -> Tuple[Array, Array]:
    """``(weight, bias)`` of ``conv`` followed by ``bn``, as one convolution (see :func:`fuse_bn`)."""
    return fuse_bn(conv.weight, bn, conv.bias)


def identity_kernel(channels: int, groups: int, kernel_size: Union[int, Sequence[int]] = 1) -> Array:
    """The identity map of ``channels`` channels as a grouped conv kernel
    ``[channels, channels / groups, kh, kw]``: 1 at each channel's own input, at the centre."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    per_group = channels // groups
    k = np.zeros((channels, per_group, kh, kw), np.float64)
    for c in range(channels):
        k[c, c % per_group, kh // 2, kw // 2] = 1.0
    return k


def pad_kernel(kernel: Union[paddle.Tensor, Array], kernel_size: Union[int, Sequence[int]]) -> Array:
    """``kernel`` (``[o, i, h, w]``) zero-padded to ``kernel_size``, centred (a 1×1 branch inside k×k)."""
    k = _np(kernel)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    ph, pw = kh - k.shape[2], kw - k.shape[3]
    if ph < 0 or pw < 0 or ph % 2 or pw % 2:
        raise ValueError(f"pad_kernel: cannot centre a {k.shape[2]}×{k.shape[3]} kernel in {kh}×{kw}")
    return np.pad(k, ((0, 0), (0, 0), (ph // 2, ph // 2), (pw // 2, pw // 2)))


def fused_conv(like: nn.Conv2D, weight: Array, bias: Optional[Array]) -> nn.Conv2D:
    """A convolution with ``like``'s geometry (channels, kernel, stride, padding, groups) holding
    ``weight`` and ``bias`` (float32), on ppnets's fast CPU path (FastConv2D / DepthwiseConv2D)."""
    groups = like._groups
    cls = conv2d_class(like._in_channels, like._out_channels, groups)
    conv = cls(like._in_channels, like._out_channels, like._kernel_size, stride=like._stride,
               padding=like._padding, dilation=like._dilation, groups=groups,
               bias_attr=None if bias is not None else False, data_format=like._data_format)
    conv.weight.set_value(np.asarray(weight, np.float32))
    if bias is not None:
        conv.bias.set_value(np.asarray(bias, np.float32))
    return conv


def mark_inference_only(layer: nn.Layer, inference_only: bool = True) -> nn.Layer:
    """Mark ``layer`` as a fused slot (see the module docstring), or unmark it; returns it."""
    layer._ppnets_inference_only = bool(inference_only)
    return layer


def inference_only_parameters(model: nn.Layer) -> List[str]:
    """Names (as in ``model.named_parameters()``) of the parameters of the fused slots of ``model``
    that are still unused: they get no gradient in training."""
    slots = [name for name, layer in model.named_sublayers(include_self=True)
             if getattr(layer, "_ppnets_inference_only", False)]
    return [name for name, _ in model.named_parameters()
            if any(name.startswith(f"{slot}.") if slot else True for slot in slots)]


def is_reparameterized(model: nn.Layer) -> bool:
    """True once :func:`reparameterize` has run on ``model``."""
    return bool(getattr(model, "_ppnets_reparameterized", False))


def has_fused_form(model: nn.Layer) -> bool:
    """True if some sublayer of ``model`` declares a fused form (``reparameterize()`` or ``fuse()``) and
    the model is not fused yet: :func:`reparameterize` would change it."""
    if is_reparameterized(model):
        return False
    return any(callable(getattr(layer, "fuse", None)) or
               (callable(getattr(layer, "reparameterize", None)) and not hasattr(layer, "feature_info"))
               for layer in model.sublayers(include_self=False))


def assert_trainable(model: nn.Layer) -> None:
    """Raise a one-line ConfigError if ``model`` has been fused (it has no BatchNorm branches left)."""
    if is_reparameterized(model):
        raise ConfigError(f"{type(model).__name__} is re-parameterized (its branches are fused for inference) "
                          "and cannot be trained: train the unfused model, then fuse it for evaluation or export")


def reparameterize(model: nn.Layer) -> nn.Layer:
    """Fuse, in place, every sublayer of ``model`` that declares a fused form, put the model in eval
    mode and return it. Models without such layers are unchanged (apart from eval mode); calling it
    twice is harmless.

    Layers are visited parent first, as timm's ``reparameterize_model`` does: a layer with a
    ``fuse()`` method is replaced by what it returns; a layer with ``reparameterize()`` fuses itself
    in place; then the (new) children are visited."""
    if is_reparameterized(model):
        return model
    model.eval()
    _fuse_children(model)
    for layer in model.sublayers(include_self=True):
        layer.training = False
    model._ppnets_reparameterized = True
    return model


def _fuse_children(parent: nn.Layer) -> None:
    for name, child in list(parent.named_children()):
        if callable(getattr(child, "fuse", None)):
            child = child.fuse()
            setattr(parent, name, child)
        elif callable(getattr(child, "reparameterize", None)):
            child.reparameterize()
            if is_reparameterized(child):  # a whole model (a DistillationModel's student) fused itself
                continue
        _fuse_children(child)
