"""What the losses share: the registry, class weights, soft targets and picking a model's output."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["LOSSES", "ClassWeighted", "balanced_class_weights", "soft_targets", "is_soft", "model_output"]

LOSSES = Registry("loss")

#: the outputs a loss receives: one model's logits, or ``{model name: logits}`` of a DistillationModel
Outputs = Union[paddle.Tensor, Dict[str, paddle.Tensor]]


def balanced_class_weights(counts: Sequence[int]) -> np.ndarray:
    """``N / (C · n_c)`` for each class ``c`` with ``n_c`` of the ``N`` training images (scikit-learn's
    ``class_weight='balanced'``): the weights average to 1 over the training samples, so the loss
    keeps its scale. A class without images gets weight 0."""
    counts = np.asarray(counts, dtype=np.float64)
    total, classes = counts.sum(), len(counts)
    with np.errstate(divide="ignore"):
        return np.where(counts > 0, total / (classes * counts), 0.0).astype(np.float32)


def is_soft(logits: paddle.Tensor, target: paddle.Tensor) -> bool:
    """Whether ``target`` holds one distribution per sample (N, C) rather than class ids."""
    return target.ndim == 2 and target.shape[-1] == logits.shape[-1] and paddle.is_floating_point(target)


def soft_targets(logits: paddle.Tensor, target: paddle.Tensor, epsilon: float = 0.0) -> paddle.Tensor:
    """(N, C) target distributions: class ids one-hot, soft targets (Mixup/CutMix) as given, both
    mixed with the uniform distribution by label smoothing: ``(1 - ε)·y + ε / C``."""
    num_classes = logits.shape[-1]
    if is_soft(logits, target):
        soft = target.astype(logits.dtype)
    else:
        soft = F.one_hot(target.reshape([-1]).astype("int64"), num_classes).astype(logits.dtype)
    if epsilon:
        soft = soft * (1.0 - epsilon) + epsilon / num_classes
    return soft


def model_output(outputs: Outputs, name: str, key: Optional[str], where: str) -> paddle.Tensor:
    """The logits of model ``name`` among a DistillationModel's ``outputs``.

    Evaluation runs only ``Arch.infer_model_name`` and hands its logits over as a tensor: the
    config check makes sure evaluation losses and metrics name no other model.
    """
    out = outputs[name] if isinstance(outputs, dict) else outputs
    if key is not None:
        if not isinstance(out, dict) or key not in out:
            raise ConfigError(f"{where}.key: {key!r} — ppnets's models output their logits as one tensor; "
                              "remove key (or set it to null)")
        out = out[key]
    return out


def check_epsilon(epsilon: Optional[float], where: str) -> float:
    """Label smoothing ``epsilon`` in [0, 1) (null = 0)."""
    if epsilon is not None and not 0.0 <= epsilon < 1.0:
        raise ConfigError(f"{where}.epsilon: expected a value in [0, 1), got {epsilon}")
    return float(epsilon or 0.0)


class ClassWeighted(nn.Layer):
    """Base of the losses with a per-class weight: ``class_weight`` is a list (one weight per class),
    ``auto`` (:func:`balanced_class_weights` of the training set, which the engine passes to
    :meth:`bind_class_counts`) or null (no weighting)."""

    def __init__(self, class_weight: Union[str, List[float], None], where: str) -> None:
        super().__init__()
        self.where = where
        self.auto = class_weight == "auto"
        self._weights: Optional[np.ndarray] = None
        if isinstance(class_weight, str) and not self.auto:
            raise ConfigError(f"{where}.class_weight: expected auto, a list of numbers or null, got {class_weight!r}")
        if isinstance(class_weight, (list, tuple)):
            weights = np.asarray(class_weight, dtype=np.float32)
            if weights.ndim != 1 or len(weights) == 0 or (weights < 0).any() or not np.isfinite(weights).all():
                raise ConfigError(f"{where}.class_weight: expected one non-negative number per class, "
                                  f"got {list(class_weight)}")
            self._weights = weights

    def bind_class_counts(self, counts: Sequence[int]) -> None:
        """Give ``class_weight: auto`` the number of training images of each class."""
        if self.auto:
            self._weights = balanced_class_weights(counts)

    @property
    def class_weights(self) -> Optional[np.ndarray]:
        """The weights in use (None without weighting)."""
        return self._weights

    def weight_tensor(self, num_classes: int, dtype: Any) -> Optional[paddle.Tensor]:
        """The (C,) weights as a tensor, checked against the number of classes."""
        if self._weights is None:
            if self.auto:
                raise ConfigError(f"{self.where}.class_weight: auto needs the class counts of the training set, "
                                  "which only training provides; give a list of weights instead")
            return None
        if len(self._weights) != num_classes:
            raise ConfigError(f"{self.where}.class_weight: {len(self._weights)} weights for {num_classes} classes")
        return paddle.to_tensor(self._weights, dtype=dtype)
