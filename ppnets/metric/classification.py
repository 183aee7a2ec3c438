"""Single-label metrics: top-k accuracy (also of one model of a DistillationModel) and balanced accuracy."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from ..arch.distillation import single_output
from ..errors import ConfigError, short_repr
from .base import METRICS, Outputs, class_recall, confusion_matrix, topk_correct

__all__ = ["TopkAcc", "DistillationTopkAcc", "BalancedAccuracy"]


def _logits(outputs: Outputs, where: str) -> np.ndarray:
    return single_output(outputs, where, "DistillationTopkAcc with model_key")


@METRICS.register
class TopkAcc:
    """Top-k accuracy for each k in ``topk``; returns ``{'top1': …, 'top5': …}``.

    A k larger than the number of classes is clipped to it (top-5 of a 3-class problem is 1.0).
    """

    def __init__(self, topk: Optional[List[int]] = None) -> None:
        self.topk = list([1, 5] if topk is None else topk)
        if not self.topk or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in self.topk):
            raise ConfigError(f"{type(self).__name__}.topk: expected a non-empty list of integers >= 1 (k of top-k "
                              f"accuracy), got {short_repr(topk)}")

    def accuracy(self, logits: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
        labels = np.asarray(labels).reshape(-1)
        return {f"top{k}": float(topk_correct(logits, labels, k).mean()) for k in self.topk}

    def __call__(self, outputs: Outputs, labels: np.ndarray) -> Dict[str, float]:
        return self.accuracy(_logits(outputs, type(self).__name__), labels)


@METRICS.register
class DistillationTopkAcc(TopkAcc):
    """:class:`TopkAcc` of the model ``model_key`` of a DistillationModel (PaddleClas's name).
    Evaluation runs only ``Arch.infer_model_name``, which must then be ``model_key``."""

    def __init__(self, model_key: str, feature_key: Optional[str] = None, topk: Optional[List[int]] = None) -> None:
        super().__init__(topk)
        if feature_key is not None:
            raise ConfigError(f"DistillationTopkAcc.feature_key: {feature_key!r} — ppnets's models output their "
                              "logits as one tensor; remove feature_key")
        self.model_key = model_key
        self.models_used = [model_key]

    def __call__(self, outputs: Outputs, labels: np.ndarray) -> Dict[str, float]:
        return self.accuracy(outputs[self.model_key] if isinstance(outputs, dict) else outputs, labels)


@METRICS.register
class BalancedAccuracy:
    """The mean of the per-class recalls (``balanced_acc``), and the lowest of them
    (``min_recall``): on an imbalanced evaluation set, plain accuracy hides a neglected rare class.
    Classes without evaluation images are left out. ``per_class`` also returns ``recall_<id>``
    for each class."""

    def __init__(self, per_class: bool = False) -> None:
        self.per_class = per_class

    def __call__(self, outputs: Outputs, labels: np.ndarray) -> Dict[str, float]:
        logits = _logits(outputs, "BalancedAccuracy")
        recall = class_recall(confusion_matrix(labels, logits.argmax(axis=1), logits.shape[1]))
        present = recall[~np.isnan(recall)]
        out = {"balanced_acc": float(present.mean()) if present.size else float("nan"),
               "min_recall": float(present.min()) if present.size else float("nan")}
        if self.per_class:
            out.update({f"recall_{i}": float(r) for i, r in enumerate(recall) if not np.isnan(r)})
        return out
