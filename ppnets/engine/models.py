"""A model's outputs on the way to losses and metrics, and evaluation in slices on the CPU."""
from __future__ import annotations

from typing import Any, Dict, Union

import numpy as np
import paddle

__all__ = ["float32_outputs", "numpy_outputs", "forward_in_chunks",
           "EVAL_CHUNK"]

#: Evaluation on the CPU runs a batch through the model in slices of at most this many images:
#: MobileNetV2 at 224 px evaluates a batch of 128 at 70-76 img/s whole and at 101-109 in slices of
#: 16-32 (2 cores; a whole batch's activations outgrow the caches). The outputs are the same.
EVAL_CHUNK = 32

Outputs = Union[paddle.Tensor, Dict[str, paddle.Tensor]]


def float32_outputs(outputs: Outputs) -> Outputs:
    """Logits (or a DistillationModel's ``{label: logits}``) in float32 for the losses."""
    if isinstance(outputs, dict):
        return {k: v.astype("float32") for k, v in outputs.items()}
    return outputs.astype("float32")


def numpy_outputs(outputs: Outputs) -> Union[np.ndarray, Dict[str, np.ndarray]]:
    """Float32 numpy logits (or ``{label: logits}``) for the metrics."""
    if isinstance(outputs, dict):
        return {k: v.astype("float32").numpy() for k, v in outputs.items()}
    return outputs.astype("float32").numpy()


def forward_in_chunks(model: paddle.nn.Layer, images: paddle.Tensor, chunk: int = EVAL_CHUNK) -> Any:
    """``model(images)`` for a model in eval mode, run in slices of ``chunk`` images on the CPU
    (see :data:`EVAL_CHUNK`) and concatenated; whole on other devices, or when the model's
    output is not a single tensor."""
    n = images.shape[0]
    if n <= chunk or not paddle.get_device().startswith("cpu"):
        return model(images)
    first = model(images[:chunk])
    if not isinstance(first, paddle.Tensor):
        return model(images)
    return paddle.concat([first] + [model(images[i:i + chunk]) for i in range(chunk, n, chunk)])
