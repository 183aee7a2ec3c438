"""Metrics, configured as ``Metric: {Eval: [{TopkAcc: {topk: [1, 5]}}]}``.

A metric is called with the outputs and labels of the whole evaluation set (or of one training
batch) and returns ``{name: value}``; the first value of ``Metric.Eval`` picks ``best_model``.

- :mod:`~ppnets.metric.classification`: ``TopkAcc``, ``DistillationTopkAcc``, ``BalancedAccuracy``;
- :mod:`~ppnets.metric.multilabel`: ``MultiLabelMAP``, ``HammingDistance``, ``AccuracyScore``,
  ``MultiLabelF1``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from . import classification, multilabel  # noqa: F401  (each module registers its metrics)
from .base import METRICS, class_recall, confusion_matrix, topk_correct
from .classification import BalancedAccuracy, DistillationTopkAcc, TopkAcc
from .multilabel import AccuracyScore, HammingDistance, MultiLabelF1, MultiLabelMAP, multilabel_report

__all__ = ["METRICS", "TopkAcc", "DistillationTopkAcc", "BalancedAccuracy", "MultiLabelMAP", "HammingDistance",
           "AccuracyScore", "MultiLabelF1", "multilabel_report", "topk_correct", "build_metrics", "confusion_matrix", "class_recall"]


def build_metrics(items: Optional[List[Dict[str, Any]]], where: str = "Metric") -> List[Any]:
    """Build the metric objects of ``[{TopkAcc: {topk: [1, 5]}}, ...]``."""
    out = []
    for i, item in enumerate(items or []):
        (name, kwargs), = item.items()
        out.append(METRICS.build(name, kwargs or {}, where=f"{where}.{i}"))
    return out
