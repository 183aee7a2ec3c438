"""Image files in, batches out, answers back: shared by the deploy predictor (``tools/predict.py``)
and the dynamic-graph ``tools/infer.py``."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..data.datasets import IMG_EXTENSIONS, _list_images, transform_file
from ..data.transforms import Compose, check_model_input
from ..errors import ConfigError, DataError
from .postprocess import threshold_results, topk_results

__all__ = ["list_inputs", "iterate_batches", "classify_files", "pipeline_output_shape", "probe_pipeline",
           "BAD_IMAGE_POLICIES"]

#: what prediction over files does with one it cannot read or decode: leave it out quietly, leave it
#: out with a warning naming it, or stop (``--bad-image`` of tools/predict.py and tools/infer.py)
BAD_IMAGE_POLICIES = ("skip", "warn", "error")


def probe_pipeline(transform: Compose) -> Tuple[Optional[List[int]], str]:
    """``([C, H, W], "")`` when every image leaves ``transform`` (a list that decodes files) with that
    shape, else ``(None, why)``; found on two synthetic PNGs of different sizes and aspect ratios."""
    shapes = set()
    for h, w in ((517, 389), (403, 611)):
        image = np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)
        ok, png = cv2.imencode(".png", image)
        try:
            shapes.add(tuple(np.asarray(transform(png.tobytes())).shape))
        except DataError as e:   # e.g. a crop larger than the synthetic image, a resize beyond the pixel limit
            return None, f"fails on a {w}x{h} image ({e})"
        except Exception as e:   # ops in an order that cannot work (the list may come from a damaged file)
            first = (str(e).strip().splitlines() or [""])[0][:200]
            return None, f"fails on a {w}x{h} image ({type(e).__name__}: {first})"
    if len(shapes) > 1:
        return None, f"gives images of different sizes ({', '.join(str(list(s)) for s in sorted(shapes))})"
    return list(shapes.pop()), ""


def pipeline_output_shape(transform: Compose) -> Optional[List[int]]:
    """The ``[C, H, W]`` every image leaves ``transform`` with, or None when it depends on the image
    (see :func:`probe_pipeline`)."""
    return probe_pipeline(transform)[0]


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


def iterate_batches(files: Sequence[str], transform: Compose, batch_size: int,
                    on_bad: Optional[Callable[[str, str], None]] = None) -> Iterator[tuple]:
    """Yield ``(paths, NCHW float32 batch)``; ops that do not give equal-sized CHW images raise a
    ConfigError naming the list (``transform.where``).

    A file that cannot be read or decoded raises a DataError naming it; with ``on_bad`` it is
    left out instead and ``on_bad(path, message)`` is called (a batch is then smaller, and one
    whose every file was bad is not yielded).
    """
    where = getattr(transform, "where", "transform_ops")
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        paths, arrays = [], []
        for path in chunk:
            try:
                array = np.asarray(transform_file(path, transform))
            except DataError as e:
                if on_bad is None:
                    raise
                on_bad(path, str(e))
                continue
            if arrays and array.shape != arrays[0].shape:
                raise ConfigError(f"{where}: the ops give images of different sizes ({list(arrays[0].shape)} for "
                                  f"{paths[0]}, {list(array.shape)} for {path}); resize or crop them to one size")
            paths.append(path)
            arrays.append(array)
        if not arrays:
            continue
        batch = np.stack(arrays).astype("float32")
        check_model_input(batch.shape, where)
        yield paths, batch


def classify_files(files: Sequence[str], transform: Compose, batch_size: int,
                   run: Callable[[np.ndarray], np.ndarray], k: int, names: Optional[List[str]],
                   threshold: Optional[float] = None,
                   on_bad: Optional[Callable[[str, str], None]] = None) -> List[Dict[str, Any]]:
    """Run ``run`` (a batch → probabilities function) over ``files`` and collect the top-k classes of
    each, or with ``threshold`` (multi-label) the classes whose probability reaches it. Unreadable
    files raise, or with ``on_bad`` are reported to it and left out (see :func:`iterate_batches`)."""
    results = []
    for paths, batch in iterate_batches(files, transform, batch_size, on_bad):
        probs = run(batch)
        results += topk_results(paths, probs, k, names) if threshold is None else \
            threshold_results(paths, probs, threshold, names)
    return results
