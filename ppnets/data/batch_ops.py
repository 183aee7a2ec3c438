"""Batch transform ops: Mixup and CutMix with soft targets, applied while collating a batch.

Configured on the training dataset, in PaddleClas's format::

    DataLoader:
      Train:
        dataset:
          ...
          batch_transform_ops:
            - MixupOperator: {alpha: 0.2}

or, switching between the two per batch (PaddleClas's ``OpSampler``: each op is picked with its
``prob``, no op with the remaining probability)::

          batch_transform_ops:
            - OpSampler:
                MixupOperator: {alpha: 0.8, prob: 0.5}
                CutmixOperator: {alpha: 1.0, prob: 0.5}

or timm's equivalent formulation (``prob``: chance to mix at all, ``switch_prob``: chance that
a mixed batch uses CutMix rather than Mixup)::

          batch_transform_ops:
            - MixupCutmix: {mixup_alpha: 0.8, cutmix_alpha: 1.0, prob: 1.0, switch_prob: 0.5}

With batch ops configured, every training batch carries targets of shape ``(N, Arch.class_num)``,
float32, rows summing to 1 (one-hot rows when a batch is not mixed), so the loss sees one kind of
target. :class:`~ppnets.loss.CELoss` takes them as they are (``-Σ t·log_softmax``) and composes its
label smoothing on top, ``(1 − ε)·t + ε/C``; PaddleClas's soft-label loss applies a softmax to the
targets, which is wrong for mixed labels. Images must be NCHW (end ``transform_ops`` with
``ToCHWImage``). Random draws (op choice, λ, boxes, permutations) come from the generator the op is
called with: the loader's collate derives it from ``(Global.seed, epoch, batch number)``
(:func:`ppnets.data.rng.batch_seed`), so a batch is mixed the same way whatever worker collates
it, and on resume.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, DataError, short_repr
from .rng import as_generator
from ..registry import Registry

BATCH_TRANSFORMS = Registry("batch transform op")

__all__ = ["BATCH_TRANSFORMS", "MixupOperator", "CutmixOperator", "OpSampler", "MixupCutmix", "BatchCollate",
           "build_batch_transforms"]

Batch = Tuple[np.ndarray, np.ndarray]
Rng = Optional[np.random.Generator]


def _check_alpha(alpha: float, where: str) -> None:
    if not alpha > 0:
        raise ConfigError(f"{where}.alpha: expected a positive number (the Beta(α, α) parameter), got {alpha}")


def _check_prob(prob: float, where: str) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ConfigError(f"{where}: expected a probability in [0, 1], got {prob}")


@BATCH_TRANSFORMS.register
class MixupOperator:
    """Mixup (Zhang et al., ICLR 2018): ``x = λ·x_a + (1 − λ)·x_b``, ``t = λ·t_a + (1 − λ)·t_b``.

    ``λ ~ Beta(alpha, alpha)`` once per batch; ``b`` is a random permutation of the batch.
    Applied with probability ``prob``.
    """

    def __init__(self, alpha: float = 1.0, prob: float = 1.0) -> None:
        _check_alpha(alpha, "MixupOperator")
        _check_prob(prob, "MixupOperator.prob")
        self.alpha = alpha
        self.prob = prob

    def mix(self, images: np.ndarray, targets: np.ndarray, lam: float, perm: np.ndarray) -> Batch:
        """Mix with a given ``lam`` and partner permutation ``perm``."""
        images, lam = images.astype(np.float32, copy=False), float(lam)
        mixed = lam * images + (1.0 - lam) * images[perm]  # float32: a Python float keeps the array's dtype
        return mixed, (lam * targets + (1.0 - lam) * targets[perm]).astype(np.float32, copy=False)

    def __call__(self, images: np.ndarray, targets: np.ndarray, rng: Rng = None) -> Batch:
        rng = as_generator(rng)
        if self.prob < 1.0 and rng.random() >= self.prob:
            return images, targets
        lam = float(rng.beta(self.alpha, self.alpha))
        return self.mix(images, targets, lam, rng.permutation(len(images)))


@BATCH_TRANSFORMS.register
class CutmixOperator:
    """CutMix (Yun et al., ICCV 2019): paste a box of a partner image; targets mix by area.

    ``λ ~ Beta(alpha, alpha)`` sets the box side to ``sqrt(1 − λ)`` of the image side, centred
    uniformly and clipped at the borders; the target weight of the partner is then the exact
    fraction of pixels pasted (timm's ``correct_lam``), ``t = (1 − A)·t_a + A·t_b``. Applied with
    probability ``prob``.
    """

    def __init__(self, alpha: float = 1.0, prob: float = 1.0) -> None:
        _check_alpha(alpha, "CutmixOperator")
        _check_prob(prob, "CutmixOperator.prob")
        self.alpha = alpha
        self.prob = prob

    @staticmethod
    def rand_box(h: int, w: int, lam: float, rng: Rng = None) -> Tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` of a box covering about ``1 − lam`` of an ``h × w`` image."""
        rng = as_generator(rng)
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(h * ratio), int(w * ratio)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = int(np.clip(cy - cut_h // 2, 0, h)), int(np.clip(cy + cut_h // 2, 0, h))
        x0, x1 = int(np.clip(cx - cut_w // 2, 0, w)), int(np.clip(cx + cut_w // 2, 0, w))
        return y0, y1, x0, x1

    def mix(self, images: np.ndarray, targets: np.ndarray, box: Tuple[int, int, int, int],
            perm: np.ndarray) -> Batch:
        """Paste ``box`` of ``images[perm]`` into ``images``; weight the targets by the pasted area."""
        y0, y1, x0, x1 = box
        h, w = images.shape[-2:]
        out = np.array(images, copy=True)
        out[..., y0:y1, x0:x1] = images[..., y0:y1, x0:x1][perm]  # gathers the box only
        pasted = (y1 - y0) * (x1 - x0) / float(h * w)
        return out, ((1.0 - pasted) * targets + pasted * targets[perm]).astype(np.float32)

    def __call__(self, images: np.ndarray, targets: np.ndarray, rng: Rng = None) -> Batch:
        rng = as_generator(rng)
        if self.prob < 1.0 and rng.random() >= self.prob:
            return images, targets
        lam = float(rng.beta(self.alpha, self.alpha))
        box = self.rand_box(images.shape[-2], images.shape[-1], lam, rng)
        return self.mix(images, targets, box, rng.permutation(len(images)))


@BATCH_TRANSFORMS.register
class OpSampler:
    """Apply one of several batch ops per batch, each picked with its ``prob`` (PaddleClas's ``OpSampler``).

    Keys are batch op names, values their options plus ``prob``, the chance that this op is the
    one applied; the probabilities must sum to at most 1 and the rest is the chance of no op.
    """

    def __init__(self, **ops: Dict[str, Any]) -> None:
        if not ops:
            raise ConfigError("OpSampler: expected at least one {OpName: {prob: …, …}} entry")
        self.ops: List[Any] = []
        self.weights: List[float] = []
        for name, options in ops.items():
            where = f"OpSampler.{name}"
            if name == "OpSampler":
                raise ConfigError(f"{where}: OpSampler cannot be nested")
            if not isinstance(options, dict) or "prob" not in options:
                raise ConfigError(f"{where}: expected options with a 'prob' (the chance this op is picked)")
            options = dict(options)
            prob = options.pop("prob")
            if isinstance(prob, bool) or not isinstance(prob, (int, float)):
                raise ConfigError(f"{where}.prob: expected a number, got {short_repr(prob)}")
            _check_prob(prob, f"{where}.prob")
            self.ops.append(BATCH_TRANSFORMS.build(name, options, where="OpSampler"))
            self.weights.append(float(prob))
        total = sum(self.weights)
        if total > 1.0 + 1e-9:
            raise ConfigError(f"OpSampler: the probabilities sum to {total:g}; expected at most 1")
        self.ops.append(None)
        self.weights.append(max(0.0, 1.0 - total))

    def __call__(self, images: np.ndarray, targets: np.ndarray, rng: Rng = None) -> Batch:
        rng = as_generator(rng)
        p = np.asarray(self.weights) / sum(self.weights)
        op = self.ops[int(rng.choice(len(self.ops), p=p))]
        return (images, targets) if op is None else op(images, targets, rng)


@BATCH_TRANSFORMS.register
class MixupCutmix:
    """Mixup or CutMix per batch (timm's switch): mix with ``prob``, by CutMix with ``switch_prob``.

    A mixed batch uses CutMix with probability ``switch_prob`` and Mixup otherwise; an ``alpha``
    of 0 disables that method.
    """

    def __init__(self, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, prob: float = 1.0,
                 switch_prob: float = 0.5) -> None:
        _check_prob(prob, "MixupCutmix.prob")
        _check_prob(switch_prob, "MixupCutmix.switch_prob")
        if mixup_alpha < 0 or cutmix_alpha < 0 or mixup_alpha == cutmix_alpha == 0:
            raise ConfigError(f"MixupCutmix: expected non-negative alphas, at least one positive; "
                              f"got mixup_alpha={mixup_alpha}, cutmix_alpha={cutmix_alpha}")
        self.mixup = MixupOperator(mixup_alpha) if mixup_alpha > 0 else None
        self.cutmix = CutmixOperator(cutmix_alpha) if cutmix_alpha > 0 else None
        self.prob = prob
        self.switch_prob = switch_prob if self.mixup and self.cutmix else (1.0 if self.cutmix else 0.0)

    def __call__(self, images: np.ndarray, targets: np.ndarray, rng: Rng = None) -> Batch:
        rng = as_generator(rng)
        if self.prob < 1.0 and rng.random() >= self.prob:
            return images, targets
        use_cutmix = self.switch_prob >= 1.0 or (self.switch_prob > 0.0 and rng.random() < self.switch_prob)
        op = self.cutmix if use_cutmix else self.mixup
        return op(images, targets, rng)  # type: ignore[misc]


class BatchCollate:
    """``collate_fn``: stack ``[(image, label), …]``, one-hot the labels, apply the batch ops.

    The ops draw from ``rng``, the batch's generator (None: fresh entropy). Returns ``(images (N, C, H, W) float32, targets (N, class_num) float32)``.
    """

    def __init__(self, ops: Sequence[Any], class_num: int) -> None:
        if class_num < 1:
            raise ConfigError(f"batch_transform_ops need the class count (Arch.class_num), got {class_num}")
        self.ops = list(ops)
        self.class_num = class_num

    def __call__(self, batch: List[Tuple[np.ndarray, Any]], rng: Rng = None) -> List[np.ndarray]:
        images = np.stack([np.asarray(item[0]) for item in batch])
        labels = np.asarray([int(np.asarray(item[1]).reshape(-1)[0]) for item in batch], np.int64)
        if images.ndim != 4 or (images.shape[1] not in (1, 3) and images.shape[3] in (1, 3)):
            raise DataError(f"batch_transform_ops need CHW images (end transform_ops with ToCHWImage); "
                            f"got a batch of shape {tuple(images.shape)}")
        bad = labels[(labels < 0) | (labels >= self.class_num)]
        if bad.size:
            raise DataError(f"label {int(bad[0])} out of range [0, {self.class_num}) (Arch.class_num)")
        targets = np.zeros((len(labels), self.class_num), np.float32)
        targets[np.arange(len(labels)), labels] = 1.0
        images = images.astype(np.float32, copy=False)
        rng = as_generator(rng)
        for op in self.ops:
            images, targets = op(images, targets, rng)
        return [np.ascontiguousarray(images, np.float32), np.ascontiguousarray(targets, np.float32)]


def build_batch_transforms(op_list: Optional[List[Dict[str, Any]]], class_num: int,
                           where: str = "batch_transform_ops") -> Optional[BatchCollate]:
    """A :class:`BatchCollate` for ``[{MixupOperator: {alpha: 0.2}}, …]``, or None for an empty list."""
    if not op_list:
        return None
    ops = []
    for i, item in enumerate(op_list):
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{where}.{i}: expected one {{Name: {{options}}}} mapping, got {short_repr(item)}")
        (name, kwargs), = item.items()
        ops.append(BATCH_TRANSFORMS.build(name, kwargs or {}, where=f"{where}.{i}"))
    return BatchCollate(ops, class_num)
