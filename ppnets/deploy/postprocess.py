"""From a model's outputs to answers: softmax / sigmoid, the top-k classes, the classes above a
threshold (multi-label), and their one-line form."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..metric.multilabel import sigmoid
from ..utils.files import shown_path

__all__ = ["softmax", "sigmoid", "topk_results", "threshold_results", "format_result"]


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def topk_results(paths: Sequence[str], probs: np.ndarray, k: int, names: Optional[List[str]]) -> List[Dict[str, Any]]:
    """Per image: ``{"file", "class_ids", "scores", "label_names"}`` of the ``k`` best classes."""
    out = []
    k = min(k, probs.shape[1])
    for path, p in zip(paths, probs):
        ids = np.argsort(-p, kind="stable")[:k]
        out.append({"file": path, "class_ids": ids.tolist(), "scores": [float(p[i]) for i in ids],
                    "label_names": [names[i] if names and i < len(names) else str(i) for i in ids]})
    return out


def threshold_results(paths: Sequence[str], probs: np.ndarray, threshold: float,
                      names: Optional[List[str]]) -> List[Dict[str, Any]]:
    """Multi-label: per image, ``{"file", "class_ids", "scores", "label_names"}`` of every class whose
    probability reaches ``threshold``, highest first (possibly none)."""
    out = []
    for path, p in zip(paths, probs):
        ids = [i for i in np.argsort(-p, kind="stable") if p[i] >= threshold]
        out.append({"file": path, "class_ids": [int(i) for i in ids], "scores": [float(p[i]) for i in ids],
                    "label_names": [names[i] if names and i < len(names) else str(i) for i in ids]})
    return out


def format_result(r: Dict[str, Any]) -> str:
    pairs = ", ".join(f"{n} ({i}): {s:.5f}" for n, i, s in zip(r["label_names"], r["class_ids"], r["scores"]))
    return f"{shown_path(r['file'])}: {pairs or '(no class above the threshold)'}"
