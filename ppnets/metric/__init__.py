"""Metrics, configured as ``Metric: {Eval: [{TopkAcc: {topk: [1, 5]}}]}``."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from ..errors import ConfigError, short_repr
from ..registry import Registry

METRICS = Registry("metric")

__all__ = ["METRICS", "TopkAcc", "topk_correct", "build_metrics", "confusion_matrix"]


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean (N,) array: is the true label among the ``k`` highest scores?"""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return (top == labels.reshape(-1, 1)).any(axis=1)


@METRICS.register
class TopkAcc:
    """Top-k accuracy for each k in ``topk``; returns ``{'top1': …, 'top5': …}``.

    A k larger than the number of classes is clipped to it (top-5 of a 3-class problem is 1.0).
    """

    def __init__(self, topk: Optional[List[int]] = None) -> None:
        self.topk = list([1, 5] if topk is None else topk)
        if not self.topk or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in self.topk):
            raise ConfigError(f"TopkAcc.topk: expected a non-empty list of integers >= 1 (k of top-k accuracy), "
                              f"got {short_repr(topk)}")

    def __call__(self, logits: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
        labels = np.asarray(labels).reshape(-1)
        return {f"top{k}": float(topk_correct(logits, labels, k).mean()) for k in self.topk}


def build_metrics(items: Optional[List[Dict[str, Any]]], where: str = "Metric") -> List[Any]:
    """Build the metric objects of ``[{TopkAcc: {topk: [1, 5]}}, ...]``."""
    out = []
    for i, item in enumerate(items or []):
        (name, kwargs), = item.items()
        out.append(METRICS.build(name, kwargs or {}, where=f"{where}.{i}"))
    return out


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: rows are true classes, columns predicted classes."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels).reshape(-1), np.asarray(preds).reshape(-1)), 1)
    return cm
