"""Losses, configured as ``Loss: {Train: [{CELoss: {epsilon: 0.1}}], Eval: [{CELoss: {}}]}``."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..registry import Registry

LOSSES = Registry("loss")

__all__ = ["LOSSES", "CELoss", "CombinedLoss", "build_loss"]


@LOSSES.register
class CELoss(nn.Layer):
    """Cross-entropy with optional label smoothing ``epsilon``.

    Targets may be class ids (N,) / (N, 1) or soft targets (N, C) whose rows sum to 1
    (Mixup/Cutmix). Soft targets are used as given — they are not passed through a
    softmax (PaddleClas does that, which is wrong). Smoothing mixes the target with the
    uniform distribution: ``(1 - ε)·y + ε / C``.
    """

    def __init__(self, epsilon: Optional[float] = None, weight: float = 1.0) -> None:
        super().__init__()
        if epsilon is not None and not 0.0 <= epsilon < 1.0:
            from ..errors import ConfigError
            raise ConfigError(f"CELoss.epsilon: expected a value in [0, 1), got {epsilon}")
        self.epsilon = epsilon or 0.0
        self.weight = weight

    def forward(self, logits: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
        num_classes = logits.shape[-1]
        if target.ndim == 2 and target.shape[-1] == num_classes and target.dtype in (paddle.float32, paddle.float16,
                                                                                      paddle.float64, paddle.bfloat16):
            soft = target.astype(logits.dtype)
        else:
            labels = target.reshape([-1]).astype("int64")
            if not self.epsilon:
                return F.cross_entropy(logits, labels)
            soft = F.one_hot(labels, num_classes).astype(logits.dtype)
        if self.epsilon:
            soft = soft * (1.0 - self.epsilon) + self.epsilon / num_classes
        return -(soft * F.log_softmax(logits, axis=-1)).sum(axis=-1).mean()


class CombinedLoss(nn.Layer):
    """The weighted sum of the configured losses; ``forward`` returns ``{name: value, 'loss': total}``."""

    def __init__(self, losses: List[nn.Layer], names: List[str]) -> None:
        super().__init__()
        self.losses = nn.LayerList(losses)
        self.names = names

    def forward(self, logits: paddle.Tensor, target: paddle.Tensor) -> Dict[str, paddle.Tensor]:
        out: Dict[str, paddle.Tensor] = {}
        total = None
        for name, loss in zip(self.names, self.losses):
            value = loss(logits, target) * getattr(loss, "weight", 1.0)
            out[name] = value
            total = value if total is None else total + value
        out["loss"] = total
        return out


def build_loss(items: Optional[List[Dict[str, Any]]], where: str = "Loss") -> CombinedLoss:
    """Build a :class:`CombinedLoss` from ``[{CELoss: {...}}, ...]``."""
    layers, names = [], []
    for i, item in enumerate(items or [{"CELoss": {}}]):
        (name, kwargs), = item.items()
        layers.append(LOSSES.build(name, kwargs or {}, where=f"{where}.{i}"))
        names.append(name)
    return CombinedLoss(layers, names)
