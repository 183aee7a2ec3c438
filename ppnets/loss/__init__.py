"""Losses, configured as ``Loss: {Train: [{CELoss: {epsilon: 0.1}}], Eval: [{CELoss: {}}]}``.

- :mod:`~ppnets.loss.classification`: ``CELoss`` (label smoothing, class weights), ``FocalLoss``;
- :mod:`~ppnets.loss.multilabel`: ``MultiLabelLoss`` (BCE), ``MultiLabelAsymmetricLoss``;
- :mod:`~ppnets.loss.distillation`: ``DistillationCELoss``, ``DistillationGTCELoss``,
  ``DistillationKLDivLoss``, ``DistillationDKDLoss``, ``DistillationDMLLoss``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import paddle
import paddle.nn as nn

from . import classification, distillation, multilabel  # noqa: F401  (each module registers its losses)
from .base import LOSSES, Outputs, balanced_class_weights
from .classification import CELoss, FocalLoss
from .distillation import (DistillationCELoss, DistillationDKDLoss, DistillationDMLLoss, DistillationGTCELoss,
                           DistillationKLDivLoss)
from .multilabel import MultiLabelAsymmetricLoss, MultiLabelLoss

__all__ = ["LOSSES", "CELoss", "FocalLoss", "MultiLabelLoss", "MultiLabelAsymmetricLoss", "DistillationCELoss",
           "DistillationGTCELoss", "DistillationKLDivLoss", "DistillationDKDLoss", "DistillationDMLLoss",
           "CombinedLoss", "build_loss", "balanced_class_weights"]


class CombinedLoss(nn.Layer):
    """The weighted sum of the configured losses; ``forward`` returns ``{name: value, 'loss': total}``."""

    def __init__(self, losses: List[nn.Layer], names: List[str]) -> None:
        super().__init__()
        self.losses = nn.LayerList(losses)
        self.names = names

    @property
    def needs_class_counts(self) -> bool:
        """Whether a loss has ``class_weight: auto`` (see :meth:`bind_class_counts`)."""
        return any(getattr(loss, "auto", False) for loss in self.losses)

    def bind_class_counts(self, counts: Sequence[int]) -> None:
        """Hand the training set's images per class to the losses with ``class_weight: auto``."""
        for loss in self.losses:
            if hasattr(loss, "bind_class_counts"):
                loss.bind_class_counts(counts)

    def forward(self, outputs: Outputs, target: paddle.Tensor) -> Dict[str, paddle.Tensor]:
        out: Dict[str, paddle.Tensor] = {}
        total = None
        for name, loss in zip(self.names, self.losses):
            value = loss(outputs, target) * getattr(loss, "weight", 1.0)
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
