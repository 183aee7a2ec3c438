"""Classifying image files: shared by the dynamic-graph ``tools/infer.py`` and the deploy predictor."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import paddle

from ..data.datasets import IMG_EXTENSIONS, _list_images
from ..data.transforms import Compose
from ..errors import DataError

__all__ = ["list_inputs", "topk_results", "iterate_batches", "softmax", "read_label_file", "classify_files"]


def list_inputs(path: str) -> List[str]:
    """An image file, or every image under a folder (sorted)."""
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        files = _list_images(path)
        if not files:
            raise DataError(f"{path}: no images found ({', '.join(IMG_EXTENSIONS)})")
        return files
    raise DataError(f"image or folder not found: {path}")


def read_label_file(path: str) -> List[str]:
    """Label names, one per line; PaddleClas's ``id name`` form (ids 0, 1, 2 … in order) too."""
    if not os.path.isfile(path):
        raise DataError(f"label file not found: {path}")
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    pairs = [line.split(" ", 1) for line in lines]
    if lines and all(len(p) == 2 and p[0] == str(i) for i, p in enumerate(pairs)):
        return [p[1].strip() for p in pairs]
    return lines


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def iterate_batches(files: Sequence[str], transform: Compose, batch_size: int) -> Iterator[tuple]:
    """Yield ``(paths, NCHW float32 batch)``; unreadable files raise a DataError naming them."""
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        arrays = []
        for path in chunk:
            try:
                with open(path, "rb") as f:
                    arrays.append(transform(f.read()))
            except OSError as e:
                raise DataError(f"cannot read image {path}: {e.strerror or e}") from None
            except DataError as e:
                raise DataError(f"{path}: {e}") from None
        yield chunk, np.stack(arrays).astype("float32")


def topk_results(paths: Sequence[str], probs: np.ndarray, k: int, names: Optional[List[str]]) -> List[Dict[str, Any]]:
    """Per image: ``{"file", "class_ids", "scores", "label_names"}`` of the ``k`` best classes."""
    out = []
    k = min(k, probs.shape[1])
    for path, p in zip(paths, probs):
        ids = np.argsort(-p, kind="stable")[:k]
        out.append({"file": path, "class_ids": ids.tolist(), "scores": [float(p[i]) for i in ids],
                    "label_names": [names[i] if names and i < len(names) else str(i) for i in ids]})
    return out


def format_result(r: Dict[str, Any]) -> str:
    pairs = ", ".join(f"{n} ({i}): {s:.5f}" for n, i, s in zip(r["label_names"], r["class_ids"], r["scores"]))
    return f"{r['file']}: {pairs}"


def classify_files(files: Sequence[str], transform: Compose, batch_size: int,
                   run: Callable[[np.ndarray], np.ndarray], k: int, names: Optional[List[str]]) -> List[Dict[str, Any]]:
    """Run ``run`` (a batch → probabilities function) over ``files`` and collect the top-k of each."""
    results = []
    for paths, batch in iterate_batches(files, transform, batch_size):
        results += topk_results(paths, run(batch), k, names)
    return results


def dynamic_runner(model: paddle.nn.Layer) -> Callable[[np.ndarray], np.ndarray]:
    """A batch → softmax probabilities function over a dynamic-graph model (eval mode)."""
    model.eval()

    @paddle.no_grad()
    def run(batch: np.ndarray) -> np.ndarray:
        return softmax(model(paddle.to_tensor(batch)).numpy())

    return run
