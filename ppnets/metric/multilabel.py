"""Multi-label metrics (``Global.use_multilabel``) on the sigmoid of each class's logit, computed
with scikit-learn over the whole evaluation set. Labels are multi-hot (N, C)."""
from __future__ import annotations

from typing import Dict

import numpy as np

from ..errors import ConfigError
from .base import METRICS, Outputs

__all__ = ["MultiLabelMAP", "HammingDistance", "AccuracyScore", "MultiLabelF1", "sigmoid", "multilabel_report"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def _inputs(outputs: Outputs, labels: np.ndarray, where: str):
    if isinstance(outputs, dict):
        raise ConfigError(f"{where}: multi-label metrics take one model's outputs, not a DistillationModel's")
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape != outputs.shape:
        raise ConfigError(f"{where}: expected multi-hot labels of shape {list(outputs.shape)} from a multi-label "
                          f"dataset (MultiLabelDataset, Global.use_multilabel: true), got {list(labels.shape)}")
    return sigmoid(outputs.astype(np.float64)), (labels > 0.5).astype(np.int64)


class _Thresholded:
    """A metric of the labels predicted where the sigmoid reaches ``threshold``."""

    multilabel = True

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"{type(self).__name__}.threshold: expected a value in (0, 1), got {threshold}")
        self.threshold = float(threshold)

    def predictions(self, outputs: Outputs, labels: np.ndarray):
        probs, truth = _inputs(outputs, labels, type(self).__name__)
        return (probs >= self.threshold).astype(np.int64), truth


def _average_precisions(probs: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per class: scikit-learn's average precision, NaN for a class without positive images."""
    from sklearn.metrics import average_precision_score
    return np.array([average_precision_score(truth[:, c], probs[:, c]) if truth[:, c].any() else np.nan
                     for c in range(truth.shape[1])])


def multilabel_report(logits: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> Dict[str, np.ndarray]:
    """Per class: ``ap`` (average precision), and ``precision``, ``recall``, ``f1`` of the labels
    predicted at ``threshold``, ``support`` (positive images)."""
    from sklearn.metrics import precision_recall_fscore_support
    probs, truth = _inputs(logits, labels, "multilabel_report")
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, (probs >= threshold).astype(np.int64), average=None, zero_division=0.0)
    return {"ap": _average_precisions(probs, truth), "precision": precision, "recall": recall, "f1": f1,
            "support": support}


@METRICS.register
class MultiLabelMAP:
    """Mean average precision over the classes that have positive evaluation images (``mAP``).

    ``map_type``: ``integral`` (scikit-learn's ``average_precision_score``: precision summed over
    each recall step) or ``11point`` (the best precision at recall ≥ 0, 0.1, …, 1, averaged).
    """

    multilabel = True

    def __init__(self, map_type: str = "integral") -> None:
        if map_type not in ("integral", "11point"):
            raise ConfigError(f"MultiLabelMAP.map_type: expected integral or 11point, got {map_type!r}")
        self.map_type = map_type

    def __call__(self, outputs: Outputs, labels: np.ndarray) -> Dict[str, float]:
        from sklearn.metrics import precision_recall_curve
        probs, truth = _inputs(outputs, labels, "MultiLabelMAP")
        if self.map_type == "integral":
            aps = _average_precisions(probs, truth)
            aps = aps[~np.isnan(aps)]
        else:
            aps = []
            for c in np.flatnonzero(truth.sum(axis=0) > 0):
                precision, recall, _ = precision_recall_curve(truth[:, c], probs[:, c])
                precision, recall = precision[:-1], recall[:-1]  # without the (recall 0, precision 1) end point
                aps.append(np.mean([precision[recall >= t].max() for t in np.linspace(0.0, 1.0, 11)]))
        return {"mAP": float(np.mean(aps)) if len(aps) else float("nan")}


@METRICS.register
class HammingDistance(_Thresholded):
    """The fraction of wrong (sample, class) decisions (``HammingDistance``; lower is better)."""

    lower_is_better = ("HammingDistance",)

    def __call__(self, outputs: Outputs, labels: np.ndarray) -> Dict[str, float]:
        from sklearn.metrics import hamming_loss
        preds, truth = self.predictions(outputs, labels)
        return {"HammingDistance": float(hamming_loss(truth, preds))}


@METRICS.register
class AccuracyScore(_Thresholded):
    """PaddleClas's ``AccuracyScore``: with ``base: label`` the fraction of right (sample, class)
    decisions (1 − Hamming distance); with ``base: sample`` the fraction of samples whose whole
    label set is right (returned as ``AccuracyScore_sample``, so both can be listed)."""

    def __init__(self, base: str = "label", threshold: float = 0.5) -> None:
        super().__init__(threshold)
        if base not in ("label", "sample"):
            raise ConfigError(f"AccuracyScore.base: expected label or sample, got {base!r}")
        self.base = base

    def __call__(self, outputs: Outputs, labels: np.ndarray) -> Dict[str, float]:
        from sklearn.metrics import accuracy_score, hamming_loss
        preds, truth = self.predictions(outputs, labels)
        if self.base == "sample":
            return {"AccuracyScore_sample": float(accuracy_score(truth, preds))}
        return {"AccuracyScore": float(1.0 - hamming_loss(truth, preds))}


@METRICS.register
class MultiLabelF1(_Thresholded):
    """F1 of the predicted labels: ``average: micro`` (over all decisions) or ``macro`` (the mean
    of the per-class F1s); returns ``F1``. A class never predicted nor present counts as F1 = 0
    in the macro mean."""

    def __init__(self, average: str = "macro", threshold: float = 0.5) -> None:
        super().__init__(threshold)
        if average not in ("micro", "macro"):
            raise ConfigError(f"MultiLabelF1.average: expected micro or macro, got {average!r}")
        self.average = average

    def __call__(self, outputs: Outputs, labels: np.ndarray) -> Dict[str, float]:
        from sklearn.metrics import f1_score
        preds, truth = self.predictions(outputs, labels)
        return {"F1": float(f1_score(truth, preds, average=self.average, zero_division=0.0))}
