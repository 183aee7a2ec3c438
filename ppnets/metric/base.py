"""What the metrics share: the registry and the building blocks of accuracy."""
from __future__ import annotations

from typing import Dict, Union

import numpy as np

from ..registry import Registry

__all__ = ["METRICS", "Outputs", "topk_correct", "confusion_matrix", "class_recall"]

METRICS = Registry("metric")

#: what a metric receives: one model's logits (N, C), or ``{model name: logits}`` of a DistillationModel
Outputs = Union[np.ndarray, Dict[str, np.ndarray]]


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean (N,) array: is the true label among the ``k`` highest scores?"""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return (top == labels.reshape(-1, 1)).any(axis=1)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: rows are true classes, columns predicted classes."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels).reshape(-1), np.asarray(preds).reshape(-1)), 1)
    return cm


def class_recall(cm: np.ndarray) -> np.ndarray:
    """Per-class recall (the accuracy on each class's images) of a confusion matrix; NaN for a
    class without images."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / totals, np.nan)
