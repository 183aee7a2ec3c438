"""Classifying images with the dynamic-graph model (``tools/infer.py``): the batch → probabilities
function that :func:`ppnets.deploy.inputs.classify_files` runs."""
from __future__ import annotations

from typing import Callable

import numpy as np
import paddle

from ..arch import backend
from ..deploy.postprocess import sigmoid, softmax

__all__ = ["dynamic_runner"]


def dynamic_runner(model: paddle.nn.Layer, conv_backend: str = "paddle",
                   multilabel: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """A batch → probabilities function over a dynamic-graph model (eval mode), its convolutions on
    ``conv_backend`` (a :func:`ppnets.arch.backend.resolve` result): the softmax, or with
    ``multilabel`` one sigmoid per class."""
    model.eval()

    @paddle.no_grad()
    def run(batch: np.ndarray) -> np.ndarray:
        with backend.use(conv_backend):
            logits = model(paddle.to_tensor(batch)).numpy()
        return sigmoid(logits) if multilabel else softmax(logits)

    return run
